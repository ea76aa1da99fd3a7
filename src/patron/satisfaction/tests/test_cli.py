"""``patron satisfaction`` as operators use it: the survey job, the CSAT summary and the KPIs."""

from __future__ import annotations

import json
from datetime import date

import pytest
from typer.testing import CliRunner

from patron.account.roles import Role
from patron.cli import app
from patron.conftest import at, make_customer, make_user
from patron.satisfaction import services
from patron.satisfaction.tests.conftest import make_ticket

pytestmark = pytest.mark.django_db
runner = CliRunner()


def test_the_kpis_as_json(db: None) -> None:
    # given
    agent = make_user(Role.SERVICE_AGENT, username="agent-wu")
    make_ticket(
        make_customer(),
        assignee=agent,
        opened_at=at("2026-11-02 02:00"),
        first_response_at=at("2026-11-02 02:12"),
        solved_at=at("2026-11-02 04:00"),
        satisfaction=5,
    )
    # when
    result = runner.invoke(
        app, ["satisfaction", "kpis", "--start", "2026-11-01", "--end", "2026-11-30", "--json"]
    )
    table = runner.invoke(
        app, ["satisfaction", "kpis", "--start", "2026-11-01", "--end", "2026-11-30"]
    )
    # then
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert (body["start"], body["end"]) == ("2026-11-01", "2026-11-30")
    assert [(row["label"], row["handled"], row["first_response_median_minutes"], row["csat_average"])
            for row in body["agents"]] == [("agent-wu", 1, 12.0, 5.0)]  # fmt: skip
    assert table.exit_code == 0 and "per agent" in table.stderr


def test_the_csat_summary_and_a_bad_period(db: None) -> None:
    # when
    summary = runner.invoke(app, ["satisfaction", "csat-summary", "--json"])
    backwards = runner.invoke(
        app, ["satisfaction", "csat-summary", "--start", "2026-11-30", "--end", "2026-11-01"]
    )
    not_a_day = runner.invoke(app, ["satisfaction", "kpis", "--start", "30/11/2026"])
    # then
    assert summary.exit_code == 0, summary.output
    assert json.loads(summary.stdout)["sent"] == 0
    assert backwards.exit_code == 2
    assert "end: 2026-11-01 is before start 2026-11-30" in backwards.stderr
    assert not_a_day.exit_code == 2


def test_surveys_send_runs_the_job(db: None) -> None:
    # given
    manager = make_user(Role.OPERATIONS_MANAGER)
    make_customer(email="a@example.com")
    survey = services.survey_create(
        user=manager,
        data=services.SurveyData(
            title="调查", opens_on=date.today(), questions=[{"kind": "rating", "text": "满意度"}]
        ),
    )
    services.survey_schedule(user=manager, survey_id=survey.pk)
    # when
    first = runner.invoke(app, ["satisfaction", "surveys-send"])
    second = runner.invoke(app, ["satisfaction", "surveys-send"])
    # then
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout.splitlines()[-1])["invited"] == 1
    assert json.loads(second.stdout.splitlines()[-1])["invited"] == 0
