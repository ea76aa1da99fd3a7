"""Model pages: score runs and clusters, the back-test report, grade policies.

Each view parses the request, calls one selector (``patron.scoring.pages``) or one service
(``patron.scoring.policies``) and renders; charts are ECharts options built here from the
selector's data (``patron.web.charts``). Domain errors become error pages through
``patron_page``, except where the form or the report shows them next to the user's input.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from patron.account.roles import CHANGE_GRADE_POLICY
from patron.errors import ValidationFailed
from patron.intelligence import grading
from patron.scoring import pages
from patron.scoring.models import Grade
from patron.scoring.policies import grading_inputs, policy_apply, policy_preview, policy_save
from patron.web import charts
from patron.web.templatetags.patron_web import choice
from patron.web.views import patron_page

OPERATORS = (">=", ">", "<=", "<")
RULE_GRADES = ("core", "potential")
EMPTY_RULE_ROWS = 2
MAX_RULE_ROWS = 40


def _is_partial(request: HttpRequest) -> bool:
    htmx = getattr(request, "htmx", None)
    return htmx is not None and bool(htmx) and not htmx.boosted and not htmx.history_restore_request


def _grade_labels() -> list[str]:
    return [choice(Grade(g).label) for g in grading.GRADES]


def moves_chart(moves: dict[str, Any]) -> dict[str, Any]:
    """The 3×3 moves matrix: rows = grade now (or before), columns = grade after."""
    labels = _grade_labels()
    option = charts.heatmap(labels, labels, moves["matrix"])
    option["xAxis"]["name"] = _("after")
    option["yAxis"]["name"] = _("before")
    option["yAxis"]["inverse"] = True  # core on top, like the table it mirrors
    return option


# ---------------------------------------------------------------------- models page


@patron_page
def models_overview(request: HttpRequest) -> HttpResponse:
    overview = pages.models_overview(user=request.user)
    counts = [overview.grade_counts[g] for g in grading.GRADES]
    grade_chart = (
        charts.bars(_grade_labels(), [(_("Customers"), counts)], y_name=_("Customers"))
        if overview.scored_customers
        else None
    )
    context = {"overview": overview, "grade_chart": grade_chart}
    return render(request, "scoring/models.html", context)


# ---------------------------------------------------------------------- back-test report


def _date(text: str, name: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValidationFailed(f"{name}: expected a date as YYYY-MM-DD, got '{text}'") from None


def _whole_number(text: str, name: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValidationFailed(f"{name}: expected a whole number, got '{text}'") from None


def _percent(values: list[float | None]) -> list[float | None]:
    return [None if v is None else round(100 * v, 1) for v in values]


def report_charts(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The report's charts: tracking plot, churn calibration, grade stability."""
    result: dict[str, dict[str, Any]] = {}
    tracking = report["bgnbd"]["holdout"]["tracking"]
    result["tracking"] = charts.line(
        tracking["days"],
        [
            (_("Predicted"), [round(v, 1) for v in tracking["predicted_cumulative"]]),
            (_("Actual"), tracking["actual_cumulative"]),
        ],
        y_name=_("Repeat purchases"),
    )
    result["tracking"]["xAxis"]["name"] = _("days")
    bins = report["churn"]["calibration"]
    if bins:
        labels = [f"{100 * b['lower']:.0f}–{100 * b['upper']:.0f} %" for b in bins]
        result["calibration"] = charts.line(
            labels,
            [
                (_("Predicted churn %"), _percent([b["mean_predicted"] for b in bins])),
                (_("Observed churn %"), _percent([b["observed_rate"] for b in bins])),
            ],
            y_name="%",
            y_min=0,
            y_max=100,
        )
    stability = report.get("grade_stability") or {}
    if "matrix" in stability:
        result["stability"] = moves_chart(stability)
    counts = report.get("grade_counts") or {}
    if counts:
        result["grades"] = charts.bars(
            _grade_labels(), [(_("Customers"), [counts.get(g, 0) for g in grading.GRADES])]
        )
    return result


@patron_page
def models_report(request: HttpRequest) -> HttpResponse:
    is_partial = _is_partial(request)
    submitted = "as_of" in request.GET or "holdout_days" in request.GET
    context: dict[str, Any] = {"submitted": submitted}
    if not is_partial:
        defaults = pages.report_defaults(user=request.user)
        context["defaults"] = defaults
        context["as_of"] = request.GET.get("as_of", defaults.as_of.isoformat())
        context["holdout_days"] = request.GET.get("holdout_days", str(defaults.holdout_days))
    status = 200
    if submitted:
        try:
            report = pages.report_build(
                user=request.user,
                as_of=_date(request.GET.get("as_of", "").strip(), "as_of"),
                holdout_days=_whole_number(
                    request.GET.get("holdout_days", "").strip(), "holdout_days"
                ),
            )
        except ValidationFailed as error:
            context["error"] = error.message
            # htmx swaps only 2xx answers in: the partial carries the message with a 200.
            status = 200 if is_partial else 422
        else:
            context["report"] = report
            context["charts"] = report_charts(report)
    template = "scoring/report.html#results" if is_partial else "scoring/report.html"
    response = render(request, template, context, status=status)
    patch_vary_headers(response, ["HX-Request"])
    return response


# ---------------------------------------------------------------------- grade policies


@patron_page
def policy_list(request: HttpRequest) -> HttpResponse:
    policies = pages.policy_list(user=request.user)
    context = {"policies": policies, "may_change": request.user.has_perm(CHANGE_GRADE_POLICY)}
    return render(request, "scoring/policy_list.html", context)


@patron_page
def policy_detail(request: HttpRequest, version: int) -> HttpResponse:
    policy = pages.policy_detail(user=request.user, version=version)
    context = {"policy": policy, "may_change": request.user.has_perm(CHANGE_GRADE_POLICY)}
    return render(request, "scoring/policy_detail.html", context)


@dataclass
class InputRow:
    column: str
    label: str
    weight: str
    is_lower_better: bool
    is_invalid: bool = False


@dataclass
class RuleRow:
    index: int
    grade: str
    column: str
    op: str
    value: str
    is_invalid: bool = False


@dataclass
class PolicyForm:
    """What the edit form shows: the user's text as typed, so an error keeps their input."""

    inputs: list[InputRow]
    core_min: str
    potential_min: str
    hysteresis: str
    rules: list[RuleRow]
    note: str = ""
    rules_json: str = ""
    editor: str = "form"
    invalid: set[str] = field(default_factory=set)

    @classmethod
    def initial(cls, policy: pages.PolicyView) -> PolicyForm:
        form = cls(inputs=[], core_min="", potential_min="", hysteresis="", rules=[])
        rules = {k: v for k, v in policy.rules_json.items() if k != "version"}
        form.fill(grading.GradePolicy.from_dict(rules))
        form.rules_json = json.dumps(rules, indent=2)
        return form

    def fill(self, policy: grading.GradePolicy) -> None:
        """Show ``policy`` in the structured editor."""
        weights = {i.column: i for i in policy.inputs}
        self.inputs = [
            InputRow(
                column=column,
                label=pages.input_label(column),
                weight=f"{weights[column].weight:g}" if column in weights else "",
                is_lower_better=column in weights and not weights[column].is_higher_better,
            )
            for column in grading_inputs()
        ]
        self.core_min = f"{policy.core_min:g}"
        self.potential_min = f"{policy.potential_min:g}"
        self.hysteresis = f"{policy.hysteresis:g}"
        self.rules = self._padded(
            [
                RuleRow(index, r.grade, r.column, r.op, f"{r.value:g}")
                for index, r in enumerate(policy.rules)
            ]
        )

    @staticmethod
    def _padded(rules: list[RuleRow]) -> list[RuleRow]:
        start = len(rules)
        blanks = [RuleRow(start + i, "core", "", ">=", "") for i in range(EMPTY_RULE_ROWS)]
        return rules + blanks

    @classmethod
    def submitted(cls, data: QueryDict, base: pages.PolicyView) -> PolicyForm:
        """The posted editor as typed; the other editor shows ``base`` until the post parses."""
        form = cls.initial(base)
        form.note = data.get("note", "").strip()
        if data.get("editor") == "json":
            form.editor = "json"
            form.rules_json = data.get("rules_json", "")
            return form
        rules: list[RuleRow] = []
        for index in range(MAX_RULE_ROWS):
            if f"rule-{index}-column" not in data:
                continue
            row = RuleRow(
                index=len(rules),
                grade=data.get(f"rule-{index}-grade", "core"),
                column=data.get(f"rule-{index}-column", "").strip(),
                op=data.get(f"rule-{index}-op", ">="),
                value=data.get(f"rule-{index}-value", "").strip(),
            )
            if row.column or row.value:
                rules.append(row)
        form.inputs = [
            InputRow(
                column=column,
                label=pages.input_label(column),
                weight=data.get(f"weight-{column}", "").strip(),
                is_lower_better=data.get(f"lower-{column}") == "on",
            )
            for column in grading_inputs()
        ]
        form.core_min = data.get("core_min", "").strip()
        form.potential_min = data.get("potential_min", "").strip()
        form.hysteresis = data.get("hysteresis", "").strip()
        form.rules = cls._padded(rules)
        return form

    def sync(self, rules: dict[str, Any]) -> None:
        """Show the rules just parsed in the editor that was not used."""
        if self.editor == "form":
            self.rules_json = json.dumps(rules, indent=2)
            return
        try:
            self.fill(grading.GradePolicy.from_dict(rules))
        except (ValueError, TypeError, KeyError):
            return  # the policy's validation will name the field

    def rules_dict(self) -> dict[str, Any]:
        """The policy JSON the form describes; a value that is not a number is refused
        here, with the same field names the policy's own validation uses."""
        if self.editor == "json":
            try:
                parsed = json.loads(self.rules_json)
            except ValueError as error:
                raise ValidationFailed(f"grade policy: not valid JSON ({error})") from error
            if not isinstance(parsed, dict):
                raise ValidationFailed("grade policy: expected a JSON object")
            return parsed
        inputs = {
            row.column: _form_number(row.weight, f"inputs.{row.column}")
            for row in self.inputs
            if row.weight
        }
        requires: dict[str, list[dict[str, Any]]] = {grade: [] for grade in RULE_GRADES}
        for row in self.rules:
            if not (row.column or row.value):
                continue
            position = f"requires.{row.grade}[{len(requires.get(row.grade, []))}]"
            if row.grade not in requires:
                raise ValidationFailed(f"grade policy: requires.{row.grade}: unknown grade")
            if not row.column:
                raise ValidationFailed(f"grade policy: {position}.column: choose a score")
            requires[row.grade].append(
                {
                    "column": row.column,
                    "op": row.op,
                    "value": _form_number(row.value, f"{position}.value"),
                }
            )
        return {
            "inputs": inputs,
            "lower_is_better": [row.column for row in self.inputs if row.is_lower_better],
            "thresholds": {
                "core_min": _form_number(self.core_min, "thresholds.core_min"),
                "potential_min": _form_number(self.potential_min, "thresholds.potential_min"),
            },
            "requires": requires,
            "hysteresis": _form_number(self.hysteresis or "0", "hysteresis"),
        }

    def mark_invalid(self, message: str) -> None:
        """Highlight the input the error message names (``grade policy: <field>: …``)."""
        found = re.match(r"grade policy: ([\w.\[\]]+)", message)
        if not found:
            return
        name = found.group(1)
        self.invalid.add(name.split(".")[0])
        for row in self.inputs:
            row.is_invalid = name in (f"inputs.{row.column}", f"lower_is_better.{row.column}")
        rule = re.match(r"requires\.(\w+)\[(\d+)\]", name)
        if rule:
            grade, position = rule.group(1), int(rule.group(2))
            same_grade = [r for r in self.rules if r.grade == grade and (r.column or r.value)]
            if position < len(same_grade):
                same_grade[position].is_invalid = True
        for simple in ("core_min", "potential_min"):
            if name == f"thresholds.{simple}":
                self.invalid.add(simple)


def _form_number(text: str, name: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValidationFailed(f"grade policy: {name}: must be a number, got '{text}'") from None
    if not math.isfinite(value):
        raise ValidationFailed(f"grade policy: {name}: must be a finite number")
    return value


def _policy_form_context(form: PolicyForm, base: pages.PolicyView) -> dict[str, Any]:
    return {
        "form": form,
        "base": base,
        "columns": [(c, pages.input_label(c)) for c in grading_inputs()],
        "operators": OPERATORS,
        "rule_grades": [(g, choice(Grade(g).label)) for g in RULE_GRADES],
    }


@patron_page
@require_http_methods(["GET", "POST"])
def policy_edit(request: HttpRequest) -> HttpResponse:
    """A new version, starting from ``?from=<version>`` or the active policy. "Preview"
    shows who would move and saves nothing; "Save" stores a new, inactive version."""
    source = request.GET.get("from", "")
    base = pages.policy_for_editing(
        user=request.user, version=int(source) if source.isdigit() else None
    )
    if request.method == "GET":
        form = PolicyForm.initial(base)
        return render(request, "scoring/policy_edit.html", _policy_form_context(form, base))

    form = PolicyForm.submitted(request.POST, base)
    context = _policy_form_context(form, base)
    try:
        rules = form.rules_dict()
        form.sync(rules)
        if request.POST.get("action") == "save":
            saved = policy_save(user=request.user, rules=rules, note=form.note)
            messages.success(
                request,
                _("Grade policy v%(version)s saved. Preview who would move, then apply it.")
                % {"version": saved.version},
            )
            return redirect("web:grade-policy-detail", version=saved.version)
        moves = policy_preview(user=request.user, rules=rules)
    except ValidationFailed as error:
        form.mark_invalid(error.message)
        context["error"] = error.message
        return render(request, "scoring/policy_edit.html", context, status=422)
    context["moves"] = moves
    context["moves_chart"] = moves_chart(moves)
    return render(request, "scoring/policy_edit.html", context)


@patron_page
@require_http_methods(["GET", "POST"])
def policy_apply_page(request: HttpRequest, version: int) -> HttpResponse:
    """GET shows who would move (nothing changes); POST applies the version."""
    if request.method == "POST":
        moves = policy_apply(user=request.user, version=version)
        messages.success(
            request,
            _(
                "Grade policy v%(version)s is now active: %(up)s customers moved up, %(down)s "
                "down, %(unchanged)s kept their grade, %(new)s were graded for the first time."
            )
            % {"version": version, **{k: moves[k] for k in ("up", "down", "unchanged", "new")}},
        )
        return redirect("web:grade-policy-detail", version=version)
    preview = pages.policy_apply_preview(user=request.user, version=version)
    context = {
        "policy": preview.policy,
        "moves": preview.moves,
        "moves_chart": moves_chart(preview.moves),
    }
    return render(request, "scoring/policy_apply.html", context)
