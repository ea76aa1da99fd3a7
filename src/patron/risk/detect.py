"""Running detection: the analysts' rules and the anomaly model over every customer, turned into
alerts. Detection never restricts or blacklists anyone; it raises alerts that *suggest* an
action, and a person decides (``patron.risk.services``).

Alerts are kept to one live alert per customer and rule: while an alert is open or watched, a
later run refreshes its value and evidence. A dismissed alert is raised again only when the rule
finds records the dismissed alert did not name, so dismissing is not undone by the next night.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from patron.account.roles import CHANGE_RISK_RULES
from patron.account.services import require_permission
from patron.audit.services import AuditEntry, audit_record
from patron.errors import NotFound, ValidationFailed
from patron.risk import detection, rules
from patron.risk.models import Alert, DetectionRun, RiskRule, Severity, SuggestedAction

MODEL_CODE = "model:isolation_forest"
#: The share of customers the anomaly model may call unusual on one run.
MODEL_CONTAMINATION = 0.005
EDITABLE = (
    "name",
    "name_zh",
    "window_days",
    "threshold",
    "min_volume",
    "params",
    "severity",
    "action",
    "is_enabled",
)


# ---------------------------------------------------------------------- rules as data


def rules_seed() -> int:
    """Create the out-of-the-box rules that are missing (by code); returns how many."""
    have = set(RiskRule.objects.values_list("code", flat=True))
    fresh = [
        RiskRule(
            code=spec.code,
            name=spec.name,
            name_zh=spec.name_zh,
            measure=spec.measure,
            window_days=spec.window_days,
            threshold=spec.threshold,
            min_volume=spec.min_volume,
            params=dict(spec.params),
            severity=spec.severity,
            action=spec.action,
            updated_by="patron",
        )
        for spec in detection.DEFAULT_RULES
        if spec.code not in have
    ]
    RiskRule.objects.bulk_create(fresh)
    return len(fresh)


def rule_spec(rule: RiskRule) -> detection.RuleSpec:
    return detection.RuleSpec(
        code=rule.code,
        name=rule.name,
        measure=rule.measure,
        window_days=rule.window_days,
        threshold=rule.threshold,
        min_volume=rule.min_volume,
        severity=rule.severity,
        action=rule.action,
        params=dict(rule.params or {}),
        name_zh=rule.name_zh,
    )


def _no_nul(value: str, where: str) -> str:
    if "\x00" in value:
        raise ValidationFailed(f"{where}: must not contain the NUL character")
    return value


def rule_validate(data: Mapping[str, Any], *, base: RiskRule) -> dict[str, Any]:
    """The changed fields of ``base`` as ``data`` asks, checked; errors name the rule and field."""
    unknown = sorted(set(data) - set(EDITABLE))
    if unknown:
        raise ValidationFailed(
            f"rule {base.code}: cannot change {', '.join(unknown)}; editable: {', '.join(EDITABLE)}"
        )
    where = f"rule {base.code}"
    changed: dict[str, Any] = {}
    for name, value in data.items():
        if name == "name":
            if not isinstance(value, str) or not value.strip() or len(value) > 120:
                raise ValidationFailed(f"{where}.name: 1 to 120 characters")
            value = _no_nul(value.strip(), f"{where}.name")
        elif name == "name_zh":
            if not isinstance(value, str) or len(value) > 120:
                raise ValidationFailed(f"{where}.name_zh: at most 120 characters")
            value = _no_nul(value.strip(), f"{where}.name_zh")
        elif name == "window_days":
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 3650:
                raise ValidationFailed(f"{where}.window_days: a whole number of days, 1 to 3650")
        elif name == "threshold":
            if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
                raise ValidationFailed(f"{where}.threshold: expected a number")
            value = float(value)
            if value < 0:
                raise ValidationFailed(f"{where}.threshold: must not be negative")
        elif name == "min_volume":
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 100_000:
                raise ValidationFailed(f"{where}.min_volume: a whole number, 0 to 100000")
        elif name == "params":
            measure = detection.MEASURES[base.measure]
            if not isinstance(value, dict):
                raise ValidationFailed(f"{where}.params: expected an object")
            stray = sorted(set(value) - set(measure.default_params))
            if stray:
                allowed = ", ".join(measure.default_params) or "none"
                raise ValidationFailed(
                    f"{where}.params: unknown {', '.join(stray)}; {base.measure} takes {allowed}"
                )
            for key, number in value.items():
                if isinstance(number, bool) or not isinstance(number, int | float):
                    raise ValidationFailed(f"{where}.params.{key}: expected a number")
        elif name == "severity":
            if value not in Severity.values:
                raise ValidationFailed(f"{where}.severity: one of {', '.join(Severity.values)}")
        elif name == "action":
            if value not in SuggestedAction.values:
                raise ValidationFailed(
                    f"{where}.action: one of {', '.join(SuggestedAction.values)}"
                )
        elif name == "is_enabled" and not isinstance(value, bool):
            raise ValidationFailed(f"{where}.is_enabled: true or false")
        if getattr(base, name) != value:
            changed[name] = value
    return changed


def rule_update(*, user: Any, code: str, data: Mapping[str, Any]) -> RiskRule:
    """Edit a rule; every edit bumps its version and is audited with old and new values."""
    require_permission(user, CHANGE_RISK_RULES)
    with transaction.atomic():
        rule = RiskRule.objects.select_for_update().filter(code=code).first()
        if rule is None:
            raise NotFound(f"rule {code!r} not found")
        changed = rule_validate(data, base=rule)
        if not changed:
            return rule
        before = {name: getattr(rule, name) for name in changed}
        for name, value in changed.items():
            setattr(rule, name, value)
        rule.version += 1
        rule.updated_by = user.get_username()
        rule.save()
        audit_record(
            AuditEntry(
                action="update",
                entity_type="risk.rule",
                entity_id=rule.code,
                summary=f"rule {rule.code} v{rule.version}: {', '.join(changed)} changed",
                changes={name: [before[name], changed[name]] for name in changed},
            ),
            actor=user,
        )
    return rule


# ---------------------------------------------------------------------- running


@dataclass(frozen=True)
class Finding:
    """A rule hit or an unusual customer, about to become (or refresh) an alert."""

    customer_id: int
    rule_code: str
    rule: RiskRule | None
    severity: str
    value: float
    threshold: float | None
    volume: int
    evidence: list[dict[str, Any]]
    reasons: list[dict[str, Any]]
    action: str


def _load(as_of: datetime) -> tuple[Any, int]:
    from patron.risk.identities import load_identities
    from patron.scoring.sources import load_sources

    sources = load_sources()
    sources.extra["identities"] = load_identities()
    return sources, sources.customers.num_rows


def _rule_findings(sources: Any, as_of: datetime, enabled: Sequence[RiskRule]) -> list[Finding]:
    by_code = {rule.code: rule for rule in enabled}
    hits = detection.detect(sources, as_of, [rule_spec(rule) for rule in enabled])
    return [
        Finding(
            customer_id=hit.customer_id,
            rule_code=hit.rule,
            rule=by_code[hit.rule],
            severity=by_code[hit.rule].severity,
            value=float(hit.value),
            threshold=by_code[hit.rule].threshold,
            volume=int(hit.volume),
            evidence=[{"type": kind, "id": int(pk)} for kind, pk in hit.evidence],
            reasons=[],
            action=by_code[hit.rule].action,
        )
        for hit in hits
    ]


def _model_findings(sources: Any, as_of: datetime) -> list[Finding]:
    from patron.intelligence.features import customer_features
    from patron.risk.anomaly import anomalies

    features = customer_features(sources, as_of)
    if features.num_rows < 50:  # too few customers for "unusual" to mean anything
        return []
    ranked = anomalies(features, contamination=MODEL_CONTAMINATION).to_pylist()
    return [
        Finding(
            customer_id=int(row["customer_id"]),
            rule_code=MODEL_CODE,
            rule=None,
            severity=Severity.LOW,
            value=float(row["score"]),
            threshold=None,
            volume=0,
            evidence=[{"type": "customer", "id": int(row["customer_id"])}],
            reasons=list(row["reasons"]),
            action=SuggestedAction.WATCH,
        )
        for row in ranked
        if row["is_outlier"]
    ]


def detection_run(
    *,
    as_of: datetime | None = None,
    trigger: str = "cli",
    user: Any = None,
    with_model: bool = True,
) -> DetectionRun:
    """Run every enabled rule (and the anomaly model) as of ``as_of`` (default now)."""
    if user is not None:
        require_permission(user, CHANGE_RISK_RULES)
    started = time.monotonic()
    when = as_of or timezone.now()
    rules_seed()
    run = DetectionRun.objects.create(as_of=when, trigger=trigger[:20], started_at=timezone.now())
    enabled = list(RiskRule.objects.filter(is_enabled=True))
    sources, customers = _load(when)
    findings = _rule_findings(sources, when, enabled)
    if with_model:
        findings += _model_findings(sources, when)
    new, updated = alerts_upsert(findings, run=run)
    hits: dict[str, int] = {}
    for finding in findings:
        hits[finding.rule_code] = hits.get(finding.rule_code, 0) + 1
    run.customers = customers
    run.hits = hits
    run.alerts_new = new
    run.alerts_updated = updated
    run.finished_at = timezone.now()
    run.seconds = round(time.monotonic() - started, 3)
    run.save()
    return run


def alerts_upsert(
    findings: Sequence[Finding], *, run: DetectionRun | None = None
) -> tuple[int, int]:
    """Create or refresh alerts for ``findings``; returns (created, refreshed)."""
    if not findings:
        return 0, 0
    now = timezone.now()
    codes = {f.rule_code for f in findings}
    customers = {f.customer_id for f in findings}
    created = refreshed = 0
    with transaction.atomic():
        live = {
            (a.customer_id, a.rule_code): a
            for a in Alert.objects.select_for_update().filter(
                status__in=rules.LIVE_ALERT, rule_code__in=codes, customer_id__in=customers
            )
        }
        latest_dismissed = (
            Alert.objects.filter(
                status=Alert.Status.DISMISSED, rule_code__in=codes, customer_id__in=customers
            )
            .values("customer_id", "rule_code")
            .annotate(last=Max("id"))
        )
        dismissed_ids = [row["last"] for row in latest_dismissed]
        dismissed = {
            (a.customer_id, a.rule_code): a.evidence
            for a in Alert.objects.filter(pk__in=dismissed_ids).only(
                "customer_id", "rule_code", "evidence"
            )
        }
        fresh: list[Alert] = []
        for finding in findings:
            key = (finding.customer_id, finding.rule_code)
            alert = live.get(key)
            if alert is not None:
                alert.value = finding.value
                alert.volume = finding.volume
                alert.evidence = finding.evidence
                alert.reasons = finding.reasons
                alert.updated_at = now
                alert.run = run
                alert.save(
                    update_fields=["value", "volume", "evidence", "reasons", "updated_at", "run"]
                )
                refreshed += 1
                continue
            if key in dismissed and not rules.evidence_is_new(finding.evidence, dismissed[key]):
                continue
            fresh.append(
                Alert(
                    customer_id=finding.customer_id,
                    source=Alert.Source.MODEL if finding.rule is None else Alert.Source.RULE,
                    rule=finding.rule,
                    rule_code=finding.rule_code,
                    rule_version=finding.rule.version if finding.rule else 1,
                    severity=finding.severity,
                    value=finding.value,
                    threshold=finding.threshold,
                    volume=finding.volume,
                    evidence=finding.evidence,
                    reasons=finding.reasons,
                    suggested_action=finding.action,
                    run=run,
                    created_at=now,
                    updated_at=now,
                )
            )
        Alert.objects.bulk_create(fresh, batch_size=1000)
        created = len(fresh)
    return created, refreshed


def backtest(
    *, user: Any, code: str, data: Mapping[str, Any], days: int = 90, as_of: datetime | None = None
) -> dict[str, Any]:
    """What the rule ``code`` changed as ``data`` says would have flagged over the last
    ``days`` days, next to what it flags as it stands; and how analysts decided the alerts the
    current rule raised for the customers only one of them flags."""
    if user is not None:  # None: the operator at the command line
        require_permission(user, CHANGE_RISK_RULES)
    if not 7 <= days <= 730:
        raise ValidationFailed("backtest.days: a whole number of days, 7 to 730")
    rule = RiskRule.objects.filter(code=code).first()
    if rule is None:
        raise NotFound(f"rule {code!r} not found")
    changed = rule_validate(data, base=rule)
    current = rule_spec(rule)
    proposed = detection.RuleSpec(**{**current.__dict__, **changed})
    when = as_of or timezone.now()
    sources, customers = _load(when)
    result = detection.backtest(sources, when, current, proposed, days)
    decided = dict(
        Alert.objects.filter(rule_code=code, customer_id__in=result.only_old | result.only_new)
        .exclude(status__in=rules.LIVE_ALERT)
        .values_list("customer_id", "status")
    )
    per_1000 = 1000 / customers if customers else 0.0
    return {
        "rule": code,
        "days": days,
        "from": (when - timedelta(days=days)).isoformat(),
        "to": when.isoformat(),
        "changed": changed,
        "customers": customers,
        "current": {
            "flagged": len(result.old),
            "per_1000": round(len(result.old) * per_1000, 2),
        },
        "proposed": {
            "flagged": len(result.new),
            "per_1000": round(len(result.new) * per_1000, 2),
        },
        "only_current": sorted(result.only_old)[:200],
        "only_proposed": sorted(result.only_new)[:200],
        "dropped_were_dismissed": sum(
            1 for c in result.only_old if decided.get(c) == Alert.Status.DISMISSED
        ),
        "dropped_were_acted_on": sum(
            1
            for c in result.only_old
            if decided.get(c) in (Alert.Status.RESTRICTED, Alert.Status.ESCALATED)
        ),
        "per_cutoff": [
            {"at": at.isoformat(), "current": old, "proposed": new}
            for at, old, new in result.per_cutoff
        ],
    }
