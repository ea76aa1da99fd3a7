"""After-sales workflows through the services: filing and its checks, the policy verdict and the
supervisor's exception, each kind carried to closure, the appeal (once, four eyes), cancelling,
refunds that never exceed what was paid, and the ``commerce.ReturnRequest`` row the scores and
risk rules read."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from patron.account.models import User
from patron.aftersales import services
from patron.aftersales.models import (
    AfterSalesPolicy,
    AfterSalesRequest,
    Refund,
    Replacement,
)
from patron.aftersales.tests.conftest import Shop, file_return, make_shop
from patron.audit.models import AuditEvent
from patron.commerce.models import Order, ReturnRequest
from patron.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from patron.outbox.models import Message

pytestmark = pytest.mark.django_db


def _events(request: AfterSalesRequest) -> list[tuple[str, str, str]]:
    return list(request.events.values_list("action", "from_status", "to_status"))


def _messages(shop: Shop) -> list[str]:
    return list(
        Message.objects.filter(customer=shop.customer)
        .order_by("id")
        .values_list("template", flat=True)
    )


def _through_goods(user: User, request: AfterSalesRequest) -> None:
    services.aftersales_approve(user=user, request_id=request.pk)
    services.aftersales_receive(user=user, request_id=request.pk, note="完好")


# ---------------------------------------------------------------------- filing


def test_a_request_within_the_policy_is_filed_with_its_lines_and_timeline(
    agent: User, shop: Shop
) -> None:
    # when
    request = file_return(agent, shop, quantity=1)
    # then
    request.refresh_from_db()
    assert (request.kind, request.status, request.is_within_policy) == ("return", "requested", True)
    assert request.policy_reasons == []
    assert request.delivered_at == shop.shipment.delivered_at
    assert list(request.lines.values_list("order_line_id", "quantity", "paid_amount")) == [
        (shop.dress.pk, 1, Decimal("150.00"))
    ]
    assert _events(request) == [("file", "", "requested")]
    assert request.events.get().note == "within the policy"
    audit = AuditEvent.objects.get(entity_type="aftersales.request")
    assert audit.summary == f"AS{request.pk}: return filed on order SO-9001, within the policy"
    assert audit.actor == agent


def test_a_request_outside_the_policy_is_filed_all_the_same_with_the_exact_reason(
    agent: User,
) -> None:
    # given: delivered at 15:30 Shanghai on a day long enough ago
    delivered = (timezone.now() - timedelta(days=20)).replace(
        hour=7, minute=30, second=0, microsecond=0
    )
    shop = make_shop(delivered_at=delivered)
    last_day = (
        delivered.astimezone(services.merchant_zone()).date() + timedelta(days=7)
    ).isoformat()
    # when
    request = file_return(agent, shop)
    # then
    assert request.is_within_policy is False
    assert [services.rules.english(r) for r in request.policy_reasons] == [
        f"The 7-day no-reason return window ended on {last_day}."
    ]
    assert request.events.get().note == (
        f"outside the policy: The 7-day no-reason return window ended on {last_day}."
    )


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ("other_customers_order", "order_id", "order_id: order SO-9101 is not customer"),
        ("line_of_another_order", "lines.0.order_line_id", "is not on order SO-9001"),
        ("too_many", "lines.0.quantity", "at most 2 of order line"),
        ("zero", "lines.0.quantity", "lines.0.quantity: at least 1, got 0"),
        ("twice", "lines.1.order_line_id", "is listed twice"),
        ("no_lines", "lines", "lines: name at least one order line"),
        ("amount_on_return", "requested_amount", "only a compensation asks an amount"),
    ],
)
def test_a_request_that_does_not_fit_the_order_is_422_naming_the_field(
    agent: User, shop: Shop, change: str, field: str, message: str
) -> None:
    # given
    from patron.conftest import make_line, make_order

    other_order = make_order(
        shop.other, external_id="SO-9101", placed_at=shop.order.placed_at, total="10.00"
    )
    other_line = make_line(other_order, line_no=1, name="Pen", unit_price="10.00")
    order_id = shop.order.pk
    lines = [services.LineRequest(shop.dress.pk, 1)]
    amount = None
    if change == "other_customers_order":
        order_id = other_order.pk
    elif change == "line_of_another_order":
        lines = [services.LineRequest(other_line.pk, 1)]
    elif change == "too_many":
        lines = [services.LineRequest(shop.dress.pk, 3)]
    elif change == "zero":
        lines = [services.LineRequest(shop.dress.pk, 0)]
    elif change == "twice":
        lines = [services.LineRequest(shop.dress.pk, 1), services.LineRequest(shop.dress.pk, 1)]
    elif change == "no_lines":
        lines = []
    elif change == "amount_on_return":
        amount = Decimal("10")
    # when
    with pytest.raises(ValidationFailed) as refused:
        services.aftersales_file(
            user=agent,
            customer_id=shop.customer.pk,
            order_id=order_id,
            kind="return",
            reason_code="no_reason",
            lines=lines,
            requested_amount=amount,
        )
    # then
    assert refused.value.message.startswith(field + ":")
    assert message in refused.value.message
    assert refused.value.details["field"] == field
    assert not AfterSalesRequest.objects.exists()


def test_the_quantity_is_at_most_what_was_bought_less_what_is_returned_or_under_way(
    agent: User, shop: Shop
) -> None:
    # given: one of the two dresses is being returned
    file_return(agent, shop, quantity=1)
    # when
    with pytest.raises(ValidationFailed) as refused:
        file_return(agent, shop, quantity=2)
    second = file_return(agent, shop, kind="exchange", quantity=1, reason_code="size_or_fit")
    # then
    assert refused.value.message == (
        f"lines.0.quantity: at most 1 of order line {shop.dress.pk} can still be asked about "
        "(bought 2, 1 already returned or under way); got 2"
    )
    assert second.status == "requested"


def test_a_rejected_or_cancelled_return_frees_its_units(agent: User, shop: Shop) -> None:
    # given
    rejected = file_return(agent, shop, quantity=2)
    services.aftersales_reject(user=agent, request_id=rejected.pk, reason="商品已穿着")
    # when
    again = file_return(agent, shop, quantity=2)
    # then
    assert again.lines.get().quantity == 2


def test_a_line_the_imported_history_already_took_back_cannot_be_returned(
    agent: User, shop: Shop
) -> None:
    # given
    ReturnRequest.objects.create(
        source="shop",
        external_id="RT-1",
        order=shop.order,
        order_line=shop.dress,
        kind="return",
        status="refunded",
        requested_at=shop.order.placed_at,
        refund_amount=Decimal("300.00"),
    )
    # when
    with pytest.raises(ValidationFailed) as refused:
        file_return(agent, shop)
    # then
    assert "at most 0 of order line" in refused.value.message


def test_compensation_names_its_amount_and_no_more_than_was_paid(agent: User, shop: Shop) -> None:
    # when
    with pytest.raises(ValidationFailed) as missing:
        file_return(agent, shop, kind="compensation", reason_code="late_delivery")
    with pytest.raises(ValidationFailed) as too_much:
        file_return(
            agent, shop, kind="compensation", reason_code="late_delivery", amount=Decimal("150.01")
        )
    filed = file_return(
        agent, shop, kind="compensation", reason_code="late_delivery", amount=Decimal("20.00")
    )
    # then
    assert missing.value.message == "requested_amount: a compensation names the amount asked"
    assert too_much.value.message == (
        "requested_amount: 150.01 is more than was paid for the lines (150.00)"
    )
    assert (filed.requested_amount, filed.is_within_policy) == (Decimal("20.00"), True)


def test_unknown_customers_and_orders_and_cancelled_orders(agent: User, shop: Shop) -> None:
    # given
    Order.objects.filter(pk=shop.order.pk).update(status="cancelled")
    # when
    with pytest.raises(NotFound) as no_customer:
        services.aftersales_file(
            user=agent, customer_id=10**9, order_id=shop.order.pk, kind="return",
            reason_code="no_reason", lines=[services.LineRequest(shop.dress.pk, 1)],
        )  # fmt: skip
    with pytest.raises(NotFound) as no_order:
        services.aftersales_file(
            user=agent, customer_id=shop.customer.pk, order_id=10**9, kind="return",
            reason_code="no_reason", lines=[services.LineRequest(shop.dress.pk, 1)],
        )  # fmt: skip
    with pytest.raises(Conflict) as cancelled:
        file_return(agent, shop)
    # then
    assert no_customer.value.message == f"customer {10**9} not found"
    assert no_order.value.message == f"order {10**9} not found"
    assert cancelled.value.message == "order SO-9001 is cancelled: nothing to return"


def test_without_the_permission_nobody_files(shop: Shop) -> None:
    from patron.conftest import make_user

    # when
    with pytest.raises(PermissionDenied):
        file_return(make_user("analyst"), shop)
    # then
    assert not AfterSalesRequest.objects.exists()


# ---------------------------------------------------------------------- decisions


def test_an_approved_return_waits_for_the_goods_and_the_customer_is_told(
    agent: User, shop: Shop
) -> None:
    # given
    request = file_return(agent, shop)
    # when
    services.aftersales_approve(user=agent, request_id=request.pk, reason="符合七天无理由")
    # then
    request.refresh_from_db()
    assert (request.status, request.decided_by, request.is_exception) == (
        "awaiting_goods",
        agent,
        False,
    )
    assert _events(request) == [
        ("file", "", "requested"),
        ("approve", "requested", "approved"),
        ("await_goods", "approved", "awaiting_goods"),
    ]
    message = Message.objects.get(template="aftersales.approved")
    assert f"AS{request.pk}" in message.subject
    assert "/aftersales/" in message.body


def test_outside_the_policy_only_a_supervisor_approves_with_the_exceptions_reason(
    agent: User, manager: User
) -> None:
    # given
    shop = make_shop(delivered_at=timezone.now() - timedelta(days=20))
    request = file_return(agent, shop)
    # when
    with pytest.raises(PermissionDenied) as agent_refused:
        services.aftersales_approve(user=agent, request_id=request.pk, exception_reason="老客户")
    with pytest.raises(ValidationFailed) as no_reason:
        services.aftersales_approve(user=manager, request_id=request.pk)
    request.refresh_from_db()
    unchanged = request.status
    services.aftersales_approve(
        user=manager, request_id=request.pk, exception_reason="老客户，破例"
    )
    # then
    assert unchanged == "requested"
    assert "only a supervisor may make" in agent_refused.value.message
    assert "aftersales.approve_exception" in agent_refused.value.message
    assert no_reason.value.message.startswith("exception_reason (")
    request.refresh_from_db()
    assert (request.status, request.is_exception, request.exception_reason) == (
        "awaiting_goods",
        True,
        "老客户，破例",
    )


def test_a_rejection_tells_the_customer_why_and_where_to_appeal(agent: User, shop: Shop) -> None:
    # given
    request = file_return(agent, shop)
    # when
    services.aftersales_reject(user=agent, request_id=request.pk, reason="吊牌已剪")
    # then
    request.refresh_from_db()
    assert (request.status, request.decision_reason) == ("rejected", "吊牌已剪")
    message = Message.objects.get(template="aftersales.rejected")
    assert "吊牌已剪" in message.body and "/aftersales/" in message.body


def test_a_rejection_needs_a_reason_and_nothing_changes_without_one(
    agent: User, shop: Shop
) -> None:
    # given
    request = file_return(agent, shop)
    # when
    with pytest.raises(ValidationFailed):
        services.aftersales_reject(user=agent, request_id=request.pk, reason="  ")
    # then
    request.refresh_from_db()
    assert request.status == "requested"
    assert not Message.objects.exists()


# ---------------------------------------------------------------------- the appeal


def test_the_customer_appeals_once_and_someone_else_decides(
    agent: User, second_agent: User, shop: Shop
) -> None:
    # given
    request = file_return(agent, shop)
    services.aftersales_reject(user=agent, request_id=request.pk, reason="超出范围")
    # when: the customer appeals through their link
    services.aftersales_appeal(
        user=None,
        request_id=request.pk,
        reason="商品有质量问题",
        applicant_customer_id=shop.customer.pk,
    )
    with pytest.raises(PermissionDenied) as same_person:
        services.aftersales_appeal_decide(
            user=agent, request_id=request.pk, approve=True, reason="同意"
        )
    request.refresh_from_db()
    still = request.status
    services.aftersales_appeal_decide(
        user=second_agent, request_id=request.pk, approve=True, reason="复核同意"
    )
    # then
    assert still == "appealed"
    assert same_person.value.message == (
        "you made the decision this appeal is against: another person must decide the appeal"
    )
    request.refresh_from_db()
    assert (request.status, request.appeal_decided_by, request.appeal_reason) == (
        "awaiting_goods",
        second_agent,
        "商品有质量问题",
    )
    assert [e[0] for e in _events(request)] == [
        "file",
        "reject",
        "appeal",
        "approve_appeal",
        "await_goods",
    ]
    appeal_event = request.events.get(action="appeal")
    assert (appeal_event.actor, appeal_event.actor_label) == (None, "customer")


def test_a_rejected_appeal_is_final(agent: User, second_agent: User, shop: Shop) -> None:
    # given
    request = file_return(agent, shop)
    services.aftersales_reject(user=agent, request_id=request.pk, reason="超出范围")
    services.aftersales_appeal(user=agent, request_id=request.pk, reason="请再看看")
    services.aftersales_appeal_decide(
        user=second_agent, request_id=request.pk, approve=False, reason="维持原决定"
    )
    # when
    with pytest.raises(Conflict) as again:
        services.aftersales_appeal(
            user=None,
            request_id=request.pk,
            reason="再申诉",
            applicant_customer_id=shop.customer.pk,
        )
    # then
    assert "already appealed once" in again.value.message
    request.refresh_from_db()
    assert (request.status, request.appeal_reason) == ("rejected", "请再看看")
    assert list(
        Message.objects.filter(template="aftersales.rejected")
        .order_by("id")
        .values_list("key", flat=True)
    ) == [f"aftersales.rejected:{request.pk}", f"aftersales.rejected:{request.pk}:appeal"]


def test_an_appeal_approved_after_the_units_were_taken_again_is_refused(
    agent: User, second_agent: User, shop: Shop
) -> None:
    # given: rejected (both dresses), then the customer files a new return of both
    request = file_return(agent, shop, quantity=2)
    services.aftersales_reject(user=agent, request_id=request.pk, reason="超出范围")
    file_return(agent, shop, quantity=2)
    services.aftersales_appeal(user=agent, request_id=request.pk, reason="请复核")
    # when
    with pytest.raises(Conflict) as refused:
        services.aftersales_appeal_decide(
            user=second_agent, request_id=request.pk, approve=True, reason="同意"
        )
    # then
    assert "only 0 of order line" in refused.value.message
    request.refresh_from_db()
    assert request.status == "appealed"


def test_a_link_opens_only_its_customers_requests(agent: User, shop: Shop) -> None:
    # given
    request = file_return(agent, shop)
    # when
    with pytest.raises(NotFound):
        services.aftersales_cancel(
            user=None, request_id=request.pk, reason="不要了", applicant_customer_id=shop.other.pk
        )
    # then
    request.refresh_from_db()
    assert request.status == "requested"


# ---------------------------------------------------------------------- to closure


def test_a_return_is_refunded_recorded_for_the_scores_and_closed(agent: User, shop: Shop) -> None:
    # given
    request = file_return(agent, shop, quantity=2)
    _through_goods(agent, request)
    # when
    refund = services.aftersales_refund(
        user=agent, request_id=request.pk, amount="300.00", method="alipay", reference="R-1"
    )
    services.aftersales_close(user=agent, request_id=request.pk)
    # then
    request.refresh_from_db()
    assert (refund.amount, refund.method, refund.created_by) == (Decimal("300.00"), "alipay", agent)
    assert request.status == "closed"
    row = ReturnRequest.objects.get(source="patron", external_id=f"AS{request.pk}")
    assert (
        row.order_id,
        row.order_line_id,
        row.kind,
        row.status,
        row.refund_amount,
        row.requested_at,
        row.reason,
    ) == (
        shop.order.pk,
        shop.dress.pk,
        "return",
        "refunded",
        Decimal("300.00"),
        request.requested_at,
        "七天无理由 No reason (changed my mind): 不合适",
    )
    assert [e[0] for e in _events(request)] == [
        "file",
        "approve",
        "await_goods",
        "receive",
        "refund",
        "close",
    ]
    assert _messages(shop) == ["aftersales.approved", "aftersales.refunded"]
    assert "300.00 CNY" in Message.objects.get(template="aftersales.refunded").body


# the scores read PostgreSQL through ADBC on their own connection: only committed rows
@pytest.mark.django_db(transaction=True)
def test_the_scores_read_the_recorded_return_like_an_imported_one(agent: User, shop: Shop) -> None:
    # given
    Order.objects.filter(pk=shop.order.pk).update(delivered_at=shop.shipment.delivered_at)
    request = file_return(agent, shop)
    _through_goods(agent, request)
    services.aftersales_refund(user=agent, request_id=request.pk, amount="150.00")
    # when
    from patron.scoring.sources import read_tables

    table = read_tables("returns")["returns"].to_pylist()
    # then
    assert [
        (r["customer_id"], r["kind"], r["status"], float(r["refund_amount"])) for r in table
    ] == [(shop.customer.pk, "return", "refunded", 150.0)]


def test_a_refund_is_refused_before_the_goods_are_back(agent: User, shop: Shop) -> None:
    # given
    request = file_return(agent, shop)
    services.aftersales_approve(user=agent, request_id=request.pk)
    # when
    with pytest.raises(Conflict) as refused:
        services.aftersales_refund(user=agent, request_id=request.pk, amount="10.00")
    # then
    assert refused.value.message.startswith("the return request is awaiting goods: cannot refund")
    assert not Refund.objects.exists()


def test_an_exchange_ships_a_tracked_replacement(agent: User, shop: Shop) -> None:
    # given
    request = file_return(agent, shop, kind="exchange", reason_code="size_or_fit")
    _through_goods(agent, request)
    # when
    replacement = services.aftersales_replace(
        user=agent, request_id=request.pk, carrier="SF Express", tracking_number="SF-NEW-1"
    )
    # then
    request.refresh_from_db()
    assert request.status == "replaced"
    shipment = replacement.shipment
    assert shipment is not None
    assert (shipment.source, shipment.external_id, shipment.order_id, shipment.status) == (
        "patron",
        f"AS{request.pk}-R1",
        shop.order.pk,
        "in_transit",
    )
    assert ReturnRequest.objects.get(external_id=f"AS{request.pk}").status == "completed"
    assert Replacement.objects.count() == 1
    # and the replacement does not move the order's delivery date the windows count from
    assert services.order_delivery(shop.order) == shop.shipment.delivered_at


def test_a_repair_is_recorded_when_done(agent: User, shop: Shop) -> None:
    # given
    request = file_return(agent, shop, kind="repair", reason_code="defective")
    _through_goods(agent, request)
    # when
    services.aftersales_repair(user=agent, request_id=request.pk, note="更换拉链")
    services.aftersales_close(user=agent, request_id=request.pk)
    # then
    request.refresh_from_db()
    assert request.status == "closed"
    row = ReturnRequest.objects.get(external_id=f"AS{request.pk}")
    assert (row.kind, row.status, row.refund_amount) == ("repair", "completed", Decimal("0"))


def test_a_compensation_is_paid_once_approved_up_to_its_amount(agent: User, shop: Shop) -> None:
    # given
    request = file_return(
        agent, shop, kind="compensation", reason_code="late_delivery", amount=Decimal("20.00")
    )
    services.aftersales_approve(user=agent, request_id=request.pk)
    # when
    with pytest.raises(Conflict) as too_much:
        services.aftersales_refund(user=agent, request_id=request.pk, amount="20.01")
    services.aftersales_refund(user=agent, request_id=request.pk, amount="20.00", method="voucher")
    # then
    assert "more than can still be refunded (20.00 CNY)" in too_much.value.message
    row = ReturnRequest.objects.get(external_id=f"AS{request.pk}")
    assert (row.kind, row.status, row.refund_amount) == (
        "compensation",
        "refunded",
        Decimal("20.00"),
    )


def test_the_customer_cancels_before_the_goods_are_received_not_after(
    agent: User, shop: Shop
) -> None:
    # given
    early = file_return(agent, shop)
    late = file_return(agent, shop)
    _through_goods(agent, late)
    # when
    services.aftersales_cancel(
        user=None, request_id=early.pk, reason="不需要了", applicant_customer_id=shop.customer.pk
    )
    with pytest.raises(Conflict):
        services.aftersales_cancel(
            user=None, request_id=late.pk, reason="不需要了", applicant_customer_id=shop.customer.pk
        )
    # then
    early.refresh_from_db()
    late.refresh_from_db()
    assert (early.status, late.status) == ("cancelled", "received")


def test_refunds_on_the_same_line_by_two_requests_share_its_paid_amount(
    agent: User, shop: Shop
) -> None:
    # given: a compensation of 100 was paid on the dress line, then both dresses are returned
    comp = file_return(
        agent, shop, kind="compensation", reason_code="defective", amount=Decimal("100.00")
    )
    services.aftersales_approve(user=agent, request_id=comp.pk)
    services.aftersales_refund(user=agent, request_id=comp.pk, amount="100.00")
    request = file_return(agent, shop, quantity=2)
    _through_goods(agent, request)
    # when
    with pytest.raises(Conflict) as refused:
        services.aftersales_refund(user=agent, request_id=request.pk, amount="300.00")
    services.aftersales_refund(user=agent, request_id=request.pk, amount="200.00")
    # then
    assert "(200.00 CNY)" in refused.value.message
    assert services.refundable_amount(request) == Decimal("0.00")


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    amounts=st.lists(
        st.decimals(min_value=Decimal("0.01"), max_value=Decimal("400.00"), places=2),
        min_size=1,
        max_size=8,
    ),
    imported=st.sampled_from([Decimal("0"), Decimal("50.00")]),
)
def test_refunds_never_exceed_what_was_paid(
    agent: User, amounts: list[Decimal], imported: Decimal
) -> None:
    savepoint = transaction.savepoint()
    try:
        # given: both dresses (300.00 paid) returned; maybe 50.00 refunded by the old system
        shop = make_shop(delivered_at=timezone.now())
        if imported:
            ReturnRequest.objects.create(
                source="shop", external_id="RT-OLD", order=shop.order, order_line=shop.dress,
                kind="compensation", status="refunded", requested_at=shop.order.placed_at,
                refund_amount=imported,
            )  # fmt: skip
        request = file_return(agent, shop, quantity=2)
        _through_goods(agent, request)
        paid = Decimal("300.00") - imported
        total = Decimal("0")
        # when
        for amount in amounts:
            before = list(Refund.objects.values_list("pk", flat=True))
            try:
                services.aftersales_refund(user=agent, request_id=request.pk, amount=amount)
            except Conflict:
                # then: refused only when it would go over, and nothing was recorded
                assert total + amount > paid
                assert list(Refund.objects.values_list("pk", flat=True)) == before
            else:
                total += amount
            # then: never more than was paid, and the history row says the same
            assert total <= paid
            assert services.refundable_amount(request) == paid - total
        recorded = ReturnRequest.objects.filter(external_id=f"AS{request.pk}").first()
        assert (recorded.refund_amount if recorded else Decimal("0")) == total
    finally:
        transaction.savepoint_rollback(savepoint)


# ---------------------------------------------------------------------- the policy


def test_a_policy_edit_is_audited_and_applies_to_new_requests_only(
    agent: User, manager: User, shop: Shop
) -> None:
    # given
    before = file_return(agent, shop)
    policy = AfterSalesPolicy.objects.get(kind="return", category_code="")
    # when
    services.policy_update(user=manager, policy_id=policy.pk, changes={"days_after_delivery": 0})
    services.policy_update(user=manager, policy_id=policy.pk, changes={"is_active": False})
    after = file_return(agent, shop)
    # then
    before.refresh_from_db()
    assert before.is_within_policy is True
    assert after.is_within_policy is False
    assert [services.rules.english(r) for r in after.policy_reasons] == [
        "No after-sales policy allows a return here."
    ]
    audit = AuditEvent.objects.filter(entity_type="aftersales.policy").order_by("id").first()
    assert audit is not None and audit.changes == {"days_after_delivery": {"old": 7, "new": 0}}


def test_policy_rows_are_per_kind_and_category_once(manager: User, agent: User) -> None:
    # when
    created = services.policy_create(
        user=manager, kind="return", category_code="CAT01", values={"days_after_delivery": 15}
    )
    with pytest.raises(Conflict):
        services.policy_create(
            user=manager, kind="return", category_code="CAT01", values={"days_after_delivery": 9}
        )
    with pytest.raises(PermissionDenied):
        services.policy_update(user=agent, policy_id=created.pk, changes={"days_after_delivery": 1})
    with pytest.raises(ValidationFailed) as bad:
        services.policy_update(user=manager, policy_id=created.pk, changes={"kind": "repair"})
    # then
    created.refresh_from_db()
    assert created.days_after_delivery == 15
    assert bad.value.message == f"policy {created.pk}: cannot change kind"


def test_the_seed_is_the_default_policy_and_idempotent() -> None:
    # when
    again = services.policies_seed()
    # then
    assert again == 0
    assert sorted(AfterSalesPolicy.objects.values_list("kind", "days_after_delivery")) == [
        ("compensation", 30),
        ("exchange", 30),
        ("repair", 365),
        ("return", 7),
    ]
