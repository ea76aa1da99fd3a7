"""Writing care: the policy table (measures by grade) and the daily care run.

``care_run(day=…)`` does the three automations of R-G5 for one day of the merchant's calendar
(``settings.TIME_ZONE``), reading the policy as it stands:

1. **birthdays** — customers whose birthday is that day (29 February on 28 February in other
   years) and whose grade's row sends birthday greetings get ``care.birthday`` through the
   outbox, with a coupon of the row's template when it has one;
2. **holidays** — customers whose grade's row lists a festival whose greeting window contains
   the day get ``care.holiday``, with the row's holiday coupon;
3. **visits** — customers whose grade's row has a visit interval and whose visit is due get a
   follow-up ticket through ``patron.service.services.ticket_open`` (category
   ``follow-up-visit``): routed like any ticket, so a core customer's goes to their dedicated
   agent when they have one.

Greetings are marketing messages: they need the customer's marketing consent on the channel
the outbox picks (checked before anything is issued, so no coupon is spent on a customer who
will not hear of it, and again by the outbox when it sends). Coupons go through
``patron.marketing.services.coupons_issue`` (the template row locked, stock and per-customer
limits counted under the lock), issued as the user who last saved the grade's row (their
permission checked again now); under the same lock the run also keeps the template's budget
(``rules.offer_within_budget``). A greeting whose offer cannot be given still goes out, without
it, and the touch records why.

Idempotent and safe under concurrency: what was done is a ``CareTouch`` per (customer, kind,
occasion), unique in the database; every chunk re-reads the touches inside its transaction,
which on PostgreSQL also holds one advisory lock shared by all care runs (SQLite's write
transactions are serial). Outbox keys (``care.birthday:{customer}:{year}``, …) guard the
messages as well. Running a day twice sends nothing twice.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Q, Sum
from django.utils import timezone

from patron.account.roles import CHANGE_CAMPAIGNS, CHANGE_COUPONS
from patron.account.services import require_permission
from patron.audit.services import AuditEntry, audit_record
from patron.care import rules
from patron.care.models import CareTouch, GradeMeasure
from patron.care.selectors import (
    VisitDue,
    care_customers,
    visit_schedule,
)
from patron.customer.models import Consent, Customer
from patron.errors import PatronError, PermissionDenied, ValidationFailed
from patron.marketing.models import Coupon, CouponTemplate
from patron.marketing.services import coupons_issue
from patron.outbox import rules as outbox_rules
from patron.outbox.models import Message
from patron.outbox.services import (
    customer_addresses,
    customer_language,
    latest_consents,
    message_queue,
)
from patron.outbox.templates import EN
from patron.workflow import locked

logger = logging.getLogger(__name__)

#: Customers per transaction: short write transactions, few statements per customer.
CHUNK = 200
#: The advisory lock every care transaction takes on PostgreSQL (fixed, unique to care).
CARE_LOCK = 7431501
#: The service desk category of follow-up visit tickets (made on first use; staff may edit it).
VISIT_CATEGORY = "follow-up-visit"
VISIT_CATEGORY_NAME = "定期回访 Follow-up visit"
ACTOR = "care automation"
MAX_NOTE = 200


def _chunks[T](items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _serialise() -> None:
    """One care transaction at a time (PostgreSQL; SQLite's writers are serial already)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CARE_LOCK])


# ---------------------------------------------------------------------- the policy


def _row_values(measures: rules.Measures) -> dict[str, Any]:
    return {
        "exclusive_discount_percent": measures.exclusive_discount_percent,
        "has_priority_handling": measures.has_priority_handling,
        "has_dedicated_line": measures.has_dedicated_line,
        "visit_interval_days": measures.visit_interval_days,
        "sends_birthday_greeting": measures.sends_birthday_greeting,
        "birthday_coupon_template_id": measures.birthday_coupon_template_id,
        "holidays": list(measures.holidays),
        "holiday_days_ahead": measures.holiday_days_ahead,
        "holiday_coupon_template_id": measures.holiday_coupon_template_id,
    }


def care_policy_seed() -> int:
    """Create the rows of grades that have none, with R-G2's defaults; returns how many.
    Rows staff have edited are never touched."""
    existing = set(GradeMeasure.objects.values_list("grade", flat=True))
    today = timezone.localdate()
    fresh = [
        GradeMeasure(
            grade=grade,
            visits_from=today if rules.DEFAULT_MEASURES[grade].visit_interval_days else None,
            **_row_values(rules.DEFAULT_MEASURES[grade]),
        )
        for grade in rules.GRADES
        if grade not in existing
    ]
    if fresh:
        GradeMeasure.objects.bulk_create(fresh, ignore_conflicts=True)
    return len(fresh)


def care_policy() -> dict[str, GradeMeasure]:
    """The policy in force, grade -> row (seeded on first use), highest grade first."""
    care_policy_seed()
    rows = GradeMeasure.objects.select_related(
        "birthday_coupon_template", "holiday_coupon_template", "updated_by"
    )
    found = {row.grade: row for row in rows}
    return {grade: found[grade] for grade in rules.GRADES if grade in found}


def _check_templates(grade: str, old: rules.Measures, new: rules.Measures) -> None:
    """A coupon template newly chosen must exist and be able to issue codes now."""
    now = timezone.now()
    for name in ("birthday_coupon_template_id", "holiday_coupon_template_id"):
        template_id = getattr(new, name)
        if template_id is None or template_id == getattr(old, name):
            continue
        template = CouponTemplate.objects.filter(pk=template_id).first()
        if template is None:
            raise ValidationFailed(
                f"{grade}.{name}: coupon template {template_id} not found",
                details={"grade": grade, "field": name},
            )
        if not template.is_active or (
            template.valid_until is not None and template.valid_until <= now
        ):
            raise ValidationFailed(
                f"{grade}.{name}: coupon template {template.name!r} cannot issue codes "
                "(not active, or ended)",
                details={"grade": grade, "field": name},
            )


def measures_validate(
    *, grade: str, data: Mapping[str, Any], base: rules.Measures | None = None
) -> rules.Measures:
    """The row ``data`` would make (``base`` changed by it), or ``ValidationFailed`` naming the
    grade and the field. For forms that show the refusal next to the field (the admin)."""
    if grade not in rules.GRADE_NAMES:
        raise ValidationFailed(
            f"{grade}.grade: expected one of {', '.join(rules.GRADES)}",
            details={"grade": grade, "field": "grade"},
        )
    base = base or rules.DEFAULT_MEASURES[grade]
    try:
        new = rules.measures_from(grade, data, base=base)
    except rules.MeasuresInvalid as error:
        raise ValidationFailed(
            str(error), details={"grade": error.grade, "field": error.field}
        ) from error
    _check_templates(grade, base, new)
    return new


def care_measures_save(
    *, user: Any, grade: str, data: Mapping[str, Any], note: str = ""
) -> GradeMeasure:
    """Change what ``grade`` gets: any of ``rules.EDITABLE`` in ``data``. Validated as a whole
    (the refusal names the grade and the field: ``core.holidays: …``), versioned, and audited
    with the old and the new values. A row with a coupon also needs the right to issue
    coupons: the automation issues them as the person who saved the row. The next run follows
    the new row; what was sent already stays as it was."""
    require_permission(user, CHANGE_CAMPAIGNS)
    note = (note or "").strip()
    if "\x00" in note or len(note) > MAX_NOTE:
        raise ValidationFailed(f"{grade}.note: at most {MAX_NOTE} characters, no NUL")
    with transaction.atomic():
        care_policy_seed()
        row = GradeMeasure.objects.select_for_update().filter(grade=grade).first()
        old = row.measures() if row is not None else None
        new = measures_validate(grade=grade, data=data, base=old)
        assert row is not None and old is not None  # measures_validate refused other grades
        if new.coupon_template_ids():
            require_permission(user, CHANGE_COUPONS)
        changed = rules.changed_fields(old, new)
        if not changed:
            return row
        for name, value in _row_values(new).items():
            setattr(row, name, value)
        if new.visit_interval_days is None:
            row.visits_from = None
        elif old.visit_interval_days is None:  # switched on: first visits spread from today
            row.visits_from = timezone.localdate()
        row.version += 1
        row.note = note
        row.updated_by = user
        row.save()
        before, after = old.to_dict(), new.to_dict()
        audit_record(
            AuditEntry(
                action="update",
                entity_type="care.measures",
                entity_id=grade,
                summary=f"care policy for {grade} customers v{row.version}: changed "
                f"{', '.join(changed)}"[:300],
                changes={
                    "old": {k: before[k] for k in changed},
                    "new": {k: after[k] for k in changed},
                    "note": note,
                },
            ),
            actor=user,
        )
    return GradeMeasure.objects.select_related(
        "birthday_coupon_template", "holiday_coupon_template", "updated_by"
    ).get(pk=row.pk)


# ---------------------------------------------------------------------- the run: results


@dataclass
class CareCounts:
    """What one automation did in a run. ``due``: customers the policy says are due;
    ``already``: of them, done by an earlier run (nothing sent again); ``messaged``: queued
    in the outbox; ``suppressed``: not sent (no marketing consent or no address);
    ``coupons``: coupons issued; ``offers_skipped``: greetings sent without their coupon
    (stock, budget, limit, template off, nobody may issue it); ``visits``: visit tickets
    opened, ``to_dedicated_agent`` of them to the customer's dedicated agent; ``failed``:
    refused by another service (logged)."""

    due: int = 0
    already: int = 0
    messaged: int = 0
    suppressed: int = 0
    coupons: int = 0
    offers_skipped: int = 0
    visits: int = 0
    to_dedicated_agent: int = 0
    failed: int = 0

    @property
    def done(self) -> int:
        return self.messaged + self.suppressed + self.visits


@dataclass(frozen=True)
class CareRunResult:
    day: date
    birthday: CareCounts = field(default_factory=CareCounts)
    holiday: CareCounts = field(default_factory=CareCounts)
    visit: CareCounts = field(default_factory=CareCounts)

    @property
    def done(self) -> int:
        """Touches this run made (0 on a second run of the same day)."""
        return self.birthday.done + self.holiday.done + self.visit.done

    def as_dict(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(),
            "birthday": asdict(self.birthday),
            "holiday": asdict(self.holiday),
            "visit": asdict(self.visit),
        }


# ---------------------------------------------------------------------- greetings


@dataclass(frozen=True)
class _Greeting:
    """One customer due one greeting."""

    customer_id: int
    grade: str
    occasion: str
    occasion_on: date
    holiday: str = ""

    def message_key(self, kind: str) -> str:
        if kind == rules.BIRTHDAY:
            return f"care.birthday:{self.customer_id}:{self.occasion}"
        return f"care.holiday:{self.occasion}:{self.customer_id}"


@dataclass
class _Offer:
    status: str = CareTouch.Offer.NONE
    reason: str = ""
    coupon: Coupon | None = None


def _template_of(row: GradeMeasure, kind: str) -> int | None:
    if kind == rules.BIRTHDAY:
        return row.birthday_coupon_template_id
    return row.holiday_coupon_template_id


def _may_issue(user: Any) -> bool:
    try:
        require_permission(user, CHANGE_COUPONS)
    except PermissionDenied:
        return False
    return True


@dataclass
class _TemplateState:
    """A coupon template locked for this chunk, and what is left of it."""

    template: CouponTemplate
    usable: bool
    held: dict[int, int]
    stock_left: int | None
    committed: Decimal
    unit: Decimal


def _template_state(template_id: int, customer_ids: Iterable[int]) -> _TemplateState:
    """Lock the template and count, under the lock, what its stock, limits and budget allow."""
    template = locked(CouponTemplate, template_id, "coupon template")
    now = timezone.now()
    usable = template.is_active and (template.valid_until is None or template.valid_until > now)
    held: dict[int, int] = defaultdict(int)
    rows = (
        Coupon.objects.filter(template=template, customer_id__in=sorted(set(customer_ids)))
        .exclude(status=Coupon.Status.VOID)
        .values_list("customer_id", flat=True)
    )
    for customer_id in rows:
        if customer_id is not None:
            held[customer_id] += 1
    stock_left = None
    if template.stock is not None:
        stock_left = template.stock - Coupon.objects.filter(template=template).count()
    unit = Decimal(template.value) if template.kind == "amount_off" else Decimal("0")
    committed = Decimal("0")
    if template.budget is not None:
        given = Coupon.objects.filter(template=template, status=Coupon.Status.REDEEMED).aggregate(
            s=Sum("discount_amount")
        )["s"] or Decimal("0")
        still_open = (
            Coupon.objects.filter(template=template, status=Coupon.Status.ISSUED)
            .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
            .count()
        )
        committed = Decimal(given) + unit * still_open
    return _TemplateState(template, usable, held, stock_left, committed, unit)


def _issue_offers(
    kind: str, day: date, due: Sequence[_Greeting], policy: Mapping[str, GradeMeasure]
) -> dict[tuple[int, str], _Offer]:
    """The offer of each greeting (by customer and occasion): coupons issued where the policy
    gives one and the template's stock, limits and budget allow, else why not."""
    offers: dict[tuple[int, str], _Offer] = {(g.customer_id, g.occasion): _Offer() for g in due}
    groups: dict[tuple[int, str], list[_Greeting]] = defaultdict(list)
    for greeting in due:
        template_id = _template_of(policy[greeting.grade], kind)
        if template_id is not None:
            groups[(template_id, greeting.grade)].append(greeting)
    states: dict[int, _TemplateState] = {}
    for template_id in sorted({t for t, _ in groups}):  # one lock order: no deadlocks
        ids = [g.customer_id for (t, _), gs in groups.items() if t == template_id for g in gs]
        states[template_id] = _template_state(template_id, ids)
    for (template_id, grade), greetings in sorted(groups.items()):
        state = states[template_id]
        template = state.template
        issuer = policy[grade].updated_by
        eligible: list[_Greeting] = []
        for greeting in greetings:
            offer = offers[(greeting.customer_id, greeting.occasion)]
            limit = template.per_customer_limit
            if not state.usable:
                offer.status = CareTouch.Offer.TEMPLATE_OFF
                offer.reason = f"coupon template {template.name!r} is not active or has ended"
            elif issuer is None or not _may_issue(issuer):
                offer.status = CareTouch.Offer.NO_ISSUER
                offer.reason = (
                    f"nobody may issue {template.name!r}: the {grade} row was last saved by "
                    f"{issuer.get_username() if issuer else 'nobody'}, who may not issue coupons"
                )
            elif limit is not None and state.held[greeting.customer_id] >= limit:
                offer.status = CareTouch.Offer.COUPON_LIMIT
                offer.reason = (
                    f"holds {state.held[greeting.customer_id]} coupon(s) of {template.name!r} "
                    f"(the limit is {limit})"
                )
            elif state.stock_left is not None and state.stock_left <= 0:
                offer.status = CareTouch.Offer.OUT_OF_STOCK
                offer.reason = f"coupon template {template.name!r} has no stock left"
            elif not rules.offer_within_budget(
                budget=template.budget, committed=state.committed, unit=state.unit
            ):
                offer.status = CareTouch.Offer.OVER_BUDGET
                offer.reason = (
                    f"coupon template {template.name!r}: {state.committed} of its budget "
                    f"{template.budget} given or promised"
                )
            else:
                eligible.append(greeting)
                state.held[greeting.customer_id] += 1
                state.committed += state.unit
                if state.stock_left is not None:
                    state.stock_left -= 1
        if not eligible:
            continue
        ids = [g.customer_id for g in eligible]
        digest = hashlib.sha256(
            ",".join(f"{g.customer_id}:{g.occasion}" for g in eligible).encode()
        )
        try:
            issued = coupons_issue(
                user=issuer,
                template_id=template_id,
                customer_ids=ids,
                reason=f"care: {kind} greetings for {grade} customers on {day.isoformat()}",
                request_key=f"care-{kind}-{day:%Y%m%d}-{grade}-{digest.hexdigest()[:20]}",
            )
        except PatronError as error:  # refused after all (e.g. a right withdrawn meanwhile)
            logger.warning("care: coupons of template %s not issued: %s", template_id, error)
            status = (
                CareTouch.Offer.NO_ISSUER
                if isinstance(error, PermissionDenied)
                else CareTouch.Offer.OUT_OF_STOCK
            )
            for greeting in eligible:
                offer = offers[(greeting.customer_id, greeting.occasion)]
                offer.status, offer.reason = status, error.message[:500]
            continue
        by_customer: dict[int, list[Coupon]] = defaultdict(list)
        for coupon in issued:
            coupon.template = template
            by_customer[coupon.customer_id or 0].append(coupon)
        for greeting in eligible:
            offer = offers[(greeting.customer_id, greeting.occasion)]
            offer.coupon = by_customer[greeting.customer_id].pop(0)
            offer.status = CareTouch.Offer.ISSUED
    return offers


def _number(value: Decimal) -> str:
    """20.00 -> 20, 8.50 -> 8.5."""
    text = f"{Decimal(value):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def offer_text(coupon: Coupon | None, *, language: str) -> str:
    """The offer line of a greeting, in the customer's language."""
    is_english = language == EN
    if coupon is None:
        return "Thank you for being with us." if is_english else "感谢您一直以来的支持！"
    template = coupon.template
    value, threshold = Decimal(template.value), Decimal(template.min_order_amount)
    until = timezone.localdate(coupon.expires_at).isoformat() if coupon.expires_at else ""
    if is_english:
        what = (
            f"¥{_number(value)} off" if template.kind == "amount_off" else f"{_number(value)}% off"
        )
        if threshold > 0:
            what += f" orders of ¥{_number(threshold)} or more"
        return f"A coupon for you, {what}: code {coupon.code}" + (
            f", valid until {until}." if until else "."
        )
    if template.kind == "amount_off":
        what = (f"满{_number(threshold)}元" if threshold > 0 else "") + f"减{_number(value)}元"
    else:
        what = f"{_number((Decimal(100) - value) / 10)}折" + (
            f"（满{_number(threshold)}元可用）" if threshold > 0 else ""
        )
    return f"特为您送上一张{what}优惠券，券码：{coupon.code}" + (
        f"，有效期至{until}。" if until else "。"
    )


def _context(
    kind: str, greeting: _Greeting, coupon: Coupon | None, language: str
) -> dict[str, str]:
    context = {"offer": offer_text(coupon, language=language)}
    if kind == rules.HOLIDAY:
        holiday = rules.HOLIDAYS[greeting.holiday]
        if language == EN:
            context["holiday"], context["greeting"] = holiday.name_en, holiday.greeting_en
        else:
            context["holiday"], context["greeting"] = holiday.name_zh, holiday.greeting_zh
    return context


def _marketing_route(customer: Customer) -> outbox_rules.Route:
    """Where the outbox would send a marketing message, and whether consent allows it."""
    return outbox_rules.route(
        purpose=Consent.Purpose.MARKETING,
        channel=None,
        addresses=customer_addresses(customer),
        latest=latest_consents(customer.pk, Consent.Purpose.MARKETING),
        is_erased=customer.status == Customer.Status.ERASED,
    )


def _greet_chunk(
    kind: str,
    day: date,
    chunk: Sequence[_Greeting],
    policy: Mapping[str, GradeMeasure],
    counts: CareCounts,
) -> None:
    """One transaction: what is still to do of ``chunk`` (read under the lock), offers,
    messages, and the touches that record them."""
    with transaction.atomic():
        _serialise()
        done = set(
            CareTouch.objects.filter(
                kind=kind,
                customer_id__in=[g.customer_id for g in chunk],
                occasion__in=sorted({g.occasion for g in chunk}),
            ).values_list("customer_id", "occasion")
        )
        todo = [g for g in chunk if (g.customer_id, g.occasion) not in done]
        counts.already += len(chunk) - len(todo)
        if not todo:
            return
        customers = Customer.objects.in_bulk([g.customer_id for g in todo])
        touches: list[CareTouch] = []
        reachable: list[_Greeting] = []
        for greeting in todo:
            customer = customers.get(greeting.customer_id)
            if customer is None or customer.status != Customer.Status.ACTIVE:
                continue  # erased or deactivated since the candidates were read
            route = _marketing_route(customer)
            if route.is_allowed:
                reachable.append(greeting)
                continue
            counts.suppressed += 1
            touches.append(_touch(kind, day, greeting, CareTouch.Outcome.SUPPRESSED, route.reason))
        offers = _issue_offers(kind, day, reachable, policy)
        for greeting in reachable:
            customer = customers[greeting.customer_id]
            offer = offers[(greeting.customer_id, greeting.occasion)]
            message = message_queue(
                customer_id=customer.pk,
                template=f"care.{kind}",
                purpose=Consent.Purpose.MARKETING,
                context=_context(kind, greeting, offer.coupon, customer_language(customer)),
                key=greeting.message_key(kind),
                source=f"care.{kind}:{greeting.occasion}",
            )
            touch = _touch(kind, day, greeting, CareTouch.Outcome.MESSAGED, offer.reason)
            touch.message = message
            touch.offer, touch.coupon = offer.status, offer.coupon
            if message.status == Message.Status.SUPPRESSED:
                touch.outcome, touch.reason = CareTouch.Outcome.SUPPRESSED, message.reason[:500]
                counts.suppressed += 1
            else:
                counts.messaged += 1
            if offer.status == CareTouch.Offer.ISSUED:
                counts.coupons += 1
            elif offer.status:
                counts.offers_skipped += 1
            touches.append(touch)
        CareTouch.objects.bulk_create(touches)


def _touch(kind: str, day: date, greeting: _Greeting, outcome: str, reason: str) -> CareTouch:
    return CareTouch(
        customer_id=greeting.customer_id,
        kind=kind,
        occasion=greeting.occasion,
        occasion_on=greeting.occasion_on,
        run_on=day,
        grade=greeting.grade,
        outcome=outcome,
        reason=(reason or "")[:500],
    )


def _greet(
    kind: str,
    day: date,
    greetings: Sequence[_Greeting],
    policy: Mapping[str, GradeMeasure],
) -> CareCounts:
    counts = CareCounts(due=len(greetings))
    ordered = sorted(greetings, key=lambda g: (g.customer_id, g.occasion))
    for chunk in _chunks(ordered):
        # Before: snapshot the counts, so that a chunk retried after losing a race is not
        # counted twice.
        before = asdict(counts)
        try:
            _greet_chunk(kind, day, chunk, policy, counts)
        except IntegrityError:
            # Another run recorded some of these meanwhile (its transaction committed between
            # our read and our write): everything of this chunk was rolled back; again, now
            # seeing what it did.
            for name, value in before.items():
                setattr(counts, name, value)
            _greet_chunk(kind, day, chunk, policy, counts)
    return counts


def _birthdays_due(day: date, policy: Mapping[str, GradeMeasure]) -> list[_Greeting]:
    grades = [g for g, row in policy.items() if row.sends_birthday_greeting]
    if not grades:
        return []
    born = Q()
    for month, day_of_month in rules.birthdays_celebrated_on(day):
        born |= Q(birthday__month=month, birthday__day=day_of_month)
    rows = care_customers(grades).filter(born).values_list("pk", "care_grade")
    occasion = rules.birthday_occasion(day)
    return [
        _Greeting(pk, rules.grade_or_ordinary(grade), occasion, day)
        for pk, grade in rows.iterator()
    ]


def _holidays_due(day: date, policy: Mapping[str, GradeMeasure]) -> list[_Greeting]:
    greetings: list[_Greeting] = []
    for grade, row in policy.items():
        due = rules.holidays_due(row.holidays or (), row.holiday_days_ahead, day)
        if not due:
            continue
        ids = list(care_customers([grade]).values_list("pk", flat=True).iterator())
        for code, holiday_on in due:
            occasion = rules.holiday_occasion(code, holiday_on)
            greetings.extend(_Greeting(pk, grade, occasion, holiday_on, code) for pk in ids)
    return greetings


# ---------------------------------------------------------------------- visits


def _visit_category() -> str:
    """The desk category of visit tickets, made on first use (staff may change its name,
    priority and team in the admin; it is never overwritten)."""
    from patron.service.models import Category, Team

    Category.objects.get_or_create(
        slug=VISIT_CATEGORY,
        defaults={
            "name": VISIT_CATEGORY_NAME,
            "priority": "low",
            "team": Team.objects.filter(slug="frontline").first(),
            "has_sla": False,  # a task for the agent, not a customer waiting on a reply
        },
    )
    return VISIT_CATEGORY


def _visit_text(due: VisitDue, interval: int) -> tuple[str, str]:
    zh_grade, en_grade = rules.GRADE_NAMES[due.grade]
    last = due.last_visit_on.isoformat() if due.last_visit_on else "无 none"
    subject = f"定期回访 Follow-up visit ({zh_grade} {en_grade})"
    body = (
        f"按客户关怀政策，{zh_grade}每 {interval} 天回访一次（本次应于 {due.due_on} 回访；"
        f"上次回访：{last}）。请联系客户，了解近况、需求和建议，并在工单中记录结果后解决工单。\n\n"
        f"Care policy: {en_grade.lower()} customers get a follow-up visit every {interval} "
        f"days (this one due {due.due_on}; last visit: {last}). Please call the customer, "
        "ask how things are going and what they need, note what they say here, then solve "
        "the ticket."
    )
    return subject, body


def _open_visit(due: VisitDue, day: date, interval: int, counts: CareCounts) -> None:
    from patron.service.models import DedicatedAgent
    from patron.service.services import ticket_open

    occasion = rules.visit_occasion(due.due_on)
    subject, body = _visit_text(due, interval)
    try:
        with transaction.atomic():
            _serialise()
            if CareTouch.objects.filter(
                customer_id=due.customer_id, kind=rules.VISIT, occasion=occasion
            ).exists():
                counts.already += 1
                return
            ticket = ticket_open(
                customer_id=due.customer_id,
                channel="phone",
                subject=subject,
                body=body,
                category=_visit_category(),
                actor_label=ACTOR,
                auto_reply=False,
            )
            dedicated = (
                DedicatedAgent.objects.filter(customer_id=due.customer_id)
                .values_list("user_id", flat=True)
                .first()
            )
            to_dedicated = dedicated is not None and ticket.assignee_id == dedicated
            CareTouch.objects.create(
                customer_id=due.customer_id,
                kind=rules.VISIT,
                occasion=occasion,
                occasion_on=due.due_on,
                run_on=day,
                grade=due.grade,
                outcome=CareTouch.Outcome.VISIT_OPENED,
                reason=(
                    "to the dedicated agent"
                    if to_dedicated
                    else "routed by the desk (no dedicated agent for this customer)"
                    if dedicated is None
                    else "routed by the desk"
                ),
                ticket=ticket,
            )
    except IntegrityError:  # a concurrent run recorded it first: its ticket stands
        counts.already += 1
        return
    except PatronError as error:
        logger.warning("care: visit for customer %s not opened: %s", due.customer_id, error)
        counts.failed += 1
        return
    counts.visits += 1
    counts.to_dedicated_agent += int(to_dedicated)


def _visit(day: date, policy: Mapping[str, GradeMeasure]) -> CareCounts:
    due = [v for v in visit_schedule(policy, day) if v.is_due]
    counts = CareCounts(due=len(due))
    for visit in due:
        interval = policy[visit.grade].visit_interval_days
        assert interval is not None
        _open_visit(visit, day, interval, counts)
    return counts


# ---------------------------------------------------------------------- the run


def care_run(*, day: date | None = None) -> CareRunResult:
    """Greet the birthdays and holidays due on ``day`` (default: today in the merchant's time
    zone) and open the follow-up visits due by then, as the policy says now. Returns what was
    done; a second run of the same day does nothing (``done`` is 0) and reports what earlier
    runs did as ``already``. One audit entry per run that did something."""
    day = day or timezone.localdate()
    if not rules.FIRST_YEAR <= day.year < rules.LAST_YEAR:
        raise ValidationFailed(
            f"care day {day}: the holiday calendar covers {rules.FIRST_YEAR}–{rules.LAST_YEAR}"
        )
    policy = care_policy()
    result = CareRunResult(
        day=day,
        birthday=_greet(rules.BIRTHDAY, day, _birthdays_due(day, policy), policy),
        holiday=_greet(rules.HOLIDAY, day, _holidays_due(day, policy), policy),
        visit=_visit(day, policy),
    )
    if result.done:
        with transaction.atomic():
            audit_record(
                AuditEntry(
                    action="create",
                    entity_type="care.run",
                    entity_id=day.isoformat(),
                    summary=f"care for {day}: {result.birthday.messaged} birthday and "
                    f"{result.holiday.messaged} holiday greetings queued, "
                    f"{result.birthday.coupons + result.holiday.coupons} coupons, "
                    f"{result.visit.visits} visits opened",
                    changes=result.as_dict(),
                ),
                actor_label=ACTOR,
            )
    return result
