"""The loyalty API as staff and integrations use it: a customer's points and tier, the ledger,
redemptions and adjustments, tiers and the policy — their errors, and who may do what (a role ×
endpoint matrix, written out so that a change of rights shows up as a failing line here)."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from patron.account.models import User
from patron.account.roles import Role
from patron.account.services import token_create
from patron.conftest import ALL_ROLES, NO_ROLE, make_customer, make_order, make_user
from patron.customer.models import Customer
from patron.loyalty import services, tiers
from patron.loyalty.models import PointsAccount, PointsEntry
from patron.scoring.models import CustomerScore, ScoreRun

pytestmark = pytest.mark.django_db

ADMINISTRATOR = Role.ADMINISTRATOR.value
OPERATIONS_MANAGER = Role.OPERATIONS_MANAGER.value
SERVICE_AGENT = Role.SERVICE_AGENT.value
MARKETER = Role.MARKETER.value
AUDITOR = Role.AUDITOR.value
ANALYST = Role.ANALYST.value

VIEW = {ADMINISTRATOR, OPERATIONS_MANAGER, SERVICE_AGENT, MARKETER, AUDITOR, ANALYST}
CHANGE_POINTS = {ADMINISTRATOR, OPERATIONS_MANAGER, SERVICE_AGENT}
CHANGE_POLICY = {ADMINISTRATOR, OPERATIONS_MANAGER, MARKETER}
ROLES = [*ALL_ROLES, NO_ROLE]
_keys = itertools.count(1)

# action: (method, url for a customer id, body, status when allowed, roles allowed)
ENDPOINTS: dict[str, tuple[str, Any, Any, int, set[str]]] = {
    "GET points": ("get", lambda pk: f"/api/customers/{pk}/points", None, 200, VIEW),
    "GET ledger": ("get", lambda pk: f"/api/customers/{pk}/points/ledger", None, 200, VIEW),
    "POST redeem": (
        "post",
        lambda pk: f"/api/customers/{pk}/points/redeem",
        lambda: {"points": 10, "reason": "兑换", "request_key": f"matrix-{next(_keys)}"},
        201,
        CHANGE_POINTS,
    ),
    "POST adjust": (
        "post",
        lambda pk: f"/api/customers/{pk}/points/adjust",
        lambda: {"points": 5, "reason": "补偿"},
        201,
        CHANGE_POINTS,
    ),
    "GET tiers": ("get", lambda _: "/api/loyalty/tiers", None, 200, VIEW),
    "PATCH tier": (
        "patch",
        lambda _: "/api/loyalty/tiers/gold",
        lambda: {"grace_days": 45},
        200,
        CHANGE_POLICY,
    ),
    "GET policy": ("get", lambda _: "/api/loyalty/policy", None, 200, VIEW),
    "PUT policy": (
        "put",
        lambda _: "/api/loyalty/policy",
        lambda: {
            "points_per_cny": 1.0,
            "review_points": 10,
            "review_min_length": 15,
            "expiry_months": 24,
            "tier_window_months": 12,
        },
        200,
        CHANGE_POLICY,
    ),
}


def _client(user: User) -> Client:
    return Client(headers={"Authorization": f"Bearer {token_create(user=user)}"})


def _call(client: Client, method: str, url: str, body: Any = None) -> Any:
    if body is None:
        return getattr(client, method)(url)
    return getattr(client, method)(url, body, content_type="application/json")


@pytest.fixture
def customer() -> Customer:
    customer = make_customer(name="张三")
    services.points_adjust(
        user=make_user(Role.OPERATIONS_MANAGER), customer_id=customer.pk, points=1000, reason="x"
    )
    return customer


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", list(ENDPOINTS))
def test_who_may_do_what(customer: Customer, role: str, action: str) -> None:
    # given
    method, url, body, status, allowed = ENDPOINTS[action]
    client = _client(make_user(role))
    entries = PointsEntry.objects.count()
    # when
    response = _call(client, method, url(customer.pk), body() if body else None)
    # then
    assert response.status_code == (status if role in allowed else 403), response.content
    if role not in allowed:
        assert response.json()["code"] == "permission_denied"
        assert PointsEntry.objects.count() == entries


@pytest.mark.parametrize("action", list(ENDPOINTS))
def test_anonymous_requests_are_refused(customer: Customer, action: str) -> None:
    method, url, body, _, _ = ENDPOINTS[action]
    assert _call(Client(), method, url(customer.pk), body() if body else None).status_code == 401


# ---------------------------------------------------------------------- points


@pytest.fixture
def agent() -> Client:
    return _client(make_user(Role.SERVICE_AGENT, username="agent-chen"))


@pytest.fixture
def member() -> Customer:
    """王芳: 2,300.00 paid in the last two months (silver by spend), a potential customer;
    points accrued and tiers evaluated today."""
    customer = make_customer(name="王芳")
    now = timezone.now()
    for n, (days, total) in enumerate(((60, "1500.00"), (30, "800.00"))):
        when = now - timedelta(days=days)
        make_order(customer, external_id=f"W-{n}", placed_at=when, paid_at=when, total=total)
    run = ScoreRun.objects.create(
        as_of=timezone.localdate(), status="completed", started_at=timezone.now()
    )
    CustomerScore.objects.create(customer=customer, run=run, as_of=run.as_of, grade="potential")
    services.points_accrue()
    tiers.tiers_evaluate()
    return customer


def test_a_customer_s_points_and_tier_at_a_glance(member: Customer, agent: Client) -> None:
    # when
    body = agent.get(f"/api/customers/{member.pk}/points").json()
    # then
    assert body["balance"] == 2300
    assert body["tier"]["code"] == "silver" and body["tier"]["name"] == "银卡"
    assert body["tier_since"] == timezone.localdate().isoformat()
    assert body["tier_keeps_until"] is None
    assert body["next_tier"]["code"] == "gold" and body["next_tier_needs"] == "any"
    assert (body["spend"], body["grade"], body["spend_window_months"]) == (
        "2300.00",
        "potential",
        12,
    )
    assert body["next_tier_checks"] == [
        {
            "criterion": "spend",
            "needed": "3000.00",
            "have": "2300.00",
            "missing": "700.00",
            "is_met": False,
        },
        {
            "criterion": "grade",
            "needed": "core",
            "have": "potential",
            "missing": "core",
            "is_met": False,
        },
        {
            "criterion": "points",
            "needed": "5000",
            "have": "2300",
            "missing": "2700",
            "is_met": False,
        },
    ]
    assert [(e["kind"], e["points"]) for e in body["recent"]] == [
        ("earn_order", 800),
        ("earn_order", 1500),
    ]
    assert body["expiring_points"] == 0  # they expire in two years


def test_the_ledger_pages_newest_first_and_filters_by_kind(member: Customer, agent: Client) -> None:
    # given
    _call(
        agent,
        "post",
        f"/api/customers/{member.pk}/points/redeem",
        {"points": 100, "reason": "兑换保温杯", "request_key": "cup-1"},
    )
    # when
    first = agent.get(f"/api/customers/{member.pk}/points/ledger?page_size=2").json()
    last = agent.get(f"/api/customers/{member.pk}/points/ledger?page_size=2&page=2").json()
    earned = agent.get(f"/api/customers/{member.pk}/points/ledger?kind=earn_order").json()
    # then
    assert (first["count"], first["num_pages"]) == (3, 2)
    assert [(e["kind"], e["points"], e["balance_after"]) for e in first["items"]] == [
        ("redeem", -100, 2200),
        ("earn_order", 800, 2300),
    ]
    assert [e["points"] for e in last["items"]] == [1500]
    assert first["items"][0]["created_by"] == "agent-chen"
    assert earned["count"] == 2
    bad = agent.get(f"/api/customers/{member.pk}/points/ledger?kind=gift")
    assert bad.status_code == 422


def test_a_redemption_is_posted_once_per_request_key(member: Customer, agent: Client) -> None:
    url = f"/api/customers/{member.pk}/points/redeem"
    body = {"points": 300, "reason": "兑换", "request_key": "order-77:coupon"}
    first = _call(agent, "post", url, body)
    again = _call(agent, "post", url, body)
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    assert PointsAccount.objects.get(customer=member).balance == 2000
    other = _call(agent, "post", url, {**body, "points": 301})
    assert other.status_code == 409 and other.json()["details"] == {
        "entry_id": first.json()["id"],
        "points": 300,
    }


def test_a_redemption_beyond_the_balance_is_409_naming_it(member: Customer, agent: Client) -> None:
    response = _call(
        agent,
        "post",
        f"/api/customers/{member.pk}/points/redeem",
        {"points": 2301, "reason": "兑换", "request_key": "too-much"},
    )
    assert response.status_code == 409
    body = response.json()
    assert body["message"] == f"customer {member.pk} has 2300 points: cannot redeem 2301"
    assert body["details"] == {"balance": 2300, "points": 2301}
    assert PointsAccount.objects.get(customer=member).balance == 2300


@pytest.mark.parametrize(
    "body",
    [
        {"points": 0, "reason": "兑换", "request_key": "k"},
        {"points": -1, "reason": "兑换", "request_key": "k"},
        {"points": 1.5, "reason": "兑换", "request_key": "k"},
        {"points": 10, "reason": "   ", "request_key": "k"},
        {"points": 10, "reason": "兑换", "request_key": "has space"},
        {"points": 10, "reason": "兑换"},
        {"points": 10, "reason": "兑换", "request_key": "k", "customer_id": 1},
    ],
)
def test_a_malformed_redemption_is_422(member: Customer, agent: Client, body: Any) -> None:
    response = _call(agent, "post", f"/api/customers/{member.pk}/points/redeem", body)
    assert response.status_code == 422
    assert response.json()["code"] == "validation_failed"
    assert not PointsEntry.objects.filter(kind="redeem").exists()


def test_unknown_customers_are_404(agent: Client) -> None:
    assert agent.get("/api/customers/999999/points").status_code == 404
    assert agent.get("/api/customers/999999/points/ledger").status_code == 404
    response = _call(
        agent,
        "post",
        "/api/customers/999999/points/redeem",
        {"points": 1, "reason": "兑换", "request_key": "k"},
    )
    assert response.status_code == 404


def test_an_adjustment_needs_points_and_a_reason(member: Customer, agent: Client) -> None:
    url = f"/api/customers/{member.pk}/points/adjust"
    assert _call(agent, "post", url, {"points": 0, "reason": "x"}).status_code == 422
    assert _call(agent, "post", url, {"points": 5}).status_code == 422
    taken = _call(agent, "post", url, {"points": -2301, "reason": "纠错"})
    assert taken.status_code == 409
    done = _call(agent, "post", url, {"points": -300, "reason": "纠错"})
    assert done.status_code == 201 and done.json()["balance_after"] == 2000


# ---------------------------------------------------------------------- tiers and policy


@pytest.fixture
def marketer() -> Client:
    return _client(make_user(Role.MARKETER, username="marketer-liu"))


def test_tiers_are_listed_in_rank_order(marketer: Client) -> None:
    body = marketer.get("/api/loyalty/tiers").json()
    assert [(t["code"], t["rank"], t["needs"]) for t in body] == [
        ("member", 0, "any"),
        ("silver", 1, "any"),
        ("gold", 2, "any"),
        ("diamond", 3, "all"),
    ]
    assert body[3]["min_spend"] == "10000.00" and body[3]["min_grade"] == "core"


def test_a_tier_is_patched_field_by_field(marketer: Client) -> None:
    tiers.tiers_seed()
    response = _call(
        marketer, "patch", "/api/loyalty/tiers/gold", {"min_points": None, "name_en": "Gold+"}
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["min_points"], body["name_en"], body["min_spend"]) == (None, "Gold+", "3000.00")
    assert (body["version"], body["updated_by"]) == (2, "marketer-liu")


@pytest.mark.parametrize(
    ("code", "body", "status"),
    [
        ("gold", {"name": None}, 422),
        ("gold", {"needs": "most"}, 422),
        ("gold", {"min_grade": "vip"}, 422),
        ("gold", {"code": "platinum"}, 422),
        ("gold", {"rank": 3}, 409),
        ("platinum", {"grace_days": 1}, 404),
    ],
)
def test_a_bad_tier_patch_is_refused(marketer: Client, code: str, body: Any, status: int) -> None:
    tiers.tiers_seed()
    response = _call(marketer, "patch", f"/api/loyalty/tiers/{code}", body)
    assert response.status_code == status, response.content


def test_the_policy_is_read_and_replaced_as_a_new_version(marketer: Client) -> None:
    assert marketer.get("/api/loyalty/policy").json()["version"] == 1
    response = _call(
        marketer,
        "put",
        "/api/loyalty/policy",
        {
            "points_per_cny": 2,
            "review_points": 20,
            "review_min_length": 10,
            "expiry_months": 12,
            "tier_window_months": 12,
            "note": "双十一双倍积分",
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["version"], body["points_per_cny"], body["note"]) == (2, "2.00", "双十一双倍积分")
    assert marketer.get("/api/loyalty/policy").json()["expiry_months"] == 12


@pytest.mark.parametrize(
    "change",
    [
        {"expiry_months": 0},
        {"points_per_cny": -1},
        {"points_per_cny": "1"},
        {"review_points": None},
        {"review_points": True},
        {"bonus": 1},
    ],
)
def test_a_bad_policy_is_422(marketer: Client, change: dict[str, Any]) -> None:
    body = {
        "points_per_cny": 1,
        "review_points": 10,
        "review_min_length": 15,
        "expiry_months": 24,
        "tier_window_months": 12,
        **change,
    }
    assert _call(marketer, "put", "/api/loyalty/policy", body).status_code == 422
