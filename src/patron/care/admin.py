"""The care policy in the admin: one row per grade, edited by whoever may change campaigns
(``marketing.change_campaign``), through ``patron.care.services.care_measures_save`` — the same
validation (the refusal shown on the field it names), version and audit record as the API.
Rows are neither added nor deleted here: there is one per grade. What the automation did
(``CareTouch``) is history: read-only."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from patron.account.roles import CHANGE_CAMPAIGNS, VIEW_CAMPAIGNS
from patron.care import rules, services
from patron.care.models import CareTouch, GradeMeasure
from patron.errors import PatronError
from patron.web.adminkit import ReadOnlyAdmin

HOLIDAY_CHOICES = [
    (code, f"{holiday.name_zh} {holiday.name_en}") for code, holiday in rules.HOLIDAYS.items()
]


class GradeMeasureForm(forms.ModelForm):
    holidays = forms.MultipleChoiceField(
        choices=HOLIDAY_CHOICES, required=False, widget=forms.CheckboxSelectMultiple
    )
    note = forms.CharField(max_length=services.MAX_NOTE, required=False, help_text="Why")

    #: Set by ``GradeMeasureAdmin.get_form``: who is saving (coupons need their right).
    user: Any = None

    class Meta:
        model = GradeMeasure
        fields = [
            "exclusive_discount_percent",
            "has_priority_handling",
            "has_dedicated_line",
            "visit_interval_days",
            "sends_birthday_greeting",
            "birthday_coupon_template",
            "holidays",
            "holiday_days_ahead",
            "holiday_coupon_template",
            "note",
        ]

    def measures_data(self) -> dict[str, Any]:
        data = dict(self.cleaned_data)
        data.pop("note", None)
        for name in ("birthday_coupon_template", "holiday_coupon_template"):
            template = data.pop(name, None)
            data[f"{name}_id"] = template.pk if template is not None else None
        data["holidays"] = list(data.get("holidays") or [])
        return data

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.errors:
            return cleaned
        try:
            new = services.measures_validate(
                grade=self.instance.grade,
                data=self.measures_data(),
                base=self.instance.measures() if self.instance.pk else None,
            )
            if new.coupon_template_ids() and self.user is not None:
                from patron.account.roles import CHANGE_COUPONS

                if not self.user.has_perm(CHANGE_COUPONS):
                    raise forms.ValidationError(
                        "coupons are issued as the person who saves the row: you may not "
                        "issue coupons, so clear the coupon templates or ask a marketer"
                    )
        except PatronError as error:
            field = (error.details or {}).get("field", "")
            field = field.removesuffix("_id")
            if field in self.fields:
                self.add_error(field, error.message)
            else:
                raise forms.ValidationError(error.message) from error
        return cleaned


@admin.register(GradeMeasure)
class GradeMeasureAdmin(admin.ModelAdmin):
    form = GradeMeasureForm
    list_display = (
        "grade",
        "exclusive_discount_percent",
        "has_priority_handling",
        "has_dedicated_line",
        "visit_interval_days",
        "sends_birthday_greeting",
        "birthday_coupon_template",
        "holidays",
        "holiday_days_ahead",
        "holiday_coupon_template",
        "version",
        "updated_by",
        "updated_at",
    )
    list_select_related = ("birthday_coupon_template", "holiday_coupon_template", "updated_by")
    readonly_fields = ("grade", "visits_from", "version", "updated_by", "updated_at")
    raw_id_fields = ("birthday_coupon_template", "holiday_coupon_template")

    def get_queryset(self, request: HttpRequest) -> Any:
        services.care_policy_seed()
        return super().get_queryset(request)

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        return type("GradeMeasureUserForm", (form,), {"user": request.user})

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        saved = services.care_measures_save(
            user=request.user,
            grade=obj.grade,
            data=form.measures_data(),
            note=form.cleaned_data.get("note", ""),
        )
        obj.pk, obj.version, obj.updated_at = saved.pk, saved.version, saved.updated_at

    def has_module_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_active and request.user.has_perm(VIEW_CAMPAIGNS))

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_active and request.user.has_perm(VIEW_CAMPAIGNS))

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_active and request.user.has_perm(CHANGE_CAMPAIGNS))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(CareTouch)
class CareTouchAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "run_on",
        "kind",
        "occasion",
        "customer",
        "grade",
        "outcome",
        "offer",
        "message",
        "coupon",
        "ticket",
    )
    list_filter = ("kind", "outcome", "offer", "grade")
    search_fields = ("customer__name", "customer__external_id", "occasion")
    list_select_related = ("customer", "coupon")
    raw_id_fields = ("customer", "message", "coupon", "ticket")
    date_hierarchy = "run_on"

    def has_module_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_active and request.user.has_perm(VIEW_CAMPAIGNS))

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_active and request.user.has_perm(VIEW_CAMPAIGNS))
