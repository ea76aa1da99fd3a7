"""Writing marketing data: segments (save, refresh, snapshot) and coupons (templates, issue,
redeem, void, expire, reconcile imported orders).

Every function is one transaction. Coupons are race-safe by locking (``SELECT … FOR UPDATE``
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

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Exists, F, OuterRef, Sum
from django.utils import timezone

from patron.account.roles import CHANGE_COUPONS, CHANGE_SEGMENTS, REDEEM_COUPONS
from patron.account.services import require_permission
from patron.audit.services import AuditEntry, audit_record
from patron.commerce.models import Order, OrderLine
from patron.customer.models import Customer
from patron.errors import Conflict, NotFound, ValidationFailed
from patron.marketing import rules
from patron.marketing.models import (
    Coupon,
    CouponTemplate,
    Segment,
    SegmentMembership,
    SegmentSnapshot,
    SegmentVersion,
)
from patron.marketing.selectors import segment_queryset, segment_rule
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
