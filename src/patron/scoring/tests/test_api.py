"""/api/models: score runs, grade policies (list, read, save, preview, apply) and the back-test
report; permissions and errors in the API's {code, message, details} shape."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from patron.account.roles import Role
from patron.audit.models import AuditEvent
from patron.conftest import NO_ROLE, make_user
from patron.scoring.models import CustomerScore, GradePolicy, ScoreRun
from patron.scoring.policies import policy_active
from patron.scoring.tests.test_views import (
    CDNOW_AS_OF,
    MAY_CHANGE_POLICY,
    MAY_VIEW_MODELS,
    cdnow_import,
    cdnow_score,
    make_run,
)

ROLES = [role.value for role in Role] + [NO_ROLE]
ADMINISTRATOR = Role.ADMINISTRATOR.value
OPERATIONS_MANAGER = Role.OPERATIONS_MANAGER.value
ANALYST = Role.ANALYST.value
SERVICE_AGENT = Role.SERVICE_AGENT.value

READS = {
    "GET /api/models/runs": "/api/models/runs",
    "GET /api/models/grade-policies": "/api/models/grade-policies",
    "GET /api/models/grade-policies/1": "/api/models/grade-policies/1",
}


def client_for(role: str) -> Client:
    client = Client(headers={"accept-language": "en"})
    client.force_login(make_user(role))
    return client


def post(client: Client, url: str, body: Any = None) -> Any:
    return client.post(url, body, content_type="application/json")


def stricter(rules: dict[str, Any]) -> dict[str, Any]:
    return {**rules, "thresholds": {**rules["thresholds"], "core_min": 0.95}}


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", list(READS))
def test_reads_need_view_models(role: str, action: str) -> None:
    # given
    make_run()

    # when
    response = client_for(role).get(READS[action])

    # then
    assert response.status_code == (200 if role in MAY_VIEW_MODELS else 403)
    if response.status_code == 403:
        assert response.json() == {
            "code": "permission_denied",
            "message": "you do not have the permission 'scoring.view_scorerun'",
            "details": None,
        }


@pytest.mark.parametrize("action", list(READS))
def test_anonymous_requests_are_refused(db: None, action: str) -> None:
    # when
    response = Client().get(READS[action])

    # then
    assert response.status_code == 401


@pytest.mark.django_db
def test_runs_list_the_latest_runs(lake: Path) -> None:
    # given
    run = make_run()

    # when
    body = client_for(ANALYST).get("/api/models/runs", {"limit": 5}).json()

    # then
    assert len(body) == 1
    listed = body[0]
    assert (listed["id"], listed["as_of"], listed["status"], listed["kind"]) == (
        run.pk,
        "2026-11-01",
        "completed",
        "nightly",
    )
    assert (listed["credit_model"], listed["churn_model"], listed["policy_version"]) == (
        "scorecard",
        "lightgbm",
        1,
    )
    assert listed["grade_counts"] == {"core": 3, "potential": 5, "ordinary": 12}
    assert listed["moves"] is None
    assert listed["pending_moves"]["matrix"] == [[2, 1, 0], [0, 4, 0], [0, 2, 11]]
    assert listed["seconds"] == [
        {"stage": "extract", "seconds": 0.25},
        {"stage": "features", "seconds": 1.65},
        {"stage": "grades", "seconds": 0.1},
    ]
    assert listed["total_seconds"] == 2.0


@pytest.mark.django_db
def test_runs_limit_is_validated() -> None:
    # when
    response = client_for(ANALYST).get("/api/models/runs", {"limit": 0})

    # then
    assert response.status_code == 422
    assert response.json()["code"] == "validation_failed"


@pytest.mark.django_db
def test_a_policy_reads_in_plain_words() -> None:
    # given
    policy_active()

    # when
    body = client_for(ANALYST).get("/api/models/grade-policies/1").json()

    # then
    assert (body["version"], body["is_active"], body["created_by"]) == (1, True, "patron")
    assert body["inputs"][0] == {
        "column": "clv_12m",
        "label": "12-month value",
        "weight": 0.4,
        "share": pytest.approx(0.4),
        "is_higher_better": True,
    }
    assert (body["core_min"], body["potential_min"], body["hysteresis"]) == (0.72, 0.6, 0.02)
    assert body["rules"] == [
        {
            "grade": "core",
            "column": "credit_score",
            "label": "credit score",
            "op": ">=",
            "value": 600.0,
        },
        {
            "grade": "core",
            "column": "p_alive",
            "label": "chance of still being active",
            "op": ">=",
            "value": 0.3,
        },
    ]
    assert body["rules_json"]["thresholds"] == {"core_min": 0.72, "potential_min": 0.6}


@pytest.mark.django_db
def test_an_unknown_policy_is_404() -> None:
    # when
    response = client_for(ANALYST).get("/api/models/grade-policies/7")

    # then
    assert response.status_code == 404
    assert response.json() == {
        "code": "not_found",
        "message": "grade policy v7 does not exist",
        "details": None,
    }


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_saving_a_policy_needs_the_permission(role: str) -> None:
    # given
    rules = stricter(dict(policy_active().rules))

    # when
    response = post(
        client_for(role), "/api/models/grade-policies", {"rules": rules, "note": "fewer core"}
    )

    # then
    if role in MAY_CHANGE_POLICY:
        assert response.status_code == 201
        body = response.json()
        assert (body["version"], body["is_active"], body["note"], body["core_min"]) == (
            2,
            False,
            "fewer core",
            0.95,
        )
        assert GradePolicy.objects.filter(version=2, is_active=False).exists()
    else:
        assert response.status_code == 403
        assert response.json()["code"] == "permission_denied"
        assert GradePolicy.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"inputs": {"shoe_size": 1.0}}, "unknown score column(s) shoe_size"),
        ({"thresholds": {"core_min": 0.4, "potential_min": 0.5}}, "thresholds.core_min"),
        ({"hysteresis": -1}, "hysteresis: must be a number ≥ 0"),
        ({"colour": "blue"}, "colour: unknown policy field"),
    ],
)
def test_invalid_rules_are_422_and_save_nothing(change: dict[str, Any], message: str) -> None:
    # given
    rules = {**policy_active().rules, **change}
    audit_before = AuditEvent.objects.count()

    # when
    response = post(client_for(ADMINISTRATOR), "/api/models/grade-policies", {"rules": rules})

    # then
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "validation_failed"
    assert message in body["message"]
    assert GradePolicy.objects.count() == 1
    assert AuditEvent.objects.count() == audit_before


@pytest.mark.django_db
def test_a_malformed_body_is_422() -> None:
    # when
    response = post(client_for(ADMINISTRATOR), "/api/models/grade-policies", {"rules": "strict"})

    # then
    assert response.status_code == 422
    assert response.json()["message"] == "invalid request: body.policy.rules"


@pytest.mark.django_db(transaction=True)  # the services read the scores through ADBC
def test_preview_and_apply_before_anything_is_scored_are_409() -> None:
    # given: nothing is scored (the pages read scores through their own connection)
    rules = dict(policy_active().rules)
    client = client_for(OPERATIONS_MANAGER)

    # when
    preview = post(client, "/api/models/grade-policies/preview", {"rules": rules})
    apply = post(client, "/api/models/grade-policies/1/apply")

    # then
    for response in (preview, apply):
        assert response.status_code == 409
        assert response.json() == {
            "code": "conflict",
            "message": "no customer has been scored yet: run `patron score` first",
            "details": None,
        }


@pytest.mark.django_db
def test_apply_refusals() -> None:
    # given
    policy_active()

    # when
    unknown = post(client_for(ADMINISTRATOR), "/api/models/grade-policies/5/apply")
    refused = post(client_for(ANALYST), "/api/models/grade-policies/1/apply")
    preview_refused = post(
        client_for(SERVICE_AGENT), "/api/models/grade-policies/preview", {"rules": {}}
    )

    # then
    assert (unknown.status_code, unknown.json()["code"]) == (404, "not_found")
    assert (refused.status_code, refused.json()["code"]) == (403, "permission_denied")
    assert (preview_refused.status_code, preview_refused.json()["code"]) == (
        403,
        "permission_denied",
    )


@pytest.mark.django_db(transaction=True)  # the report reads the orders through ADBC
@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ({"as_of": "2026-02-30"}, 422, "invalid request: query.as_of"),
        ({"as_of": "2026-02-01", "holdout_days": 0}, 422, "invalid request: query.holdout_days"),
        ({"as_of": "2026-02-01"}, 422, "there are no purchases to fit models on"),
    ],
)
def test_report_errors(lake: Path, query: dict[str, Any], status: int, message: str) -> None:
    # when
    response = client_for(ANALYST).get("/api/models/report", query)

    # then
    assert response.status_code == status
    assert message in response.json()["message"]


@pytest.mark.django_db
def test_report_needs_view_models() -> None:
    # when
    response = client_for(SERVICE_AGENT).get("/api/models/report", {"as_of": "2026-02-01"})

    # then
    assert response.status_code == 403


def test_openapi_lists_the_model_endpoints(db: None) -> None:
    # when
    paths = Client().get("/api/openapi.json").json()["paths"]

    # then
    assert set(paths["/api/models/grade-policies"]) == {"get", "post"}
    assert "post" in paths["/api/models/grade-policies/{version}/apply"]
    assert "post" in paths["/api/models/grade-policies/preview"]
    assert "get" in paths["/api/models/report"]
    assert "get" in paths["/api/models/runs"]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_preview_then_apply_on_cdnow(lake: Path) -> None:
    # given
    cdnow_score()
    client = client_for(OPERATIONS_MANAGER)
    rules = stricter(client.get("/api/models/grade-policies/1").json()["rules_json"])

    # when
    preview = post(client, "/api/models/grade-policies/preview", {"rules": rules})
    saved = post(client, "/api/models/grade-policies", {"rules": rules, "note": "fewer core"})
    applied = post(client, "/api/models/grade-policies/2/apply")

    # then
    assert preview.status_code == 200
    moves = preview.json()
    assert moves["down"] > 0 and moves["up"] == 0
    assert sum(map(sum, moves["matrix"])) == moves["unchanged"] + moves["down"] == 2357
    assert saved.status_code == 201
    assert applied.status_code == 200
    assert applied.json() == moves
    assert GradePolicy.objects.get(is_active=True).version == 2
    assert CustomerScore.objects.filter(grade="core").count() == moves["matrix"][0][0]
    runs = client.get("/api/models/runs").json()
    assert [run["kind"] for run in runs] == ["policy", "nightly"]
    assert runs[0]["moves"] == moves
    assert ScoreRun.objects.count() == 2


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_report_reproduces_the_paper_on_cdnow(lake: Path) -> None:
    # given
    cdnow_import()

    # when
    response = client_for(ANALYST).get(
        "/api/models/report", {"as_of": CDNOW_AS_OF.isoformat(), "holdout_days": "273"}
    )

    # then
    assert response.status_code == 200
    report = response.json()
    assert (report["as_of"], report["holdout_days"], report["customers"]) == (
        "1997-10-01",
        273,
        2357,
    )
    expected = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    for name, value in expected.items():
        assert report["bgnbd"][name] == pytest.approx(value, rel=5e-3), name
    assert report["bgnbd"]["log_likelihood"] == pytest.approx(-9582.4, abs=0.5)
    gamma = report["gamma_gamma"]
    assert (gamma["p"], gamma["q"], gamma["gamma"]) == pytest.approx((6.25, 3.74, 15.44), rel=5e-3)
    assert report["bgnbd"]["holdout"]["actual_repeat_transactions"] == 1882
    pareto = report["pareto_nbd"]
    assert (pareto["r"], pareto["alpha"], pareto["s"], pareto["beta"]) == pytest.approx(
        (0.553, 10.578, 0.606, 11.669), rel=1e-3
    )
    assert isinstance(pareto["closer_than_bgnbd"], bool)
    tracking = report["bgnbd"]["holdout"]["tracking"]
    assert len(tracking["days"]) == len(tracking["predicted_cumulative"]) == 55
    assert report["churn"]["calibration"][0].keys() == {
        "lower",
        "upper",
        "count",
        "mean_predicted",
        "observed_rate",
    }
    assert report["grade_stability"]["quarter_days"] == 91
    assert sum(map(sum, report["grade_stability"]["matrix"])) == 2357
    assert len(report["clusters"]) >= 2
    assert date.fromisoformat(report["as_of"]) == CDNOW_AS_OF
