"""The refresh job and ``patron recommend refresh|evaluate``."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from patron.cli import app
from patron.recommend.models import Recommendation, RecommendationRun
from patron.recommend.tasks import refresh_recommendations
from patron.recommend.tests.conftest import AS_OF, TeaShop

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_task_refreshes_as_of_the_given_day(tea_shop: TeaShop) -> None:
    # when
    summary = refresh_recommendations.call(as_of="2026-03-01")
    # then: midnight in Shanghai, the data before it
    assert summary["as_of"] == "2026-03-01T00:00:00+08:00"
    assert summary["customers"] == 4
    assert Recommendation.objects.filter(customer=tea_shop.customers["丁"]).count() == 3


def test_the_cli_refreshes_and_evaluates(tea_shop: TeaShop) -> None:
    runner = CliRunner()
    # when
    refreshed = runner.invoke(app, ["recommend", "refresh", "--as-of", "2026-03-01", "--k", "2"])
    evaluated = runner.invoke(
        app, ["recommend", "evaluate", "--cut", "2026-03-01", "--end", "2026-04-01", "--k", "1"]
    )
    bad = runner.invoke(app, ["recommend", "refresh", "--similarity", "jaccard"])
    # then
    assert refreshed.exit_code == 0, refreshed.output
    assert json.loads(refreshed.stdout.strip().splitlines()[-1])["customers"] == 4
    assert RecommendationRun.objects.get().settings["k"] == 2
    assert evaluated.exit_code == 0, evaluated.output
    result = json.loads(evaluated.stdout.strip().splitlines()[-1])
    assert (result["customers"], result["hit_rate"]) == (1, 1.0)
    assert bad.exit_code == 2
    assert RecommendationRun.objects.count() == 1
    assert AS_OF.isoformat() == "2026-03-01T00:00:00+00:00"
