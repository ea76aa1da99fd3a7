"""Writing the points ledger and the loyalty policy.

Every function here is one transaction. An account's balance changes only with its row locked
(``SELECT … FOR UPDATE`` on PostgreSQL; SQLite's write transactions are serial), in the same
transaction as the entries that explain the change, so two redemptions at once can never spend
the same points. The batch jobs (accrual, expiry, tier evaluation) also take one advisory lock
between them, so two runs never interleave.

Invariants (tested as properties in ``tests/test_properties.py``):

* the balance is never negative (the database refuses it, and so does every debit);
* the entries of an account sum to its balance, and the last entry's ``balance_after`` is it;
* the ``remaining`` counts of its lots also sum to the balance, each between 0 and the lot's
  points: every debit names the lots it took from (``consumed``);
* the same order, refund, review, lot expiry or redemption request never posts twice
  (``idempotency_key`` is unique), so running the accrual twice changes nothing.

Tiers are written by ``patron.loyalty.tiers``.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, models, transaction
from django.db.models import Exists, Max, OuterRef
from django.db.models.functions import Coalesce, Length, Trim
from django.utils import timezone

from patron.account.roles import CHANGE_LOYALTY_POLICY, CHANGE_POINTS
from patron.account.services import require_permission
from patron.audit.services import AuditEntry, audit_record
from patron.commerce.models import Order, ReturnRequest, Review
from patron.customer.models import Customer
from patron.errors import Conflict, NotFound, ValidationFailed
from patron.loyalty import rules
from patron.loyalty.models import EntryKind, LoyaltyPolicy, PointsAccount, PointsEntry

MAX_REASON = 500
MAX_REQUEST_KEY = 80
#: The advisory lock the batch jobs share on PostgreSQL (any fixed number unique to us).
BATCH_LOCK = 7431102
_CHUNK = 500  # ids per IN (...) list: SQLite limits a statement's parameters


# ---------------------------------------------------------------------- helpers


def _chunks[T](items: Sequence[T], size: int = _CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def serialise_batches() -> None:
    """Make the calling transaction the only batch job running (PostgreSQL; SQLite already
    serialises writers). Held until the transaction ends."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [BATCH_LOCK])


def as_of_moment(as_of: date | datetime | None) -> datetime:
    """An aware instant: a date means the start of that day in the merchant's time zone
    (everything *before* that day counts), None means now."""
    if as_of is None:
        return timezone.now()
    if isinstance(as_of, datetime):
        return as_of if timezone.is_aware(as_of) else timezone.make_aware(as_of)
    return timezone.make_aware(datetime.combine(as_of, time()))


def as_of_day(as_of: date | datetime | None) -> date:
    """The merchant's calendar day for ``as_of`` (None: today)."""
    if as_of is None:
        return timezone.localdate()
    if isinstance(as_of, datetime):
        return timezone.localdate(as_of if timezone.is_aware(as_of) else as_of_moment(as_of))
    return as_of


def _local_day(moment: datetime) -> date:
    return timezone.localdate(moment)


def _reason_text(reason: Any, what: str) -> str:
    text = reason.strip() if isinstance(reason, str) else ""
    if not text:
        raise ValidationFailed(f"{what}.reason: a reason is required and is recorded")
    if len(text) > MAX_REASON:
        raise ValidationFailed(f"{what}.reason: longer than {MAX_REASON} characters")
    return text


def _whole_points(points: Any, what: str, *, allow_negative: bool) -> int:
    if isinstance(points, bool) or not isinstance(points, int):
        raise ValidationFailed(f"{what}.points: expected a whole number, got {points!r}")
    if points == 0 or (points < 0 and not allow_negative):
        expected = "a whole number other than zero" if allow_negative else "a positive number"
        raise ValidationFailed(f"{what}.points: expected {expected}, got {points}")
    if abs(points) > rules.MAX_POINTS:
        raise ValidationFailed(f"{what}.points: at most {rules.MAX_POINTS:,} at a time")
    return points


def _customer(customer_id: int) -> Customer:
    customer = Customer.objects.filter(pk=customer_id).first()
    if customer is None:
        raise NotFound(f"customer {customer_id} not found", details={"customer_id": customer_id})
    return customer


# ---------------------------------------------------------------------- policy


def loyalty_policy_active() -> LoyaltyPolicy:
    """The policy in force; the built-in default becomes version 1 on first use."""
    active = LoyaltyPolicy.objects.filter(is_active=True).first()
    if active is not None:
        return active
    try:
        with transaction.atomic():
            latest = LoyaltyPolicy.objects.select_for_update().order_by("-version").first()
            if latest is None:
                return LoyaltyPolicy.objects.create(
                    version=1,
                    note="Patron's default loyalty policy",
                    is_active=True,
                    created_by="patron",
                    **rules.LoyaltyRules().to_dict(),
                )
            latest.is_active = True
            latest.save(update_fields=["is_active"])
            return latest
    except IntegrityError:
        # Two first uses at once (nothing to lock yet): the other one created it.
        return LoyaltyPolicy.objects.get(is_active=True)


def _plain(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: str(v) if isinstance(v, Decimal) else v for k, v in values.items()}


def loyalty_policy_save(*, user: Any, data: Mapping[str, Any], note: str = "") -> LoyaltyPolicy:
    """Save the policy in force changed by ``data`` (any of its fields) as the next version
    and put it in force. Audited with the old and the new values. Points already posted keep
    the values they were posted with (each entry records its policy version)."""
    require_permission(user, CHANGE_LOYALTY_POLICY)
    if not isinstance(data, Mapping):
        raise ValidationFailed("loyalty policy: expected an object")
    note = (note or "").strip()[:200]
    with transaction.atomic():
        current = loyalty_policy_active()
        current = LoyaltyPolicy.objects.select_for_update().get(pk=current.pk)
        old = current.rules().to_dict()
        try:
            new = rules.LoyaltyRules.from_dict({**old, **data})
        except ValueError as error:
            raise ValidationFailed(f"loyalty policy: {error}") from error
        version = (LoyaltyPolicy.objects.aggregate(v=Max("version"))["v"] or 0) + 1
        LoyaltyPolicy.objects.filter(pk=current.pk).update(is_active=False)
        policy = LoyaltyPolicy.objects.create(
            version=version,
            note=note,
            is_active=True,
            created_by=user.get_username(),
            **new.to_dict(),
        )
        changed = sorted(k for k, v in new.to_dict().items() if old[k] != v)
        audit_record(
            AuditEntry(
                action="update",
                entity_type="loyalty.policy",
                entity_id=str(version),
                summary=f"loyalty policy v{version} in force (was v{current.version}); "
                f"changed: {', '.join(changed) or 'nothing'}",
                changes={"old": _plain(old), "new": _plain(new.to_dict()), "note": note},
            ),
            actor=user,
        )
    return policy


# ---------------------------------------------------------------------- the ledger in a batch


class _Ledger:
    """Accounts locked in this transaction, their open lots, and the entries being posted.

    Entries are computed in memory in posting order (so ``balance_after`` follows the balance
    step by step) and written with ``flush``; a lot must be flushed before a debit can take
    from it (its id is what ``consumed`` records).
    """

    def __init__(self, *, now: datetime, policy_version: int | None, user: Any = None) -> None:
        self.now = now
        self.policy_version = policy_version
        self.user = user if getattr(user, "is_authenticated", False) else None
        self.accounts: dict[int, PointsAccount] = {}  # by customer id
        self.lots: dict[int, dict[int, PointsEntry]] = defaultdict(dict)  # account -> id -> lot
        self.pending: list[PointsEntry] = []
        self.changed_lots: dict[int, PointsEntry] = {}
        self.changed_accounts: dict[int, PointsAccount] = {}
        self.touched: set[int] = set()

    def lock(self, customer_ids: Iterable[int], *, create: bool) -> None:
        """Lock the accounts of ``customer_ids`` (opening missing ones when ``create``) and
        read their open lots. Already locked accounts are kept as they are in memory."""
        wanted = sorted(set(customer_ids) - set(self.accounts))
        if not wanted:
            return
        if create:
            for chunk in _chunks(wanted):
                PointsAccount.objects.bulk_create(
                    [PointsAccount(customer_id=c) for c in chunk], ignore_conflicts=True
                )
        fresh: list[int] = []
        for chunk in _chunks(wanted):
            query = PointsAccount.objects.select_for_update().filter(customer_id__in=chunk)
            for account in query.order_by("pk"):
                self.accounts[account.customer_id] = account
                fresh.append(account.pk)
        for chunk in _chunks(fresh):
            lots = PointsEntry.objects.filter(account_id__in=chunk, remaining__gt=0)
            for lot in lots.order_by("id"):
                self.lots[lot.account_id][lot.pk] = lot

    def adopt(self, account: PointsAccount) -> None:
        """An account the caller has locked already."""
        self.accounts[account.customer_id] = account
        for lot in PointsEntry.objects.filter(account=account, remaining__gt=0).order_by("id"):
            self.lots[account.pk][lot.pk] = lot

    def balance(self, customer_id: int) -> int:
        account = self.accounts.get(customer_id)
        return account.balance if account is not None else 0

    def _entry(self, account: PointsAccount, **fields: Any) -> PointsEntry:
        entry = PointsEntry(
            account=account,
            balance_after=account.balance,
            posted_at=self.now,
            policy_version=self.policy_version,
            created_by=self.user,
            **fields,
        )
        self.pending.append(entry)
        self.changed_accounts[account.pk] = account
        self.touched.add(account.pk)
        return entry

    def credit(
        self, customer_id: int, *, points: int, expires_on: date, **fields: Any
    ) -> PointsEntry:
        """Post ``points`` (> 0) as a new lot expiring on ``expires_on``."""
        assert points > 0
        account = self.accounts[customer_id]
        account.balance += points
        return self._entry(
            account, points=points, expires_on=expires_on, remaining=points, **fields
        )

    def debit(
        self,
        customer_id: int,
        *,
        due: int,
        first_lot: int | None = None,
        plan: list[tuple[int, int]] | None = None,
        **fields: Any,
    ) -> PointsEntry:
        """Take ``due`` points, or as many as the balance holds (the rest is the entry's
        ``shortfall``), from the lots: ``plan`` when given, else lot ``first_lot`` first and
        then oldest first."""
        account = self.accounts[customer_id]
        taken, shortfall = rules.debit_split(due, account.balance)
        lots = self.lots[account.pk]
        if plan is None:
            plan = rules.consume(_lots(lots.values()), taken, first=first_lot)
        assert sum(n for _, n in plan) == taken
        for lot_id, amount in plan:
            lot = lots[lot_id]
            assert lot.remaining is not None and lot.remaining >= amount
            lot.remaining -= amount
            self.changed_lots[lot_id] = lot
            if lot.remaining == 0:
                del lots[lot_id]
        account.balance -= taken
        return self._entry(
            account,
            points=-taken,
            shortfall=shortfall,
            consumed=[[lot_id, amount] for lot_id, amount in plan],
            **fields,
        )

    def flush(self) -> None:
        if self.pending:
            created = PointsEntry.objects.bulk_create(self.pending, batch_size=_CHUNK)
            for entry in created:
                if entry.remaining:
                    self.lots[entry.account_id][entry.pk] = entry
            self.pending = []
        if self.changed_lots:
            _update_many(
                PointsEntry, "remaining", [(e.remaining, e.pk) for e in self.changed_lots.values()]
            )
            self.changed_lots = {}
        if self.changed_accounts:
            accounts = list(self.changed_accounts.values())
            _update_many(PointsAccount, "balance", [(a.balance, a.pk) for a in accounts])
            for chunk in _chunks([a.pk for a in accounts]):
                PointsAccount.objects.filter(pk__in=chunk).update(updated_at=self.now)
            for account in accounts:
                account.updated_at = self.now
            self.changed_accounts = {}


def _update_many(model: type[models.Model], column: str, rows: list[tuple[Any, int]]) -> None:
    """Set one integer column row by row (``[(value, pk)]``) in one ``executemany``: Django's
    ``bulk_update`` builds a CASE per row and took seconds for the first accrual of a shop."""
    if not rows:
        return
    quote = connection.ops.quote_name
    table, pk = quote(model._meta.db_table), quote("id")  # both models: the automatic key
    with connection.cursor() as cursor:
        cursor.executemany(f"UPDATE {table} SET {quote(column)} = %s WHERE {pk} = %s", rows)


def _lots(entries: Iterable[PointsEntry]) -> list[rules.Lot]:
    return [
        rules.Lot(entry.pk, entry.remaining or 0, entry.expires_on)
        for entry in entries
        if entry.expires_on is not None
    ]


# ---------------------------------------------------------------------- accrual


@dataclass(frozen=True)
class AccrualResult:
    """What one accrual run posted. ``shortfall``: points refunds were due but could not take
    because the customer had already spent them (the balance stops at zero)."""

    as_of: datetime
    orders_credited: int = 0
    reviews_credited: int = 0
    returns_reversed: int = 0
    cancellations_reversed: int = 0
    points_earned: int = 0
    points_reversed: int = 0
    shortfall: int = 0
    accounts: int = 0

    @property
    def entries(self) -> int:
        return (
            self.orders_credited
            + self.reviews_credited
            + self.returns_reversed
            + self.cancellations_reversed
        )

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["as_of"] = self.as_of.isoformat()
        return data


def _earn_entries(kind: str, source_type: str) -> Any:
    return PointsEntry.objects.filter(kind=kind, source_type=source_type, source_id=OuterRef("pk"))


def points_accrue(*, as_of: date | datetime | None = None) -> AccrualResult:
    """Post what happened before ``as_of`` (default now) and is not in the ledger yet.

    * paid orders (in the merchant's currency, status paid … returned) earn
      ``floor(total × points_per_cny)`` as a lot expiring ``expiry_months`` after payment;
    * reviews whose text is long enough earn ``review_points``;
    * refunds (returns refunded or completed with a refund) of credited orders take back points
      in proportion to the refund (``rules.reversal_due``), from the order's own lot first,
      then oldest first; a credited order later cancelled gives back what is left of its points.
      A reversal takes the balance down to zero and no further: the rest is recorded as the
      entry's ``shortfall``.

    Earnings whose lot would already have expired by ``as_of`` are not posted (history older
    than the expiry period earns nothing). Idempotent and incremental: each order, return and
    review posts once, so a second run with the same ``as_of`` posts nothing.
    """
    moment = as_of_moment(as_of)
    today = _local_day(moment)
    now = timezone.now()
    with transaction.atomic():
        serialise_batches()
        policy = loyalty_policy_active()
        policy_rules = policy.rules()
        ledger = _Ledger(now=now, policy_version=policy.version)
        counts: dict[str, int] = defaultdict(int)

        # A lot earned on ``oldest`` or before is already expired today (exactly: the rule in
        # the loop; the SQL bound is a few days wider so that month ends never cut too much).
        oldest = rules.add_months(today, -policy_rules.expiry_months)
        since = as_of_moment(oldest - timedelta(days=3))

        credits: list[dict[str, Any]] = []
        if policy_rules.points_per_cny > 0:
            orders = (
                Order.objects.filter(
                    paid_at__isnull=False,
                    paid_at__lt=moment,
                    paid_at__gte=since,
                    status__in=rules.PAID_STATUSES,
                    currency=settings.DEFAULT_CURRENCY,
                )
                .exclude(Exists(_earn_entries(EntryKind.EARN_ORDER, "order")))
                .order_by("paid_at", "pk")
                .values_list("pk", "customer_id", "total_amount", "paid_at", "external_id")
            )
            for pk, customer_id, total, paid_at, external_id in orders.iterator(chunk_size=2000):
                assert paid_at is not None  # filtered above
                points = rules.order_points(total, policy_rules)
                expires_on = rules.lot_expires_on(_local_day(paid_at), policy_rules)
                if points <= 0 or expires_on <= today:
                    continue
                credits.append(
                    {
                        "customer_id": customer_id,
                        "kind": EntryKind.EARN_ORDER,
                        "points": points,
                        "expires_on": expires_on,
                        "amount": total,
                        "source_type": "order",
                        "source_id": pk,
                        "idempotency_key": f"order:{pk}:earn",
                        "occurred_at": paid_at,
                        "reason": f"order {external_id}",
                    }
                )
                counts["orders"] += 1
        if policy_rules.review_points > 0:
            reviews = (
                Review.objects.annotate(text_length=Length(Trim("text")))
                .filter(
                    created_at__lt=moment,
                    created_at__gte=since,
                    text_length__gte=policy_rules.review_min_length,
                )
                .exclude(Exists(_earn_entries(EntryKind.EARN_REVIEW, "review")))
                .order_by("created_at", "pk")
                .values_list("pk", "customer_id", "text", "created_at", "external_id")
            )
            for pk, customer_id, text, created_at, external_id in reviews.iterator(chunk_size=2000):
                points = rules.review_points(text, policy_rules)
                expires_on = rules.lot_expires_on(_local_day(created_at), policy_rules)
                if points <= 0 or expires_on <= today:
                    continue
                credits.append(
                    {
                        "customer_id": customer_id,
                        "kind": EntryKind.EARN_REVIEW,
                        "points": points,
                        "expires_on": expires_on,
                        "source_type": "review",
                        "source_id": pk,
                        "idempotency_key": f"review:{pk}:earn",
                        "occurred_at": created_at,
                        "reason": f"review {external_id}",
                    }
                )
                counts["reviews"] += 1
        ledger.lock((c["customer_id"] for c in credits), create=True)
        for credit in credits:
            customer_id = credit.pop("customer_id")
            ledger.credit(customer_id, **credit)
            counts["earned"] += credit["points"]
        ledger.flush()

        _accrue_reversals(ledger, moment=moment, counts=counts)
        ledger.flush()

        result = AccrualResult(
            as_of=moment,
            orders_credited=counts["orders"],
            reviews_credited=counts["reviews"],
            returns_reversed=counts["returns"],
            cancellations_reversed=counts["cancels"],
            points_earned=counts["earned"],
            points_reversed=counts["reversed"],
            shortfall=counts["shortfall"],
            accounts=len(ledger.touched),
        )
        if result.entries:
            audit_record(
                AuditEntry(
                    action="update",
                    entity_type="loyalty.accrual",
                    summary=f"points accrued as of {moment:%Y-%m-%d %H:%M}: "
                    f"+{result.points_earned} / -{result.points_reversed}",
                    changes=result.as_dict(),
                ),
                actor_label="loyalty accrual",
            )
    return result


def _accrue_reversals(ledger: _Ledger, *, moment: datetime, counts: dict[str, int]) -> None:
    """Refunds and cancellations of credited orders take the orders' points back."""
    credited = PointsEntry.objects.filter(
        kind=EntryKind.EARN_ORDER, source_type="order", source_id=OuterRef("order_id")
    )
    returns = list(
        ReturnRequest.objects.annotate(done_at=Coalesce("resolved_at", "requested_at"))
        .filter(refund_amount__gt=0, status__in=rules.REFUNDED_STATUSES, done_at__lt=moment)
        .filter(Exists(credited))
        .exclude(Exists(_earn_entries(EntryKind.REVERSE_RETURN, "return")))
        .order_by("order_id", "done_at", "pk")
        .values_list("pk", "order_id", "refund_amount", "done_at", "external_id")
    )
    cancelled = list(
        Order.objects.annotate(done_at=Coalesce("cancelled_at", "paid_at"))
        .filter(status=Order.Status.CANCELLED, done_at__lt=moment)
        .filter(Exists(_earn_entries(EntryKind.EARN_ORDER, "order")))
        .exclude(Exists(_earn_entries(EntryKind.REVERSE_CANCEL, "order")))
        .order_by("pk")
        .values_list("pk", "done_at", "external_id")
    )
    if not returns and not cancelled:
        return
    order_ids = sorted({row[1] for row in returns} | {row[0] for row in cancelled})
    earned: dict[int, PointsEntry] = {}
    for chunk in _chunks(order_ids):
        query = PointsEntry.objects.filter(
            kind=EntryKind.EARN_ORDER, source_type="order", source_id__in=chunk
        ).select_related("account")
        for entry in query:
            assert entry.source_id is not None
            earned[entry.source_id] = entry
    # What earlier reversals of the same orders took or were due, and the refunds behind them.
    refunded_before: dict[int, Decimal] = defaultdict(Decimal)
    reversed_before: dict[int, int] = defaultdict(int)
    for chunk in _chunks([entry.pk for entry in earned.values()]):
        rows = PointsEntry.objects.filter(
            reverses_id__in=chunk, kind__in=[EntryKind.REVERSE_RETURN, EntryKind.REVERSE_CANCEL]
        ).values_list("reverses_id", "kind", "points", "shortfall", "amount")
        for reverses_id, kind, points, shortfall, amount in rows:
            reversed_before[reverses_id] += -points + shortfall
            if kind == EntryKind.REVERSE_RETURN:
                refunded_before[reverses_id] += amount or Decimal("0")
    ledger.lock((entry.account.customer_id for entry in earned.values()), create=False)

    for pk, order_id, refund, done_at, external_id in returns:
        earn = earned[order_id]
        due = rules.reversal_due(
            earned=earn.points,
            order_total=earn.amount or Decimal("0"),
            refunded_before=refunded_before[earn.pk],
            refund=refund,
            reversed_before=reversed_before[earn.pk],
        )
        entry = ledger.debit(
            earn.account.customer_id,
            due=due,
            first_lot=earn.pk,
            kind=EntryKind.REVERSE_RETURN,
            amount=refund,
            source_type="return",
            source_id=pk,
            idempotency_key=f"return:{pk}:reverse",
            reverses=earn,
            occurred_at=done_at,
            reason=f"refund {refund} on return {external_id} ({earn.reason})",
        )
        refunded_before[earn.pk] += refund
        reversed_before[earn.pk] += due
        counts["returns"] += 1
        counts["reversed"] -= entry.points
        counts["shortfall"] += entry.shortfall
    for pk, done_at, external_id in cancelled:
        earn = earned[pk]
        due = max(0, earn.points - reversed_before[earn.pk])
        entry = ledger.debit(
            earn.account.customer_id,
            due=due,
            first_lot=earn.pk,
            kind=EntryKind.REVERSE_CANCEL,
            amount=earn.amount,
            source_type="order",
            source_id=pk,
            idempotency_key=f"order:{pk}:cancel",
            reverses=earn,
            occurred_at=done_at,
            reason=f"order {external_id} cancelled after payment",
        )
        reversed_before[earn.pk] += due
        counts["cancels"] += 1
        counts["reversed"] -= entry.points
        counts["shortfall"] += entry.shortfall


# ---------------------------------------------------------------------- expiry


@dataclass(frozen=True)
class ExpiryResult:
    as_of: date
    lots: int = 0
    points: int = 0
    accounts: int = 0

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["as_of"] = self.as_of.isoformat()
        return data


def points_expire(*, as_of: date | datetime | None = None) -> ExpiryResult:
    """Expire every lot whose expiry date is ``as_of`` (default today) or earlier: what is
    left of it leaves the balance in one ``expire`` entry per lot. Idempotent: an expired lot
    has nothing left, and its entry's key is unique."""
    day = as_of_day(as_of)
    with transaction.atomic():
        serialise_batches()
        customer_ids = sorted(
            set(
                PointsEntry.objects.filter(remaining__gt=0, expires_on__lte=day).values_list(
                    "account__customer_id", flat=True
                )
            )
        )
        ledger = _Ledger(now=timezone.now(), policy_version=None)
        ledger.lock(customer_ids, create=False)  # the lots are read again under the lock
        lots = points = 0
        for customer_id in customer_ids:
            account = ledger.accounts[customer_id]
            for lot in rules.expired_lots(_lots(ledger.lots[account.pk].values()), day):
                ledger.debit(
                    customer_id,
                    due=lot.remaining,
                    plan=[(lot.id, lot.remaining)],
                    kind=EntryKind.EXPIRE,
                    source_type="lot",
                    source_id=lot.id,
                    idempotency_key=f"lot:{lot.id}:expire",
                    reverses_id=lot.id,
                    occurred_at=as_of_moment(lot.expires_on),
                    reason=f"points of entry {lot.id} expired on {lot.expires_on}",
                )
                lots += 1
                points += lot.remaining
        ledger.flush()
        result = ExpiryResult(as_of=day, lots=lots, points=points, accounts=len(ledger.touched))
        if lots:
            audit_record(
                AuditEntry(
                    action="update",
                    entity_type="loyalty.expiry",
                    summary=f"{points} points in {lots} lots expired as of {day}",
                    changes=result.as_dict(),
                ),
                actor_label="loyalty expiry",
            )
    return result


# ---------------------------------------------------------------------- redeem and adjust


def _request_key(value: Any) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if not text or len(text) > MAX_REQUEST_KEY or any(c.isspace() for c in text):
        raise ValidationFailed(
            f"redemption.request_key: 1 to {MAX_REQUEST_KEY} characters without spaces, "
            "the same for every retry of one request"
        )
    return text


def _audit_entry(user: Any, entry: PointsEntry, customer_id: int, summary: str) -> None:
    audit_record(
        AuditEntry(
            action="update",
            entity_type="loyalty.points",
            entity_id=str(entry.pk),
            customer_id=customer_id,
            summary=summary,
            changes={
                "kind": entry.kind,
                "points": entry.points,
                "balance_after": entry.balance_after,
                "reason": entry.reason,
                "key": entry.idempotency_key,
                "consumed": entry.consumed,
            },
        ),
        actor=user,
    )


def points_redeem(
    *, user: Any, customer_id: int, points: int, reason: str, request_key: str
) -> PointsEntry:
    """Spend ``points`` of the customer's balance (for a reward), oldest lots first.

    Race-safe: the account row is locked, so of two redemptions at once the second sees what
    the first left. Refused with ``Conflict`` (naming the balance) when the balance is short;
    nothing is written then. Idempotent per ``request_key``: a retry of the same request gets
    the entry the first one posted; the same key with a different number of points is refused.
    """
    require_permission(user, CHANGE_POINTS)
    points = _whole_points(points, "redemption", allow_negative=False)
    reason = _reason_text(reason, "redemption")
    key = f"redeem:{customer_id}:{_request_key(request_key)}"
    policy = loyalty_policy_active()
    with transaction.atomic():
        _customer(customer_id)
        account = PointsAccount.objects.select_for_update().filter(customer_id=customer_id).first()
        # Read under the lock: a retry racing the first attempt sees what it posted.
        done = PointsEntry.objects.filter(idempotency_key=key).first()
        if done is not None:
            if done.points != -points:
                raise Conflict(
                    f"request key {request_key!r} already redeemed {-done.points} points for "
                    f"customer {customer_id}; use a new key for a new request",
                    details={"entry_id": done.pk, "points": -done.points},
                )
            return done
        balance = account.balance if account is not None else 0
        if account is None or balance < points:
            raise Conflict(
                f"customer {customer_id} has {balance} points: cannot redeem {points}",
                details={"balance": balance, "points": points},
            )
        ledger = _Ledger(now=timezone.now(), policy_version=policy.version, user=user)
        ledger.adopt(account)
        entry = ledger.debit(
            customer_id,
            due=points,
            kind=EntryKind.REDEEM,
            source_type="request",
            idempotency_key=key,
            occurred_at=ledger.now,
            reason=reason,
        )
        ledger.flush()
        _audit_entry(user, entry, customer_id, f"redeemed {points} points: {reason}"[:300])
    return entry


def points_adjust(*, user: Any, customer_id: int, points: int, reason: str) -> PointsEntry:
    """A staff correction: ``points`` > 0 adds a lot (expiring like earned points, counted
    from today), ``points`` < 0 takes points oldest first and is refused with ``Conflict``
    when the balance is short. Audited."""
    require_permission(user, CHANGE_POINTS)
    points = _whole_points(points, "adjustment", allow_negative=True)
    reason = _reason_text(reason, "adjustment")
    policy = loyalty_policy_active()
    with transaction.atomic():
        _customer(customer_id)
        ledger = _Ledger(now=timezone.now(), policy_version=policy.version, user=user)
        ledger.lock([customer_id], create=points > 0)
        balance = ledger.balance(customer_id)
        fields: dict[str, Any] = {
            "kind": EntryKind.ADJUST,
            "source_type": "staff",
            "source_id": getattr(user, "pk", None),
            "idempotency_key": f"adjust:{uuid.uuid4().hex}",
            "occurred_at": ledger.now,
            "reason": reason,
        }
        if points > 0:
            expires_on = rules.lot_expires_on(_local_day(ledger.now), policy.rules())
            entry = ledger.credit(customer_id, points=points, expires_on=expires_on, **fields)
        else:
            if balance < -points:
                raise Conflict(
                    f"customer {customer_id} has {balance} points: cannot take {-points}",
                    details={"balance": balance, "points": points},
                )
            entry = ledger.debit(customer_id, due=-points, **fields)
        ledger.flush()
        _audit_entry(user, entry, customer_id, f"adjusted {points:+d} points: {reason}"[:300])
    return entry


def points_grant(
    *,
    customer_ids: Sequence[int],
    points: int,
    reason: str,
    key: str,
    source_type: str,
    source_id: int | None = None,
    user: Any = None,
    actor_label: str = "",
) -> dict[int, PointsEntry]:
    """Credit ``points`` to each of ``customer_ids`` as a new lot (an ``adjust`` entry whose
    ``source_type`` names the programme, e.g. ``campaign``), expiring like earned points.

    For programmes that grant points in bulk (a campaign's offer): **the caller checks the
    permission** and runs this inside its own transaction. Idempotent per customer: the entry's
    key is ``grant:{key}:{customer_id}``, so a customer already granted under ``key`` is
    returned, not credited again. Accounts are locked in id order and the entries written in
    one batch; one audit entry for the batch. Customer id -> its entry."""
    points = _whole_points(points, "grant", allow_negative=False)
    reason = _reason_text(reason, "grant")
    wanted = sorted(set(customer_ids))
    keys = {customer_id: f"grant:{key}:{customer_id}" for customer_id in wanted}
    done: dict[int, PointsEntry] = {}
    for chunk in _chunks(wanted):
        for entry in PointsEntry.objects.filter(
            idempotency_key__in=[keys[c] for c in chunk]
        ).select_related("account"):
            done[entry.account.customer_id] = entry
    fresh = [c for c in wanted if c not in done]
    if not fresh:
        return done
    policy = loyalty_policy_active()
    with transaction.atomic():
        ledger = _Ledger(now=timezone.now(), policy_version=policy.version, user=user)
        ledger.lock(fresh, create=True)
        expires_on = rules.lot_expires_on(_local_day(ledger.now), policy.rules())
        created = {
            customer_id: ledger.credit(
                customer_id,
                points=points,
                expires_on=expires_on,
                kind=EntryKind.ADJUST,
                source_type=source_type[:12],
                source_id=source_id,
                idempotency_key=keys[customer_id],
                occurred_at=ledger.now,
                reason=reason,
            )
            for customer_id in fresh
        }
        ledger.flush()
        audit_record(
            AuditEntry(
                action="create",
                entity_type="loyalty.points_grant",
                entity_id=key[:64],
                summary=f"{points} points granted to {len(fresh)} customer(s): {reason}"[:300],
                changes={"points": points, "customers": len(fresh), "key": key},
            ),
            actor=user,
            actor_label="" if user is not None else (actor_label or "points grant"),
        )
    return {**done, **created}
