"""Filling the KPI tables through the product: incremental, resumable, idempotent; the seed
targets; and the API over them."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from django.test import Client

from patron.account.roles import Role
from patron.conftest import make_user
from patron.errors import PermissionDenied, ValidationFailed
from patron.insight import metrics, services
from patron.insight.models import FillState, MetricValue, Target

from .conftest import TODAY

# transaction=True: on PostgreSQL the sources are read through ADBC, its own connection
pytestmark = pytest.mark.django_db(transaction=True)


def _values(key: str) -> dict[date, float | None]:
    return dict(MetricValue.objects.filter(metric=key).values_list("period", "value"))


def test_a_fill_writes_every_month_and_a_second_fill_only_the_unsettled_ones(shop: None) -> None:
    # when
    first = services.metrics_fill(today=TODAY)
    second = services.metrics_fill(today=TODAY)
    # then
    assert first.months["average_order_value"] == 5  # January to May
    # April (returns may still come) and May (running) again; the others are final
    assert second.months["average_order_value"] == 2
    state = FillState.objects.get(metric="average_order_value")
    assert state.filled_through == date(2026, 3, 1)
    finals = MetricValue.objects.filter(metric="average_order_value", is_final=True)
    assert sorted(finals.values_list("period", flat=True)) == [
        date(2026, 1, 1),
        date(2026, 2, 1),
        date(2026, 3, 1),
    ]
    assert MetricValue.objects.filter(metric="average_order_value").count() == 5
    assert {"csat", "sla_attainment"} <= set(first.skipped)  # no tickets in this shop


def test_a_killed_fill_resumes_and_ends_as_a_clean_one(
    shop: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: the fill dies while computing the fourth metric
    real = metrics.compute
    calls: list[str] = []

    def dying(sources: Any, key: str, months: Any) -> Any:
        calls.append(key)
        if len(calls) == 4:
            raise KeyboardInterrupt("killed")
        return real(sources, key, months)

    monkeypatch.setattr(metrics, "compute", dying)
    with pytest.raises(KeyboardInterrupt):
        services.metrics_fill(today=TODAY)
    filled = set(FillState.objects.values_list("metric", flat=True))
    assert len(filled) == 3 and calls[3] not in filled
    # when it runs again
    monkeypatch.setattr(metrics, "compute", real)
    services.metrics_fill(today=TODAY)
    resumed = {key: _values(key) for key in metrics.METRICS}
    # then it equals a fill from scratch
    services.metrics_fill(today=TODAY, rebuild=True)
    assert {key: _values(key) for key in metrics.METRICS} == resumed


def test_the_seed_targets_start_from_the_last_complete_month(shop: None) -> None:
    services.metrics_fill(today=TODAY)
    seeded = {t.metric: t for t in Target.objects.filter(is_default=True)}
    assert "repurchase_rate" in seeded
    assert not {"csat", "return_rate"} & set(seeded)  # no tickets, no returns: seeded later
    target = seeded["repurchase_rate"]
    assert target.baseline_period == date(2026, 3, 1)  # the last final month
    assert target.baseline == _values("repurchase_rate")[date(2026, 3, 1)]
    assert target.deadline == date(2027, 5, 15) and target.target_change == 0.15
    services.metrics_fill(today=TODAY)
    assert Target.objects.filter(is_default=True, metric="repurchase_rate").count() == 1


def test_targets_are_set_by_managers_and_checked(shop: None) -> None:
    services.metrics_fill(today=TODAY)
    manager = make_user(Role.OPERATIONS_MANAGER)
    with pytest.raises(ValidationFailed, match="exactly one of target_value and target_change"):
        services.target_create(
            user=manager, metric="average_order_value", name="AOV", deadline=date(2027, 1, 1)
        )
    with pytest.raises(ValidationFailed, match="unknown metric 'gmv'"):
        services.target_create(
            user=manager, metric="gmv", name="GMV", deadline=date(2027, 1, 1), target_value=1
        )
    with pytest.raises(PermissionDenied):
        services.target_create(
            user=make_user(Role.MARKETER),
            metric="average_order_value",
            name="AOV",
            deadline=date(2027, 1, 1),
            target_value=200,
        )


def test_the_api_serves_metrics_targets_cohorts_and_drill_down(shop: None) -> None:
    # given
    services.metrics_fill(today=TODAY)
    manager = Client(headers={"accept-language": "en"})
    manager.force_login(make_user(Role.OPERATIONS_MANAGER))
    # when
    listed = manager.get("/api/insights/metrics").json()
    series = manager.get("/api/insights/metrics/average_order_value?start=2026-03&end=2026-04")
    created = manager.post(
        "/api/insights/targets",
        {
            "metric": "average_order_value",
            "name": "客单价 +10%",
            "deadline": "2026-12-31",
            "target_change": 0.1,
            "owner": "运营部",
        },
        content_type="application/json",
    )
    drilled = manager.get("/api/insights/metrics/new_customers/customers?month=2026-01")
    # then
    assert {m["key"] for m in listed} >= {"customers", "average_order_value", "repurchase_rate"}
    assert "csat" not in {m["key"] for m in listed}  # appears when tickets exist
    body = series.json()
    assert [p["period"] for p in body["points"]] == ["2026-03-01", "2026-04-01"]
    assert [p["period"] for p in body["previous"]] == ["2026-01-01", "2026-02-01"]
    assert created.status_code == 201, created.json()
    assert created.json()["status"] in ("on_track", "at_risk", "achieved")
    assert drilled.json()["count"] == 6
    assert manager.get("/api/insights/cohorts").status_code == 200
    assert manager.get("/api/insights/grade-movement").status_code == 200
    assert manager.get("/api/insights/metrics/gmv").status_code == 404
    bad = manager.get("/api/insights/metrics/customers?start=2026-13")
    assert bad.status_code == 422 and "start" in bad.json()["message"]
    agent = Client()
    agent.force_login(make_user(Role.SERVICE_AGENT))
    assert agent.get("/api/insights/metrics").status_code == 403
