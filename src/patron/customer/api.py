"""REST endpoints of the customer file, under /api/customers.

Thin: each endpoint parses its parameters, calls one selector and returns its result; the
selectors check permissions and mask personal data. Money is a decimal string ("199.00") with
its currency; times are ISO 8601 in UTC.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Schema
from pydantic import Field, field_validator

from patron.apitext import NO_NUL
from patron.customer import selectors
from patron.customer.models import Customer, SourceChannel

router = Router(tags=["customers"])


class ErrorOut(Schema):
    code: str
    message: str
    details: Any = None


class CustomerOut(Schema):
    id: int
    source: str
    external_id: str
    name: str
    kind: str
    kind_label: str
    phone: str = Field(description="Masked (138****1234) unless the caller may see personal data")
    email: str = Field(
        description="Masked (z***@example.com) unless the caller may see personal data"
    )
    province: str
    city: str
    source_channel: str
    source_channel_label: str
    registration_channel: str
    registered_at: datetime | None
    status: str
    status_label: str
    order_count: int = Field(description="All the customer's orders")
    total_spent: Decimal = Field(
        description="Sum of the orders in the default currency (CNY) neither cancelled nor returned"
    )


class CustomerPageOut(Schema):
    count: int
    page: int
    page_size: int
    num_pages: int
    items: list[CustomerOut]


class CustomerDetailOut(Schema):
    id: int
    source: str
    external_id: str
    name: str
    kind: str
    kind_label: str
    gender: str
    gender_label: str
    birthday: date | None
    phone: str
    email: str
    id_number: str
    province: str
    city: str
    source_channel: str
    source_channel_label: str
    registration_channel: str
    registered_at: datetime | None
    company_name: str
    company_size: str
    company_size_label: str
    industry: str
    status: str
    status_label: str
    created_at: datetime
    updated_at: datetime


class AddressOut(Schema):
    id: int
    label: str
    province: str
    city: str
    district: str
    detail: str
    postal_code: str
    is_default: bool


class TagOut(Schema):
    name: str
    description: str
    added_at: datetime
    added_by: str


class ConsentOut(Schema):
    purpose: str
    purpose_label: str
    channel: str
    channel_label: str
    is_granted: bool
    recorded_at: datetime
    evidence: str


class OrderLineOut(Schema):
    line_no: int
    product_external_id: str
    product_name: str
    quantity: int
    unit_price: Decimal
    amount: Decimal
    currency: str


class PaymentOut(Schema):
    id: int
    external_id: str
    method: str
    method_label: str
    status: str
    status_label: str
    amount: Decimal
    currency: str
    installments: int
    paid_at: datetime | None


class OrderOut(Schema):
    id: int
    source: str
    external_id: str
    status: str
    status_label: str
    channel: str
    channel_label: str
    store: str
    placed_at: datetime
    paid_at: datetime | None
    shipped_at: datetime | None
    delivered_at: datetime | None
    cancelled_at: datetime | None
    total_amount: Decimal
    discount_amount: Decimal
    shipping_fee: Decimal
    currency: str
    coupon_code: str
    ship_province: str
    ship_city: str
    lines: list[OrderLineOut]
    payments: list[PaymentOut]


class OrderPageOut(Schema):
    count: int
    page: int
    page_size: int
    num_pages: int
    items: list[OrderOut]


class ReturnOut(Schema):
    id: int
    external_id: str
    order_external_id: str
    product_name: str
    kind: str
    kind_label: str
    status: str
    status_label: str
    reason: str
    requested_at: datetime
    resolved_at: datetime | None
    refund_amount: Decimal
    currency: str


class ReviewOut(Schema):
    id: int
    external_id: str
    order_external_id: str
    product_name: str
    rating: int
    title: str
    text: str
    created_at: datetime
    answered_at: datetime | None
    helpful_votes: int


class ShipmentOut(Schema):
    id: int
    external_id: str
    order_external_id: str
    carrier: str
    tracking_number: str
    status: str
    status_label: str
    shipped_at: datetime | None
    estimated_delivery_at: datetime | None
    delivered_at: datetime | None
    delay_days: int | None = Field(
        description="Days delivered after the promised date; null while open"
    )
    is_late: bool


class TicketOut(Schema):
    id: int
    external_id: str
    order_external_id: str
    channel: str
    channel_label: str
    category: str
    subject: str
    status: str
    status_label: str
    priority: str
    priority_label: str
    is_complaint: bool
    opened_at: datetime
    first_response_at: datetime | None
    resolved_at: datetime | None
    satisfaction: int | None


class BehaviourEventOut(Schema):
    occurred_at: datetime
    event_type: str
    item_external_id: str
    category_external_id: str
    query: str
    session_id: str


class TimelineEntryOut(Schema):
    at: datetime
    kind: str = Field(
        description="registration, order, payment, return, review, ticket, message or audit"
    )
    reference: str
    labels: list[str] = Field(description="Choice labels: a status, a payment method, a rating")
    summary: str = Field(description="Free text: a reason, a subject, an audit summary")
    amount: Decimal | None
    currency: str


class CustomerStatsOut(Schema):
    order_count: int
    total_spent: Decimal = Field(
        description="Sum of the orders in the default currency (CNY) neither cancelled nor returned"
    )
    currency: str
    return_count: int
    review_count: int
    average_rating: float | None
    ticket_count: int
    complaint_count: int


class ScoreOut(Schema):
    as_of: date = Field(description="Scores use only data before this day")
    grade: str = Field(description="core, potential or ordinary ('' before the first grading)")
    grade_label: str
    grade_composite: float | None = Field(description="The policy's weighted score, 0-1")
    credit_score: int | None = Field(description="350-950, higher is better")
    credit_model: str = Field(description="lightgbm, or scorecard when too few outcomes")
    churn_probability: float | None = Field(description="Probability of no purchase ahead")
    churn_model: str = Field(description="lightgbm or bgnbd, whichever back-tested better")
    p_alive: float | None = Field(description="Probability the customer is still active (BG/NBD)")
    expected_orders_90d: float | None
    expected_order_value: Decimal | None
    clv_12m: Decimal | None = Field(description="Expected spend in the next 12 months")
    potential_value: Decimal | None
    word_of_mouth: float | None
    currency: str
    purchase_days: int
    days_since_last_purchase: int | None
    rfm_r: int | None = Field(description="Recency quintile 1-5, 5 = most recent")
    rfm_f: int | None = Field(description="Frequency quintile 1-5")
    rfm_m: int | None = Field(description="Monetary quintile 1-5")
    rfm_segment: str = Field(description="One of the eight RFM classes, e.g. important_value")
    rfm_segment_label: str
    cluster: int | None
    cluster_name: str
    reasons: dict[str, list[str]] = Field(
        description="Score name -> plain-words reasons, in the request's language"
    )
    reasons_available: bool = Field(
        description="false when the scoring run's reasons are no longer kept (reasons is then "
        "empty until the next run)"
    )


class GradePeriodOut(Schema):
    grade: str
    grade_label: str
    valid_from: date
    valid_to: date | None = Field(description="null for the current grade")
    policy_version: int
    reasons: list[str]


class CustomerProfileOut(Schema):
    customer: CustomerDetailOut
    is_pii_visible: bool
    may_view_commerce: bool
    may_view_tickets: bool
    may_view_audit: bool
    stats: CustomerStatsOut
    addresses: list[AddressOut]
    tags: list[TagOut]
    consents: list[ConsentOut]
    orders: list[OrderOut] = Field(description="The latest orders; /orders pages through all")
    returns: list[ReturnOut]
    reviews: list[ReviewOut]
    shipments: list[ShipmentOut]
    tickets: list[TicketOut]
    events: list[BehaviourEventOut]
    timeline: list[TimelineEntryOut]
    score: ScoreOut | None = Field(None, description="Latest scores; null before scoring")
    grade_history: list[GradePeriodOut] = Field(
        default_factory=list, description="Every grade held, newest first"
    )


#: PostgreSQL text cannot hold NUL: the schema says so, and the validator below refuses it.


class CustomerFilters(Schema):
    q: str = Field(
        "", pattern=NO_NUL, description="Name substring, or exact phone, e-mail or external id"
    )
    province: str = Field("", pattern=NO_NUL)
    kind: str = Field("", json_schema_extra={"enum": ["", *Customer.Kind.values]})
    source_channel: str = Field("", json_schema_extra={"enum": ["", *SourceChannel.values]})
    page: int = Field(1, ge=1, le=selectors.MAX_PAGE)
    page_size: int = Field(50, ge=1, le=selectors.MAX_PAGE_SIZE)

    @field_validator("q", "province", "kind", "source_channel")
    @classmethod
    def _no_nul(cls, value: str) -> str:
        # PostgreSQL text cannot hold NUL: refuse it here (422) rather than fail in the query.
        if "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return value


class PageParams(Schema):
    page: int = Field(1, ge=1, le=selectors.MAX_PAGE)
    page_size: int = Field(20, ge=1, le=selectors.MAX_PAGE_SIZE)


class TimelineParams(Schema):
    limit: int = Field(selectors.TIMELINE_LIMIT, ge=1, le=selectors.TIMELINE_MAX_LIMIT)


ERRORS: dict[int, type[Schema]] = {403: ErrorOut, 404: ErrorOut, 422: ErrorOut}


def _page(page: selectors.Page[Any]) -> dict[str, Any]:
    return {
        "count": page.count,
        "page": page.page,
        "page_size": page.page_size,
        "num_pages": page.num_pages,
        "items": list(page.items),
    }


@router.get(
    "", response={200: CustomerPageOut, 403: ErrorOut, 422: ErrorOut}, summary="Search customers"
)
def list_customers(request: HttpRequest, filters: Query[CustomerFilters]) -> dict[str, Any]:
    page = selectors.customer_list(
        user=request.user,
        query=filters.q,
        province=filters.province,
        kind=filters.kind,
        source_channel=filters.source_channel,
        page=filters.page,
        page_size=filters.page_size,
    )
    return _page(page)


@router.get(
    "/{customer_id}", response={200: CustomerProfileOut, **ERRORS}, summary="A customer's file"
)
def get_customer(request: HttpRequest, customer_id: int) -> selectors.CustomerProfile:
    return selectors.customer_profile(user=request.user, customer_id=customer_id)


@router.get(
    "/{customer_id}/orders",
    response={200: OrderPageOut, **ERRORS},
    summary="A customer's orders, newest first",
)
def list_customer_orders(
    request: HttpRequest, customer_id: int, params: Query[PageParams]
) -> dict[str, Any]:
    result = selectors.customer_orders(
        user=request.user, customer_id=customer_id, page=params.page, page_size=params.page_size
    )
    return _page(result.orders)


@router.get(
    "/{customer_id}/timeline",
    response={200: list[TimelineEntryOut], **ERRORS},
    summary="A customer's activity, newest first",
)
def get_customer_timeline(
    request: HttpRequest, customer_id: int, params: Query[TimelineParams]
) -> list[selectors.TimelineEntry]:
    # A list, not the selector's tuple: ninja reads a returned 2-tuple as (status, body).
    return list(
        selectors.customer_timeline(user=request.user, customer_id=customer_id, limit=params.limit)
    )
