"""The daily care job and ``patron care run|upcoming|policy``."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from typer.testing import CliRunner

from patron.care.cli import care_app
from patron.care.models import CareTouch
from patron.care.tasks import CARE_TASK_PATH, care_daily
from patron.care.tests import factories

pytestmark = pytest.mark.django_db


def _last_json(output: str) -> Any:
    return json.loads(output.strip().splitlines()[-1])


def test_the_job_runs_care_for_its_day_and_twice_is_once() -> None:
    # given
    customer = factories.customer("王小明", grade="core", birthday=date(1990, 3, 7))
    # when
    first = care_daily.call(as_of="2026-03-07")
    second = care_daily.call(as_of="2026-03-07")
    # then
    assert first["day"] == "2026-03-07"
    assert (first["birthday"]["messaged"], second["birthday"]["messaged"]) == (1, 0)
    assert second["birthday"]["already"] == 1
    assert CareTouch.objects.filter(customer=customer).count() == 1
    assert care_daily.module_path == CARE_TASK_PATH


def test_patron_care_run_for_a_date() -> None:
    factories.customer("王小明", grade="core", birthday=date(1990, 3, 7))
    result = CliRunner().invoke(care_app, ["run", "--date", "2026-03-07"])
    assert result.exit_code == 0, result.output
    summary = _last_json(result.stdout)
    assert (summary["day"], summary["birthday"]["messaged"]) == ("2026-03-07", 1)


def test_patron_care_run_refuses_a_day_beyond_the_calendar() -> None:
    result = CliRunner().invoke(care_app, ["run", "--date", "2100-01-01"])
    assert result.exit_code == 2
    assert "the holiday calendar covers 1901–2099" in result.output


def test_patron_care_upcoming() -> None:
    # given: one core customer (since 1 January: the first visit is overdue), born 24 September
    factories.customer("王小明", grade="core", birthday=date(1990, 9, 24))
    # when
    result = CliRunner().invoke(care_app, ["upcoming", "--start", "2026-09-20", "--days", "7"])
    # then: Mid-Autumn (25 September) greeted three days ahead
    assert result.exit_code == 0, result.output
    assert [
        (e["on"], e["kind"], e["grade"], e["holiday"], e["customers"])
        for e in _last_json(result.stdout)
    ] == [
        ("2026-09-20", "visit", "core", "", 1),
        ("2026-09-22", "holiday", "core", "mid_autumn", 1),
        ("2026-09-24", "birthday", "core", "", 1),
    ]


def test_patron_care_policy() -> None:
    result = CliRunner().invoke(care_app, ["policy"])
    assert result.exit_code == 0, result.output
    rows = _last_json(result.stdout)
    assert [(r["grade"], r["visit_interval_days"]) for r in rows] == [
        ("core", 90),
        ("potential", None),
        ("ordinary", None),
    ]
