"""REST endpoints of risk control.

Under ``/api/risk``: the alert queue and its decisions, restrictions, the blacklist, appeals,
rules (edit and back-test), detection runs and the risk policy. Under ``/api/customers/{id}``:
``checkout-policy`` (the shop's hot path) and the customer's restrictions.

Thin: each endpoint calls one selector (``patron.risk.selectors``) or one service
(``patron.risk.services``, ``patron.risk.detect``); 403 permission or separation of duties,
404 unknown case, 409 a transition the case's state does not allow, 422 invalid input.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from django.http import HttpRequest
from ninja import Query, Router, Schema
from pydantic import Field

from patron.apitext import MAX_ID, NO_NUL, TEXT, DateTimeText
from patron.customer.api import ErrorOut
from patron.risk import detect, selectors, services
from patron.risk.models import DetectionRun, RiskRule
from patron.workflow import MAX_REASON

router = Router(tags=["risk"])
customer_router = Router(tags=["risk"])

ERRORS: dict[int, Any] = {403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut}
#: A reason or statement: words, not only spaces.


# ---------------------------------------------------------------------- checkout policy


class CheckoutPolicyOut(Schema):
    customer_id: int
    may_order: bool = Field(description="False when the account is frozen or blacklisted")
    payment_methods: list[str] = Field(description="Methods the shop may offer at checkout")
    credit_limit: Decimal = Field(description="For pay later and credit terms")
    currency: str
    order_review: bool = Field(description="Hold orders for a person to check")
    coupons_allowed: bool
    credit_score: int | None = Field(description="Latest credit score, 350–950 (None: not scored)")
    grade: str
    scored_as_of: str | None
    certification: str | None = Field(
        description="The customer's active certification level (identity, trusted, business …)"
    )
    restrictions: list[str] = Field(description="Kinds of restriction in force")
    reasons: list[str] = Field(description="Why, in plain words (request's language)")
    reason_data: list[dict[str, Any]] = Field(description="The same reasons as templates + data")


@customer_router.get(
    "/{customer_id}/checkout-policy",
    response={200: CheckoutPolicyOut, **ERRORS},
    summary="What a shop may offer this customer at checkout, and why (from cached scores)",
)
def checkout_policy(request: HttpRequest, customer_id: int) -> selectors.CheckoutPolicyView:
    return selectors.checkout_policy_of(user=request.user, customer_id=customer_id)


# ---------------------------------------------------------------------- restrictions


class RestrictionOut(Schema):
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


RestrictionKindIn = Literal[
    "payment_method", "credit_limit", "order_review", "coupon_ban", "account_freeze"
]


class RestrictionIn(Schema):
    kind: RestrictionKindIn
    reason: str = Field(min_length=1, max_length=MAX_REASON, pattern=TEXT)
    scope: dict[str, Any] = Field(
        default_factory=dict,
        description="payment_method: {methods: [...]} (default cod, pay_later); "
        "credit_limit: {limit: '500.00'}; others: {}",
    )
    expires_at: DateTimeText | None = None
    alert_id: int | None = Field(None, description="The alert this decides (closed as restricted)")


class ReasonIn(Schema):
    reason: str = Field(min_length=1, max_length=MAX_REASON, pattern=TEXT)


def _restriction_out(restriction_id: int, user: Any, customer_id: int) -> selectors.RestrictionView:
    views = selectors.restrictions_of_customer(user=user, customer_id=customer_id)
    return next(v for v in views if v.id == restriction_id)


@customer_router.get(
    "/{customer_id}/restrictions",
    response={200: list[RestrictionOut], **ERRORS},
    summary="The customer's restrictions, newest first, with their reasons",
)
def customer_restrictions(
    request: HttpRequest, customer_id: int
) -> list[selectors.RestrictionView]:
    return selectors.restrictions_of_customer(user=request.user, customer_id=customer_id)


@customer_router.post(
    "/{customer_id}/restrictions",
    response={201: RestrictionOut, **ERRORS},
    summary="Restrict a customer (risk analysts; the reason is recorded)",
)
def restrict(
    request: HttpRequest, customer_id: int, body: RestrictionIn
) -> tuple[int, selectors.RestrictionView]:
    restriction = services.restriction_apply(
        user=request.user,
        customer_id=customer_id,
        request=services.RestrictionRequest(
            kind=body.kind, reason=body.reason, scope=body.scope, expires_at=body.expires_at
        ),
        alert_id=body.alert_id,
    )
    return 201, _restriction_out(restriction.pk, request.user, customer_id)


@router.post(
    "/restrictions/{restriction_id}/lift",
    response={200: RestrictionOut, **ERRORS},
    summary="Lift a restriction (risk analysts)",
)
def lift_restriction(
    request: HttpRequest, restriction_id: int, body: ReasonIn
) -> selectors.RestrictionView:
    restriction = services.restriction_lift(
        user=request.user, restriction_id=restriction_id, reason=body.reason
    )
    return _restriction_out(restriction.pk, request.user, restriction.customer_id)


# ---------------------------------------------------------------------- alerts


class AlertOut(Schema):
    id: int
    customer_id: int
    customer_name: str
    source: str = Field(description="rule or model")
    rule_code: str
    rule_name: str
    rule_version: int
    severity: str
    value: float
    threshold: float | None
    volume: int
    evidence: list[dict[str, Any]] = Field(description="[{type, id}]: orders, returns, …")
    reasons: list[dict[str, Any]] = Field(description="Model alerts: the unusual features")
    suggested_action: str
    status: str
    created_at: datetime
    updated_at: datetime
    decided_by: str
    decided_at: datetime | None
    decision_reason: str


class AlertPageOut(Schema):
    count: int
    items: list[AlertOut]


class AlertParams(Schema):
    status: Literal["live", "all", "open", "watching", "dismissed", "restricted", "escalated"] = (
        Field("live", description="live (open or watching), all, or one status")
    )
    severity: Literal["", "low", "medium", "high"] = ""
    rule: str = Field("", max_length=60, pattern=NO_NUL)
    source: Literal["", "rule", "model"] = ""
    customer_id: int | None = Field(None, ge=1, le=MAX_ID)
    limit: int = Field(50, ge=1, le=200)
    offset: int = Field(0, ge=0, le=1_000_000)


@router.get("/alerts", response={200: AlertPageOut, **ERRORS}, summary="The alert queue")
def list_alerts(request: HttpRequest, params: Query[AlertParams]) -> dict[str, Any]:
    count, items = selectors.alert_list(
        user=request.user,
        filters=selectors.AlertFilter(
            status=params.status,
            severity=params.severity,
            rule=params.rule,
            source=params.source,
            customer_id=params.customer_id,
        ),
        limit=params.limit,
        offset=params.offset,
    )
    return {"count": count, "items": items}


@router.get("/alerts/{alert_id}", response={200: AlertOut, **ERRORS}, summary="One alert")
def get_alert(request: HttpRequest, alert_id: int) -> selectors.AlertView:
    return selectors.alert_get(user=request.user, alert_id=alert_id)


class AlertDecisionIn(Schema):
    action: Literal["watch", "dismiss"]
    reason: str = Field(min_length=1, max_length=MAX_REASON, pattern=TEXT)


@router.post(
    "/alerts/{alert_id}/decision",
    response={200: AlertOut, **ERRORS},
    summary="Watch or dismiss an alert (restrict: POST /customers/{id}/restrictions with "
    "alert_id; blacklist: POST /risk/blacklist with alert_id)",
)
def decide_alert(request: HttpRequest, alert_id: int, body: AlertDecisionIn) -> selectors.AlertView:
    services.alert_decide(
        user=request.user, alert_id=alert_id, action=body.action, reason=body.reason
    )
    return selectors.alert_get(user=request.user, alert_id=alert_id)


# ---------------------------------------------------------------------- blacklist


class BlacklistOut(Schema):
    id: int
    customer_id: int
    customer_name: str
    status: str = Field(description="proposed, confirmed (awaiting approval), active, …")
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


class BlacklistIn(Schema):
    customer_id: int
    reason: str = Field(min_length=1, max_length=MAX_REASON, pattern=TEXT)
    alert_id: int | None = None


class BlacklistParams(Schema):
    status: Literal["", "proposed", "confirmed", "active", "rejected", "lifted"] = ""
    customer_id: int | None = Field(None, ge=1, le=MAX_ID)


def _blacklist_out(user: Any, entry_id: int, customer_id: int) -> selectors.BlacklistView:
    entries = selectors.blacklist_list(user=user, customer_id=customer_id)
    return next(e for e in entries if e.id == entry_id)


@router.get("/blacklist", response={200: list[BlacklistOut], **ERRORS}, summary="Blacklist")
def list_blacklist(
    request: HttpRequest, params: Query[BlacklistParams]
) -> list[selectors.BlacklistView]:
    return selectors.blacklist_list(
        user=request.user, status=params.status, customer_id=params.customer_id
    )


@router.post(
    "/blacklist",
    response={201: BlacklistOut, **ERRORS},
    summary="Propose blacklisting (counts as the first of the approvals the policy needs)",
)
def propose_blacklist(
    request: HttpRequest, body: BlacklistIn
) -> tuple[int, selectors.BlacklistView]:
    entry = services.blacklist_propose(
        user=request.user, customer_id=body.customer_id, reason=body.reason, alert_id=body.alert_id
    )
    return 201, _blacklist_out(request.user, entry.pk, entry.customer_id)


@router.post(
    "/blacklist/{entry_id}/approve",
    response={200: BlacklistOut, **ERRORS},
    summary="Approve a proposed blacklisting (never one's own proposal)",
)
def approve_blacklist(
    request: HttpRequest, entry_id: int, body: ReasonIn
) -> selectors.BlacklistView:
    entry = services.blacklist_approve(user=request.user, entry_id=entry_id, reason=body.reason)
    return _blacklist_out(request.user, entry.pk, entry.customer_id)


@router.post(
    "/blacklist/{entry_id}/reject",
    response={200: BlacklistOut, **ERRORS},
    summary="Reject a proposed blacklisting",
)
def reject_blacklist(
    request: HttpRequest, entry_id: int, body: ReasonIn
) -> selectors.BlacklistView:
    entry = services.blacklist_reject(user=request.user, entry_id=entry_id, reason=body.reason)
    return _blacklist_out(request.user, entry.pk, entry.customer_id)


@router.post(
    "/blacklist/{entry_id}/lift",
    response={200: BlacklistOut, **ERRORS},
    summary="Lift a blacklisting in force",
)
def lift_blacklist(request: HttpRequest, entry_id: int, body: ReasonIn) -> selectors.BlacklistView:
    entry = services.blacklist_lift(user=request.user, entry_id=entry_id, reason=body.reason)
    return _blacklist_out(request.user, entry.pk, entry.customer_id)


# ---------------------------------------------------------------------- appeals


class AppealOut(Schema):
    id: int
    customer_id: int
    customer_name: str
    subject: str = Field(description="restriction, blacklist, or automated (score-set terms)")
    restriction_id: int | None
    blacklist_id: int | None
    target: str
    statement: str
    channel: str
    filed_by: str
    filed_at: datetime
    due_at: datetime = Field(description="Decision due by (the appeal SLA)")
    is_overdue: bool
    status: str = Field(description="open, in_review, upheld or overturned")
    reviewer: str
    decided_at: datetime | None
    decision_reason: str


class AppealIn(Schema):
    customer_id: int
    statement: str = Field(min_length=1, max_length=MAX_REASON, pattern=TEXT)
    restriction_id: int | None = None
    blacklist_id: int | None = None
    automated: bool = Field(
        False,
        description="Against the checkout terms the credit score set without a person "
        "(PIPL Art. 24): no restriction_id or blacklist_id",
    )
    channel: str = Field("api", max_length=20)


class AppealParams(Schema):
    status: Literal["live", "all", "open", "in_review", "upheld", "overturned"] = Field(
        "live", description="live (open or in review), all, or one status"
    )
    customer_id: int | None = Field(None, ge=1, le=MAX_ID)


class AppealDecisionIn(Schema):
    outcome: Literal["uphold", "overturn"]
    reason: str = Field(min_length=1, max_length=MAX_REASON, pattern=TEXT)
    credit_limit: float | None = Field(
        None,
        ge=0,
        le=999_999_999_999,
        description="Overturning an automated decision: the credit limit granted "
        "(default: the lowest credit band's)",
    )


@router.get("/appeals", response={200: list[AppealOut], **ERRORS}, summary="Appeals, due first")
def list_appeals(request: HttpRequest, params: Query[AppealParams]) -> list[selectors.AppealView]:
    return selectors.appeal_list(
        user=request.user, status=params.status, customer_id=params.customer_id
    )


@router.post(
    "/appeals",
    response={201: AppealOut, **ERRORS},
    summary="File a customer's appeal against a restriction or blacklisting",
)
def file_appeal(request: HttpRequest, body: AppealIn) -> tuple[int, selectors.AppealView]:
    appeal = services.appeal_file(
        user=request.user,
        customer_id=body.customer_id,
        statement=body.statement,
        restriction_id=body.restriction_id,
        blacklist_id=body.blacklist_id,
        automated=body.automated,
        channel=body.channel,
    )
    return 201, selectors.appeal_get(user=request.user, appeal_id=appeal.pk)


@router.get("/appeals/{appeal_id}", response={200: AppealOut, **ERRORS}, summary="One appeal")
def get_appeal(request: HttpRequest, appeal_id: int) -> selectors.AppealView:
    return selectors.appeal_get(user=request.user, appeal_id=appeal_id)


@router.post(
    "/appeals/{appeal_id}/review",
    response={200: AppealOut, **ERRORS},
    summary="Take an appeal into review (not by anyone who took part in the decision)",
)
def review_appeal(request: HttpRequest, appeal_id: int) -> selectors.AppealView:
    services.appeal_start_review(user=request.user, appeal_id=appeal_id)
    return selectors.appeal_get(user=request.user, appeal_id=appeal_id)


@router.post(
    "/appeals/{appeal_id}/decision",
    response={200: AppealOut, **ERRORS},
    summary="Uphold or overturn; overturning lifts the restriction or blacklisting at once",
)
def decide_appeal(
    request: HttpRequest, appeal_id: int, body: AppealDecisionIn
) -> selectors.AppealView:
    services.appeal_decide(
        user=request.user,
        appeal_id=appeal_id,
        outcome=body.outcome,
        reason=body.reason,
        credit_limit=(
            Decimal(str(body.credit_limit)).quantize(Decimal("0.01"))
            if body.credit_limit is not None
            else None
        ),
    )
    return selectors.appeal_get(user=request.user, appeal_id=appeal_id)


class CreditOverrideOut(Schema):
    id: int
    customer_id: int
    credit_limit: Decimal
    allow_deferred: bool
    reason: str
    appeal_id: int | None
    granted_at: datetime
    revoked_at: datetime | None
    revoke_reason: str


@router.post(
    "/credit-overrides/{override_id}/revoke",
    response={200: CreditOverrideOut, **ERRORS},
    summary="End checkout terms granted on appeal: the credit score decides again",
)
def revoke_override(request: HttpRequest, override_id: int, body: ReasonIn) -> Any:
    return services.credit_override_revoke(
        user=request.user, override_id=override_id, reason=body.reason
    )


# ---------------------------------------------------------------------- rules and detection


class RuleOut(Schema):
    code: str
    name: str
    name_zh: str
    measure: str
    measure_label: str
    window_days: int
    threshold: float
    min_volume: int
    params: dict[str, Any]
    severity: str
    action: str
    is_enabled: bool
    version: int
    updated_by: str
    updated_at: datetime


def _rule_out(rule: RiskRule) -> dict[str, Any]:
    from patron.risk.detection import MEASURES

    measure = MEASURES.get(rule.measure)
    return {
        "code": rule.code,
        "name": rule.name,
        "name_zh": rule.name_zh,
        "measure": rule.measure,
        "measure_label": measure.label_en if measure else rule.measure,
        "window_days": rule.window_days,
        "threshold": rule.threshold,
        "min_volume": rule.min_volume,
        "params": rule.params or {},
        "severity": rule.severity,
        "action": rule.action,
        "is_enabled": rule.is_enabled,
        "version": rule.version,
        "updated_by": rule.updated_by,
        "updated_at": rule.updated_at,
    }


class RuleIn(Schema):
    name: str | None = Field(None, max_length=120, pattern=TEXT)
    name_zh: str | None = Field(None, max_length=120, pattern=NO_NUL)
    window_days: int | None = None
    threshold: float | None = None
    min_volume: int | None = None
    params: dict[str, float] | None = None
    severity: Literal["low", "medium", "high"] | None = None
    action: str | None = None
    is_enabled: bool | None = None

    def changes(self) -> dict[str, Any]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


@router.get("/rules", response={200: list[RuleOut], **ERRORS}, summary="Detection rules")
def list_rules(request: HttpRequest) -> list[dict[str, Any]]:
    return [_rule_out(rule) for rule in selectors.rule_list(user=request.user)]


@router.patch(
    "/rules/{code}",
    response={200: RuleOut, **ERRORS},
    summary="Edit a rule (each edit is a new version, audited)",
)
def update_rule(request: HttpRequest, code: str, body: RuleIn) -> dict[str, Any]:
    detect.rules_seed()
    return _rule_out(detect.rule_update(user=request.user, code=code, data=body.changes()))


class BacktestIn(RuleIn):
    days: int = Field(90, ge=7, le=730, description="How far back to look")


class BacktestSideOut(Schema):
    flagged: int
    per_1000: float


class BacktestCutoffOut(Schema):
    at: datetime
    current: int
    proposed: int


class BacktestOut(Schema):
    rule: str
    days: int
    changed: dict[str, Any]
    customers: int
    current: BacktestSideOut
    proposed: BacktestSideOut
    only_current: list[int] = Field(description="Customers only the rule as it stands flags")
    only_proposed: list[int] = Field(description="Customers only the changed rule flags")
    dropped_were_dismissed: int = Field(description="Of only_current: alerts analysts dismissed")
    dropped_were_acted_on: int = Field(description="Of only_current: alerts acted on")
    per_cutoff: list[BacktestCutoffOut]


@router.post(
    "/rules/{code}/backtest",
    response={200: BacktestOut, **ERRORS},
    summary="What a changed rule would have flagged over the last N days (nothing is saved)",
)
def backtest_rule(request: HttpRequest, code: str, body: BacktestIn) -> dict[str, Any]:
    detect.rules_seed()
    changes = body.changes()
    days = changes.pop("days")
    return detect.backtest(user=request.user, code=code, data=changes, days=days)


class DetectionRunOut(Schema):
    id: int
    as_of: datetime
    trigger: str
    started_at: datetime
    finished_at: datetime | None
    customers: int
    hits: dict[str, int]
    alerts_new: int
    alerts_updated: int
    seconds: float


@router.get(
    "/detection-runs", response={200: list[DetectionRunOut], **ERRORS}, summary="Latest runs"
)
def list_runs(request: HttpRequest) -> list[DetectionRun]:
    return selectors.detection_runs_latest(user=request.user)


@router.post(
    "/detection-runs",
    response={201: DetectionRunOut, **ERRORS},
    summary="Run every enabled rule and the anomaly model now",
)
def run_detection(request: HttpRequest) -> tuple[int, DetectionRun]:
    return 201, detect.detection_run(trigger="api", user=request.user)


# ---------------------------------------------------------------------- risk policy


class RiskPolicyOut(Schema):
    version: int
    rules: dict[str, Any]
    note: str
    created_by: str
    created_at: datetime


class RiskPolicyIn(Schema):
    rules: dict[str, Any] = Field(
        description="Any of: payment_methods, deferred_methods, deferred_min_score, "
        "credit_bands [{min_score, limit}], grade_multiplier, review_below_score, "
        "unscored_deferred, currency, blacklist_approvals (1–3), appeal_sla_hours"
    )
    note: str = Field("", max_length=200)


@router.get("/policy", response={200: RiskPolicyOut, **ERRORS}, summary="The risk policy in force")
def get_risk_policy(request: HttpRequest) -> Any:
    return selectors.risk_policy_in_force(user=request.user)


@router.put(
    "/policy",
    response={200: RiskPolicyOut, **ERRORS},
    summary="Save a new risk policy version and put it in force",
)
def put_risk_policy(request: HttpRequest, body: RiskPolicyIn) -> Any:
    return services.risk_policy_save(user=request.user, data=body.rules, note=body.note)
