"""Risk decisions through the service layer: restrictions, blacklisting by people only,
appeals decided by someone else, the permission matrix, the audit trail, and (on PostgreSQL)
two people deciding the same case at once."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from patron.account.models import User
from patron.account.roles import Role
from patron.audit.models import AuditEvent
from patron.conftest import ALL_ROLES, make_customer, make_user, race
from patron.customer.models import Customer
from patron.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from patron.outbox.models import Message
from patron.risk import selectors, services
from patron.risk.models import Alert, Appeal, BlacklistEntry, CreditOverride, Restriction
from patron.risk.services import RestrictionRequest

pytestmark = pytest.mark.django_db


def _alert(customer: Customer, code: str = "return_rate", **fields: Any) -> Alert:
    now = timezone.now()
    return Alert.objects.create(
        customer=customer,
        source="rule",
        rule_code=code,
        severity=fields.pop("severity", "high"),
        value=fields.pop("value", 0.6),
        threshold=0.4,
        volume=5,
        evidence=fields.pop("evidence", [{"type": "return", "id": 11}]),
        suggested_action=fields.pop("suggested_action", "order_review"),
        created_at=now,
        updated_at=now,
        **fields,
    )


@pytest.fixture
def analyst() -> User:
    return make_user(Role.RISK_ANALYST, username="analyst-li")


@pytest.fixture
def second() -> User:
    return make_user(Role.RISK_ANALYST, username="analyst-wang")


@pytest.fixture
def customer() -> Customer:
    return make_customer(name="张三")


def _restrict(user: User, customer: Customer, kind: str = "order_review", **kw: Any) -> Restriction:
    return services.restriction_apply(
        user=user,
        customer_id=customer.pk,
        request=RestrictionRequest(
            kind=kind,
            reason="退货率 60%，远高于店铺中位数",
            scope=kw.pop("scope", {}),
            expires_at=kw.pop("expires_at", None),
        ),
        **kw,
    )


def test_restricting_from_an_alert_closes_it_and_keeps_its_evidence(
    analyst: User, customer: Customer
) -> None:
    # given
    alert = _alert(customer)
    # when
    restriction = _restrict(analyst, customer, alert_id=alert.pk)
    # then
    alert.refresh_from_db()
    assert alert.status == "restricted" and alert.decided_by == analyst
    assert alert.decision_reason == restriction.reason
    assert restriction.evidence == [{"type": "return", "id": 11}]
    assert restriction.applied_by == analyst
    kinds = [
        r.kind for r in selectors.restrictions_of_customer(user=analyst, customer_id=customer.pk)
    ]
    assert kinds == ["order_review"]
    audited = AuditEvent.objects.filter(customer_id=customer.pk).values_list(
        "entity_type", flat=True
    )
    assert set(audited) == {"risk.alert", "risk.restriction"}


def test_a_decided_alert_cannot_be_decided_again(analyst: User, customer: Customer) -> None:
    alert = _alert(customer)
    services.alert_decide(user=analyst, alert_id=alert.pk, action="dismiss", reason="误报")
    with pytest.raises(Conflict, match="alert is dismissed: cannot restrict"):
        _restrict(analyst, customer, alert_id=alert.pk)
    assert not Restriction.objects.exists()  # nothing half-written


def test_a_reason_is_always_required(analyst: User, customer: Customer) -> None:
    alert = _alert(customer)
    with pytest.raises(ValidationFailed, match="a reason is required"):
        services.alert_decide(user=analyst, alert_id=alert.pk, action="watch", reason="  ")


@pytest.mark.parametrize(
    ("kind", "scope", "message"),
    [
        ("ban_forever", {}, "restriction.kind: unknown kind"),
        ("payment_method", {"methods": ["cheque"]}, "restriction.scope.methods"),
        ("credit_limit", {"limit": "lots"}, "restriction.scope.limit"),
        ("credit_limit", {"limit": "-5"}, "restriction.scope.limit"),
        ("coupon_ban", {"limit": "5"}, "takes no scope"),
    ],
)
def test_an_invalid_restriction_names_the_field(
    analyst: User, customer: Customer, kind: str, scope: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationFailed, match=message):
        _restrict(analyst, customer, kind=kind, scope=scope)


def test_expired_and_lifted_restrictions_stop_shaping_the_checkout_policy(
    analyst: User, customer: Customer
) -> None:
    # given
    integration = make_user(Role.INTEGRATION)
    frozen = _restrict(analyst, customer, kind="account_freeze")
    _restrict(analyst, customer, kind="coupon_ban", expires_at=timezone.now() + timedelta(hours=1))
    assert not selectors.checkout_policy_of(user=integration, customer_id=customer.pk).may_order
    # when
    services.restriction_lift(user=analyst, restriction_id=frozen.pk, reason="核实无误")
    Restriction.objects.filter(kind="coupon_ban").update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    # then
    policy = selectors.checkout_policy_of(user=integration, customer_id=customer.pk)
    assert policy.may_order and policy.coupons_allowed and policy.restrictions == []
    with pytest.raises(Conflict, match="already lifted"):
        services.restriction_lift(user=analyst, restriction_id=frozen.pk, reason="again")


def test_blacklisting_needs_a_second_analyst(
    analyst: User, second: User, customer: Customer
) -> None:
    # given
    alert = _alert(customer, suggested_action="blacklist")
    entry = services.blacklist_propose(
        user=analyst, customer_id=customer.pk, reason="连续拒收并恶意差评", alert_id=alert.pk
    )
    assert entry.status == "confirmed"  # one person so far: not in force
    integration = make_user(Role.INTEGRATION)
    assert selectors.checkout_policy_of(user=integration, customer_id=customer.pk).may_order
    # when the proposer tries to approve alone
    with pytest.raises(PermissionDenied, match="you proposed"):
        services.blacklist_approve(user=analyst, entry_id=entry.pk, reason="确认")
    entry = services.blacklist_approve(user=second, entry_id=entry.pk, reason="证据充分")
    # then
    assert entry.status == "active"
    assert [a["username"] for a in entry.approvals] == ["analyst-li", "analyst-wang"]
    assert not selectors.checkout_policy_of(user=integration, customer_id=customer.pk).may_order
    with pytest.raises(Conflict, match="already has a blacklist entry"):
        services.blacklist_propose(user=second, customer_id=customer.pk, reason="again")


def test_one_approval_is_enough_when_the_policy_says_so(analyst: User, customer: Customer) -> None:
    admin = make_user(Role.ADMINISTRATOR)
    services.risk_policy_save(user=admin, data={"blacklist_approvals": 1}, note="小店只有一名风控")
    entry = services.blacklist_propose(user=analyst, customer_id=customer.pk, reason="欺诈")
    assert entry.status == "active" and entry.approvals_needed == 1


def test_overturning_an_appeal_lifts_the_restriction_at_once(
    analyst: User, second: User, customer: Customer
) -> None:
    # given
    agent = make_user(Role.SERVICE_AGENT)
    restriction = _restrict(analyst, customer, kind="payment_method", scope={"methods": ["cod"]})
    appeal = services.appeal_file(
        user=agent, customer_id=customer.pk, restriction_id=restriction.pk, statement="我只退过一次"
    )
    assert appeal.due_at - appeal.filed_at == timedelta(hours=72)
    # when the analyst who restricted tries to review
    with pytest.raises(PermissionDenied, match="took part"):
        services.appeal_start_review(user=analyst, appeal_id=appeal.pk)
    services.appeal_start_review(user=second, appeal_id=appeal.pk)
    decided = services.appeal_decide(
        user=second, appeal_id=appeal.pk, outcome="overturn", reason="退货为商品质量问题"
    )
    # then
    restriction.refresh_from_db()
    assert decided.status == "overturned"
    assert restriction.lifted_by == second and restriction.lifted_at is not None
    assert restriction.lift_reason.startswith(f"appeal {appeal.pk} overturned")
    view = selectors.restrictions_of_customer(user=agent, customer_id=customer.pk)[0]
    assert not view.is_active and view.open_appeal_id is None
    with pytest.raises(Conflict, match="appeal is overturned"):
        services.appeal_decide(user=second, appeal_id=appeal.pk, outcome="uphold", reason="x")
    told = Message.objects.get(key=f"appeal.decided:{appeal.pk}")
    assert (told.customer_id, told.template, told.purpose) == (
        customer.pk,
        "appeal.decided",
        "service",
    )
    assert "已撤销" in told.body and "退货为商品质量问题" in told.body


def test_upholding_keeps_the_restriction(analyst: User, second: User, customer: Customer) -> None:
    restriction = _restrict(analyst, customer)
    appeal = services.appeal_file(
        user=analyst, customer_id=customer.pk, restriction_id=restriction.pk, statement="不公平"
    )
    with pytest.raises(Conflict, match="already open"):
        services.appeal_file(
            user=analyst, customer_id=customer.pk, restriction_id=restriction.pk, statement="再次"
        )
    services.appeal_decide(user=second, appeal_id=appeal.pk, outcome="uphold", reason="证据充分")
    restriction.refresh_from_db()
    assert restriction.lifted_at is None
    told = Message.objects.get(key=f"appeal.decided:{appeal.pk}")
    assert "维持原决定" in told.body and "证据充分" in told.body


def test_an_appeal_against_a_blacklisting_is_kept_from_everyone_who_decided_it(
    analyst: User, second: User, customer: Customer
) -> None:
    # given
    third = make_user(Role.RISK_ANALYST, username="analyst-zhao")
    entry = services.blacklist_propose(user=analyst, customer_id=customer.pk, reason="欺诈")
    services.blacklist_approve(user=second, entry_id=entry.pk, reason="确认")
    appeal = services.appeal_file(
        user=analyst, customer_id=customer.pk, blacklist_id=entry.pk, statement="账号被盗用"
    )
    # when
    for decider in (analyst, second):
        with pytest.raises(PermissionDenied):
            services.appeal_decide(
                user=decider, appeal_id=appeal.pk, outcome="overturn", reason="x"
            )
    services.appeal_decide(user=third, appeal_id=appeal.pk, outcome="overturn", reason="被盗号")
    # then
    entry.refresh_from_db()
    assert entry.status == "lifted" and entry.lifted_by == third


def test_appeals_name_exactly_one_decision_of_this_customer(
    analyst: User, customer: Customer
) -> None:
    other = make_customer(name="李四")
    restriction = _restrict(analyst, other)
    with pytest.raises(ValidationFailed, match="exactly one"):
        services.appeal_file(user=analyst, customer_id=customer.pk, statement="x")
    with pytest.raises(ValidationFailed, match="another customer's"):
        services.appeal_file(
            user=analyst, customer_id=customer.pk, restriction_id=restriction.pk, statement="x"
        )
    with pytest.raises(NotFound):
        services.appeal_file(
            user=analyst, customer_id=customer.pk, restriction_id=999, statement="x"
        )


# ---------------------------------------------------------------------- permission matrix

ACT = {Role.RISK_ANALYST, Role.ADMINISTRATOR}
FILE = {Role.RISK_ANALYST, Role.ADMINISTRATOR, Role.SERVICE_AGENT, Role.OPERATIONS_MANAGER}
SEE_RESTRICTIONS = {
    Role.RISK_ANALYST,
    Role.ADMINISTRATOR,
    Role.SERVICE_AGENT,
    Role.OPERATIONS_MANAGER,
    Role.AUDITOR,
}
SEE_QUEUE = SEE_RESTRICTIONS - {Role.SERVICE_AGENT}


def _allowed(call: Callable[[], Any]) -> bool:
    try:
        call()
    except PermissionDenied:
        return False
    return True


@pytest.mark.parametrize("role", ALL_ROLES)
def test_permission_matrix(role: str, analyst: User, customer: Customer) -> None:
    user = make_user(role)
    restriction = _restrict(analyst, customer)
    alert = _alert(customer)
    assert _allowed(
        lambda: services.alert_decide(user=user, alert_id=alert.pk, action="watch", reason="看看")
    ) == (role in ACT)
    assert _allowed(
        lambda: services.restriction_lift(user=user, restriction_id=restriction.pk, reason="x")
    ) == (role in ACT)
    assert _allowed(
        lambda: selectors.restrictions_of_customer(user=user, customer_id=customer.pk)
    ) == (role in SEE_RESTRICTIONS)
    assert _allowed(lambda: selectors.alert_list(user=user, filters=selectors.AlertFilter())) == (
        role in SEE_QUEUE
    )
    fresh = _restrict(analyst, customer, kind="coupon_ban")
    assert _allowed(
        lambda: services.appeal_file(
            user=user, customer_id=customer.pk, restriction_id=fresh.pk, statement="申诉"
        )
    ) == (role in FILE)
    assert _allowed(
        lambda: services.blacklist_propose(user=user, customer_id=customer.pk, reason="x")
    ) == (role in ACT)


# ---------------------------------------------------------------------- concurrency


@pytest.mark.django_db(transaction=True)
def test_two_analysts_deciding_one_alert_at_once_one_wins(
    analyst: User, second: User, customer: Customer
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serialises writers: the race needs PostgreSQL's row locks")
    alert = _alert(customer)
    results = race(
        lambda: _restrict(analyst, customer, alert_id=alert.pk),
        lambda: services.alert_decide(
            user=second, alert_id=alert.pk, action="dismiss", reason="误报"
        ),
    )
    errors = [r for r in results if isinstance(r, Exception)]
    assert len(errors) == 1 and isinstance(errors[0], Conflict), results
    alert.refresh_from_db()
    assert alert.status in ("restricted", "dismissed")
    assert Restriction.objects.count() == (1 if alert.status == "restricted" else 0)


@pytest.mark.django_db(transaction=True)
def test_two_appeal_decisions_at_once_leave_one_outcome(
    analyst: User, second: User, customer: Customer
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serialises writers: the race needs PostgreSQL's row locks")
    third = make_user(Role.RISK_ANALYST, username="analyst-zhao")
    restriction = _restrict(analyst, customer)
    appeal = services.appeal_file(
        user=analyst, customer_id=customer.pk, restriction_id=restriction.pk, statement="申诉"
    )
    results = race(
        lambda: services.appeal_decide(
            user=second, appeal_id=appeal.pk, outcome="overturn", reason="a"
        ),
        lambda: services.appeal_decide(
            user=third, appeal_id=appeal.pk, outcome="uphold", reason="b"
        ),
    )
    assert sum(isinstance(r, Conflict) for r in results) == 1, results
    appeal.refresh_from_db()
    restriction.refresh_from_db()
    assert (appeal.status == "overturned") == (restriction.lifted_at is not None)
    assert Appeal.objects.count() == 1 and BlacklistEntry.objects.count() == 0


def test_a_customer_contests_what_the_score_decided_and_a_person_grants_terms(
    analyst: User, customer: Customer
) -> None:
    # given: a low score took away cash on delivery and pay later, with no person involved
    from patron.scoring.models import CustomerScore, ScoreRun

    run = ScoreRun.objects.create(
        as_of=timezone.localdate(), status="completed", started_at=timezone.now()
    )
    CustomerScore.objects.create(
        customer=customer, run=run, as_of=run.as_of, credit_score=470, grade="ordinary"
    )
    shop = make_user(Role.INTEGRATION)
    before = selectors.checkout_policy_of(user=shop, customer_id=customer.pk)
    assert "cod" not in before.payment_methods and before.order_review
    agent = make_user(Role.SERVICE_AGENT)
    # when
    appeal = services.appeal_file(
        user=agent, customer_id=customer.pk, automated=True, statement="我一直按时付款"
    )
    with pytest.raises(Conflict, match="already open"):
        services.appeal_file(user=agent, customer_id=customer.pk, automated=True, statement="再次")
    decided = services.appeal_decide(
        user=analyst,
        appeal_id=appeal.pk,
        outcome="overturn",
        reason="付款记录良好",
        credit_limit=Decimal("300"),
    )
    # then
    assert decided.status == "overturned" and appeal.subject == "automated"
    after = selectors.checkout_policy_of(user=shop, customer_id=customer.pk)
    assert "cod" in after.payment_methods and after.credit_limit == Decimal("300.00")
    assert not after.order_review
    override = CreditOverride.objects.get(customer=customer)
    assert override.granted_by == analyst and override.appeal_id == appeal.pk
    # and revoking it gives the decision back to the score
    services.credit_override_revoke(user=analyst, override_id=override.pk, reason="出现拒付")
    assert (
        "cod"
        not in selectors.checkout_policy_of(user=shop, customer_id=customer.pk).payment_methods
    )
