"""The worker and the scheduler as real processes: running queued jobs, racing each other,
stopping cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.tasks import TaskResultStatus
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from patron.jobs.models import ScheduledSlot
from patron.jobs.rules import next_slot
from patron.jobs.schedule import SCHEDULE, PeriodicJob, merchant_zone
from patron.jobs.tests.sample_tasks import write_file

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _env() -> dict[str, str]:
    name = connection.settings_dict["NAME"]
    url = (
        f"postgres://postgres@127.0.0.1:5432/{name}"
        if connection.vendor == "postgresql"
        else f"sqlite:///{name}"
    )
    return {
        **os.environ,
        "DATABASE_URL": url,
        "PATRON_HOME": str(settings.HOME),
        "PATRON_TASKS_BACKEND": "database",
    }


def _patron(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "patron.cli", *args],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_worker_batch_runs_the_queued_jobs_and_exits(tmp_path: Path) -> None:
    # given
    target = tmp_path / "done.txt"
    queued = write_file.enqueue(path=str(target), text="工作完成")
    # when
    worker = _patron("worker", "--batch", "--queue", "default")
    _out, err = worker.communicate(timeout=120)
    # then
    assert worker.returncode == 0, err
    assert target.read_text(encoding="utf-8") == "工作完成"
    row = DBTaskResult.objects.get(id=queued.id)
    assert (row.status, row.return_value) == (TaskResultStatus.SUCCESSFUL, "工作完成")


def test_two_schedulers_started_together_enqueue_each_slot_once() -> None:
    # when
    started = timezone.now()
    first, second = _patron("scheduler", "--once"), _patron("scheduler", "--once")
    results = [process.communicate(timeout=120) for process in (first, second)]
    finished = timezone.now()
    # then
    assert (first.returncode, second.returncode) == (0, 0), results
    slots = list(ScheduledSlot.objects.values_list("job", "slot_time"))
    assert len(slots) == len(set(slots))
    assert {job for job, _slot in slots} == {job.name for job in SCHEDULE}
    for job in SCHEDULE:
        _assert_one_slot_per_due_time(
            job,
            [slot for name, slot in slots if name == job.name],
            started=started,
            finished=finished,
        )
    assert sorted(set(DBTaskResult.objects.values_list("task_path", flat=True))) == [
        "patron.aftersales.tasks.check_logistics",
        "patron.care.tasks.care_daily",
        "patron.certification.tasks.reverify_certifications",
        "patron.complaints.tasks.refresh_complaint_risk",
        "patron.insight.report_tasks.generate_monthly_report",
        "patron.insight.tasks.fill_metrics",
        "patron.loyalty.tasks.accrue_points",
        "patron.loyalty.tasks.evaluate_tiers",
        "patron.loyalty.tasks.expire_points",
        "patron.marketing.tasks.marketing_nightly",
        "patron.marketing.tasks.run_campaigns",
        "patron.marketing.tasks.run_winback",
        "patron.outbox.tasks.deliver_outbox",
        "patron.recommend.tasks.refresh_recommendations",
        "patron.risk.tasks.detect_risk",
        "patron.satisfaction.tasks.send_surveys",
        "patron.scoring.tasks.regrade_quarterly",
        "patron.scoring.tasks.score_nightly",
        "patron.service.tasks.mail_poll_task",
        "patron.service.tasks.sla_watch_task",
    ]
    assert sorted(ScheduledSlot.objects.values_list("task_result_id", flat=True)) == sorted(
        str(pk) for pk in DBTaskResult.objects.values_list("id", flat=True)
    )


def _assert_one_slot_per_due_time(
    job: PeriodicJob, slots: list[datetime], *, started: datetime, finished: datetime
) -> None:
    """A job has its latest due slot, and a later one only when the job fell due again while the
    schedulers ran: a scheduler that reads the clock after a minute turned sees a new slot (CI
    met this with the every-minute jobs). It never sees the same slot twice."""
    earliest, *later = sorted(slots)
    assert earliest <= finished, job.name
    previous = earliest
    for slot in later:
        assert slot == next_slot(cron=job.cron, zone=merchant_zone(), after=previous), job.name
        assert started < slot <= finished, job.name
        previous = slot


def test_the_scheduler_stops_cleanly_on_sigterm() -> None:
    # given: a scheduler that has made its first pass
    scheduler = _patron("scheduler")
    deadline = time.monotonic() + 60
    while ScheduledSlot.objects.count() < len(SCHEDULE) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert ScheduledSlot.objects.count() == len(SCHEDULE)
    # when
    scheduler.send_signal(signal.SIGTERM)
    _out, err = scheduler.communicate(timeout=10)
    # then
    assert scheduler.returncode == 0, err
    assert " ".join(err.split()).endswith("stopped (Terminated)")
