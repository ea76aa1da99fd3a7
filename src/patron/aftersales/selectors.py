"""Reads of after-sales and logistics: the request queue with its filters, one request with its
lines, verdict, refunds and timeline, what a customer sees through their link, the policy, the
logistics exceptions, and the figures over the queue. Permissions are checked here."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Case, Count, F, Q, Sum, Value, When
from django.utils import timezone, translation

from patron.account.roles import (
    APPROVE_AFTERSALES_EXCEPTION,
    CHANGE_AFTERSALES_POLICY,
    HANDLE_AFTERSALES,
    VIEW_AFTERSALES,
)
from patron.account.services import require_permission
from patron.aftersales import rules, services
from patron.aftersales.models import (
    AfterSalesPolicy,
    AfterSalesRequest,
    Kind,
    LogisticsException,
    ReasonCode,
    RefundMethod,
)
from patron.commerce.models import Order, OrderLine
from patron.customer.models import Customer
from patron.errors import NotFound, ValidationFailed
from patron.intelligence.explain import render

STATUSES = rules.STATUSES


def verdict_text(reason: Mapping[str, Any] | str) -> str:
    """A stored reason in the reader's language."""
    language = translation.get_language() or "en"
    return render(reason, language=language, translate=translation.gettext)


def _label(choices: Any, value: str) -> str:
    try:
        return str(choices(value).label)
    except ValueError:
        return value


def _username(user: Any) -> str:
    return user.get_username() if user is not None else ""


# ---------------------------------------------------------------------- the queue


@dataclass(frozen=True)
class RequestRow:
    id: int
    number: str
    customer_id: int
    customer_name: str
    order_id: int
    order_external_id: str
    kind: str
    kind_label: str
    status: str
    status_label: str
    reason_code: str
    reason_label: str
    requested_at: datetime
    waiting_hours: float | None
    is_within_policy: bool
    is_exception: bool
    requested_amount: str | None
    refunded: str
    currency: str
    channel: str


def _hours(start: datetime | None, end: datetime) -> float | None:
    return None if start is None else round((end - start).total_seconds() / 3600, 1)


def request_list(
    *,
    user: Any,
    kinds: Sequence[str] = (),
    statuses: Sequence[str] = (),
    outside_policy: bool | None = None,
    customer_id: int | None = None,
    order_id: int | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[int, list[RequestRow]]:
    """Requests, the longest-waiting first among those waiting for a decision, then newest."""
    require_permission(user, VIEW_AFTERSALES)
    unknown = set(kinds) - set(rules.KINDS)
    if unknown:
        raise ValidationFailed(f"kind: one of {', '.join(rules.KINDS)}; got {sorted(unknown)[0]!r}")
    bad = set(statuses) - set(STATUSES)
    if bad:
        raise ValidationFailed(f"status: one of {', '.join(STATUSES)}; got {sorted(bad)[0]!r}")
    qs = AfterSalesRequest.objects.all()
    if kinds:
        qs = qs.filter(kind__in=kinds)
    if statuses:
        qs = qs.filter(status__in=statuses)
    if outside_policy is not None:
        qs = qs.filter(is_within_policy=not outside_policy)
    if customer_id is not None:
        qs = qs.filter(customer_id=customer_id)
    if order_id is not None:
        qs = qs.filter(order_id=order_id)
    count = qs.count()
    to_decide = Q(status__in=rules.TO_DECIDE)
    page = (
        qs.select_related("customer", "order")
        .annotate(
            refunded=Sum("refunds__amount"),
            group=Case(When(to_decide, then=Value(0)), default=Value(1)),
            waiting_since=Case(When(to_decide, then=F("requested_at"))),
        )
        .order_by("group", F("waiting_since").asc(nulls_last=True), "-requested_at", "-id")[
            offset : offset + limit
        ]
    )
    now = timezone.now()
    return count, [_row(request, now) for request in page]


def _row(request: Any, now: datetime) -> RequestRow:
    waiting = request.status in rules.TO_DECIDE
    since = request.appealed_at if request.status == "appealed" else request.requested_at
    refunded = getattr(request, "refunded", None) or Decimal("0")
    return RequestRow(
        id=request.pk,
        number=request.number,
        customer_id=request.customer_id,
        customer_name=request.customer.name,
        order_id=request.order_id,
        order_external_id=request.order.external_id,
        kind=request.kind,
        kind_label=_label(Kind, request.kind),
        status=request.status,
        status_label=_label(AfterSalesRequest.Status, request.status),
        reason_code=request.reason_code,
        reason_label=_label(ReasonCode, request.reason_code),
        requested_at=request.requested_at,
        waiting_hours=_hours(since, now) if waiting else None,
        is_within_policy=request.is_within_policy,
        is_exception=request.is_exception,
        requested_amount=(
            f"{request.requested_amount:.2f}" if request.requested_amount is not None else None
        ),
        refunded=f"{refunded:.2f}",
        currency=request.currency,
        channel=request.channel,
    )


# ---------------------------------------------------------------------- one request


@dataclass(frozen=True)
class LineView:
    order_line_id: int
    line_no: int
    product_name: str
    category: str
    quantity: int
    bought: int
    unit_price: str
    paid_amount: str


@dataclass(frozen=True)
class RefundView:
    id: int
    amount: str
    currency: str
    method: str
    method_label: str
    reference: str
    at: datetime
    by: str


@dataclass(frozen=True)
class ReplacementView:
    id: int
    carrier: str
    tracking_number: str
    shipment_id: int | None
    shipment_status: str
    at: datetime
    by: str


@dataclass(frozen=True)
class EventView:
    at: datetime
    actor: str
    action: str
    from_status: str
    to_status: str
    note: str
    hours_since_previous: float | None


@dataclass(frozen=True)
class RequestView:
    id: int
    number: str
    customer_id: int
    customer_name: str
    order_id: int
    order_external_id: str
    order_placed_at: datetime
    kind: str
    kind_label: str
    status: str
    status_label: str
    channel: str
    channel_label: str
    reason_code: str
    reason_label: str
    reason: str
    requested_amount: str | None
    currency: str
    requested_at: datetime
    delivered_at: datetime | None
    is_within_policy: bool
    policy_verdict: list[str]
    policy_deadline: datetime | None
    is_exception: bool
    exception_reason: str
    created_by: str
    decided_by: str
    decided_at: datetime | None
    decision_reason: str
    appeal_reason: str
    appealed_at: datetime | None
    appeal_decided_by: str
    appeal_decided_at: datetime | None
    appeal_decision_reason: str
    received_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    cancelled_at: datetime | None
    lines: list[LineView]
    refunds: list[RefundView]
    refunded: str
    refundable: str
    replacements: list[ReplacementView]
    events: list[EventView]
    allowed_actions: list[str]
    may_handle: bool
    may_approve_exception: bool
    may_decide_appeal: bool


def _lines(request: AfterSalesRequest) -> list[LineView]:
    views = []
    for item in request.lines.select_related("order_line__product__category"):
        line = item.order_line
        category = line.product.category if line.product is not None else None
        views.append(
            LineView(
                order_line_id=line.pk,
                line_no=line.line_no,
                product_name=line.product_name or (line.product.name if line.product else ""),
                category=(category.name if category is not None else ""),
                quantity=item.quantity,
                bought=line.quantity,
                unit_price=f"{line.unit_price:.2f}",
                paid_amount=f"{item.paid_amount:.2f}",
            )
        )
    return views


def _events(request: AfterSalesRequest) -> list[EventView]:
    views: list[EventView] = []
    previous: datetime | None = None
    for event in request.events.select_related("actor"):
        views.append(
            EventView(
                at=event.at,
                actor=event.actor.get_username() if event.actor else event.actor_label,
                action=event.action,
                from_status=event.from_status,
                to_status=event.to_status,
                note=event.note,
                hours_since_previous=_hours(previous, event.at),
            )
        )
        previous = event.at
    return views


def request_view(request: AfterSalesRequest, *, user: Any = None) -> RequestView:
    """A request as staff (``user``) or the customer (None) see it."""
    refunds = list(request.refunds.select_related("created_by"))
    refunded = sum((r.amount for r in refunds), Decimal("0"))
    has_appealed = request.appealed_at is not None
    allowed = list(rules.allowed_actions(request.kind, request.status, has_appealed=has_appealed))
    may_handle = bool(user is not None and user.has_perm(HANDLE_AFTERSALES))
    refundable = (
        services.refundable_amount(request) if request.kind in rules.REFUND_KINDS else Decimal("0")
    )
    return RequestView(
        id=request.pk,
        number=request.number,
        customer_id=request.customer_id,
        customer_name=request.customer.name,
        order_id=request.order_id,
        order_external_id=request.order.external_id,
        order_placed_at=request.order.placed_at,
        kind=request.kind,
        kind_label=_label(Kind, request.kind),
        status=request.status,
        status_label=_label(AfterSalesRequest.Status, request.status),
        channel=request.channel,
        channel_label=_label(AfterSalesRequest.Channel, request.channel),
        reason_code=request.reason_code,
        reason_label=_label(ReasonCode, request.reason_code),
        reason=request.reason,
        requested_amount=(
            f"{request.requested_amount:.2f}" if request.requested_amount is not None else None
        ),
        currency=request.currency,
        requested_at=request.requested_at,
        delivered_at=request.delivered_at,
        is_within_policy=request.is_within_policy,
        policy_verdict=[verdict_text(r) for r in request.policy_reasons or []],
        policy_deadline=request.policy_deadline,
        is_exception=request.is_exception,
        exception_reason=request.exception_reason,
        created_by=_username(request.created_by),
        decided_by=_username(request.decided_by),
        decided_at=request.decided_at,
        decision_reason=request.decision_reason,
        appeal_reason=request.appeal_reason,
        appealed_at=request.appealed_at,
        appeal_decided_by=_username(request.appeal_decided_by),
        appeal_decided_at=request.appeal_decided_at,
        appeal_decision_reason=request.appeal_decision_reason,
        received_at=request.received_at,
        resolved_at=request.resolved_at,
        closed_at=request.closed_at,
        cancelled_at=request.cancelled_at,
        lines=_lines(request),
        refunds=[
            RefundView(
                id=r.pk,
                amount=f"{r.amount:.2f}",
                currency=r.currency,
                method=r.method,
                method_label=_label(RefundMethod, r.method),
                reference=r.reference,
                at=r.at,
                by=_username(r.created_by),
            )
            for r in refunds
        ],
        refunded=f"{refunded:.2f}",
        refundable=f"{refundable:.2f}",
        replacements=[
            ReplacementView(
                id=r.pk,
                carrier=r.carrier,
                tracking_number=r.tracking_number,
                shipment_id=r.shipment_id,
                shipment_status=r.shipment.status if r.shipment else "",
                at=r.at,
                by=_username(r.created_by),
            )
            for r in request.replacements.select_related("shipment", "created_by")
        ],
        events=_events(request),
        allowed_actions=allowed,
        may_handle=may_handle,
        may_approve_exception=bool(
            user is not None and user.has_perm(APPROVE_AFTERSALES_EXCEPTION)
        ),
        may_decide_appeal=bool(
            may_handle
            and request.status == "appealed"
            and request.decided_by_id != getattr(user, "pk", None)
        ),
    )


def _request(request_id: int) -> AfterSalesRequest:
    request = (
        AfterSalesRequest.objects.select_related(
            "customer", "order", "created_by", "decided_by", "appeal_decided_by"
        )
        .filter(pk=request_id)
        .first()
    )
    if request is None:
        raise NotFound(f"after-sales request {request_id} not found")
    return request


def request_detail(*, user: Any, request_id: int) -> RequestView:
    require_permission(user, VIEW_AFTERSALES)
    return request_view(_request(request_id), user=user)


# ---------------------------------------------------------------------- filing: what can be asked


@dataclass(frozen=True)
class OrderLineChoice:
    id: int
    line_no: int
    product_name: str
    quantity: int
    available: int
    amount: str


@dataclass(frozen=True)
class OrderChoice:
    id: int
    external_id: str
    placed_at: datetime
    status: str
    status_label: str
    total_amount: str
    currency: str
    delivered_at: datetime | None
    lines: list[OrderLineChoice]


def order_choices(*, customer_id: int, limit: int = 30) -> list[OrderChoice]:
    """The customer's latest orders that can have an after-sales request, with each line's
    units still free for a return (callers check permissions)."""
    orders = list(
        Order.objects.filter(customer_id=customer_id)
        .exclude(status__in=("created", "cancelled"))
        .order_by("-placed_at", "-id")[:limit]
    )
    lines_of: dict[int, list[OrderLine]] = {}
    for line in OrderLine.objects.filter(order__in=orders).order_by("line_no", "id"):
        lines_of.setdefault(line.order_id, []).append(line)
    choices = []
    for order in orders:
        choices.append(
            OrderChoice(
                id=order.pk,
                external_id=order.external_id,
                placed_at=order.placed_at,
                status=order.status,
                status_label=_label(Order.Status, order.status),
                total_amount=f"{order.total_amount:.2f}",
                currency=order.currency,
                delivered_at=services.order_delivery(order),
                lines=[
                    OrderLineChoice(
                        id=line.pk,
                        line_no=line.line_no,
                        product_name=line.product_name,
                        quantity=line.quantity,
                        available=services.units_available(line)[0],
                        amount=f"{line.amount:.2f}",
                    )
                    for line in lines_of.get(order.pk, [])
                ],
            )
        )
    return choices


@dataclass(frozen=True)
class CustomerAfterSales:
    """What the customer sees through their link."""

    customer_id: int
    customer_name: str
    orders: list[OrderChoice]
    requests: list[RequestView]


def customer_view(*, customer_id: int) -> CustomerAfterSales:
    customer = Customer.objects.filter(pk=customer_id).first()
    if customer is None or customer.status == Customer.Status.ERASED:
        raise NotFound("this link is not valid: check that it was copied whole")
    requests = [
        request_view(request)
        for request in AfterSalesRequest.objects.select_related(
            "customer", "order", "created_by", "decided_by", "appeal_decided_by"
        )
        .filter(customer_id=customer_id)
        .order_by("-id")[:50]
    ]
    return CustomerAfterSales(
        customer_id=customer.pk,
        customer_name=customer.name,
        orders=order_choices(customer_id=customer.pk),
        requests=requests,
    )


# ---------------------------------------------------------------------- the policy


@dataclass(frozen=True)
class PolicyView:
    id: int
    kind: str
    kind_label: str
    category_code: str
    days_after_delivery: int
    requires_reason: bool
    max_compensation: str | None
    description: str
    is_active: bool
    updated_at: datetime


def policy_view(policy: AfterSalesPolicy) -> PolicyView:
    return PolicyView(
        id=policy.pk,
        kind=policy.kind,
        kind_label=_label(Kind, policy.kind),
        category_code=policy.category_code,
        days_after_delivery=policy.days_after_delivery,
        requires_reason=policy.requires_reason,
        max_compensation=(
            f"{policy.max_compensation:.2f}" if policy.max_compensation is not None else None
        ),
        description=policy.description,
        is_active=policy.is_active,
        updated_at=policy.updated_at,
    )


def policy_list(*, user: Any) -> list[PolicyView]:
    require_permission(user, VIEW_AFTERSALES)
    order = {kind: index for index, kind in enumerate(rules.KINDS)}
    rows = sorted(
        AfterSalesPolicy.objects.all(), key=lambda p: (order.get(p.kind, 9), p.category_code)
    )
    return [policy_view(policy) for policy in rows]


def may_change_policy(user: Any) -> bool:
    return bool(user.has_perm(CHANGE_AFTERSALES_POLICY))


# ---------------------------------------------------------------------- logistics exceptions


@dataclass(frozen=True)
class ExceptionRow:
    id: int
    kind: str
    kind_label: str
    status: str
    status_label: str
    detected_at: datetime
    detail: str
    customer_id: int
    customer_name: str
    order_id: int
    order_external_id: str
    shipment_id: int
    carrier: str
    tracking_number: str
    shipment_status: str
    estimated_delivery_at: datetime | None
    last_scan_at: datetime | None
    ticket_id: int | None
    ticket_error: str
    is_customer_notified: bool
    resolved_at: datetime | None


EXCEPTION_STATUSES = tuple(LogisticsException.Status.values)
EXCEPTION_KINDS = tuple(LogisticsException.Kind.values)


def exception_list(
    *,
    user: Any,
    statuses: Sequence[str] = ("open",),
    kinds: Sequence[str] = (),
    limit: int = 50,
    offset: int = 0,
) -> tuple[int, list[ExceptionRow]]:
    """Logistics exceptions, the newest first."""
    require_permission(user, VIEW_AFTERSALES)
    qs = LogisticsException.objects.all()
    if statuses:
        qs = qs.filter(status__in=statuses)
    if kinds:
        qs = qs.filter(kind__in=kinds)
    count = qs.count()
    rows = qs.select_related("customer", "order", "shipment").order_by("-detected_at", "-id")[
        offset : offset + limit
    ]
    return count, [
        ExceptionRow(
            id=e.pk,
            kind=e.kind,
            kind_label=_label(LogisticsException.Kind, e.kind),
            status=e.status,
            status_label=_label(LogisticsException.Status, e.status),
            detected_at=e.detected_at,
            detail=e.detail,
            customer_id=e.customer_id,
            customer_name=e.customer.name,
            order_id=e.order_id,
            order_external_id=e.order.external_id,
            shipment_id=e.shipment_id,
            carrier=e.shipment.carrier,
            tracking_number=e.shipment.tracking_number,
            shipment_status=e.shipment.status,
            estimated_delivery_at=e.shipment.estimated_delivery_at,
            last_scan_at=e.last_scan_at,
            ticket_id=e.ticket_id,
            ticket_error=e.ticket_error,
            is_customer_notified=e.is_customer_notified,
            resolved_at=e.resolved_at,
        )
        for e in rows
    ]


# ---------------------------------------------------------------------- figures


@dataclass(frozen=True)
class QueueStats:
    days: int
    to_decide: int
    outside_policy_waiting: int
    awaiting_goods: int
    received: int
    median_hours_to_decision: float | None
    median_hours_to_resolution: float | None
    decided: int
    approved_share: float | None
    exceptions_granted: int
    appeals: int
    open_logistics_exceptions: int


def queue_stats(*, user: Any, days: int = 30) -> QueueStats:
    """How fast requests are decided and carried out, over the requests of the last ``days``."""
    require_permission(user, VIEW_AFTERSALES)
    since = timezone.now() - timedelta(days=days)
    by_status = dict(
        AfterSalesRequest.objects.values_list("status").annotate(n=Count("id")).order_by()
    )
    recent = AfterSalesRequest.objects.filter(requested_at__gte=since)
    decided = list(
        recent.filter(decided_at__isnull=False).values_list(
            "requested_at", "decided_at", "resolved_at", "status", "is_exception"
        )
    )
    to_decision = [(d - r).total_seconds() / 3600 for r, d, _, _, _ in decided if d is not None]
    to_resolution = [(s - r).total_seconds() / 3600 for r, _, s, _, _ in decided if s is not None]
    approved = recent.filter(decided_at__isnull=False).exclude(status__in=("rejected", "appealed"))
    return QueueStats(
        days=days,
        to_decide=sum(by_status.get(s, 0) for s in rules.TO_DECIDE),
        outside_policy_waiting=AfterSalesRequest.objects.filter(
            status__in=rules.TO_DECIDE, is_within_policy=False
        ).count(),
        awaiting_goods=by_status.get("awaiting_goods", 0),
        received=by_status.get("received", 0),
        median_hours_to_decision=round(statistics.median(to_decision), 1) if to_decision else None,
        median_hours_to_resolution=(
            round(statistics.median(to_resolution), 1) if to_resolution else None
        ),
        decided=len(decided),
        approved_share=(approved.count() / len(decided)) if decided else None,
        exceptions_granted=sum(1 for row in decided if row[4]),
        appeals=recent.filter(appealed_at__isnull=False).count(),
        open_logistics_exceptions=LogisticsException.objects.filter(status="open").count(),
    )
