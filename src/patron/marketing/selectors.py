"""Reading marketing data: a segment's rule compiled to one queryset, previews, members, the
segment list, coupon templates and codes.

``segment_queryset`` turns a validated rule into ONE query over customers: each field is a
column of the customer or of its score (joined once), or a correlated subquery annotated only
when the rule names it (orders, spend, last order, certification, tier, consent). Nothing loops
over customers in Python, so a preview costs one ``COUNT`` and one page of rows.

Customers without a value (no score yet, no orders, no certification) match ``is_null``, and
``ne``/``not_in`` (they are not the value); comparisons (``gt``, ``between`` …) never match them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import (
    BooleanField,
    Count,
    DecimalField,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce
from django.db.models.lookups import Exact
from django.utils import timezone

from patron.account.roles import VIEW_COUPONS, VIEW_SEGMENTS
from patron.account.services import require_permission
from patron.certification.models import Certification
from patron.commerce.models import Order
from patron.customer.models import Consent, Customer
from patron.customer.selectors import MAX_PAGE, MAX_PAGE_SIZE, Page
from patron.errors import NotFound, ValidationFailed
from patron.loyalty.models import TierMembership
from patron.marketing import rules
from patron.marketing.models import Coupon, CouponTemplate, Segment
from patron.marketing.rules import Condition, FieldType, Group, Op

SAMPLE_SIZE = 20
#: Orders that count as purchases: paid, and neither cancelled nor returned.
_NOT_PURCHASES = (Order.Status.CANCELLED, Order.Status.RETURNED)


# ---------------------------------------------------------------------- compiling a rule


def _start_of(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time()))


def _purchases() -> QuerySet[Order]:
    return Order.objects.filter(customer=OuterRef("pk"), paid_at__isnull=False).exclude(
        status__in=_NOT_PURCHASES
    )


def _orders_count() -> Any:
    counted = _purchases().values("customer").annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(counted), Value(0))


def _spend_365d() -> Any:
    since = timezone.now() - timedelta(days=365)
    summed = (
        _purchases()
        .filter(paid_at__gte=since)
        .values("customer")
        .annotate(s=Sum("total_amount"))
        .values("s")
    )
    money = DecimalField(max_digits=16, decimal_places=2)
    return Coalesce(Subquery(summed, output_field=money), Value(Decimal("0")), output_field=money)


def _last_order_at() -> Any:
    latest = _purchases().values("customer").annotate(m=Max("placed_at")).values("m")
    return Subquery(latest)


def _certification_level() -> Any:
    active = Certification.objects.filter(customer=OuterRef("pk"), status="active")
    return Subquery(active.values("level__code")[:1])


def _loyalty_tier() -> Any:
    current = TierMembership.objects.filter(customer=OuterRef("pk"), valid_to__isnull=True)
    return Subquery(current.values("tier__code")[:1])


#: Fields computed by a subquery: annotation name -> how.
_ANNOTATED: dict[str, Callable[[], Any]] = {
    "orders_count": _orders_count,
    "spend_365d": _spend_365d,
    "last_order_date": _last_order_at,
    "days_since_last_order": _last_order_at,
    "certification_level": _certification_level,
    "loyalty_tier": _loyalty_tier,
}
#: Fields that are columns: rule field -> ORM lookup path.
_COLUMNS: dict[str, str] = {
    "kind": "kind",
    "province": "province",
    "city": "city",
    "source_channel": "source_channel",
    "registered_at": "registered_at",
    "days_since_registration": "registered_at",
    "grade": "score__grade",
    "rfm_segment": "score__rfm_segment",
    "churn_probability": "score__churn_probability",
    "clv_12m": "score__clv_12m",
    "credit_score": "score__credit_score",
    "p_alive": "score__p_alive",
    "expected_orders_90d": "score__expected_orders_90d",
    "cluster_name": "score__cluster_name",
}
#: Fields whose ``is_null`` also means an empty text (blank CharFields).
_BLANK_IS_NULL = frozenset(
    {"province", "city", "grade", "rfm_segment", "cluster_name", "kind", "source_channel"}
)
#: Date fields stored as instants: compared by the merchant's calendar day.
_INSTANTS = frozenset({"registered_at", "last_order_date"})
#: "Days since" fields: the instant column or annotation they count from.
_DAYS_SINCE = {
    "days_since_registration": "registered_at",
    "days_since_last_order": "_m_days_since_last_order",
}


def compiled_fields() -> set[str]:
    """The rule fields the compiler knows (a test checks it covers the registry)."""
    return set(_ANNOTATED) | set(_COLUMNS) | {"consent"}


def _lookup(name: str) -> str:
    return f"_m_{name}" if name in _ANNOTATED else _COLUMNS[name]


def _null(path: str, name: str) -> Q:
    q = Q(**{f"{path}__isnull": True})
    if name in _BLANK_IS_NULL:
        q |= Q(**{path: ""})
    return q


def _ordered(path: str, op: Op, value: Any) -> Q:
    if op is Op.EQ:
        return Q(**{path: value})
    if op is Op.BETWEEN:
        return Q(**{f"{path}__gte": value[0], f"{path}__lte": value[1]})
    return Q(**{f"{path}__{op.value}": value})


def _day_range(path: str, op: Op, value: Any) -> Q:
    """A comparison of an instant column with calendar days (merchant's time zone)."""
    if op is Op.BETWEEN:
        low, high = value
        return Q(**{f"{path}__gte": _start_of(low), f"{path}__lt": _start_of(high + timedelta(1))})
    start, end = _start_of(value), _start_of(value + timedelta(days=1))
    return {
        Op.EQ: Q(**{f"{path}__gte": start, f"{path}__lt": end}),
        Op.NE: ~Q(**{f"{path}__gte": start, f"{path}__lt": end}) | Q(**{f"{path}__isnull": True}),
        Op.GT: Q(**{f"{path}__gte": end}),
        Op.GTE: Q(**{f"{path}__gte": start}),
        Op.LT: Q(**{f"{path}__lt": start}),
        Op.LTE: Q(**{f"{path}__lt": end}),
    }[op]


def _days_since(path: str, op: Op, value: Any, today: date) -> Q:
    """``days since X`` compared with N days is X's day compared with today − N (reversed)."""

    def day(days: Decimal) -> date:
        return today - timedelta(days=int(days))  # whole: the rules refuse fractions

    if op is Op.BETWEEN:
        low, high = value
        return _day_range(path, Op.BETWEEN, (day(high), day(low)))
    flipped = {Op.GT: Op.LT, Op.GTE: Op.LTE, Op.LT: Op.GT, Op.LTE: Op.GTE}.get(op, op)
    return _day_range(path, flipped, day(value))


def _consent(value: str, op: Op) -> Q:
    """The latest consent row for the purpose and channel is in force (none: not granted)."""
    purpose, channel = value.split(":", 1)
    latest = Consent.objects.filter(
        customer=OuterRef("pk"), purpose=purpose, channel=channel
    ).order_by("-recorded_at", "-id")
    in_force = Coalesce(
        Subquery(latest.values("is_granted")[:1], output_field=BooleanField()),
        Value(False),
        output_field=BooleanField(),
    )
    granted = Exact(in_force, True)
    return Q(granted) if op is Op.GRANTED else ~Q(granted)


def _condition_q(node: Condition, today: date) -> Q:
    spec = rules.SEGMENT_FIELDS[node.field]
    if spec.type is FieldType.CONSENT:
        return _consent(node.value, node.op)
    path = _DAYS_SINCE.get(node.field) or _lookup(node.field)
    op, value = node.op, node.value
    if op is Op.IS_NULL:
        return _null(path, node.field)
    if op is Op.NOT_NULL:
        return ~_null(path, node.field)
    if node.field in _DAYS_SINCE:
        return _days_since(path, op, value, today)
    if node.field in _INSTANTS:
        return _day_range(path, op, value)
    if op is Op.IN:
        return Q(**{f"{path}__in": list(value)})
    if op is Op.NOT_IN:
        return ~Q(**{f"{path}__in": list(value)}) | Q(**{f"{path}__isnull": True})
    if op is Op.NE:
        return ~Q(**{path: value}) | Q(**{f"{path}__isnull": True})
    return _ordered(path, op, value)


def _group_q(group: Group, today: date) -> Q:
    parts = [
        _group_q(item, today) if isinstance(item, Group) else _condition_q(item, today)
        for item in group.items
    ]
    combined = parts[0]
    for part in parts[1:]:
        combined = combined & part if group.mode == "all" else combined | part
    return combined


def segment_rule(raw: Any) -> Group:
    """The rule validated, or ``ValidationFailed`` naming the path of the mistake."""
    try:
        return rules.validate_rule(raw)
    except rules.RuleError as error:
        raise ValidationFailed(str(error), details={"rule": str(error).split(":", 1)[0]}) from None


def segment_queryset(rule: Group | Any, *, today: date | None = None) -> QuerySet[Customer]:
    """The customers a rule matches: ONE queryset (filters, a join to the score, correlated
    subqueries for the purchase facts), never a loop over customers. Erased customers never
    match."""
    group = rule if isinstance(rule, Group) else segment_rule(rule)
    today = today or timezone.localdate()
    names = {c.field for c in rules.conditions(group)}
    queryset = Customer.objects.exclude(status=Customer.Status.ERASED.value)
    annotations = {f"_m_{n}": _ANNOTATED[n]() for n in sorted(names) if n in _ANNOTATED}
    if annotations:
        queryset = queryset.annotate(**annotations)
    return queryset.filter(_group_q(group, today))


# ---------------------------------------------------------------------- segments


@dataclass(frozen=True)
class SegmentMember:
    id: int
    name: str
    kind: str
    province: str
    city: str
    grade: str
    registered_at: datetime | None


@dataclass(frozen=True)
class SegmentPreview:
    count: int
    sample: tuple[SegmentMember, ...]
    description: str
    rule: dict[str, Any]


def _members(queryset: QuerySet[Customer], start: int, stop: int) -> tuple[SegmentMember, ...]:
    rows = queryset.order_by("pk").values(
        "pk", "name", "kind", "province", "city", "score__grade", "registered_at"
    )[start:stop]
    return tuple(
        SegmentMember(
            id=r["pk"],
            name=r["name"],
            kind=r["kind"],
            province=r["province"],
            city=r["city"],
            grade=r["score__grade"] or "",
            registered_at=r["registered_at"],
        )
        for r in rows
    )


def segment_preview(*, user: Any, rule: Any, language: str = "en") -> SegmentPreview:
    """How many customers a rule matches now, and the first ``SAMPLE_SIZE`` of them."""
    require_permission(user, VIEW_SEGMENTS)
    group = segment_rule(rule)
    queryset = segment_queryset(group)
    return SegmentPreview(
        count=queryset.count(),
        sample=_members(queryset, 0, SAMPLE_SIZE),
        description=rules.describe(group, language=language),
        rule=rules.rule_to_json(group),
    )


def segment_fields(*, user: Any) -> list[dict[str, Any]]:
    """The registry of fields, their types and operators (what a rule builder offers)."""
    require_permission(user, VIEW_SEGMENTS)
    return [spec.as_dict() for spec in rules.SEGMENT_FIELDS.values()]


def segments_list(*, user: Any) -> list[Segment]:
    require_permission(user, VIEW_SEGMENTS)
    return list(Segment.objects.order_by("name"))


def segment_get(*, user: Any, segment_id: int) -> Segment:
    require_permission(user, VIEW_SEGMENTS)
    segment = Segment.objects.filter(pk=segment_id).first()
    if segment is None:
        raise NotFound(f"segment {segment_id} not found", details={"segment_id": segment_id})
    return segment


def segment_description(segment: Segment, *, language: str = "en") -> str:
    """The segment's rule in plain words (a rule that no longer validates says why)."""
    try:
        return rules.describe(rules.validate_rule(segment.rule), language=language)
    except rules.RuleError as error:
        return f"(invalid rule: {error})"


def _page_bounds(page: int, page_size: int) -> None:
    if page_size < 1 or page_size > MAX_PAGE_SIZE:
        raise ValidationFailed(f"page_size must be between 1 and {MAX_PAGE_SIZE}, got {page_size}")
    if page < 1 or page > MAX_PAGE:
        raise ValidationFailed(f"page must be between 1 and {MAX_PAGE}, got {page}")


def segment_members(
    *, user: Any, segment_id: int, page: int = 1, page_size: int = 50
) -> Page[SegmentMember]:
    """The segment's members now (evaluated on the spot), ordered by customer id."""
    segment = segment_get(user=user, segment_id=segment_id)
    _page_bounds(page, page_size)
    queryset = segment_queryset(segment_rule(segment.rule))
    start = (page - 1) * page_size
    return Page(
        items=_members(queryset, start, start + page_size),
        count=queryset.count(),
        page=page,
        page_size=page_size,
    )


# ---------------------------------------------------------------------- coupons


@dataclass(frozen=True)
class TemplateUsage:
    template: CouponTemplate
    issued: int
    redeemed: int
    discount_given: Decimal

    @property
    def stock_left(self) -> int | None:
        stock = self.template.stock
        return None if stock is None else max(0, stock - self.issued)

    @property
    def budget_left(self) -> Decimal | None:
        budget = self.template.budget
        return None if budget is None else max(Decimal("0"), budget - self.discount_given)


def coupon_templates_list(*, user: Any) -> list[TemplateUsage]:
    """Every template with its codes issued, redeemed and the discount given (one query)."""
    require_permission(user, VIEW_COUPONS)
    rows = CouponTemplate.objects.annotate(
        n_issued=Count("coupons"),
        n_redeemed=Count("coupons", filter=Q(coupons__status=Coupon.Status.REDEEMED)),
        given=Sum("coupons__discount_amount", filter=Q(coupons__status=Coupon.Status.REDEEMED)),
    ).order_by("-id")
    return [
        TemplateUsage(
            template=t,
            issued=t.n_issued,
            redeemed=t.n_redeemed,
            discount_given=Decimal(t.given or 0).quantize(Decimal("0.01")),
        )
        for t in rows
    ]


def coupon_template_get(*, user: Any, template_id: int) -> TemplateUsage:
    require_permission(user, VIEW_COUPONS)
    for usage in coupon_templates_list(user=user):
        if usage.template.pk == template_id:
            return usage
    raise NotFound(f"coupon template {template_id} not found", details={"template_id": template_id})


def coupons_list(
    *,
    user: Any,
    template_id: int | None = None,
    customer_id: int | None = None,
    status: str | None = None,
    page: int = 1,
    page_size: int = 50,
) -> Page[Coupon]:
    require_permission(user, VIEW_COUPONS)
    _page_bounds(page, page_size)
    queryset = Coupon.objects.select_related("template").order_by("-id")
    if template_id is not None:
        queryset = queryset.filter(template_id=template_id)
    if customer_id is not None:
        queryset = queryset.filter(customer_id=customer_id)
    if status:
        queryset = queryset.filter(status=status)
    start = (page - 1) * page_size
    return Page(
        items=tuple(queryset[start : start + page_size]),
        count=queryset.count(),
        page=page,
        page_size=page_size,
    )


def coupon_get(*, user: Any, code: str) -> Coupon:
    require_permission(user, VIEW_COUPONS)
    coupon = Coupon.objects.select_related("template").filter(code=code.strip().upper()).first()
    if coupon is None:
        raise NotFound(f"coupon {code!r} not found", details={"code": code})
    return coupon
