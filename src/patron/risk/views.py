"""Risk pages: the alert queue, one alert and the decisions on it, the blacklist, appeals, the
rules with their back-test and the risk policy, and the risk section of the customer page.

Each view parses the form, calls one selector (``patron.risk.selectors``) or one service
(``patron.risk.services``, ``patron.risk.detect``) and renders. A decision the service refuses
is shown next to the form that asked for it, with the error's status: 422 invalid input, 409 a
state that does not allow it, 403 separation of duties (the same person may not decide and
review). Missing permissions still become the plain 403 page through ``patron_page``.

The few reads no selector offers (the queue's summary strip, evidence as links, a customer's
blacklist status, the rules table) are small functions here, each checking its permission.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.contrib import messages
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from patron.account.roles import (
    ACT_ON_RISK,
    CHANGE_RISK_RULES,
    DECIDE_APPEAL,
    FILE_APPEAL,
    VIEW_CHECKOUT_POLICY,
    VIEW_COMMERCE,
    VIEW_RESTRICTIONS,
    VIEW_RISK,
)
from patron.account.services import require_permission
from patron.commerce.models import Order, Payment, ReturnRequest, Review
from patron.customer.models import Customer
from patron.customer.selectors import Page
from patron.errors import Conflict, NotFound, PatronError, PermissionDenied, ValidationFailed
from patron.risk import detect, rules, selectors, services
from patron.risk.models import (
    Alert,
    Appeal,
    BlacklistEntry,
    Restriction,
    RestrictionKind,
    RiskRule,
    Severity,
    SuggestedAction,
    rule_display_name,
)
from patron.web import charts
from patron.web.templatetags.patron_web import choice
from patron.web.views import patron_page

PAGE_SIZE = 50
LATEST_RUNS = 10
#: Payment methods a ``payment_method`` restriction may bar (``services.restriction_validate``).
RESTRICTABLE_METHODS = (*rules.DEFAULT_RISK_POLICY["payment_methods"], "voucher", "other")
SEVERITIES = ("high", "medium", "low")


def _is_partial(request: HttpRequest) -> bool:
    htmx = getattr(request, "htmx", None)
    return htmx is not None and bool(htmx) and not htmx.boosted and not htmx.history_restore_request


def _page_number(request: HttpRequest) -> int:
    try:
        number = int(request.GET.get("page", 1))
    except (TypeError, ValueError):
        return 1
    return number if number >= 1 else 1


def _is_chinese() -> bool:
    return (translation.get_language() or "").startswith("zh")


def _label(choices: Any, value: str) -> str:
    """The page-language half of a bilingual choice label; the code if it is not a choice."""
    try:
        return choice(choices(value).label)
    except ValueError:
        return value


def _method_label(method: str) -> str:
    return _label(Payment.Method, method)


def _scope_text(kind: str, scope: dict[str, Any], currency: str = "CNY") -> str:
    """A restriction's scope in plain words ("" when the kind takes none)."""
    if kind == RestrictionKind.PAYMENT_METHOD:
        methods = scope.get("methods") or list(rules.DEFERRED_METHODS)
        return _("Not offered: %(methods)s") % {
            "methods": ", ".join(_method_label(m) for m in methods)
        }
    if kind == RestrictionKind.CREDIT_LIMIT:
        return _("Credit limit capped at %(limit)s %(currency)s") % {
            "limit": scope.get("limit", "0.00"),
            "currency": currency,
        }
    return ""


# ---------------------------------------------------------------------- form values


def _whole(text: str, name: str) -> int:
    try:
        return int(text.strip())
    except (AttributeError, ValueError):
        raise ValidationFailed(f"{name}: expected a whole number, got '{text}'") from None


def _amount(text: str, name: str) -> Decimal:
    try:
        value = Decimal(text.strip())
    except (AttributeError, ArithmeticError):
        raise ValidationFailed(f"{name}: expected an amount, got '{text}'") from None
    if not value.is_finite() or value < 0:
        raise ValidationFailed(f"{name}: expected an amount of zero or more")
    return value


def _number(text: str, name: str) -> float:
    try:
        value = float(text.strip())
    except (AttributeError, ValueError):
        raise ValidationFailed(f"{name}: expected a number, got '{text}'") from None
    if not math.isfinite(value):
        raise ValidationFailed(f"{name}: expected a finite number")
    return value


def _json_object(text: str, name: str) -> dict[str, Any]:
    try:
        parsed = json.loads(text)
    except ValueError as error:
        raise ValidationFailed(f"{name}: not valid JSON ({error})") from error
    if not isinstance(parsed, dict):
        raise ValidationFailed(f"{name}: expected a JSON object")
    return parsed


def _moment(text: str, name: str) -> datetime | None:
    """A ``datetime-local`` input in the site's time zone; empty means none."""
    text = text.strip()
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationFailed(f"{name}: expected a date and time, got '{text}'") from None
    return timezone.make_aware(moment) if timezone.is_naive(moment) else moment


# ---------------------------------------------------------------------- reads of these pages


@dataclass(frozen=True)
class RiskSummary:
    live_by_severity: list[tuple[str, str, int]]  # (severity, label, alerts), high first
    live_alerts: int
    restrictions_in_force: int
    blacklist_awaiting: int
    appeals_open: int
    appeals_overdue: int


def risk_summary(*, user: Any) -> RiskSummary:
    """The strip above the queue: what waits for a decision, and what is in force."""
    require_permission(user, VIEW_RISK)
    now = timezone.now()
    counts = dict(
        Alert.objects.filter(status__in=rules.LIVE_ALERT)
        .values_list("severity")
        .annotate(n=Count("id"))
        .values_list("severity", "n")
    )
    in_force = (
        Restriction.objects.filter(lifted_at__isnull=True, starts_at__lte=now)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .count()
    )
    appeals = Appeal.objects.filter(status__in=rules.LIVE_APPEAL).aggregate(
        open=Count("id"), overdue=Count("id", filter=Q(due_at__lt=now))
    )
    return RiskSummary(
        live_by_severity=[(s, _label(Severity, s), counts.get(s, 0)) for s in SEVERITIES],
        live_alerts=sum(counts.values()),
        restrictions_in_force=in_force,
        blacklist_awaiting=BlacklistEntry.objects.filter(
            status__in=(BlacklistEntry.Status.PROPOSED, BlacklistEntry.Status.CONFIRMED)
        ).count(),
        appeals_open=appeals["open"],
        appeals_overdue=appeals["overdue"],
    )


@dataclass(frozen=True)
class EvidenceLink:
    type: str
    id: int
    type_label: str
    text: str
    url: str


def _evidence_type_label(kind: str) -> str:
    labels = {
        "order": _("Order"),
        "return": _("Return"),
        "review": _("Review"),
        "payment": _("Payment"),
        "customer": _("Customer"),
    }
    return labels.get(kind, kind)


def _order_urls(order_ids: set[int]) -> dict[int, str]:
    """The all-orders page of each order's customer, at the page that lists it."""
    customers = dict(Order.objects.filter(pk__in=order_ids).values_list("pk", "customer_id"))
    urls: dict[int, str] = {}
    for customer_id in set(customers.values()):
        ordered = Order.objects.filter(customer_id=customer_id).order_by("-placed_at", "-id")
        position = {pk: i for i, pk in enumerate(ordered.values_list("pk", flat=True))}
        base = reverse("web:customer-orders", args=[customer_id])
        for pk, owner in customers.items():
            if owner == customer_id:
                page = position[pk] // 20 + 1  # the page size of ``web.views.customer_orders``
                urls[pk] = f"{base}?page={page}#order-{pk}-details"
    return urls


def _evidence_key(item: Any) -> tuple[str, int] | None:
    """``(type, id)`` of an evidence item (``{type, id}``); None for a malformed one."""
    if not isinstance(item, dict):
        return None
    number = item.get("id")
    if isinstance(number, bool) or not isinstance(number, int):
        return None
    return str(item.get("type")), number


def evidence_links(
    *, user: Any, customer_id: int, evidence: list[dict[str, Any]]
) -> list[EvidenceLink]:
    """The records an alert or a decision names, as links to where a person can read them.

    Orders and payments open the customer's orders at the right page; returns and reviews the
    customer page at their row; customers their page. Without the commerce permission the
    links name only the record's kind and id.
    """
    named = [key for key in map(_evidence_key, evidence) if key is not None]
    wanted: dict[str, set[int]] = {}
    for kind, number in named:
        wanted.setdefault(kind, set()).add(number)
    customer_page = reverse("web:customer-detail", args=[customer_id])
    texts: dict[tuple[str, int], tuple[str, str]] = {}
    customers = dict(
        Customer.objects.filter(pk__in=wanted.get("customer", set())).values_list("pk", "name")
    )
    for pk, name in customers.items():
        texts["customer", pk] = (name, reverse("web:customer-detail", args=[pk]))
    if user.has_perm(VIEW_COMMERCE):
        payments = {
            p.pk: p
            for p in Payment.objects.filter(pk__in=wanted.get("payment", set())).select_related(
                "order"
            )
        }
        order_urls = _order_urls(
            wanted.get("order", set()) | {p.order_id for p in payments.values()}
        )
        for order in Order.objects.filter(pk__in=wanted.get("order", set())):
            text = f"{order.external_id} · {timezone.localtime(order.placed_at):%Y-%m-%d}"
            texts["order", order.pk] = (text, order_urls.get(order.pk, customer_page))
        for payment in payments.values():
            text = (
                f"{payment.order.external_id} · {_method_label(payment.method)} · "
                f"{_label(Payment.Status, payment.status)}"
            )
            texts["payment", payment.pk] = (text, order_urls.get(payment.order_id, customer_page))
        returns = ReturnRequest.objects.filter(pk__in=wanted.get("return", set()))
        for returned in returns.select_related("order"):
            text = (
                f"{returned.order.external_id} · {_label(ReturnRequest.Kind, returned.kind)} · "
                f"{timezone.localtime(returned.requested_at):%Y-%m-%d}"
            )
            url = reverse("web:customer-detail", args=[returned.order.customer_id])
            texts["return", returned.pk] = (text, f"{url}#return-{returned.pk}")
        for review in Review.objects.filter(pk__in=wanted.get("review", set())):
            text = f"{'★' * review.rating} {review.title}".strip()
            url = reverse("web:customer-detail", args=[review.customer_id])
            texts["review", review.pk] = (text, f"{url}#review-{review.pk}")
    links = []
    for kind, number in named:
        text, url = texts.get((kind, number), (f"#{number}", customer_page))
        links.append(EvidenceLink(kind, number, _evidence_type_label(kind), text, url))
    return links


@dataclass(frozen=True)
class RuleInfo:
    name: str
    unit: str  # ratio, count or score
    measure_label: str  # in the page's language


def _rule_measures() -> dict[str, RuleInfo]:
    """Rule code -> its name, and its measure's unit and label."""
    from patron.risk.detection import MEASURES

    chinese = _is_chinese()
    result = {}
    for code, english, name_zh, key in RiskRule.objects.values_list(
        "code", "name", "name_zh", "measure"
    ):
        name = rule_display_name(english, name_zh)
        measure = MEASURES.get(key)
        if measure is None:
            result[code] = RuleInfo(name, "count", key)
        else:
            label = measure.label_zh if chinese else measure.label_en
            result[code] = RuleInfo(name, measure.unit, label)
    return result


def _measure_value(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "ratio":
        return f"{round(100 * value, 1):g}%"
    if unit == "count":
        return f"{value:g}"
    return f"{value:.2f}"


@dataclass(frozen=True)
class AlertRow:
    alert: selectors.AlertView
    rule_name: str
    measure_label: str
    value_text: str
    threshold_text: str
    severity_label: str
    status_label: str
    action_label: str
    source_label: str
    is_live: bool


def _alert_rows(alerts: list[selectors.AlertView]) -> list[AlertRow]:
    measures = _rule_measures() if alerts else {}
    rows = []
    for alert in alerts:
        if alert.source == Alert.Source.MODEL:
            unit, measure = "score", _("anomaly score")
            name = _("Unusual customer (isolation forest)")
        else:
            # A rule since deleted: its code is all that is left of it.
            info = measures.get(alert.rule_code, RuleInfo(alert.rule_code, "count", ""))
            unit, measure, name = info.unit, info.measure_label, info.name
        rows.append(
            AlertRow(
                alert=alert,
                rule_name=name,
                measure_label=measure,
                value_text=_measure_value(alert.value, unit),
                threshold_text=_measure_value(alert.threshold, unit),
                severity_label=_label(Severity, alert.severity),
                status_label=_label(Alert.Status, alert.status),
                action_label=_label(SuggestedAction, alert.suggested_action),
                source_label=_label(Alert.Source, alert.source),
                is_live=alert.status in rules.LIVE_ALERT,
            )
        )
    return rows


@dataclass(frozen=True)
class FeatureReason:
    feature: str
    value: str
    median: str
    z: str


def _feature_reasons(reasons: list[dict[str, Any]]) -> list[FeatureReason]:
    """A model alert's unusual features in the page's language (labels from the features)."""
    if not reasons:
        return []
    from patron.intelligence.features import FEATURES

    language = translation.get_language() or "en"
    result = []
    for reason in reasons:
        name = str(reason.get("feature", ""))
        info = FEATURES.get(name)
        value, median, z = reason.get("value"), reason.get("median"), reason.get("z")
        if info is not None:
            label = info.label_zh if _is_chinese() else info.label_en
            value_text = info.format(value, language=language)
            median_text = info.format(median, language=language)
        else:
            label = name
            value_text = "—" if value is None else f"{value:g}"
            median_text = "—" if median is None else f"{median:g}"
        result.append(
            FeatureReason(
                feature=label,
                value=value_text,
                median=median_text,
                z="—" if z is None else f"{z:+.1f}",
            )
        )
    return result


# ---------------------------------------------------------------------- the alert queue


def _alert_filters(request: HttpRequest) -> selectors.AlertFilter:
    return selectors.AlertFilter(
        status=request.GET.get("status", "live") or "live",
        severity=request.GET.get("severity", ""),
        rule=request.GET.get("rule", ""),
        source=request.GET.get("source", ""),
    )


@patron_page
def alert_list(request: HttpRequest) -> HttpResponse:
    filters = _alert_filters(request)
    number = _page_number(request)
    total, alerts = selectors.alert_list(
        user=request.user, filters=filters, limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE
    )
    page = Page(items=tuple(_alert_rows(alerts)), count=total, page=number, page_size=PAGE_SIZE)
    context: dict[str, Any] = {"page": page, "filters": filters}
    if _is_partial(request):
        response = render(request, "risk/alerts.html#results", context)
    else:
        context["summary"] = risk_summary(user=request.user)
        context["statuses"] = [(s, _label(Alert.Status, s)) for s in Alert.Status.values]
        context["severities"] = [(s, _label(Severity, s)) for s in SEVERITIES]
        context["rule_codes"] = [
            *((rule.code, rule.display_name()) for rule in RiskRule.objects.order_by("code")),
            (detect.MODEL_CODE, _("Unusual customer (isolation forest)")),
        ]
        context["sources"] = [(s, _label(Alert.Source, s)) for s in Alert.Source.values]
        response = render(request, "risk/alerts.html", context)
    patch_vary_headers(response, ["HX-Request"])
    return response


# ---------------------------------------------------------------------- one alert


@dataclass
class AlertForms:
    """The decision forms as the user typed them, so that an error keeps their input."""

    decide_reason: str = ""
    kind: str = RestrictionKind.ORDER_REVIEW
    methods: list[str] = field(default_factory=lambda: list(rules.DEFERRED_METHODS))
    limit: str = ""
    expires_at: str = ""
    restrict_reason: str = ""
    blacklist_reason: str = ""
    failed: str = ""  # which form the error belongs to: decide, restrict, blacklist
    error: str = ""
    invalid: set[str] = field(default_factory=set)

    @classmethod
    def initial(cls, alert: selectors.AlertView) -> AlertForms:
        suggested = alert.suggested_action
        kind = suggested if suggested in RestrictionKind.values else RestrictionKind.ORDER_REVIEW
        return cls(kind=kind)

    def take(self, data: QueryDict) -> None:
        action = data.get("action", "")
        if action in ("watch", "dismiss"):
            self.decide_reason = data.get("reason", "")
        elif action == "restrict":
            self.kind = data.get("kind", "")
            self.methods = data.getlist("methods")
            self.limit = data.get("limit", "").strip()
            self.expires_at = data.get("expires_at", "").strip()
            self.restrict_reason = data.get("reason", "")
        elif action == "blacklist":
            self.blacklist_reason = data.get("reason", "")

    def restriction(self) -> services.RestrictionRequest:
        scope: dict[str, Any] = {}
        if self.kind == RestrictionKind.PAYMENT_METHOD and self.methods:
            scope = {"methods": self.methods}
        elif self.kind == RestrictionKind.CREDIT_LIMIT:
            scope = {"limit": self.limit}
        return services.RestrictionRequest(
            kind=self.kind,
            reason=self.restrict_reason,
            scope=scope,
            expires_at=_moment(self.expires_at, "restriction.expires_at"),
        )

    def fail(self, action: str, error: PatronError) -> None:
        self.failed = "decide" if action in ("watch", "dismiss") else action
        self.error = error.message
        fields = {
            "restriction.kind": "kind",
            "restriction.scope.methods": "methods",
            "restriction.scope.limit": "limit",
            "restriction.scope": "limit",
            "restriction.expires_at": "expires_at",
        }
        for prefix, name in fields.items():
            if error.message.startswith(prefix):
                self.invalid.add(name)
                break
        if "reason" in error.message:
            self.invalid.add("reason")


def _alert_context(
    request: HttpRequest, alert: selectors.AlertView, forms: AlertForms
) -> dict[str, Any]:
    row = _alert_rows([alert])[0]
    return {
        "row": row,
        "alert": alert,
        "evidence": evidence_links(
            user=request.user, customer_id=alert.customer_id, evidence=alert.evidence
        ),
        "reasons": _feature_reasons(alert.reasons) if alert.source == "model" else [],
        "forms": forms,
        "may_act": request.user.has_perm(ACT_ON_RISK) and row.is_live,
        "kinds": [(k, _label(RestrictionKind, k)) for k in RestrictionKind.values],
        "methods": [(m, _method_label(m)) for m in RESTRICTABLE_METHODS],
        "restrictions": list(
            Restriction.objects.filter(alert_id=alert.id).values_list("pk", flat=True)
        ),
        "blacklist_entry": BlacklistEntry.objects.filter(alert_id=alert.id)
        .values_list("pk", flat=True)
        .first(),
    }


def _alert_act(request: HttpRequest, alert: selectors.AlertView, forms: AlertForms) -> str:
    """Carry out the decision the form asks for; returns what to tell the analyst."""
    action = request.POST.get("action", "")
    number = {"id": alert.id}
    if action in ("watch", "dismiss"):
        services.alert_decide(
            user=request.user, alert_id=alert.id, action=action, reason=forms.decide_reason
        )
        if action == "watch":
            return _("Alert #%(id)s: watching.") % number
        return _("Alert #%(id)s dismissed.") % number
    if action == "restrict":
        restriction = services.restriction_apply(
            user=request.user,
            customer_id=alert.customer_id,
            request=forms.restriction(),
            alert_id=alert.id,
        )
        return _("Alert #%(id)s: %(customer)s is restricted (%(kind)s).") % {
            **number,
            "customer": alert.customer_name,
            "kind": _label(RestrictionKind, restriction.kind),
        }
    if action == "blacklist":
        entry = services.blacklist_propose(
            user=request.user,
            customer_id=alert.customer_id,
            reason=forms.blacklist_reason,
            alert_id=alert.id,
        )
        if entry.status == BlacklistEntry.Status.ACTIVE:
            return _("Alert #%(id)s: the customer is blacklisted.") % number
        return _("Alert #%(id)s: blacklisting proposed; another analyst must approve it.") % number
    raise ValidationFailed(f"action: one of watch, dismiss, restrict, blacklist; got '{action}'")


@patron_page
@require_http_methods(["GET", "POST"])
def alert_detail(request: HttpRequest, alert_id: int) -> HttpResponse:
    alert = selectors.alert_get(user=request.user, alert_id=alert_id)
    forms = AlertForms.initial(alert)
    if request.method == "GET":
        return render(request, "risk/alert.html", _alert_context(request, alert, forms))
    require_permission(request.user, ACT_ON_RISK)
    action = request.POST.get("action", "")
    forms.take(request.POST)
    try:
        message = _alert_act(request, alert, forms)
    except (ValidationFailed, Conflict) as error:
        forms.fail(action, error)
        alert = selectors.alert_get(user=request.user, alert_id=alert_id)
        context = _alert_context(request, alert, forms)
        return render(request, "risk/alert.html", context, status=error.status)
    messages.success(request, message)
    return redirect("web:risk-alert", alert_id=alert_id)


# ---------------------------------------------------------------------- blacklist


@dataclass(frozen=True)
class BlacklistRow:
    entry: selectors.BlacklistView
    status_label: str
    evidence: list[EvidenceLink]
    is_awaiting: bool
    is_active: bool
    approvals: list[tuple[str, datetime | None, str]]  # (username, at, reason)


def _parse_moment(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


@patron_page
@require_http_methods(["GET", "POST"])
def blacklist(request: HttpRequest) -> HttpResponse:
    """Entries by status; approve or reject proposals, lift those in force."""
    status = request.GET.get("status", "")
    failure: dict[str, Any] = {}
    if request.method == "POST":
        require_permission(request.user, ACT_ON_RISK)
        action = request.POST.get("action", "")
        entry_id = _whole(request.POST.get("entry", ""), "entry")
        reason = request.POST.get("reason", "")
        try:
            if action == "approve":
                entry = services.blacklist_approve(
                    user=request.user, entry_id=entry_id, reason=reason
                )
                message = (
                    _("Blacklisting #%(id)s approved: it is in force.")
                    if entry.status == BlacklistEntry.Status.ACTIVE
                    else _("Blacklisting #%(id)s approved: it needs one more approval.")
                )
            elif action == "reject":
                services.blacklist_reject(user=request.user, entry_id=entry_id, reason=reason)
                message = _("Blacklisting #%(id)s rejected.")
            elif action == "lift":
                services.blacklist_lift(user=request.user, entry_id=entry_id, reason=reason)
                message = _("Blacklisting #%(id)s lifted.")
            else:
                raise ValidationFailed(f"action: one of approve, reject, lift; got '{action}'")
        except (ValidationFailed, Conflict, PermissionDenied) as error:
            failure = {"entry": entry_id, "action": action, "reason": reason, "error": error}
        else:
            messages.success(request, message % {"id": entry_id})
            return redirect(f"{reverse('web:risk-blacklist')}?status={status}")
    entries = selectors.blacklist_list(user=request.user, status=status)
    rows = [
        BlacklistRow(
            entry=e,
            status_label=_label(BlacklistEntry.Status, e.status),
            evidence=evidence_links(
                user=request.user, customer_id=e.customer_id, evidence=e.evidence
            ),
            is_awaiting=e.status
            in (BlacklistEntry.Status.PROPOSED, BlacklistEntry.Status.CONFIRMED),
            is_active=e.status == BlacklistEntry.Status.ACTIVE,
            approvals=[
                (
                    str(a.get("username", "")),
                    _parse_moment(str(a.get("at", ""))),
                    str(a.get("reason", "")),
                )
                for a in e.approvals
            ],
        )
        for e in entries
    ]
    context = {
        "rows": rows,
        "status": status,
        "statuses": [(s, _label(BlacklistEntry.Status, s)) for s in BlacklistEntry.Status.values],
        "may_act": request.user.has_perm(ACT_ON_RISK),
        "failure": failure,
    }
    refused = failure.get("error")
    status_code = refused.status if refused else 200
    return render(request, "risk/blacklist.html", context, status=status_code)


# ---------------------------------------------------------------------- appeals


def _appeal_status_label(status: str) -> str:
    return _label(Appeal.Status, status)


@dataclass(frozen=True)
class AppealRow:
    appeal: selectors.AppealView
    status_label: str
    target_label: str


@patron_page
def appeal_list(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status", "live") or "live"
    appeals = selectors.appeal_list(user=request.user, status=status)
    kinds = dict(
        Restriction.objects.filter(
            pk__in=[a.restriction_id for a in appeals if a.restriction_id]
        ).values_list("pk", "kind")
    )
    rows = [
        AppealRow(
            appeal=a,
            status_label=_appeal_status_label(a.status),
            target_label=_label(RestrictionKind, kinds.get(a.restriction_id, ""))
            if a.restriction_id
            else _("Blacklist"),
        )
        for a in appeals
    ]
    context = {
        "appeals": rows,
        "status": status,
        "statuses": [(s, _appeal_status_label(s)) for s in Appeal.Status.values],
    }
    return render(request, "risk/appeals.html", context)


@dataclass(frozen=True)
class AppealTarget:
    """What an appeal is against, with who decided it and on what evidence."""

    kind: str  # restriction or blacklist
    label: str
    scope_text: str
    reason: str
    evidence: list[EvidenceLink]
    decided_by: list[str]
    since: datetime
    status_label: str
    is_in_force: bool


def _appeal_target(user: Any, appeal: selectors.AppealView) -> AppealTarget:
    if appeal.restriction_id is not None:
        restriction = Restriction.objects.select_related("applied_by").get(pk=appeal.restriction_id)
        now = timezone.now()
        in_force = (
            restriction.lifted_at is None
            and restriction.starts_at <= now
            and (restriction.expires_at is None or restriction.expires_at > now)
        )
        return AppealTarget(
            kind="restriction",
            label=_label(RestrictionKind, restriction.kind),
            scope_text=_scope_text(restriction.kind, restriction.scope or {}),
            reason=restriction.reason,
            evidence=evidence_links(
                user=user, customer_id=appeal.customer_id, evidence=restriction.evidence or []
            ),
            decided_by=[restriction.applied_by.get_username()],
            since=restriction.starts_at,
            status_label=_("in force") if in_force else _("lifted"),
            is_in_force=in_force,
        )
    if appeal.subject == Appeal.Subject.AUTOMATED:
        return AppealTarget(
            kind="automated",
            label=_("Checkout terms set by the credit score"),
            scope_text=_(
                "No person decided these terms: the credit score did. Overturning grants cash "
                "on delivery, pay later and the credit limit you set."
            ),
            reason="",
            evidence=[],
            decided_by=[],
            since=appeal.filed_at,
            status_label=_("automated decision"),
            is_in_force=True,
        )
    assert appeal.blacklist_id is not None  # an appeal is against one of the three
    entry = BlacklistEntry.objects.select_related("proposed_by").get(pk=appeal.blacklist_id)
    deciders = [a.get("username", "") for a in entry.approvals or []]
    return AppealTarget(
        kind="blacklist",
        label=_("Blacklist"),
        scope_text="",
        reason=entry.reason,
        evidence=evidence_links(
            user=user, customer_id=appeal.customer_id, evidence=entry.evidence or []
        ),
        decided_by=[d for d in deciders if d],
        since=entry.proposed_at,
        status_label=_label(BlacklistEntry.Status, entry.status),
        is_in_force=entry.status in rules.LIVE_BLACKLIST,
    )


@patron_page
@require_http_methods(["GET", "POST"])
def appeal_detail(request: HttpRequest, appeal_id: int) -> HttpResponse:
    """The statement, what is appealed, and the review: start, uphold or overturn."""
    appeal = selectors.appeal_get(user=request.user, appeal_id=appeal_id)
    failure: dict[str, Any] = {}
    if request.method == "POST":
        require_permission(request.user, DECIDE_APPEAL)
        action = request.POST.get("action", "")
        reason = request.POST.get("reason", "")
        try:
            if action == "start_review":
                services.appeal_start_review(user=request.user, appeal_id=appeal_id)
                message = _("Appeal #%(id)s is in review.")
            elif action in ("uphold", "overturn"):
                limit = request.POST.get("credit_limit", "").strip()
                services.appeal_decide(
                    user=request.user,
                    appeal_id=appeal_id,
                    outcome=action,
                    reason=reason,
                    credit_limit=_amount(limit, "credit_limit") if limit else None,
                )
                message = (
                    _("Appeal #%(id)s overturned: the decision is lifted.")
                    if action == "overturn"
                    else _("Appeal #%(id)s upheld.")
                )
            else:
                raise ValidationFailed(
                    f"action: one of start_review, uphold, overturn; got '{action}'"
                )
        except (ValidationFailed, Conflict, PermissionDenied) as error:
            limit_text = request.POST.get("credit_limit", "")
            failure = {
                "action": action,
                "reason": reason,
                "credit_limit": limit_text,
                "error": error,
            }
        else:
            messages.success(request, message % {"id": appeal_id})
            return redirect("web:risk-appeal", appeal_id=appeal_id)
    context = {
        "appeal": appeal,
        "status_label": _appeal_status_label(appeal.status),
        "target": _appeal_target(request.user, appeal),
        "may_decide": request.user.has_perm(DECIDE_APPEAL) and appeal.status in rules.LIVE_APPEAL,
        "failure": failure,
    }
    refused = failure.get("error")
    status_code = refused.status if refused else 200
    return render(request, "risk/appeal.html", context, status=status_code)


# ---------------------------------------------------------------------- rules and detection


@dataclass
class RuleRow:
    rule: RiskRule
    measure_label: str
    unit: str
    severity_label: str
    action_label: str
    threshold_text: str
    edit: dict[str, str]
    backtest: dict[str, str]
    error: str = ""
    invalid: set[str] = field(default_factory=set)


def _rule_row(rule: RiskRule, measures: dict[str, RuleInfo]) -> RuleRow:
    info = measures.get(rule.code, RuleInfo(rule.name, "count", rule.measure))
    unit, label = info.unit, info.measure_label
    return RuleRow(
        rule=rule,
        measure_label=label,
        unit=unit,
        severity_label=_label(Severity, rule.severity),
        action_label=_label(SuggestedAction, rule.action),
        threshold_text=_measure_value(rule.threshold, unit),
        edit={
            "name": rule.name,
            "name_zh": rule.name_zh,
            "window_days": str(rule.window_days),
            "threshold": f"{rule.threshold:g}",
            "min_volume": str(rule.min_volume),
            "severity": rule.severity,
            "action": rule.action,
            "is_enabled": "on" if rule.is_enabled else "",
            "params": json.dumps(rule.params or {}),
        },
        backtest={
            "window_days": str(rule.window_days),
            "threshold": f"{rule.threshold:g}",
            "min_volume": str(rule.min_volume),
            "days": "90",
        },
    )


def rules_table(*, user: Any) -> list[RuleRow]:
    """Every rule (the out-of-the-box ones created if missing), by code."""
    rules_in_force = selectors.rule_list(user=user)  # first: it creates missing default rules
    measures = _rule_measures()
    return [_rule_row(rule, measures) for rule in rules_in_force]


def _rule_changes(data: QueryDict, code: str) -> dict[str, Any]:
    where = f"rule {code}"
    changes = {
        "name": data.get("name", "").strip(),
        "window_days": _whole(data.get("window_days", ""), f"{where}.window_days"),
        "threshold": _number(data.get("threshold", ""), f"{where}.threshold"),
        "min_volume": _whole(data.get("min_volume", ""), f"{where}.min_volume"),
        "severity": data.get("severity", ""),
        "action": data.get("action_suggested", ""),
        "is_enabled": data.get("is_enabled") == "on",
        "params": _json_object(data.get("params", "") or "{}", f"{where}.params"),
    }
    if "name_zh" in data:  # a form without the field leaves the Chinese name as it is
        changes["name_zh"] = data.get("name_zh", "").strip()
    return changes


def _backtest_changes(data: QueryDict, code: str) -> tuple[dict[str, Any], int]:
    where = f"rule {code}"
    changes = {
        "window_days": _whole(data.get("window_days", ""), f"{where}.window_days"),
        "threshold": _number(data.get("threshold", ""), f"{where}.threshold"),
        "min_volume": _whole(data.get("min_volume", ""), f"{where}.min_volume"),
    }
    return changes, _whole(data.get("days", ""), "backtest.days")


def _invalid_rule_field(message: str) -> set[str]:
    fields = ("window_days", "threshold", "min_volume", "name_zh", "name", "params", "severity")
    for name in (*fields, "action"):
        if f".{name}" in message.split(":")[0]:
            return {name}
    if message.startswith("backtest.days"):
        return {"days"}
    return set()


def backtest_chart(result: dict[str, Any]) -> dict[str, Any]:
    """Customers flagged at each cut-off: the rule as it stands against the changed rule."""
    cutoffs = result["per_cutoff"]
    option = charts.line(
        [row["at"][:10] for row in cutoffs],
        [
            (_("Rule as it stands"), [row["current"] for row in cutoffs]),
            (_("Changed rule"), [row["proposed"] for row in cutoffs]),
        ],
        y_name=_("Customers flagged"),
        y_min=0,
    )
    return option


def _policy_text(policy: Any) -> str:
    return json.dumps(policy.rules, indent=2, ensure_ascii=False)


@patron_page
@require_http_methods(["GET", "POST"])
def rule_list(request: HttpRequest) -> HttpResponse:
    """The rules, their edit and back-test forms, detection runs and the risk policy."""
    rows = rules_table(user=request.user)
    policy = services.risk_policy_active()
    context: dict[str, Any] = {
        "rows": rows,
        "runs": selectors.detection_runs_latest(user=request.user, limit=LATEST_RUNS),
        "policy": policy,
        "policy_text": _policy_text(policy),
        "policy_note": "",
        "may_change": request.user.has_perm(CHANGE_RISK_RULES),
        "severities": [(s, _label(Severity, s)) for s in SEVERITIES],
        "actions": [(a, _label(SuggestedAction, a)) for a in SuggestedAction.values],
    }
    if request.method == "GET":
        return render(request, "risk/rules.html", context)

    require_permission(request.user, CHANGE_RISK_RULES)
    action = request.POST.get("action", "")
    code = request.POST.get("code", "")
    row = next((r for r in rows if r.rule.code == code), None)
    if action in ("update", "backtest") and row is None:
        raise NotFound(f"rule {code!r} not found")
    status = 200
    try:
        if action == "update":
            assert row is not None
            row.edit = {
                k: request.POST.get("action_suggested" if k == "action" else k, "")
                for k in row.edit
            }
            rule = detect.rule_update(
                user=request.user, code=code, data=_rule_changes(request.POST, code)
            )
            messages.success(
                request,
                _("Rule %(code)s saved as version %(version)s.")
                % {"code": code, "version": rule.version},
            )
            return redirect(f"{reverse('web:risk-rules')}#rule-{code}")
        if action == "backtest":
            assert row is not None
            row.backtest = {k: request.POST.get(k, "") for k in row.backtest}
            changes, days = _backtest_changes(request.POST, code)
            result = detect.backtest(user=request.user, code=code, data=changes, days=days)
            context["backtest"] = result
            context["backtest_chart"] = backtest_chart(result)
            context["backtest_code"] = code
            context["backtest_chart_id"] = f"backtest-chart-{code}"
        elif action == "run":
            run = detect.detection_run(trigger="web", user=request.user)
            messages.success(
                request,
                _(
                    "Detection run #%(id)s: %(new)s new alerts, %(updated)s refreshed, "
                    "%(customers)s customers in %(seconds)s s."
                )
                % {
                    "id": run.pk,
                    "new": run.alerts_new,
                    "updated": run.alerts_updated,
                    "customers": run.customers,
                    "seconds": f"{run.seconds:.1f}",
                },
            )
            return redirect("web:risk-rules")
        elif action == "policy":
            context["policy_text"] = request.POST.get("rules", "")
            context["policy_note"] = request.POST.get("note", "").strip()
            data = _json_object(context["policy_text"], "risk policy")
            saved = services.risk_policy_save(
                user=request.user, data=data, note=context["policy_note"]
            )
            messages.success(
                request, _("Risk policy v%(version)s is in force.") % {"version": saved.version}
            )
            return redirect(f"{reverse('web:risk-rules')}#policy")
        else:
            raise ValidationFailed(f"action: one of update, backtest, run, policy; got '{action}'")
    except (ValidationFailed, Conflict) as error:
        status = error.status
        if action == "policy":
            context["policy_error"] = error.message
        elif action == "backtest":
            context["backtest_error"] = error.message
            context["backtest_code"] = code
            context["backtest_invalid"] = _invalid_rule_field(error.message)
        elif row is not None:
            row.error = error.message
            row.invalid = _invalid_rule_field(error.message)
        else:
            context["error"] = error.message
    if action == "backtest" and _is_partial(request):
        context["row"] = row
        # htmx swaps only 2xx answers in: the partial carries the message with a 200.
        return render(request, "risk/rules.html#backtest", context)
    return render(request, "risk/rules.html", context, status=status)


# ---------------------------------------------------------------------- the customer page


@dataclass(frozen=True)
class RestrictionRow:
    restriction: selectors.RestrictionView
    kind_label: str
    scope_text: str

    @property
    def appeal_target(self) -> str:
        return f"restriction-{self.restriction.id}"

    @property
    def lift_target(self) -> str:
        return f"lift-{self.restriction.id}"


@dataclass(frozen=True)
class BlacklistStatus:
    id: int
    status: str
    status_label: str
    reason: str
    proposed_at: datetime
    open_appeal_id: int | None


@dataclass(frozen=True)
class CustomerRisk:
    """The risk section of the customer page, filled as far as the user may see."""

    customer_id: int
    active: list[RestrictionRow]
    past: list[RestrictionRow]
    checkout: selectors.CheckoutPolicyView | None
    checkout_methods: list[str]
    alerts: list[AlertRow] | None  # None: the user may not see alerts
    blacklist: BlacklistStatus | None
    may_file_appeal: bool
    may_lift: bool
    automated_appeal_id: int | None = None  # an open appeal against the score-set terms

    @property
    def blacklist_target(self) -> str:
        return f"blacklist-{self.blacklist.id}" if self.blacklist else ""


def customer_blacklist_status(*, user: Any, customer_id: int) -> BlacklistStatus | None:
    """The customer's blacklist entry proposed or in force, if any."""
    require_permission(user, VIEW_RESTRICTIONS)
    entry = (
        BlacklistEntry.objects.filter(customer_id=customer_id, status__in=rules.LIVE_BLACKLIST)
        .order_by("-id")
        .first()
    )
    if entry is None:
        return None
    appeal = (
        Appeal.objects.filter(blacklist_id=entry.pk, status__in=rules.LIVE_APPEAL)
        .values_list("pk", flat=True)
        .first()
    )
    return BlacklistStatus(
        id=entry.pk,
        status=entry.status,
        status_label=_label(BlacklistEntry.Status, entry.status),
        reason=entry.reason,
        proposed_at=entry.proposed_at,
        open_appeal_id=appeal,
    )


def customer_risk_section(*, user: Any, customer_id: int) -> CustomerRisk | None:
    """None unless the user may see restrictions (``VIEW_RESTRICTIONS``)."""
    if not user.has_perm(VIEW_RESTRICTIONS):
        return None
    restrictions = selectors.restrictions_of_customer(user=user, customer_id=customer_id)
    checkout = None
    if user.has_perm(VIEW_CHECKOUT_POLICY):
        checkout = selectors.checkout_policy_of(user=user, customer_id=customer_id)
    currency = checkout.currency if checkout else "CNY"
    rows = [
        RestrictionRow(
            restriction=r,
            kind_label=_label(RestrictionKind, r.kind),
            scope_text=_scope_text(r.kind, r.scope, currency),
        )
        for r in restrictions
    ]
    alerts = None
    if user.has_perm(VIEW_RISK):
        _, found = selectors.alert_list(
            user=user, filters=selectors.AlertFilter(customer_id=customer_id), limit=20
        )
        alerts = _alert_rows(found)
    return CustomerRisk(
        customer_id=customer_id,
        active=[row for row in rows if row.restriction.is_active],
        past=[row for row in rows if not row.restriction.is_active],
        checkout=checkout,
        checkout_methods=[_method_label(m) for m in checkout.payment_methods] if checkout else [],
        alerts=alerts,
        blacklist=customer_blacklist_status(user=user, customer_id=customer_id),
        may_file_appeal=user.has_perm(FILE_APPEAL),
        may_lift=user.has_perm(ACT_ON_RISK),
        automated_appeal_id=Appeal.objects.filter(
            customer_id=customer_id,
            subject=Appeal.Subject.AUTOMATED,
            status__in=rules.LIVE_APPEAL,
        )
        .values_list("pk", flat=True)
        .first(),
    )


def _customer_page_with(
    request: HttpRequest, customer_id: int, error: PatronError, form: dict[str, Any]
) -> HttpResponse:
    from patron.web.views import customer_page

    return customer_page(
        request, customer_id, risk_form={**form, "error": error.message}, status=error.status
    )


@patron_page
@require_POST
def appeal_file(request: HttpRequest, customer_id: int) -> HttpResponse:
    """A service agent (or anyone with ``FILE_APPEAL``) files the customer's appeal."""
    require_permission(request.user, FILE_APPEAL)
    statement = request.POST.get("statement", "")
    restriction = request.POST.get("restriction", "")
    entry = request.POST.get("blacklist", "")
    automated = request.POST.get("automated") == "1"
    target = (
        "automated"
        if automated
        else f"restriction-{restriction}"
        if restriction
        else f"blacklist-{entry}"
    )
    try:
        appeal = services.appeal_file(
            user=request.user,
            customer_id=customer_id,
            statement=statement,
            restriction_id=_whole(restriction, "restriction") if restriction else None,
            blacklist_id=_whole(entry, "blacklist") if entry else None,
            automated=automated,
            channel="staff",
        )
    except (ValidationFailed, Conflict) as error:
        form = {"target": target, "statement": statement}
        return _customer_page_with(request, customer_id, error, form)
    messages.success(
        request,
        _("Appeal #%(id)s filed: a decision is due by %(due)s.")
        % {"id": appeal.pk, "due": f"{timezone.localtime(appeal.due_at):%Y-%m-%d %H:%M}"},
    )
    return redirect(f"{reverse('web:customer-detail', args=[customer_id])}#risk")


@patron_page
@require_POST
def restriction_lift(request: HttpRequest, restriction_id: int) -> HttpResponse:
    """Analysts lift a restriction from the customer page."""
    require_permission(request.user, ACT_ON_RISK)
    customer_id = (
        Restriction.objects.filter(pk=restriction_id).values_list("customer_id", flat=True).first()
    )
    if customer_id is None:
        raise NotFound(f"restriction {restriction_id} not found")
    reason = request.POST.get("reason", "")
    try:
        services.restriction_lift(user=request.user, restriction_id=restriction_id, reason=reason)
    except (ValidationFailed, Conflict) as error:
        form = {"target": f"lift-{restriction_id}", "reason": reason}
        return _customer_page_with(request, customer_id, error, form)
    messages.success(request, _("Restriction #%(id)s lifted.") % {"id": restriction_id})
    return redirect(f"{reverse('web:customer-detail', args=[customer_id])}#risk")
