"""`patron worker`, `patron scheduler` and `patron jobs` as operators use them."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from django.tasks import task_backends
from django_tasks_db.models import DBTaskResult
from typer.testing import CliRunner

from patron.cli import app
from patron.errors import ValidationFailed
from patron.jobs.models import ScheduledSlot

from .conftest import Clock

pytestmark = pytest.mark.django_db
runner = CliRunner()


def _flat(text: str) -> str:
    """Rich wraps long lines at 80 columns in tests; compare words."""
    return " ".join(text.split())


@pytest.mark.parametrize(
    ("command", "options"),
    [
        (["worker"], ["--queue", "--interval", "--batch", "--max-tasks", "--worker-id"]),
        (["scheduler"], ["--once"]),
        (["jobs", "list"], ["--json"]),
        (["jobs", "run"], ["--as-of", "--now"]),
    ],
)
def test_every_jobs_command_has_help(command: list[str], options: list[str]) -> None:
    # when
    result = runner.invoke(app, [*command, "--help"])
    # then
    assert result.exit_code == 0, result.output
    assert all(option in result.stdout for option in options)


def test_scheduler_once_twice_enqueues_each_due_slot_once(clock: Clock) -> None:
    # when
    first = runner.invoke(app, ["scheduler", "--once"])
    second = runner.invoke(app, ["scheduler", "--once"])
    # then
    assert (first.exit_code, second.exit_code) == (0, 0), first.output + second.output
    assert "enqueued score-nightly for 2026-11-20 02:00 CST" in _flat(first.stderr)
    assert "enqueued regrade-quarterly for 2026-10-01 03:00 CST" in _flat(first.stderr)
    assert second.stderr.strip() == "nothing due"
    assert sorted(ScheduledSlot.objects.values_list("job", flat=True)) == [
        "care-daily",
        "certification-reverify",
        "complaint-risk",
        "insights-fill",
        "logistics-exceptions",
        "loyalty-accrue",
        "loyalty-expire",
        "loyalty-tiers",
        "marketing-campaigns",
        "marketing-nightly",
        "marketing-winback",
        "outbox-deliver",
        "recommendations-refresh",
        "regrade-quarterly",
        "risk-detect",
        "score-nightly",
        "service-mail-poll",
        "service-sla-watch",
        "surveys-send",
        "value-report-monthly",
    ]
    assert DBTaskResult.objects.count() == 20


def test_jobs_list_shows_each_job_with_its_next_due_time_last_slot_and_task_status(
    clock: Clock,
) -> None:
    # given
    runner.invoke(app, ["scheduler", "--once"])
    # when
    result = runner.invoke(app, ["jobs", "list", "--json"])
    table = runner.invoke(app, ["jobs", "list"])
    # then
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    assert [
        (job["name"], job["next_due"], job["last_slot"], job["last_task_status"]) for job in listed
    ] == [
        ("score-nightly", "2026-11-21T02:00:00+08:00", "2026-11-20T02:00:00+08:00", "READY"),
        ("regrade-quarterly", "2027-01-01T03:00:00+08:00", "2026-10-01T03:00:00+08:00", "READY"),
        ("insights-fill", "2026-11-21T03:30:00+08:00", "2026-11-20T03:30:00+08:00", "READY"),
        ("value-report-monthly", "2026-12-01T04:00:00+08:00", "2026-11-01T04:00:00+08:00", "READY"),
        ("risk-detect", "2026-11-20T10:30:00+08:00", "2026-11-20T09:30:00+08:00", "READY"),
        ("outbox-deliver", "2026-11-20T10:01:00+08:00", "2026-11-20T10:00:00+08:00", "READY"),
        ("loyalty-accrue", "2026-11-20T10:15:00+08:00", "2026-11-20T09:15:00+08:00", "READY"),
        ("loyalty-expire", "2026-11-21T00:10:00+08:00", "2026-11-20T00:10:00+08:00", "READY"),
        ("loyalty-tiers", "2026-11-21T03:45:00+08:00", "2026-11-20T03:45:00+08:00", "READY"),
        (
            "certification-reverify",
            "2026-11-21T09:00:00+08:00",
            "2026-11-20T09:00:00+08:00",
            "READY",
        ),
        ("marketing-nightly", "2026-11-21T03:50:00+08:00", "2026-11-20T03:50:00+08:00", "READY"),
        ("service-sla-watch", "2026-11-20T10:01:00+08:00", "2026-11-20T10:00:00+08:00", "READY"),
        ("service-mail-poll", "2026-11-20T10:01:00+08:00", "2026-11-20T10:00:00+08:00", "READY"),
        (
            "logistics-exceptions",
            "2026-11-20T10:30:00+08:00",
            "2026-11-20T10:00:00+08:00",
            "READY",
        ),
        ("complaint-risk", "2026-11-20T10:05:00+08:00", "2026-11-20T09:05:00+08:00", "READY"),
        ("marketing-campaigns", "2026-11-20T10:05:00+08:00", "2026-11-20T10:00:00+08:00", "READY"),
        ("surveys-send", "2026-11-21T09:30:00+08:00", "2026-11-20T09:30:00+08:00", "READY"),
        ("care-daily", "2026-11-21T09:00:00+08:00", "2026-11-20T09:00:00+08:00", "READY"),
        (
            "recommendations-refresh",
            "2026-11-21T03:30:00+08:00",
            "2026-11-20T03:30:00+08:00",
            "READY",
        ),
        ("marketing-winback", "2026-11-21T10:00:00+08:00", "2026-11-20T10:00:00+08:00", "READY"),
    ]
    assert listed[0]["last_task_result_id"] == str(
        DBTaskResult.objects.get(task_path__endswith="score_nightly").id
    )
    assert table.exit_code == 0
    assert "score-nightly" in table.stdout and "regrade-quarterly" in table.stdout


def test_jobs_run_now_runs_the_task_here_and_prints_its_result(
    clock: Clock, scoring_calls: list[dict[str, Any]]
) -> None:
    # when
    result = runner.invoke(app, ["jobs", "run", "score-nightly", "--as-of", "2026-11-15", "--now"])
    # then
    assert result.exit_code == 0, result.output
    assert scoring_calls == [{"as_of": date(2026, 11, 15)}]
    assert json.loads(result.stdout.splitlines()[-1]) == {
        "score_run": 41,
        "as_of": "2026-11-15",
        "status": "completed",
        "customers": 1200,
    }
    assert DBTaskResult.objects.count() == 0
    assert ScheduledSlot.objects.count() == 0


def test_jobs_run_now_regrades_as_of_today_by_default(
    clock: Clock, scoring_calls: list[dict[str, Any]]
) -> None:
    # when: today is 20 November in Shanghai
    result = runner.invoke(app, ["jobs", "run", "regrade-quarterly", "--now"])
    # then
    assert result.exit_code == 0, result.output
    assert scoring_calls == [{"as_of": date(2026, 11, 20), "regrade": True}]


def test_jobs_run_now_reports_a_failure_with_its_traceback(
    clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given
    def no_orders(**kwargs: Any) -> None:
        raise ValidationFailed("no purchases before 2026-11-20")

    monkeypatch.setattr("patron.scoring.services.score_customers", no_orders)
    # when
    result = runner.invoke(app, ["jobs", "run", "score-nightly", "--now"])
    # then
    assert result.exit_code == 1
    assert "score-nightly {'as_of': '2026-11-20'} failed:" in _flat(result.stderr)
    assert "patron.errors.ValidationFailed: no purchases before 2026-11-20" in result.stderr


def test_jobs_run_enqueues_for_the_worker_and_prints_the_task_id(clock: Clock) -> None:
    # when
    result = runner.invoke(app, ["jobs", "run", "score-nightly", "--as-of", "2026-11-15"])
    # then
    assert result.exit_code == 0, result.output
    queued = DBTaskResult.objects.get()
    assert result.stdout.strip() == str(queued.id)
    assert (queued.task_path, queued.args_kwargs, queued.queue_name) == (
        "patron.scoring.tasks.score_nightly",
        {"args": [], "kwargs": {"as_of": "2026-11-15"}},
        "scoring",
    )


def test_jobs_run_refuses_an_unknown_job() -> None:
    # when
    result = runner.invoke(app, ["jobs", "run", "score-hourly"])
    # then
    assert result.exit_code == 2
    assert _flat(result.stderr) == (
        "no periodic job named 'score-hourly'; the jobs are: score-nightly, regrade-quarterly, "
        "insights-fill, value-report-monthly, risk-detect, outbox-deliver, loyalty-accrue, "
        "loyalty-expire, loyalty-tiers, certification-reverify, marketing-nightly, "
        "service-sla-watch, service-mail-poll, logistics-exceptions, complaint-risk, marketing-campaigns"
        ", surveys-send, care-daily, recommendations-refresh, marketing-winback"
    )
    assert DBTaskResult.objects.count() == 0


def test_worker_refuses_an_unknown_queue() -> None:
    # when
    result = runner.invoke(app, ["worker", "--queue", "default,reports", "--batch"])
    # then
    assert result.exit_code == 2
    assert _flat(result.stderr) == "unknown queue(s) reports; the queues are: default, scoring"


def test_worker_refuses_to_run_when_jobs_run_where_they_are_enqueued() -> None:
    # given: PATRON_TASKS_BACKEND=immediate
    task_backends["default"] = task_backends["immediate"]
    try:
        # when
        result = runner.invoke(app, ["worker", "--batch"])
    finally:
        del task_backends["default"]
    # then
    assert result.exit_code == 2
    assert "the task backend is not the database queue" in _flat(result.stderr)
