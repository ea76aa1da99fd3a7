"""The registry of periodic jobs."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.tasks import Task

from patron.errors import NotFound
from patron.jobs.schedule import SCHEDULE, PeriodicJob, as_of_slot_date, job_get


def test_the_registry_lists_the_scoring_insight_and_risk_jobs() -> None:
    # when
    jobs = {job.name: (job.cron, job.task) for job in SCHEDULE}
    # then
    assert jobs == {
        "score-nightly": ("0 2 * * *", "patron.scoring.tasks.score_nightly"),
        "regrade-quarterly": ("0 3 1 1,4,7,10 *", "patron.scoring.tasks.regrade_quarterly"),
        "insights-fill": ("30 3 * * *", "patron.insight.tasks.fill_metrics"),
        "value-report-monthly": (
            "0 4 1 * *",
            "patron.insight.report_tasks.generate_monthly_report",
        ),
        "risk-detect": ("30 * * * *", "patron.risk.tasks.detect_risk"),
        "outbox-deliver": ("* * * * *", "patron.outbox.tasks.deliver_outbox"),
        "loyalty-accrue": ("15 * * * *", "patron.loyalty.tasks.accrue_points"),
        "loyalty-expire": ("10 0 * * *", "patron.loyalty.tasks.expire_points"),
        "loyalty-tiers": ("45 3 * * *", "patron.loyalty.tasks.evaluate_tiers"),
        "certification-reverify": (
            "0 9 * * *",
            "patron.certification.tasks.reverify_certifications",
        ),
        "marketing-nightly": ("50 3 * * *", "patron.marketing.tasks.marketing_nightly"),
        "service-sla-watch": ("* * * * *", "patron.service.tasks.sla_watch_task"),
        "service-mail-poll": ("* * * * *", "patron.service.tasks.mail_poll_task"),
        "logistics-exceptions": ("*/30 * * * *", "patron.aftersales.tasks.check_logistics"),
        "complaint-risk": ("5 * * * *", "patron.complaints.tasks.refresh_complaint_risk"),
        "marketing-campaigns": ("*/5 * * * *", "patron.marketing.tasks.run_campaigns"),
        "surveys-send": ("30 9 * * *", "patron.satisfaction.tasks.send_surveys"),
        "care-daily": ("0 9 * * *", "patron.care.tasks.care_daily"),
        "recommendations-refresh": ("30 3 * * *", "patron.recommend.tasks.refresh_recommendations"),
        "marketing-winback": ("0 10 * * *", "patron.marketing.tasks.run_winback"),
    }


def test_every_job_has_a_unique_name_and_points_at_a_task() -> None:
    # when
    names = [job.name for job in SCHEDULE]
    tasks = [job.resolve_task() for job in SCHEDULE]
    # then
    assert len(set(names)) == len(names)
    assert all(isinstance(task, Task) for task in tasks)


def test_the_daily_jobs_pass_the_slot_date_in_the_merchants_zone() -> None:
    # given: 02:00 on 20 November in Shanghai is still the 19th in UTC
    slot = datetime(2026, 11, 20, 2, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    # when
    arguments = [job.arguments(slot) for job in SCHEDULE]
    # then: risk detection reads up to the slot itself
    assert arguments == [
        {"as_of": "2026-11-20"},
        {"as_of": "2026-11-20"},
        {"as_of": "2026-11-20"},
        {"as_of": "2026-11-20"},
        {"as_of": "2026-11-20T02:00:00+08:00"},
        {},  # the outbox sends whatever is due
        {"as_of": "2026-11-20T02:00:00+08:00"},
        {"as_of": "2026-11-20"},
        {"as_of": "2026-11-20"},
        {"as_of": "2026-11-20T02:00:00+08:00"},
        {},  # marketing acts on what is there when it runs
        {},  # service-sla-watch: whatever is due
        {},  # service-mail-poll: whatever waits in the inbox
        {"as_of": "2026-11-20T02:00:00+08:00"},  # logistics-exceptions
        {"as_of": "2026-11-20T02:00:00+08:00"},  # complaint-risk
        {},  # marketing-campaigns: whatever is due when it runs
        {"as_of": "2026-11-20T02:00:00+08:00"},  # surveys-send
        {"as_of": "2026-11-20"},  # care-daily
        {"as_of": "2026-11-20"},  # recommendations-refresh
        {"as_of": "2026-11-20T02:00:00+08:00"},  # marketing-winback
    ]
    assert as_of_slot_date(slot) == {"as_of": "2026-11-20"}


def test_a_job_with_a_bad_cron_expression_cannot_be_declared() -> None:
    # when
    with pytest.raises(ValueError) as refused:
        PeriodicJob(
            name="broken",
            cron="every night",
            task="patron.jobs.tests.sample_tasks.record",
            arguments=as_of_slot_date,
            description="",
        )
    # then
    assert str(refused.value) == "cron expression 'every night' must have five fields"


def test_a_path_that_is_not_a_task_is_refused_when_resolved() -> None:
    # given
    job = PeriodicJob(
        name="not-a-task",
        cron="0 2 * * *",
        task="patron.jobs.tests.sample_tasks.not_a_task",
        arguments=as_of_slot_date,
        description="",
    )
    # when
    with pytest.raises(TypeError) as refused:
        job.resolve_task()
    # then
    assert str(refused.value) == (
        "job 'not-a-task': patron.jobs.tests.sample_tasks.not_a_task is not a django.tasks task"
    )


def test_an_unknown_job_name_is_not_found_and_the_known_ones_are_named() -> None:
    # when
    with pytest.raises(NotFound) as missing:
        job_get("score-hourly")
    # then
    assert missing.value.message == (
        "no periodic job named 'score-hourly'; the jobs are: score-nightly, regrade-quarterly, "
        "insights-fill, value-report-monthly, risk-detect, outbox-deliver, loyalty-accrue, "
        "loyalty-expire, loyalty-tiers, certification-reverify, marketing-nightly, "
        "service-sla-watch, service-mail-poll, logistics-exceptions, complaint-risk, marketing-campaigns"
        ", surveys-send, care-daily, recommendations-refresh, marketing-winback"
    )
