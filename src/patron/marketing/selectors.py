"""Reading marketing data: a segment's rule compiled to one queryset, previews, members, the
segment list, coupon templates and codes, campaigns and their evaluation (uplift against the
holdout).

``segment_queryset`` turns a validated rule into ONE query over customers: each field is a
column of the customer or of its score (joined once), or a correlated subquery annotated only
when the rule names it (orders, spend, last order, certification, tier, consent). Nothing loops
over customers in Python, so a preview costs one ``COUNT`` and one page of rows.

Customers without a value (no score yet, no orders, no certification) match ``is_null``, and
``ne``/``not_in`` (they are not the value); comparisons (``gt``, ``between`` …) never match them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
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

from patron.account.roles import VIEW_CAMPAIGNS, VIEW_COUPONS, VIEW_SEGMENTS
from patron.account.services import require_permission
from patron.certification.models import Certification
from patron.commerce.models import Order
from patron.customer.models import Consent, Customer
from patron.customer.selectors import MAX_PAGE, MAX_PAGE_SIZE, Page
from patron.errors import NotFound, ValidationFailed
from patron.loyalty.models import TierMembership
from patron.marketing import rules, uplift
from patron.marketing.models import (
    Campaign,
    CampaignMember,
    Coupon,
    CouponTemplate,
    Segment,
    WinbackEnrolment,
    WinbackProgramme,
    WinbackRun,
)
from patron.marketing.rules import Condition, FieldType, Group, Op
from patron.marketing.uplift import Interval, Sample
from patron.outbox.models import Message

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


# ---------------------------------------------------------------------- campaigns


@dataclass(frozen=True)
class CampaignSummary:
    campaign: Campaign
    members: int
    treatment: int
    holdout: int
    messaged: int
    skipped: int
    pending: int


def _campaign_counts(campaign_ids: list[int]) -> dict[int, dict[tuple[str, str], int]]:
    counts: dict[int, dict[tuple[str, str], int]] = {pk: {} for pk in campaign_ids}
    rows = (
        CampaignMember.objects.filter(campaign_id__in=campaign_ids)
        .values("campaign_id", "group", "outcome")
        .annotate(n=Count("pk"))
    )
    for row in rows:
        counts[row["campaign_id"]][(row["group"], row["outcome"])] = row["n"]
    return counts


def _summary(campaign: Campaign, counts: dict[tuple[str, str], int]) -> CampaignSummary:
    outcome = CampaignMember.Outcome
    treated = {o: n for (g, o), n in counts.items() if g == CampaignMember.Group.TREATMENT}
    return CampaignSummary(
        campaign=campaign,
        members=sum(counts.values()),
        treatment=sum(treated.values()),
        holdout=sum(n for (g, _), n in counts.items() if g == CampaignMember.Group.HOLDOUT),
        messaged=treated.get(outcome.MESSAGED, 0),
        pending=treated.get(outcome.PENDING, 0),
        skipped=sum(n for o, n in treated.items() if o not in (outcome.MESSAGED, outcome.PENDING)),
    )


def campaigns_list(*, user: Any, status: str | None = None) -> list[CampaignSummary]:
    """Every campaign, newest first, with its members by group and how many were messaged
    (one query for the campaigns, one for the counts)."""
    require_permission(user, VIEW_CAMPAIGNS)
    queryset = Campaign.objects.select_related("segment", "coupon_template").order_by("-id")
    if status:
        queryset = queryset.filter(status=status)
    campaigns = list(queryset[:500])
    counts = _campaign_counts([c.pk for c in campaigns])
    return [_summary(c, counts[c.pk]) for c in campaigns]


def campaign_get(*, user: Any, campaign_id: int) -> CampaignSummary:
    require_permission(user, VIEW_CAMPAIGNS)
    campaign = (
        Campaign.objects.select_related("segment", "coupon_template", "created_by")
        .filter(pk=campaign_id)
        .first()
    )
    if campaign is None:
        raise NotFound(f"campaign {campaign_id} not found", details={"campaign_id": campaign_id})
    return _summary(campaign, _campaign_counts([campaign.pk])[campaign.pk])


@dataclass(frozen=True)
class CampaignGroupResult:
    """What one group did in the evaluation window. ``metric`` is the goal metric (a share
    for rates, CNY for revenue per customer) with its own 95 % interval."""

    group: str
    members: int
    outcomes: dict[str, int]
    buyers: int
    orders: int
    revenue: Decimal
    lapsed: int
    reactivated: int
    coupons_issued: int
    coupons_redeemed: int
    discount_given: Decimal
    points_granted: int
    cost: Decimal
    metric: float | None
    metric_interval: Interval | None


@dataclass(frozen=True)
class CampaignChannelReach:
    """Messages of the campaign on one channel by outbox status. ``delivered``, ``opened``
    and ``clicked`` are None: the outbox records the hand-over to the provider (``sent``)
    and nothing after it."""

    channel: str
    messages: int
    pending: int
    sent: int
    failed: int
    suppressed: int
    cancelled: int
    delivered: int | None = None
    opened: int | None = None
    clicked: int | None = None


NOT_REPORTED = "not reported by this channel"


@dataclass(frozen=True)
class CampaignEvaluation:
    campaign: Campaign
    as_of: datetime
    window_start: datetime
    window_end: datetime
    is_complete: bool
    goal_metric: str
    goal_label: str
    goal_definition: str
    unit: str
    treatment: CampaignGroupResult
    holdout: CampaignGroupResult
    uplift: Interval | None
    target: float | None
    progress: float | None
    is_target_reached: bool | None
    contact_rate: float | None
    effect_on_contacted: Interval | None
    reach: tuple[CampaignChannelReach, ...]
    notes: tuple[str, ...]

    @property
    def is_significant(self) -> bool | None:
        return None if self.uplift is None else self.uplift.is_significant


def _purchases_between(customers: Any, start: datetime, end: datetime) -> QuerySet[Order]:
    return Order.objects.filter(
        customer_id__in=customers, paid_at__isnull=False, paid_at__gte=start, paid_at__lt=end
    ).exclude(status__in=_NOT_PURCHASES)


def _group_result(
    campaign: Campaign,
    group: str,
    outcomes: dict[str, int],
    *,
    start: datetime,
    end: datetime,
    offers: Mapping[str, Any],
) -> tuple[CampaignGroupResult, list[float]]:
    members = CampaignMember.objects.filter(campaign=campaign, group=group).values("customer_id")
    size = sum(outcomes.values())
    bought = {
        r["customer_id"]: (r["n"], r["revenue"])
        for r in _purchases_between(members, start, end)
        .values("customer_id")
        .annotate(n=Count("pk"), revenue=Sum("total_amount"))
    }
    lookback = start - timedelta(days=rules.REACTIVATION_LOOKBACK_DAYS)
    active_before = set(
        _purchases_between(members, lookback, start)
        .values_list("customer_id", flat=True)
        .distinct()
    )
    revenue = sum((Decimal(v[1] or 0) for v in bought.values()), Decimal("0"))
    reactivated = len(set(bought) - active_before)
    result = CampaignGroupResult(
        group=group,
        members=size,
        outcomes=outcomes,
        buyers=len(bought),
        orders=sum(v[0] for v in bought.values()),
        revenue=revenue.quantize(Decimal("0.01")),
        lapsed=size - len(active_before),
        reactivated=reactivated,
        coupons_issued=offers.get("coupons_issued") or 0,
        coupons_redeemed=offers.get("coupons_redeemed") or 0,
        discount_given=Decimal(offers.get("discount_given") or 0).quantize(Decimal("0.01")),
        points_granted=offers.get("points_granted") or 0,
        cost=Decimal(offers.get("cost") or 0).quantize(Decimal("0.01")),
        metric=None,
        metric_interval=None,
    )
    return result, [float(v[1] or 0) for v in bought.values()]


def _events(result: CampaignGroupResult, goal: str) -> int:
    return result.reactivated if goal == rules.GoalMetric.REACTIVATION_RATE else result.buyers


def _with_metric(
    result: CampaignGroupResult, goal: str, revenues: list[float]
) -> tuple[CampaignGroupResult, Sample | None]:
    if goal == rules.GoalMetric.REVENUE_PER_CUSTOMER:
        sample = Sample.of(revenues, size=result.members)
        interval = uplift.mean_interval(sample)
        metric = sample.mean if result.members else None
        return replace(result, metric=metric, metric_interval=interval), sample
    interval = uplift.wilson_interval(_events(result, goal), result.members)
    metric = interval.estimate if interval is not None else None
    return replace(result, metric=metric, metric_interval=interval), None


def _reach(campaign: Campaign) -> tuple[CampaignChannelReach, ...]:
    by_channel: dict[str, dict[str, int]] = {}
    rows = (
        CampaignMember.objects.filter(campaign=campaign, message__isnull=False)
        .values("message__channel", "message__status")
        .annotate(n=Count("pk"))
    )
    for row in rows:
        by_channel.setdefault(row["message__channel"], {})[row["message__status"]] = row["n"]
    status = Message.Status
    return tuple(
        CampaignChannelReach(
            channel=channel,
            messages=sum(counts.values()),
            pending=counts.get(status.QUEUED, 0) + counts.get(status.SENDING, 0),
            sent=counts.get(status.SENT, 0),
            failed=counts.get(status.FAILED, 0),
            suppressed=counts.get(status.SUPPRESSED, 0),
            cancelled=counts.get(status.CANCELLED, 0),
        )
        for channel, counts in sorted(by_channel.items())
    )


def campaign_evaluation(
    *, user: Any, campaign_id: int, now: datetime | None = None
) -> CampaignEvaluation:
    """The campaign's outcome, treatment against holdout, over its period (up to now while it
    runs): reach by channel, offers issued and redeemed, buyers, orders and revenue (paid
    orders, neither cancelled nor returned, paid in the period), the goal metric per group
    with its 95 % interval, and the **uplift** (treatment − holdout) with its 95 % interval:
    Newcombe's hybrid score interval for the rates, Welch's t interval for revenue per
    customer (``patron.marketing.uplift``).

    Intention to treat: every treatment member counts, also those the campaign skipped (no
    consent, capped, over budget), because the holdout has customers who would have been
    skipped too; comparing only the messaged members with the holdout would compare
    customers who consent to marketing with everyone. ``effect_on_contacted`` rescales the
    uplift by the share messaged (Bloom's adjustment: the skipped got nothing, so all of the
    effect comes from the messaged), an approximation that ignores the uncertainty of that
    share. Reads a handful of aggregate queries, whatever the audience size."""
    summary = campaign_get(user=user, campaign_id=campaign_id)
    campaign = summary.campaign
    now = now or timezone.now()
    goal = campaign.goal_metric
    unit, label_zh, label_en, definition = rules.GOAL_METRICS[goal]
    start = campaign.period_start
    end = min(campaign.period_end, max(now, start))
    counts = _campaign_counts([campaign.pk])[campaign.pk]
    offers = {
        row["group"]: row
        for row in CampaignMember.objects.filter(campaign=campaign)
        .values("group")
        .annotate(
            coupons_issued=Count("coupon"),
            coupons_redeemed=Count("coupon", filter=Q(coupon__status=Coupon.Status.REDEEMED)),
            discount_given=Sum(
                "coupon__discount_amount", filter=Q(coupon__status=Coupon.Status.REDEEMED)
            ),
            points_granted=Sum("points_entry__points"),
            cost=Sum("cost"),
        )
    }
    results: dict[str, CampaignGroupResult] = {}
    samples: dict[str, Sample | None] = {}
    for group in (CampaignMember.Group.TREATMENT, CampaignMember.Group.HOLDOUT):
        outcomes = {o: n for (g, o), n in counts.items() if g == group}
        raw, revenues = _group_result(
            campaign, group, outcomes, start=start, end=end, offers=offers.get(group, {})
        )
        results[group], samples[group] = _with_metric(raw, goal, revenues)
    treated, held = results["treatment"], results["holdout"]
    difference: Interval | None
    if goal == rules.GoalMetric.REVENUE_PER_CUSTOMER:
        a, b = samples["treatment"], samples["holdout"]
        difference = uplift.welch_difference(a, b) if a and b else None
    else:
        difference = uplift.newcombe_difference(
            _events(treated, goal), treated.members, _events(held, goal), held.members
        )
    target = float(campaign.target_value) if campaign.target_value is not None else None
    progress = (
        difference.estimate / target
        if difference is not None and target is not None and target != 0
        else None
    )
    messaged = treated.outcomes.get(CampaignMember.Outcome.MESSAGED, 0)
    contact_rate = messaged / treated.members if treated.members else None
    on_contacted = (
        difference.scaled(1 / contact_rate) if difference is not None and contact_rate else None
    )
    if on_contacted is not None and unit == "share":  # a difference of shares stays in ±1
        on_contacted = replace(
            on_contacted,
            estimate=max(-1.0, min(1.0, on_contacted.estimate)),
            low=max(-1.0, on_contacted.low),
            high=min(1.0, on_contacted.high),
        )
    notes = _evaluation_notes(
        campaign, treated, held, goal=goal, now=now, end=end, difference=difference
    )
    return CampaignEvaluation(
        campaign=campaign,
        as_of=now,
        window_start=start,
        window_end=end,
        is_complete=now >= campaign.period_end,
        goal_metric=goal,
        goal_label=f"{label_zh} {label_en}",
        goal_definition=definition,
        unit=unit,
        treatment=treated,
        holdout=held,
        uplift=difference,
        target=target,
        progress=progress,
        is_target_reached=None if progress is None or difference is None or target is None
        else difference.estimate >= target,
        contact_rate=contact_rate,
        effect_on_contacted=on_contacted,
        reach=_reach(campaign),
        notes=tuple(notes),
    )  # fmt: skip


def _evaluation_notes(
    campaign: Campaign,
    treated: CampaignGroupResult,
    held: CampaignGroupResult,
    *,
    goal: str,
    now: datetime,
    end: datetime,
    difference: Interval | None,
) -> list[str]:
    notes = []
    if treated.members + held.members == 0:
        notes.append("The campaign has not been launched: there is nothing to evaluate yet.")
        return notes
    if now < campaign.period_start:
        notes.append("The period has not begun: no order counts yet.")
    elif now < campaign.period_end:
        notes.append(
            f"The period runs until {campaign.period_end:%Y-%m-%d %H:%M} UTC: figures so far."
        )
    events = _events(treated, goal) + _events(held, goal)
    notes.extend(
        uplift.precision_notes(
            treated.members,
            held.members,
            events=None if goal == rules.GoalMetric.REVENUE_PER_CUSTOMER else events,
        )
    )
    if goal == rules.GoalMetric.REVENUE_PER_CUSTOMER and min(treated.buyers, held.buyers) < 30:
        notes.append("Revenue is skewed and few customers bought: Welch's interval is rough here.")
    skipped = treated.members - treated.outcomes.get(CampaignMember.Outcome.MESSAGED, 0)
    reasons = ", ".join(sorted(o for o in treated.outcomes if o != CampaignMember.Outcome.MESSAGED))
    notes.append(
        f"Intention to treat: all {treated.members} treatment members count, including the "
        f"{skipped} the campaign did not message"
        + (f" ({reasons})" if skipped else "")
        + ", because the holdout holds customers who would have been skipped too. The uplift "
        "is what launching the campaign did to the whole audience."
    )
    if difference is not None:
        verdict = (
            "significant at 95 %: the interval leaves out 0"
            if difference.is_significant
            else "not significant at 95 %: the interval includes 0, so no effect is shown"
        )
        notes.append(f"The uplift is {verdict}.")
    if campaign.note:
        notes.append(campaign.note)
    return notes


# ---------------------------------------------------------------------- win-back (R-G7)


@dataclass(frozen=True)
class WinbackSummary:
    programme: WinbackProgramme
    entries: int
    treatment: int
    holdout: int
    messaged: int
    pending: int
    last_run: WinbackRun | None


def _winback_counts(programme_ids: list[int]) -> dict[int, dict[tuple[str, str], int]]:
    counts: dict[int, dict[tuple[str, str], int]] = {pk: {} for pk in programme_ids}
    rows = (
        WinbackEnrolment.objects.filter(programme_id__in=programme_ids)
        .values("programme_id", "group", "outcome")
        .annotate(n=Count("pk"))
    )
    for row in rows:
        counts[row["programme_id"]][(row["group"], row["outcome"])] = row["n"]
    return counts


def _winback_summary(
    programme: WinbackProgramme, counts: dict[tuple[str, str], int], last_run: WinbackRun | None
) -> WinbackSummary:
    outcome = WinbackEnrolment.Outcome
    return WinbackSummary(
        programme=programme,
        entries=sum(counts.values()),
        treatment=sum(n for (g, _), n in counts.items() if g == WinbackEnrolment.Group.TREATMENT),
        holdout=sum(n for (g, _), n in counts.items() if g == WinbackEnrolment.Group.HOLDOUT),
        messaged=sum(n for (_, o), n in counts.items() if o == outcome.MESSAGED),
        pending=sum(n for (_, o), n in counts.items() if o == outcome.PENDING),
        last_run=last_run,
    )


def _last_runs(programme_ids: list[int]) -> dict[int, WinbackRun]:
    found: dict[int, WinbackRun] = {}
    for run in WinbackRun.objects.filter(programme_id__in=programme_ids).order_by("-as_of", "-pk"):
        found.setdefault(run.programme_id, run)
    return found


def winback_programmes_list(*, user: Any) -> list[WinbackSummary]:
    """Every win-back programme with its entries by group and its latest run."""
    require_permission(user, VIEW_CAMPAIGNS)
    programmes = list(
        WinbackProgramme.objects.select_related("coupon_template", "high_value_coupon_template")
    )
    ids = [p.pk for p in programmes]
    counts, last = _winback_counts(ids), _last_runs(ids)
    return [_winback_summary(p, counts[p.pk], last.get(p.pk)) for p in programmes]


def winback_programme_get(*, user: Any, programme_id: int) -> WinbackSummary:
    require_permission(user, VIEW_CAMPAIGNS)
    programme = (
        WinbackProgramme.objects.select_related(
            "coupon_template", "high_value_coupon_template", "created_by"
        )
        .filter(pk=programme_id)
        .first()
    )
    if programme is None:
        raise NotFound(
            f"win-back programme {programme_id} not found", details={"programme_id": programme_id}
        )
    last = _last_runs([programme.pk]).get(programme.pk)
    return _winback_summary(programme, _winback_counts([programme.pk])[programme.pk], last)


def winback_runs_list(*, user: Any, programme_id: int, limit: int = 20) -> list[WinbackRun]:
    """The programme's latest runs, newest first."""
    winback_programme_get(user=user, programme_id=programme_id)
    return list(
        WinbackRun.objects.filter(programme_id=programme_id).order_by("-as_of", "-pk")[:limit]
    )


def winback_enrolments(
    *,
    user: Any,
    programme_id: int,
    group: str | None = None,
    outcome: str | None = None,
    page: int = 1,
    page_size: int = 50,
) -> Page[WinbackEnrolment]:
    """The programme's entries, newest first, with the offer chosen and why."""
    winback_programme_get(user=user, programme_id=programme_id)
    _page_bounds(page, page_size)
    queryset = (
        WinbackEnrolment.objects.filter(programme_id=programme_id)
        .select_related("customer", "coupon_template", "coupon")
        .order_by("-enrolled_at", "-pk")
    )
    if group:
        queryset = queryset.filter(group=group)
    if outcome:
        queryset = queryset.filter(outcome=outcome)
    start = (page - 1) * page_size
    return Page(
        items=tuple(queryset[start : start + page_size]),
        count=queryset.count(),
        page=page,
        page_size=page_size,
    )


@dataclass(frozen=True)
class WinbackGroupResult:
    """One group's entries whose measurement window has closed, and what they did in it:
    ``reactivated`` entries with a paid order (neither cancelled nor returned) within the
    window, their orders and revenue; ``rate`` and ``revenue_per_entry`` with their own 95 %
    intervals."""

    group: str
    entries: int
    customers: int
    outcomes: dict[str, int]
    reactivated: int
    orders: int
    revenue: Decimal
    rate: float | None
    rate_interval: Interval | None
    revenue_per_entry: float | None
    revenue_interval: Interval | None
    coupons_issued: int
    coupons_redeemed: int
    discount_given: Decimal
    points_granted: int
    cost: Decimal


@dataclass(frozen=True)
class WinbackTierResult:
    """Reactivation by offer tier (standard, high value): the holdout records the offer it
    would have got, so each tier compares like with like."""

    tier: str
    treatment: int
    treatment_reactivated: int
    holdout: int
    holdout_reactivated: int
    uplift: Interval | None


@dataclass(frozen=True)
class WinbackEvaluation:
    programme: WinbackProgramme
    as_of: datetime
    entries: int
    matured: int
    in_window: int
    in_window_reactivated: int
    treatment: WinbackGroupResult
    holdout: WinbackGroupResult
    uplift: Interval | None
    revenue_uplift: Interval | None
    contact_rate: float | None
    effect_on_contacted: Interval | None
    tiers: tuple[WinbackTierResult, ...]
    notes: tuple[str, ...]

    @property
    def is_significant(self) -> bool | None:
        return None if self.uplift is None else self.uplift.is_significant


def _in_window_orders() -> QuerySet[Order]:
    """Paid orders of the entry's customer within the entry's measurement window."""
    return Order.objects.filter(
        customer=OuterRef("customer_id"),
        paid_at__isnull=False,
        paid_at__gte=OuterRef("enrolled_at"),
        paid_at__lt=OuterRef("window_ends_at"),
    ).exclude(status__in=_NOT_PURCHASES)


def _with_window_orders(queryset: QuerySet[WinbackEnrolment]) -> QuerySet[WinbackEnrolment]:
    grouped = _in_window_orders().values("customer")
    money = DecimalField(max_digits=16, decimal_places=2)
    return queryset.annotate(
        window_orders=Coalesce(Subquery(grouped.annotate(n=Count("pk")).values("n")), Value(0)),
        window_revenue=Coalesce(
            Subquery(grouped.annotate(s=Sum("total_amount")).values("s"), output_field=money),
            Value(Decimal("0")),
            output_field=money,
        ),
    )


def _winback_group(
    matured: QuerySet[WinbackEnrolment], group: str
) -> tuple[WinbackGroupResult, Sample, dict[str, tuple[int, int]]]:
    rows = matured.filter(group=group)
    outcomes = dict(rows.values_list("outcome").annotate(n=Count("pk")).values_list("outcome", "n"))
    size = sum(outcomes.values())
    bought = list(
        _with_window_orders(rows)
        .filter(Q(window_orders__gt=0))
        .values_list("offer_tier", "window_orders", "window_revenue")  # type: ignore[misc]
    )
    by_tier: dict[str, tuple[int, int]] = {}
    for tier, n in (
        rows.values_list("offer_tier").annotate(n=Count("pk")).values_list("offer_tier", "n")
    ):
        by_tier[tier] = (n, 0)
    for tier, _orders, _revenue in bought:
        n, hits = by_tier[tier]
        by_tier[tier] = (n, hits + 1)
    offers = rows.aggregate(
        coupons_issued=Count("coupon"),
        coupons_redeemed=Count("coupon", filter=Q(coupon__status=Coupon.Status.REDEEMED)),
        discount_given=Sum(
            "coupon__discount_amount", filter=Q(coupon__status=Coupon.Status.REDEEMED)
        ),
        points_granted=Sum("points_entry__points"),
        cost=Sum("cost"),
    )
    revenues = [float(r or 0) for _t, _n, r in bought]
    sample = Sample.of(revenues, size=size)
    rate = uplift.wilson_interval(len(bought), size)
    result = WinbackGroupResult(
        group=group,
        entries=size,
        customers=rows.values("customer_id").distinct().count(),
        outcomes=outcomes,
        reactivated=len(bought),
        orders=sum(n for _t, n, _r in bought),
        revenue=sum((Decimal(r or 0) for _t, _n, r in bought), Decimal("0")).quantize(
            Decimal("0.01")
        ),
        rate=rate.estimate if rate is not None else None,
        rate_interval=rate,
        revenue_per_entry=sample.mean if size else None,
        revenue_interval=uplift.mean_interval(sample),
        coupons_issued=offers["coupons_issued"] or 0,
        coupons_redeemed=offers["coupons_redeemed"] or 0,
        discount_given=Decimal(offers["discount_given"] or 0).quantize(Decimal("0.01")),
        points_granted=offers["points_granted"] or 0,
        cost=Decimal(offers["cost"] or 0).quantize(Decimal("0.01")),
    )
    return result, sample, by_tier


def winback_evaluation(
    *, user: Any, programme_id: int, now: datetime | None = None
) -> WinbackEvaluation:
    """The programme's effect, treatment against holdout, on the entries whose measurement
    window has closed by ``now`` (default: now): the **reactivation rate** (share of entries
    with a paid order, neither cancelled nor returned, within ``window_days`` of entering)
    per group with its Wilson interval, the **uplift** (treatment − holdout) with Newcombe's
    hybrid score interval, orders and revenue per group, revenue per entry with Welch's
    interval for its difference, and the same rate by offer tier.

    Entries still in their window are counted apart (``in_window``) and left out: including
    them would mix half-measured entries into the rates. Intention to treat: every treated
    entry counts, also those skipped (no consent, capped, …), because the holdout holds
    customers who would have been skipped too; ``effect_on_contacted`` rescales the uplift by
    the share messaged (Bloom's adjustment, an approximation). A customer who entered twice
    counts twice, once per entry (each entry is one offer and one window), and is in the same
    group both times (the draw is per customer)."""
    summary = winback_programme_get(user=user, programme_id=programme_id)
    programme = summary.programme
    now = now or timezone.now()
    everything = WinbackEnrolment.objects.filter(programme=programme)
    matured = everything.filter(window_ends_at__lte=now)
    open_entries = everything.filter(window_ends_at__gt=now)
    in_window = open_entries.count()
    in_window_reactivated = _with_window_orders(open_entries).filter(Q(window_orders__gt=0)).count()
    treated, treated_sample, treated_tiers = _winback_group(
        matured, WinbackEnrolment.Group.TREATMENT
    )
    held, held_sample, held_tiers = _winback_group(matured, WinbackEnrolment.Group.HOLDOUT)
    difference = uplift.newcombe_difference(
        treated.reactivated, treated.entries, held.reactivated, held.entries
    )
    revenue_difference = uplift.welch_difference(treated_sample, held_sample)
    messaged = treated.outcomes.get(WinbackEnrolment.Outcome.MESSAGED, 0)
    contact_rate = messaged / treated.entries if treated.entries else None
    on_contacted = (
        difference.scaled(1 / contact_rate) if difference is not None and contact_rate else None
    )
    if on_contacted is not None:  # a difference of shares stays in ±1
        on_contacted = replace(
            on_contacted,
            estimate=max(-1.0, min(1.0, on_contacted.estimate)),
            low=max(-1.0, on_contacted.low),
            high=min(1.0, on_contacted.high),
        )
    tiers = []
    for tier in rules.OfferTier:
        t_n, t_hits = treated_tiers.get(tier, (0, 0))
        h_n, h_hits = held_tiers.get(tier, (0, 0))
        if t_n + h_n == 0:
            continue
        tiers.append(
            WinbackTierResult(
                tier=tier.value,
                treatment=t_n,
                treatment_reactivated=t_hits,
                holdout=h_n,
                holdout_reactivated=h_hits,
                uplift=uplift.newcombe_difference(t_hits, t_n, h_hits, h_n),
            )
        )
    notes = _winback_notes(
        programme, treated, held, difference=difference, in_window=in_window,
        entries=everything.count(),
    )  # fmt: skip
    return WinbackEvaluation(
        programme=programme,
        as_of=now,
        entries=treated.entries + held.entries + in_window,
        matured=treated.entries + held.entries,
        in_window=in_window,
        in_window_reactivated=in_window_reactivated,
        treatment=treated,
        holdout=held,
        uplift=difference,
        revenue_uplift=revenue_difference,
        contact_rate=contact_rate,
        effect_on_contacted=on_contacted,
        tiers=tuple(tiers),
        notes=tuple(notes),
    )


def _winback_notes(
    programme: WinbackProgramme,
    treated: WinbackGroupResult,
    held: WinbackGroupResult,
    *,
    difference: Interval | None,
    in_window: int,
    entries: int,
) -> list[str]:
    notes = []
    if entries == 0:
        notes.append("Nobody has entered the programme yet: there is nothing to evaluate.")
        return notes
    if in_window:
        notes.append(
            f"{in_window} entries are still within their {programme.window_days}-day window "
            "and are not counted yet."
        )
    if treated.entries + held.entries == 0:
        notes.append("No entry's window has closed yet: the figures come when the first does.")
        return notes
    notes.extend(
        uplift.precision_notes(
            treated.entries, held.entries, events=treated.reactivated + held.reactivated
        )
    )
    skipped = treated.entries - treated.outcomes.get(WinbackEnrolment.Outcome.MESSAGED, 0)
    notes.append(
        f"Intention to treat: all {treated.entries} treated entries count, including the "
        f"{skipped} that were not messaged (no consent, no address, the frequency cap, a "
        "coupon limit, a placebo), because the holdout holds customers who would have been "
        "skipped too."
    )
    if difference is not None:
        verdict = (
            "significant at 95 %: the interval leaves out 0"
            if difference.is_significant
            else "not significant at 95 %: the interval includes 0, so no effect is shown"
        )
        notes.append(f"The uplift in reactivation is {verdict}.")
    if WinbackRun.objects.filter(programme=programme, is_placebo=True).exists():
        notes.append(
            "Some runs were placebos (a replay on past data): nothing was sent to their "
            "entries, so their treatment and holdout differ by chance alone."
        )
    return notes
