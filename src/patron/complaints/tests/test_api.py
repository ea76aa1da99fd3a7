"""The complaints API as staff and the customer's link use it: the permission matrix (role ×
endpoint), each step, 422 naming the field, 409 for a step the stage does not allow (nothing
changed), the customer's answer once, the at-risk list, and the OpenAPI paths."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from patron.account.models import User
from patron.account.roles import Role
from patron.account.services import token_create
from patron.complaints import api, rules, tokens
from patron.complaints.models import Complaint, ComplaintEvent
from patron.complaints.tests.conftest import walk
from patron.conftest import ALL_ROLES, NO_ROLE, make_user
from patron.service.models import Team

pytestmark = pytest.mark.django_db

EVERY_ROLE = [*ALL_ROLES, NO_ROLE]
VIEWERS = {
    Role.ADMINISTRATOR,
    Role.OPERATIONS_MANAGER,
    Role.SERVICE_AGENT,
    Role.AUDITOR,
    Role.ANALYST,
}
HANDLERS = {Role.ADMINISTRATOR, Role.OPERATIONS_MANAGER, Role.SERVICE_AGENT}


def _client(user: User) -> Client:
    return Client(
        headers={"Authorization": f"Bearer {token_create(user=user)}", "Accept-Language": "en"}
    )


def _post(client: Client, url: str, body: dict[str, Any] | None = None) -> Any:
    return client.post(url, body or {}, content_type="application/json")


@pytest.fixture
def staff(agent: User) -> Client:
    return _client(agent)


# ---------------------------------------------------------------------- permissions


@pytest.mark.parametrize("role", EVERY_ROLE)
@pytest.mark.parametrize(
    ("method", "path", "needs"),
    [
        ("get", "/api/complaints", "view"),
        ("get", "/api/complaints/stats", "view"),
        ("get", "/api/complaints/at-risk", "view"),
        ("get", "/api/complaints/{id}", "view"),
        ("post", "/api/complaints/{id}/assign", "handle"),
        ("post", "/api/complaints/{id}/withdraw", "handle"),
        ("post", "/api/complaints/{id}/answer-link", "handle"),
    ],
)
def test_the_permission_matrix(
    role: str, method: str, path: str, needs: str, complaint: Complaint, team: Team
) -> None:
    # given
    client = _client(make_user(role))
    body = {"team_id": team.pk} if path.endswith("assign") else {"reason": "客户撤回"}
    url = path.replace("{id}", str(complaint.pk))
    # when
    response = _post(client, url, body) if method == "post" else client.get(url)
    # then
    allowed = role in (VIEWERS if needs == "view" else HANDLERS)
    if path.endswith("answer-link") and allowed:
        assert response.status_code == 409  # allowed, but no proposal is waiting
    else:
        assert response.status_code == (200 if allowed else 403), response.json()
    if not allowed:
        assert response.json()["code"] == "permission_denied"
        complaint.refresh_from_db()
        assert complaint.stage == "recorded"


@pytest.mark.parametrize("role", EVERY_ROLE)
def test_filing_is_for_those_who_handle_complaints(role: str, customer: Any) -> None:
    # when
    response = _post(
        _client(make_user(role)),
        "/api/complaints",
        {"customer_id": customer.pk, "channel": "phone", "subject": "投诉", "matter": "坏了"},
    )
    # then
    assert response.status_code == (201 if role in HANDLERS else 403), response.json()
    assert Complaint.objects.count() == (1 if role in HANDLERS else 0)


# ---------------------------------------------------------------------- the steps


def test_each_step_through_the_api_with_the_timeline_and_durations(
    staff: Client, complaint: Complaint, team: Team
) -> None:
    # when
    url = f"/api/complaints/{complaint.pk}"
    assigned = _post(staff, f"{url}/assign", {"team_id": team.pk, "note": "质量问题"})
    proposed = _post(staff, f"{url}/propose", {"findings": "漏检", "resolution": "退款"})
    rejected = _post(staff, f"{url}/reject", {"reason": "不够"})
    again = _post(staff, f"{url}/propose", {"findings": "漏检", "resolution": "退款加补偿"})
    link = _post(staff, f"{url}/answer-link")
    accepted = _post(staff, f"{url}/accept", {"note": "电话确认"})
    scheduled = _post(
        staff, f"{url}/schedule-follow-up", {"follow_up_at": "2099-01-02T10:00:00+08:00"}
    )
    # then
    assert [r.status_code for r in (assigned, proposed, rejected, again, link, accepted)] == [
        200
    ] * 6
    assert scheduled.status_code == 422  # more than a year ahead
    assert "follow_up_at" in scheduled.json()["message"]
    body = accepted.json()
    assert (body["stage"], body["team"], body["proposals"], body["rejections"]) == (
        "accepted",
        "质量与投诉 Quality",
        2,
        1,
    )
    assert [e["action"] for e in body["events"]] == [
        "record",
        "assign",
        "propose",
        "reject",
        "propose",
        "accept",
    ]
    assert [e["round"] for e in body["events"]] == [1, 1, 1, 1, 2, 2]
    assert list(body["hours_per_stage"]) == [
        "recorded",
        "investigating",
        "resolution_proposed",
        "accepted",
    ]
    assert [s["stage"] for s in body["spans"]] == [
        "recorded",
        "investigating",
        "resolution_proposed",
        "investigating",
        "resolution_proposed",
        "accepted",
    ]
    assert body["allowed_actions"] == ["schedule_follow_up"]
    assert "/complaint/" in link.json()["link"]


def test_a_blank_field_is_422_naming_it_and_nothing_changes(
    staff: Client, complaint: Complaint, agent: User, team: Team
) -> None:
    # given
    walk(complaint, agent, team, to="investigating")
    # when
    response = _post(
        staff, f"/api/complaints/{complaint.pk}/propose", {"findings": "   ", "resolution": "退款"}
    )
    missing = _post(staff, f"/api/complaints/{complaint.pk}/propose", {"findings": "漏检"})
    # then
    assert response.status_code == 422
    assert response.json()["message"] == "invalid request: body.body.findings"
    assert missing.status_code == 422
    assert missing.json()["message"] == "invalid request: body.body.resolution"
    complaint.refresh_from_db()
    assert (complaint.stage, complaint.proposals) == ("investigating", 0)


def test_a_step_the_stage_does_not_allow_is_409_and_nothing_changes(
    staff: Client, complaint: Complaint
) -> None:
    # when
    response = _post(staff, f"/api/complaints/{complaint.pk}/close", {"outcome": "已处理"})
    # then
    assert response.status_code == 409
    assert response.json() == {
        "code": "conflict",
        "message": "the complaint is recorded: cannot close; allowed: assign, withdraw",
        "details": None,
    }
    complaint.refresh_from_db()
    assert complaint.stage == "recorded"
    assert ComplaintEvent.objects.filter(complaint=complaint).count() == 1


def test_unknown_complaints_and_teams_are_404(staff: Client, complaint: Complaint) -> None:
    assert staff.get("/api/complaints/999999").status_code == 404
    unknown_team = _post(staff, f"/api/complaints/{complaint.pk}/assign", {"team_id": 999999})
    assert unknown_team.status_code == 404
    assert unknown_team.json()["message"] == "team 999999 not found"


def test_the_list_filters_by_stage_and_overdue(
    staff: Client, complaint: Complaint, agent: User, team: Team, customer: Any
) -> None:
    # given: one complaint investigating since 2026-11-02 (overdue), one just recorded today
    walk(complaint, agent, team, to="investigating")
    from django.utils import timezone

    from patron.complaints.services import complaint_record_from_ticket
    from patron.complaints.tests.conftest import make_ticket

    fresh = complaint_record_from_ticket(
        ticket_id=make_ticket(customer, opened_at=timezone.now()).pk
    )
    assert fresh is not None
    # when
    every = staff.get("/api/complaints").json()
    investigating = staff.get("/api/complaints?stage=investigating").json()
    overdue = staff.get("/api/complaints?overdue=true").json()
    # then
    assert every["count"] == 2
    assert [row["id"] for row in investigating["items"]] == [complaint.pk]
    assert [row["id"] for row in overdue["items"]] == [complaint.pk]
    row = overdue["items"][0]
    assert (row["is_overdue"], row["overdue_step"]) == (True, "propose a resolution")


# ---------------------------------------------------------------------- the customer's link


def test_the_customer_answers_through_the_link_once_without_logging_in(
    complaint: Complaint, agent: User, team: Team
) -> None:
    # given
    walk(complaint, agent, team, to="resolution_proposed")
    token = tokens.answer_token(complaint.pk, 1)
    anonymous = Client()
    # when
    seen = anonymous.get(f"/api/complaints/answers/{token}")
    first = _post(anonymous, f"/api/complaints/answers/{token}/accept", {"comment": "好的"})
    second = _post(anonymous, f"/api/complaints/answers/{token}/reject", {"reason": "反悔"})
    # then
    assert seen.status_code == 200
    assert (seen.json()["resolution"], seen.json()["is_answerable"]) == ("全额退款并补发新品", True)
    assert first.status_code == 200
    assert (first.json()["stage"], first.json()["is_answerable"]) == ("accepted", False)
    assert second.status_code == 409
    complaint.refresh_from_db()
    assert (complaint.stage, complaint.customer_answer) == ("accepted", "好的")


def test_a_bad_link_is_404_and_a_rejection_needs_a_reason(
    complaint: Complaint, agent: User, team: Team
) -> None:
    # given
    walk(complaint, agent, team, to="resolution_proposed")
    token = tokens.answer_token(complaint.pk, 1)
    # when
    bad = Client().get("/api/complaints/answers/not-a-token")
    blank = _post(Client(), f"/api/complaints/answers/{token}/reject", {"reason": ""})
    # then
    assert bad.status_code == 404
    assert blank.status_code == 422
    assert blank.json()["message"] == "invalid request: body.body.reason"


# ---------------------------------------------------------------------- schema


def test_the_openapi_paths_name_complaints() -> None:
    # when
    paths = set(Client().get("/api/openapi.json").json()["paths"])
    # then
    assert {
        "/api/complaints",
        "/api/complaints/at-risk",
        "/api/complaints/{complaint_id}",
        "/api/complaints/{complaint_id}/propose",
        "/api/complaints/answers/{token}/accept",
    } <= paths


def test_the_api_enums_match_the_rules() -> None:
    assert [s.value for s in api.ComplaintStage] == list(rules.STAGES)
    assert [s.value for s in api.ComplaintSeverity] == [s.value for s in rules.Severity]
