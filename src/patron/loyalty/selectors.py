"""Reading loyalty: a customer's points and tier at a glance (``loyalty_summary``, shown on the
customer page), their ledger page by page, the tiers, the policy in force, and the facts tiers
are decided on (``tier_facts``, set-based: a handful of grouped queries for all customers)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import Count, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from patron.account.roles import VIEW_LOYALTY
from patron.account.services import require_permission
from patron.commerce.models import Order, ReturnRequest
from patron.customer.models import Customer
from patron.customer.selectors import Page, page_bounds
from patron.errors import NotFound, ValidationFailed
from patron.loyalty import rules
from patron.loyalty.models import (
    EntryKind,
    LoyaltyPolicy,
    PointsAccount,
    PointsEntry,
    Tier,
    TierMembership,
)
from patron.scoring.models import CustomerScore

RECENT_ENTRIES = 20
EXPIRING_WITHIN_DAYS = 30


# ---------------------------------------------------------------------- views


@dataclass(frozen=True)
class EntryView:
    id: int
    kind: str
    kind_label: str
    points: int
    balance_after: int
    shortfall: int
    amount: Decimal | None
    source_type: str
    source_id: int | None
    reason: str
    occurred_at: datetime
    posted_at: datetime
    expires_on: date | None
    remaining: int | None
    created_by: str


@dataclass(frozen=True)
class TierView:
    code: str
    name: str
    name_en: str
    rank: int
    min_spend: Decimal | None
    min_grade: str | None
    min_points: int | None
    needs: str
    grace_days: int
    version: int
    updated_by: str
    updated_at: datetime


@dataclass(frozen=True)
class PolicyView:
    version: int
    points_per_cny: Decimal
    review_points: int
    review_min_length: int
    expiry_months: int
    tier_window_months: int
    note: str
    created_by: str
    created_at: datetime


@dataclass(frozen=True)
class LoyaltySummary:
    """A customer's points and tier at a glance.

    ``next_tier_checks`` lists each criterion of the next tier with what is missing; with
    ``next_tier_needs == "any"`` meeting one of them is enough. ``tier_keeps_until`` is set
    while the customer no longer qualifies for their tier and keeps it for its grace period.
    """

    customer_id: int
    balance: int
    tier: TierView | None
    tier_since: date | None
    tier_keeps_until: date | None
    next_tier: TierView | None
    next_tier_needs: str
    next_tier_checks: tuple[rules.Gap, ...]
    spend: Decimal
    spend_window_months: int
    grade: str
    expiring_points: int
    expiring_by: date
    recent: tuple[EntryView, ...]


def entry_view(entry: PointsEntry) -> EntryView:
    return EntryView(
        id=entry.pk,
        kind=entry.kind,
        kind_label=EntryKind(entry.kind).label,
        points=entry.points,
        balance_after=entry.balance_after,
        shortfall=entry.shortfall,
        amount=entry.amount,
        source_type=entry.source_type,
        source_id=entry.source_id,
        reason=entry.reason,
        occurred_at=entry.occurred_at,
        posted_at=entry.posted_at,
        expires_on=entry.expires_on,
        remaining=entry.remaining,
        created_by=entry.created_by.get_username() if entry.created_by else "",
    )


def tier_view(tier: Tier) -> TierView:
    return TierView(
        code=tier.code,
        name=tier.name,
        name_en=tier.name_en,
        rank=tier.rank,
        min_spend=tier.min_spend,
        min_grade=tier.min_grade or None,
        min_points=tier.min_points,
        needs=tier.needs,
        grace_days=tier.grace_days,
        version=tier.version,
        updated_by=tier.updated_by,
        updated_at=tier.updated_at,
    )


def tier_rule(tier: Tier) -> rules.TierRule:
    return rules.TierRule(
        code=tier.code,
        rank=tier.rank,
        min_spend=tier.min_spend,
        min_grade=tier.min_grade or None,
        min_points=tier.min_points,
        needs=tier.needs,
        grace_days=tier.grace_days,
    )


def _policy() -> LoyaltyPolicy:
    from patron.loyalty.services import loyalty_policy_active

    return loyalty_policy_active()


def _require_customer(customer_id: int) -> None:
    if not Customer.objects.filter(pk=customer_id).exists():
        raise NotFound(f"customer {customer_id} not found", details={"customer_id": customer_id})


# ---------------------------------------------------------------------- tier facts


def _midnight(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time()))


def tier_facts(
    *, as_of: date, window_months: int, customer_id: int | None = None
) -> dict[int, rules.TierFacts]:
    """Per customer (only those with any spend, grade or points): net spend over the
    ``window_months`` before ``as_of`` (paid orders in the merchant's currency, less the
    refunds paid on them before ``as_of``), the latest grade, and the points balance now."""
    start = _midnight(rules.add_months(as_of, -window_months))
    end = _midnight(as_of)
    orders = Order.objects.filter(
        paid_at__gte=start,
        paid_at__lt=end,
        status__in=rules.PAID_STATUSES,
        currency=settings.DEFAULT_CURRENCY,
    )
    scores = CustomerScore.objects.exclude(grade="")
    accounts = PointsAccount.objects.filter(balance__gt=0)
    if customer_id is not None:
        orders = orders.filter(customer_id=customer_id)
        scores = scores.filter(customer_id=customer_id)
        accounts = accounts.filter(customer_id=customer_id)
    spend: dict[int, Decimal] = {
        cid: total
        for cid, total in orders.values("customer_id")
        .annotate(total=Sum("total_amount"))
        .values_list("customer_id", "total")
    }
    refunds = (
        ReturnRequest.objects.annotate(done_at=Coalesce("resolved_at", "requested_at"))
        .filter(
            order__in=orders.values("pk"),
            status__in=rules.REFUNDED_STATUSES,
            refund_amount__gt=0,
            done_at__lt=end,
        )
        .values("order__customer_id")
        .annotate(total=Sum("refund_amount"))
        .values_list("order__customer_id", "total")
    )
    for cid, refunded in refunds:
        spend[cid] = spend.get(cid, Decimal("0")) - refunded
    grades = dict(scores.values_list("customer_id", "grade"))
    balances = dict(accounts.values_list("customer_id", "balance"))
    return {
        cid: rules.TierFacts(
            spend=max(Decimal("0"), spend.get(cid, Decimal("0"))).quantize(Decimal("0.01")),
            grade=grades.get(cid, ""),
            points=balances.get(cid, 0),
        )
        for cid in set(spend) | set(grades) | set(balances)
    }


# ---------------------------------------------------------------------- reads


def loyalty_summary(*, user: Any, customer_id: int, as_of: date | None = None) -> LoyaltySummary:
    """The customer's balance, tier, the next tier and what is missing for it, the points that
    expire within 30 days (counting lots already due that the expiry job has not taken yet),
    and the last 20 ledger entries."""
    require_permission(user, VIEW_LOYALTY)
    _require_customer(customer_id)
    today = as_of or timezone.localdate()
    policy = _policy()
    account = PointsAccount.objects.filter(customer_id=customer_id).first()
    balance = account.balance if account is not None else 0
    tiers = list(Tier.objects.order_by("rank"))
    membership = (
        TierMembership.objects.filter(customer_id=customer_id, valid_to__isnull=True)
        .select_related("tier")
        .first()
    )
    facts = tier_facts(
        as_of=today, window_months=policy.tier_window_months, customer_id=customer_id
    ).get(customer_id, rules.TierFacts())
    current = membership.tier if membership is not None else None
    above = [t for t in tiers if current is None or t.rank > current.rank]
    if current is None and above:
        above = above[1:]  # the entry tier is everyone's: the next step is the one above it
    following = above[0] if above else None
    keeps_until = None
    if membership is not None and membership.below_since is not None and current is not None:
        keeps_until = membership.below_since + timedelta(days=current.grace_days)
    horizon = today + timedelta(days=EXPIRING_WITHIN_DAYS)
    expiring = 0
    recent: tuple[EntryView, ...] = ()
    if account is not None:
        expiring = (
            PointsEntry.objects.filter(account=account, remaining__gt=0, expires_on__lte=horizon)
            .aggregate(total=Sum("remaining"))
            .get("total")
            or 0
        )
        recent = tuple(
            entry_view(e)
            for e in PointsEntry.objects.filter(account=account)
            .select_related("created_by")
            .order_by("-id")[:RECENT_ENTRIES]
        )
    return LoyaltySummary(
        customer_id=customer_id,
        balance=balance,
        tier=tier_view(current) if current is not None else None,
        tier_since=membership.valid_from if membership is not None else None,
        tier_keeps_until=keeps_until,
        next_tier=tier_view(following) if following is not None else None,
        next_tier_needs=following.needs if following is not None else "",
        next_tier_checks=tuple(rules.tier_checks(tier_rule(following), facts))
        if following is not None
        else (),
        spend=facts.spend,
        spend_window_months=policy.tier_window_months,
        grade=facts.grade,
        expiring_points=int(expiring),
        expiring_by=horizon,
        recent=recent,
    )


def ledger_page(
    *,
    user: Any,
    customer_id: int,
    page: int = 1,
    page_size: int = 20,
    kind: str | None = None,
) -> Page[EntryView]:
    """The customer's ledger, newest first, optionally one kind of entry."""
    require_permission(user, VIEW_LOYALTY)
    page, page_size = page_bounds(page, page_size)
    if kind is not None and kind not in EntryKind.values:
        raise ValidationFailed(f"kind: one of {', '.join(EntryKind.values)}, got {kind!r}")
    _require_customer(customer_id)
    entries = PointsEntry.objects.filter(account__customer_id=customer_id)
    if kind is not None:
        entries = entries.filter(kind=kind)
    count = entries.count()
    start = (page - 1) * page_size
    rows = entries.select_related("created_by").order_by("-id")[start : start + page_size]
    return Page(
        items=tuple(entry_view(e) for e in rows), count=count, page=page, page_size=page_size
    )


def tiers_list(*, user: Any) -> list[TierView]:
    require_permission(user, VIEW_LOYALTY)
    return [tier_view(t) for t in Tier.objects.order_by("rank")]


def tier_counts() -> dict[str, int]:
    """How many customers hold each tier now (tier code -> count)."""
    rows = (
        TierMembership.objects.filter(valid_to__isnull=True)
        .values("tier__code")
        .annotate(n=Count("id"))
        .values_list("tier__code", "n")
    )
    return dict(rows)


def policy_view(policy: LoyaltyPolicy) -> PolicyView:
    return PolicyView(
        version=policy.version,
        points_per_cny=Decimal(policy.points_per_cny),
        review_points=policy.review_points,
        review_min_length=policy.review_min_length,
        expiry_months=policy.expiry_months,
        tier_window_months=policy.tier_window_months,
        note=policy.note,
        created_by=policy.created_by,
        created_at=policy.created_at,
    )


def loyalty_policy_in_force(*, user: Any) -> PolicyView:
    require_permission(user, VIEW_LOYALTY)
    return policy_view(_policy())
