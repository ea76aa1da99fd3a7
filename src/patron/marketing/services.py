"""Writing marketing data: segments (save, refresh, snapshot), coupons (templates, issue,
redeem, void, expire, reconcile imported orders) and campaigns (create, change, schedule,
launch, cancel, finish, and the job that runs the due ones).

Every function is one transaction, except a campaign's launch: the audience is frozen in one,
then the members are reached in chunks of ``CAMPAIGN_CHUNK``, one transaction each, so that a
large audience never holds the database's write lock for minutes and a stopped launch resumes
where it stopped. Coupons are race-safe by locking (``SELECT … FOR UPDATE``
on PostgreSQL; SQLite's write transactions are serial):

* issuing locks the template row, then counts codes under the lock: two issues at once can
  never exceed the stock or a customer's limit;
* redeeming locks the template row, then the coupon row (always in that order, so no two
  transactions wait for each other in a circle): a code is redeemed once, and the discount
  given by a template's redeemed codes never exceeds its budget.

Idempotency: an issue request's ``request_key`` is stored on its codes, so a retry returns the
same codes; a redemption's ``request_key`` is stored on the coupon, so a retry returns it.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Exists, F, OuterRef, Sum
from django.utils import timezone

from patron.account.roles import CHANGE_CAMPAIGNS, CHANGE_COUPONS, CHANGE_SEGMENTS, REDEEM_COUPONS
from patron.account.services import require_permission
from patron.audit.services import AuditEntry, audit_record
from patron.commerce.models import Order, OrderLine
from patron.customer.models import Consent, Customer
from patron.errors import Conflict, NotFound, PatronError, ValidationFailed
from patron.loyalty.services import points_grant
from patron.marketing import rules
from patron.marketing.models import (
    Campaign,
    CampaignMember,
    Coupon,
    CouponTemplate,
    Segment,
    SegmentMembership,
    SegmentSnapshot,
    SegmentVersion,
    WinbackEnrolment,
    WinbackProgramme,
    WinbackRun,
)
from patron.marketing.selectors import segment_queryset, segment_rule
from patron.outbox import templates as outbox_templates
from patron.outbox.models import Message
from patron.outbox.services import message_queue
from patron.recommend.selectors import message_contexts
from patron.scoring.models import CustomerScore
from patron.workflow import locked, reason_text, transition

MAX_NAME = 120
MAX_DESCRIPTION = 500
MAX_REQUEST_KEY = 80
MAX_ISSUE = 10_000
MAX_MONEY = Decimal("999999999999.99")
_CHUNK = 500


def _username(user: Any) -> str:
    return user.get_username() if user is not None else ""


def _name(value: Any, what: str, limit: int = MAX_NAME) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if not text or "\x00" in text:
        raise ValidationFailed(f"{what}: a name is required")
    if len(text) > limit:
        raise ValidationFailed(f"{what}: at most {limit} characters")
    return text


def _request_key(value: Any, what: str) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if not text or len(text) > MAX_REQUEST_KEY or any(c.isspace() for c in text):
        raise ValidationFailed(
            f"{what}.request_key: 1 to {MAX_REQUEST_KEY} characters without spaces, "
            "the same for every retry of one request"
        )
    return text


# ---------------------------------------------------------------------- segments


def segment_save(
    *,
    user: Any,
    name: str,
    description: str = "",
    rule: Any,
    segment_id: int | None = None,
) -> Segment:
    """Create a segment, or save a new version of ``segment_id`` (name, description, rule).
    Every version is kept; the save is audited with the rule in plain words. A rule that does
    not validate is refused (422) naming the path of the mistake; a name taken by another
    segment is a conflict (409)."""
    require_permission(user, CHANGE_SEGMENTS)
    name = _name(name, "segment.name")
    description = (description or "").strip()
    if len(description) > MAX_DESCRIPTION or "\x00" in description:
        raise ValidationFailed(f"segment.description: at most {MAX_DESCRIPTION} characters")
    group = segment_rule(rule)
    stored = rules.rule_to_json(group)
    with transaction.atomic():
        taken = Segment.objects.filter(name=name)
        if segment_id is not None:
            taken = taken.exclude(pk=segment_id)
        if taken.exists():
            raise Conflict(f"a segment named {name!r} exists already", details={"name": name})
        if segment_id is None:
            try:
                with transaction.atomic():
                    segment = Segment.objects.create(
                        name=name,
                        description=description,
                        rule=stored,
                        version=1,
                        created_by=_username(user),
                        updated_by=_username(user),
                    )
            except IntegrityError:
                raise Conflict(f"a segment named {name!r} exists already") from None
            old_rule = None
        else:
            segment = locked(Segment, segment_id, "segment")
            old_rule = segment.rule
            segment.name, segment.description, segment.rule = name, description, stored
            segment.version += 1
            segment.updated_by = _username(user)
            segment.member_count, segment.evaluated_at, segment.evaluation_error = None, None, ""
            segment.save()
        SegmentVersion.objects.create(
            segment=segment,
            version=segment.version,
            name=name,
            description=description,
            rule=stored,
            created_by=_username(user),
        )
        audit_record(
            AuditEntry(
                action="create" if old_rule is None else "update",
                entity_type="marketing.segment",
                entity_id=str(segment.pk),
                summary=f"segment {name!r} v{segment.version}: {rules.describe(group)}"[:300],
                changes={"version": segment.version, "old_rule": old_rule, "rule": stored},
            ),
            actor=user,
        )
    return segment


@dataclass(frozen=True)
class RefreshResult:
    segments: int
    failed: int
    evaluated_at: datetime

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["evaluated_at"] = self.evaluated_at.isoformat()
        return data


def segments_refresh() -> RefreshResult:
    """Count every saved segment's members now and store the count and time (run after each
    scoring run; idempotent). A rule that no longer validates keeps its error instead."""
    now = timezone.now()
    failed = 0
    segments = list(Segment.objects.order_by("pk").values_list("pk", "rule"))
    for pk, rule in segments:
        try:
            count = segment_queryset(rules.validate_rule(rule)).count()
        except rules.RuleError as error:
            failed += 1
            Segment.objects.filter(pk=pk).update(
                member_count=None, evaluated_at=now, evaluation_error=str(error)[:500]
            )
            continue
        # Only the rule counted: a segment saved meanwhile keeps its own (newer) state.
        Segment.objects.filter(pk=pk, rule=rule).update(
            member_count=count, evaluated_at=now, evaluation_error=""
        )
    return RefreshResult(segments=len(segments), failed=failed, evaluated_at=now)


def segment_snapshot(*, segment_id: int, user: Any = None) -> int:
    """Freeze the segment's members now (one ``INSERT … SELECT``, no rows through Python);
    the snapshot's id. A campaign's audience is a snapshot, so it does not move under it."""
    if user is not None:
        require_permission(user, CHANGE_SEGMENTS)
    with transaction.atomic():
        segment = Segment.objects.filter(pk=segment_id).first()
        if segment is None:
            raise NotFound(f"segment {segment_id} not found", details={"segment_id": segment_id})
        group = segment_rule(segment.rule)
        snapshot = SegmentSnapshot.objects.create(
            segment=segment, version=segment.version, rule=segment.rule, taken_at=timezone.now()
        )
        members = segment_queryset(group).annotate(member_id=F("pk")).values_list("member_id")
        select_sql, params = members.query.sql_with_params()
        table = SegmentMembership._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (snapshot_id, customer_id) "
                f"SELECT %s, member.member_id FROM ({select_sql}) AS member",
                [snapshot.pk, *params],
            )
        snapshot.member_count = SegmentMembership.objects.filter(snapshot=snapshot).count()
        snapshot.save(update_fields=["member_count"])
        audit_record(
            AuditEntry(
                action="create",
                entity_type="marketing.segment_snapshot",
                entity_id=str(snapshot.pk),
                summary=f"snapshot of segment {segment.name!r} v{segment.version}: "
                f"{snapshot.member_count} members"[:300],
            ),
            actor=user,
            actor_label="" if user is not None else "marketing",
        )
    return snapshot.pk


# ---------------------------------------------------------------------- coupon templates


def _money(value: Any, what: str, *, allow_none: bool = False) -> Decimal | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool):
        raise ValidationFailed(f"{what}: expected an amount")
    try:
        amount = Decimal(str(value)).quantize(rules.CENT)
    except (InvalidOperation, ValueError, TypeError):
        raise ValidationFailed(f"{what}: expected an amount, got {value!r}") from None
    if not amount.is_finite() or abs(amount) > MAX_MONEY:
        raise ValidationFailed(f"{what}: expected an amount below {MAX_MONEY}")
    return amount


_TEMPLATE_FIELDS = (
    "name",
    "kind",
    "value",
    "min_order_amount",
    "category_ids",
    "valid_from",
    "valid_until",
    "valid_days",
    "per_customer_limit",
    "stock",
    "budget",
    "is_active",
)


def _template_values(data: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(data) - set(_TEMPLATE_FIELDS))
    if unknown:
        raise ValidationFailed(f"coupon_template.{unknown[0]}: unknown field")
    values = dict(data)
    values["name"] = _name(values.get("name"), "coupon_template.name")
    values["value"] = _money(values.get("value"), "coupon_template.value")
    values["min_order_amount"] = _money(
        values.get("min_order_amount") or 0, "coupon_template.min_order_amount"
    )
    values["budget"] = _money(values.get("budget"), "coupon_template.budget", allow_none=True)
    categories = values.get("category_ids") or []
    if not isinstance(categories, list) or not all(
        isinstance(c, int) and not isinstance(c, bool) for c in categories
    ):
        raise ValidationFailed("coupon_template.category_ids: expected a list of category ids")
    values["category_ids"] = sorted(set(categories))
    for name in ("valid_from", "valid_until"):
        moment = values.get(name)
        if moment is not None and (not isinstance(moment, datetime) or timezone.is_naive(moment)):
            raise ValidationFailed(f"coupon_template.{name}: expected a time with its zone")
        if moment is not None:  # PostgreSQL refuses offsets beyond ±15:59: store UTC
            values[name] = moment.astimezone(UTC)
    for name in ("valid_days", "per_customer_limit", "stock"):
        number = values.get(name)
        if number is not None and (isinstance(number, bool) or not isinstance(number, int)):
            raise ValidationFailed(f"coupon_template.{name}: expected a whole number")
    valid_from, valid_until = values.get("valid_from"), values.get("valid_until")
    problems = rules.template_problems(
        kind=str(values.get("kind")),
        value=values["value"],
        min_order_amount=values["min_order_amount"],
        valid_days=values.get("valid_days"),
        has_valid_until=valid_until is not None,
        valid_window_ordered=not (valid_from and valid_until and valid_until <= valid_from),
        per_customer_limit=values.get("per_customer_limit"),
        stock=values.get("stock"),
        budget=values["budget"],
    )
    if problems:
        raise ValidationFailed(f"coupon_template.{problems[0]}", details={"problems": problems})
    values["is_active"] = bool(values.get("is_active", True))
    return values


def _template_audit(user: Any, template: CouponTemplate, action: str, summary: str) -> None:
    audit_record(
        AuditEntry(
            action=action,
            entity_type="marketing.coupon_template",
            entity_id=str(template.pk),
            summary=summary[:300],
            changes={
                f: str(getattr(template, f)) if getattr(template, f) is not None else None
                for f in _TEMPLATE_FIELDS
            },
        ),
        actor=user,
    )


def coupon_template_create(*, user: Any, data: Mapping[str, Any]) -> CouponTemplate:
    """A new coupon template (audited); its terms are checked as a whole (422 naming the
    field)."""
    require_permission(user, CHANGE_COUPONS)
    values = _template_values(data)
    with transaction.atomic():
        template = CouponTemplate.objects.create(created_by=_username(user), **values)
        _template_audit(user, template, "create", f"coupon template {template.name!r} created")
    return template


def coupon_template_update(
    *, user: Any, template_id: int, changes: Mapping[str, Any]
) -> CouponTemplate:
    """Change a template's terms (audited). Codes already issued keep their expiry; the stock
    and budget cannot go below what is already issued or given."""
    require_permission(user, CHANGE_COUPONS)
    with transaction.atomic():
        template = locked(CouponTemplate, template_id, "coupon template")
        current = {f: getattr(template, f) for f in _TEMPLATE_FIELDS}
        values = _template_values({**current, **changes})
        issued = Coupon.objects.filter(template=template).count()
        if values["stock"] is not None and values["stock"] < issued:
            raise Conflict(f"coupon_template.stock: {issued} codes are issued already")
        given = _discount_given(template.pk)
        if values["budget"] is not None and values["budget"] < given:
            raise Conflict(f"coupon_template.budget: {given} has been given already")
        for name, value in values.items():
            setattr(template, name, value)
        template.save()
        changed = sorted(k for k in _TEMPLATE_FIELDS if current[k] != values[k])
        _template_audit(
            user,
            template,
            "update",
            f"coupon template {template.name!r} changed: {', '.join(changed) or 'nothing'}",
        )
    return template


def _discount_given(template_id: int) -> Decimal:
    given = Coupon.objects.filter(template_id=template_id, status=Coupon.Status.REDEEMED).aggregate(
        s=Sum("discount_amount")
    )["s"]
    return Decimal(given or 0).quantize(rules.CENT)


# ---------------------------------------------------------------------- issuing


def _expires_at(template: CouponTemplate, issued_at: datetime) -> datetime | None:
    ends = [template.valid_until] if template.valid_until else []
    if template.valid_days:
        ends.append(issued_at + timedelta(days=template.valid_days))
    return min(ends) if ends else None


def _new_codes(count: int) -> list[str]:
    """``count`` fresh codes: unique among themselves and not in use (re-drawn if they are)."""
    codes: set[str] = set()
    while len(codes) < count:
        wanted = {rules.coupon_code() for _ in range(count - len(codes))} - codes
        taken = set(Coupon.objects.filter(code__in=wanted).values_list("code", flat=True))
        codes |= wanted - taken
    return sorted(codes)


def coupons_issue(
    *,
    user: Any,
    template_id: int,
    customer_ids: Sequence[int] | None = None,
    count: int | None = None,
    reason: str,
    request_key: str,
) -> list[Coupon]:
    """Issue one code per customer in ``customer_ids`` (a customer listed twice gets two), or
    ``count`` open codes that anyone may redeem. All or nothing: refused with ``Conflict``
    naming the limit when the stock or a customer's limit would be exceeded.

    Race-safe: the template row is locked and the codes counted under the lock. Idempotent:
    a retry with the same ``request_key`` returns the codes the first request issued."""
    require_permission(user, CHANGE_COUPONS)
    reason = reason_text(reason, "coupon_issue.reason", limit=500)
    key = f"{template_id}:{_request_key(request_key, 'coupon_issue')}"
    if (customer_ids is None) == (count is None):
        raise ValidationFailed("coupon_issue: give either customer_ids or count")
    if customer_ids is not None:
        if not customer_ids or len(customer_ids) > MAX_ISSUE:
            raise ValidationFailed(f"coupon_issue.customer_ids: 1 to {MAX_ISSUE} customers")
        wanted: list[int | None] = list(customer_ids)
    else:
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_ISSUE:
            raise ValidationFailed(f"coupon_issue.count: expected 1 to {MAX_ISSUE}")
        wanted = [None] * count
    with transaction.atomic():
        template = locked(CouponTemplate, template_id, "coupon template")
        done = list(Coupon.objects.filter(issue_key=key).order_by("pk"))
        if done:
            return done
        now = timezone.now()
        if not template.is_active:
            raise Conflict(f"coupon template {template.name!r} is not active")
        if template.valid_until is not None and template.valid_until <= now:
            raise Conflict(f"coupon template {template.name!r} ended on {template.valid_until}")
        named = sorted({c for c in wanted if c is not None})
        found = set()
        for start in range(0, len(named), _CHUNK):
            found |= set(
                Customer.objects.filter(pk__in=named[start : start + _CHUNK]).values_list(
                    "pk", flat=True
                )
            )
        missing = [c for c in named if c not in found]
        if missing:
            raise NotFound(f"customers not found: {', '.join(map(str, missing[:10]))}")
        before: dict[int, int] = {}
        for start in range(0, len(named), _CHUNK):
            rows = (
                Coupon.objects.filter(
                    template=template, customer_id__in=named[start : start + _CHUNK]
                )
                .exclude(status=Coupon.Status.VOID)
                .values("customer_id")
                .annotate(n=Count("pk"))
            )
            before.update({r["customer_id"]: r["n"] for r in rows})
        problems = rules.issue_plan(
            customer_ids=wanted,
            issued_before=before,
            per_customer_limit=template.per_customer_limit,
            stock=template.stock,
            issued_total=Coupon.objects.filter(template=template).count(),
        )
        if problems:
            raise Conflict(f"coupon_issue.{problems[0]}", details={"problems": problems})
        expires_at = _expires_at(template, now)
        coupons = Coupon.objects.bulk_create(
            Coupon(
                code=code,
                template=template,
                customer_id=customer_id,
                issued_at=now,
                expires_at=expires_at,
                issue_key=key,
                issued_by=user,
            )
            for code, customer_id in zip(_new_codes(len(wanted)), wanted, strict=True)
        )
        audit_record(
            AuditEntry(
                action="create",
                entity_type="marketing.coupon_issue",
                entity_id=str(template.pk),
                customer_id=wanted[0] if len(wanted) == 1 else None,
                summary=f"{len(coupons)} coupon(s) of {template.name!r} issued: {reason}"[:300],
                changes={"request_key": key, "count": len(coupons), "reason": reason},
            ),
            actor=user,
        )
    return list(Coupon.objects.filter(issue_key=key).order_by("pk"))


# ---------------------------------------------------------------------- redeeming


def _refuse(code: str, why: str, **details: Any) -> Conflict:
    return Conflict(f"coupon {code}: {why}", details={"code": code, "reason": why, **details})


def _check_redeemable(
    coupon: Coupon,
    template: CouponTemplate,
    *,
    customer_id: int,
    order_total: Decimal,
    category_ids: Iterable[int] | None,
    now: datetime,
) -> Decimal:
    """The discount, or ``Conflict`` naming why this coupon cannot pay for this order."""
    code = coupon.code
    if coupon.status != Coupon.Status.ISSUED:
        raise _refuse(code, f"it is {coupon.status}", status=coupon.status)
    if coupon.expires_at is not None and coupon.expires_at <= now:
        raise _refuse(code, f"it expired at {coupon.expires_at.isoformat()}")
    if template.valid_from is not None and now < template.valid_from:
        raise _refuse(code, f"it is valid from {template.valid_from.isoformat()}")
    if coupon.customer_id is not None and coupon.customer_id != customer_id:
        raise _refuse(code, "it was issued to another customer")
    if order_total < template.min_order_amount:
        raise _refuse(
            code,
            f"the order total {order_total} is below the threshold {template.min_order_amount}",
        )
    if template.category_ids and (
        category_ids is None or not set(category_ids) & set(template.category_ids)
    ):
        raise _refuse(code, "the order has no line in the coupon's categories")
    if coupon.customer_id is None and template.per_customer_limit is not None:
        used = Coupon.objects.filter(
            template=template, customer_id=customer_id, status=Coupon.Status.REDEEMED
        ).count()
        if used >= template.per_customer_limit:
            raise _refuse(
                code, f"the customer has used {used} coupon(s) of this template (the limit)"
            )
    discount = rules.coupon_discount(template.kind, template.value, order_total)
    if template.budget is not None:
        given = _discount_given(template.pk)
        if given + discount > template.budget:
            raise _refuse(
                code,
                f"the budget of {template.budget} would be exceeded ({given} given, "
                f"{discount} asked)",
                budget=str(template.budget),
                given=str(given),
            )
    return discount


def coupon_redeem(
    *,
    user: Any,
    code: str,
    order_total: Decimal,
    customer_id: int,
    request_key: str,
    order_reference: str = "",
    category_ids: Sequence[int] | None = None,
) -> Coupon:
    """Redeem ``code`` on an order of ``order_total`` by ``customer_id``: the discount
    (Decimal to the cent; a percentage never more than the order) is recorded on the coupon.

    Refused with ``Conflict`` naming the reason (already used, expired, void, another
    customer's, below the threshold, outside the categories, over the budget); nothing is
    written then. Race-safe: template row then coupon row locked, the budget summed under the
    template's lock. Idempotent per ``request_key``: a retry returns the redeemed coupon."""
    require_permission(user, REDEEM_COUPONS)
    key = _request_key(request_key, "coupon_redeem")
    total = _money(order_total, "coupon_redeem.order_total")
    assert total is not None
    if total < 0:
        raise ValidationFailed("coupon_redeem.order_total: expected 0 or more")
    code = (code or "").strip().upper()
    found = Coupon.objects.filter(code=code).values_list("pk", "template_id").first()
    if found is None:
        raise NotFound(f"coupon {code!r} not found", details={"code": code})
    with transaction.atomic():
        template = locked(CouponTemplate, found[1], "coupon template")
        coupon = locked(Coupon, found[0], "coupon")
        if coupon.status == Coupon.Status.REDEEMED and coupon.redeem_key == key:
            if coupon.customer_id != customer_id or coupon.order_total != total:
                raise _refuse(code, f"request key {request_key!r} redeemed it for another order")
            return coupon
        if not Customer.objects.filter(pk=customer_id).exists():
            raise NotFound(
                f"customer {customer_id} not found", details={"customer_id": customer_id}
            )
        now = timezone.now()
        discount = _check_redeemable(
            coupon,
            template,
            customer_id=customer_id,
            order_total=total,
            category_ids=category_ids,
            now=now,
        )
        coupon.status = transition(rules.coupon_next, coupon.status, "redeem")
        coupon.customer_id = customer_id
        coupon.redeemed_at = now
        coupon.order_total = total
        coupon.discount_amount = discount
        coupon.redeem_key = key
        coupon.order_reference = (order_reference or "")[:100]
        coupon.save()
        _coupon_audit(user, coupon, f"coupon {code} redeemed: {discount} off {total}")
    return coupon


def _coupon_audit(user: Any, coupon: Coupon, summary: str, label: str = "coupons") -> None:
    audit_record(
        AuditEntry(
            action="update",
            entity_type="marketing.coupon",
            entity_id=coupon.code,
            customer_id=coupon.customer_id,
            summary=summary[:300],
            changes={
                "status": coupon.status,
                "discount_amount": str(coupon.discount_amount)
                if coupon.discount_amount is not None
                else None,
                "order_total": str(coupon.order_total) if coupon.order_total is not None else None,
                "order_id": coupon.order_id,
                "order_reference": coupon.order_reference,
            },
        ),
        actor=user,
        actor_label="" if user is not None else label,
    )


def coupon_void(*, user: Any, code: str, reason: str) -> Coupon:
    """Void an issued code (it can no longer be redeemed); audited with the reason. A used,
    expired or void code is refused (409)."""
    require_permission(user, CHANGE_COUPONS)
    reason = reason_text(reason, "coupon_void.reason", limit=500)
    code = (code or "").strip().upper()
    found = Coupon.objects.filter(code=code).values_list("pk", flat=True).first()
    if found is None:
        raise NotFound(f"coupon {code!r} not found", details={"code": code})
    with transaction.atomic():
        coupon = locked(Coupon, found, "coupon")
        coupon.status = transition(rules.coupon_next, coupon.status, "void")
        coupon.ended_reason = reason
        coupon.save(update_fields=["status", "ended_reason"])
        _coupon_audit(user, coupon, f"coupon {code} void: {reason}")
    return coupon


# ---------------------------------------------------------------------- batch jobs


@dataclass(frozen=True)
class ReconcileResult:
    redeemed: int = 0
    skipped: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _order_categories(order_id: int) -> set[int]:
    return set(
        OrderLine.objects.filter(order_id=order_id, product__category__isnull=False).values_list(
            "product__category_id", flat=True
        )
    )


def coupons_reconcile_imports() -> ReconcileResult:
    """Imported orders that carry an issued coupon's code mark it redeemed, linked to the
    order, with the order's own discount (the shop's checkout already applied it; our
    computation when the order has none). Idempotent: a coupon or an order already linked is
    skipped. Codes the order's customer may not use (another customer's, expired, void,
    below the threshold) are skipped and counted; the budget is not checked here: the money
    was already given, and the template's page shows it."""
    linked = Coupon.objects.filter(order=OuterRef("pk"))
    issued = Coupon.objects.filter(code=OuterRef("coupon_code"), status=Coupon.Status.ISSUED)
    candidates = list(
        Order.objects.exclude(coupon_code="")
        .exclude(status=Order.Status.CANCELLED)
        .filter(~Exists(linked), Exists(issued))
        .order_by("placed_at", "pk")
        .values_list("pk", "coupon_code", "customer_id", "total_amount", "discount_amount")
    )
    redeemed = skipped = 0
    for order_id, code, customer_id, total, order_discount in candidates:
        with transaction.atomic():
            template_id = (
                Coupon.objects.filter(code=code).values_list("template_id", flat=True).first()
            )
            if template_id is None:  # the code vanished meanwhile (codes are never deleted)
                skipped += 1
                continue
            template = locked(CouponTemplate, template_id, "coupon template")
            coupon = Coupon.objects.select_for_update().get(code=code)
            if (
                coupon.status != Coupon.Status.ISSUED
                or Coupon.objects.filter(order_id=order_id).exists()
            ):
                skipped += 1
                continue
            order = Order.objects.get(pk=order_id)
            moment = order.paid_at or order.placed_at
            ok = (
                (coupon.customer_id is None or coupon.customer_id == customer_id)
                and (coupon.expires_at is None or moment < coupon.expires_at)
                and total + (order_discount or 0) >= template.min_order_amount
                and (
                    not template.category_ids
                    or bool(_order_categories(order_id) & set(template.category_ids))
                )
            )
            if not ok:
                skipped += 1
                continue
            gross = total + (order_discount or 0)
            discount = (
                Decimal(order_discount).quantize(rules.CENT)
                if order_discount
                else rules.coupon_discount(template.kind, template.value, gross)
            )
            coupon.status = transition(rules.coupon_next, coupon.status, "redeem")
            coupon.customer_id = customer_id
            coupon.redeemed_at = moment
            coupon.order_id = order_id
            coupon.order_reference = order.external_id
            coupon.order_total = gross
            coupon.discount_amount = discount
            coupon.redeem_key = f"order:{order_id}"
            coupon.save()
            _coupon_audit(
                None, coupon, f"coupon {code} redeemed by imported order {order.external_id}"
            )
            redeemed += 1
    return ReconcileResult(redeemed=redeemed, skipped=skipped)


def coupons_expire(*, now: datetime | None = None) -> int:
    """Mark every issued code whose expiry has come as expired (one UPDATE); how many.
    Idempotent."""
    now = now or timezone.now()
    with transaction.atomic():
        due = Coupon.objects.filter(status=Coupon.Status.ISSUED, expires_at__lte=now)
        count = due.update(status=Coupon.Status.EXPIRED, ended_reason="expired")
        if count:
            audit_record(
                AuditEntry(
                    action="update",
                    entity_type="marketing.coupon_expiry",
                    summary=f"{count} coupon(s) expired as of {now.isoformat()}",
                    changes={"count": count, "as_of": now.isoformat()},
                ),
                actor_label="coupon expiry",
            )
    return count


# ---------------------------------------------------------------------- campaigns

CAMPAIGN_CHUNK = 500
MAX_TITLE = 120
MAX_MESSAGE_TEXT = 2000
MAX_GIFT_TEXT = 200
MAX_SEED = 2**63 - 1
MAX_TARGET = Decimal("1000000000")
#: The frequency cap when the plan names none: at most 2 marketing messages in 7 days.
DEFAULT_CAP_MESSAGES, DEFAULT_CAP_DAYS = 2, 7
#: What a campaign's message template may use: ``$title``, ``$text`` (the campaign's text with
#: its ``{coupon_code}``, ``{points}`` and ``{gift}`` filled in), ``$offer``, …
CAMPAIGN_CONTEXT_KEYS = frozenset(
    {"title", "text", "offer", "coupon_code", "points", "gift", "recommended"}
)
_SENT_OR_GOING = (Message.Status.QUEUED, Message.Status.SENDING, Message.Status.SENT)

_CAMPAIGN_FIELDS = (
    "name",
    "description",
    "goal_metric",
    "target_value",
    "period_start",
    "period_end",
    "segment_id",
    "holdout_share",
    "seed",
    "offer_kind",
    "coupon_template_id",
    "points",
    "gift_text",
    "channels",
    "message_template",
    "message_title",
    "message_text",
    "send_at",
    "budget",
    "unit_cost",
    "frequency_cap_messages",
    "frequency_cap_days",
)


def _moment(value: Any, what: str, *, required: bool) -> datetime | None:
    if value is None and not required:
        return None
    if not isinstance(value, datetime) or timezone.is_naive(value):
        raise ValidationFailed(f"{what}: expected a time with its zone")
    return value.astimezone(UTC)


def _whole_or_none(value: Any, what: str, *, low: int, high: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationFailed(f"{what}: expected a whole number from {low} to {high}")
    return value


def _campaign_text(value: Any, what: str, limit: int, *, required: bool = True) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if "\x00" in text:
        raise ValidationFailed(f"{what}: must not contain NUL")
    if required and not text:
        raise ValidationFailed(f"{what}: required")
    if len(text) > limit:
        raise ValidationFailed(f"{what}: at most {limit} characters")
    return text


def _message_template(name: Any) -> str:
    if not isinstance(name, str) or not name.startswith("marketing."):
        raise ValidationFailed("campaign.message_template: use a marketing.* message template")
    try:
        template = outbox_templates.template_get(name)
    except outbox_templates.TemplateError as error:
        raise ValidationFailed(f"campaign.message_template: {error}") from None
    missing = sorted(set(template.context_keys()) - CAMPAIGN_CONTEXT_KEYS)
    if missing:
        raise ValidationFailed(
            f"campaign.message_template: {name} needs {missing[0]!r}, which a campaign does "
            f"not fill (it fills {', '.join(sorted(CAMPAIGN_CONTEXT_KEYS))})"
        )
    return name


def _campaign_values(data: Mapping[str, Any]) -> dict[str, Any]:
    """The campaign's plan checked field by field, then as a whole (422 naming the field;
    404 for an unknown segment or coupon template)."""
    unknown = sorted(set(data) - set(_CAMPAIGN_FIELDS))
    if unknown:
        raise ValidationFailed(f"campaign.{unknown[0]}: unknown field")
    values: dict[str, Any] = {
        "name": _name(data.get("name"), "campaign.name"),
        "description": _campaign_text(
            data.get("description"), "campaign.description", MAX_DESCRIPTION, required=False
        ),
        "goal_metric": str(data.get("goal_metric") or ""),
        "period_start": _moment(data.get("period_start"), "campaign.period_start", required=True),
        "period_end": _moment(data.get("period_end"), "campaign.period_end", required=True),
        "send_at": _moment(data.get("send_at"), "campaign.send_at", required=False),
        "offer_kind": str(data.get("offer_kind") or ""),
        "points": _whole_or_none(data.get("points"), "campaign.points", low=1, high=1_000_000),
        "gift_text": _campaign_text(
            data.get("gift_text"), "campaign.gift_text", MAX_GIFT_TEXT, required=False
        ),
        "message_template": _message_template(
            data.get("message_template") or "marketing.announcement"
        ),
        "message_title": _campaign_text(data.get("message_title"), "campaign.message_title", MAX_TITLE),
        "message_text": _campaign_text(
            data.get("message_text"), "campaign.message_text", MAX_MESSAGE_TEXT
        ),
        "budget": _money(data.get("budget"), "campaign.budget", allow_none=True),
        "unit_cost": _money(data.get("unit_cost"), "campaign.unit_cost", allow_none=True),
        "frequency_cap_messages": _whole_or_none(
            data.get("frequency_cap_messages", DEFAULT_CAP_MESSAGES),
            "campaign.frequency_cap_messages", low=0, high=1000,
        ),
        "frequency_cap_days": _whole_or_none(
            data.get("frequency_cap_days", DEFAULT_CAP_DAYS), "campaign.frequency_cap_days",
            low=0, high=366,
        ),
    }  # fmt: skip
    target = data.get("target_value")
    if target is not None:
        try:
            target = Decimal(str(target)).quantize(Decimal("0.0001"))
        except (InvalidOperation, ValueError):
            raise ValidationFailed("campaign.target_value: expected a number") from None
        if isinstance(data.get("target_value"), bool) or abs(target) > MAX_TARGET:
            raise ValidationFailed("campaign.target_value: expected a number")
    values["target_value"] = target
    share = data.get("holdout_share", rules.DEFAULT_HOLDOUT_SHARE)
    try:
        values["holdout_share"] = Decimal(str(share)).quantize(Decimal("0.001"))
    except (InvalidOperation, ValueError):
        raise ValidationFailed("campaign.holdout_share: expected a number from 0 to 0.5") from None
    seed = data.get("seed")
    values["seed"] = (
        secrets.randbelow(2**31)
        if seed is None
        else _whole_or_none(seed, "campaign.seed", low=0, high=MAX_SEED)
    )
    channels = data.get("channels") or []
    if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
        raise ValidationFailed("campaign.channels: expected a list of channels")
    values["channels"] = list(channels)
    segment_id = data.get("segment_id")
    if isinstance(segment_id, bool) or not isinstance(segment_id, int):
        raise ValidationFailed("campaign.segment_id: expected a segment id")
    if not Segment.objects.filter(pk=segment_id).exists():
        raise NotFound(f"segment {segment_id} not found", details={"segment_id": segment_id})
    values["segment_id"] = segment_id
    template_id = data.get("coupon_template_id")
    template = None
    if template_id is not None:
        if isinstance(template_id, bool) or not isinstance(template_id, int):
            raise ValidationFailed("campaign.coupon_template_id: expected a template id")
        template = CouponTemplate.objects.filter(pk=template_id).first()
        if template is None:
            raise NotFound(f"coupon template {template_id} not found")
    values["coupon_template_id"] = template_id
    start, end, send_at = values["period_start"], values["period_end"], values["send_at"]
    problems = rules.campaign_problems(
        goal_metric=values["goal_metric"],
        period_ordered=end > start,
        holdout_share=values["holdout_share"],
        offer_kind=values["offer_kind"],
        has_coupon_template=template is not None,
        points=values["points"],
        gift_text=values["gift_text"],
        channels=values["channels"],
        send_at_in_period=send_at is None or send_at < end,
        budget=values["budget"],
        unit_cost=values["unit_cost"],
        effective_unit_cost=rules.offer_unit_cost(
            offer_kind=values["offer_kind"],
            unit_cost=values["unit_cost"],
            coupon_kind=template.kind if template else None,
            coupon_value=template.value if template else None,
        ),
        frequency_cap_messages=values["frequency_cap_messages"],
        frequency_cap_days=values["frequency_cap_days"],
    )
    if problems:
        raise ValidationFailed(f"campaign.{problems[0]}", details={"problems": problems})
    return values


def _campaign_audit(
    user: Any, campaign: Campaign, action: str, summary: str, **changes: Any
) -> None:
    audit_record(
        AuditEntry(
            action=action,
            entity_type="marketing.campaign",
            entity_id=str(campaign.pk),
            summary=summary[:300],
            changes={"status": campaign.status, **changes},
        ),
        actor=user,
        actor_label="" if user is not None else "campaigns",
    )


def _plain_values(values: Mapping[str, Any]) -> dict[str, Any]:
    return {
        k: v.isoformat() if isinstance(v, datetime) else str(v) if isinstance(v, Decimal) else v
        for k, v in values.items()
    }


def campaign_create(*, user: Any, data: Mapping[str, Any]) -> Campaign:
    """A new campaign, in draft (audited). The plan is checked as a whole: 422 naming the
    field, 404 for an unknown segment or coupon template. Without a ``seed`` one is drawn and
    recorded, so the holdout can be drawn again identically."""
    require_permission(user, CHANGE_CAMPAIGNS)
    values = _campaign_values(data)
    with transaction.atomic():
        campaign = Campaign.objects.create(created_by=user, **values)
        _campaign_audit(
            user, campaign, "create", f"campaign {campaign.name!r} created",
            plan=_plain_values(values),
        )  # fmt: skip
    return campaign


def campaign_update(*, user: Any, campaign_id: int, changes: Mapping[str, Any]) -> Campaign:
    """Change a draft campaign's plan (audited); any other status is refused (409)."""
    require_permission(user, CHANGE_CAMPAIGNS)
    with transaction.atomic():
        campaign = locked(Campaign, campaign_id, "campaign")
        if campaign.status != Campaign.Status.DRAFT:
            raise Conflict(
                f"campaign {campaign_id} is {campaign.status}: only a draft can be changed",
                details={"status": campaign.status},
            )
        current = {f: getattr(campaign, f) for f in _CAMPAIGN_FIELDS}
        values = _campaign_values({**current, **changes})
        for name, value in values.items():
            setattr(campaign, name, value)
        campaign.save()
        changed = sorted(k for k in _CAMPAIGN_FIELDS if current[k] != values[k])
        _campaign_audit(
            user, campaign, "update",
            f"campaign {campaign.name!r} changed: {', '.join(changed) or 'nothing'}",
            changed=changed,
        )  # fmt: skip
    return campaign


def campaign_schedule(*, user: Any, campaign_id: int, now: datetime | None = None) -> Campaign:
    """Schedule a draft for its ``send_at``: the campaign job launches it then, as the user
    who scheduled it (audited). 409 without a send time, or when the period is over."""
    require_permission(user, CHANGE_CAMPAIGNS)
    now = now or timezone.now()
    with transaction.atomic():
        campaign = locked(Campaign, campaign_id, "campaign")
        status = transition(rules.campaign_next, campaign.status, "schedule")
        if campaign.send_at is None:
            raise Conflict(
                f"campaign {campaign_id} has no send time: set send_at, or launch it now"
            )
        if campaign.period_end <= now:
            raise Conflict(f"campaign {campaign_id}: its period ended at {campaign.period_end}")
        campaign.status, campaign.scheduled_by = status, user
        campaign.save(update_fields=["status", "scheduled_by", "updated_at"])
        _campaign_audit(
            user, campaign, "update",
            f"campaign {campaign.name!r} scheduled for {campaign.send_at.isoformat()}",
        )  # fmt: skip
    return campaign


def _freeze_audience(campaign: Campaign, now: datetime) -> None:
    """The segment's members now become the campaign's members, each in the group drawn with
    the campaign's seed; holdout members are marked as such at once (they get nothing)."""
    if CampaignMember.objects.filter(campaign=campaign).exists():
        return
    snapshot_id = segment_snapshot(segment_id=campaign.segment_id)
    customer_ids = list(
        SegmentMembership.objects.filter(snapshot_id=snapshot_id)
        .order_by("customer_id")
        .values_list("customer_id", flat=True)
    )
    held_out = rules.holdout_assign(customer_ids, campaign.holdout_share, campaign.seed)
    CampaignMember.objects.bulk_create(
        (
            CampaignMember(
                campaign=campaign,
                customer_id=customer_id,
                group=CampaignMember.Group.HOLDOUT
                if customer_id in held_out
                else CampaignMember.Group.TREATMENT,
                outcome=CampaignMember.Outcome.HOLDOUT
                if customer_id in held_out
                else CampaignMember.Outcome.PENDING,
                processed_at=now if customer_id in held_out else None,
            )
            for customer_id in customer_ids
        ),
        batch_size=1000,
    )
    campaign.snapshot_id = snapshot_id


def _acting_user(user: Any, campaign: Campaign) -> Any:
    """Who issues the offers: the person launching, else (the job) whoever scheduled or
    created the campaign, whose permission is checked again now."""
    acting = user or campaign.scheduled_by or campaign.created_by
    if acting is not None and user is None:
        require_permission(acting, CHANGE_CAMPAIGNS)
    if acting is None and campaign.offer_kind == rules.OfferKind.COUPON:
        raise Conflict(f"campaign {campaign.pk} has nobody to issue its coupons as")
    return acting


def _check_launchable(campaign: Campaign, now: datetime) -> None:
    if campaign.period_end <= now:
        raise Conflict(f"campaign {campaign.pk}: its period ended at {campaign.period_end}")
    template = campaign.coupon_template
    if template is not None:
        if not template.is_active:
            raise Conflict(f"campaign {campaign.pk}: coupon template {template.name!r} is off")
        if template.valid_until is not None and template.valid_until <= now:
            raise Conflict(
                f"campaign {campaign.pk}: coupon template {template.name!r} ended on "
                f"{template.valid_until}"
            )


def campaign_launch(*, user: Any, campaign_id: int, now: datetime | None = None) -> Campaign:
    """Launch a draft or scheduled campaign now: freeze the audience (a segment snapshot, one
    ``CampaignMember`` per customer), draw the holdout with the recorded seed, then for each
    treatment member check marketing consent on the campaign's channels, the frequency cap
    (marketing messages in the outbox over the last D days) and the budget, issue the offer
    (coupon codes through ``coupons_issue``, points through ``points_grant``) and queue the
    message through the outbox. Skipped members keep the reason; holdout members get nothing.

    Members are processed in chunks of ``CAMPAIGN_CHUNK``, each chunk one transaction with
    bulk reads (consent, addresses, recent messages, coupons held) and bulk writes. Launching
    a running campaign again resumes with the members not processed yet, so nobody is sent
    twice (the outbox key ``marketing.campaign:{id}:{customer}`` guards it as well); a
    finished or cancelled campaign is refused (409). ``user`` None: the campaign job, acting
    as the user who scheduled the campaign."""
    if user is not None:
        require_permission(user, CHANGE_CAMPAIGNS)
    now = now or timezone.now()
    with transaction.atomic():
        campaign = locked(Campaign, campaign_id, "campaign")
        action = "resume" if campaign.status == Campaign.Status.RUNNING else "launch"
        status = transition(rules.campaign_next, campaign.status, action)
        acting = _acting_user(user, campaign)
        if action == "launch":
            _check_launchable(campaign, now)
            _freeze_audience(campaign, now)
            campaign.status, campaign.launched_at = status, now
            campaign.launched_by = _username(user) or f"job (as {_username(acting)})"
            campaign.save()
            counts = dict(
                CampaignMember.objects.filter(campaign=campaign)
                .values_list("group")
                .annotate(n=Count("pk"))
                .values_list("group", "n")
            )
            _campaign_audit(
                user, campaign, "update",
                f"campaign {campaign.name!r} launched: {counts.get('treatment', 0)} treated, "
                f"{counts.get('holdout', 0)} held out (seed {campaign.seed})",
                members=counts, seed=campaign.seed, snapshot=campaign.snapshot_id,
            )  # fmt: skip
    while True:
        with transaction.atomic():
            campaign = locked(Campaign, campaign_id, "campaign")
            if campaign.status != Campaign.Status.RUNNING:
                break
            members = list(
                CampaignMember.objects.filter(
                    campaign=campaign,
                    group=CampaignMember.Group.TREATMENT,
                    outcome=CampaignMember.Outcome.PENDING,
                ).order_by("pk")[:CAMPAIGN_CHUNK]
            )
            if not members:
                break
            _process_members(campaign, members, acting=acting, now=now)
    return Campaign.objects.get(pk=campaign_id)


def _latest_marketing_consent(
    customer_ids: Sequence[int], channels: Sequence[str]
) -> dict[int, dict[str, bool]]:
    latest: dict[int, dict[str, bool]] = {c: {} for c in customer_ids}
    rows = (
        Consent.objects.filter(
            customer_id__in=customer_ids,
            purpose=Consent.Purpose.MARKETING,
            channel__in=list(channels),
        )
        .order_by("customer_id", "channel", "-recorded_at", "-id")
        .values_list("customer_id", "channel", "is_granted")
    )
    for customer_id, channel, is_granted in rows:
        latest[customer_id].setdefault(channel, is_granted)
    return latest


def _reachable(customer_ids: Sequence[int], channels: Sequence[str]) -> dict[int, set[str]]:
    """Channels each customer has an address on (by the lookup hashes: nothing decrypted)."""
    found: dict[int, set[str]] = {c: set() for c in customer_ids}
    rows = Customer.objects.filter(pk__in=customer_ids).values_list(
        "pk", "status", "email_hash", "phone_hash"
    )
    for pk, status, email_hash, phone_hash in rows:
        if status == Customer.Status.ERASED:
            continue
        has = {"email": bool(email_hash), "phone": bool(phone_hash), "": True}
        found[pk] = {c for c in channels if has[rules.CHANNEL_NEEDS.get(c, "")]}
    return found


def _recent_marketing_messages(customer_ids: Sequence[int], since: datetime) -> dict[int, int]:
    rows = (
        Message.objects.filter(
            customer_id__in=customer_ids,
            purpose=Consent.Purpose.MARKETING,
            created_at__gte=since,
            status__in=_SENT_OR_GOING,
        )
        .values("customer_id")
        .annotate(n=Count("pk"))
    )
    return {r["customer_id"]: r["n"] for r in rows}


def _offer_text(campaign: Campaign, coupon: Coupon | None) -> str:
    if coupon is not None:
        template = coupon.template
        value = f"¥{template.value}" if template.kind == "amount_off" else f"{template.value}%"
        until = f", valid until {coupon.expires_at:%Y-%m-%d}" if coupon.expires_at else ""
        return f"{coupon.code} ({value} off from ¥{template.min_order_amount}{until})"
    if campaign.offer_kind == rules.OfferKind.POINTS:
        return f"{campaign.points} points"
    if campaign.offer_kind == rules.OfferKind.GIFT:
        return campaign.gift_text
    return ""


def _message_context(
    campaign: Campaign, coupon: Coupon | None, recommended: str = ""
) -> dict[str, str]:
    """What a member's message is filled with; ``recommended`` names the products suggested
    for them (``patron.recommend``), for ``{recommended}`` in the text or ``$recommended``."""
    code = coupon.code if coupon is not None else ""
    points = str(campaign.points or "")
    text = (
        campaign.message_text.replace("{coupon_code}", code)
        .replace("{points}", points)
        .replace("{gift}", campaign.gift_text)
        .replace("{recommended}", recommended)
    )
    if code and "{coupon_code}" not in campaign.message_text:
        text = f"{text.rstrip()}\n券码 Code: {code}"
    return {
        "title": campaign.message_title,
        "text": text,
        "offer": _offer_text(campaign, coupon),
        "coupon_code": code,
        "points": points,
        "gift": campaign.gift_text,
        "recommended": recommended,
    }


def _process_members(
    campaign: Campaign, members: list[CampaignMember], *, acting: Any, now: datetime
) -> None:
    """One chunk of treatment members: decide, issue the offers, queue the messages, record."""
    outcome = CampaignMember.Outcome
    ids = [m.customer_id for m in members]
    channels = list(campaign.channels)
    consents = _latest_marketing_consent(ids, channels)
    reachable = _reachable(ids, channels)
    cap, cap_days = campaign.frequency_cap_messages, campaign.frequency_cap_days
    recent = (
        _recent_marketing_messages(ids, now - timedelta(days=cap_days))
        if cap is not None and cap_days is not None
        else {}
    )
    template = campaign.coupon_template
    held: dict[int, int] = {}
    stock_left: int | None = None
    if template is not None:
        rows = (
            Coupon.objects.filter(template=template, customer_id__in=ids)
            .exclude(status=Coupon.Status.VOID)
            .values("customer_id")
            .annotate(n=Count("pk"))
        )
        held = {r["customer_id"]: r["n"] for r in rows}
        if template.stock is not None:
            stock_left = template.stock - Coupon.objects.filter(template=template).count()
    unit = rules.offer_unit_cost(
        offer_kind=campaign.offer_kind,
        unit_cost=campaign.unit_cost,
        coupon_kind=template.kind if template else None,
        coupon_value=template.value if template else None,
    ).quantize(rules.CENT)
    spent = Decimal(campaign.spent)
    chosen: dict[int, str] = {}
    for member in members:
        customer_id = member.customer_id
        channel, skipped = rules.choose_channel(
            channels, granted=consents[customer_id], reachable=reachable[customer_id]
        )
        member.processed_at = now
        if skipped:
            member.outcome = skipped
            member.reason = (
                f"no marketing consent on {', '.join(channels)}"
                if skipped == outcome.NO_CONSENT
                else f"consent, but no address on {', '.join(channels)}"
            )
        elif cap is not None and recent.get(customer_id, 0) >= cap:
            member.outcome = outcome.CAPPED
            member.reason = (
                f"{recent[customer_id]} marketing message(s) in the last {cap_days} days "
                f"(the cap is {cap})"
            )
        elif (
            template is not None
            and template.per_customer_limit is not None
            and held.get(customer_id, 0) >= template.per_customer_limit
        ):
            member.outcome = outcome.COUPON_LIMIT
            member.reason = f"holds {held[customer_id]} coupon(s) of {template.name!r} already"
        elif stock_left is not None and stock_left <= 0:
            member.outcome = outcome.OUT_OF_STOCK
            member.reason = f"coupon template {template.name!r} has no stock left"  # type: ignore[union-attr]
        elif not rules.budget_allows(spent=spent, next_cost=unit, budget=campaign.budget):
            member.outcome = outcome.OVER_BUDGET
            member.reason = f"{spent} of the budget {campaign.budget} spent; an offer costs {unit}"
        else:
            chosen[customer_id] = channel
            spent += unit
            member.cost = unit
            member.channel = channel
            if stock_left is not None:
                stock_left -= 1
    eligible = [m for m in members if m.customer_id in chosen]
    coupons: dict[int, Coupon] = {}
    if eligible and template is not None:
        issued = coupons_issue(
            user=acting,
            template_id=template.pk,
            customer_ids=[m.customer_id for m in eligible],
            reason=f"campaign {campaign.pk} {campaign.name}"[:500],
            request_key=f"campaign-{campaign.pk}-{eligible[0].pk}-{eligible[-1].pk}",
        )
        coupons = {c.customer_id: c for c in issued if c.customer_id is not None}
    entries: dict[int, Any] = {}
    if eligible and campaign.offer_kind == rules.OfferKind.POINTS and campaign.points:
        entries = points_grant(
            customer_ids=[m.customer_id for m in eligible],
            points=campaign.points,
            reason=f"campaign {campaign.pk} {campaign.name}"[:500],
            key=f"campaign:{campaign.pk}",
            source_type="campaign",
            source_id=campaign.pk,
            user=acting,
            actor_label="campaigns",
        )
    suggested = message_contexts([m.customer_id for m in eligible]) if eligible else {}
    for member in eligible:
        coupon = coupons.get(member.customer_id)
        if coupon is not None:
            coupon.template = template  # type: ignore[assignment]
        recommended = suggested.get(member.customer_id, {}).get("recommended", "")
        message = message_queue(
            customer_id=member.customer_id,
            template=campaign.message_template,
            purpose=Consent.Purpose.MARKETING,
            context=_message_context(campaign, coupon, recommended),
            channel=chosen[member.customer_id],
            key=f"marketing.campaign:{campaign.pk}:{member.customer_id}",
            source=f"marketing.campaign:{campaign.pk}",
        )
        member.message = message
        member.coupon = coupon
        entry = entries.get(member.customer_id)
        member.points_entry_id = entry.pk if entry is not None else None
        if message.status == Message.Status.SUPPRESSED:
            member.outcome, member.reason = outcome.SUPPRESSED, message.reason[:500]
        else:
            member.outcome, member.reason = outcome.MESSAGED, ""
    CampaignMember.objects.bulk_update(
        members,
        [
            "outcome",
            "reason",
            "channel",
            "message",
            "coupon",
            "points_entry",
            "cost",
            "processed_at",
        ],
        batch_size=CAMPAIGN_CHUNK,
    )
    campaign.spent = spent
    campaign.save(update_fields=["spent", "updated_at"])


def _close_pending(campaign: Campaign, reason: str, now: datetime) -> int:
    """Treatment members not reached yet will not be: ``not_sent`` (they stay in the
    treatment group for the evaluation: intention to treat)."""
    return CampaignMember.objects.filter(
        campaign=campaign, outcome=CampaignMember.Outcome.PENDING
    ).update(outcome=CampaignMember.Outcome.NOT_SENT, reason=reason[:500], processed_at=now)


def campaign_cancel(
    *, user: Any, campaign_id: int, reason: str, now: datetime | None = None
) -> Campaign:
    """Cancel a draft, scheduled or running campaign (audited with the reason). A running
    campaign stops sending: members not reached yet are marked ``not_sent``; messages already
    queued go out (cancel them in the outbox if they must not). 409 once finished."""
    if user is not None:
        require_permission(user, CHANGE_CAMPAIGNS)
    reason = reason_text(reason, "campaign_cancel.reason", limit=500)
    now = now or timezone.now()
    with transaction.atomic():
        campaign = locked(Campaign, campaign_id, "campaign")
        campaign.status = transition(rules.campaign_next, campaign.status, "cancel")
        campaign.cancelled_at, campaign.cancel_reason = now, reason
        campaign.save()
        closed = _close_pending(campaign, f"the campaign was cancelled: {reason}", now)
        _campaign_audit(
            user, campaign, "update", f"campaign {campaign.name!r} cancelled: {reason}",
            not_sent=closed,
        )  # fmt: skip
    return campaign


def campaign_finish(*, user: Any, campaign_id: int, now: datetime | None = None) -> Campaign:
    """Close a running campaign (the job does it when its period is over; audited). Members
    not reached by then are marked ``not_sent``."""
    if user is not None:
        require_permission(user, CHANGE_CAMPAIGNS)
    now = now or timezone.now()
    with transaction.atomic():
        campaign = locked(Campaign, campaign_id, "campaign")
        campaign.status = transition(rules.campaign_next, campaign.status, "finish")
        campaign.finished_at = now
        campaign.save()
        closed = _close_pending(campaign, "the campaign ended before it reached them", now)
        _campaign_audit(
            user, campaign, "update", f"campaign {campaign.name!r} finished", not_sent=closed
        )
    return campaign


PLACEBO_NOTE = (
    "Placebo (A/A) evaluation on past orders: nothing was sent, so the treatment and holdout "
    "differ by chance alone and any uplift shown is noise."
)


def campaign_placebo(*, user: Any, campaign_id: int, now: datetime | None = None) -> Campaign:
    """Evaluate a draft whose period is over on the orders already recorded, sending nothing:
    the audience is frozen and the holdout drawn as a launch would, every treatment member is
    ``not_sent``, and the campaign goes draft → running → finished at once (audited).

    A placebo (A/A) test: it shows how large an "uplift" chance alone produces for this
    audience, period and holdout share (the noise a real campaign's uplift must stand out
    from). 409 unless a draft whose period has ended."""
    if user is not None:
        require_permission(user, CHANGE_CAMPAIGNS)
    now = now or timezone.now()
    with transaction.atomic():
        campaign = locked(Campaign, campaign_id, "campaign")
        running = transition(rules.campaign_next, campaign.status, "launch")
        if campaign.status != Campaign.Status.DRAFT or campaign.period_end > now:
            raise Conflict(f"campaign {campaign_id}: a placebo needs a draft whose period is over")
        _freeze_audience(campaign, now)
        campaign.status = transition(rules.campaign_next, running, "finish")
        campaign.launched_at = campaign.finished_at = now
        campaign.launched_by = _username(user) or "placebo"
        campaign.note = PLACEBO_NOTE
        campaign.save()
        closed = _close_pending(campaign, "placebo: nothing is sent", now)
        _campaign_audit(
            user, campaign, "update",
            f"campaign {campaign.name!r} evaluated as a placebo: {closed} treated (nothing "
            f"sent), seed {campaign.seed}",
            seed=campaign.seed, snapshot=campaign.snapshot_id,
        )  # fmt: skip
    return campaign


@dataclass(frozen=True)
class CampaignRunResult:
    launched: list[int]
    resumed: list[int]
    finished: list[int]
    cancelled: list[int]
    failed: dict[str, str]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def campaigns_run_due(*, now: datetime | None = None) -> CampaignRunResult:
    """The campaign job: launch the scheduled campaigns whose send time has come (a scheduled
    campaign whose period is already over is cancelled instead), resume running ones a stopped
    launch left half done, and finish the running ones whose period is over. Safe to run
    twice; one campaign's failure is reported and does not stop the others."""
    now = now or timezone.now()
    result = CampaignRunResult([], [], [], [], {})
    status = Campaign.Status
    due = Campaign.objects.filter(status=status.SCHEDULED, send_at__lte=now)
    for pk, period_end in due.order_by("send_at", "pk").values_list("pk", "period_end"):
        try:
            if period_end <= now:
                campaign_cancel(
                    user=None, campaign_id=pk, reason="its period ended before it was launched",
                    now=now,
                )  # fmt: skip
                result.cancelled.append(pk)
            else:
                campaign_launch(user=None, campaign_id=pk, now=now)
                result.launched.append(pk)
        except PatronError as error:
            result.failed[str(pk)] = error.message
    running = Campaign.objects.filter(status=status.RUNNING).order_by("pk")
    for pk, period_end in running.values_list("pk", "period_end"):
        try:
            if period_end <= now:
                campaign_finish(user=None, campaign_id=pk, now=now)
                result.finished.append(pk)
            elif (
                pk not in result.launched
                and CampaignMember.objects.filter(
                    campaign_id=pk, outcome=CampaignMember.Outcome.PENDING
                ).exists()
            ):
                campaign_launch(user=None, campaign_id=pk, now=now)
                result.resumed.append(pk)
        except PatronError as error:
            result.failed[str(pk)] = error.message
    return result


# ---------------------------------------------------------------------- win-back (R-G7)
#
# A win-back programme is an always-on campaign: each run (the daily job, the page's button,
# the CLI) enrols the customers whose churn risk has newly risen to the programme's threshold
# (``rules.winback_entry``), draws each one's group from the programme's seed
# (``rules.holdout_draw``), chooses their offer from their own data (``rules.winback_offer_tier``
# and their top category) and records all of it, then sends the treated their offer through the
# outbox exactly as a campaign does (marketing consent per channel, an address, the frequency
# cap, the coupon's limits). The holdout gets nothing. Reactivation is read later, per entry,
# over the measurement window (``patron.marketing.selectors.winback_evaluation``).

WINBACK_CHUNK = 500
WINBACK_MESSAGE_TEMPLATE = "marketing.announcement"
TOP_CATEGORY_DAYS = 365
MAX_CATEGORY_FALLBACK = 60
DEFAULT_CATEGORY_FALLBACK = "精选好物"

_WINBACK_FIELDS = (
    "name",
    "description",
    "is_active",
    "churn_threshold",
    "holdout_share",
    "seed",
    "cool_down_days",
    "window_days",
    "offer_kind",
    "coupon_template_id",
    "points",
    "gift_text",
    "high_value_offer_kind",
    "high_value_coupon_template_id",
    "high_value_points",
    "high_value_gift_text",
    "high_value_min_clv",
    "high_value_grades",
    "channels",
    "message_title",
    "message_text",
    "category_fallback",
    "frequency_cap_messages",
    "frequency_cap_days",
)
#: Changing these once customers are enrolled would move customers between the groups (the
#: draw) in the middle of the measurement: refused, make a new programme instead.
_WINBACK_FIXED_ONCE_ENROLLED = ("seed", "holdout_share")


def _fraction(value: Any, what: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        raise ValidationFailed(f"{what}: expected a number from 0 to 1")
    try:
        number = Decimal(str(value)).quantize(Decimal("0.001"))
    except (InvalidOperation, ValueError):
        raise ValidationFailed(f"{what}: expected a number from 0 to 1") from None
    if not number.is_finite():
        raise ValidationFailed(f"{what}: expected a number from 0 to 1")
    return number


def _template_id(value: Any, what: str) -> CouponTemplate | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationFailed(f"{what}: expected a coupon template id")
    found = CouponTemplate.objects.filter(pk=value).first()
    if found is None:
        raise NotFound(f"coupon template {value} not found", details={what: value})
    return found


def _days(value: Any, what: str) -> int:
    days = _whole_or_none(value, what, low=1, high=rules.MAX_DAYS)
    if days is None:
        raise ValidationFailed(f"{what}: expected a whole number from 1 to {rules.MAX_DAYS}")
    return days


def _winback_values(data: Mapping[str, Any]) -> dict[str, Any]:
    """The programme checked field by field, then as a whole (422 naming the field; 404 for
    an unknown coupon template)."""
    unknown = sorted(set(data) - set(_WINBACK_FIELDS))
    if unknown:
        raise ValidationFailed(f"winback.{unknown[0]}: unknown field")
    grades = data.get("high_value_grades") or []
    if not isinstance(grades, list) or not all(isinstance(g, str) for g in grades):
        raise ValidationFailed("winback.high_value_grades: expected a list of grades")
    channels = data.get("channels") or []
    if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
        raise ValidationFailed("winback.channels: expected a list of channels")
    seed = data.get("seed")
    values: dict[str, Any] = {
        "name": _name(data.get("name"), "winback.name"),
        "description": _campaign_text(
            data.get("description"), "winback.description", MAX_DESCRIPTION, required=False
        ),
        "is_active": bool(data.get("is_active", True)),
        "churn_threshold": _fraction(data.get("churn_threshold"), "winback.churn_threshold"),
        "holdout_share": _fraction(
            data.get("holdout_share", rules.DEFAULT_HOLDOUT_SHARE), "winback.holdout_share"
        ),
        "seed": secrets.randbelow(2**31)
        if seed is None
        else _whole_or_none(seed, "winback.seed", low=0, high=MAX_SEED),
        "cool_down_days": _days(
            data.get("cool_down_days", rules.DEFAULT_COOL_DOWN_DAYS), "winback.cool_down_days"
        ),
        "window_days": _days(
            data.get("window_days", rules.DEFAULT_WINDOW_DAYS), "winback.window_days"
        ),
        "offer_kind": str(data.get("offer_kind") or ""),
        "points": _whole_or_none(data.get("points"), "winback.points", low=1, high=1_000_000),
        "gift_text": _campaign_text(
            data.get("gift_text"), "winback.gift_text", MAX_GIFT_TEXT, required=False
        ),
        "high_value_offer_kind": str(data.get("high_value_offer_kind") or ""),
        "high_value_points": _whole_or_none(
            data.get("high_value_points"), "winback.high_value_points", low=1, high=1_000_000
        ),
        "high_value_gift_text": _campaign_text(
            data.get("high_value_gift_text"), "winback.high_value_gift_text", MAX_GIFT_TEXT,
            required=False,
        ),
        "high_value_min_clv": _money(
            data.get("high_value_min_clv"), "winback.high_value_min_clv", allow_none=True
        ),
        "high_value_grades": sorted(set(grades), key=grades.index),
        "channels": list(channels),
        "message_title": _campaign_text(
            data.get("message_title"), "winback.message_title", MAX_TITLE
        ),
        "message_text": _campaign_text(
            data.get("message_text"), "winback.message_text", MAX_MESSAGE_TEXT
        ),
        "category_fallback": _campaign_text(
            data.get("category_fallback") or DEFAULT_CATEGORY_FALLBACK,
            "winback.category_fallback", MAX_CATEGORY_FALLBACK,
        ),
        "frequency_cap_messages": _whole_or_none(
            data.get("frequency_cap_messages", DEFAULT_CAP_MESSAGES),
            "winback.frequency_cap_messages", low=0, high=1000,
        ),
        "frequency_cap_days": _whole_or_none(
            data.get("frequency_cap_days", DEFAULT_CAP_DAYS), "winback.frequency_cap_days",
            low=0, high=366,
        ),
    }  # fmt: skip
    template = _template_id(data.get("coupon_template_id"), "winback.coupon_template_id")
    high_template = _template_id(
        data.get("high_value_coupon_template_id"), "winback.high_value_coupon_template_id"
    )
    values["coupon_template_id"] = template.pk if template else None
    values["high_value_coupon_template_id"] = high_template.pk if high_template else None
    problems = rules.winback_problems(
        churn_threshold=values["churn_threshold"],
        holdout_share=values["holdout_share"],
        cool_down_days=values["cool_down_days"],
        window_days=values["window_days"],
        offer_kind=values["offer_kind"],
        has_coupon_template=template is not None,
        points=values["points"],
        gift_text=values["gift_text"],
        high_value_offer_kind=values["high_value_offer_kind"],
        has_high_value_coupon_template=high_template is not None,
        high_value_points=values["high_value_points"],
        high_value_gift_text=values["high_value_gift_text"],
        high_value_min_clv=values["high_value_min_clv"],
        high_value_grades=values["high_value_grades"],
        channels=values["channels"],
        frequency_cap_messages=values["frequency_cap_messages"],
        frequency_cap_days=values["frequency_cap_days"],
    )
    if problems:
        raise ValidationFailed(f"winback.{problems[0]}", details={"problems": problems})
    return values


def _winback_audit(
    user: Any, programme: WinbackProgramme, action: str, summary: str, **changes: Any
) -> None:
    audit_record(
        AuditEntry(
            action=action,
            entity_type="marketing.winback_programme",
            entity_id=str(programme.pk),
            summary=summary[:300],
            changes=changes,
        ),
        actor=user,
        actor_label="" if user is not None else "win-back",
    )


def winback_programme_create(*, user: Any, data: Mapping[str, Any]) -> WinbackProgramme:
    """A new win-back programme (audited). Checked as a whole: 422 naming the field, 404 for
    an unknown coupon template, 409 for a name in use. Without a ``seed`` one is drawn and
    recorded: each customer's group follows from it."""
    require_permission(user, CHANGE_CAMPAIGNS)
    values = _winback_values(data)
    with transaction.atomic():
        if WinbackProgramme.objects.filter(name=values["name"]).exists():
            raise Conflict(f"a win-back programme named {values['name']!r} exists already")
        try:
            with transaction.atomic():
                programme = WinbackProgramme.objects.create(
                    created_by=user, updated_by=_username(user), **values
                )
        except IntegrityError:
            raise Conflict(
                f"a win-back programme named {values['name']!r} exists already"
            ) from None
        _winback_audit(
            user, programme, "create", f"win-back programme {programme.name!r} created",
            plan=_plain_values(values),
        )  # fmt: skip
    return programme


def winback_programme_update(
    *, user: Any, programme_id: int, changes: Mapping[str, Any], now: datetime | None = None
) -> WinbackProgramme:
    """Change a programme (audited): the threshold, the offers, the windows and the message
    apply to the entries of later runs; an entry keeps what it was given. The seed and the
    holdout share are fixed once a customer is enrolled (409: a new draw would move customers
    between the groups mid-measurement). Pausing (``is_active`` false) stops the sending:
    treated entries not reached yet become ``not_sent``."""
    require_permission(user, CHANGE_CAMPAIGNS)
    now = now or timezone.now()
    with transaction.atomic():
        programme = locked(WinbackProgramme, programme_id, "win-back programme")
        current = {f: getattr(programme, f) for f in _WINBACK_FIELDS}
        values = _winback_values({**current, **changes})
        changed = sorted(k for k in _WINBACK_FIELDS if current[k] != values[k])
        fixed = [f for f in _WINBACK_FIXED_ONCE_ENROLLED if f in changed]
        if fixed and WinbackEnrolment.objects.filter(programme=programme).exists():
            raise Conflict(
                f"winback.{fixed[0]}: fixed once customers are enrolled (a new draw would move "
                "customers between the groups mid-measurement); create a new programme instead",
                details={"field": fixed[0]},
            )
        taken = WinbackProgramme.objects.filter(name=values["name"]).exclude(pk=programme.pk)
        if taken.exists():
            raise Conflict(f"a win-back programme named {values['name']!r} exists already")
        for name, value in values.items():
            setattr(programme, name, value)
        programme.updated_by = _username(user)
        programme.save()
        closed = 0
        if current["is_active"] and not values["is_active"]:
            closed = WinbackEnrolment.objects.filter(
                programme=programme, outcome=WinbackEnrolment.Outcome.PENDING
            ).update(
                outcome=WinbackEnrolment.Outcome.NOT_SENT,
                reason="the programme was paused before they were reached",
                processed_at=now,
            )
        _winback_audit(
            user, programme, "update",
            f"win-back programme {programme.name!r} changed: {', '.join(changed) or 'nothing'}",
            changed=changed, not_sent=closed,
        )  # fmt: skip
    return programme


@dataclass(frozen=True)
class CustomerRisk:
    """What a win-back run reads of one customer: the churn probability (0–1; None: not
    scored), the 12-month CLV and the grade (for the offer) and the scores' cut-off day."""

    churn_probability: float | None
    clv_12m: Decimal | None = None
    grade: str = ""
    score_as_of: date | None = None


def _scored_at_risk(threshold: float, day: date) -> dict[int, CustomerRisk]:
    """Customers whose latest score puts them at or above ``threshold``, from scoring runs
    with data before ``day`` only (never a score from after the enrolment); erased excluded."""
    rows = (
        CustomerScore.objects.filter(churn_probability__gte=threshold, as_of__lte=day)
        .exclude(customer__status=Customer.Status.ERASED)
        .values_list("customer_id", "churn_probability", "clv_12m", "grade", "as_of")
    )
    return {
        customer_id: CustomerRisk(probability, clv, grade or "", as_of)
        for customer_id, probability, clv, grade, as_of in rows
    }


def _given_at_risk(risks: Mapping[int, CustomerRisk], threshold: float) -> dict[int, CustomerRisk]:
    wanted = sorted(
        c
        for c, r in risks.items()
        if r.churn_probability is not None and r.churn_probability >= threshold
    )
    live: set[int] = set()
    for start in range(0, len(wanted), _CHUNK):
        live |= set(
            Customer.objects.filter(pk__in=wanted[start : start + _CHUNK])
            .exclude(status=Customer.Status.ERASED)
            .values_list("pk", flat=True)
        )
    return {c: risks[c] for c in wanted if c in live}


def _winback_recover(
    programme: WinbackProgramme,
    as_of: datetime,
    threshold: float,
    risks: Mapping[int, CustomerRisk] | None,
) -> int:
    """Mark the open entries whose customer this run sees below the threshold as recovered
    (what lets them enter again, after the cool-down, when their risk rises anew)."""
    open_entries = WinbackEnrolment.objects.filter(
        programme=programme, recovered_at__isnull=True, enrolled_at__lt=as_of
    )
    if risks is None:
        below = CustomerScore.objects.filter(
            customer=OuterRef("customer_id"),
            churn_probability__lt=threshold,
            as_of__lte=timezone.localdate(as_of),
        )
        return open_entries.filter(Exists(below)).update(recovered_at=as_of)
    ids = sorted(
        c
        for c, r in risks.items()
        if r.churn_probability is not None and r.churn_probability < threshold
    )
    recovered = 0
    for start in range(0, len(ids), _CHUNK):
        recovered += open_entries.filter(customer_id__in=ids[start : start + _CHUNK]).update(
            recovered_at=as_of
        )
    return recovered


def _previous_entries(
    programme: WinbackProgramme, customer_ids: Sequence[int]
) -> dict[int, tuple[int, rules.PreviousEntry]]:
    """Each customer's latest entry into the programme: (cycle, when, recovered when)."""
    latest: dict[int, tuple[int, rules.PreviousEntry]] = {}
    for start in range(0, len(customer_ids), _CHUNK):
        rows = WinbackEnrolment.objects.filter(
            programme=programme, customer_id__in=customer_ids[start : start + _CHUNK]
        ).values_list("customer_id", "cycle", "enrolled_at", "recovered_at")
        for customer_id, cycle, enrolled_at, recovered_at in rows:
            if customer_id not in latest or latest[customer_id][0] < cycle:
                latest[customer_id] = (cycle, rules.PreviousEntry(enrolled_at, recovered_at))
    return latest


def _top_categories(customer_ids: Sequence[int], as_of: datetime) -> dict[int, tuple[str, Decimal]]:
    """Each customer's category with the most spend on paid orders (neither cancelled nor
    returned) in the ``TOP_CATEGORY_DAYS`` before ``as_of``: (name, spend)."""
    since = as_of - timedelta(days=TOP_CATEGORY_DAYS)
    found: dict[int, tuple[str, Decimal]] = {}
    for start in range(0, len(customer_ids), _CHUNK):
        rows = (
            OrderLine.objects.filter(
                order__customer_id__in=customer_ids[start : start + _CHUNK],
                order__paid_at__gte=since,
                order__paid_at__lt=as_of,
                product__category__isnull=False,
            )
            .exclude(order__status__in=(Order.Status.CANCELLED, Order.Status.RETURNED))
            .values("order__customer_id", "product__category__name")
            .annotate(spend=Sum("amount"))
        )
        for row in rows:
            customer_id, name = row["order__customer_id"], row["product__category__name"]
            spend = Decimal(row["spend"] or 0).quantize(rules.CENT)
            best = found.get(customer_id)
            # Ties go to the name first in order, so a run is reproducible.
            if best is None or (spend, best[0]) > (best[1], name):
                found[customer_id] = (name, spend)
    return found


def _offer_words(kind: str, template: CouponTemplate | None, points: int | None, gift: str) -> str:
    if kind == rules.OfferKind.COUPON and template is not None:
        return f"coupon {template.name!r}"
    if kind == rules.OfferKind.POINTS:
        return f"{points} points"
    if kind == rules.OfferKind.GIFT:
        return f"gift {gift!r}"
    return "a message only"


def _winback_entry_row(
    programme: WinbackProgramme,
    run: WinbackRun,
    *,
    customer_id: int,
    cycle: int,
    risk: CustomerRisk,
    previous: rules.PreviousEntry | None,
    category: tuple[str, Decimal] | None,
) -> WinbackEnrolment:
    """One new entry: the group drawn, the offer chosen and why, the facts it rests on."""
    as_of = run.as_of
    is_held = rules.holdout_draw(programme.seed, customer_id, programme.holdout_share)
    tier, why = rules.winback_offer_tier(
        clv_12m=risk.clv_12m,
        grade=risk.grade,
        min_clv=programme.high_value_min_clv,
        grades=programme.high_value_grades,
        has_high_value_offer=bool(programme.high_value_offer_kind),
    )
    if tier is rules.OfferTier.HIGH_VALUE:
        kind, template = programme.high_value_offer_kind, programme.high_value_coupon_template
        points, gift = programme.high_value_points, programme.high_value_gift_text
    else:
        kind, template = programme.offer_kind, programme.coupon_template
        points, gift = programme.points, programme.gift_text
    offer_reason = f"{why} → {_offer_words(kind, template, points, gift)}"
    if category is not None:
        offer_reason += (
            f"; message names their top category {category[0]} (¥{category[1]:,.2f} in 365 days)"
        )
    entered_because = (
        "first entry: churn risk at or above the threshold"
        if previous is None
        else f"entry {cycle}: risk rose again after it fell below the threshold on "
        f"{previous.recovered_at:%Y-%m-%d}, {programme.cool_down_days}+ days after entry {cycle - 1}"
    )
    basis = {
        "churn_probability": round(float(risk.churn_probability or 0), 4),
        "threshold": str(programme.churn_threshold),
        "entered_because": entered_because,
        "score_as_of": risk.score_as_of.isoformat() if risk.score_as_of else None,
        "clv_12m": str(risk.clv_12m) if risk.clv_12m is not None else None,
        "grade": risk.grade or None,
        "offer_tier": tier.value,
        "top_category": category[0] if category else None,
        "top_category_spend": str(category[1]) if category else None,
        "holdout_share": str(programme.holdout_share),
        "seed": programme.seed,
    }
    outcome = WinbackEnrolment.Outcome
    return WinbackEnrolment(
        programme=programme,
        customer_id=customer_id,
        cycle=cycle,
        run=run,
        enrolled_at=as_of,
        window_ends_at=as_of + timedelta(days=programme.window_days),
        churn_probability=float(risk.churn_probability or 0),
        score_as_of=risk.score_as_of,
        group=WinbackEnrolment.Group.HOLDOUT if is_held else WinbackEnrolment.Group.TREATMENT,
        offer_tier=tier.value,
        offer_kind=kind,
        coupon_template=template if kind == rules.OfferKind.COUPON else None,
        points=points if kind == rules.OfferKind.POINTS else None,
        offer_reason=offer_reason[:500],
        basis=basis,
        outcome=outcome.HOLDOUT if is_held else outcome.PENDING,
        reason="held out: gets nothing, to measure the programme against" if is_held else "",
        processed_at=as_of if is_held else None,
    )


def _winback_acting(user: Any, programme: WinbackProgramme, *, issues_coupons: bool) -> Any:
    """Who issues the offers: the person running, else (the job) the programme's creator,
    whose permission is checked again now."""
    acting = user or programme.created_by
    if acting is not None and user is None:
        require_permission(acting, CHANGE_CAMPAIGNS)
    if acting is None and issues_coupons:
        raise Conflict(f"win-back programme {programme.pk} has nobody to issue its coupons as")
    return acting


def _check_winback_offers(programme: WinbackProgramme, now: datetime) -> None:
    """A coupon template that is off or ended makes the run refuse (409) before anyone is
    enrolled: better no entries than entries that were promised an offer and got nothing."""
    for template in (programme.coupon_template, programme.high_value_coupon_template):
        if template is None:
            continue
        if not template.is_active:
            raise Conflict(
                f"win-back programme {programme.pk}: coupon template {template.name!r} is off"
            )
        if template.valid_until is not None and template.valid_until <= now:
            raise Conflict(
                f"win-back programme {programme.pk}: coupon template {template.name!r} ended "
                f"on {template.valid_until}"
            )


def _winback_context(
    programme: WinbackProgramme, entry: WinbackEnrolment, coupon: Coupon | None
) -> dict[str, str]:
    code = coupon.code if coupon is not None else ""
    points = str(entry.points or "")
    gift = (
        programme.high_value_gift_text
        if entry.offer_tier == rules.OfferTier.HIGH_VALUE
        else programme.gift_text
    )
    category = entry.basis.get("top_category") or programme.category_fallback
    text = (
        programme.message_text.replace("{coupon_code}", code)
        .replace("{points}", points)
        .replace("{gift}", gift if entry.offer_kind == rules.OfferKind.GIFT else "")
        .replace("{top_category}", category)
    )
    if code and "{coupon_code}" not in programme.message_text:
        text = f"{text.rstrip()}\n券码 Code: {code}"
    offer = ""
    if coupon is not None:
        template = coupon.template
        value = f"¥{template.value}" if template.kind == "amount_off" else f"{template.value}%"
        until = f", valid until {coupon.expires_at:%Y-%m-%d}" if coupon.expires_at else ""
        offer = f"{coupon.code} ({value} off from ¥{template.min_order_amount}{until})"
    elif entry.offer_kind == rules.OfferKind.POINTS:
        offer = f"{points} points"
    elif entry.offer_kind == rules.OfferKind.GIFT:
        offer = gift
    return {
        "title": programme.message_title,
        "text": text,
        "offer": offer,
        "coupon_code": code,
        "points": points,
        "gift": gift,
    }


def _winback_send(
    programme: WinbackProgramme, entries: list[WinbackEnrolment], *, acting: Any, now: datetime
) -> None:
    """One chunk of treated entries: decide, issue the offers, queue the messages, record.
    The same checks as a campaign's (``_process_members``), per entry's own offer."""
    outcome = WinbackEnrolment.Outcome
    ids = sorted({e.customer_id for e in entries})
    channels = list(programme.channels)
    consents = _latest_marketing_consent(ids, channels)
    reachable = _reachable(ids, channels)
    cap, cap_days = programme.frequency_cap_messages, programme.frequency_cap_days
    recent = (
        _recent_marketing_messages(ids, now - timedelta(days=cap_days))
        if cap is not None and cap_days is not None
        else {}
    )
    templates = {
        t.pk: t
        for t in CouponTemplate.objects.filter(
            pk__in={e.coupon_template_id for e in entries if e.coupon_template_id}
        )
    }
    held: dict[tuple[int, int], int] = {}
    stock_left: dict[int, int | None] = {}
    for known in templates.values():
        rows = (
            Coupon.objects.filter(template=known, customer_id__in=ids)
            .exclude(status=Coupon.Status.VOID)
            .values("customer_id")
            .annotate(n=Count("pk"))
        )
        held.update({(known.pk, r["customer_id"]): r["n"] for r in rows})
        stock_left[known.pk] = (
            None
            if known.stock is None
            else known.stock - Coupon.objects.filter(template=known).count()
        )
    chosen: dict[int, str] = {}
    for entry in entries:
        customer_id, template = entry.customer_id, templates.get(entry.coupon_template_id or 0)
        channel, skipped = rules.choose_channel(
            channels, granted=consents[customer_id], reachable=reachable[customer_id]
        )
        entry.processed_at = now
        left = stock_left.get(template.pk) if template is not None else None
        if skipped:
            entry.outcome = skipped
            entry.reason = (
                f"no marketing consent on {', '.join(channels)}"
                if skipped == outcome.NO_CONSENT
                else f"consent, but no address on {', '.join(channels)}"
            )
        elif cap is not None and recent.get(customer_id, 0) >= cap:
            entry.outcome = outcome.CAPPED
            entry.reason = (
                f"{recent[customer_id]} marketing message(s) in the last {cap_days} days "
                f"(the cap is {cap})"
            )
        elif (
            template is not None
            and template.per_customer_limit is not None
            and held.get((template.pk, customer_id), 0) >= template.per_customer_limit
        ):
            entry.outcome = outcome.COUPON_LIMIT
            entry.reason = (
                f"holds {held[(template.pk, customer_id)]} coupon(s) of {template.name!r} already"
            )
        elif template is not None and left is not None and left <= 0:
            entry.outcome = outcome.OUT_OF_STOCK
            entry.reason = f"coupon template {template.name!r} has no stock left"
        else:
            chosen[entry.pk] = channel
            entry.channel = channel
            entry.cost = rules.offer_unit_cost(
                offer_kind=entry.offer_kind,
                unit_cost=None,
                coupon_kind=template.kind if template else None,
                coupon_value=template.value if template else None,
            ).quantize(rules.CENT)
            recent[customer_id] = recent.get(customer_id, 0) + 1
            if template is not None:
                held[(template.pk, customer_id)] = held.get((template.pk, customer_id), 0) + 1
                if left is not None:
                    stock_left[template.pk] = left - 1
    eligible = [e for e in entries if e.pk in chosen]
    coupons: dict[int, Coupon] = {}
    for template_id, template in templates.items():
        wanted = [e for e in eligible if e.coupon_template_id == template_id]
        if not wanted:
            continue
        issued = coupons_issue(
            user=acting,
            template_id=template_id,
            customer_ids=[e.customer_id for e in wanted],
            reason=f"win-back programme {programme.pk} {programme.name}"[:500],
            request_key=f"winback-{programme.pk}-{template_id}-{wanted[0].pk}-{wanted[-1].pk}",
        )
        for entry, issued_coupon in zip(wanted, issued, strict=True):
            issued_coupon.template = template
            coupons[entry.pk] = issued_coupon
    entries_by_points: dict[tuple[int, int], list[WinbackEnrolment]] = {}
    for entry in eligible:
        if entry.offer_kind == rules.OfferKind.POINTS and entry.points:
            entries_by_points.setdefault((entry.points, entry.cycle), []).append(entry)
    granted: dict[int, Any] = {}
    for (points, cycle), group in entries_by_points.items():
        # The key names the programme and the entry's cycle: one grant per entry, ever.
        found = points_grant(
            customer_ids=[e.customer_id for e in group],
            points=points,
            reason=f"win-back programme {programme.pk} {programme.name}"[:500],
            key=f"winback:{programme.pk}:{cycle}",
            source_type="winback",
            source_id=programme.pk,
            user=acting,
            actor_label="win-back",
        )
        granted.update({e.pk: found[e.customer_id] for e in group})
    for entry in eligible:
        coupon = coupons.get(entry.pk)
        message = message_queue(
            customer_id=entry.customer_id,
            template=WINBACK_MESSAGE_TEMPLATE,
            purpose=Consent.Purpose.MARKETING,
            context=_winback_context(programme, entry, coupon),
            channel=chosen[entry.pk],
            key=f"marketing.winback:{entry.pk}",
            source=f"marketing.winback:{programme.pk}",
        )
        entry.message = message
        entry.coupon = coupon
        points_entry = granted.get(entry.pk)
        entry.points_entry_id = points_entry.pk if points_entry is not None else None
        if message.status == Message.Status.SUPPRESSED:
            entry.outcome, entry.reason = outcome.SUPPRESSED, message.reason[:500]
        else:
            entry.outcome, entry.reason = outcome.MESSAGED, ""
    WinbackEnrolment.objects.bulk_update(
        entries,
        [
            "outcome",
            "reason",
            "channel",
            "message",
            "coupon",
            "points_entry",
            "cost",
            "processed_at",
        ],
        batch_size=WINBACK_CHUNK,
    )


def winback_programme_run(
    *,
    programme_id: int,
    as_of: datetime | None = None,
    user: Any = None,
    risks: Mapping[int, CustomerRisk] | None = None,
    placebo: bool = False,
) -> WinbackRun:
    """Run one win-back programme as of ``as_of`` (default now): enrol, then send.

    **Enrol** (one transaction, the programme row locked so two runs queue up): read every
    customer's latest churn probability (scores computed with data before ``as_of``'s day;
    ``risks`` instead, for a replay on past data), mark earlier entrants now below the
    threshold as recovered, decide each at-risk customer with ``rules.winback_entry`` (at or
    above the threshold, outside the cool-down, a new rise), draw their group with
    ``rules.holdout_draw`` and choose their offer, recording why on the entry. Each entry is
    unique per (programme, customer, cycle): a run repeated, or racing another, enrols
    nobody twice (the cool-down keeps them out, and the constraint would refuse it).

    **Send** (chunks of ``WINBACK_CHUNK``, one transaction each): each treated entry not
    reached yet gets its offer and one message through the outbox, checked as a campaign's
    are (marketing consent on the programme's channels, an address, the frequency cap, the
    coupon's per-customer limit and stock); a skipped entry keeps the reason; the holdout gets
    nothing. A run that stopped half way is resumed by the next (entries still ``pending``).

    ``placebo``: nothing is sent and no coupon issued; treated entries become ``not_sent``
    (an A/A test, for a replay on past data). Runs go forward in time: one as of a time
    before the programme's latest run is refused (409), as is a paused programme's."""
    if user is not None:
        require_permission(user, CHANGE_CAMPAIGNS)
    as_of = as_of or timezone.now()
    if timezone.is_naive(as_of):
        raise ValidationFailed("winback_run.as_of: expected a time with its zone")
    as_of = as_of.astimezone(UTC)
    outcome = WinbackEnrolment.Outcome
    with transaction.atomic():
        programme = locked(WinbackProgramme, programme_id, "win-back programme")
        if not programme.is_active:
            raise Conflict(f"win-back programme {programme.name!r} is paused")
        latest = programme.runs.order_by("-as_of").values_list("as_of", flat=True).first()
        if latest is not None and latest > as_of:
            raise Conflict(
                f"win-back programme {programme.pk} ran as of {latest.isoformat()} already: "
                "runs go forward in time"
            )
        uses_coupons = programme.offer_kind == rules.OfferKind.COUPON or (
            programme.high_value_offer_kind == rules.OfferKind.COUPON
        )
        acting = None if placebo else _winback_acting(user, programme, issues_coupons=uses_coupons)
        if not placebo:
            _check_winback_offers(programme, as_of)
        run = WinbackRun.objects.create(
            programme=programme,
            as_of=as_of,
            started_at=timezone.now(),
            is_placebo=placebo,
            threshold=programme.churn_threshold,
            run_by=_username(user) or ("placebo" if placebo else "job"),
        )
        threshold = float(programme.churn_threshold)
        at_risk = (
            _scored_at_risk(threshold, timezone.localdate(as_of))
            if risks is None
            else _given_at_risk(risks, threshold)
        )
        run.recovered = _winback_recover(programme, as_of, threshold, risks)
        ids = sorted(at_risk)
        previous = _previous_entries(programme, ids)
        decided: dict[str, int] = {}
        entering: list[int] = []
        for customer_id in ids:
            _cycle, before = previous.get(customer_id, (0, None))
            decision = rules.winback_entry(
                risk=at_risk[customer_id].churn_probability,
                threshold=threshold,
                previous=before,
                as_of=as_of,
                cool_down_days=programme.cool_down_days,
            )
            decided[decision] = decided.get(decision, 0) + 1
            if decision is rules.WinbackEntry.ENTER:
                entering.append(customer_id)
        categories = _top_categories(entering, as_of)
        rows = [
            _winback_entry_row(
                programme, run, customer_id=customer_id,
                cycle=previous.get(customer_id, (0, None))[0] + 1, risk=at_risk[customer_id],
                previous=previous.get(customer_id, (0, None))[1],
                category=categories.get(customer_id),
            )
            for customer_id in entering
        ]  # fmt: skip
        try:
            with transaction.atomic():
                WinbackEnrolment.objects.bulk_create(rows, batch_size=1000)
        except IntegrityError:
            raise Conflict(
                f"win-back programme {programme.pk}: another run enrolled some of these "
                "customers meanwhile; nothing was written by this one"
            ) from None
        run.at_risk = len(ids)
        run.entered = len(rows)
        run.holdout = sum(1 for r in rows if r.group == WinbackEnrolment.Group.HOLDOUT)
        run.treatment = run.entered - run.holdout
        run.cool_down = decided.get(rules.WinbackEntry.COOL_DOWN, 0)
        run.still_at_risk = decided.get(rules.WinbackEntry.STILL_AT_RISK, 0)
        run.save()
        programme.last_run_at = as_of
        programme.save(update_fields=["last_run_at"])
        _winback_audit(
            user, programme, "update",
            f"win-back programme {programme.name!r} run as of {as_of:%Y-%m-%d %H:%M}: "
            f"{run.entered} entered ({run.treatment} treated, {run.holdout} held out), "
            f"{run.cool_down} in the cool-down, {run.still_at_risk} still at risk, "
            f"{run.recovered} recovered" + (" (placebo: nothing sent)" if placebo else ""),
            run=run.pk, at_risk=run.at_risk, entered=run.entered, seed=programme.seed,
        )  # fmt: skip
    if placebo:
        WinbackEnrolment.objects.filter(run=run, outcome=outcome.PENDING).update(
            outcome=outcome.NOT_SENT,
            reason="placebo: nothing is sent (a replay on past data)",
            processed_at=as_of,
        )
    else:
        now = timezone.now()
        while True:
            with transaction.atomic():
                programme = locked(WinbackProgramme, programme_id, "win-back programme")
                if not programme.is_active:
                    break
                entries = list(
                    WinbackEnrolment.objects.filter(
                        programme=programme,
                        group=WinbackEnrolment.Group.TREATMENT,
                        outcome=outcome.PENDING,
                    ).order_by("pk")[:WINBACK_CHUNK]
                )
                if not entries:
                    break
                _winback_send(programme, entries, acting=acting, now=now)
    counts = dict(
        WinbackEnrolment.objects.filter(run=run, group=WinbackEnrolment.Group.TREATMENT)
        .values_list("outcome")
        .annotate(n=Count("pk"))
        .values_list("outcome", "n")
    )
    run.messaged = counts.get(outcome.MESSAGED, 0)
    run.skipped = sum(n for o, n in counts.items() if o not in (outcome.MESSAGED, outcome.PENDING))
    run.finished_at = timezone.now()
    run.save(update_fields=["messaged", "skipped", "finished_at"])
    return run


@dataclass(frozen=True)
class WinbackJobResult:
    runs: dict[str, dict[str, Any]]
    failed: dict[str, str]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def winback_run(*, as_of: datetime | None = None) -> WinbackJobResult:
    """The win-back job: run every active programme as of ``as_of`` (default now), each on
    its own (one programme's failure is reported and does not stop the others). Safe to run
    twice: a second run as of the same time enrols nobody again (``winback_entry``: the
    cool-down) and resumes any sending a stopped run left."""
    as_of = as_of or timezone.now()
    result = WinbackJobResult({}, {})
    active = WinbackProgramme.objects.filter(is_active=True).order_by("pk")
    for pk in active.values_list("pk", flat=True):
        try:
            run = winback_programme_run(programme_id=pk, as_of=as_of)
        except PatronError as error:
            result.failed[str(pk)] = error.message
            continue
        result.runs[str(pk)] = {
            "run": run.pk,
            "at_risk": run.at_risk,
            "entered": run.entered,
            "treatment": run.treatment,
            "holdout": run.holdout,
            "messaged": run.messaged,
            "skipped": run.skipped,
            "recovered": run.recovered,
        }
    return result
