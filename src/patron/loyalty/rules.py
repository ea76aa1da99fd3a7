"""Pure rules of the loyalty programme: how many points an order or a review earns, how much a
refund takes back, how lots are consumed oldest first, when points expire, and which tier a
customer belongs in. Nothing here touches the database; ``patron.loyalty.services`` and
``patron.loyalty.tiers`` apply these rules inside transactions, so the API, the pages, the CLI
and the jobs share them.

Points are integers; money is ``Decimal``.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any

# ---------------------------------------------------------------------- the points policy

#: Order statuses that mean "paid, and not cancelled": these orders earn points. A returned
#: order earns too; the refund of its return takes the points back (``reversal_due``).
PAID_STATUSES = frozenset({"paid", "shipped", "delivered", "completed", "returned"})
#: Return statuses whose ``refund_amount`` has actually been paid back to the customer.
REFUNDED_STATUSES = frozenset({"refunded", "completed"})

MAX_POINTS = 100_000_000  # one request may move at most this many points


@dataclass(frozen=True)
class LoyaltyRules:
    """The points policy as staff set it (a ``LoyaltyPolicy`` version)."""

    points_per_cny: Decimal = Decimal("1")
    review_points: int = 10
    review_min_length: int = 15
    expiry_months: int = 24
    tier_window_months: int = 12

    #: field -> (smallest, largest) allowed
    LIMITS = {
        "points_per_cny": (Decimal("0"), Decimal("100")),
        "review_points": (0, 10_000),
        "review_min_length": (0, 2_000),
        "expiry_months": (1, 120),
        "tier_window_months": (1, 36),
    }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LoyaltyRules:
        """Checked values; a ``ValueError`` names the field and what it accepts."""
        unknown = sorted(set(data) - set(cls.LIMITS))
        if unknown:
            raise ValueError(
                f"unknown field(s) {', '.join(unknown)}; the policy has {', '.join(cls.LIMITS)}"
            )
        values: dict[str, Any] = {}
        for name, (low, high) in cls.LIMITS.items():
            if name not in data:
                values[name] = getattr(cls(), name)
                continue
            raw = data[name]
            if isinstance(low, Decimal):
                try:
                    value: Any = Decimal(str(raw))
                except (InvalidOperation, ValueError):
                    raise ValueError(f"{name}: expected a number, got {raw!r}") from None
                if not value.is_finite() or value != value.quantize(Decimal("0.01")):
                    raise ValueError(f"{name}: expected a number with at most 2 decimals")
                value = value.quantize(Decimal("0.01"))
            else:
                if isinstance(raw, bool) or not isinstance(raw, int):
                    raise ValueError(f"{name}: expected a whole number, got {raw!r}")
                value = raw
            if not low <= value <= high:
                raise ValueError(f"{name}: must be between {low} and {high}, got {value}")
            values[name] = value
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.LIMITS}


def order_points(amount: Decimal, rules: LoyaltyRules) -> int:
    """Points an order of ``amount`` CNY earns: ``amount × points_per_cny``, rounded down."""
    if amount <= 0:
        return 0
    return int((amount * rules.points_per_cny).to_integral_value(rounding=ROUND_FLOOR))


def review_points(text: str, rules: LoyaltyRules) -> int:
    """Points a review earns: the policy's flat amount when its text (without surrounding
    spaces) has at least ``review_min_length`` characters (a Chinese character counts one)."""
    if len((text or "").strip()) < rules.review_min_length:
        return 0
    return rules.review_points


def add_months(day: date, months: int) -> date:
    """``day`` moved by ``months`` calendar months; the 31st becomes the month's last day."""
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def lot_expires_on(earned_on: date, rules: LoyaltyRules) -> date:
    """Points earned on ``earned_on`` can be spent until the day before this date."""
    return add_months(earned_on, rules.expiry_months)


def reversal_due(
    *,
    earned: int,
    order_total: Decimal,
    refunded_before: Decimal,
    refund: Decimal,
    reversed_before: int,
) -> int:
    """Points a refund takes back, proportional to the refund.

    Computed on the cumulative refund, so that partial refunds that add up to the order total
    take back exactly what the order earned (never one point more or less), whatever the
    rounding: the target after this refund is ``floor(earned × refunded / total)`` with the
    refunded sum capped at the total; what is due now is the target less what earlier refunds
    of the same order were due (``reversed_before``, shortfalls included).
    """
    if earned <= 0 or refund <= 0:
        return 0
    if order_total <= 0:
        return max(0, earned - reversed_before)
    refunded = min(order_total, refunded_before + refund)
    target = int((Decimal(earned) * refunded / order_total).to_integral_value(ROUND_FLOOR))
    return max(0, min(earned, target) - reversed_before)


def debit_split(due: int, balance: int) -> tuple[int, int]:
    """(points taken, shortfall): a reversal takes the balance down to zero and no further."""
    taken = max(0, min(due, balance))
    return taken, due - taken


# ---------------------------------------------------------------------- lots (FIFO)


@dataclass(frozen=True)
class Lot:
    """Points earned together (one order, review or positive adjustment) and still unspent."""

    id: int
    remaining: int
    expires_on: date


def fifo_order(lots: Iterable[Lot]) -> list[Lot]:
    """The order lots are consumed in: oldest first, i.e. soonest to expire, then first
    posted. With one expiry period for everyone this is exactly the order they were earned in;
    after a policy change it still spends first what would be lost first."""
    return sorted(
        (lot for lot in lots if lot.remaining > 0), key=lambda lot: (lot.expires_on, lot.id)
    )


def consume(lots: Sequence[Lot], points: int, *, first: int | None = None) -> list[tuple[int, int]]:
    """Which lots give ``points``, as ``[(lot id, points taken)]``: lot ``first`` before the
    others (a refund takes back from the order's own lot first), then oldest first.

    Raises ``ValueError`` when the lots hold fewer than ``points`` (callers cap a debit at the
    balance first, and the balance is always the sum of the lots).
    """
    if points < 0:
        raise ValueError("points to consume must be zero or more")
    ordered = fifo_order(lots)
    if first is not None:
        ordered.sort(key=lambda lot: lot.id != first)  # stable: the rest stay oldest first
    taken: list[tuple[int, int]] = []
    left = points
    for lot in ordered:
        if left == 0:
            break
        amount = min(lot.remaining, left)
        taken.append((lot.id, amount))
        left -= amount
    if left:
        raise ValueError(f"the lots hold {points - left} points, {points} were asked")
    return taken


def expired_lots(lots: Iterable[Lot], as_of: date) -> list[Lot]:
    """Lots whose points are lost on ``as_of``: expiry date reached, points left."""
    return [lot for lot in fifo_order(lots) if lot.expires_on <= as_of]


# ---------------------------------------------------------------------- tiers

#: Grades from lowest to highest (``patron.scoring.models.Grade``).
GRADE_RANK = {"ordinary": 0, "potential": 1, "core": 2}


@dataclass(frozen=True)
class TierRule:
    """A tier's upgrade criteria and downgrade grace, as staff set them.

    A criterion left empty (None) is not part of the rule. ``needs`` says whether a customer
    must meet ``all`` the criteria that are set or ``any`` one of them. The lowest tier is
    everyone's floor, whatever its criteria say.
    """

    code: str
    rank: int
    min_spend: Decimal | None = None
    min_grade: str | None = None
    min_points: int | None = None
    needs: str = "any"
    grace_days: int = 0

    @property
    def has_criteria(self) -> bool:
        return any(c is not None for c in (self.min_spend, self.min_grade, self.min_points))


@dataclass(frozen=True)
class TierFacts:
    """What a tier is decided on: net spend over the window (paid orders less refunds, CNY),
    the latest grade ('' when not graded) and the points balance."""

    spend: Decimal = Decimal("0")
    grade: str = ""
    points: int = 0


@dataclass(frozen=True)
class Gap:
    """One criterion of a tier, what it asks, what the customer has, and what is missing."""

    criterion: str  # spend, grade or points
    needed: str
    have: str
    missing: str
    is_met: bool


def tier_checks(rule: TierRule, facts: TierFacts) -> list[Gap]:
    """Each criterion ``rule`` sets, checked against ``facts``."""
    checks: list[Gap] = []
    if rule.min_spend is not None:
        missing = max(Decimal("0"), rule.min_spend - facts.spend)
        checks.append(
            Gap("spend", str(rule.min_spend), str(facts.spend), str(missing), missing == 0)
        )
    if rule.min_grade is not None:
        met = GRADE_RANK.get(facts.grade, -1) >= GRADE_RANK[rule.min_grade]
        checks.append(Gap("grade", rule.min_grade, facts.grade, "" if met else rule.min_grade, met))
    if rule.min_points is not None:
        lacking = max(0, rule.min_points - facts.points)
        checks.append(
            Gap("points", str(rule.min_points), str(facts.points), str(lacking), lacking == 0)
        )
    return checks


def tier_qualifies(rule: TierRule, facts: TierFacts) -> bool:
    """Whether ``facts`` meet ``rule``: all or any of its criteria. A tier with none is open
    to everyone."""
    checks = tier_checks(rule, facts)
    if not checks:
        return True
    met = [check.is_met for check in checks]
    return all(met) if rule.needs == "all" else any(met)


def tier_qualified(tiers: Sequence[TierRule], facts: TierFacts) -> TierRule:
    """The highest-ranked tier ``facts`` qualify for; the lowest tier is everyone's floor."""
    if not tiers:
        raise ValueError("no tiers are defined")
    ordered = sorted(tiers, key=lambda t: t.rank)
    best = ordered[0]
    for rule in ordered[1:]:
        if tier_qualifies(rule, facts):
            best = rule
    return best


@dataclass(frozen=True)
class TierDecision:
    """What an evaluation does for one customer.

    ``move`` is ``join`` (first placement), ``up``, ``down``, ``grace`` (no longer qualifies
    but keeps the tier until ``below_since + grace_days``) or ``keep``.
    """

    move: str
    tier: str
    below_since: date | None = None


def tier_decide(
    *,
    current: str | None,
    below_since: date | None,
    qualified: TierRule,
    tiers: Mapping[str, TierRule],
    as_of: date,
) -> TierDecision:
    """Move up at once; move down only after the current tier's grace period.

    ``below_since`` is the first evaluation day on which the customer no longer qualified for
    the current tier (None while they do). A customer who qualifies again during the grace
    period keeps the tier and the clock is reset. A tier that no longer exists is left at once.
    """
    if current is None:
        return TierDecision("join", qualified.code)
    held = tiers.get(current)
    if held is None:
        return TierDecision("down", qualified.code)
    if qualified.rank > held.rank:
        return TierDecision("up", qualified.code)
    if qualified.rank == held.rank:
        return TierDecision("keep", current)
    since = below_since or as_of
    if (as_of - since).days >= held.grace_days:
        return TierDecision("down", qualified.code)
    return TierDecision("grace", current, below_since=since)


@dataclass(frozen=True)
class TierInput:
    """A tier as an edit would leave it, for validation."""

    code: str
    rank: int
    min_spend: Decimal | None
    min_grade: str | None
    min_points: int | None
    needs: str
    grace_days: int
    names: tuple[str, str] = field(default=("", ""))


def tier_validate(tier: TierInput) -> None:
    """Raise ``ValueError`` naming the field when a tier's settings make no sense."""
    if not tier.names[0].strip() or not tier.names[1].strip():
        raise ValueError("name, name_en: a tier needs a name in Chinese and in English")
    if tier.rank < 0:
        raise ValueError("rank: must be zero or more")
    if tier.min_spend is not None and (not tier.min_spend.is_finite() or tier.min_spend < 0):
        raise ValueError("min_spend: must be an amount of zero or more")
    if tier.min_grade is not None and tier.min_grade not in GRADE_RANK:
        raise ValueError(f"min_grade: one of {', '.join(GRADE_RANK)} (or empty)")
    if tier.min_points is not None and tier.min_points < 0:
        raise ValueError("min_points: must be zero or more")
    if tier.needs not in ("all", "any"):
        raise ValueError("needs: 'all' or 'any'")
    if not 0 <= tier.grace_days <= 3650:
        raise ValueError("grace_days: between 0 and 3650")


#: The tiers a new merchant starts with (``patron.loyalty.tiers.tiers_seed``); staff edit them.
#: Chinese names read well in "升级为{name}会员" (the outbox's tier-up message).
DEFAULT_TIERS: tuple[dict[str, Any], ...] = (
    {"code": "member", "name": "普通会员", "name_en": "Member", "rank": 0, "grace_days": 0},
    {
        "code": "silver",
        "name": "银卡",
        "name_en": "Silver",
        "rank": 1,
        "min_spend": Decimal("1000"),
        "min_grade": "potential",
        "needs": "any",
        "grace_days": 30,
    },
    {
        "code": "gold",
        "name": "金卡",
        "name_en": "Gold",
        "rank": 2,
        "min_spend": Decimal("3000"),
        "min_grade": "core",
        "min_points": 5000,
        "needs": "any",
        "grace_days": 60,
    },
    {
        "code": "diamond",
        "name": "钻石",
        "name_en": "Diamond",
        "rank": 3,
        "min_spend": Decimal("10000"),
        "min_grade": "core",
        "needs": "all",
        "grace_days": 90,
    },
)
