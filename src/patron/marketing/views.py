"""Marketing pages for staff: segments (list with sizes, a rule builder with a live preview,
saving), one segment (its rule in plain words, members page by page), coupons (templates
with stock and budget used, creating a template, issuing codes, recent codes), campaigns
(list, planning form, one campaign with its launch, schedule and cancel buttons and its
evaluation: the goal metric per group with 95 % intervals, as a chart and tables) and
win-back programmes (list and form; one programme with its run, pause and edit buttons, its
evaluation, runs and entries with each one's offer and why).

Each view parses the form, calls a selector or a service and renders. A refusal is shown next
to the form that asked, with its status (422 invalid, 409 conflict); a missing permission is
the plain 403 page through ``patron_page``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _

from patron.account.roles import (
    CHANGE_CAMPAIGNS,
    CHANGE_COUPONS,
    CHANGE_SEGMENTS,
    VIEW_CAMPAIGNS,
    VIEW_COUPONS,
    VIEW_SEGMENTS,
)
from patron.account.services import require_permission
from patron.errors import Conflict, NotFound, PatronError, ValidationFailed
from patron.marketing import rules, selectors, services
from patron.marketing.models import CampaignMember
from patron.web import charts
from patron.web.views import patron_page

BUILDER_ROWS = 6
PAGE_SIZE = 50


def _page_number(request: HttpRequest) -> int:
    try:
        number = int(request.GET.get("page", 1))
    except (TypeError, ValueError):
        return 1
    return min(max(number, 1), 100_000)


def _language() -> str:
    return get_language() or "en"


@dataclass
class BuilderRow:
    field: str = ""
    op: str = ""
    value: str = ""


def _typed(spec: rules.SegmentField, text: str) -> Any:
    """A form's text as the JSON value the rule expects (numbers as numbers)."""
    text = text.strip()
    if spec.type is rules.FieldType.NUMBER:
        try:
            number = Decimal(text)
        except InvalidOperation:
            return text  # the rule's validation names the mistake
        return int(number) if number == number.to_integral_value() else float(number)
    return text


def _row_condition(row: BuilderRow) -> dict[str, Any]:
    spec = rules.SEGMENT_FIELDS.get(row.field)
    condition: dict[str, Any] = {"field": row.field, "op": row.op}
    if spec is None or row.op in ("is_null", "not_null"):
        return condition
    if row.op in ("in", "not_in", "between"):
        condition["value"] = [_typed(spec, part) for part in row.value.split(",") if part.strip()]
    else:
        condition["value"] = _typed(spec, row.value)
    return condition


def _builder_rule(post: QueryDict) -> tuple[dict[str, Any], list[BuilderRow], str, str]:
    """The rule from the builder: either the JSON box (nesting) or the rows, combined with
    the chosen mode."""
    mode = post.get("mode", "all") if post.get("mode") in ("all", "any") else "all"
    rows = [
        BuilderRow(post.get(f"field_{i}", ""), post.get(f"op_{i}", ""), post.get(f"value_{i}", ""))
        for i in range(BUILDER_ROWS)
    ]
    raw_json = post.get("rule_json", "").strip()
    if raw_json:
        try:
            rule = json.loads(raw_json)
        except ValueError:
            raise ValidationFailed(_("rule: the JSON could not be read")) from None
        return rule, rows, mode, raw_json
    used = [_row_condition(r) for r in rows if r.field]
    return {mode: used}, rows, mode, raw_json


def _rows_from_rule(rule: dict[str, Any]) -> tuple[list[BuilderRow], str, str]:
    """The builder's rows for a stored rule; a nested rule goes to the JSON box."""
    mode = next(iter(rule), "all")
    items = rule.get(mode, [])
    if any("field" not in item for item in items) or len(items) > BUILDER_ROWS:
        return (
            [BuilderRow() for _ in range(BUILDER_ROWS)],
            "all",
            json.dumps(rule, ensure_ascii=False),
        )
    rows = []
    for item in items:
        value = item.get("value")
        text = ", ".join(str(v) for v in value) if isinstance(value, list) else (
            "" if value is None else str(value)
        )  # fmt: skip
        rows.append(BuilderRow(item["field"], item["op"], text))
    rows += [BuilderRow() for _ in range(BUILDER_ROWS - len(rows))]
    return rows, mode, ""


def _builder_context(request: HttpRequest) -> dict[str, Any]:
    return {
        "fields": list(rules.SEGMENT_FIELDS.values()),
        "operators": [(op.value, rules.OP_LABELS[op]) for op in rules.Op],
        "is_zh": _language().startswith("zh"),
    }


@patron_page
def segment_list(request: HttpRequest) -> HttpResponse:
    """Saved segments with their sizes, and the builder: preview a rule, save it."""
    segments = selectors.segments_list(user=request.user)
    may_change = request.user.has_perm(CHANGE_SEGMENTS)
    edit_id = request.GET.get("edit") or request.POST.get("segment_id") or ""
    form = {"name": "", "description": "", "segment_id": ""}
    rows = [BuilderRow() for _ in range(BUILDER_ROWS)]
    mode, raw_json, preview, error, status = "all", "", None, "", 200
    if request.method == "GET" and edit_id.isdigit():
        segment = selectors.segment_get(user=request.user, segment_id=int(edit_id))
        form = {"name": segment.name, "description": segment.description, "segment_id": edit_id}
        rows, mode, raw_json = _rows_from_rule(segment.rule)
    if request.method == "POST":
        form = {
            "name": request.POST.get("name", ""),
            "description": request.POST.get("description", ""),
            "segment_id": edit_id if edit_id.isdigit() else "",
        }
        try:
            rule, rows, mode, raw_json = _builder_rule(request.POST)
            if request.POST.get("action") == "save":
                require_permission(request.user, CHANGE_SEGMENTS)
                saved = services.segment_save(
                    user=request.user,
                    segment_id=int(form["segment_id"]) if form["segment_id"] else None,
                    name=form["name"],
                    description=form["description"],
                    rule=rule,
                )
                messages.success(
                    request, _("Segment %(name)s saved (version %(version)s).")
                    % {"name": saved.name, "version": saved.version},
                )  # fmt: skip
                return redirect("web:marketing-segment", segment_id=saved.pk)
            preview = selectors.segment_preview(user=request.user, rule=rule, language=_language())
        except (ValidationFailed, Conflict) as refused:
            error, status = refused.message, refused.status
    context = {
        "segments": segments,
        "may_change": may_change,
        "form": form,
        "rows": rows,
        "mode": mode,
        "rule_json": raw_json,
        "preview": preview,
        "error": error,
        **_builder_context(request),
    }
    return render(request, "marketing/segments.html", context, status=status)


@patron_page
def segment_detail(request: HttpRequest, segment_id: int) -> HttpResponse:
    segment = selectors.segment_get(user=request.user, segment_id=segment_id)
    page = selectors.segment_members(
        user=request.user, segment_id=segment_id, page=_page_number(request), page_size=PAGE_SIZE
    )
    context = {
        "segment": segment,
        "rule_text": selectors.segment_description(segment, language=_language()),
        "rule_json": json.dumps(segment.rule, ensure_ascii=False, indent=2),
        "page": page,
        "may_change": request.user.has_perm(CHANGE_SEGMENTS),
        "versions": segment.versions.order_by("-version")[:10],
    }
    return render(request, "marketing/segment_detail.html", context)


def _when(text: str, name: str, entity: str = "coupon_template") -> datetime | None:
    if not text.strip():
        return None
    moment = parse_datetime(text.strip()) or parse_datetime(f"{text.strip()}T00:00")
    if moment is None:
        raise ValidationFailed(f"{entity}.{name}: expected a date and time")
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment)


def _whole(text: str, name: str, entity: str = "coupon_template") -> int | None:
    if not text.strip():
        return None
    try:
        return int(text.strip())
    except ValueError:
        raise ValidationFailed(f"{entity}.{name}: expected a whole number") from None


def _template_form(post: QueryDict) -> dict[str, Any]:
    categories = [part.strip() for part in post.get("category_ids", "").split(",") if part.strip()]
    try:
        category_ids = [int(c) for c in categories]
    except ValueError:
        raise ValidationFailed("coupon_template.category_ids: expected ids, e.g. 3, 7") from None
    return {
        "name": post.get("name", ""),
        "kind": post.get("kind", ""),
        "value": post.get("value", "").strip() or "0",
        "min_order_amount": post.get("min_order_amount", "").strip() or "0",
        "category_ids": category_ids,
        "valid_from": _when(post.get("valid_from", ""), "valid_from"),
        "valid_until": _when(post.get("valid_until", ""), "valid_until"),
        "valid_days": _whole(post.get("valid_days", ""), "valid_days"),
        "per_customer_limit": _whole(post.get("per_customer_limit", ""), "per_customer_limit"),
        "stock": _whole(post.get("stock", ""), "stock"),
        "budget": post.get("budget", "").strip() or None,
    }


def _issue(request: HttpRequest) -> str:
    template_id = _whole(request.POST.get("template_id", ""), "template_id")
    if template_id is None:
        raise NotFound("coupon template not found")
    ids_text = request.POST.get("customer_ids", "").replace("\n", ",")
    count = _whole(request.POST.get("count", ""), "count")
    try:
        ids = [int(part) for part in ids_text.split(",") if part.strip()]
    except ValueError:
        raise ValidationFailed("coupon_issue.customer_ids: expected customer ids") from None
    coupons = services.coupons_issue(
        user=request.user,
        template_id=template_id,
        customer_ids=ids or None,
        count=None if ids else count,
        reason=request.POST.get("reason", ""),
        request_key=request.POST.get("request_key", ""),
    )
    return _("%(count)s coupon(s) issued.") % {"count": len(coupons)}


@patron_page
def coupon_list(request: HttpRequest) -> HttpResponse:
    """Templates with stock and budget used, the forms to create one and issue codes, and
    the latest codes."""
    require_permission(request.user, VIEW_COUPONS)
    may_change = request.user.has_perm(CHANGE_COUPONS)
    error, error_form, status = "", "", 200
    if request.method == "POST":
        require_permission(request.user, CHANGE_COUPONS)
        action = request.POST.get("action", "")
        try:
            if action == "create":
                template = services.coupon_template_create(
                    user=request.user, data=_template_form(request.POST)
                )
                messages.success(request, _("Template %(name)s created.") % {"name": template.name})
            elif action == "issue":
                messages.success(request, _issue(request))
            else:
                raise ValidationFailed(f"unknown action {action!r}")
            return redirect("web:marketing-coupons")
        except PatronError as refused:
            if isinstance(refused, NotFound) or refused.status == 403:
                raise
            error, error_form, status = refused.message, action, refused.status
    coupons = selectors.coupons_list(user=request.user, page=_page_number(request), page_size=50)
    context = {
        "templates": selectors.coupon_templates_list(user=request.user),
        "page": coupons,
        "may_change": may_change,
        "error": error,
        "error_form": error_form,
        "post": request.POST if request.method == "POST" else {},
        "new_request_key": f"web-{timezone.now():%Y%m%d%H%M%S%f}",
        "kinds": [("amount_off", _("Amount off (CNY)")), ("percent_off", _("Percent off"))],
    }
    return render(request, "marketing/coupons.html", context, status=status)


# ---------------------------------------------------------------------- campaigns

CHANNEL_CHOICES = [
    ("sms", gettext_lazy("SMS")),
    ("wechat", gettext_lazy("WeChat")),
    ("email", gettext_lazy("E-mail")),
    ("app", gettext_lazy("App push")),
    ("phone", gettext_lazy("Phone")),
]


def _decimal_or_none(text: str, name: str, entity: str = "campaign") -> Decimal | None:
    if not text.strip():
        return None
    try:
        return Decimal(text.strip())
    except InvalidOperation:
        raise ValidationFailed(f"{entity}.{name}: expected a number") from None


def _campaign_form(post: QueryDict) -> dict[str, Any]:
    """The campaign form as the service's data (the service checks the plan as a whole)."""
    share = _decimal_or_none(post.get("holdout_percent", ""), "holdout_share")
    target = _decimal_or_none(post.get("target_value", ""), "target_value")
    goal = post.get("goal_metric", "")
    if target is not None and goal != rules.GoalMetric.REVENUE_PER_CUSTOMER:
        target = target / 100  # rates are entered in percentage points
    data: dict[str, Any] = {
        "name": post.get("name", ""),
        "description": post.get("description", ""),
        "goal_metric": goal,
        "target_value": target,
        "period_start": _when(post.get("period_start", ""), "period_start", "campaign"),
        "period_end": _when(post.get("period_end", ""), "period_end", "campaign"),
        "segment_id": _whole(post.get("segment_id", ""), "segment_id", "campaign"),
        "holdout_share": Decimal("0.1") if share is None else share / 100,
        "offer_kind": post.get("offer_kind", ""),
        "coupon_template_id": _whole(
            post.get("coupon_template_id", ""), "coupon_template_id", "campaign"
        ),
        "points": _whole(post.get("points", ""), "points", "campaign"),
        "gift_text": post.get("gift_text", ""),
        "channels": [c for c, _label in CHANNEL_CHOICES if c in post.getlist("channels")],
        "message_title": post.get("message_title", ""),
        "message_text": post.get("message_text", ""),
        "send_at": _when(post.get("send_at", ""), "send_at", "campaign"),
        "budget": post.get("budget", "").strip() or None,
        "unit_cost": post.get("unit_cost", "").strip() or None,
        "frequency_cap_messages": _whole(
            post.get("frequency_cap_messages", ""), "frequency_cap_messages", "campaign"
        ),
        "frequency_cap_days": _whole(
            post.get("frequency_cap_days", ""), "frequency_cap_days", "campaign"
        ),
    }
    if data["offer_kind"] != rules.OfferKind.COUPON:
        data["coupon_template_id"] = None
    if data["offer_kind"] != rules.OfferKind.POINTS:
        data["points"] = None
    if data["segment_id"] is None:
        raise ValidationFailed("campaign.segment_id: choose a segment")
    return data


@patron_page
def campaign_list(request: HttpRequest) -> HttpResponse:
    """Campaigns with their audience split and reach, and the form to plan a new one."""
    require_permission(request.user, VIEW_CAMPAIGNS)
    may_change = request.user.has_perm(CHANGE_CAMPAIGNS)
    error, status = "", 200
    if request.method == "POST":
        require_permission(request.user, CHANGE_CAMPAIGNS)
        try:
            campaign = services.campaign_create(
                user=request.user, data=_campaign_form(request.POST)
            )
            messages.success(
                request, _("Campaign %(name)s saved as a draft.") % {"name": campaign.name}
            )
            return redirect("web:marketing-campaign", campaign_id=campaign.pk)
        except PatronError as refused:
            if refused.status == 403:
                raise
            error, status = refused.message, refused.status
    now = timezone.localtime()
    context = {
        "campaigns": selectors.campaigns_list(user=request.user),
        "may_change": may_change,
        "error": error,
        "post": request.POST if request.method == "POST" else {},
        "segments": selectors.segments_list(user=request.user)
        if request.user.has_perm(VIEW_SEGMENTS)
        else [],
        "templates": [u.template for u in selectors.coupon_templates_list(user=request.user)]
        if request.user.has_perm(VIEW_COUPONS)
        else [],
        "goals": [(g, f"{zh} {en}") for g, (_u, zh, en, _d) in rules.GOAL_METRICS.items()],
        "offers": [
            ("coupon", _("Coupon")),
            ("points", _("Points")),
            ("gift", _("Gift")),
            ("message", _("Message only")),
        ],
        "channels": CHANNEL_CHOICES,
        "checked_channels": request.POST.getlist("channels")
        if request.method == "POST"
        else ["sms"],
        "default_start": now.strftime("%Y-%m-%dT%H:%M"),
        "default_end": (now + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M"),
    }
    return render(request, "marketing/campaigns.html", context, status=status)


def _percent(value: float | None) -> float | None:
    return None if value is None else round(value * 100, 2)


def _evaluation_chart(evaluation: selectors.CampaignEvaluation) -> dict[str, Any]:
    """Treatment, holdout and their difference, each with its 95 % interval; rates in %."""
    scale = 100.0 if evaluation.unit == "share" else 1.0

    def point(value: float | None) -> float | None:
        return None if value is None else round(value * scale, 4)

    def bounds(interval: Any) -> tuple[float, float] | None:
        if interval is None:
            return None
        return (round(interval.low * scale, 4), round(interval.high * scale, 4))

    difference = evaluation.uplift
    return charts.bars_with_intervals(
        [_("Treatment"), _("Holdout"), _("Uplift (T − H)")],
        [
            point(evaluation.treatment.metric),
            point(evaluation.holdout.metric),
            point(difference.estimate if difference else None),
        ],
        [
            bounds(evaluation.treatment.metric_interval),
            bounds(evaluation.holdout.metric_interval),
            bounds(difference),
        ],
        y_name="%" if evaluation.unit == "share" else "CNY",
        name=evaluation.goal_label,
        interval_name=_("95 % interval"),
    )


def _campaign_action(request: HttpRequest, campaign_id: int) -> str:
    action = request.POST.get("action", "")
    if action == "launch":
        campaign = services.campaign_launch(user=request.user, campaign_id=campaign_id)
        return _("Campaign %(name)s launched.") % {"name": campaign.name}
    if action == "schedule":
        campaign = services.campaign_schedule(user=request.user, campaign_id=campaign_id)
        return _("Campaign %(name)s scheduled.") % {"name": campaign.name}
    if action == "cancel":
        campaign = services.campaign_cancel(
            user=request.user, campaign_id=campaign_id, reason=request.POST.get("reason", "")
        )
        return _("Campaign %(name)s cancelled.") % {"name": campaign.name}
    raise ValidationFailed(f"unknown action {action!r}")


@patron_page
def campaign_detail(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """A campaign's plan, its launch, schedule and cancel buttons, and its evaluation."""
    error, status = "", 200
    if request.method == "POST":
        require_permission(request.user, CHANGE_CAMPAIGNS)
        try:
            messages.success(request, _campaign_action(request, campaign_id))
            return redirect("web:marketing-campaign", campaign_id=campaign_id)
        except PatronError as refused:
            if isinstance(refused, NotFound) or refused.status == 403:
                raise
            error, status = refused.message, refused.status
    summary = selectors.campaign_get(user=request.user, campaign_id=campaign_id)
    evaluation = selectors.campaign_evaluation(user=request.user, campaign_id=campaign_id)
    campaign = summary.campaign
    context = {
        "summary": summary,
        "campaign": campaign,
        "evaluation": evaluation,
        "chart": _evaluation_chart(evaluation),
        "is_rate": evaluation.unit == "share",
        "shown": _shown(evaluation),
        "rows": _evaluation_rows(evaluation),
        "outcome_rows": _outcome_rows(evaluation),
        "may_change": request.user.has_perm(CHANGE_CAMPAIGNS),
        "allowed": rules.CAMPAIGN_MACHINE.get(campaign.status, {}),
        "not_reported": selectors.NOT_REPORTED,
        "error": error,
    }
    return render(request, "marketing/campaign_detail.html", context, status=status)


def _evaluation_rows(evaluation: selectors.CampaignEvaluation) -> list[tuple[str, Any, Any]]:
    t, h = evaluation.treatment, evaluation.holdout
    return [
        (_("Members"), t.members, h.members),
        (_("Buyers in the period"), t.buyers, h.buyers),
        (_("Orders"), t.orders, h.orders),
        (_("Revenue (CNY)"), t.revenue, h.revenue),
        (_("No order in the 180 days before"), t.lapsed, h.lapsed),
        (_("… of whom ordered (reactivated)"), t.reactivated, h.reactivated),
        (_("Coupons issued"), t.coupons_issued, h.coupons_issued),
        (_("Coupons redeemed"), t.coupons_redeemed, h.coupons_redeemed),
        (_("Discount given (CNY)"), t.discount_given, h.discount_given),
        (_("Points granted"), t.points_granted, h.points_granted),
        (_("Offer cost (CNY)"), t.cost, h.cost),
    ]


def _outcome_rows(evaluation: selectors.CampaignEvaluation) -> list[tuple[str, int]]:
    labels = dict(CampaignMember.Outcome.choices)
    counts = evaluation.treatment.outcomes
    return [(str(labels.get(o, o)), n) for o, n in sorted(counts.items(), key=lambda i: -i[1])]


def _shown(evaluation: selectors.CampaignEvaluation) -> dict[str, str]:
    """The evaluation's figures as text: rates in % (differences in percentage points),
    revenue in CNY."""
    is_rate = evaluation.unit == "share"

    def level(value: float | None) -> str:
        if value is None:
            return "—"
        return f"{value * 100:.1f} %" if is_rate else f"¥{value:,.2f}"

    def change(value: float) -> str:
        return f"{value * 100:+.1f} {_('percentage points')}" if is_rate else f"{value:+,.2f} CNY"

    def interval(found: Any) -> str:
        return f"[{change(found.low)}, {change(found.high)}]" if found is not None else "—"

    campaign, difference = evaluation.campaign, evaluation.uplift
    on_contacted = evaluation.effect_on_contacted
    return {
        "treatment": level(evaluation.treatment.metric),
        "holdout": level(evaluation.holdout.metric),
        "uplift": change(difference.estimate) if difference is not None else "—",
        "interval": interval(difference),
        "target": change(evaluation.target) if evaluation.target is not None else "",
        "progress": f"{evaluation.progress * 100:.0f} %" if evaluation.progress is not None else "",
        "holdout_share": f"{campaign.holdout_share * 100:.1f} %",
        "contact_rate": f"{(evaluation.contact_rate or 0) * 100:.1f} %",
        "on_contacted": (
            f"{change(on_contacted.estimate)} {interval(on_contacted)}" if on_contacted else ""
        ),
    }


# ---------------------------------------------------------------------- win-back (R-G7)

GRADE_CHOICES = [
    ("core", gettext_lazy("Core")),
    ("potential", gettext_lazy("Potential")),
    ("ordinary", gettext_lazy("Ordinary")),
]


def _offer_choices() -> list[tuple[str, str]]:
    return [
        ("coupon", _("Coupon")),
        ("points", _("Points")),
        ("gift", _("Gift")),
        ("message", _("Message only")),
    ]


def _winback_form(post: QueryDict) -> dict[str, Any]:
    """The programme form as the service's data (the service checks it as a whole)."""
    share = _decimal_or_none(post.get("holdout_percent", ""), "holdout_share", "winback")
    threshold = _decimal_or_none(post.get("churn_threshold", ""), "churn_threshold", "winback")
    data: dict[str, Any] = {
        "name": post.get("name", ""),
        "description": post.get("description", ""),
        "churn_threshold": threshold if threshold is not None else "",
        "holdout_share": Decimal("0.1") if share is None else share / 100,
        "cool_down_days": _whole(post.get("cool_down_days", ""), "cool_down_days", "winback"),
        "window_days": _whole(post.get("window_days", ""), "window_days", "winback"),
        "offer_kind": post.get("offer_kind", ""),
        "coupon_template_id": _whole(
            post.get("coupon_template_id", ""), "coupon_template_id", "winback"
        ),
        "points": _whole(post.get("points", ""), "points", "winback"),
        "gift_text": post.get("gift_text", ""),
        "high_value_offer_kind": post.get("high_value_offer_kind", ""),
        "high_value_coupon_template_id": _whole(
            post.get("high_value_coupon_template_id", ""),
            "high_value_coupon_template_id",
            "winback",
        ),
        "high_value_points": _whole(
            post.get("high_value_points", ""), "high_value_points", "winback"
        ),
        "high_value_gift_text": post.get("high_value_gift_text", ""),
        "high_value_min_clv": post.get("high_value_min_clv", "").strip() or None,
        "high_value_grades": [
            g for g, _label in GRADE_CHOICES if g in post.getlist("high_value_grades")
        ],
        "channels": [c for c, _label in CHANNEL_CHOICES if c in post.getlist("channels")],
        "message_title": post.get("message_title", ""),
        "message_text": post.get("message_text", ""),
        "category_fallback": post.get("category_fallback", ""),
        "frequency_cap_messages": _whole(
            post.get("frequency_cap_messages", ""), "frequency_cap_messages", "winback"
        ),
        "frequency_cap_days": _whole(
            post.get("frequency_cap_days", ""), "frequency_cap_days", "winback"
        ),
    }
    # The form shows every offer's fields: only the chosen kinds' are meant.
    for prefix in ("", "high_value_"):
        kind = data[f"{prefix}offer_kind"]
        if kind != rules.OfferKind.COUPON:
            data[f"{prefix}coupon_template_id"] = None
        if kind != rules.OfferKind.POINTS:
            data[f"{prefix}points"] = None
        if kind != rules.OfferKind.GIFT:
            data[f"{prefix}gift_text"] = ""
    for name in ("cool_down_days", "window_days"):
        if data[name] is None:
            del data[name]  # the defaults
    return data


def _winback_form_values(programme: Any) -> dict[str, Any]:
    """A programme as the form's initial values (strings, like a POST)."""
    return {
        "name": programme.name,
        "description": programme.description,
        "churn_threshold": f"{programme.churn_threshold.normalize():f}",
        "holdout_percent": f"{(programme.holdout_share * 100).normalize():f}",
        "cool_down_days": str(programme.cool_down_days),
        "window_days": str(programme.window_days),
        "offer_kind": programme.offer_kind,
        "coupon_template_id": str(programme.coupon_template_id or ""),
        "points": str(programme.points or ""),
        "gift_text": programme.gift_text,
        "high_value_offer_kind": programme.high_value_offer_kind,
        "high_value_coupon_template_id": str(programme.high_value_coupon_template_id or ""),
        "high_value_points": str(programme.high_value_points or ""),
        "high_value_gift_text": programme.high_value_gift_text,
        "high_value_min_clv": str(programme.high_value_min_clv or ""),
        "message_title": programme.message_title,
        "message_text": programme.message_text,
        "category_fallback": programme.category_fallback,
        "frequency_cap_messages": str(programme.frequency_cap_messages or ""),
        "frequency_cap_days": str(programme.frequency_cap_days or ""),
    }


def _winback_form_context(
    request: HttpRequest, values: Any, channels: list[str], grades: list[str]
) -> dict[str, Any]:
    return {
        "form": values,
        "offers": _offer_choices(),
        "channels": CHANNEL_CHOICES,
        "grades": GRADE_CHOICES,
        "checked_channels": channels,
        "checked_grades": grades,
        "templates": [u.template for u in selectors.coupon_templates_list(user=request.user)]
        if request.user.has_perm(VIEW_COUPONS)
        else [],
    }


@patron_page
def winback_list(request: HttpRequest) -> HttpResponse:
    """Win-back programmes with their entries and latest run, and the form to make one."""
    require_permission(request.user, VIEW_CAMPAIGNS)
    may_change = request.user.has_perm(CHANGE_CAMPAIGNS)
    error, status = "", 200
    if request.method == "POST":
        require_permission(request.user, CHANGE_CAMPAIGNS)
        try:
            programme = services.winback_programme_create(
                user=request.user, data=_winback_form(request.POST)
            )
            messages.success(
                request, _("Win-back programme %(name)s saved.") % {"name": programme.name}
            )
            return redirect("web:marketing-winback-programme", programme_id=programme.pk)
        except PatronError as refused:
            if refused.status == 403:
                raise
            error, status = refused.message, refused.status
    posted = request.method == "POST"
    context = {
        "programmes": selectors.winback_programmes_list(user=request.user),
        "may_change": may_change,
        "error": error,
        **_winback_form_context(
            request,
            request.POST if posted else {},
            request.POST.getlist("channels") if posted else ["sms"],
            request.POST.getlist("high_value_grades") if posted else ["core"],
        ),
    }
    return render(request, "marketing/winback.html", context, status=status)


def _winback_action(request: HttpRequest, programme_id: int) -> str:
    action = request.POST.get("action", "")
    if action == "run":
        run = services.winback_programme_run(user=request.user, programme_id=programme_id)
        return _(
            "Run done: %(entered)s entered (%(treatment)s treated, %(holdout)s held out), "
            "%(messaged)s messaged."
        ) % {
            "entered": run.entered,
            "treatment": run.treatment,
            "holdout": run.holdout,
            "messaged": run.messaged,
        }
    if action in ("pause", "resume"):
        programme = services.winback_programme_update(
            user=request.user, programme_id=programme_id, changes={"is_active": action == "resume"}
        )
        if programme.is_active:
            return _("Programme %(name)s resumed.") % {"name": programme.name}
        return _("Programme %(name)s paused.") % {"name": programme.name}
    if action == "save":
        programme = services.winback_programme_update(
            user=request.user, programme_id=programme_id, changes=_winback_form(request.POST)
        )
        return _("Win-back programme %(name)s saved.") % {"name": programme.name}
    raise ValidationFailed(f"unknown action {action!r}")


def _winback_chart(evaluation: selectors.WinbackEvaluation) -> dict[str, Any]:
    """Reactivation in the treatment and the holdout and their difference, with 95 % intervals,
    in %."""

    def point(value: float | None) -> float | None:
        return None if value is None else round(value * 100, 4)

    def bounds(interval: Any) -> tuple[float, float] | None:
        return (
            None
            if interval is None
            else (round(interval.low * 100, 4), round(interval.high * 100, 4))
        )

    difference = evaluation.uplift
    return charts.bars_with_intervals(
        [_("Treatment"), _("Holdout"), _("Uplift (T − H)")],
        [
            point(evaluation.treatment.rate),
            point(evaluation.holdout.rate),
            point(difference.estimate if difference else None),
        ],
        [
            bounds(evaluation.treatment.rate_interval),
            bounds(evaluation.holdout.rate_interval),
            bounds(difference),
        ],
        y_name="%",
        name=_("Reactivation rate"),
        interval_name=_("95 % interval"),
    )


def _points(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:+.1f} {_('percentage points')}"


def _interval_points(found: Any) -> str:
    return "—" if found is None else f"[{_points(found.low)}, {_points(found.high)}]"


def _winback_shown(evaluation: selectors.WinbackEvaluation) -> dict[str, str]:
    def level(value: float | None) -> str:
        return "—" if value is None else f"{value * 100:.1f} %"

    revenue = evaluation.revenue_uplift
    on_contacted = evaluation.effect_on_contacted
    return {
        "treatment": level(evaluation.treatment.rate),
        "holdout": level(evaluation.holdout.rate),
        "uplift": _points(evaluation.uplift.estimate) if evaluation.uplift else "—",
        "interval": _interval_points(evaluation.uplift),
        "revenue_uplift": "—" if revenue is None else f"{revenue.estimate:+,.2f} CNY",
        "revenue_interval": "—"
        if revenue is None
        else f"[{revenue.low:+,.2f}, {revenue.high:+,.2f}] CNY",
        "contact_rate": level(evaluation.contact_rate),
        "on_contacted": (
            f"{_points(on_contacted.estimate)} {_interval_points(on_contacted)}"
            if on_contacted
            else ""
        ),
    }


def _winback_rows(evaluation: selectors.WinbackEvaluation) -> list[tuple[str, Any, Any]]:
    t, h = evaluation.treatment, evaluation.holdout

    def money(value: float | None) -> str:
        return "—" if value is None else f"{value:,.2f}"

    return [
        (_("Entries (window closed)"), t.entries, h.entries),
        (_("Customers"), t.customers, h.customers),
        (_("Reactivated (paid order in the window)"), t.reactivated, h.reactivated),
        (_("Orders in the window"), t.orders, h.orders),
        (_("Revenue in the window (CNY)"), t.revenue, h.revenue),
        (_("Revenue per entry (CNY)"), money(t.revenue_per_entry), money(h.revenue_per_entry)),
        (_("Coupons issued"), t.coupons_issued, h.coupons_issued),
        (_("Coupons redeemed"), t.coupons_redeemed, h.coupons_redeemed),
        (_("Discount given (CNY)"), t.discount_given, h.discount_given),
        (_("Points granted"), t.points_granted, h.points_granted),
        (_("Offer cost (CNY)"), t.cost, h.cost),
    ]


def _tier_rows(evaluation: selectors.WinbackEvaluation) -> list[dict[str, str]]:
    labels = {"standard": _("Standard offer"), "high_value": _("High-value offer")}

    def rate(hits: int, n: int) -> str:
        return "—" if n == 0 else f"{hits}/{n} ({hits / n * 100:.1f} %)"

    return [
        {
            "tier": str(labels.get(t.tier, t.tier)),
            "treatment": rate(t.treatment_reactivated, t.treatment),
            "holdout": rate(t.holdout_reactivated, t.holdout),
            "uplift": _points(t.uplift.estimate) if t.uplift else "—",
            "interval": _interval_points(t.uplift),
        }
        for t in evaluation.tiers
    ]


@patron_page
def winback_detail(request: HttpRequest, programme_id: int) -> HttpResponse:
    """A programme: its rules, its buttons (run now, pause, resume, edit), its evaluation
    (reactivation treatment against holdout with 95 % intervals, by offer tier), its runs
    and its latest entries with the offer each got and why."""
    error, status = "", 200
    if request.method == "POST":
        require_permission(request.user, CHANGE_CAMPAIGNS)
        try:
            messages.success(request, _winback_action(request, programme_id))
            return redirect("web:marketing-winback-programme", programme_id=programme_id)
        except PatronError as refused:
            if isinstance(refused, NotFound) or refused.status == 403:
                raise
            error, status = refused.message, refused.status
    summary = selectors.winback_programme_get(user=request.user, programme_id=programme_id)
    programme = summary.programme
    evaluation = selectors.winback_evaluation(user=request.user, programme_id=programme_id)
    entries = selectors.winback_enrolments(
        user=request.user, programme_id=programme_id, page=_page_number(request), page_size=20
    )
    posted = request.method == "POST" and request.POST.get("action") == "save"
    context = {
        "summary": summary,
        "programme": programme,
        "evaluation": evaluation,
        "chart": _winback_chart(evaluation),
        "shown": _winback_shown(evaluation),
        "rows": _winback_rows(evaluation),
        "tier_rows": _tier_rows(evaluation),
        "outcome_rows": [
            (str(dict(CampaignMember.Outcome.choices).get(o, o)), n)
            for o, n in sorted(evaluation.treatment.outcomes.items(), key=lambda i: -i[1])
        ],
        "runs": selectors.winback_runs_list(user=request.user, programme_id=programme_id),
        "page": entries,
        "may_change": request.user.has_perm(CHANGE_CAMPAIGNS),
        "error": error,
        "edit_open": posted,
        **_winback_form_context(
            request,
            request.POST if posted else _winback_form_values(programme),
            request.POST.getlist("channels") if posted else list(programme.channels),
            request.POST.getlist("high_value_grades")
            if posted
            else list(programme.high_value_grades),
        ),
    }
    return render(request, "marketing/winback_detail.html", context, status=status)
