"""The satisfaction API: the customer's CSAT answer with no login, staff reads and writes, the
permission matrix (403 with nothing changed), and 422 naming the field."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from patron.account.models import User
from patron.account.roles import Role
from patron.account.services import token_create
from patron.conftest import ALL_ROLES, NO_ROLE, at, make_customer, make_user
from patron.customer.models import Customer
from patron.satisfaction import services
from patron.satisfaction.models import CsatRequest, ImprovementPlan, Suggestion, Survey
from patron.satisfaction.tests.conftest import make_ticket
from patron.service.models import Ticket

pytestmark = pytest.mark.django_db

EVERY_ROLE = [*ALL_ROLES, NO_ROLE]
SURVEY = {
    "title": "季度满意度调查",
    "opens_on": "2026-10-05",
    "schedule": "quarterly",
    "questions": [
        {"kind": "rating", "text": "总体满意度"},
        {"kind": "choice", "text": "渠道", "choices": ["App", "微信"], "is_required": False},
    ],
}


def _client(user: User) -> Client:
    return Client(
        headers={"Authorization": f"Bearer {token_create(user=user)}", "Accept-Language": "en"}
    )


def _post(client: Client, url: str, body: dict[str, Any] | None = None) -> Any:
    return client.post(url, body or {}, content_type="application/json")


@pytest.fixture
def customer() -> Customer:
    return make_customer(name="韩梅梅", email="han@example.com")


@pytest.fixture
def ticket(customer: Customer) -> Ticket:
    return make_ticket(customer, opened_at=at("2026-11-18 02:00"), solved_at=at("2026-11-18 03:00"))


@pytest.fixture
def asked(ticket: Ticket) -> CsatRequest:
    request = services.csat_request_for_ticket(ticket_id=ticket.pk)
    assert request is not None
    return request


def test_the_customer_answers_through_the_api_with_the_token_only(
    asked: CsatRequest, ticket: Ticket
) -> None:
    # when: no Authorization header at all
    response = _post(
        Client(), f"/api/satisfaction/csat/{asked.token}", {"score": 2, "comment": "慢"}
    )
    again = _post(Client(), f"/api/satisfaction/csat/{asked.token}", {"score": 5})
    # then
    assert response.status_code == 200, response.json()
    assert response.json()["score"] == 2 and response.json()["needs_follow_up"] is True
    ticket.refresh_from_db()
    asked.refresh_from_db()
    assert (ticket.satisfaction, asked.answer_channel) == (2, "api")
    assert again.status_code == 409
    assert again.json()["code"] == "conflict"


def test_a_bad_token_is_not_found_and_a_bad_score_names_the_field(asked: CsatRequest) -> None:
    # when
    forged = _post(Client(), "/api/satisfaction/csat/forged-token", {"score": 5})
    bad = _post(Client(), f"/api/satisfaction/csat/{asked.token}", {"score": 7})
    as_text = _post(Client(), f"/api/satisfaction/csat/{asked.token}", {"score": "5"})
    # then
    assert forged.status_code == 404
    assert bad.status_code == 422
    assert bad.json()["message"] == "invalid request: body.body.score"
    assert as_text.status_code == 422
    asked.refresh_from_db()
    assert asked.answered_at is None


def test_the_openapi_paths_name_csat(db: None) -> None:
    paths = Client().get("/api/openapi.json").json()["paths"]
    assert {
        "/api/satisfaction/csat",
        "/api/satisfaction/csat/summary",
        "/api/satisfaction/csat/{token}",
        "/api/satisfaction/service-kpis",
    } <= set(paths)
    assert paths["/api/satisfaction/csat/{token}"]["post"].get("security") in (None, [], [{}])


def test_staff_list_and_summarise_csat(asked: CsatRequest) -> None:
    # given
    services.csat_answer(token=asked.token, score=4)
    agent = _client(make_user(Role.SERVICE_AGENT))
    # when
    listed = agent.get("/api/satisfaction/csat?status=answered")
    summary = agent.get("/api/satisfaction/csat/summary")  # the last 30 days
    # then
    assert listed.status_code == 200
    assert [
        (row["id"], row["score"], row["needs_follow_up"]) for row in listed.json()["items"]
    ] == [(asked.pk, 4, False)]
    body = summary.json()
    assert (body["sent"], body["answered"], body["response_rate"], body["average"]) == (
        1,
        1,
        1.0,
        4.0,
    )
    assert body["distribution"] == {"1": 0, "2": 0, "3": 0, "4": 1, "5": 0}


def test_a_period_that_ends_before_it_starts_is_refused_naming_the_field(db: None) -> None:
    response = _client(make_user(Role.ANALYST)).get(
        "/api/satisfaction/service-kpis?start=2026-11-30&end=2026-11-01"
    )
    assert response.status_code == 422
    assert response.json()["message"] == "end: 2026-11-01 is before start 2026-11-30"
    assert response.json()["details"] == {"field": "end"}


def test_a_survey_through_the_api(db: None) -> None:
    # given
    manager = _client(make_user(Role.OPERATIONS_MANAGER))
    # when
    created = _post(manager, "/api/satisfaction/surveys", SURVEY)
    survey_id = created.json()["id"]
    scheduled = _post(manager, f"/api/satisfaction/surveys/{survey_id}/schedule")
    edited = manager.put(
        f"/api/satisfaction/surveys/{survey_id}", SURVEY, content_type="application/json"
    )
    results = manager.get(f"/api/satisfaction/surveys/{survey_id}/results")
    # then
    assert created.status_code == 201, created.json()
    assert [q["kind"] for q in created.json()["questions"]] == ["rating", "choice"]
    assert scheduled.status_code == 200
    assert (scheduled.json()["status"], scheduled.json()["next_run_on"]) == (
        "scheduled",
        "2026-10-05",
    )
    assert edited.status_code == 409
    assert results.json() == {
        "survey_id": survey_id,
        "run": None,
        "response_rate": None,
        "questions": [],
    }


def test_a_bad_survey_is_refused_naming_the_field(db: None) -> None:
    manager = _client(make_user(Role.OPERATIONS_MANAGER))
    one_option = {**SURVEY, "questions": [{"kind": "choice", "text": "渠道", "choices": ["App"]}]}
    no_questions = {**SURVEY, "questions": []}
    refused = _post(manager, "/api/satisfaction/surveys", one_option)
    malformed = _post(manager, "/api/satisfaction/surveys", no_questions)
    assert refused.status_code == 422
    assert (
        refused.json()["message"]
        == "questions[0].choices: a choice question needs two options or more"
    )
    assert malformed.status_code == 422
    assert malformed.json()["message"] == "invalid request: body.body.questions"
    assert not Survey.objects.exists()


def test_suggestions_and_a_plan_that_answers_them(customer: Customer, ticket: Ticket) -> None:
    # given
    manager_user = make_user(Role.OPERATIONS_MANAGER)
    manager = _client(manager_user)
    agent = _client(make_user(Role.SERVICE_AGENT))
    recorded = _post(
        agent,
        "/api/satisfaction/suggestions",
        {"text": "希望支持晚上配送", "channel": "phone", "customer_id": customer.pk},
    )
    suggestion_id = recorded.json()["id"]
    # when
    created = _post(
        manager,
        "/api/satisfaction/plans",
        {
            "title": "晚间配送",
            "problem": "上班族白天无法收货",
            "owner_id": manager_user.pk,
            "deadline": "2026-12-31",
            "links": [{"kind": "suggestion", "target_id": suggestion_id}],
        },
    )
    plan_id = created.json()["id"]
    linked = _post(
        manager,
        f"/api/satisfaction/plans/{plan_id}/links",
        {"kind": "ticket", "target_id": ticket.pk},
    )
    twice = _post(
        manager,
        f"/api/satisfaction/plans/{plan_id}/links",
        {"kind": "ticket", "target_id": ticket.pk},
    )
    started = _post(manager, f"/api/satisfaction/plans/{plan_id}/status", {"action": "start"})
    finish_without_outcome = _post(
        manager, f"/api/satisfaction/plans/{plan_id}/status", {"action": "finish"}
    )
    finished = _post(
        manager,
        f"/api/satisfaction/plans/{plan_id}/status",
        {"action": "finish", "outcome": "已与快递签约"},
    )
    # then
    assert recorded.status_code == 201 and recorded.json()["status"] == "new"
    assert created.status_code == 201, created.json()
    assert [(link["kind"], link["target_id"]) for link in created.json()["links"]] == [
        ("suggestion", suggestion_id)
    ]
    assert Suggestion.objects.get().status == "planned"
    assert linked.status_code == 201 and created.json()["is_overdue"] is False
    assert twice.status_code == 409
    assert started.json()["status"] == "in_progress"
    assert finish_without_outcome.status_code == 422
    assert finished.json()["status"] == "done" and finished.json()["outcome"] == "已与快递签约"
    listed = agent.get("/api/satisfaction/suggestions").json()
    assert listed["items"][0]["plan_ids"] == [plan_id]


def test_a_plan_owner_must_be_an_active_user(db: None) -> None:
    manager = _client(make_user(Role.OPERATIONS_MANAGER))
    refused = _post(
        manager,
        "/api/satisfaction/plans",
        {"title": "x", "problem": "y", "owner_id": 10**9, "deadline": "2026-12-31"},
    )
    assert refused.status_code == 422
    assert refused.json()["details"] == {"field": "owner_id"}
    assert not ImprovementPlan.objects.exists()


# ---------------------------------------------------------------------- permissions


def _survey_create(client: Client, ctx: dict[str, Any]) -> Any:
    return _post(client, "/api/satisfaction/surveys", SURVEY)


def _plan_create(client: Client, ctx: dict[str, Any]) -> Any:
    return _post(
        client,
        "/api/satisfaction/plans",
        {"title": "x", "problem": "y", "owner_id": ctx["owner"].pk, "deadline": "2026-12-31"},
    )


def _suggestion_review(client: Client, ctx: dict[str, Any]) -> Any:
    return client.patch(
        f"/api/satisfaction/suggestions/{ctx['suggestion'].pk}",
        {"action": "review"},
        content_type="application/json",
    )


def _unchanged(action: str, ctx: dict[str, Any]) -> bool:
    if action == "create_survey":
        return not Survey.objects.exists()
    if action == "create_plan":
        return not ImprovementPlan.objects.exists()
    if action == "review_suggestion":
        return Suggestion.objects.get().status == "new"
    return True


VIEWERS = {"administrator", "operations_manager", "service_agent", "auditor", "analyst"}
MANAGERS = {"administrator", "operations_manager"}
ACTIONS: dict[str, tuple[Callable[[Client, dict[str, Any]], Any], int, set[str]]] = {
    "list_csat": (lambda c, ctx: c.get("/api/satisfaction/csat"), 200, VIEWERS),
    "csat_summary": (lambda c, ctx: c.get("/api/satisfaction/csat/summary"), 200, VIEWERS),
    "kpis": (lambda c, ctx: c.get("/api/satisfaction/service-kpis"), 200, VIEWERS),
    "list_surveys": (lambda c, ctx: c.get("/api/satisfaction/surveys"), 200, VIEWERS),
    "list_plans": (lambda c, ctx: c.get("/api/satisfaction/plans"), 200, VIEWERS),
    "list_suggestions": (lambda c, ctx: c.get("/api/satisfaction/suggestions"), 200, VIEWERS),
    "create_survey": (_survey_create, 201, MANAGERS),
    "create_plan": (_plan_create, 201, MANAGERS),
    "review_suggestion": (_suggestion_review, 200, MANAGERS),
}


@pytest.mark.parametrize("role", EVERY_ROLE)
@pytest.mark.parametrize("action", list(ACTIONS))
def test_permission_matrix(action: str, role: str) -> None:
    # given
    call, success, allowed = ACTIONS[action]
    ctx = {
        "owner": make_user(Role.OPERATIONS_MANAGER),
        "suggestion": Suggestion.objects.create(
            channel="web", text="建议", created_at=at("2026-11-01 00:00")
        ),
    }
    client = _client(make_user(role))
    # when
    response = call(client, ctx)
    # then
    if role in allowed:
        assert response.status_code == success, response.json()
    else:
        assert response.status_code == 403
        assert response.json()["code"] == "permission_denied"
        assert _unchanged(action, ctx)
