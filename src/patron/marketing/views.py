"""Marketing pages for staff: segments (list with sizes, a rule builder with a live preview,
saving), one segment (its rule in plain words, members page by page) and coupons (templates
with stock and budget used, creating a template, issuing codes, recent codes).

Each view parses the form, calls a selector or a service and renders. A refusal is shown next
to the form that asked, with its status (422 invalid, 409 conflict); a missing permission is
the plain 403 page through ``patron_page``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from patron.account.roles import CHANGE_COUPONS, CHANGE_SEGMENTS, VIEW_COUPONS
from patron.account.services import require_permission
from patron.errors import Conflict, NotFound, PatronError, ValidationFailed
from patron.marketing import rules, selectors, services
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


def _when(text: str, name: str) -> datetime | None:
    if not text.strip():
        return None
    moment = parse_datetime(text.strip()) or parse_datetime(f"{text.strip()}T00:00")
    if moment is None:
        raise ValidationFailed(f"coupon_template.{name}: expected a date and time")
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment)


def _whole(text: str, name: str) -> int | None:
    if not text.strip():
        return None
    try:
        return int(text.strip())
    except ValueError:
        raise ValidationFailed(f"coupon_template.{name}: expected a whole number") from None


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
