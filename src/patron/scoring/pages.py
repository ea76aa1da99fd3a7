"""Reads behind the model pages and ``/api/models``: score runs, cluster profiles, grade
policies in readable form, and the back-test report behind its permission check.

Read-only: the writes (saving, previewing and applying a policy) are the services in
``patron.scoring.policies``. Every function takes the user and checks ``VIEW_MODELS`` or
``CHANGE_GRADE_POLICY`` first, so the web pages and the API refuse the same people.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.db.models import Count, Max
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from patron.account.roles import CHANGE_GRADE_POLICY, VIEW_MODELS
from patron.account.services import require_permission
from patron.commerce.models import Order
from patron.errors import NotFound, ValidationFailed
from patron.intelligence import grading
from patron.intelligence.models.clusters import (
    cluster_name_render,
    profile_traits_render,
    tree_rules_render,
)
from patron.scoring.models import CustomerScore, Grade, GradePolicy, ScoreRun
from patron.scoring.policies import policy_active, policy_parse, policy_preview

MAX_RUNS = 100
MAX_HOLDOUT_DAYS = 3650
DEFAULT_HOLDOUT_DAYS = 90

#: Plain words for the columns a grade policy may use (the library's labels are English only).
INPUT_LABELS: dict[str, str | Promise] = {
    "clv_12m": _("12-month value"),
    "potential_value": _("potential value"),
    "credit_score": _("credit score"),
    "p_alive": _("chance of still being active"),
    "churn_probability": _("churn risk"),
    "expected_orders_90d": _("expected orders in the next 90 days"),
    "expected_order_value": _("expected order value"),
    "purchase_days": _("days with a purchase"),
    "days_since_last_purchase": _("days since the last purchase"),
    "rfm_r": _("recency score (RFM)"),
    "rfm_f": _("frequency score (RFM)"),
    "rfm_m": _("spend score (RFM)"),
    "word_of_mouth": _("word of mouth"),
}

#: The stages of ``ScoreRun.seconds``, in the order they run.
STAGE_LABELS: dict[str, str | Promise] = {
    "extract": _("extract"),
    "features": _("features"),
    "purchase_models": _("purchase models"),
    "churn": _("churn"),
    "credit": _("credit"),  # beside the purchase models and churn (pipeline.run)
    "clusters": _("clusters"),
    "value": _("value"),
    "grades": _("grades"),
    "reasons": _("reasons"),
    "write": _("write"),
    "snapshot": _("snapshot"),
}


def input_label(column: str) -> str:
    return str(INPUT_LABELS.get(column, grading.column_label(column)))


# ---------------------------------------------------------------------- score runs


@dataclass(frozen=True)
class StageTime:
    stage: str
    label: str
    seconds: float


@dataclass(frozen=True)
class RunRow:
    id: int
    as_of: date
    status: str
    status_label: str
    kind: str  # nightly | regrade | policy (a grade policy applied: grades only, no model)
    started_at: datetime
    finished_at: datetime | None
    customers: int
    credit_model: str
    churn_model: str
    policy_version: int | None
    grade_counts: dict[str, int]  # core, potential, ordinary; empty when the run has none
    moves: dict[str, Any] | None  # grade moves made (re-grade, policy applied)
    pending_moves: dict[str, Any] | None  # moves a nightly run found for the next re-grade
    seconds: tuple[StageTime, ...]
    total_seconds: float


@dataclass(frozen=True)
class ClusterProfileView:
    cluster: int
    name: str
    size: int
    share: float
    distinctive: tuple[str, ...]
    traits: tuple[str, ...]


@dataclass(frozen=True)
class ClusterOverview:
    run_id: int
    as_of: date
    k: int
    silhouette: float | None  # of the chosen k
    tree_fidelity: float | None
    tree_rules: tuple[str, ...]
    profiles: tuple[ClusterProfileView, ...]


@dataclass(frozen=True)
class ModelsOverview:
    runs: tuple[RunRow, ...]
    clusters: ClusterOverview | None
    grade_counts: dict[str, int]  # customers holding each grade now
    scored_customers: int
    active_policy_version: int | None


def _run_kind(run: ScoreRun) -> str:
    if run.parameters.get("regrade_only"):
        return "policy"
    return "regrade" if run.is_regrade else "nightly"


def _run_row(run: ScoreRun) -> RunRow:
    summary = run.summary or {}
    parameters = run.parameters or {}
    counts = summary.get("grade_counts") or {}
    seconds = {str(k): float(v) for k, v in (run.seconds or {}).items()}
    ordered = [s for s in STAGE_LABELS if s in seconds] + sorted(set(seconds) - set(STAGE_LABELS))
    return RunRow(
        id=run.pk,
        as_of=run.as_of,
        status=run.status,
        status_label=ScoreRun.Status(run.status).label,
        kind=_run_kind(run),
        started_at=run.started_at,
        finished_at=run.finished_at,
        customers=run.customers,
        credit_model=str((parameters.get("credit") or {}).get("model", "")),
        churn_model=str((parameters.get("churn") or {}).get("model", "")),
        policy_version=run.policy.version if run.policy else None,
        grade_counts={g: int(counts.get(g, 0)) for g in grading.GRADES} if counts else {},
        moves=summary.get("moves"),
        pending_moves=summary.get("pending_moves"),
        seconds=tuple(
            StageTime(stage=s, label=str(STAGE_LABELS.get(s, s)), seconds=seconds[s])
            for s in ordered
        ),
        total_seconds=round(sum(seconds.values()), 3),
    )


def run_list(*, user: Any, limit: int = 20) -> tuple[RunRow, ...]:
    """The latest score runs, newest first."""
    require_permission(user, VIEW_MODELS)
    if not 1 <= limit <= MAX_RUNS:
        raise ValidationFailed(f"limit: must be between 1 and {MAX_RUNS}")
    runs = ScoreRun.objects.select_related("policy").order_by("-started_at", "-id")[:limit]
    return tuple(_run_row(run) for run in runs)


def _finite(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def _cluster_overview() -> ClusterOverview | None:
    """The clusters of the latest completed run that fitted them (a policy applied does not)."""
    run = (
        ScoreRun.objects.filter(status=ScoreRun.Status.COMPLETED, parameters__has_key="clusters")
        .order_by("-started_at", "-id")
        .first()
    )
    if run is None:
        return None
    summary = run.parameters.get("clusters") or {}
    k = int(summary.get("k") or 0)
    profiles = run.summary.get("clusters") or summary.get("profiles") or []
    language = get_language() or "en"
    return ClusterOverview(
        run_id=run.pk,
        as_of=run.as_of,
        k=k,
        silhouette=_finite((summary.get("silhouette") or {}).get(str(k))),
        tree_fidelity=_finite(summary.get("tree_fidelity")),
        tree_rules=tuple(tree_rules_render(summary, language)),
        profiles=tuple(
            ClusterProfileView(
                cluster=int(p["cluster"]),
                name=cluster_name_render(str(p.get("name", "")), language),
                size=int(p.get("size", 0)),
                share=float(p.get("share", 0.0)),
                distinctive=tuple(p.get("distinctive") or ()),
                traits=tuple(profile_traits_render(p, language)),
            )
            for p in profiles
        ),
    )


def models_overview(*, user: Any, limit: int = 20) -> ModelsOverview:
    """Everything the models page shows: runs, the latest clusters, today's grade counts."""
    runs = run_list(user=user, limit=limit)
    rows = CustomerScore.objects.values("grade").annotate(n=Count("id")).order_by()
    held = {row["grade"]: int(row["n"]) for row in rows}
    active = GradePolicy.objects.filter(is_active=True).values_list("version", flat=True).first()
    return ModelsOverview(
        runs=runs,
        clusters=_cluster_overview(),
        grade_counts={g: held.get(g, 0) for g in grading.GRADES},
        scored_customers=sum(held.values()),
        active_policy_version=active,
    )


# ---------------------------------------------------------------------- grade policies


@dataclass(frozen=True)
class PolicyInputView:
    column: str
    label: str
    weight: float
    share: float  # of the total weight
    is_higher_better: bool

    @property
    def weight_text(self) -> str:
        return _number_text(self.weight)


@dataclass(frozen=True)
class HardRuleView:
    grade: str
    grade_label: str
    column: str
    label: str
    op: str
    value: float
    value_text: str


@dataclass(frozen=True)
class PolicyView:
    version: int
    is_active: bool
    note: str
    created_by: str
    created_at: datetime
    activated_at: datetime | None
    inputs: tuple[PolicyInputView, ...]
    core_min: float
    potential_min: float
    hysteresis: float
    rules: tuple[HardRuleView, ...]
    rules_json: dict[str, Any]

    @property
    def core_min_text(self) -> str:
        return _number_text(self.core_min)

    @property
    def potential_min_text(self) -> str:
        return _number_text(self.potential_min)

    @property
    def hysteresis_text(self) -> str:
        return _number_text(self.hysteresis)

    @property
    def rules_json_text(self) -> str:
        return json.dumps(self.rules_json, indent=2, ensure_ascii=False)

    @property
    def core_rules(self) -> tuple[HardRuleView, ...]:
        return tuple(r for r in self.rules if r.grade == "core")

    @property
    def potential_rules(self) -> tuple[HardRuleView, ...]:
        return tuple(r for r in self.rules if r.grade == "potential")


def _number_text(value: float) -> str:
    if value == round(value):
        return f"{value:.0f}"
    return f"{value:.4g}"


def policy_as_view(row: GradePolicy) -> PolicyView:
    """A stored policy in readable form (the caller has checked the permission)."""
    policy = policy_parse(row.rules)
    total = sum(i.weight for i in policy.inputs) or 1.0
    return PolicyView(
        version=row.version,
        is_active=row.is_active,
        note=row.note,
        created_by=row.created_by,
        created_at=row.created_at,
        activated_at=row.activated_at,
        inputs=tuple(
            PolicyInputView(
                column=i.column,
                label=input_label(i.column),
                weight=i.weight,
                share=i.weight / total,
                is_higher_better=i.is_higher_better,
            )
            for i in policy.inputs
        ),
        core_min=policy.core_min,
        potential_min=policy.potential_min,
        hysteresis=policy.hysteresis,
        rules=tuple(
            HardRuleView(
                grade=r.grade,
                grade_label=Grade(r.grade).label,
                column=r.column,
                label=input_label(r.column),
                op=r.op,
                value=r.value,
                value_text=_number_text(r.value),
            )
            for r in policy.rules
        ),
        rules_json={**policy.to_dict(), "version": row.version},
    )


def policy_list(*, user: Any) -> tuple[PolicyView, ...]:
    """Every policy version, newest first. The built-in default becomes version 1 on first
    use (``policy_active``), so there is always one to read and edit."""
    require_permission(user, VIEW_MODELS)
    policy_active()
    return tuple(policy_as_view(row) for row in GradePolicy.objects.order_by("-version"))


def _policy_row(version: int) -> GradePolicy:
    row = GradePolicy.objects.filter(version=version).first()
    if row is None:
        raise NotFound(f"grade policy v{version} does not exist")
    return row


def policy_detail(*, user: Any, version: int) -> PolicyView:
    require_permission(user, VIEW_MODELS)
    return policy_as_view(_policy_row(version))


def policy_for_editing(*, user: Any, version: int | None = None) -> PolicyView:
    """The policy an edit starts from: ``version``, or the active one."""
    require_permission(user, CHANGE_GRADE_POLICY)
    return policy_as_view(_policy_row(version) if version is not None else policy_active())


@dataclass(frozen=True)
class ApplyPreview:
    policy: PolicyView
    moves: dict[str, Any]


def policy_apply_preview(*, user: Any, version: int) -> ApplyPreview:
    """Who would move if ``version`` were applied now: shown before staff confirm it."""
    require_permission(user, CHANGE_GRADE_POLICY)
    row = _policy_row(version)
    return ApplyPreview(
        policy=policy_as_view(row), moves=policy_preview(user=user, rules=row.rules)
    )


# ---------------------------------------------------------------------- back-test report


@dataclass(frozen=True)
class ReportDefaults:
    as_of: date
    holdout_days: int
    last_purchase_day: date | None


def report_defaults(*, user: Any) -> ReportDefaults:
    """A cut-off that leaves ``DEFAULT_HOLDOUT_DAYS`` of purchases to judge the models on."""
    require_permission(user, VIEW_MODELS)
    last = Order.objects.aggregate(last=Max("placed_at"))["last"]
    if last is None:
        return ReportDefaults(timezone.localdate(), DEFAULT_HOLDOUT_DAYS, None)
    last_day = timezone.localtime(last).date()
    return ReportDefaults(
        as_of=last_day + timedelta(days=1 - DEFAULT_HOLDOUT_DAYS),
        holdout_days=DEFAULT_HOLDOUT_DAYS,
        last_purchase_day=last_day,
    )


def report_build(*, user: Any, as_of: date, holdout_days: int) -> dict[str, Any]:
    """``patron models report`` for a page or the API. Fits every model: tens of seconds on
    a million customers."""
    # Imported here: the report pulls in scikit-learn and LightGBM, seconds of start-up that
    # every other page (and every web process) would pay for nothing.
    from patron.scoring.report import models_report

    require_permission(user, VIEW_MODELS)
    if not 1 <= holdout_days <= MAX_HOLDOUT_DAYS:
        raise ValidationFailed(f"holdout_days: must be between 1 and {MAX_HOLDOUT_DAYS}")
    try:
        report = models_report(as_of=as_of, holdout_days=holdout_days)
    except ValueError as error:
        # The intelligence library raises ValueError for data it cannot fit (too few
        # purchases before the cut-off, …): bad input for this request, not a server fault.
        raise ValidationFailed(f"the models cannot be fitted as of {as_of}: {error}") from error
    language = get_language() or "en"
    report["clusters"] = [
        {
            **profile,
            "name": cluster_name_render(str(profile.get("name", "")), language),
            "traits": profile_traits_render(profile, language),
        }
        for profile in report.get("clusters") or []
    ]
    return report
