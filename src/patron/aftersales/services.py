"""After-sales and logistics workflows (R-F1, R-F2). Each public function is one transaction;
each state change is checked against ``patron.aftersales.rules``, recorded as an
``AfterSalesEvent`` (timed), written to the audit log, and told to the customer through the
outbox at each decision.

``user`` is a staff member, or ``None`` for the customer on the public page, whose identity the
signed link established (``patron.aftersales.tokens``): then ``applicant_customer_id`` names
them, and only their own requests can be touched.
"""

from __future__ import annotations

import inspect
import time as clock
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.db.models import OuterRef, Q, Subquery, Sum
from django.utils import timezone

from patron.account.roles import (
    APPROVE_AFTERSALES_EXCEPTION,
    CHANGE_AFTERSALES_POLICY,
    HANDLE_AFTERSALES,
)
from patron.account.services import require_permission
from patron.aftersales import rules
from patron.aftersales.models import (
    AfterSalesEvent,
    AfterSalesLine,
    AfterSalesPolicy,
    AfterSalesRequest,
    Kind,
    LogisticsException,
    ReasonCode,
    Refund,
    RefundMethod,
    Replacement,
    ScanStatus,
    ShipmentEvent,
)
from patron.audit.services import AuditEntry, audit_record
from patron.commerce.models import Category, Order, OrderLine, ReturnRequest, Shipment
from patron.customer.models import Customer
from patron.errors import Conflict, NotFound, PatronError, PermissionDenied, ValidationFailed
from patron.outbox.services import service_message as _tell
from patron.workflow import MAX_REASON, audit_update, locked, reason_text, separate, transition

#: ``source`` of the rows Patron writes into the shop's own tables (returns, shipments).
PATRON_SOURCE = "patron"
CUSTOMER_LABEL = "customer (signed link)"
MONITOR_LABEL = "logistics monitor"
MAX_LINES = 50
MAX_AMOUNT = Decimal("999999999999.99")
#: Orders in these states have nothing to return.
_NOT_DELIVERABLE = frozenset({"created", "cancelled"})
#: Imported returns in these states took the line's goods back (they carry no quantity).
_IMPORTED_RETURNED = ("approved", "received", "refunded", "completed")


class SignatureRefused(PatronError):
    """A webhook whose signature, timestamp or secret does not check out."""

    status = 401
    code = "signature_refused"


def merchant_zone() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def no_scan_hours() -> float:
    """Hours without a scan after which a shipment in transit is an exception."""
    return float(getattr(settings, "PATRON_LOGISTICS_NO_SCAN_HOURS", 48))


def lookback_days() -> int:
    """Shipments sent longer ago than this (and not promised for later) are history, not
    watched: an old import's stale "in transit" rows must not flood the desk."""
    return int(getattr(settings, "PATRON_LOGISTICS_LOOKBACK_DAYS", 30))


def webhook_tolerance() -> int:
    return int(getattr(settings, "PATRON_CARRIER_WEBHOOK_TOLERANCE", 300))


# ---------------------------------------------------------------------- small helpers


def _audit(user: Any, request: AfterSalesRequest, summary: str, **changes: Any) -> None:
    audit_update(
        user,
        entity_type="aftersales.request",
        pk=request.pk,
        customer_id=request.customer_id,
        summary=f"{request.number}: {summary}",
        system_label=CUSTOMER_LABEL,
        **changes,
    )


def _event(
    request: AfterSalesRequest,
    *,
    user: Any,
    action: str,
    before: str,
    at: datetime,
    note: str = "",
) -> AfterSalesEvent:
    return AfterSalesEvent.objects.create(
        request=request,
        at=at,
        actor=user if user is not None else None,
        actor_label=user.get_username() if user is not None else "customer",
        action=action,
        from_status=before,
        to_status=request.status,
        note=note,
    )


def _customer(customer_id: int) -> Customer:
    customer = Customer.objects.filter(pk=customer_id).first()
    if customer is None:
        raise NotFound(f"customer {customer_id} not found")
    if customer.status == Customer.Status.ERASED:
        raise Conflict(f"customer {customer_id} was erased: no after-sales request can be filed")
    return customer


def _next(request: AfterSalesRequest) -> Any:
    def machine(state: str, action: str) -> str:
        return rules.request_next(
            request.kind, state, action, has_appealed=request.appealed_at is not None
        )

    return machine


def _handler(user: Any) -> None:
    require_permission(user, HANDLE_AFTERSALES)


def _locked_for(
    user: Any, request_id: int, applicant_customer_id: int | None = None
) -> AfterSalesRequest:
    """The request, locked; staff need the permission to handle requests, a customer through
    their link sees only their own (any other is "not found")."""
    if user is not None:
        _handler(user)
        return locked(AfterSalesRequest, request_id, "after-sales request")
    request = AfterSalesRequest.objects.select_for_update().filter(pk=request_id).first()
    if (
        request is None
        or applicant_customer_id is None
        or request.customer_id != applicant_customer_id
    ):
        raise NotFound(f"after-sales request {request_id} not found")
    return request


def _money(value: Any, field: str) -> Decimal:
    """A positive amount of money to the cent, or a 422 naming ``field``."""
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise ValidationFailed(f"{field}: expected an amount, got {value!r}") from None
    if not amount.is_finite() or amount <= 0:
        raise ValidationFailed(f"{field}: must be more than zero, got {value}")
    if amount != amount.quantize(rules.CENT):
        raise ValidationFailed(f"{field}: at most two decimal places, got {value}")
    if amount > MAX_AMOUNT:
        raise ValidationFailed(f"{field}: at most {MAX_AMOUNT}, got {value}")
    return amount


def _free_text(text: str, field: str, *, limit: int = MAX_REASON) -> str:
    value = (text or "").strip()
    if "\x00" in value:
        raise ValidationFailed(f"{field}: must not contain NUL characters")
    if len(value) > limit:
        raise ValidationFailed(f"{field}: longer than {limit} characters")
    return value


def _link(customer_id: int) -> str:
    from patron.aftersales.tokens import customer_url

    return customer_url(customer_id)


# ---------------------------------------------------------------------- the policy


@transaction.atomic
def policies_seed() -> int:
    """Create the default policy rows that do not exist yet; returns how many were created."""
    created = 0
    for spec in rules.DEFAULT_POLICIES:
        _, made = AfterSalesPolicy.objects.get_or_create(
            kind=spec["kind"], category_code=spec["category_code"], defaults=spec
        )
        created += int(made)
    return created


def policy_rules() -> list[rules.PolicyRule]:
    """The active policy rows, as the pure rules read them."""
    return [
        rules.PolicyRule(
            kind=row.kind,
            category_code=row.category_code,
            days_after_delivery=row.days_after_delivery,
            requires_reason=row.requires_reason,
            max_compensation=row.max_compensation,
        )
        for row in AfterSalesPolicy.objects.filter(is_active=True)
    ]


POLICY_EDITABLE = (
    "days_after_delivery",
    "requires_reason",
    "max_compensation",
    "description",
    "is_active",
)


def _policy_values(changes: Mapping[str, Any], where: str) -> dict[str, Any]:
    unknown = set(changes) - set(POLICY_EDITABLE)
    if unknown:
        raise ValidationFailed(f"{where}: cannot change {', '.join(sorted(unknown))}")
    values = dict(changes)
    if "days_after_delivery" in values:
        days = values["days_after_delivery"]
        if not isinstance(days, int) or isinstance(days, bool) or not 0 <= days <= 3650:
            raise ValidationFailed(f"{where}.days_after_delivery: a whole number from 0 to 3650")
    if values.get("max_compensation") is not None:
        values["max_compensation"] = _money(values["max_compensation"], f"{where}.max_compensation")
    if "description" in values:
        values["description"] = _free_text(
            str(values["description"]), f"{where}.description", limit=200
        )
    return values


@transaction.atomic
def policy_update(*, user: Any, policy_id: int, changes: Mapping[str, Any]) -> AfterSalesPolicy:
    """Edit a policy row; the audit log keeps old and new values. Requests already filed keep
    the verdict they were filed with."""
    require_permission(user, CHANGE_AFTERSALES_POLICY)
    policy = locked(AfterSalesPolicy, policy_id, "after-sales policy")
    values = _policy_values(changes, f"policy {policy_id}")
    old = {name: _plain(getattr(policy, name)) for name in values}
    for name, value in values.items():
        setattr(policy, name, value)
    policy.save()
    audit_record(
        AuditEntry(
            action="update",
            entity_type="aftersales.policy",
            entity_id=str(policy.pk),
            summary=f"after-sales policy {policy.kind} {policy.category_code or '*'} changed",
            changes={
                name: {"old": old[name], "new": _plain(value)} for name, value in values.items()
            },
        ),
        actor=user,
    )
    return policy


@transaction.atomic
def policy_create(
    *, user: Any, kind: str, category_code: str, values: Mapping[str, Any]
) -> AfterSalesPolicy:
    """Add a row for a kind and a category (or every category: ``category_code`` empty)."""
    require_permission(user, CHANGE_AFTERSALES_POLICY)
    if kind not in rules.KINDS:
        raise ValidationFailed(f"kind: one of {', '.join(rules.KINDS)}; got {kind!r}")
    code = _free_text(category_code, "category_code", limit=100)
    if "days_after_delivery" not in values:
        raise ValidationFailed("days_after_delivery: required")
    checked = _policy_values(values, "policy")
    if AfterSalesPolicy.objects.filter(kind=kind, category_code=code).exists():
        raise Conflict(
            f"a {kind} policy for category {code or '(every category)'} exists: change that one"
        )
    policy = AfterSalesPolicy.objects.create(kind=kind, category_code=code, **checked)
    audit_record(
        AuditEntry(
            action="create",
            entity_type="aftersales.policy",
            entity_id=str(policy.pk),
            summary=f"after-sales policy {kind} {code or '*'} added",
            changes={name: _plain(value) for name, value in checked.items()},
        ),
        actor=user,
    )
    return policy


def _plain(value: Any) -> Any:
    return str(value) if isinstance(value, Decimal) else value


# ---------------------------------------------------------------------- facts


def order_delivery(order: Order) -> datetime | None:
    """When the order's goods were delivered, which the windows count from: the latest
    delivery of its shipments, else the order's own delivery time, else — when it has
    shipments still on their way — None (not delivered yet), else the order's date."""
    shipments = list(
        Shipment.objects.filter(order=order)
        .exclude(source=PATRON_SOURCE)
        .values_list("delivered_at", flat=True)
    )
    delivered = [at for at in shipments if at is not None]
    if delivered:
        return max(delivered)
    if order.delivered_at is not None:
        return order.delivered_at
    if shipments:
        return None
    return order.placed_at


def _category_chain(category: Category | None) -> list[Category]:
    chain: list[Category] = []
    while category is not None and len(chain) < 6 and category not in chain:
        chain.append(category)
        category = category.parent
    return chain


def line_facts(line: OrderLine) -> rules.LineFacts:
    product = line.product
    chain = _category_chain(product.category if product is not None else None)
    if not chain:
        return rules.LineFacts()
    first = chain[0]
    return rules.LineFacts(
        category_codes=tuple(c.external_id for c in chain),
        category_name={"en": first.name_en or first.name, "zh-hans": first.name},
        is_no_reason_exempt=any(c.is_no_reason_return_exempt for c in chain),
    )


def units_available(line: OrderLine, *, excluding: int | None = None) -> tuple[int, int]:
    """How many of the line's units can still be asked about for a return, an exchange or a
    repair, and how many are taken (by requests holding them, ``rules.units_taken``, and by an
    imported return that took the line back, which carries no quantity: all of them)."""
    if (
        ReturnRequest.objects.filter(order_line=line, kind="return", status__in=_IMPORTED_RETURNED)
        .exclude(source=PATRON_SOURCE)
        .exists()
    ):
        return 0, line.quantity
    taken = 0
    rows = AfterSalesLine.objects.filter(order_line=line).values_list(
        "quantity", "request__kind", "request__status", "request_id"
    )
    for quantity, kind, status, request_id in rows:
        if request_id != excluding and rules.units_taken(kind, status):
            taken += quantity
    return max(line.quantity - taken, 0), taken


@dataclass(frozen=True)
class LineRequest:
    order_line_id: int
    quantity: int


# ---------------------------------------------------------------------- filing


def _validate_lines(
    order: Order, kind: str, lines: Sequence[LineRequest]
) -> list[tuple[OrderLine, int]]:
    if not lines:
        raise ValidationFailed("lines: name at least one order line", details={"field": "lines"})
    if len(lines) > MAX_LINES:
        raise ValidationFailed(f"lines: at most {MAX_LINES} lines", details={"field": "lines"})
    ids = [item.order_line_id for item in lines]
    found = {
        line.pk: line
        for line in OrderLine.objects.select_for_update(of=("self",))
        .select_related("product__category")
        .filter(pk__in=ids, order=order)
    }
    chosen: list[tuple[OrderLine, int]] = []
    seen: set[int] = set()
    for index, item in enumerate(lines):
        where = f"lines.{index}"
        line = found.get(item.order_line_id)
        if line is None:
            raise ValidationFailed(
                f"{where}.order_line_id: order line {item.order_line_id} is not on order "
                f"{order.external_id}",
                details={"field": f"{where}.order_line_id"},
            )
        if line.pk in seen:
            raise ValidationFailed(
                f"{where}.order_line_id: order line {line.pk} is listed twice",
                details={"field": f"{where}.order_line_id"},
            )
        seen.add(line.pk)
        if item.quantity < 1:
            raise ValidationFailed(
                f"{where}.quantity: at least 1, got {item.quantity}",
                details={"field": f"{where}.quantity"},
            )
        if kind in rules.GOODS_KINDS:
            available, taken = units_available(line)
            if item.quantity > available:
                raise ValidationFailed(
                    f"{where}.quantity: at most {available} of order line {line.pk} can still be "
                    f"asked about (bought {line.quantity}, {taken} already returned or under way); "
                    f"got {item.quantity}",
                    details={"field": f"{where}.quantity", "available": available},
                )
        elif item.quantity > line.quantity:
            raise ValidationFailed(
                f"{where}.quantity: order line {line.pk} has {line.quantity}; got {item.quantity}",
                details={"field": f"{where}.quantity", "available": line.quantity},
            )
        chosen.append((line, item.quantity))
    return chosen


def _no_live_compensation(lines: Sequence[tuple[OrderLine, int]]) -> None:
    live = (
        AfterSalesLine.objects.filter(
            order_line__in=[line for line, _ in lines], request__kind="compensation"
        )
        .exclude(request__status__in=("rejected", "cancelled", "closed", "refunded"))
        .values_list("request_id", "order_line_id")
        .first()
    )
    if live is not None:
        raise Conflict(
            f"order line {live[1]} already has a compensation request under way (AS{live[0]})"
        )


@transaction.atomic
def aftersales_file(
    *,
    user: Any,
    customer_id: int,
    order_id: int,
    kind: str,
    reason_code: str,
    reason: str = "",
    lines: Sequence[LineRequest],
    requested_amount: Decimal | str | None = None,
    channel: str = AfterSalesRequest.Channel.STAFF,
    applicant_customer_id: int | None = None,
) -> AfterSalesRequest:
    """File a request for a customer (staff) or by the customer (their link).

    Checked: the order is the customer's, each line is on the order, the quantity is at most
    what was bought less what is already returned or under way (the lines are locked, so two
    filings cannot both take the last unit), a compensation names its amount. The policy
    verdict is judged now and kept: outside the policy the request is filed all the same, and
    approving it is a supervisor's exception (``APPROVE_AFTERSALES_EXCEPTION``).
    """
    if user is not None:
        _handler(user)
    elif applicant_customer_id is None or applicant_customer_id != customer_id:
        raise PermissionDenied("a customer files after-sales requests for themselves only")
    customer = _customer(customer_id)
    if kind not in rules.KINDS:
        raise ValidationFailed(f"kind: one of {', '.join(rules.KINDS)}; got {kind!r}")
    if reason_code not in ReasonCode.values:
        raise ValidationFailed(
            f"reason_code: one of {', '.join(ReasonCode.values)}; got {reason_code!r}"
        )
    text = _free_text(reason, "reason")
    if reason_code == ReasonCode.OTHER and not text:
        raise ValidationFailed("reason: say what is wrong when the reason is 'other'")
    order = Order.objects.filter(pk=order_id).first()
    if order is None or (user is None and order.customer_id != customer.pk):
        raise NotFound(f"order {order_id} not found")
    if order.customer_id != customer.pk:
        raise ValidationFailed(
            f"order_id: order {order.external_id} is not customer {customer.pk}'s",
            details={"field": "order_id"},
        )
    if order.status in _NOT_DELIVERABLE:
        raise Conflict(f"order {order.external_id} is {order.status}: nothing to return")
    chosen = _validate_lines(order, kind, lines)
    shares = [rules.paid_share(line.amount, line.quantity, qty) for line, qty in chosen]
    amount: Decimal | None = None
    if kind == "compensation":
        _no_live_compensation(chosen)
        if requested_amount is None:
            raise ValidationFailed(
                "requested_amount: a compensation names the amount asked",
                details={"field": "requested_amount"},
            )
        amount = _money(requested_amount, "requested_amount")
        if amount > sum(shares, Decimal("0")):
            raise ValidationFailed(
                f"requested_amount: {amount:.2f} is more than was paid for the lines "
                f"({sum(shares, Decimal('0')):.2f})",
                details={"field": "requested_amount"},
            )
    elif requested_amount is not None:
        raise ValidationFailed(
            "requested_amount: only a compensation asks an amount",
            details={"field": "requested_amount"},
        )
    now = timezone.now()
    delivered_at = order_delivery(order)
    verdict = rules.policy_check(
        kind=kind,
        reason_code=reason_code,
        lines=[line_facts(line) for line, _ in chosen],
        delivered_at=delivered_at,
        now=now,
        policies=policy_rules(),
        zone=merchant_zone(),
        requested_amount=amount,
    )
    request = AfterSalesRequest.objects.create(
        customer=customer,
        order=order,
        kind=kind,
        channel=channel,
        reason_code=reason_code,
        reason=text,
        requested_amount=amount,
        currency=order.currency,
        requested_at=now,
        delivered_at=delivered_at,
        is_within_policy=verdict.is_allowed,
        policy_reasons=list(verdict.reasons),
        policy_deadline=verdict.deadline,
        created_by=user,
    )
    AfterSalesLine.objects.bulk_create(
        AfterSalesLine(request=request, order_line=line, quantity=qty, paid_amount=share)
        for (line, qty), share in zip(chosen, shares, strict=True)
    )
    verdict_text = (
        "within the policy"
        if verdict.is_allowed
        else "outside the policy: " + "; ".join(rules.english(r) for r in verdict.reasons)
    )
    _event(request, user=user, action="file", before="", at=now, note=verdict_text)
    _audit(
        user,
        request,
        f"{kind} filed on order {order.external_id}, {verdict_text}",
        lines={str(line.pk): qty for line, qty in chosen},
        reason_code=reason_code,
        requested_amount=_plain(amount) if amount is not None else None,
    )
    return request


# ---------------------------------------------------------------------- decisions


def _exception(user: Any, request: AfterSalesRequest, exception_reason: str) -> str:
    """Outside the policy, approving is a supervisor's exception, with its reason recorded."""
    if request.is_within_policy:
        return ""
    why = "; ".join(rules.english(r) for r in request.policy_reasons) or "outside the policy"
    try:
        require_permission(user, APPROVE_AFTERSALES_EXCEPTION)
    except PermissionDenied as error:
        raise PermissionDenied(
            f"{request.number} is outside the policy ({why}): approving it is an exception "
            f"only a supervisor may make; {error.message}"
        ) from error
    return reason_text(
        exception_reason, f"exception_reason ({request.number} is outside the policy: {why})"
    )


def _units_still_free(request: AfterSalesRequest) -> None:
    """An appeal approved after a rejection: the units may have been asked about since."""
    if request.kind not in rules.GOODS_KINDS:
        return
    for item in request.lines.select_related("order_line"):
        line = OrderLine.objects.select_for_update().get(pk=item.order_line_id)
        available, _ = units_available(line, excluding=request.pk)
        if item.quantity > available:
            raise Conflict(
                f"{request.number}: only {available} of order line {line.pk} can still be "
                f"returned; the request asks {item.quantity}"
            )


def _approved(
    user: Any,
    request: AfterSalesRequest,
    *,
    action: str,
    before: str,
    reason: str,
    exception: str,
    now: datetime,
) -> None:
    """After an approval: the event, the customer's goods asked back, the message."""
    _event(request, user=user, action=action, before=before, at=now, note=reason)
    if request.kind in rules.GOODS_KINDS:
        before = request.status
        request.status = transition(_next(request), before, "await_goods")
        request.save(update_fields=["status", "updated_at"])
        _event(
            request,
            user=user,
            action="await_goods",
            before=before,
            at=now,
            note="the customer is asked to send the goods back",
        )
    _audit(
        user,
        request,
        "approved as an exception to the policy" if exception else "approved",
        reason=reason or None,
        exception_reason=exception or None,
    )
    _tell(
        request.customer_id,
        "aftersales.approved",
        key=f"aftersales.approved:{request.pk}:{action}",
        source=f"aftersales.request:{request.pk}",
        request=request.number,
        order=request.order.external_id,
        link=_link(request.customer_id),
    )


@transaction.atomic
def aftersales_approve(
    *, user: Any, request_id: int, reason: str = "", exception_reason: str = ""
) -> AfterSalesRequest:
    """Approve a request. Outside the policy only a supervisor may, giving the exception's
    reason; the kinds whose goods come back then wait for them."""
    request = _locked_for(user, request_id)
    before = request.status
    status = transition(_next(request), before, "approve")
    exception = _exception(user, request, exception_reason)
    note = _free_text(reason, "reason")
    now = timezone.now()
    request.status = status
    request.decided_by = user
    request.decided_at = now
    request.decision_reason = note
    request.is_exception = bool(exception)
    request.exception_reason = exception
    request.save()
    _approved(
        user,
        request,
        action="approve",
        before=before,
        reason=exception or note,
        exception=exception,
        now=now,
    )
    return request


@transaction.atomic
def aftersales_reject(*, user: Any, request_id: int, reason: str) -> AfterSalesRequest:
    """Turn a request down with the reason the customer is told; they may appeal once."""
    request = _locked_for(user, request_id)
    before = request.status
    request.status = transition(_next(request), before, "reject")
    text = reason_text(reason, f"reason ({request.number})")
    now = timezone.now()
    request.decided_by = user
    request.decided_at = now
    request.decision_reason = text
    request.save()
    _event(request, user=user, action="reject", before=before, at=now, note=text)
    _audit(user, request, "rejected", reason=text)
    _tell(
        request.customer_id,
        "aftersales.rejected",
        key=f"aftersales.rejected:{request.pk}",
        source=f"aftersales.request:{request.pk}",
        request=request.number,
        order=request.order.external_id,
        reason=text,
        link=_link(request.customer_id),
    )
    return request


@transaction.atomic
def aftersales_appeal(
    *, user: Any, request_id: int, reason: str, applicant_customer_id: int | None = None
) -> AfterSalesRequest:
    """The customer's appeal against a rejection (online through their link, or through an
    agent): once per request."""
    request = _locked_for(user, request_id, applicant_customer_id)
    before = request.status
    request.status = transition(_next(request), before, "appeal")
    text = reason_text(reason, f"reason ({request.number})")
    now = timezone.now()
    request.appeal_reason = text
    request.appealed_at = now
    request.save()
    _event(request, user=user, action="appeal", before=before, at=now, note=text)
    _audit(user, request, "appealed", reason=text)
    return request


@transaction.atomic
def aftersales_appeal_decide(
    *, user: Any, request_id: int, approve: bool, reason: str, exception_reason: str = ""
) -> AfterSalesRequest:
    """Decide an appeal: never by the person who made the decision appealed against (403).
    Approved, the request goes on as any approved one (outside the policy: an exception);
    rejected, the rejection is final."""
    request = _locked_for(user, request_id)
    separate(rules.check_appeal_decider, user.pk, first_decider_id=request.decided_by_id)
    before = request.status
    action = "approve_appeal" if approve else "reject_appeal"
    status = transition(_next(request), before, action)
    text = reason_text(reason, f"reason ({request.number})")
    exception = _exception(user, request, exception_reason) if approve else ""
    if approve:
        _units_still_free(request)
    now = timezone.now()
    request.status = status
    request.appeal_decided_by = user
    request.appeal_decided_at = now
    request.appeal_decision_reason = text
    if approve:
        request.is_exception = bool(exception)
        request.exception_reason = exception
    request.save()
    if approve:
        _approved(
            user,
            request,
            action=action,
            before=before,
            reason=text,
            exception=exception,
            now=now,
        )
        return request
    _event(request, user=user, action=action, before=before, at=now, note=text)
    _audit(user, request, "appeal rejected: the rejection is final", reason=text)
    _tell(
        request.customer_id,
        "aftersales.rejected",
        key=f"aftersales.rejected:{request.pk}:appeal",
        source=f"aftersales.request:{request.pk}",
        request=request.number,
        order=request.order.external_id,
        reason=text,
        link=_link(request.customer_id),
    )
    return request


# ---------------------------------------------------------------------- carrying it out


@transaction.atomic
def aftersales_receive(*, user: Any, request_id: int, note: str = "") -> AfterSalesRequest:
    """The goods came back to the shop."""
    request = _locked_for(user, request_id)
    before = request.status
    request.status = transition(_next(request), before, "receive")
    text = _free_text(note, "note")
    now = timezone.now()
    request.received_at = now
    request.save()
    _event(request, user=user, action="receive", before=before, at=now, note=text)
    _audit(user, request, "goods received", note=text or None)
    return request


def refundable_amount(request: AfterSalesRequest) -> Decimal:
    """What may still be refunded on the request (``rules.refundable``): its lines' paid share
    less its refunds, and at most what was paid for those lines less every refund on them —
    other requests' and imported returns' included. Compensation is capped by its amount."""
    items = list(request.lines.select_related("order_line"))
    line_ids = [item.order_line_id for item in items]
    paid = sum((item.paid_amount for item in items), Decimal("0"))
    lines_paid = sum((item.order_line.amount for item in items), Decimal("0"))
    refunded_here = Refund.objects.filter(request=request).aggregate(s=Sum("amount"))[
        "s"
    ] or Decimal("0")
    others = Refund.objects.filter(request__lines__order_line_id__in=line_ids).exclude(
        request=request
    ).distinct().aggregate(s=Sum("amount"))["s"] or Decimal("0")
    imported = ReturnRequest.objects.filter(order_line_id__in=line_ids).exclude(
        source=PATRON_SOURCE
    ).aggregate(s=Sum("refund_amount"))["s"] or Decimal("0")
    remaining = rules.refundable(
        paid=paid,
        refunded_here=refunded_here,
        lines_paid=lines_paid,
        refunded_on_lines=refunded_here + others + imported,
    )
    if request.kind == "compensation" and request.requested_amount is not None:
        remaining = min(remaining, max(request.requested_amount - refunded_here, Decimal("0")))
    return remaining


def _record_return(request: AfterSalesRequest, now: datetime) -> None:
    """The request as a ``commerce.ReturnRequest`` row (source ``patron``, ``AS<id>``), so that
    the scores and risk rules count it with the imported history: same kind, requested when
    the customer asked, the order's delivery as the rules read it, the refunds so far."""
    first = request.lines.order_by("id").first()
    refunded = request.refunds.aggregate(s=Sum("amount"))["s"] or Decimal("0")
    label = str(ReasonCode(request.reason_code).label)
    text = f"{label}: {request.reason}" if request.reason else label
    ReturnRequest.objects.update_or_create(
        source=PATRON_SOURCE,
        external_id=request.number,
        defaults={
            "order": request.order,
            "order_line_id": first.order_line_id if first is not None else None,
            "kind": request.kind,
            "status": rules.RETURN_RECORD_STATUS[request.status],
            "reason": text[:200],
            "requested_at": request.requested_at,
            "resolved_at": request.resolved_at or now,
            "refund_amount": refunded,
            "currency": request.currency,
        },
    )


def _resolved(request: AfterSalesRequest, now: datetime) -> None:
    if request.resolved_at is None:
        request.resolved_at = now
    request.save()
    _record_return(request, now)


@transaction.atomic
def aftersales_refund(
    *,
    user: Any,
    request_id: int,
    amount: Decimal | str,
    method: str = RefundMethod.ORIGINAL,
    reference: str = "",
) -> Refund:
    """Pay money back on a return (after the goods came back) or a compensation (once
    approved); in parts if need be. Never more than ``refundable_amount``: the request and its
    order lines are locked, so two refunds at once cannot both take the last yuan (409)."""
    request = _locked_for(user, request_id)
    before = request.status
    status = transition(_next(request), before, "refund")
    value = _money(amount, "amount")
    if method not in RefundMethod.values:
        raise ValidationFailed(f"method: one of {', '.join(RefundMethod.values)}; got {method!r}")
    ref = _free_text(reference, "reference", limit=100)
    # Every request touching these lines refunds under the same locks.
    list(
        OrderLine.objects.select_for_update()
        .filter(pk__in=request.lines.values("order_line_id"))
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    remaining = refundable_amount(request)
    if value > remaining:
        raise Conflict(
            f"{request.number}: a refund of {value:.2f} is more than can still be refunded "
            f"({remaining:.2f} {request.currency})",
            details={"refundable": f"{remaining:.2f}"},
        )
    now = timezone.now()
    refund = Refund.objects.create(
        request=request,
        amount=value,
        currency=request.currency,
        method=method,
        reference=ref,
        at=now,
        created_by=user,
    )
    request.status = status
    _resolved(request, now)
    _event(
        request,
        user=user,
        action="refund",
        before=before,
        at=now,
        note=f"{value:.2f} {request.currency} ({method}{', ' + ref if ref else ''})",
    )
    _audit(user, request, f"refunded {value:.2f} {request.currency}", method=method, reference=ref)
    _tell(
        request.customer_id,
        "aftersales.refunded",
        key=f"aftersales.refunded:{refund.pk}",
        source=f"aftersales.request:{request.pk}",
        request=request.number,
        order=request.order.external_id,
        amount=f"{value:.2f} {request.currency}",
    )
    return refund


@transaction.atomic
def aftersales_replace(
    *, user: Any, request_id: int, carrier: str, tracking_number: str
) -> Replacement:
    """Ship the replacement of an exchange: a new shipment on the order (source ``patron``),
    tracked like any other."""
    request = _locked_for(user, request_id)
    before = request.status
    status = transition(_next(request), before, "replace")
    carrier_name = _free_text(carrier, "carrier", limit=40)
    tracking = _free_text(tracking_number, "tracking_number", limit=60)
    if not carrier_name:
        raise ValidationFailed("carrier: name the carrier of the replacement")
    if not tracking:
        raise ValidationFailed("tracking_number: the replacement's tracking number is required")
    now = timezone.now()
    number = request.replacements.count() + 1
    shipment = Shipment.objects.create(
        source=PATRON_SOURCE,
        external_id=f"{request.number}-R{number}",
        order=request.order,
        carrier=carrier_name,
        tracking_number=tracking,
        status=Shipment.Status.IN_TRANSIT,
        shipped_at=now,
    )
    replacement = Replacement.objects.create(
        request=request,
        shipment=shipment,
        carrier=carrier_name,
        tracking_number=tracking,
        at=now,
        created_by=user,
    )
    request.status = status
    _resolved(request, now)
    _event(
        request,
        user=user,
        action="replace",
        before=before,
        at=now,
        note=f"{carrier_name} {tracking}",
    )
    _audit(user, request, f"replacement shipped: {carrier_name} {tracking}")
    return replacement


@transaction.atomic
def aftersales_repair(*, user: Any, request_id: int, note: str = "") -> AfterSalesRequest:
    """The goods were repaired (and go back to the customer)."""
    request = _locked_for(user, request_id)
    before = request.status
    request.status = transition(_next(request), before, "repair")
    text = _free_text(note, "note")
    now = timezone.now()
    _resolved(request, now)
    _event(request, user=user, action="repair", before=before, at=now, note=text)
    _audit(user, request, "repaired", note=text or None)
    return request


@transaction.atomic
def aftersales_close(*, user: Any, request_id: int, note: str = "") -> AfterSalesRequest:
    """Close a request that was carried out."""
    request = _locked_for(user, request_id)
    before = request.status
    request.status = transition(_next(request), before, "close")
    text = _free_text(note, "note")
    now = timezone.now()
    request.closed_at = now
    request.save()
    _event(request, user=user, action="close", before=before, at=now, note=text)
    _audit(user, request, "closed", note=text or None)
    return request


@transaction.atomic
def aftersales_cancel(
    *, user: Any, request_id: int, reason: str, applicant_customer_id: int | None = None
) -> AfterSalesRequest:
    """The customer withdraws the request (themselves, or through an agent) before the goods
    are received."""
    request = _locked_for(user, request_id, applicant_customer_id)
    before = request.status
    request.status = transition(_next(request), before, "cancel")
    text = reason_text(reason, f"reason ({request.number})")
    now = timezone.now()
    request.cancelled_at = now
    request.save()
    _event(request, user=user, action="cancel", before=before, at=now, note=text)
    _audit(user, request, "cancelled by the customer", reason=text)
    return request


# ---------------------------------------------------------------------- the customer's link


@transaction.atomic
def aftersales_link_issue(*, user: Any, customer_id: int, absolute: bool = True) -> str:
    """The customer's signed link to their after-sales page, for staff to send them. The link
    acts as the customer for after-sales, so handing it out is audited."""
    from patron.aftersales.tokens import customer_path, link_days

    if user is not None:
        _handler(user)
    _customer(customer_id)
    audit_record(
        AuditEntry(
            action="access",
            entity_type="aftersales.customer_link",
            entity_id=str(customer_id),
            customer_id=customer_id,
            summary=f"after-sales link issued (valid {link_days()} days)",
        ),
        actor=user,
        actor_label="" if user is not None else "command line",
    )
    return _link(customer_id) if absolute else customer_path(customer_id)


# ---------------------------------------------------------------------- carrier scans


@dataclass(frozen=True)
class CarrierScan:
    event_id: str
    at: datetime
    status: str
    location: str = ""
    description: str = ""


@dataclass(frozen=True)
class CarrierScansResult:
    shipment_id: int
    created: int
    duplicates: int
    status: str
    delivered_at: datetime | None


def carrier_signature_check(
    *, timestamp: str, signature: str, payload: bytes, now: float | None = None
) -> None:
    """Trust a carrier's request only when signed with ``PATRON_CARRIER_WEBHOOK_SECRET``
    (``rules.webhook_signature``) within ``PATRON_CARRIER_WEBHOOK_TOLERANCE`` seconds (401)."""
    problem = rules.signature_problem(
        secret=str(getattr(settings, "PATRON_CARRIER_WEBHOOK_SECRET", "") or ""),
        timestamp=timestamp,
        signature=signature,
        payload=payload,
        now=clock.time() if now is None else now,
        tolerance=webhook_tolerance(),
    )
    if problem:
        raise SignatureRefused(problem)


def _aware(moment: datetime) -> datetime:
    return moment if timezone.is_aware(moment) else moment.replace(tzinfo=merchant_zone())


@transaction.atomic
def carrier_scans_record(
    *,
    carrier: str,
    tracking_number: str,
    scans: Sequence[CarrierScan],
    source: str = "carrier_webhook",
) -> CarrierScansResult:
    """Record a carrier's scans of one shipment (found by tracking number, and carrier when
    given) and move the shipment: the latest scan decides its status, a delivery scan its
    delivery time (and the order's, when the order had none). Idempotent: a scan already
    recorded (same carrier event id) is counted as a duplicate and changes nothing."""
    shipments = Shipment.objects.select_for_update().filter(tracking_number=tracking_number)
    if carrier:
        shipments = shipments.filter(carrier__iexact=carrier)
    shipment = shipments.order_by("-id").first()
    if shipment is None:
        raise NotFound(
            f"no shipment with tracking number {tracking_number!r} ({carrier or 'any carrier'})"
        )
    for index, scan in enumerate(scans):
        if scan.status not in ScanStatus.values:
            raise ValidationFailed(
                f"events.{index}.status: one of {', '.join(ScanStatus.values)}; got {scan.status!r}"
            )
    known = set(
        ShipmentEvent.objects.filter(
            shipment=shipment, carrier_event_id__in=[s.event_id for s in scans]
        ).values_list("carrier_event_id", flat=True)
    )
    now = timezone.now()
    fresh: dict[str, CarrierScan] = {}
    for scan in scans:
        if scan.event_id not in known:
            fresh.setdefault(scan.event_id, scan)
    ShipmentEvent.objects.bulk_create(
        ShipmentEvent(
            shipment=shipment,
            carrier_event_id=scan.event_id,
            at=_aware(scan.at),
            status=scan.status,
            location=scan.location[:200],
            description=scan.description[:500],
            source=source[:40],
            received_at=now,
        )
        for scan in fresh.values()
    )
    if fresh:
        all_scans = [
            rules.ScanFacts(at=at, status=status)
            for at, status in ShipmentEvent.objects.filter(shipment=shipment).values_list(
                "at", "status"
            )
        ]
        status, delivered_at = rules.shipment_after_scans(all_scans)
        before = (shipment.status, shipment.delivered_at)
        shipment.status = status
        shipment.delivered_at = delivered_at if status == "delivered" else shipment.delivered_at
        if (shipment.status, shipment.delivered_at) != before:
            shipment.save(update_fields=["status", "delivered_at"])
        if status == "delivered" and delivered_at is not None:
            Order.objects.filter(pk=shipment.order_id, delivered_at__isnull=True).update(
                delivered_at=delivered_at
            )
            Order.objects.filter(pk=shipment.order_id, status=Order.Status.SHIPPED).update(
                status=Order.Status.DELIVERED
            )
    return CarrierScansResult(
        shipment_id=shipment.pk,
        created=len(fresh),
        duplicates=len(scans) - len(fresh),
        status=shipment.status,
        delivered_at=shipment.delivered_at,
    )


# ---------------------------------------------------------------------- logistics exceptions


@dataclass(frozen=True)
class LogisticsCheckResult:
    watched: int
    found: int
    resolved: int
    tickets_opened: int
    tickets_waiting: int
    customers_told: int

    def as_dict(self) -> dict[str, int]:
        return {
            "watched": self.watched,
            "found": self.found,
            "resolved": self.resolved,
            "tickets_opened": self.tickets_opened,
            "tickets_waiting": self.tickets_waiting,
            "customers_told": self.customers_told,
        }


def _watched(now: datetime) -> Any:
    """Shipments on their way, sent within the look-back (or with an exception still open),
    each with its latest scan."""
    since = now - timedelta(days=lookback_days())
    latest = ShipmentEvent.objects.filter(shipment=OuterRef("pk")).order_by("-at", "-id")
    recent = Q(shipped_at__gte=since) | Q(estimated_delivery_at__gte=since)
    recent |= Q(shipped_at__isnull=True, estimated_delivery_at__isnull=True)
    with_open = Q(pk__in=LogisticsException.objects.filter(status="open").values("shipment_id"))
    return (
        Shipment.objects.filter(status__in=rules.WATCHED, delivered_at__isnull=True)
        .filter(recent | with_open)
        .annotate(
            last_scan_at=Subquery(latest.values("at")[:1]),
            last_scan_status=Subquery(latest.values("status")[:1]),
        )
        .select_related("order")
        .order_by("pk")
    )


def _facts(shipment: Any) -> rules.ShipmentFacts:
    return rules.ShipmentFacts(
        status=shipment.status,
        shipped_at=shipment.shipped_at,
        estimated_delivery_at=shipment.estimated_delivery_at,
        delivered_at=shipment.delivered_at,
        last_scan_at=getattr(shipment, "last_scan_at", None),
        last_scan_status=getattr(shipment, "last_scan_status", None) or "",
    )


def _ticket_text(exception: LogisticsException, shipment: Shipment) -> tuple[str, str]:
    order = exception.order
    subject = f"Delivery problem on order {order.external_id}: {exception.get_kind_display()}"
    body = (
        f"The logistics monitor found a problem with the shipment of order {order.external_id} "
        f"({shipment.carrier} {shipment.tracking_number}): {exception.detail}.\n"
        "Check with the carrier and tell the customer what happens next."
    )
    return subject[:200], body


def _desk_options(ticket_open: Any, *, now: datetime) -> dict[str, Any]:
    """The desk's optional arguments this monitor wants, where its ``ticket_open`` takes them:
    no FAQ auto-answer (the shop is telling the customer, not answering a question) and the
    check's own time as the ticket's."""
    try:
        parameters = inspect.signature(ticket_open).parameters
    except (TypeError, ValueError):
        return {}
    wanted = {"auto_reply": False, "now": now}
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return wanted
    return {name: value for name, value in wanted.items() if name in parameters}


def _open_ticket(exception: LogisticsException, shipment: Shipment) -> bool:
    """A proactive ticket through the service desk (one per shipment: another exception of the
    same shipment shares its ticket). Returns whether the exception now has a ticket; when the
    desk refuses or cannot open tickets yet, the reason is kept and the next run tries again."""
    sibling = (
        LogisticsException.objects.filter(shipment=shipment, ticket__isnull=False)
        .exclude(pk=exception.pk)
        .values_list("ticket_id", flat=True)
        .first()
    )
    if sibling is not None:
        exception.ticket_id = sibling
        exception.ticket_error = ""
        return True
    try:
        from patron.service import services as desk

        ticket_open = desk.ticket_open
    except (ImportError, AttributeError):
        exception.ticket_error = "the service desk cannot open tickets yet (ticket_open)"
        return False
    subject, body = _ticket_text(exception, shipment)
    extra = _desk_options(ticket_open, now=exception.detected_at)
    try:
        with transaction.atomic():  # a refusal must not undo the rest of the run
            ticket = ticket_open(
                customer_id=exception.customer_id,
                channel="web",
                subject=subject,
                body=body,
                category="logistics",
                order_id=exception.order_id,
                actor_label=MONITOR_LABEL,
                external_id=f"LX-S{shipment.pk}",
                **extra,
            )
    except PatronError as error:
        exception.ticket_error = error.message[:1000]
        return False
    exception.ticket = ticket
    exception.ticket_error = ""
    return True


def _tell_customer(exception: LogisticsException, shipment: Shipment) -> bool:
    """One message per shipment, whatever the number of its exceptions (the key says so)."""
    try:
        _tell(
            exception.customer_id,
            "logistics.exception",
            key=f"logistics.exception:{shipment.pk}",
            source=f"aftersales.logistics_exception:{exception.pk}",
            order=exception.order.external_id,
            carrier=shipment.carrier or "-",
            tracking=shipment.tracking_number or "-",
        )
    except (NotFound, ValidationFailed):
        return False
    return True


@transaction.atomic
def logistics_check(*, now: datetime | None = None) -> LogisticsCheckResult:
    """Find the shipments in trouble (``rules.logistics_findings``) and act once on each new
    one: a ``LogisticsException`` (one per shipment and kind), a proactive ticket, a message to
    the customer. Exceptions whose cause has gone are resolved; tickets the desk could not open
    are tried again. Safe to run twice: nothing is created or sent a second time."""
    moment = now or timezone.now()
    zone = merchant_zone()
    hours = no_scan_hours()
    found = resolved = opened = waiting = told = watched = 0
    open_kinds: dict[int, dict[str, LogisticsException]] = {}
    for exception in LogisticsException.objects.select_for_update().filter(status="open"):
        open_kinds.setdefault(exception.shipment_id, {})[exception.kind] = exception
    for shipment in _watched(moment).iterator(chunk_size=500):
        watched += 1
        facts = _facts(shipment)
        for finding in rules.logistics_findings(facts, now=moment, no_scan_hours=hours, zone=zone):
            if LogisticsException.objects.filter(shipment=shipment, kind=finding.kind).exists():
                continue
            exception = LogisticsException.objects.create(
                shipment=shipment,
                order=shipment.order,
                customer_id=shipment.order.customer_id,
                kind=finding.kind,
                detected_at=moment,
                detail=finding.detail,
                last_scan_at=facts.last_scan_at,
            )
            found += 1
            opened += int(_open_ticket(exception, shipment))
            exception.is_customer_notified = _tell_customer(exception, shipment)
            told += int(exception.is_customer_notified)
            exception.save()
            audit_record(
                AuditEntry(
                    action="create",
                    entity_type="aftersales.logistics_exception",
                    entity_id=str(exception.pk),
                    customer_id=exception.customer_id,
                    summary=f"logistics exception on order {shipment.order.external_id}: "
                    f"{finding.detail}"[:300],
                ),
                actor_label=MONITOR_LABEL,
            )
        still_open = open_kinds.pop(shipment.pk, {})
        for kind in rules.resolved_kinds(
            facts, list(still_open), now=moment, no_scan_hours=hours, zone=zone
        ):
            _resolve(still_open.pop(kind), moment)
            resolved += 1
        for exception in still_open.values():
            if exception.ticket_id is None:
                if _open_ticket(exception, shipment):
                    opened += 1
                exception.save(update_fields=["ticket", "ticket_error"])
    # Open exceptions of shipments no longer watched (delivered, returned): their cause is gone.
    for kinds in open_kinds.values():
        for exception in kinds.values():
            _resolve(exception, moment)
            resolved += 1
    waiting = LogisticsException.objects.filter(status="open", ticket__isnull=True).count()
    return LogisticsCheckResult(
        watched=watched,
        found=found,
        resolved=resolved,
        tickets_opened=opened,
        tickets_waiting=waiting,
        customers_told=told,
    )


def _resolve(exception: LogisticsException, at: datetime) -> None:
    exception.status = LogisticsException.Status.RESOLVED
    exception.resolved_at = at
    exception.save(update_fields=["status", "resolved_at"])


# ---------------------------------------------------------------------- kinds (for the API)

KIND_VALUES = tuple(Kind.values)
