"""Risk decisions: alerts worked by analysts, restrictions, blacklisting, appeals, and the
risk policy. Every change is one transaction, audited, with the case row locked first so two
people acting on the same case at once cannot both win (PostgreSQL ``SELECT … FOR UPDATE``;
SQLite's write transactions are serial).

No function here lets a rule or a model restrict or blacklist anyone: detection only raises
alerts and proposes (``patron.risk.detect``); a person decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from patron.account.roles import (
    ACT_ON_RISK,
    CHANGE_RISK_RULES,
    DECIDE_APPEAL,
    FILE_APPEAL,
)
from patron.account.services import require_permission
from patron.audit.services import AuditEntry, audit_record
from patron.customer.models import Customer
from patron.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from patron.outbox.services import service_message
from patron.risk import rules
from patron.risk.models import (
    Alert,
    Appeal,
    BlacklistEntry,
    CreditOverride,
    Restriction,
    RestrictionKind,
    RiskPolicy,
)
from patron.workflow import audit_update, locked, reason_text, separate, transition

# ---------------------------------------------------------------------- risk policy


def risk_policy_active() -> RiskPolicy:
    """The active risk policy; the built-in default becomes version 1 on first use."""
    active = RiskPolicy.objects.filter(is_active=True).first()
    if active is not None:
        return active
    with transaction.atomic():
        latest = RiskPolicy.objects.select_for_update().order_by("-version").first()
        if latest is None:
            return RiskPolicy.objects.create(
                version=1,
                rules=rules.DEFAULT_RISK_POLICY,
                note="Patron's default risk policy",
                is_active=True,
                created_by="patron",
            )
        latest.is_active = True
        latest.save(update_fields=["is_active"])
        return latest


def risk_policy_parse(data: Any) -> rules.RiskPolicyRules:
    if not isinstance(data, dict):
        raise ValidationFailed("risk policy: expected a JSON object")
    try:
        return rules.RiskPolicyRules.from_dict(data)
    except (ValueError, TypeError) as error:
        raise ValidationFailed(f"risk policy: {error}") from error


def risk_policy_save(*, user: Any, data: Any, note: str = "") -> RiskPolicy:
    """Save ``data`` as the next version and make it the one in force."""
    require_permission(user, CHANGE_RISK_RULES)
    risk_policy_parse(data)
    with transaction.atomic():
        current = risk_policy_active()
        version = (RiskPolicy.objects.aggregate(v=Max("version"))["v"] or 0) + 1
        RiskPolicy.objects.filter(pk=current.pk).update(is_active=False)
        policy = RiskPolicy.objects.create(
            version=version,
            rules={**rules.DEFAULT_RISK_POLICY, **data},
            note=note[:200],
            is_active=True,
            created_by=user.get_username(),
        )
        audit_record(
            AuditEntry(
                action="update",
                entity_type="risk.policy",
                entity_id=str(version),
                summary=f"risk policy v{version} in force (was v{current.version})",
                changes={"rules": policy.rules, "note": note[:200]},
            ),
            actor=user,
        )
    from patron.risk.selectors import policy_cache_clear

    policy_cache_clear()  # this process reads the new version at once; others within the TTL
    transaction.on_commit(policy_cache_clear)
    return policy


# ---------------------------------------------------------------------- helpers


def _audit(
    user: Any, *, entity: str, pk: int, customer_id: int, summary: str, **changes: Any
) -> None:
    audit_update(
        user,
        entity_type=f"risk.{entity}",
        pk=pk,
        customer_id=customer_id,
        summary=summary,
        system_label="risk detection",
        **changes,
    )


def _customer(customer_id: int) -> Customer:
    customer = Customer.objects.filter(pk=customer_id).first()
    if customer is None:
        raise NotFound(f"customer {customer_id} not found")
    return customer


# ---------------------------------------------------------------------- restrictions


@dataclass(frozen=True)
class RestrictionRequest:
    kind: str
    reason: str
    scope: dict[str, Any]
    expires_at: datetime | None = None


def restriction_validate(request: RestrictionRequest) -> dict[str, Any]:
    """Check kind, scope and expiry; return the scope as stored. Errors name the field."""
    if request.kind not in RestrictionKind.values:
        raise ValidationFailed(
            f"restriction.kind: unknown kind {request.kind!r}; choose from "
            f"{', '.join(RestrictionKind.values)}"
        )
    scope = request.scope or {}
    if not isinstance(scope, dict):
        raise ValidationFailed("restriction.scope: expected an object")
    if request.kind == RestrictionKind.PAYMENT_METHOD:
        methods = scope.get("methods") or list(rules.DEFERRED_METHODS)
        known = rules.DEFAULT_RISK_POLICY["payment_methods"] + ["voucher", "other"]
        if not isinstance(methods, list) or not all(m in known for m in methods):
            raise ValidationFailed(
                f"restriction.scope.methods: a list of payment methods from {', '.join(known)}"
            )
        return {"methods": sorted(set(methods))}
    if request.kind == RestrictionKind.CREDIT_LIMIT:
        try:
            limit = Decimal(str(scope.get("limit")))
        except (InvalidOperation, ValueError) as error:
            raise ValidationFailed("restriction.scope.limit: expected an amount") from error
        if not limit.is_finite() or limit < 0:
            raise ValidationFailed("restriction.scope.limit: expected an amount of zero or more")
        return {"limit": str(limit.quantize(Decimal("0.01")))}
    if scope:
        raise ValidationFailed(f"restriction.scope: a {request.kind} restriction takes no scope")
    return {}


def restriction_apply(
    *,
    user: Any,
    customer_id: int,
    request: RestrictionRequest,
    alert_id: int | None = None,
    evidence: list[dict[str, Any]] | None = None,
) -> Restriction:
    """A person restricts a customer. With ``alert_id`` the alert is closed as restricted."""
    require_permission(user, ACT_ON_RISK)
    reason = reason_text(request.reason, "restriction")
    scope = restriction_validate(request)
    now = timezone.now()
    if request.expires_at is not None and request.expires_at <= now:
        raise ValidationFailed("restriction.expires_at: must be in the future")
    with transaction.atomic():
        customer = _customer(customer_id)
        alert = None
        if alert_id is not None:
            alert = locked(Alert, alert_id, "alert")
            if alert.customer_id != customer.pk:
                raise ValidationFailed(f"alert {alert_id} is about another customer")
            _decide_alert(alert, user=user, action="restrict", reason=reason, now=now)
            evidence = evidence or alert.evidence
        restriction = Restriction.objects.create(
            customer=customer,
            kind=request.kind,
            scope=scope,
            reason=reason,
            evidence=evidence or [],
            alert=alert,
            starts_at=now,
            expires_at=request.expires_at,
            applied_by=user,
        )
        _audit(
            user,
            entity="restriction",
            pk=restriction.pk,
            customer_id=customer.pk,
            summary=f"restricted: {request.kind}",
            kind=request.kind,
            scope=scope,
            reason=reason,
            expires_at=request.expires_at.isoformat() if request.expires_at else None,
            alert=alert_id,
        )
    return restriction


def _lift(restriction: Restriction, *, user: Any, reason: str, now: datetime, via: str) -> None:
    if restriction.lifted_at is not None:
        raise Conflict(f"restriction {restriction.pk} was already lifted")
    restriction.lifted_at = now
    restriction.lifted_by = user
    restriction.lift_reason = reason
    restriction.save(update_fields=["lifted_at", "lifted_by", "lift_reason"])
    _audit(
        user,
        entity="restriction",
        pk=restriction.pk,
        customer_id=restriction.customer_id,
        summary=f"restriction lifted ({via}): {restriction.kind}",
        lifted_via=via,
        reason=reason,
    )


def restriction_lift(*, user: Any, restriction_id: int, reason: str) -> Restriction:
    require_permission(user, ACT_ON_RISK)
    reason = reason_text(reason, "lifting a restriction")
    with transaction.atomic():
        restriction = locked(Restriction, restriction_id, "restriction")
        _lift(restriction, user=user, reason=reason, now=timezone.now(), via="analyst")
    return restriction


# ---------------------------------------------------------------------- alerts


def _decide_alert(alert: Alert, *, user: Any, action: str, reason: str, now: datetime) -> None:
    previous = alert.status
    alert.status = transition(rules.alert_next, alert.status, action)
    alert.decided_by = user
    alert.decided_at = now
    alert.decision_reason = reason
    alert.updated_at = now
    alert.save(
        update_fields=["status", "decided_by", "decided_at", "decision_reason", "updated_at"]
    )
    _audit(
        user,
        entity="alert",
        pk=alert.pk,
        customer_id=alert.customer_id,
        summary=f"alert {alert.rule_code}: {previous} -> {alert.status}",
        action=action,
        reason=reason,
    )


def alert_decide(*, user: Any, alert_id: int, action: str, reason: str) -> Alert:
    """Watch or dismiss an alert (restrict and blacklist have their own services)."""
    require_permission(user, ACT_ON_RISK)
    if action not in ("watch", "dismiss"):
        raise ValidationFailed(
            f"alert action {action!r}: use watch or dismiss here; restrictions and blacklist "
            "proposals are made with their own requests"
        )
    reason = reason_text(reason, f"{action} alert")
    with transaction.atomic():
        alert = locked(Alert, alert_id, "alert")
        _decide_alert(alert, user=user, action=action, reason=reason, now=timezone.now())
    return alert


# ---------------------------------------------------------------------- blacklist


def blacklist_propose(
    *, user: Any, customer_id: int, reason: str, alert_id: int | None = None
) -> BlacklistEntry:
    """An analyst proposes blacklisting and counts as its first approval; with the default
    policy a second analyst must approve (``blacklist_approve``) before it is in force."""
    require_permission(user, ACT_ON_RISK)
    reason = reason_text(reason, "blacklist proposal")
    now = timezone.now()
    needed = risk_policy_rules().blacklist_approvals
    try:
        with transaction.atomic():
            customer = _customer(customer_id)
            alert = None
            if alert_id is not None:
                alert = locked(Alert, alert_id, "alert")
                if alert.customer_id != customer.pk:
                    raise ValidationFailed(f"alert {alert_id} is about another customer")
                _decide_alert(alert, user=user, action="propose_blacklist", reason=reason, now=now)
            # The proposer is the first of the ``needed`` people (default two) who decide.
            entry = BlacklistEntry.objects.create(
                customer=customer,
                status=rules.blacklist_next(
                    "proposed", "approve", approvals_after=1, needed=needed
                ),
                reason=reason,
                evidence=alert.evidence if alert is not None else [],
                alert=alert,
                proposed_by=user,
                proposed_at=now,
                approvals=[_approval(user, now, reason)],
                approvals_needed=needed,
                decided_at=now if needed <= 1 else None,
            )
            _audit(
                user,
                entity="blacklist",
                pk=entry.pk,
                customer_id=customer.pk,
                summary="blacklisting proposed",
                reason=reason,
                approvals_needed=needed,
                alert=alert_id,
            )
    except IntegrityError as error:
        raise Conflict(
            f"customer {customer_id} already has a blacklist entry proposed or in force"
        ) from error
    return entry


def _approval(user: Any, at: datetime, reason: str) -> dict[str, Any]:
    return {
        "user_id": user.pk,
        "username": user.get_username(),
        "at": at.isoformat(),
        "reason": reason,
    }


def blacklist_approve(*, user: Any, entry_id: int, reason: str) -> BlacklistEntry:
    require_permission(user, ACT_ON_RISK)
    reason = reason_text(reason, "blacklist approval")
    with transaction.atomic():
        entry = locked(BlacklistEntry, entry_id, "blacklist entry")
        approvers = [a["user_id"] for a in entry.approvals]
        separate(
            rules.check_approver, user.pk, proposer_id=entry.proposed_by_id, approver_ids=approvers
        )
        now = timezone.now()
        previous = entry.status
        entry.status = transition(
            rules.blacklist_next,
            entry.status,
            "approve",
            approvals_after=len(approvers) + 1,
            needed=entry.approvals_needed,
        )
        entry.approvals = [*entry.approvals, _approval(user, now, reason)]
        if entry.status == BlacklistEntry.Status.ACTIVE:
            entry.decided_at = now
        entry.save(update_fields=["status", "approvals", "decided_at"])
        _audit(
            user,
            entity="blacklist",
            pk=entry.pk,
            customer_id=entry.customer_id,
            summary=f"blacklisting approved ({len(entry.approvals)}/{entry.approvals_needed}): "
            f"{previous} -> {entry.status}",
            reason=reason,
        )
    return entry


def blacklist_reject(*, user: Any, entry_id: int, reason: str) -> BlacklistEntry:
    require_permission(user, ACT_ON_RISK)
    reason = reason_text(reason, "blacklist rejection")
    with transaction.atomic():
        entry = locked(BlacklistEntry, entry_id, "blacklist entry")
        entry.status = transition(rules.blacklist_next, entry.status, "reject")
        entry.rejected_by = user
        entry.rejection_reason = reason
        entry.decided_at = timezone.now()
        entry.save(update_fields=["status", "rejected_by", "rejection_reason", "decided_at"])
        _audit(
            user,
            entity="blacklist",
            pk=entry.pk,
            customer_id=entry.customer_id,
            summary="blacklisting rejected",
            reason=reason,
        )
    return entry


def _blacklist_lift(entry: BlacklistEntry, *, user: Any, reason: str, via: str) -> None:
    entry.status = transition(rules.blacklist_next, entry.status, "lift")
    entry.lifted_at = timezone.now()
    entry.lifted_by = user
    entry.lift_reason = reason
    entry.save(update_fields=["status", "lifted_at", "lifted_by", "lift_reason"])
    _audit(
        user,
        entity="blacklist",
        pk=entry.pk,
        customer_id=entry.customer_id,
        summary=f"blacklisting lifted ({via})",
        reason=reason,
        lifted_via=via,
    )


def blacklist_lift(*, user: Any, entry_id: int, reason: str) -> BlacklistEntry:
    require_permission(user, ACT_ON_RISK)
    reason = reason_text(reason, "lifting a blacklisting")
    with transaction.atomic():
        entry = locked(BlacklistEntry, entry_id, "blacklist entry")
        _blacklist_lift(entry, user=user, reason=reason, via="analyst")
    return entry


# ---------------------------------------------------------------------- appeals


def credit_override_revoke(*, user: Any, override_id: int, reason: str) -> CreditOverride:
    """End terms granted on appeal (the score decides again); recorded like every decision."""
    require_permission(user, ACT_ON_RISK)
    reason = reason_text(reason, "revoking granted checkout terms")
    with transaction.atomic():
        override = locked(CreditOverride, override_id, "credit override")
        if override.revoked_at is not None:
            raise Conflict(f"credit override {override_id} was already revoked")
        override.revoked_at = timezone.now()
        override.revoked_by = user
        override.revoke_reason = reason
        override.save(update_fields=["revoked_at", "revoked_by", "revoke_reason"])
        _audit(
            user,
            entity="credit_override",
            pk=override.pk,
            customer_id=override.customer_id,
            summary="checkout terms granted on appeal revoked",
            reason=reason,
        )
    return override


def _override_grant(
    appeal: Appeal, *, user: Any, reason: str, now: datetime, limit: Decimal | None
) -> CreditOverride:
    """Replace what the score decided with terms a person chose; an earlier grant is revoked."""
    if limit is None:
        bands = risk_policy_rules().credit_bands
        limit = bands[-1].limit if bands else Decimal("0.00")
    CreditOverride.objects.filter(customer_id=appeal.customer_id, revoked_at__isnull=True).update(
        revoked_at=now, revoked_by=user, revoke_reason=f"replaced on appeal {appeal.pk}"
    )
    override = CreditOverride.objects.create(
        customer_id=appeal.customer_id,
        credit_limit=limit.quantize(Decimal("0.01")),
        reason=reason,
        appeal=appeal,
        granted_by=user,
        granted_at=now,
    )
    _audit(
        user,
        entity="credit_override",
        pk=override.pk,
        customer_id=appeal.customer_id,
        summary=f"checkout terms granted on appeal: credit limit {override.credit_limit}",
        credit_limit=str(override.credit_limit),
        reason=reason,
    )
    return override


def risk_policy_rules() -> rules.RiskPolicyRules:
    return rules.RiskPolicyRules.from_dict(risk_policy_active().rules)


def appeal_file(
    *,
    user: Any,
    customer_id: int,
    statement: str,
    restriction_id: int | None = None,
    blacklist_id: int | None = None,
    automated: bool = False,
    channel: str = "staff",
) -> Appeal:
    """File a customer's appeal against one restriction or blacklisting in force, or
    (``automated``) against the checkout terms their credit score decided without a person."""
    require_permission(user, FILE_APPEAL)
    statement = reason_text(statement, "appeal statement")
    if sum((restriction_id is not None, blacklist_id is not None, automated)) != 1:
        raise ValidationFailed(
            "appeal: name exactly one of restriction_id, blacklist_id and automated"
        )
    now = timezone.now()
    sla = risk_policy_rules().appeal_sla_hours
    try:
        with transaction.atomic():
            customer = _customer(customer_id)
            restriction = blacklist = None
            if restriction_id is not None:
                subject = Appeal.Subject.RESTRICTION
                restriction = locked(Restriction, restriction_id, "restriction")
                if restriction.customer_id != customer.pk:
                    raise ValidationFailed(f"restriction {restriction_id} is another customer's")
                if restriction.lifted_at is not None:
                    raise Conflict(f"restriction {restriction_id} is no longer in force")
                against = f"restriction {restriction_id}"
            elif blacklist_id is not None:
                subject = Appeal.Subject.BLACKLIST
                blacklist = locked(BlacklistEntry, blacklist_id, "blacklist entry")
                if blacklist.customer_id != customer.pk:
                    raise ValidationFailed(f"blacklist entry {blacklist_id} is another customer's")
                if blacklist.status not in rules.LIVE_BLACKLIST:
                    raise Conflict(f"blacklist entry {blacklist_id} is {blacklist.status}")
                against = f"blacklisting {blacklist_id}"
            else:
                subject = Appeal.Subject.AUTOMATED
                against = "the checkout terms set by the credit score"
            appeal = Appeal.objects.create(
                customer=customer,
                subject=subject,
                restriction=restriction,
                blacklist=blacklist,
                statement=statement,
                channel=channel[:20] or "staff",
                filed_by=user,
                filed_at=now,
                due_at=now + timedelta(hours=sla),
            )
            _audit(
                user,
                entity="appeal",
                pk=appeal.pk,
                customer_id=customer.pk,
                summary=f"appeal filed against {against}",
                channel=appeal.channel,
                due_at=appeal.due_at.isoformat(),
            )
    except IntegrityError as error:
        raise Conflict("an appeal against this decision is already open") from error
    return appeal


def _deciders(appeal: Appeal) -> list[int | None]:
    if appeal.subject == Appeal.Subject.AUTOMATED:
        return []  # the score decided: any analyst may review
    if appeal.restriction_id is not None:
        restriction = appeal.restriction
        assert restriction is not None
        return [restriction.applied_by_id]
    entry = appeal.blacklist
    assert entry is not None
    return [entry.proposed_by_id, *(a["user_id"] for a in entry.approvals)]


def appeal_start_review(*, user: Any, appeal_id: int) -> Appeal:
    require_permission(user, DECIDE_APPEAL)
    with transaction.atomic():
        appeal = locked(Appeal, appeal_id, "appeal")
        separate(rules.check_reviewer, user.pk, decider_ids=_deciders(appeal))
        appeal.status = transition(rules.appeal_next, appeal.status, "start_review")
        appeal.reviewer = user
        appeal.review_started_at = timezone.now()
        appeal.save(update_fields=["status", "reviewer", "review_started_at"])
        _audit(
            user,
            entity="appeal",
            pk=appeal.pk,
            customer_id=appeal.customer_id,
            summary="appeal in review",
        )
    return appeal


# How the customer's message names the decision (the message is rendered in their language; the
# outcome carries both, as certification's decisions do).
APPEAL_OUTCOMES = {"uphold": "维持原决定 upheld", "overturn": "已撤销 overturned"}


def appeal_decide(
    *,
    user: Any,
    appeal_id: int,
    outcome: str,
    reason: str,
    credit_limit: Decimal | None = None,
) -> Appeal:
    """Uphold or overturn. Overturning lifts what was appealed at once, in the same transaction;
    for an appeal against the automated checkout terms it grants ``credit_limit`` with cash on
    delivery and pay later (``CreditOverride``)."""
    require_permission(user, DECIDE_APPEAL)
    if outcome not in ("uphold", "overturn"):
        raise ValidationFailed(f"appeal outcome {outcome!r}: use uphold or overturn")
    reason = reason_text(reason, "appeal decision")
    if credit_limit is not None and (not credit_limit.is_finite() or credit_limit < 0):
        raise ValidationFailed("appeal.credit_limit: expected an amount of zero or more")
    with transaction.atomic():
        appeal = locked(Appeal, appeal_id, "appeal")
        status = transition(rules.appeal_next, appeal.status, outcome)
        separate(rules.check_reviewer, user.pk, decider_ids=_deciders(appeal))
        if appeal.reviewer_id is not None and appeal.reviewer_id != user.pk:
            raise PermissionDenied(f"appeal {appeal_id} is being reviewed by another analyst")
        appeal.status = status
        now = timezone.now()
        appeal.reviewer = user
        appeal.decided_at = now
        appeal.decision_reason = reason
        appeal.save(update_fields=["status", "reviewer", "decided_at", "decision_reason"])
        if outcome == "overturn":
            lift_reason = f"appeal {appeal.pk} overturned: {reason}"
            if appeal.subject == Appeal.Subject.AUTOMATED:
                _override_grant(appeal, user=user, reason=lift_reason, now=now, limit=credit_limit)
            elif appeal.restriction_id is not None:
                restriction = locked(Restriction, appeal.restriction_id, "restriction")
                if restriction.lifted_at is None:
                    _lift(restriction, user=user, reason=lift_reason, now=now, via="appeal")
            else:
                assert appeal.blacklist_id is not None
                entry = locked(BlacklistEntry, appeal.blacklist_id, "blacklist entry")
                if entry.status == BlacklistEntry.Status.ACTIVE:
                    _blacklist_lift(entry, user=user, reason=lift_reason, via="appeal")
                elif entry.status in rules.LIVE_BLACKLIST:
                    entry.status = BlacklistEntry.Status.REJECTED
                    entry.rejected_by = user
                    entry.rejection_reason = lift_reason
                    entry.decided_at = now
                    entry.save(
                        update_fields=["status", "rejected_by", "rejection_reason", "decided_at"]
                    )
        _audit(
            user,
            entity="appeal",
            pk=appeal.pk,
            customer_id=appeal.customer_id,
            summary=f"appeal {appeal.status}",
            reason=reason,
        )
        service_message(
            appeal.customer_id,
            "appeal.decided",
            key=f"appeal.decided:{appeal.pk}",
            source=f"risk.appeal:{appeal.pk}",
            outcome=APPEAL_OUTCOMES[outcome],
            reason=reason,
        )
    return appeal
