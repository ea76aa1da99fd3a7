"""Membership tiers: the default tiers, staff edits (versioned, audited) and the evaluation that
moves customers between tiers and tells them when they move up.

``tiers_evaluate`` is set-based: it reads every customer's facts in a handful of grouped
queries (``patron.loyalty.selectors.tier_facts``), decides each move with the pure rules
(``patron.loyalty.rules.tier_decide``) and writes the moves in bulk. A customer's periods
(``TierMembership``) have no gaps and no overlaps: a move closes the open period on the
evaluation day and opens the next one on the same day.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import IntegrityError, transaction

from patron.account.roles import CHANGE_LOYALTY_POLICY
from patron.account.services import require_permission
from patron.audit.services import AuditEntry, audit_record
from patron.customer.models import Customer
from patron.errors import Conflict, NotFound, PatronError, ValidationFailed
from patron.loyalty import rules, selectors
from patron.loyalty.models import Tier, TierMembership
from patron.loyalty.services import as_of_day, loyalty_policy_active, serialise_batches

logger = logging.getLogger(__name__)

#: Fields of a tier staff may change (the code is its name in keys and messages: fixed).
EDITABLE = (
    "name",
    "name_en",
    "rank",
    "min_spend",
    "min_grade",
    "min_points",
    "needs",
    "grace_days",
)


def tiers_seed() -> int:
    """Create the default tiers (``rules.DEFAULT_TIERS``) when there are none; returns how many.
    A merchant's own tiers are never touched."""
    if Tier.objects.exists():
        return 0
    fresh = [Tier(updated_by="patron", **spec) for spec in rules.DEFAULT_TIERS]
    Tier.objects.bulk_create(fresh, ignore_conflicts=True)
    return len(fresh)


# ---------------------------------------------------------------------- edits


def _coerce(name: str, value: Any) -> Any:
    """A value as the model stores it, or ``ValidationFailed`` naming the field."""
    if name in ("name", "name_en"):
        if not isinstance(value, str) or not value.strip() or len(value.strip()) > 60:
            raise ValidationFailed(f"tier.{name}: 1 to 60 characters")
        return value.strip()
    if name == "min_spend":
        if value is None:
            return None
        try:
            amount = Decimal(str(value))
        except (InvalidOperation, ValueError):
            raise ValidationFailed(f"tier.min_spend: expected an amount, got {value!r}") from None
        if not amount.is_finite() or amount < 0 or amount >= Decimal("1e12"):
            raise ValidationFailed("tier.min_spend: an amount of zero or more")
        return amount.quantize(Decimal("0.01"))
    if name == "min_grade":
        if value in (None, ""):
            return ""
        if value not in rules.GRADE_RANK:
            raise ValidationFailed(f"tier.min_grade: one of {', '.join(rules.GRADE_RANK)} or null")
        return value
    if name == "needs":
        if value not in ("all", "any"):
            raise ValidationFailed("tier.needs: 'all' or 'any'")
        return value
    # rank, min_points, grace_days: whole numbers (min_points may be null)
    if value is None and name == "min_points":
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationFailed(f"tier.{name}: a whole number of zero or more, got {value!r}")
    limit = {"rank": 1000, "min_points": rules.MAX_POINTS, "grace_days": 3650}[name]
    if value > limit:
        raise ValidationFailed(f"tier.{name}: at most {limit}")
    return value


def _plain(value: Any) -> Any:
    return str(value) if isinstance(value, Decimal) else value


def tier_update(*, user: Any, code: str, data: Mapping[str, Any]) -> Tier:
    """Change a tier's names, rank, criteria or grace period; bumps its version and audits the
    old and new values. Moves follow at the next evaluation, not at once."""
    require_permission(user, CHANGE_LOYALTY_POLICY)
    if not isinstance(data, Mapping):
        raise ValidationFailed("tier: expected an object")
    unknown = sorted(set(data) - set(EDITABLE))
    if unknown:
        raise ValidationFailed(
            f"tier: cannot change {', '.join(unknown)}; editable: {', '.join(EDITABLE)}"
        )
    if not isinstance(code, str) or "\x00" in code or len(code) > 30:
        raise NotFound(f"tier {code!r} not found")
    values = {name: _coerce(name, value) for name, value in data.items()}
    try:
        with transaction.atomic():
            tiers_seed()
            tier = Tier.objects.select_for_update().filter(code=code).first()
            if tier is None:
                raise NotFound(f"tier {code!r} not found")
            changed = {k: v for k, v in values.items() if getattr(tier, k) != v}
            if not changed:
                return tier
            old = {k: _plain(getattr(tier, k)) for k in changed}
            for name, value in changed.items():
                setattr(tier, name, value)
            try:
                rules.tier_validate(
                    rules.TierInput(
                        code=tier.code,
                        rank=tier.rank,
                        min_spend=tier.min_spend,
                        min_grade=tier.min_grade or None,
                        min_points=tier.min_points,
                        needs=tier.needs,
                        grace_days=tier.grace_days,
                        names=(tier.name, tier.name_en),
                    )
                )
            except ValueError as error:
                raise ValidationFailed(f"tier {code}: {error}") from error
            if "rank" in changed and Tier.objects.filter(rank=tier.rank).exclude(pk=tier.pk):
                raise Conflict(f"tier.rank: another tier already has rank {tier.rank}")
            tier.version += 1
            tier.updated_by = user.get_username()
            tier.save()
            audit_record(
                AuditEntry(
                    action="update",
                    entity_type="loyalty.tier",
                    entity_id=tier.code,
                    summary=f"tier {tier.code} v{tier.version}: changed {', '.join(sorted(changed))}",
                    changes={
                        "old": old,
                        "new": {k: _plain(v) for k, v in changed.items()},
                    },
                ),
                actor=user,
            )
    except IntegrityError as error:
        raise Conflict(f"tier {code}: {error}") from error
    return tier


# ---------------------------------------------------------------------- evaluation


@dataclass(frozen=True)
class TierResult:
    """What one evaluation did. ``in_grace``: customers who no longer qualify for their tier
    and keep it for its grace period; ``skipped``: customers who already moved on this day
    (at most one move per customer per day); ``told``: tier-up messages queued."""

    as_of: date
    customers: int = 0
    joined: int = 0
    up: int = 0
    down: int = 0
    in_grace: int = 0
    unchanged: int = 0
    skipped: int = 0
    told: int = 0
    members: dict[str, int] = field(default_factory=dict)

    @property
    def moves(self) -> int:
        return self.joined + self.up + self.down

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["as_of"] = self.as_of.isoformat()
        return data


def _facts_json(facts: rules.TierFacts) -> dict[str, Any]:
    return {"spend": str(facts.spend), "grade": facts.grade, "points": facts.points}


def _why(rule: rules.TierRule, facts: rules.TierFacts) -> str:
    met = [c for c in rules.tier_checks(rule, facts) if c.is_met]
    if not met:
        return "entry tier"
    return "meets " + ", ".join(f"{c.criterion} {c.needed} (has {c.have})" for c in met)


def tiers_evaluate(*, as_of: date | datetime | None = None) -> TierResult:
    """Put every customer (but the erased) in the tier their facts as of ``as_of`` (default
    today) qualify for: up at once, down only after the current tier's grace period.

    Idempotent: the same facts give the same tiers, and a customer moves at most once a day
    (one already moved on ``as_of`` is left alone). History is never rewritten: an evaluation
    as of a day before a customer's current period began is refused with ``Conflict``. Each
    move up queues a message to the customer through the outbox (``_tell_customer``), in the
    same transaction.
    """
    day = as_of_day(as_of)
    with transaction.atomic():
        serialise_batches()
        tiers_seed()
        tiers = {t.code: t for t in Tier.objects.order_by("rank")}
        by_id = {t.pk: t for t in tiers.values()}
        tier_rules = {code: selectors.tier_rule(t) for code, t in tiers.items()}
        ordered_rules = sorted(tier_rules.values(), key=lambda r: r.rank)
        current = {m.customer_id: m for m in TierMembership.objects.filter(valid_to__isnull=True)}
        later = [m.valid_from for m in current.values() if m.valid_from > day]
        if later:
            raise Conflict(
                f"tier history already runs from {max(later)}: evaluate as of that day or "
                f"later, not {day}"
            )
        policy = loyalty_policy_active().rules()
        facts = selectors.tier_facts(as_of=day, window_months=policy.tier_window_months)

        counts: Counter[str] = Counter()
        closing: list[TierMembership] = []
        grace_changed: list[TierMembership] = []
        opening: list[TierMembership] = []
        moved_up: list[tuple[int, Tier]] = []
        customers = Customer.objects.exclude(status=Customer.Status.ERASED).order_by("pk")
        for customer_id in customers.values_list("pk", flat=True).iterator(chunk_size=5000):
            counts["customers"] += 1
            held = current.get(customer_id)
            if held is not None and held.valid_from == day:
                counts["skipped"] += 1
                continue
            known = facts.get(customer_id, rules.TierFacts())
            qualified = rules.tier_qualified(ordered_rules, known)
            held_code = by_id[held.tier_id].code if held is not None else None
            decision = rules.tier_decide(
                current=held_code,
                below_since=held.below_since if held is not None else None,
                qualified=qualified,
                tiers=tier_rules,
                as_of=day,
            )
            if decision.move in ("keep", "grace"):
                assert held is not None
                counts["unchanged" if decision.move == "keep" else "in_grace"] += 1
                if held.below_since != decision.below_since:
                    held.below_since = decision.below_since
                    grace_changed.append(held)
                continue
            target = tiers[decision.tier]
            if decision.move == "join":
                reason = f"placed in {target.name_en}: {_why(qualified, known)}"
                counts["joined"] += 1
            elif decision.move == "up":
                reason = f"up from {held_code} to {target.code}: {_why(qualified, known)}"
                counts["up"] += 1
                moved_up.append((customer_id, target))
            else:
                assert held is not None
                reason = (
                    f"down from {held_code} to {target.code}: no longer qualified since "
                    f"{held.below_since or day}"
                )
                counts["down"] += 1
            if held is not None:
                held.valid_to = day
                closing.append(held)
            opening.append(
                TierMembership(
                    customer_id=customer_id,
                    tier=target,
                    valid_from=day,
                    move=decision.move,
                    reason=reason[:300],
                    facts=_facts_json(known),
                )
            )
        TierMembership.objects.bulk_update(closing, ["valid_to"], batch_size=500)
        TierMembership.objects.bulk_update(grace_changed, ["below_since"], batch_size=500)
        TierMembership.objects.bulk_create(opening, batch_size=500)
        for customer_id, target in moved_up:
            counts["told"] += _tell_safely(customer_id=customer_id, tier=target, as_of=day)
        result = TierResult(
            as_of=day,
            customers=counts["customers"],
            joined=counts["joined"],
            up=counts["up"],
            down=counts["down"],
            in_grace=counts["in_grace"],
            unchanged=counts["unchanged"],
            skipped=counts["skipped"],
            told=counts["told"],
            members=selectors.tier_counts(),
        )
        if result.moves:
            audit_record(
                AuditEntry(
                    action="update",
                    entity_type="loyalty.tiers",
                    summary=f"tiers evaluated as of {day}: {result.joined} joined, "
                    f"{result.up} up, {result.down} down",
                    changes=result.as_dict(),
                ),
                actor_label="loyalty tiers",
            )
    return result


def _tell_safely(*, customer_id: int, tier: Tier, as_of: date) -> int:
    """Queue the tier-up message in a savepoint: a customer the outbox refuses (no contact,
    no consent) does not undo everyone else's evaluation."""
    try:
        with transaction.atomic():
            return 1 if _tell_customer(customer_id=customer_id, tier=tier, as_of=as_of) else 0
    except PatronError as error:
        logger.warning("tier-up message for customer %s not queued: %s", customer_id, error)
        return 0


def _tell_customer(*, customer_id: int, tier: Tier, as_of: date) -> bool:
    """Queue "you moved up to <tier>" through the outbox (which checks consent and picks the
    channel), naming the tier in the customer's language; the key makes a re-run harmless.

    Guarded: were ``patron.outbox`` missing, the move is logged and nobody is told (False).
    """
    try:
        from patron.outbox.services import customer_language, message_queue
    except ImportError:
        logger.warning(
            "patron.outbox.services is missing: customer %s not told about tier %s",
            customer_id,
            tier.code,
        )
        return False
    customer = Customer.objects.get(pk=customer_id)
    name = tier.name_en if customer_language(customer).startswith("en") else tier.name
    message_queue(
        customer_id=customer_id,
        template="loyalty.tier_up",
        purpose="service",
        context={"tier": name},
        key=f"loyalty.tier_up:{customer_id}:{tier.code}:{as_of.isoformat()}",
        source=f"loyalty.tier:{tier.pk}",
    )
    return True


def tier_history(customer_id: int) -> list[TierMembership]:
    """A customer's periods, oldest first (for tests and the admin)."""
    return list(
        TierMembership.objects.filter(customer_id=customer_id)
        .select_related("tier")
        .order_by("valid_from", "id")
    )
