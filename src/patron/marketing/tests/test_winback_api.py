"""The win-back API: a programme created, changed, run and evaluated end to end; error
statuses (422, 404, 409); the role × endpoint matrix, anonymous callers included."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from patron.account.roles import Role
from patron.conftest import ALL_ROLES, make_customer, make_user
from patron.marketing import services
from patron.marketing.models import WinbackEnrolment, WinbackProgramme
from patron.marketing.tests.factories import consent, score

pytestmark = pytest.mark.django_db

JSON = "application/json"
BODY: dict[str, Any] = {
    "name": "流失挽回",
    "churn_threshold": 0.6,
    "holdout_share": 0.5,
    "seed": 5,
    "offer_kind": "points",
    "points": 300,
    "channels": ["sms"],
    "message_title": "好久不见",
    "message_text": "送您{points}积分，看看{top_category}",
    "frequency_cap_messages": None,
    "frequency_cap_days": None,
}
VIEW_ROLES = {"administrator", "operations_manager", "marketer", "analyst", "auditor"}
CHANGE_ROLES = {"administrator", "operations_manager", "marketer"}


def _client(role: str) -> Client:
    client = Client()
    client.force_login(make_user(role))
    return client


def test_create_change_run_and_evaluate_a_programme() -> None:
    # given
    for i in range(8):
        person = make_customer(phone=f"1370000{i:04d}")
        score(person, churn_probability=0.75)
        consent(person, "marketing", "sms", True, 10)
    client = _client(Role.MARKETER)

    # when
    created = client.post("/api/marketing/winback-programmes", BODY, JSON)
    programme_id = created.json()["id"]
    patched = client.patch(
        f"/api/marketing/winback-programmes/{programme_id}",
        {"window_days": 30, "high_value_offer_kind": None},
        JSON,
    )
    run = client.post(f"/api/marketing/winback-programmes/{programme_id}/run", {}, JSON)
    again = client.post(f"/api/marketing/winback-programmes/{programme_id}/run", {}, JSON)
    entries = client.get(
        f"/api/marketing/winback-programmes/{programme_id}/enrolments?group=treatment"
    )
    evaluation = client.get(f"/api/marketing/winback-programmes/{programme_id}/evaluation")
    runs = client.get(f"/api/marketing/winback-programmes/{programme_id}/runs")
    listed = client.get("/api/marketing/winback-programmes")

    # then
    assert created.status_code == 201, created.content
    assert created.json()["churn_threshold"] == 0.6 and created.json()["cool_down_days"] == 90
    assert (patched.status_code, patched.json()["window_days"]) == (200, 30)
    assert run.status_code == 200, run.content
    assert (run.json()["at_risk"], run.json()["entered"]) == (8, 8)
    assert run.json()["messaged"] == run.json()["treatment"] > 0
    assert (again.json()["entered"], again.json()["cool_down"]) == (0, 8)
    treated = entries.json()["items"]
    assert entries.json()["count"] == len(treated) == run.json()["treatment"]
    assert treated[0]["offer_reason"] == ("the programme has one offer for everyone → 300 points")
    assert treated[0]["outcome"] == "messaged" and treated[0]["basis"]["threshold"] == "0.600"
    body = evaluation.json()
    assert (body["matured"], body["in_window"], body["window_days"]) == (0, 8, 30)
    assert body["uplift"] is None
    assert [r["entered"] for r in runs.json()] == [0, 8]
    assert [(p["id"], p["entries"]) for p in listed.json()] == [(programme_id, 8)]


@pytest.mark.parametrize(
    ("change", "status", "message"),
    [
        ({"cool_down_days": 30}, 422, "winback.cool_down_days: at least the measurement window (window_days)"),
        ({"offer_kind": "coupon", "points": None}, 422, "winback.coupon_template_id: a coupon offer needs a coupon template"),
        ({"offer_kind": "coupon", "points": None, "coupon_template_id": 99999}, 404, "coupon template 99999 not found"),
        ({"churn_threshold": 1.2}, 422, None),
        ({"high_value_grades": ["vip"]}, 422, None),
    ],
)  # fmt: skip
def test_refusals(change: dict[str, Any], status: int, message: str | None) -> None:
    response = _client(Role.MARKETER).post(
        "/api/marketing/winback-programmes", {**BODY, **change}, JSON
    )
    assert response.status_code == status, response.content
    if message is not None:
        assert response.json()["message"] == message
    assert not WinbackProgramme.objects.exists()


def test_a_name_in_use_and_a_new_draw_are_conflicts() -> None:
    # given
    client = _client(Role.MARKETER)
    person = make_customer()
    score(person, churn_probability=0.9)
    programme_id = client.post("/api/marketing/winback-programmes", BODY, JSON).json()["id"]
    client.post(f"/api/marketing/winback-programmes/{programme_id}/run", {"placebo": True}, JSON)

    # when
    twice = client.post("/api/marketing/winback-programmes", BODY, JSON)
    reseeded = client.patch(f"/api/marketing/winback-programmes/{programme_id}", {"seed": 6}, JSON)
    paused = client.patch(
        f"/api/marketing/winback-programmes/{programme_id}", {"is_active": False}, JSON
    )
    run_paused = client.post(f"/api/marketing/winback-programmes/{programme_id}/run", {}, JSON)

    # then
    assert twice.status_code == 409
    assert reseeded.status_code == 409
    assert reseeded.json()["message"].startswith("winback.seed: fixed once customers are enrolled")
    assert paused.status_code == 200 and paused.json()["is_active"] is False
    assert run_paused.status_code == 409
    assert WinbackProgramme.objects.get().seed == 5
    assert WinbackEnrolment.objects.count() == 1


def test_unknown_programme_is_404() -> None:
    client = _client(Role.MARKETER)
    assert client.get("/api/marketing/winback-programmes/999").status_code == 404
    assert client.get("/api/marketing/winback-programmes/999/evaluation").status_code == 404
    assert client.post("/api/marketing/winback-programmes/999/run", {}, JSON).status_code == 404


# ---------------------------------------------------------------------- permissions


def _call(client: Client, action: str, ctx: dict[str, Any]) -> int:
    base = "/api/marketing/winback-programmes"
    pk = ctx["programme"]
    calls = {
        "list": lambda: client.get(base),
        "get": lambda: client.get(f"{base}/{pk}"),
        "create": lambda: client.post(base, {**BODY, "name": "另一个"}, JSON),
        "change": lambda: client.patch(f"{base}/{pk}", {"description": "x"}, JSON),
        "run": lambda: client.post(f"{base}/{pk}/run", {"placebo": True}, JSON),
        "runs": lambda: client.get(f"{base}/{pk}/runs"),
        "entries": lambda: client.get(f"{base}/{pk}/enrolments"),
        "evaluation": lambda: client.get(f"{base}/{pk}/evaluation"),
    }
    return int(calls[action]().status_code)


ALLOWED = {
    "list": VIEW_ROLES,
    "get": VIEW_ROLES,
    "create": CHANGE_ROLES,
    "change": CHANGE_ROLES,
    "run": CHANGE_ROLES,
    "runs": VIEW_ROLES,
    "entries": VIEW_ROLES,
    "evaluation": VIEW_ROLES,
}


@pytest.fixture
def ctx() -> dict[str, Any]:
    programme = services.winback_programme_create(
        user=make_user(Role.MARKETER),
        data={**BODY, "churn_threshold": Decimal("0.6"), "holdout_share": Decimal("0.5")},
    )
    return {"programme": programme.pk}


@pytest.mark.parametrize("role", [*ALL_ROLES, "no_role"])
@pytest.mark.parametrize("action", list(ALLOWED))
def test_role_matrix(role: str, action: str, ctx: dict[str, Any]) -> None:
    # when
    status = _call(_client(role), action, ctx)

    # then
    if role in ALLOWED[action]:
        assert status in (200, 201), (role, action, status)
    else:
        assert status == 403, (role, action, status)
        if action in ("create", "change", "run"):
            programme = WinbackProgramme.objects.get()
            assert (WinbackProgramme.objects.count(), programme.description) == (1, "")
            assert not programme.runs.exists()


@pytest.mark.parametrize("action", list(ALLOWED))
def test_anonymous_callers_get_401(action: str, ctx: dict[str, Any]) -> None:
    assert _call(Client(), action, ctx) == 401
