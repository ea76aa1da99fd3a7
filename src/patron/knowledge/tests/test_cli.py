"""``patron knowledge``: seed, evaluate (--json) and suggest."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from patron.knowledge.cli import knowledge_app
from patron.knowledge.models import Article

pytestmark = pytest.mark.django_db(transaction=True)


def _last_json(output: str) -> dict:
    return json.loads(output.strip().splitlines()[-1])


def test_seed_evaluate_and_suggest() -> None:
    # given
    runner = CliRunner()

    # when
    seeded = runner.invoke(knowledge_app, ["seed"])
    again = runner.invoke(knowledge_app, ["seed"])
    summary = runner.invoke(knowledge_app, ["evaluate"])
    full = runner.invoke(knowledge_app, ["evaluate", "--json", "--threshold", "0.6"])
    suggested = runner.invoke(knowledge_app, ["suggest", "退款什么时候到账", "--k", "2"])

    # then
    assert seeded.exit_code == again.exit_code == 0, seeded.output
    assert _last_json(seeded.stdout) == {"created": 43, "existing": 0}
    assert _last_json(again.stdout) == {"created": 0, "existing": 43}
    assert Article.objects.count() == 43
    assert summary.exit_code == 0, summary.output
    figures = _last_json(summary.stdout)
    assert figures["pairs"] >= 115 and figures["hit_at_3"] >= 0.95
    assert "curve" not in figures
    report = _last_json(full.stdout)
    assert report["threshold"] == 0.6 and len(report["curve"]) == 19
    assert suggested.exit_code == 0, suggested.output
    answer = _last_json(suggested.stdout)
    assert [s["key"] for s in answer["suggestions"]][:1] == ["refund-time"]
    assert answer["auto_reply"] == "refund-time"
