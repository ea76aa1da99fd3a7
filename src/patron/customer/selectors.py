"""Reading the customer file: the searchable list and the full profile of one customer.

Every function checks the caller's permissions first (deny by default, see
``patron.account.roles``) and returns frozen dataclasses, never model instances, so the web
pages, the REST API and the CLI show exactly the same thing. Personal data (phone, e-mail, ID
number, street address) is masked unless the caller holds ``account.view_pii``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db.models import Avg, Count, Q, QuerySet, Sum
from django.utils import timezone

from patron.account.roles import (
    VIEW_AUDIT,
    VIEW_COMMERCE,
    VIEW_CUSTOMERS,
    VIEW_MESSAGES,
    VIEW_TICKETS,
)
from patron.account.services import may_see_pii, require_permission
from patron.audit.models import AuditEvent
from patron.commerce.models import Order, OrderLine, Payment, ReturnRequest, Review, Shipment
from patron.customer.models import Consent, Customer, CustomerTag, SourceChannel
from patron.errors import NotFound, ValidationFailed
from patron.outbox.models import Message
from patron.privacy import crypto
from patron.scoring.selectors import (
    GradePeriod,
    ScoreView,
    grade_history_of_customer,
    score_history_of_customer,
    score_of_customer,
)
from patron.service.models import Ticket

logger = logging.getLogger(__name__)

MAX_PAGE_SIZE = 200
PROFILE_ORDER_LIMIT = 20
PROFILE_SECTION_LIMIT = 50
PROFILE_EVENT_LIMIT = 50
TIMELINE_LIMIT = 100
TIMELINE_MAX_LIMIT = 500


# --- result types -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Page[T]:
    """One page of a list. ``page`` is 1-based; past the last page ``items`` is empty."""

    items: tuple[T, ...]
    count: int
    page: int
    page_size: int

    @property
    def num_pages(self) -> int:
        return max(1, -(-self.count // self.page_size))

    @property
    def has_previous(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.num_pages

    @property
    def previous_page(self) -> int:
        return max(1, self.page - 1)

    @property
    def next_page(self) -> int:
        return self.page + 1

    @property
    def start_index(self) -> int:
        return (self.page - 1) * self.page_size + 1 if self.items else 0

    @property
    def end_index(self) -> int:
        return (self.page - 1) * self.page_size + len(self.items)


@dataclass(frozen=True)
class CustomerSummary:
    """A row of the customer list. ``phone`` and ``email`` are masked unless PII is visible."""

    id: int
    source: str
    external_id: str
    name: str
    kind: str
    kind_label: str
    phone: str
    email: str
    province: str
    city: str
    source_channel: str
    source_channel_label: str
    registration_channel: str
    registered_at: datetime | None
    status: str
    status_label: str
    order_count: int
    total_spent: Decimal  # orders in the default currency, neither cancelled nor returned


@dataclass(frozen=True)
class CustomerDetail:
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


@dataclass(frozen=True)
class AddressView:
    id: int
    label: str
    province: str
    city: str
    district: str
    detail: str
    postal_code: str
    is_default: bool


@dataclass(frozen=True)
class TagView:
    name: str
    description: str
    added_at: datetime
    added_by: str


@dataclass(frozen=True)
class ConsentView:
    """The consent in force for one (purpose, channel): the latest recorded row."""

    purpose: str
    purpose_label: str
    channel: str
    channel_label: str
    is_granted: bool
    recorded_at: datetime
    evidence: str


@dataclass(frozen=True)
class OrderLineView:
    line_no: int
    product_external_id: str
    product_name: str
    quantity: int
    unit_price: Decimal
    amount: Decimal
    currency: str


@dataclass(frozen=True)
class PaymentView:
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


@dataclass(frozen=True)
class OrderView:
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
    lines: tuple[OrderLineView, ...]
    payments: tuple[PaymentView, ...]


@dataclass(frozen=True)
class ReturnView:
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


@dataclass(frozen=True)
class ReviewView:
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


@dataclass(frozen=True)
class ShipmentView:
    """``delay_days``: days delivered after the promised date (negative: early; None: open).
    ``is_late``: delivered late, or still open after the promised date."""

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
    delay_days: int | None
    is_late: bool


@dataclass(frozen=True)
class TicketView:
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


@dataclass(frozen=True)
class BehaviourEvent:
    occurred_at: datetime
    event_type: str
    item_external_id: str
    category_external_id: str
    query: str
    session_id: str


@dataclass(frozen=True)
class TimelineEntry:
    """One dated fact about the customer. ``kind`` is one of registration, order, payment,
    return, review, ticket, audit, message; ``labels`` are choice labels (a status, a method);
    ``summary`` is free text (a reason, a subject, an audit summary)."""

    at: datetime
    kind: str
    reference: str
    labels: tuple[str, ...] = ()
    summary: str = ""
    amount: Decimal | None = None
    currency: str = ""


@dataclass(frozen=True)
class CustomerStats:
    order_count: int
    total_spent: Decimal
    currency: str
    return_count: int
    review_count: int
    average_rating: float | None
    ticket_count: int
    complaint_count: int


@dataclass(frozen=True)
class CustomerProfile:
    """Everything shown on the customer page. Sections the caller may not see are empty and
    their ``may_view_*`` flag is False: the page says so instead of showing nothing."""

    customer: CustomerDetail
    is_pii_visible: bool
    may_view_commerce: bool
    may_view_tickets: bool
    may_view_audit: bool
    stats: CustomerStats
    addresses: tuple[AddressView, ...]
    tags: tuple[TagView, ...]
    consents: tuple[ConsentView, ...]
    orders: tuple[OrderView, ...]
    returns: tuple[ReturnView, ...]
    reviews: tuple[ReviewView, ...]
    shipments: tuple[ShipmentView, ...]
    tickets: tuple[TicketView, ...]
    events: tuple[BehaviourEvent, ...]
    timeline: tuple[TimelineEntry, ...]
    score: ScoreView | None = None
    grade_history: tuple[GradePeriod, ...] = ()
    score_history: tuple[dict[str, Any], ...] = ()


# --- helpers ----------------------------------------------------------------------------------


def _has_perm(user: Any, perm: str) -> bool:
    return bool(getattr(user, "is_authenticated", False) and user.is_active and user.has_perm(perm))


def _shown(value: str, *, kind: str, visible: bool) -> str:
    return value if visible else crypto.mask(value, kind=kind)


def _label(choices: Any, value: str) -> str:
    """Label of a choice value, or the value itself when it is not (or no longer) a choice."""
    return str(dict(choices.choices).get(value, value))


def _money(value: Decimal | None) -> Decimal:
    """Sums come back without their scale on SQLite (5000 instead of 5000.00)."""
    return (value if value is not None else Decimal(0)).quantize(Decimal("0.01"))


MAX_PAGE = 100_000  # keeps OFFSET within what every database accepts


def page_bounds(page: int, page_size: int) -> tuple[int, int]:
    if page_size < 1 or page_size > MAX_PAGE_SIZE:
        raise ValidationFailed(f"page_size must be between 1 and {MAX_PAGE_SIZE}, got {page_size}")
    if page < 1 or page > MAX_PAGE:
        raise ValidationFailed(f"page must be between 1 and {MAX_PAGE}, got {page}")
    return page, page_size


def _get_customer(customer_id: int) -> Customer:
    customer = Customer.objects.filter(pk=customer_id).first()
    if customer is None:
        raise NotFound(
            f"customer {customer_id} does not exist", details={"customer_id": customer_id}
        )
    return customer


def _aware(value: Any) -> datetime | None:
    """Timestamps from the lake may be naive (meaning UTC), aware, or ISO text."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if timezone.is_naive(value):
        value = value.replace(tzinfo=UTC)
    return value


# Money that stayed with the merchant: orders neither cancelled nor returned.
_SPENDING = ~Q(status__in=[Order.Status.CANCELLED, Order.Status.RETURNED])


# --- the list ---------------------------------------------------------------------------------


def _customer_search(queryset: QuerySet[Customer], query: str) -> QuerySet[Customer]:
    """Name substring, or exact phone / e-mail / external id (PII is found by keyed hash)."""
    query = query.strip()
    if not query:
        return queryset
    condition = Q(name__icontains=query) | Q(external_id=query)
    condition |= Q(phone_hash=crypto.lookup_hash(query, kind="phone"))
    if "@" in query:
        condition |= Q(email_hash=crypto.lookup_hash(query, kind="email"))
    return queryset.filter(condition)


def customer_list(
    *,
    user: Any,
    query: str = "",
    province: str = "",
    kind: str = "",
    source_channel: str = "",
    page: int = 1,
    page_size: int = 50,
) -> Page[CustomerSummary]:
    """Customers matching the search and filters, newest first, one page at a time."""
    require_permission(user, VIEW_CUSTOMERS)
    page, page_size = page_bounds(page, page_size)
    if kind and kind not in Customer.Kind.values:
        raise ValidationFailed(f"unknown customer kind '{kind}'", details={"field": "kind"})
    if source_channel and source_channel not in SourceChannel.values:
        raise ValidationFailed(
            f"unknown source channel '{source_channel}'", details={"field": "source_channel"}
        )
    queryset = _customer_search(Customer.objects.all(), query)
    if province:
        queryset = queryset.filter(province=province)
    if kind:
        queryset = queryset.filter(kind=kind)
    if source_channel:
        queryset = queryset.filter(source_channel=source_channel)
    count = queryset.count()
    offset = (page - 1) * page_size
    rows = list(queryset.order_by("-id")[offset : offset + page_size])
    # Aggregate orders for this page only: grouping the whole table would not scale.
    totals: dict[int, tuple[int, Decimal | None]] = {
        row["customer_id"]: (row["order_count"], row["total_spent"])
        for row in Order.objects.filter(customer_id__in=[c.pk for c in rows])
        .values("customer_id")
        .annotate(
            order_count=Count("id"),
            total_spent=Sum(
                "total_amount", filter=_SPENDING & Q(currency=settings.DEFAULT_CURRENCY)
            ),
        )
    }
    visible = may_see_pii(user)
    items = tuple(
        CustomerSummary(
            id=c.pk,
            source=c.source,
            external_id=c.external_id,
            name=c.name,
            kind=c.kind,
            kind_label=_label(Customer.Kind, c.kind),
            phone=_shown(c.phone, kind="phone", visible=visible),
            email=_shown(c.email, kind="email", visible=visible),
            province=c.province,
            city=c.city,
            source_channel=c.source_channel,
            source_channel_label=_label(SourceChannel, c.source_channel),
            registration_channel=c.registration_channel,
            registered_at=c.registered_at,
            status=c.status,
            status_label=_label(Customer.Status, c.status),
            order_count=totals.get(c.pk, (0, None))[0],
            total_spent=_money(totals.get(c.pk, (0, None))[1]),
        )
        for c in rows
    )
    return Page(items=items, count=count, page=page, page_size=page_size)


def customer_provinces(*, user: Any) -> list[str]:
    """The provinces customers live in, for the list's filter."""
    require_permission(user, VIEW_CUSTOMERS)
    # Sorted here, not by the database: collations differ between SQLite and PostgreSQL.
    return sorted(
        Customer.objects.exclude(province="")
        .order_by()
        .values_list("province", flat=True)
        .distinct()
    )


# --- one customer -----------------------------------------------------------------------------


def _customer_detail(c: Customer, *, visible: bool) -> CustomerDetail:
    return CustomerDetail(
        id=c.pk,
        source=c.source,
        external_id=c.external_id,
        name=c.name,
        kind=c.kind,
        kind_label=_label(Customer.Kind, c.kind),
        gender=c.gender,
        gender_label=_label(Customer.Gender, c.gender),
        birthday=c.birthday,
        phone=_shown(c.phone, kind="phone", visible=visible),
        email=_shown(c.email, kind="email", visible=visible),
        id_number=_shown(c.id_number, kind="id_number", visible=visible),
        province=c.province,
        city=c.city,
        source_channel=c.source_channel,
        source_channel_label=_label(SourceChannel, c.source_channel),
        registration_channel=c.registration_channel,
        registered_at=c.registered_at,
        company_name=c.company_name,
        company_size=c.company_size,
        company_size_label=_label(Customer.CompanySize, c.company_size) if c.company_size else "",
        industry=c.industry,
        status=c.status,
        status_label=_label(Customer.Status, c.status),
        created_at=c.created_at,
        updated_at=c.updated_at,
    )


def _addresses(c: Customer, *, visible: bool) -> tuple[AddressView, ...]:
    return tuple(
        AddressView(
            id=a.pk,
            label=a.label,
            province=a.province,
            city=a.city,
            district=a.district,
            detail=_shown(a.detail, kind="address", visible=visible),
            postal_code=a.postal_code,
            is_default=a.is_default,
        )
        for a in c.addresses.order_by("-is_default", "id")
    )


def _tags(c: Customer) -> tuple[TagView, ...]:
    rows = CustomerTag.objects.filter(customer=c).select_related("tag")
    return tuple(
        TagView(
            name=r.tag.name, description=r.tag.description, added_at=r.added_at, added_by=r.added_by
        )
        for r in sorted(rows, key=lambda row: row.tag.name)
    )


def _consents(c: Customer) -> tuple[ConsentView, ...]:
    in_force: dict[tuple[str, str], Consent] = {}
    for row in c.consents.order_by("-recorded_at", "-id"):
        in_force.setdefault((row.purpose, row.channel), row)
    return tuple(
        ConsentView(
            purpose=r.purpose,
            purpose_label=_label(Consent.Purpose, r.purpose),
            channel=r.channel,
            channel_label=_label(Consent.Channel, r.channel),
            is_granted=r.is_granted,
            recorded_at=r.recorded_at,
            evidence=r.evidence,
        )
        for _, r in sorted(in_force.items())
    )


def _line_view(line: OrderLine) -> OrderLineView:
    return OrderLineView(
        line_no=line.line_no,
        product_external_id=line.product.external_id if line.product else "",
        product_name=line.product_name or (line.product.name if line.product else ""),
        quantity=line.quantity,
        unit_price=line.unit_price,
        amount=line.amount,
        currency=line.currency,
    )


def _payment_view(p: Payment) -> PaymentView:
    return PaymentView(
        id=p.pk,
        external_id=p.external_id,
        method=p.method,
        method_label=_label(Payment.Method, p.method),
        status=p.status,
        status_label=_label(Payment.Status, p.status),
        amount=p.amount,
        currency=p.currency,
        installments=p.installments,
        paid_at=p.paid_at,
    )


def _order_views(orders: Iterable[Order]) -> tuple[OrderView, ...]:
    orders = list(orders)
    ids = [o.pk for o in orders]
    lines: dict[int, list[OrderLineView]] = {}
    for line in (
        OrderLine.objects.filter(order_id__in=ids)
        .select_related("product")
        .order_by("line_no", "id")
    ):
        lines.setdefault(line.order_id, []).append(_line_view(line))
    payments: dict[int, list[PaymentView]] = {}
    for payment in Payment.objects.filter(order_id__in=ids).order_by("paid_at", "id"):
        payments.setdefault(payment.order_id, []).append(_payment_view(payment))
    return tuple(
        OrderView(
            id=o.pk,
            source=o.source,
            external_id=o.external_id,
            status=o.status,
            status_label=_label(Order.Status, o.status),
            channel=o.channel,
            channel_label=_label(SourceChannel, o.channel),
            store=o.store,
            placed_at=o.placed_at,
            paid_at=o.paid_at,
            shipped_at=o.shipped_at,
            delivered_at=o.delivered_at,
            cancelled_at=o.cancelled_at,
            total_amount=o.total_amount,
            discount_amount=o.discount_amount,
            shipping_fee=o.shipping_fee,
            currency=o.currency,
            coupon_code=o.coupon_code,
            ship_province=o.ship_province,
            ship_city=o.ship_city,
            lines=tuple(lines.get(o.pk, ())),
            payments=tuple(payments.get(o.pk, ())),
        )
        for o in orders
    )


def _returns(c: Customer) -> tuple[ReturnView, ...]:
    rows = (
        ReturnRequest.objects.filter(order__customer=c)
        .select_related("order", "order_line", "order_line__product")
        .order_by("-requested_at", "-id")[:PROFILE_SECTION_LIMIT]
    )
    return tuple(
        ReturnView(
            id=r.pk,
            external_id=r.external_id,
            order_external_id=r.order.external_id,
            product_name=_line_view(r.order_line).product_name if r.order_line else "",
            kind=r.kind,
            kind_label=_label(ReturnRequest.Kind, r.kind),
            status=r.status,
            status_label=_label(ReturnRequest.Status, r.status),
            reason=r.reason,
            requested_at=r.requested_at,
            resolved_at=r.resolved_at,
            refund_amount=r.refund_amount,
            currency=r.currency,
        )
        for r in rows
    )


def _reviews(c: Customer) -> tuple[ReviewView, ...]:
    rows = (
        Review.objects.filter(customer=c)
        .select_related("order", "product")
        .order_by("-created_at", "-id")[:PROFILE_SECTION_LIMIT]
    )
    return tuple(
        ReviewView(
            id=r.pk,
            external_id=r.external_id,
            order_external_id=r.order.external_id if r.order else "",
            product_name=r.product.name if r.product else "",
            rating=r.rating,
            title=r.title,
            text=r.text,
            created_at=r.created_at,
            answered_at=r.answered_at,
            helpful_votes=r.helpful_votes,
        )
        for r in rows
    )


def _shipments(c: Customer) -> tuple[ShipmentView, ...]:
    now = timezone.now()
    rows = (
        Shipment.objects.filter(order__customer=c)
        .select_related("order")
        .order_by("-shipped_at", "-id")[:PROFILE_SECTION_LIMIT]
    )
    views = []
    for s in rows:
        delay = s.delay_days
        if delay is not None:
            is_late = delay > 0
        else:
            is_late = bool(
                s.delivered_at is None
                and s.status in (Shipment.Status.PENDING, Shipment.Status.IN_TRANSIT)
                and s.estimated_delivery_at is not None
                and s.estimated_delivery_at < now
            )
        views.append(
            ShipmentView(
                id=s.pk,
                external_id=s.external_id,
                order_external_id=s.order.external_id,
                carrier=s.carrier,
                tracking_number=s.tracking_number,
                status=s.status,
                status_label=_label(Shipment.Status, s.status),
                shipped_at=s.shipped_at,
                estimated_delivery_at=s.estimated_delivery_at,
                delivered_at=s.delivered_at,
                delay_days=delay,
                is_late=is_late,
            )
        )
    return tuple(views)


def _tickets(c: Customer) -> tuple[TicketView, ...]:
    rows = (
        Ticket.objects.filter(customer=c)
        .select_related("order")
        .order_by("-opened_at", "-id")[:PROFILE_SECTION_LIMIT]
    )
    return tuple(
        TicketView(
            id=t.pk,
            external_id=t.external_id,
            order_external_id=t.order.external_id if t.order else "",
            channel=t.channel,
            channel_label=_label(Ticket.Channel, t.channel),
            category=t.category,
            subject=t.subject,
            status=t.status,
            status_label=_label(Ticket.Status, t.status),
            priority=t.priority,
            priority_label=_label(Ticket.Priority, t.priority),
            is_complaint=t.is_complaint,
            opened_at=t.opened_at,
            first_response_at=t.first_response_at,
            resolved_at=t.resolved_at,
            satisfaction=t.satisfaction,
        )
        for t in rows
    )


def _stats(c: Customer, *, commerce: bool, tickets: bool) -> CustomerStats:
    currency = settings.DEFAULT_CURRENCY
    order_count = return_count = review_count = ticket_count = complaint_count = 0
    total_spent = Decimal("0.00")
    average_rating: float | None = None
    if commerce:
        orders = Order.objects.filter(customer=c)
        order_count = orders.count()
        spent = orders.filter(_SPENDING, currency=currency).aggregate(total=Sum("total_amount"))[
            "total"
        ]
        total_spent = _money(spent)
        return_count = ReturnRequest.objects.filter(order__customer=c).count()
        reviews = Review.objects.filter(customer=c).aggregate(n=Count("id"), mean=Avg("rating"))
        review_count = reviews["n"]
        average_rating = round(float(reviews["mean"]), 2) if reviews["mean"] is not None else None
    if tickets:
        counts = Ticket.objects.filter(customer=c).aggregate(
            n=Count("id"), complaints=Count("id", filter=Q(is_complaint=True))
        )
        ticket_count, complaint_count = counts["n"], counts["complaints"]
    return CustomerStats(
        order_count=order_count,
        total_spent=total_spent,
        currency=currency,
        return_count=return_count,
        review_count=review_count,
        average_rating=average_rating,
        ticket_count=ticket_count,
        complaint_count=complaint_count,
    )


EVENT_COLUMNS = (
    "occurred_at",
    "event_type",
    "item_external_id",
    "category_external_id",
    "query",
    "session_id",
)


def _recent_events(*, source: str, external_id: str, limit: int) -> tuple[BehaviourEvent, ...]:
    """The latest behaviour events of (source, external_id) in the lake, newest first.

    () when the lake has no events yet, or cannot be read: the profile stays usable and the
    failure is logged.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    from patron.ingest.lake import customer_events_dataset

    folder = Path(settings.LAKE_DIR)
    try:
        dataset = customer_events_dataset(folder, source=source, customer_external_id=external_id)
        if dataset is None:
            return ()
        names = set(dataset.schema.names)
        if not {"customer_external_id", "occurred_at"} <= names:
            return ()
        condition = ds.field("customer_external_id") == external_id
        if "source" in names:
            condition &= ds.field("source") == source
        columns = [name for name in EVENT_COLUMNS if name in names]
        table = dataset.to_table(columns=columns, filter=condition)
    except (pa.ArrowException, OSError, ValueError):
        logger.warning("could not read behaviour events from %s", folder, exc_info=True)
        return ()
    if table.num_rows == 0:
        return ()
    order = pc.sort_indices(table, sort_keys=[("occurred_at", "descending")])
    table = table.take(order[:limit])
    rows = table.to_pylist()

    def text(row: dict[str, Any], name: str) -> str:
        value = row.get(name)
        return "" if value is None else str(value)

    events = []
    for row in rows:
        occurred_at = _aware(row["occurred_at"])
        if occurred_at is None:
            continue
        events.append(
            BehaviourEvent(
                occurred_at=occurred_at,
                event_type=text(row, "event_type"),
                item_external_id=text(row, "item_external_id"),
                category_external_id=text(row, "category_external_id"),
                query=text(row, "query"),
                session_id=text(row, "session_id"),
            )
        )
    return tuple(events)


def customer_recent_events(
    *, user: Any, customer_id: int, limit: int = PROFILE_EVENT_LIMIT
) -> tuple[BehaviourEvent, ...]:
    """The customer's latest behaviour events (browse, search, cart …), newest first."""
    require_permission(user, VIEW_CUSTOMERS)
    require_permission(user, VIEW_COMMERCE)
    c = _get_customer(customer_id)
    return _recent_events(source=c.source, external_id=c.external_id, limit=limit)


def _timeline(
    c: Customer,
    *,
    commerce: bool,
    tickets: bool,
    audit: bool,
    limit: int,
    messages: bool = False,
) -> tuple[TimelineEntry, ...]:
    """Merge the newest ``limit`` facts of each kind, then keep the newest ``limit`` overall."""
    entries: list[TimelineEntry] = []
    if c.registered_at is not None:
        entries.append(
            TimelineEntry(
                at=c.registered_at,
                kind="registration",
                reference=c.external_id,
                labels=(_label(SourceChannel, c.source_channel),),
                summary=c.registration_channel,
            )
        )
    if commerce:
        for o in Order.objects.filter(customer=c).order_by("-placed_at", "-id")[:limit]:
            entries.append(
                TimelineEntry(
                    at=o.placed_at,
                    kind="order",
                    reference=o.external_id,
                    labels=(_label(Order.Status, o.status),),
                    summary=o.store,
                    amount=o.total_amount,
                    currency=o.currency,
                )
            )
        payments = (
            Payment.objects.filter(order__customer=c, paid_at__isnull=False)
            .select_related("order")
            .order_by("-paid_at", "-id")[:limit]
        )
        for p in payments:
            assert p.paid_at is not None  # filtered above
            entries.append(
                TimelineEntry(
                    at=p.paid_at,
                    kind="payment",
                    reference=p.order.external_id,
                    labels=(_label(Payment.Method, p.method), _label(Payment.Status, p.status)),
                    amount=p.amount,
                    currency=p.currency,
                )
            )
        returns = (
            ReturnRequest.objects.filter(order__customer=c)
            .select_related("order")
            .order_by("-requested_at", "-id")[:limit]
        )
        for r in returns:
            entries.append(
                TimelineEntry(
                    at=r.requested_at,
                    kind="return",
                    reference=r.order.external_id,
                    labels=(
                        _label(ReturnRequest.Kind, r.kind),
                        _label(ReturnRequest.Status, r.status),
                    ),
                    summary=r.reason,
                    amount=r.refund_amount,
                    currency=r.currency,
                )
            )
        for review in Review.objects.filter(customer=c).order_by("-created_at", "-id")[:limit]:
            entries.append(
                TimelineEntry(
                    at=review.created_at,
                    kind="review",
                    reference=review.external_id,
                    labels=("★" * review.rating + "☆" * (5 - review.rating),),
                    summary=review.title,
                )
            )
    if tickets:
        for t in Ticket.objects.filter(customer=c).order_by("-opened_at", "-id")[:limit]:
            entries.append(
                TimelineEntry(
                    at=t.opened_at,
                    kind="ticket",
                    reference=t.external_id,
                    labels=(_label(Ticket.Status, t.status),),
                    summary=t.subject,
                )
            )
    if audit:
        for event in AuditEvent.objects.filter(customer_id=c.pk).order_by("-occurred_at", "-id")[
            :limit
        ]:
            entries.append(
                TimelineEntry(
                    at=event.occurred_at,
                    kind="audit",
                    reference=f"{event.entity_type}:{event.entity_id}",
                    labels=(event.action,),
                    summary=" · ".join(part for part in (event.actor_label, event.summary) if part),
                )
            )
    if messages:
        for m in Message.objects.filter(customer=c).order_by("-created_at", "-id")[:limit]:
            entries.append(
                TimelineEntry(
                    at=m.sent_at or m.created_at,
                    kind="message",
                    reference=m.template,
                    labels=(_label(Consent.Channel, m.channel), _label(Message.Status, m.status)),
                    summary=" · ".join(part for part in (m.subject, m.reason) if part),
                )
            )
    entries.sort(key=lambda e: e.at, reverse=True)
    return tuple(entries[:limit])


def customer_profile(*, user: Any, customer_id: int) -> CustomerProfile:
    """The customer's file: contact data, addresses, tags, consents, latest orders (with lines
    and payments), returns, reviews, shipments, tickets, behaviour and an activity timeline.

    Sections are filled only for the permissions the caller holds: orders and behaviour need
    ``commerce.view_order``, tickets ``service.view_ticket``, audit entries in the timeline
    ``audit.view_auditevent``, messages to the customer in the timeline ``outbox.view_message``. Lists are capped (newest first); ``customer_orders`` pages all.
    """
    require_permission(user, VIEW_CUSTOMERS)
    c = _get_customer(customer_id)
    visible = may_see_pii(user)
    commerce = _has_perm(user, VIEW_COMMERCE)
    tickets = _has_perm(user, VIEW_TICKETS)
    audit = _has_perm(user, VIEW_AUDIT)
    empty: tuple[Any, ...] = ()
    orders = (
        _order_views(
            Order.objects.filter(customer=c).order_by("-placed_at", "-id")[:PROFILE_ORDER_LIMIT]
        )
        if commerce
        else empty
    )
    return CustomerProfile(
        customer=_customer_detail(c, visible=visible),
        is_pii_visible=visible,
        may_view_commerce=commerce,
        may_view_tickets=tickets,
        may_view_audit=audit,
        stats=_stats(c, commerce=commerce, tickets=tickets),
        addresses=_addresses(c, visible=visible),
        tags=_tags(c),
        consents=_consents(c),
        orders=orders,
        returns=_returns(c) if commerce else empty,
        reviews=_reviews(c) if commerce else empty,
        shipments=_shipments(c) if commerce else empty,
        tickets=_tickets(c) if tickets else empty,
        events=_recent_events(source=c.source, external_id=c.external_id, limit=PROFILE_EVENT_LIMIT)
        if commerce
        else empty,
        timeline=_timeline(
            c,
            commerce=commerce,
            tickets=tickets,
            audit=audit,
            limit=TIMELINE_LIMIT,
            messages=_has_perm(user, VIEW_MESSAGES),
        ),
        score=score_of_customer(customer_id=c.pk),
        grade_history=tuple(grade_history_of_customer(customer_id=c.pk)),
        score_history=tuple(score_history_of_customer(customer_id=c.pk)),
    )


@dataclass(frozen=True)
class CustomerOrders:
    customer_id: int
    customer_name: str
    orders: Page[OrderView]


def customer_orders(
    *, user: Any, customer_id: int, page: int = 1, page_size: int = 20
) -> CustomerOrders:
    """All the customer's orders with lines and payments, most recent first, paged."""
    require_permission(user, VIEW_CUSTOMERS)
    require_permission(user, VIEW_COMMERCE)
    page, page_size = page_bounds(page, page_size)
    c = _get_customer(customer_id)
    queryset = Order.objects.filter(customer=c).order_by("-placed_at", "-id")
    offset = (page - 1) * page_size
    items = _order_views(queryset[offset : offset + page_size])
    return CustomerOrders(
        customer_id=c.pk,
        customer_name=c.name,
        orders=Page(items=items, count=queryset.count(), page=page, page_size=page_size),
    )


def customer_timeline(
    *, user: Any, customer_id: int, limit: int = TIMELINE_LIMIT
) -> tuple[TimelineEntry, ...]:
    """The customer's activity, newest first, limited to what the caller may see."""
    require_permission(user, VIEW_CUSTOMERS)
    if limit < 1 or limit > TIMELINE_MAX_LIMIT:
        raise ValidationFailed(f"limit must be between 1 and {TIMELINE_MAX_LIMIT}, got {limit}")
    c = _get_customer(customer_id)
    return _timeline(
        c,
        commerce=_has_perm(user, VIEW_COMMERCE),
        tickets=_has_perm(user, VIEW_TICKETS),
        audit=_has_perm(user, VIEW_AUDIT),
        limit=limit,
        messages=_has_perm(user, VIEW_MESSAGES),
    )
