"""Reading risk: the checkout policy (on a shop's hot path), a customer's restrictions in plain
words, the alert queue, the blacklist and appeals.

``checkout_policy_of`` never runs a model: it reads the latest scores the pipeline wrote
(``scoring.CustomerScore``), the restrictions and blacklist entries in force, and the active
risk policy (kept in memory for ``POLICY_TTL_SECONDS``), in four indexed queries.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db import connection
from django.utils import timezone, translation
from django.utils.translation import gettext_noop

from patron.account.roles import VIEW_CHECKOUT_POLICY, VIEW_RESTRICTIONS, VIEW_RISK
from patron.account.services import require_permission
from patron.certification.models import Certification, CertificationLevel
from patron.customer.models import Customer
from patron.errors import NotFound, ValidationFailed
from patron.intelligence.explain import render
from patron.risk import rules
from patron.risk.models import (
    Alert,
    Appeal,
    BlacklistEntry,
    CreditOverride,
    DetectionRun,
    Restriction,
    RestrictionKind,
    RiskPolicy,
    RiskRule,
)
from patron.scoring.models import CustomerScore

POLICY_TTL_SECONDS = 5.0
MODEL_RULE_NAME = gettext_noop("Unusual customer (isolation forest)")
_policy_cache: tuple[float, rules.RiskPolicyRules] | None = None


def policy_rules_cached() -> rules.RiskPolicyRules:
    """The active risk policy, re-read at most every ``POLICY_TTL_SECONDS``."""
    global _policy_cache
    now = time.monotonic()
    if _policy_cache is not None and _policy_cache[0] > now:
        return _policy_cache[1]
    from patron.risk.services import risk_policy_rules

    policy = risk_policy_rules()
    _policy_cache = (now + POLICY_TTL_SECONDS, policy)
    return policy


def policy_cache_clear() -> None:
    global _policy_cache
    _policy_cache = None


def reason_text(reason: Any) -> str:
    language = translation.get_language() or "en"
    return render(reason, language=language, translate=translation.gettext)


@dataclass(frozen=True)
class CheckoutPolicyView:
    customer_id: int
    may_order: bool
    payment_methods: list[str]
    credit_limit: Decimal
    currency: str
    order_review: bool
    coupons_allowed: bool
    credit_score: int | None
    grade: str
    scored_as_of: str | None
    certification: str | None  # the active certification level's code
    restrictions: list[str]  # kinds in force
    reasons: list[str]  # plain words, in the request's language
    reason_data: list[dict[str, Any]]  # the same reasons as templates + parameters


def _checkout_facts(customer_id: int, now: datetime) -> tuple[Any, ...] | None:
    """(credit score, grade, scored as of, blacklisted, granted limit, granted deferred, the
    active certification's level) in one statement, or None for an unknown customer. Plain SQL: on this path building the query
    through the ORM cost 30 times what the database took to answer it (bench/checkout_policy.py).
    """
    at = connection.ops.adapt_datetimefield_value(now)
    granted = (
        f"FROM {CreditOverride._meta.db_table} o WHERE o.customer_id = c.id "
        "AND o.revoked_at IS NULL AND o.granted_at <= %s "
        "AND (o.expires_at IS NULL OR o.expires_at > %s) ORDER BY o.id DESC LIMIT 1"
    )
    sql = (
        "SELECT s.credit_score, s.grade, s.as_of, "
        f"EXISTS (SELECT 1 FROM {BlacklistEntry._meta.db_table} b "
        "WHERE b.customer_id = c.id AND b.status = %s), "
        f"(SELECT o.credit_limit {granted}), (SELECT o.allow_deferred {granted}), "
        f"(SELECT l.code FROM {Certification._meta.db_table} k "
        f"JOIN {CertificationLevel._meta.db_table} l ON l.id = k.level_id "
        "WHERE k.customer_id = c.id AND k.status = %s AND k.expires_at > %s) "
        f"FROM {Customer._meta.db_table} c "
        f"LEFT JOIN {CustomerScore._meta.db_table} s ON s.customer_id = c.id WHERE c.id = %s"
    )
    with connection.cursor() as cursor:
        active = (BlacklistEntry.Status.ACTIVE, Certification.Status.ACTIVE)
        cursor.execute(sql, [active[0], at, at, at, at, active[1], at, customer_id])
        found: tuple[Any, ...] | None = cursor.fetchone()
        return found


def _checkout_restrictions(customer_id: int, now: datetime) -> list[rules.ActiveRestriction]:
    at = connection.ops.adapt_datetimefield_value(now)
    sql = (
        f"SELECT id, kind, scope, reason FROM {Restriction._meta.db_table} "
        "WHERE customer_id = %s AND lifted_at IS NULL AND starts_at <= %s "
        "AND (expires_at IS NULL OR expires_at > %s) ORDER BY id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [customer_id, at, at])
        rows = cursor.fetchall()
    return [
        rules.ActiveRestriction(
            kind=kind,
            scope=(json.loads(scope) if isinstance(scope, str) else scope) or {},
            reason=reason,
            restriction_id=pk,
        )
        for pk, kind, scope, reason in rows
    ]


def checkout_policy_of(*, user: Any, customer_id: int) -> CheckoutPolicyView:
    """Two indexed statements: the customer with their latest score, blacklisting and granted
    terms, then the restrictions in force."""
    require_permission(user, VIEW_CHECKOUT_POLICY)
    now = timezone.now()
    row = _checkout_facts(customer_id, now) if 0 < customer_id < 2**63 else None
    if row is None:
        raise NotFound(f"customer {customer_id} not found")
    credit, grade, as_of, blacklisted, granted_limit, granted_deferred, certified = row
    if isinstance(as_of, str):
        as_of = date.fromisoformat(as_of)
    live = _checkout_restrictions(customer_id, now)
    override = (
        rules.Override(
            Decimal(str(granted_limit)).quantize(Decimal("0.01")), bool(granted_deferred)
        )
        if granted_limit is not None
        else None
    )
    policy = rules.checkout_policy(
        policy_rules_cached(),
        credit_score=credit,
        grade=grade or "",
        restrictions=live,
        blacklisted=bool(blacklisted),
        override=override,
        certification=certified or "",
    )
    return CheckoutPolicyView(
        customer_id=customer_id,
        may_order=policy.may_order,
        payment_methods=list(policy.payment_methods),
        credit_limit=policy.credit_limit,
        currency=policy.currency,
        order_review=policy.order_review,
        coupons_allowed=policy.coupons_allowed,
        credit_score=credit,
        grade=grade or "",
        scored_as_of=as_of.isoformat() if as_of else None,
        certification=certified or None,
        restrictions=sorted({r.kind for r in live}),
        reasons=[reason_text(r) for r in policy.reasons],
        reason_data=list(policy.reasons),
    )


# ---------------------------------------------------------------------- restrictions


@dataclass(frozen=True)
class RestrictionView:
    id: int
    customer_id: int
    kind: str
    kind_label: str
    scope: dict[str, Any]
    reason: str
    evidence: list[dict[str, Any]]
    alert_id: int | None
    starts_at: datetime
    expires_at: datetime | None
    applied_by: str
    is_active: bool
    lifted_at: datetime | None
    lifted_by: str
    lift_reason: str
    open_appeal_id: int | None


def _restriction_view(r: Restriction, now: datetime, appeals: dict[int, int]) -> RestrictionView:
    return RestrictionView(
        id=r.pk,
        customer_id=r.customer_id,
        kind=r.kind,
        kind_label=str(RestrictionKind(r.kind).label),
        scope=r.scope or {},
        reason=r.reason,
        evidence=r.evidence or [],
        alert_id=r.alert_id,
        starts_at=r.starts_at,
        expires_at=r.expires_at,
        applied_by=r.applied_by.get_username(),
        is_active=r.lifted_at is None
        and r.starts_at <= now
        and (r.expires_at is None or r.expires_at > now),
        lifted_at=r.lifted_at,
        lifted_by=r.lifted_by.get_username() if r.lifted_by else "",
        lift_reason=r.lift_reason,
        open_appeal_id=appeals.get(r.pk),
    )


def restrictions_of_customer(*, user: Any, customer_id: int) -> list[RestrictionView]:
    """Every restriction the customer has had, newest first, with whether it is in force."""
    require_permission(user, VIEW_RESTRICTIONS)
    if not Customer.objects.filter(pk=customer_id).exists():
        raise NotFound(f"customer {customer_id} not found")
    rows = list(
        Restriction.objects.filter(customer_id=customer_id)
        .select_related("applied_by", "lifted_by")
        .order_by("-id")
    )
    appeals = dict(
        Appeal.objects.filter(
            restriction_id__in=[r.pk for r in rows], status__in=rules.LIVE_APPEAL
        ).values_list("restriction_id", "pk")
    )
    now = timezone.now()
    return [_restriction_view(r, now, appeals) for r in rows]


# ---------------------------------------------------------------------- alerts


ALERT_STATUSES = tuple(Alert.Status.values)
SEVERITY_ORDER = {"high": 0, "medium": 1, "low": 2}


@dataclass(frozen=True)
class AlertView:
    id: int
    customer_id: int
    customer_name: str
    source: str
    rule_code: str
    rule_name: str
    rule_version: int
    severity: str
    value: float
    threshold: float | None
    volume: int
    evidence: list[dict[str, Any]]
    reasons: list[dict[str, Any]]
    suggested_action: str
    status: str
    created_at: datetime
    updated_at: datetime
    decided_by: str
    decided_at: datetime | None
    decision_reason: str


def _alert_view(a: Alert) -> AlertView:
    return AlertView(
        id=a.pk,
        customer_id=a.customer_id,
        customer_name=a.customer.name,
        source=a.source,
        rule_code=a.rule_code,
        rule_name=a.rule.display_name() if a.rule else translation.gettext(MODEL_RULE_NAME),
        rule_version=a.rule_version,
        severity=a.severity,
        value=a.value,
        threshold=a.threshold,
        volume=a.volume,
        evidence=a.evidence or [],
        reasons=a.reasons or [],
        suggested_action=a.suggested_action,
        status=a.status,
        created_at=a.created_at,
        updated_at=a.updated_at,
        decided_by=a.decided_by.get_username() if a.decided_by else "",
        decided_at=a.decided_at,
        decision_reason=a.decision_reason,
    )


@dataclass(frozen=True)
class AlertFilter:
    status: str = "live"  # live = open or watching; or one status; or "all"
    severity: str = ""
    rule: str = ""
    source: str = ""
    customer_id: int | None = None


def alert_list(
    *, user: Any, filters: AlertFilter, limit: int = 50, offset: int = 0
) -> tuple[int, list[AlertView]]:
    """The queue, most severe first, then oldest first (what has waited longest)."""
    require_permission(user, VIEW_RISK)
    qs = Alert.objects.select_related("customer", "rule", "decided_by")
    if filters.status == "live":
        qs = qs.filter(status__in=rules.LIVE_ALERT)
    elif filters.status != "all":
        if filters.status not in ALERT_STATUSES:
            raise ValidationFailed(
                f"status: one of live, all, {', '.join(ALERT_STATUSES)}; got {filters.status!r}"
            )
        qs = qs.filter(status=filters.status)
    if filters.severity:
        qs = qs.filter(severity=filters.severity)
    if filters.rule:
        qs = qs.filter(rule_code=filters.rule)
    if filters.source:
        qs = qs.filter(source=filters.source)
    if filters.customer_id is not None:
        qs = qs.filter(customer_id=filters.customer_id)
    from django.db.models import Case, IntegerField, Value, When

    qs = qs.annotate(
        severity_rank=Case(
            *(When(severity=s, then=Value(r)) for s, r in SEVERITY_ORDER.items()),
            output_field=IntegerField(),
        )
    ).order_by("severity_rank", "created_at", "id")
    total = qs.count()
    return total, [_alert_view(a) for a in qs[offset : offset + limit]]


def alert_get(*, user: Any, alert_id: int) -> AlertView:
    require_permission(user, VIEW_RISK)
    alert = (
        Alert.objects.select_related("customer", "rule", "decided_by").filter(pk=alert_id).first()
    )
    if alert is None:
        raise NotFound(f"alert {alert_id} not found")
    return _alert_view(alert)


# ---------------------------------------------------------------------- blacklist and appeals


@dataclass(frozen=True)
class BlacklistView:
    id: int
    customer_id: int
    customer_name: str
    status: str
    reason: str
    evidence: list[dict[str, Any]]
    alert_id: int | None
    proposed_by: str
    proposed_at: datetime
    approvals: list[dict[str, Any]]
    approvals_needed: int
    rejected_by: str
    rejection_reason: str
    lifted_at: datetime | None
    lift_reason: str


def _blacklist_view(e: BlacklistEntry) -> BlacklistView:
    return BlacklistView(
        id=e.pk,
        customer_id=e.customer_id,
        customer_name=e.customer.name,
        status=e.status,
        reason=e.reason,
        evidence=e.evidence or [],
        alert_id=e.alert_id,
        proposed_by=e.proposed_by.get_username() if e.proposed_by else "",
        proposed_at=e.proposed_at,
        approvals=list(e.approvals or []),
        approvals_needed=e.approvals_needed,
        rejected_by=e.rejected_by.get_username() if e.rejected_by else "",
        rejection_reason=e.rejection_reason,
        lifted_at=e.lifted_at,
        lift_reason=e.lift_reason,
    )


def blacklist_list(
    *, user: Any, status: str = "", customer_id: int | None = None
) -> list[BlacklistView]:
    require_permission(user, VIEW_RISK)
    qs = BlacklistEntry.objects.select_related("customer", "proposed_by", "rejected_by")
    if status:
        if status not in BlacklistEntry.Status.values:
            raise ValidationFailed(
                f"status: one of {', '.join(BlacklistEntry.Status.values)}; got {status!r}"
            )
        qs = qs.filter(status=status)
    if customer_id is not None:
        qs = qs.filter(customer_id=customer_id)
    return [_blacklist_view(e) for e in qs.order_by("-id")[:500]]


@dataclass(frozen=True)
class AppealView:
    id: int
    customer_id: int
    customer_name: str
    subject: str  # restriction, blacklist or automated
    restriction_id: int | None
    blacklist_id: int | None
    target: str  # plain words: what is appealed
    statement: str
    channel: str
    filed_by: str
    filed_at: datetime
    due_at: datetime
    is_overdue: bool
    status: str
    reviewer: str
    decided_at: datetime | None
    decision_reason: str


def _appeal_view(a: Appeal, now: datetime) -> AppealView:
    if a.subject == Appeal.Subject.AUTOMATED:
        target = translation.gettext("Checkout terms set by the credit score")
    elif a.restriction_id is not None and a.restriction is not None:
        target = f"{RestrictionKind(a.restriction.kind).label} — {a.restriction.reason}"
    else:
        what = translation.gettext("Blacklisting")
        target = f"{what} — {a.blacklist.reason if a.blacklist else ''}"
    return AppealView(
        id=a.pk,
        customer_id=a.customer_id,
        customer_name=a.customer.name,
        subject=a.subject,
        restriction_id=a.restriction_id,
        blacklist_id=a.blacklist_id,
        target=target,
        statement=a.statement,
        channel=a.channel,
        filed_by=a.filed_by.get_username() if a.filed_by else "",
        filed_at=a.filed_at,
        due_at=a.due_at,
        is_overdue=a.status in rules.LIVE_APPEAL and a.due_at < now,
        status=a.status,
        reviewer=a.reviewer.get_username() if a.reviewer else "",
        decided_at=a.decided_at,
        decision_reason=a.decision_reason,
    )


def appeal_list(
    *, user: Any, status: str = "live", customer_id: int | None = None
) -> list[AppealView]:
    """Appeals, those due soonest first. Agents see the appeals they may file (their customers'),
    analysts and auditors all."""
    if not (user.has_perm(VIEW_RISK) or user.has_perm(VIEW_RESTRICTIONS)):
        require_permission(user, VIEW_RISK)
    qs = Appeal.objects.select_related(
        "customer", "restriction", "blacklist", "filed_by", "reviewer"
    )
    if status == "live":
        qs = qs.filter(status__in=rules.LIVE_APPEAL)
    elif status != "all":
        if status not in Appeal.Status.values:
            raise ValidationFailed(
                f"status: one of live, all, {', '.join(Appeal.Status.values)}; got {status!r}"
            )
        qs = qs.filter(status=status)
    if customer_id is not None:
        qs = qs.filter(customer_id=customer_id)
    now = timezone.now()
    return [_appeal_view(a, now) for a in qs.order_by("due_at", "id")[:500]]


def appeal_get(*, user: Any, appeal_id: int) -> AppealView:
    if not (user.has_perm(VIEW_RISK) or user.has_perm(VIEW_RESTRICTIONS)):
        require_permission(user, VIEW_RISK)
    appeal = (
        Appeal.objects.select_related(
            "customer", "restriction", "blacklist", "filed_by", "reviewer"
        )
        .filter(pk=appeal_id)
        .first()
    )
    if appeal is None:
        raise NotFound(f"appeal {appeal_id} not found")
    return _appeal_view(appeal, timezone.now())


# ---------------------------------------------------------------------- rules, runs, policy


def rule_list(*, user: Any) -> list[RiskRule]:
    """Every rule (the out-of-the-box ones created if missing), by code."""
    require_permission(user, VIEW_RISK)
    from patron.risk.detect import rules_seed

    rules_seed()
    return list(RiskRule.objects.order_by("code"))


def detection_runs_latest(*, user: Any, limit: int = 50) -> list[DetectionRun]:
    require_permission(user, VIEW_RISK)
    return list(DetectionRun.objects.order_by("-id")[:limit])


def risk_policy_in_force(*, user: Any) -> RiskPolicy:
    require_permission(user, VIEW_RISK)
    from patron.risk.services import risk_policy_active

    return risk_policy_active()
