"""REST endpoints of after-sales and logistics, under ``/api/aftersales``.

- ``/returns``: the after-sales requests — returns, exchanges, repairs and compensation (one
  collection for the four kinds): list and filter, file one, read one, and each step of the
  workflow (approve, reject, receive, refund, replace, repair, close, cancel, appeal,
  decide-appeal).
- ``/policies``: the after-sales policy (read; add and edit rows).
- ``/carrier-events``: the carriers' scans, posted by their webhook. Its credential is the
  signature (``X-Patron-Signature`` over ``X-Patron-Timestamp`` and the body, HMAC-SHA256 with
  ``PATRON_CARRIER_WEBHOOK_SECRET``), not a user's token.
- ``/exceptions``: the logistics exceptions the monitor found.

Thin: each endpoint calls one selector (``patron.aftersales.selectors``) or one service
(``patron.aftersales.services``), which check permissions; 401 a webhook whose signature does
not check out, 403 permission or separation of duties, 404 unknown record, 409 a step the
request's state (or the money left) does not allow, 422 invalid input, naming the field.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from django.http import HttpRequest
from ninja import Header, Query, Router, Schema
from pydantic import AfterValidator, Field, field_validator

from patron.aftersales import selectors, services
from patron.aftersales.models import AfterSalesRequest
from patron.apitext import MAX_ID, NO_NUL, TEXT, WORD, DateTimeText
from patron.customer.api import ErrorOut
from patron.workflow import MAX_REASON

router = Router(tags=["aftersales"])

ERRORS: dict[int, Any] = {403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut}
#: An amount of money as a decimal string, more than zero, at most two decimals and twelve
#: digits before the point ("199.00", "0.5"): exact, unlike a JSON number.
MONEY = r"^(0\.(0[1-9]|[1-9][0-9]?)|[1-9][0-9]{0,11}(\.[0-9]{1,2})?)$"


def _money(description: str, default: Any = ...) -> Any:
    return Field(default, pattern=MONEY, max_length=15, description=description)


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _words(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


#: A reason: words, at most ``MAX_REASON`` characters (the services strip it).
AfterSalesReason = Annotated[
    str,
    Field(min_length=1, max_length=MAX_REASON, pattern=TEXT),
    AfterValidator(_no_nul),
    AfterValidator(_words),
]


def _note(max_length: int = MAX_REASON, description: str = "") -> Any:
    return Field("", max_length=max_length, pattern=NO_NUL, description=description)


class AfterSalesKind(StrEnum):
    """``patron.aftersales.models.Kind`` (a test keeps the two the same)."""

    RETURN = "return"
    EXCHANGE = "exchange"
    REPAIR = "repair"
    COMPENSATION = "compensation"


class AfterSalesStatus(StrEnum):
    """``AfterSalesRequest.Status`` (a test keeps the two the same)."""

    REQUESTED = "requested"
    APPROVED = "approved"
    REJECTED = "rejected"
    APPEALED = "appealed"
    AWAITING_GOODS = "awaiting_goods"
    RECEIVED = "received"
    REFUNDED = "refunded"
    REPLACED = "replaced"
    REPAIRED = "repaired"
    CLOSED = "closed"
    CANCELLED = "cancelled"


class AfterSalesReasonCode(StrEnum):
    """``patron.aftersales.models.ReasonCode`` (a test keeps the two the same)."""

    NO_REASON = "no_reason"
    DEFECTIVE = "defective"
    DAMAGED = "damaged"
    WRONG_ITEM = "wrong_item"
    NOT_AS_DESCRIBED = "not_as_described"
    MISSING_PARTS = "missing_parts"
    SIZE_OR_FIT = "size_or_fit"
    LATE_DELIVERY = "late_delivery"
    OTHER = "other"


class AfterSalesRefundMethod(StrEnum):
    """``patron.aftersales.models.RefundMethod`` (a test keeps the two the same)."""

    ORIGINAL = "original"
    ALIPAY = "alipay"
    WECHAT_PAY = "wechat_pay"
    BANK_TRANSFER = "bank_transfer"
    VOUCHER = "voucher"
    OTHER = "other"


class CarrierScanStatus(StrEnum):
    """``patron.aftersales.models.ScanStatus`` (a test keeps the two the same)."""

    PICKED_UP = "picked_up"
    IN_TRANSIT = "in_transit"
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELIVERED = "delivered"
    FAILED_DELIVERY = "failed_delivery"
    EXCEPTION = "exception"
    RETURNED = "returned"


class AfterSalesAppealDecision(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"


class LogisticsExceptionKind(StrEnum):
    NO_SCAN = "no_scan"
    LATE = "late"
    FAILED_DELIVERY = "failed_delivery"


class LogisticsExceptionStatus(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


# ---------------------------------------------------------------------- requests


class AfterSalesRowOut(Schema):
    id: int
    number: str = Field(description="AS<id>: how the customer and the returns history name it")
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
    waiting_hours: float | None = Field(description="While waiting for a decision")
    is_within_policy: bool
    is_exception: bool = Field(description="Approved outside the policy by a supervisor")
    requested_amount: str | None = Field(description="Compensation asked, a decimal string")
    refunded: str
    currency: str
    channel: str


class AfterSalesPageOut(Schema):
    count: int
    items: list[AfterSalesRowOut]


class AfterSalesListParams(Schema):
    kind: list[AfterSalesKind] = Field(
        default_factory=list, max_length=len(AfterSalesKind), description="Any of the kinds"
    )
    status: list[AfterSalesStatus] = Field(
        default_factory=list, max_length=len(AfterSalesStatus), description="Any of the statuses"
    )
    outside_policy: bool | None = Field(
        None, description="true: only requests outside the policy; false: only within it"
    )
    customer_id: int | None = Field(None, ge=1, le=MAX_ID)
    order_id: int | None = Field(None, ge=1, le=MAX_ID)
    limit: int = Field(50, ge=1, le=200)
    offset: int = Field(0, ge=0, le=1_000_000)


class AfterSalesLineOut(Schema):
    order_line_id: int
    line_no: int
    product_name: str
    category: str
    quantity: int
    bought: int
    unit_price: str
    paid_amount: str = Field(description="What these units were paid (the line pro rata)")


class AfterSalesRefundOut(Schema):
    id: int
    amount: str
    currency: str
    method: str
    method_label: str
    reference: str
    at: datetime
    by: str


class AfterSalesReplacementOut(Schema):
    id: int
    carrier: str
    tracking_number: str
    shipment_id: int | None
    shipment_status: str
    at: datetime
    by: str


class AfterSalesEventOut(Schema):
    at: datetime
    actor: str
    action: str
    from_status: str
    to_status: str
    note: str
    hours_since_previous: float | None


class AfterSalesRequestOut(Schema):
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
    delivered_at: datetime | None = Field(description="The delivery the window counts from")
    is_within_policy: bool
    policy_verdict: list[str] = Field(description="Why it is outside the policy, if it is")
    policy_deadline: datetime | None = Field(description="First instant outside the window")
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
    lines: list[AfterSalesLineOut]
    refunds: list[AfterSalesRefundOut]
    refunded: str
    refundable: str = Field(description="What may still be refunded")
    replacements: list[AfterSalesReplacementOut]
    events: list[AfterSalesEventOut]
    allowed_actions: list[str]
    may_handle: bool
    may_approve_exception: bool
    may_decide_appeal: bool


class AfterSalesLineIn(Schema):
    order_line_id: int = Field(ge=1, le=MAX_ID)
    quantity: int = Field(1, ge=1, le=1_000_000)


class AfterSalesRequestIn(Schema):
    """A request on lines of one of the customer's orders. The quantity is at most what was
    bought less what is already returned or under way; a compensation names its amount."""

    customer_id: int = Field(ge=1, le=MAX_ID)
    order_id: int = Field(ge=1, le=MAX_ID)
    kind: AfterSalesKind
    reason_code: AfterSalesReasonCode
    reason: str = _note(description="The customer's own words (required with 'other')")
    lines: list[AfterSalesLineIn] = Field(min_length=1, max_length=services.MAX_LINES)
    requested_amount: str | None = _money(
        "Compensation only: the amount asked, yuan (a decimal string)", None
    )

    @field_validator("reason")
    @classmethod
    def _refuse_nul(cls, value: str) -> str:
        return _no_nul(value)


class AfterSalesApproveIn(Schema):
    reason: str = _note(description="A note for the record")
    exception_reason: str = _note(
        description="Required when the request is outside the policy (a supervisor's exception)"
    )


class AfterSalesReasonIn(Schema):
    reason: AfterSalesReason


class AfterSalesNoteIn(Schema):
    note: str = _note()


class AfterSalesRefundIn(Schema):
    amount: str = _money('Yuan, a decimal string ("150.00")')
    method: AfterSalesRefundMethod = AfterSalesRefundMethod.ORIGINAL
    reference: str = _note(100, "The payment provider's refund number")


class AfterSalesReplaceIn(Schema):
    carrier: str = Field(min_length=1, max_length=40, pattern=TEXT)
    tracking_number: str = Field(min_length=1, max_length=60, pattern=TEXT)

    @field_validator("carrier", "tracking_number")
    @classmethod
    def _refuse_blank(cls, value: str) -> str:
        return _words(_no_nul(value))


class AfterSalesAppealDecisionIn(Schema):
    decision: AfterSalesAppealDecision
    reason: AfterSalesReason
    exception_reason: str = _note(
        description="Required to approve a request outside the policy (a supervisor's exception)"
    )


def _detail(request: HttpRequest, request_id: int) -> selectors.RequestView:
    return selectors.request_detail(user=request.user, request_id=request_id)


@router.get(
    "/returns",
    response={200: AfterSalesPageOut, **ERRORS},
    summary="After-sales requests (returns, exchanges, repairs, compensation): waiting for a "
    "decision first, the longest waiting first",
)
def list_returns(request: HttpRequest, params: Query[AfterSalesListParams]) -> dict[str, Any]:
    count, items = selectors.request_list(
        user=request.user,
        kinds=[str(kind) for kind in params.kind],
        statuses=[str(status) for status in params.status],
        outside_policy=params.outside_policy,
        customer_id=params.customer_id,
        order_id=params.order_id,
        limit=params.limit,
        offset=params.offset,
    )
    return {"count": count, "items": items}


@router.post(
    "/returns",
    response={201: AfterSalesRequestOut, **ERRORS},
    summary="File an after-sales request for a customer (judged against the policy now)",
)
def create_return(
    request: HttpRequest, body: AfterSalesRequestIn
) -> tuple[int, selectors.RequestView]:
    filed = services.aftersales_file(
        user=request.user,
        customer_id=body.customer_id,
        order_id=body.order_id,
        kind=str(body.kind),
        reason_code=str(body.reason_code),
        reason=body.reason,
        lines=[
            services.LineRequest(order_line_id=line.order_line_id, quantity=line.quantity)
            for line in body.lines
        ],
        requested_amount=body.requested_amount,
        channel=AfterSalesRequest.Channel.API,
    )
    return 201, _detail(request, filed.pk)


@router.get(
    "/returns/{request_id}",
    response={200: AfterSalesRequestOut, **ERRORS},
    summary="One after-sales request with its lines, verdict, refunds and timeline",
)
def get_return(request: HttpRequest, request_id: int) -> selectors.RequestView:
    return _detail(request, request_id)


@router.post(
    "/returns/{request_id}/approve",
    response={200: AfterSalesRequestOut, **ERRORS},
    summary="Approve (outside the policy: a supervisor, with exception_reason); returns, "
    "exchanges and repairs then wait for the goods",
)
def approve_return(
    request: HttpRequest, request_id: int, body: AfterSalesApproveIn
) -> selectors.RequestView:
    services.aftersales_approve(
        user=request.user,
        request_id=request_id,
        reason=body.reason,
        exception_reason=body.exception_reason,
    )
    return _detail(request, request_id)


@router.post(
    "/returns/{request_id}/reject",
    response={200: AfterSalesRequestOut, **ERRORS},
    summary="Reject, with the reason the customer is told (they may appeal once)",
)
def reject_return(
    request: HttpRequest, request_id: int, body: AfterSalesReasonIn
) -> selectors.RequestView:
    services.aftersales_reject(user=request.user, request_id=request_id, reason=body.reason)
    return _detail(request, request_id)


@router.post(
    "/returns/{request_id}/receive",
    response={200: AfterSalesRequestOut, **ERRORS},
    summary="The goods came back",
)
def receive_return(
    request: HttpRequest, request_id: int, body: AfterSalesNoteIn
) -> selectors.RequestView:
    services.aftersales_receive(user=request.user, request_id=request_id, note=body.note)
    return _detail(request, request_id)


@router.post(
    "/returns/{request_id}/refund",
    response={200: AfterSalesRequestOut, **ERRORS},
    summary="Refund money (a return once received, a compensation once approved); never more "
    "than refundable (409)",
)
def refund_return(
    request: HttpRequest, request_id: int, body: AfterSalesRefundIn
) -> selectors.RequestView:
    services.aftersales_refund(
        user=request.user,
        request_id=request_id,
        amount=body.amount,
        method=str(body.method),
        reference=body.reference,
    )
    return _detail(request, request_id)


@router.post(
    "/returns/{request_id}/replace",
    response={200: AfterSalesRequestOut, **ERRORS},
    summary="Ship an exchange's replacement (its tracking becomes a shipment of the order)",
)
def replace_return(
    request: HttpRequest, request_id: int, body: AfterSalesReplaceIn
) -> selectors.RequestView:
    services.aftersales_replace(
        user=request.user,
        request_id=request_id,
        carrier=body.carrier,
        tracking_number=body.tracking_number,
    )
    return _detail(request, request_id)


@router.post(
    "/returns/{request_id}/repair",
    response={200: AfterSalesRequestOut, **ERRORS},
    summary="The goods were repaired",
)
def repair_return(
    request: HttpRequest, request_id: int, body: AfterSalesNoteIn
) -> selectors.RequestView:
    services.aftersales_repair(user=request.user, request_id=request_id, note=body.note)
    return _detail(request, request_id)


@router.post(
    "/returns/{request_id}/close",
    response={200: AfterSalesRequestOut, **ERRORS},
    summary="Close a request that was carried out",
)
def close_return(
    request: HttpRequest, request_id: int, body: AfterSalesNoteIn
) -> selectors.RequestView:
    services.aftersales_close(user=request.user, request_id=request_id, note=body.note)
    return _detail(request, request_id)


@router.post(
    "/returns/{request_id}/cancel",
    response={200: AfterSalesRequestOut, **ERRORS},
    summary="Cancel for the customer (before the goods are received)",
)
def cancel_return(
    request: HttpRequest, request_id: int, body: AfterSalesReasonIn
) -> selectors.RequestView:
    services.aftersales_cancel(user=request.user, request_id=request_id, reason=body.reason)
    return _detail(request, request_id)


@router.post(
    "/returns/{request_id}/appeal",
    response={200: AfterSalesRequestOut, **ERRORS},
    summary="File the customer's appeal against a rejection (once per request)",
)
def appeal_return(
    request: HttpRequest, request_id: int, body: AfterSalesReasonIn
) -> selectors.RequestView:
    services.aftersales_appeal(user=request.user, request_id=request_id, reason=body.reason)
    return _detail(request, request_id)


@router.post(
    "/returns/{request_id}/decide-appeal",
    response={200: AfterSalesRequestOut, **ERRORS},
    summary="Decide an appeal (not by whoever made the decision appealed against: 403)",
)
def decide_appeal(
    request: HttpRequest, request_id: int, body: AfterSalesAppealDecisionIn
) -> selectors.RequestView:
    services.aftersales_appeal_decide(
        user=request.user,
        request_id=request_id,
        approve=body.decision == AfterSalesAppealDecision.APPROVE,
        reason=body.reason,
        exception_reason=body.exception_reason,
    )
    return _detail(request, request_id)


# ---------------------------------------------------------------------- policy


class AfterSalesPolicyOut(Schema):
    id: int
    kind: str
    kind_label: str
    category_code: str = Field(description="commerce category code; empty: every category")
    days_after_delivery: int = Field(description="Counted from the day after delivery")
    requires_reason: bool = Field(description="A reason other than 'no reason' is needed")
    max_compensation: str | None = Field(description="Compensation only; null: no maximum")
    description: str
    is_active: bool
    updated_at: datetime


class AfterSalesPolicyPatchIn(Schema):
    """Only the fields given change (``max_compensation`` null removes the maximum)."""

    days_after_delivery: int | None = Field(None, ge=0, le=3650)
    requires_reason: bool | None = None
    max_compensation: str | None = _money("Yuan, a decimal string; null: no maximum", None)
    description: str | None = Field(None, max_length=200, pattern=NO_NUL)
    is_active: bool | None = None

    def changes(self) -> dict[str, Any]:
        return {
            name: value
            for name, value in self.model_dump(exclude_unset=True).items()
            if value is not None or name == "max_compensation"
        }


class AfterSalesPolicyIn(Schema):
    kind: AfterSalesKind
    category_code: str = Field(
        "", max_length=100, pattern=WORD, description="Empty: every category"
    )
    days_after_delivery: int = Field(ge=0, le=3650)
    requires_reason: bool = False
    max_compensation: str | None = _money("Yuan, a decimal string; null: no maximum", None)
    description: str = _note(200)
    is_active: bool = True


def _policy_out(request: HttpRequest, policy_id: int) -> selectors.PolicyView:
    return next(p for p in selectors.policy_list(user=request.user) if p.id == policy_id)


@router.get(
    "/policies",
    response={200: list[AfterSalesPolicyOut], **ERRORS},
    summary="The after-sales policy: windows, reasons, compensation limits",
)
def list_policies(request: HttpRequest) -> list[selectors.PolicyView]:
    return selectors.policy_list(user=request.user)


@router.post(
    "/policies",
    response={201: AfterSalesPolicyOut, **ERRORS},
    summary="Add a policy row for a kind and a category (409 if one exists)",
)
def create_policy(
    request: HttpRequest, body: AfterSalesPolicyIn
) -> tuple[int, selectors.PolicyView]:
    values = body.model_dump(exclude={"kind", "category_code"})
    policy = services.policy_create(
        user=request.user,
        kind=str(body.kind),
        category_code=body.category_code,
        values=values,
    )
    return 201, _policy_out(request, policy.pk)


@router.patch(
    "/policies/{policy_id}",
    response={200: AfterSalesPolicyOut, **ERRORS},
    summary="Edit a policy row (requests already filed keep their verdict; audited)",
)
def update_policy(
    request: HttpRequest, policy_id: int, body: AfterSalesPolicyPatchIn
) -> selectors.PolicyView:
    services.policy_update(user=request.user, policy_id=policy_id, changes=body.changes())
    return _policy_out(request, policy_id)


# ---------------------------------------------------------------------- carrier webhook


class CarrierScanIn(Schema):
    id: str = Field(
        min_length=1, max_length=100, pattern=TEXT, description="The carrier's event id"
    )
    at: DateTimeText = Field(description="ISO 8601; without an offset: the merchant's time zone")
    status: CarrierScanStatus
    location: str = _note(200)
    description: str = _note(500)


class CarrierEventsIn(Schema):
    carrier: str = Field("", max_length=40, pattern=NO_NUL, description="Narrows the lookup")
    tracking_number: str = Field(min_length=1, max_length=60, pattern=TEXT)
    events: list[CarrierScanIn] = Field(min_length=1, max_length=500)


class CarrierEventsOut(Schema):
    shipment_id: int
    created: int = Field(description="Scans recorded now")
    duplicates: int = Field(description="Scans already recorded (a replay): nothing changed")
    status: str = Field(description="The shipment's status after the scans")
    delivered_at: datetime | None


@router.post(
    "/carrier-events",
    auth=None,
    response={200: CarrierEventsOut, 401: ErrorOut, 404: ErrorOut, 422: ErrorOut},
    summary="A carrier's scans of one shipment (signed webhook; idempotent per event id)",
    description="Sign with HMAC-SHA256(PATRON_CARRIER_WEBHOOK_SECRET, timestamp + '.' + raw "
    "body): X-Patron-Timestamp is the Unix time in seconds (at most 5 minutes off), "
    "X-Patron-Signature is 'sha256=' + the hex digest. 401 when the signature does not check "
    "out; a replayed scan (same id) is counted as a duplicate and changes nothing.",
)
def carrier_events(
    request: HttpRequest,
    body: CarrierEventsIn,
    x_patron_timestamp: Annotated[str, Header(alias="X-Patron-Timestamp")] = "",
    x_patron_signature: Annotated[str, Header(alias="X-Patron-Signature")] = "",
) -> services.CarrierScansResult:
    services.carrier_signature_check(
        timestamp=x_patron_timestamp, signature=x_patron_signature, payload=request.body
    )
    return services.carrier_scans_record(
        carrier=body.carrier.strip(),
        tracking_number=body.tracking_number.strip(),
        scans=[
            services.CarrierScan(
                event_id=scan.id.strip(),
                at=scan.at,
                status=str(scan.status),
                location=scan.location,
                description=scan.description,
            )
            for scan in body.events
        ],
    )


# ---------------------------------------------------------------------- logistics exceptions


class LogisticsExceptionOut(Schema):
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
    ticket_id: int | None = Field(description="The proactive ticket (null: not opened yet)")
    ticket_error: str
    is_customer_notified: bool
    resolved_at: datetime | None


class LogisticsExceptionPageOut(Schema):
    count: int
    items: list[LogisticsExceptionOut]


class LogisticsExceptionParams(Schema):
    status: list[LogisticsExceptionStatus] = Field(
        [LogisticsExceptionStatus.OPEN], max_length=2, description="Default: open"
    )
    kind: list[LogisticsExceptionKind] = Field(default_factory=list, max_length=3)
    limit: int = Field(50, ge=1, le=200)
    offset: int = Field(0, ge=0, le=1_000_000)


@router.get(
    "/exceptions",
    response={200: LogisticsExceptionPageOut, **ERRORS},
    summary="Logistics exceptions: no scan for too long, late, failed delivery",
)
def list_exceptions(
    request: HttpRequest, params: Query[LogisticsExceptionParams]
) -> dict[str, Any]:
    count, items = selectors.exception_list(
        user=request.user,
        statuses=[str(s) for s in params.status],
        kinds=[str(k) for k in params.kind],
        limit=params.limit,
        offset=params.offset,
    )
    return {"count": count, "items": items}
