"""The scheduler: each due slot is enqueued exactly once, however many schedulers run."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from django.tasks import TaskResultStatus
from django.tasks.backends.immediate import ImmediateBackend
from django_tasks_db import DatabaseBackend
from django_tasks_db.models import DBTaskResult

from patron.jobs import services
from patron.jobs.models import ScheduledSlot
from patron.jobs.schedule import SCHEDULE, PeriodicJob, as_of_slot_date
from patron.jobs.selectors import NOT_ENQUEUED, UNKNOWN, job_statuses, slot_task_status

from .conftest import Clock, utc

pytestmark = pytest.mark.django_db

NIGHTLY = PeriodicJob(
    name="sample-nightly",
    cron="0 2 * * *",
    task="patron.jobs.tests.sample_tasks.record",
    arguments=as_of_slot_date,
    description="records its calls",
)
INLINE = PeriodicJob(
    name="sample-inline",
    cron="0 2 * * *",
    task="patron.jobs.tests.sample_tasks.record_inline",
    arguments=as_of_slot_date,
    description="runs where it is enqueued",
)


def _slots() -> list[tuple[str, datetime, str]]:
    return [
        (slot.job, slot.slot_time, slot.task_path)
        for slot in ScheduledSlot.objects.order_by("job", "slot_time")
    ]


def _queued() -> list[tuple[str, dict[str, Any]]]:
    return [
        (row.task_path, row.args_kwargs["kwargs"])
        for row in DBTaskResult.objects.order_by("task_path", "enqueued_at")
    ]


def test_the_first_pass_enqueues_only_the_latest_slot_of_each_job(clock: Clock) -> None:
    # given: a fresh install at 10:00 on 20 November in Shanghai
    # when
    result = services.scheduler_pass(now=clock(), jobs=SCHEDULE, scheduler_id="host-a:1")
    # then
    assert result.failed == {}
    assert [(slot.job, slot.slot_time) for slot in result.enqueued] == [
        ("score-nightly", utc("2026-11-19 18:00")),
        ("regrade-quarterly", utc("2026-09-30 19:00")),
        ("insights-fill", utc("2026-11-19 19:30")),
        ("value-report-monthly", utc("2026-10-31 20:00")),
        ("risk-detect", utc("2026-11-20 01:30")),
        ("outbox-deliver", utc("2026-11-20 02:00")),
        ("loyalty-accrue", utc("2026-11-20 01:15")),
        ("loyalty-expire", utc("2026-11-19 16:10")),
        ("loyalty-tiers", utc("2026-11-19 19:45")),
        ("certification-reverify", utc("2026-11-20 01:00")),
        ("marketing-nightly", utc("2026-11-19 19:50")),
        ("service-sla-watch", utc("2026-11-20 02:00")),
        ("service-mail-poll", utc("2026-11-20 02:00")),
        ("logistics-exceptions", utc("2026-11-20 02:00")),
        ("complaint-risk", utc("2026-11-20 01:05")),
        ("marketing-campaigns", utc("2026-11-20 02:00")),
        ("surveys-send", utc("2026-11-20 01:30")),
        ("care-daily", utc("2026-11-20 01:00")),
        ("recommendations-refresh", utc("2026-11-19 19:30")),
        ("marketing-winback", utc("2026-11-20 02:00")),
    ]
    assert _queued() == [
        ("patron.aftersales.tasks.check_logistics", {"as_of": "2026-11-20T10:00:00+08:00"}),
        ("patron.care.tasks.care_daily", {"as_of": "2026-11-20"}),
        (
            "patron.certification.tasks.reverify_certifications",
            {"as_of": "2026-11-20T09:00:00+08:00"},
        ),
        (
            "patron.complaints.tasks.refresh_complaint_risk",
            {"as_of": "2026-11-20T09:05:00+08:00"},
        ),
        ("patron.insight.report_tasks.generate_monthly_report", {"as_of": "2026-11-01"}),
        ("patron.insight.tasks.fill_metrics", {"as_of": "2026-11-20"}),
        ("patron.loyalty.tasks.accrue_points", {"as_of": "2026-11-20T09:15:00+08:00"}),
        ("patron.loyalty.tasks.evaluate_tiers", {"as_of": "2026-11-20"}),
        ("patron.loyalty.tasks.expire_points", {"as_of": "2026-11-20"}),
        ("patron.marketing.tasks.marketing_nightly", {}),
        ("patron.marketing.tasks.run_campaigns", {}),
        ("patron.marketing.tasks.run_winback", {"as_of": "2026-11-20T10:00:00+08:00"}),
        ("patron.outbox.tasks.deliver_outbox", {}),
        ("patron.recommend.tasks.refresh_recommendations", {"as_of": "2026-11-20"}),
        ("patron.risk.tasks.detect_risk", {"as_of": "2026-11-20T09:30:00+08:00"}),
        ("patron.satisfaction.tasks.send_surveys", {"as_of": "2026-11-20T09:30:00+08:00"}),
        ("patron.scoring.tasks.regrade_quarterly", {"as_of": "2026-10-01"}),
        ("patron.scoring.tasks.score_nightly", {"as_of": "2026-11-20"}),
        ("patron.service.tasks.mail_poll_task", {}),
        ("patron.service.tasks.sla_watch_task", {}),
    ]
    slot = ScheduledSlot.objects.get(job="score-nightly")
    assert slot.task_result_id == str(
        DBTaskResult.objects.get(task_path__endswith="score_nightly").id
    )
    assert (slot.task_backend, slot.task_arguments, slot.scheduler_id) == (
        "default",
        {"as_of": "2026-11-20"},
        "host-a:1",
    )
    assert result.next_due == utc("2026-11-20 02:01")  # outbox-deliver, every minute


def test_a_second_pass_enqueues_nothing_more(clock: Clock) -> None:
    # given
    services.scheduler_pass(now=clock(), jobs=(NIGHTLY,))
    # when: the same scheduler, or a cron-started `scheduler --once`, looks again
    again = services.scheduler_pass(now=clock(), jobs=(NIGHTLY,))
    # then
    assert again.enqueued == []
    assert _slots() == [
        ("sample-nightly", utc("2026-11-19 18:00"), "patron.jobs.tests.sample_tasks.record")
    ]
    assert _queued() == [("patron.jobs.tests.sample_tasks.record", {"as_of": "2026-11-20"})]


def test_slots_missed_while_the_scheduler_was_down_are_each_enqueued_once(clock: Clock) -> None:
    # given: the scheduler ran on the 17th, then stopped for three days
    clock.now = utc("2026-11-17 02:00")
    services.scheduler_pass(now=clock(), jobs=(NIGHTLY,))
    clock.now = utc("2026-11-20 02:00")
    # when
    result = services.scheduler_pass(now=clock(), jobs=(NIGHTLY,))
    # then
    assert [slot.task_arguments for slot in result.enqueued] == [
        {"as_of": "2026-11-18"},
        {"as_of": "2026-11-19"},
        {"as_of": "2026-11-20"},
    ]
    assert ScheduledSlot.objects.count() == 4
    assert DBTaskResult.objects.count() == 4


def test_a_slot_another_scheduler_already_claimed_is_skipped(clock: Clock) -> None:
    # given: scheduler B computed the due slots, then scheduler A claimed and enqueued the slot
    due_for_b = services.job_due_slots(job=NIGHTLY, now=clock())
    a = services.slot_enqueue(job=NIGHTLY, slot_time=due_for_b[0], scheduler_id="host-a:1")
    # when: B tries the same slot
    b = services.slot_enqueue(job=NIGHTLY, slot_time=due_for_b[0], scheduler_id="host-b:2")
    # then: B inserted nothing and enqueued nothing
    assert a is not None
    assert b is None
    assert list(ScheduledSlot.objects.values_list("scheduler_id", "task_result_id")) == [
        ("host-a:1", a.task_result_id)
    ]
    assert DBTaskResult.objects.count() == 1


def test_a_slot_inserted_first_by_a_racing_scheduler_makes_the_pass_skip_it(
    clock: Clock,
) -> None:
    # given: the racing scheduler's row is in, its task not yet (it is in its transaction)
    ScheduledSlot.objects.create(
        job="sample-nightly",
        slot_time=utc("2026-11-19 18:00"),
        task_path=NIGHTLY.task,
        task_backend="default",
        scheduler_id="host-b:2",
    )
    # when
    claimed = services.slot_enqueue(
        job=NIGHTLY, slot_time=utc("2026-11-19 18:00"), scheduler_id="host-a:1"
    )
    # then
    assert claimed is None
    assert list(ScheduledSlot.objects.values_list("scheduler_id", "task_result_id")) == [
        ("host-b:2", "")
    ]
    assert DBTaskResult.objects.count() == 0


def test_when_the_enqueue_fails_the_claim_is_rolled_back_and_the_next_pass_retries(
    clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: the task store refuses the task
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("queue unavailable")

    with monkeypatch.context() as patched:
        patched.setattr(DatabaseBackend, "enqueue", refuse)
        # when
        failed = services.scheduler_pass(now=clock(), jobs=(NIGHTLY,))
    # then: nothing is claimed, so nothing is lost
    assert failed.failed == {"sample-nightly": "RuntimeError: queue unavailable"}
    assert (ScheduledSlot.objects.count(), DBTaskResult.objects.count()) == (0, 0)
    # when: the queue is back
    retried = services.scheduler_pass(now=clock(), jobs=(NIGHTLY,))
    # then
    assert [slot.slot_time for slot in retried.enqueued] == [utc("2026-11-19 18:00")]
    assert DBTaskResult.objects.count() == 1


def test_a_broken_job_does_not_stop_the_others(clock: Clock) -> None:
    # given
    broken = PeriodicJob(
        name="broken",
        cron="0 2 * * *",
        task="patron.jobs.tests.sample_tasks.no_such_task",
        arguments=as_of_slot_date,
        description="",
    )
    # when
    result = services.scheduler_pass(now=clock(), jobs=(broken, NIGHTLY))
    # then
    assert list(result.failed) == ["broken"]
    assert result.failed["broken"].startswith("ImportError: Module ")
    assert [slot.job for slot in result.enqueued] == ["sample-nightly"]


def test_slots_are_computed_in_the_merchants_time_zone(clock: Clock, settings: Any) -> None:
    # given: a merchant in London (UTC+0 in November)
    settings.TIME_ZONE = "Europe/London"
    # when
    result = services.scheduler_pass(now=clock(), jobs=(NIGHTLY,))
    # then: 02:00 London on the 20th
    assert [slot.slot_time for slot in result.enqueued] == [
        datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
    ]
    assert result.enqueued[0].task_arguments == {"as_of": "2026-11-20"}


def test_with_a_backend_outside_the_database_the_claim_commits_then_the_task_is_enqueued(
    clock: Clock, sample_calls: list[dict[str, str]]
) -> None:
    # when: the immediate backend runs the task as it is enqueued
    result = services.scheduler_pass(now=clock(), jobs=(INLINE,))
    # then
    assert sample_calls == [{"as_of": "2026-11-20", "inline": "yes"}]
    slot = ScheduledSlot.objects.get()
    assert (slot.task_backend, len(slot.task_result_id)) == ("immediate", 32)
    assert result.enqueued == [slot]
    # the immediate backend keeps no results to look up
    assert slot_task_status(slot) == UNKNOWN


def test_with_a_backend_outside_the_database_a_failed_enqueue_releases_the_claim(
    clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("broker down")

    monkeypatch.setattr(ImmediateBackend, "enqueue", refuse)
    # when
    result = services.scheduler_pass(now=clock(), jobs=(INLINE,))
    # then
    assert result.failed == {"sample-inline": "ConnectionError: broker down"}
    assert ScheduledSlot.objects.count() == 0


def test_the_status_of_a_slot_follows_its_task(clock: Clock) -> None:
    # given
    services.scheduler_pass(now=clock(), jobs=(NIGHTLY,))
    slot = ScheduledSlot.objects.get()
    claimed_only = ScheduledSlot.objects.create(
        job="sample-nightly", slot_time=utc("2026-11-20 18:00"), task_backend="default"
    )
    # when
    DBTaskResult.objects.update(status=TaskResultStatus.SUCCESSFUL)
    # then
    assert slot_task_status(slot) == "SUCCESSFUL"
    assert slot_task_status(claimed_only) == NOT_ENQUEUED


def test_job_statuses_show_next_due_last_slot_and_its_task(clock: Clock) -> None:
    # given
    services.scheduler_pass(now=clock(), jobs=(NIGHTLY,))
    # when
    statuses = job_statuses(now=clock(), jobs=(NIGHTLY, INLINE))
    # then
    assert [
        (
            s.name,
            s.next_due.isoformat(),
            s.last_slot and s.last_slot.isoformat(),
            s.last_task_status,
        )
        for s in statuses
    ] == [
        ("sample-nightly", "2026-11-21T02:00:00+08:00", "2026-11-20T02:00:00+08:00", "READY"),
        ("sample-inline", "2026-11-21T02:00:00+08:00", None, None),
    ]


def test_a_job_run_by_hand_is_enqueued_without_claiming_a_slot(clock: Clock) -> None:
    # when
    result = services.job_enqueue(
        job=NIGHTLY, slot_time=services.job_slot_for_date(day=datetime(2026, 7, 1).date())
    )
    # then
    assert result.status == TaskResultStatus.READY
    assert _queued() == [("patron.jobs.tests.sample_tasks.record", {"as_of": "2026-07-01"})]
    assert ScheduledSlot.objects.count() == 0


def test_a_job_run_inline_runs_here_and_returns_its_result(
    clock: Clock, sample_calls: list[dict[str, str]]
) -> None:
    # when
    result = services.job_run_inline(
        job=NIGHTLY, slot_time=services.job_slot_for_date(day=datetime(2026, 7, 1).date())
    )
    # then
    assert (result.status, result.return_value) == (
        TaskResultStatus.SUCCESSFUL,
        "recorded 2026-07-01",
    )
    assert sample_calls == [{"as_of": "2026-07-01"}]
    assert DBTaskResult.objects.count() == 0


# The loop closes stale connections between passes, as a long-running process must: outside a
# test transaction.
@pytest.mark.django_db(transaction=True)
class TestTheSchedulerLoop:
    def test_it_sleeps_until_the_next_slot_and_stops_when_asked(self, clock: Clock) -> None:
        # given: 01:59:30 in Shanghai, 30 seconds before the nightly slot
        clock.now = datetime(2026, 11, 19, 17, 59, 30, tzinfo=UTC)
        sleeps: list[float] = []
        passes: list[services.SchedulerPass] = []
        # when: asked to stop once it has slept 30 seconds
        services.scheduler_run(
            should_stop=lambda: sum(sleeps) >= 30,
            jobs=(NIGHTLY,),
            on_pass=passes.append,
            sleep=sleeps.append,
        )
        # then: one pass (yesterday's slot, first run), then 30 one-second naps
        assert [[slot.slot_time for slot in p.enqueued] for p in passes] == [
            [utc("2026-11-18 18:00")]
        ]
        assert sleeps == [1.0] * 30

    def test_it_wakes_at_least_every_minute(self, clock: Clock) -> None:
        # given: 16 hours before the next slot
        sleeps: list[float] = []
        passes: list[services.SchedulerPass] = []
        # when
        services.scheduler_run(
            should_stop=lambda: len(passes) == 2,
            jobs=(NIGHTLY,),
            on_pass=passes.append,
            sleep=sleeps.append,
        )
        # then: a second pass came after 60 seconds, and enqueued nothing new
        assert sleeps == [1.0] * 60
        assert [len(p.enqueued) for p in passes] == [1, 0]

    def test_a_stop_during_the_sleep_ends_it_within_a_second(self, clock: Clock) -> None:
        # given
        sleeps: list[float] = []
        # when: the signal arrives during the third nap
        services.scheduler_run(
            should_stop=lambda: len(sleeps) >= 3, jobs=(NIGHTLY,), sleep=sleeps.append
        )
        # then
        assert sleeps == [1.0, 1.0, 1.0]
