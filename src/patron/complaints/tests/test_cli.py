"""``patron complaints list|risk-report|risk-refresh`` as operators use them."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from patron.account.models import User
from patron.cli import app
from patron.complaints.models import Complaint, ComplaintRiskRun
from patron.complaints.tests.conftest import walk
from patron.service.models import Team

pytestmark = pytest.mark.django_db
runner = CliRunner()


def test_list_prints_the_open_complaints_as_json(
    agent: User, complaint: Complaint, team: Team
) -> None:
    # given
    walk(complaint, agent, team, to="investigating")
    # when
    result = runner.invoke(app, ["complaints", "list", "--json"])
    table = runner.invoke(app, ["complaints", "list", "--overdue"])
    # then
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [(r["id"], r["stage"], r["team"], r["overdue_step"]) for r in rows] == [
        (complaint.pk, "investigating", "质量与投诉 Quality", "propose a resolution")
    ]
    assert table.exit_code == 0
    assert "investigating" in table.stderr


def test_an_unknown_stage_is_refused_naming_the_stages() -> None:
    # when
    result = runner.invoke(app, ["complaints", "list", "--stage", "lost"])
    # then
    assert result.exit_code == 2
    assert "stage: one of recorded, investigating" in " ".join(result.stderr.split())


def test_the_risk_report_as_json(complaint: Complaint) -> None:
    # when
    result = runner.invoke(app, ["complaints", "risk-report", "--json"])
    # then
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["method"], report["labelled_tickets"], report["complaints"]) == (
        "hand_weighted",
        1,
        1,
    )
    assert {"auc", "precision_at_k", "base_rate", "feature_auc", "weights"} <= set(report)


def test_risk_refresh_stores_a_run(complaint: Complaint) -> None:
    # when
    result = runner.invoke(app, ["complaints", "risk-refresh"])
    # then
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.splitlines()[-1])["run"] == ComplaintRiskRun.objects.get().pk
