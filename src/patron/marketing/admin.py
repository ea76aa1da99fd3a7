"""Marketing rows in the admin are read-only: every change goes through
``patron.marketing.services`` (versions, locks, stock, budget, audit). Win-back programmes are
data staff edit here too: the admin's form is checked by the same service (``winback_programme_
create``/``_update``: the same rules, the same 422/409 messages, audited), never saved directly.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import NON_FIELD_ERRORS
from django.http import HttpRequest

from patron.account.roles import CHANGE_CAMPAIGNS, VIEW_CAMPAIGNS
from patron.marketing.models import (
    Campaign,
    CampaignMember,
    Coupon,
    CouponTemplate,
    Segment,
    SegmentSnapshot,
    SegmentVersion,
    WinbackEnrolment,
    WinbackProgramme,
    WinbackRun,
)
from patron.web.adminkit import ReadOnlyAdmin


@admin.register(Segment)
class SegmentAdmin(ReadOnlyAdmin):
    list_display = ("id", "name", "version", "member_count", "evaluated_at", "updated_by")
    search_fields = ("name",)


@admin.register(SegmentVersion)
class SegmentVersionAdmin(ReadOnlyAdmin):
    list_display = ("id", "segment", "version", "name", "created_by", "created_at")


@admin.register(SegmentSnapshot)
class SegmentSnapshotAdmin(ReadOnlyAdmin):
    list_display = ("id", "segment", "version", "member_count", "taken_at")


@admin.register(CouponTemplate)
class CouponTemplateAdmin(ReadOnlyAdmin):
    list_display = ("id", "name", "kind", "value", "min_order_amount", "stock", "budget")
    list_filter = ("kind", "is_active")


@admin.register(Coupon)
class CouponAdmin(ReadOnlyAdmin):
    list_display = ("code", "template", "customer", "status", "issued_at", "discount_amount")
    list_filter = ("status",)
    search_fields = ("code", "order_reference")


@admin.register(Campaign)
class CampaignAdmin(ReadOnlyAdmin):
    list_display = ("id", "name", "status", "goal_metric", "segment", "period_start", "spent")
    list_filter = ("status", "goal_metric", "offer_kind")
    search_fields = ("name",)


@admin.register(CampaignMember)
class CampaignMemberAdmin(ReadOnlyAdmin):
    list_display = ("id", "campaign", "customer", "group", "outcome", "channel", "processed_at")
    list_filter = ("group", "outcome")
    raw_id_fields = ("customer", "message", "coupon", "points_entry")


_PROGRAMME_FIELDS = (
    "name", "description", "is_active", "churn_threshold", "holdout_share", "seed",
    "cool_down_days", "window_days", "offer_kind", "coupon_template", "points", "gift_text",
    "high_value_offer_kind", "high_value_coupon_template", "high_value_points",
    "high_value_gift_text", "high_value_min_clv", "high_value_grades", "channels",
    "message_title", "message_text", "category_fallback", "frequency_cap_messages",
    "frequency_cap_days",
)  # fmt: skip


def _programme_data(cleaned: dict[str, Any]) -> dict[str, Any]:
    """The form's cleaned values as the service's data (template objects as their ids)."""
    data = {k: v for k, v in cleaned.items() if k in _PROGRAMME_FIELDS}
    for name in ("coupon_template", "high_value_coupon_template"):
        template = data.pop(name, None)
        data[f"{name}_id"] = template.pk if template is not None else None
    return data


class WinbackProgrammeForm(forms.ModelForm):
    """Saved through the services: ``clean`` runs the service in a transaction that is rolled
    back (a dry run), so that its refusal shows on the form, naming the field."""

    class Meta:
        model = WinbackProgramme
        fields = _PROGRAMME_FIELDS

    def clean(self) -> dict[str, Any]:
        from django.db import transaction

        from patron.errors import PatronError
        from patron.marketing import services

        cleaned = super().clean() or {}
        if self.errors:
            return cleaned
        user = getattr(self, "acting_user", None)
        try:
            with transaction.atomic():
                if self.instance.pk is None:
                    services.winback_programme_create(user=user, data=_programme_data(cleaned))
                else:
                    services.winback_programme_update(
                        user=user, programme_id=self.instance.pk, changes=_programme_data(cleaned)
                    )
                transaction.set_rollback(True)
        except PatronError as refused:
            field = refused.message.split(":", 1)[0].removeprefix("winback.")
            field = field.removesuffix("_id")
            raise forms.ValidationError(
                {field if field in self.fields else NON_FIELD_ERRORS: refused.message}
            ) from None
        return cleaned


@admin.register(WinbackProgramme)
class WinbackProgrammeAdmin(admin.ModelAdmin):
    form = WinbackProgrammeForm
    list_display = ("id", "name", "is_active", "churn_threshold", "holdout_share", "offer_kind",
                    "last_run_at")  # fmt: skip
    list_filter = ("is_active", "offer_kind")
    search_fields = ("name",)
    list_per_page = 50

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        form.acting_user = request.user  # type: ignore[attr-defined]
        return form

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        from patron.marketing import services

        data = _programme_data(form.cleaned_data)
        if change:
            saved = services.winback_programme_update(
                user=request.user, programme_id=obj.pk, changes=data
            )
        else:
            saved = services.winback_programme_create(user=request.user, data=data)
        obj.pk = saved.pk
        obj.refresh_from_db()

    # The campaigns' permissions, as on the pages and the API (one rule for every surface).
    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.has_perm(VIEW_CAMPAIGNS))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm(CHANGE_CAMPAIGNS))

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.has_perm(CHANGE_CAMPAIGNS))

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # entries and runs hang on it: pause it instead


@admin.register(WinbackRun)
class WinbackRunAdmin(ReadOnlyAdmin):
    list_display = ("id", "programme", "as_of", "is_placebo", "at_risk", "entered", "treatment",
                    "holdout", "messaged")  # fmt: skip
    list_filter = ("is_placebo",)


@admin.register(WinbackEnrolment)
class WinbackEnrolmentAdmin(ReadOnlyAdmin):
    list_display = ("id", "programme", "customer", "cycle", "enrolled_at", "group", "offer_tier",
                    "outcome")  # fmt: skip
    list_filter = ("group", "offer_tier", "outcome")
    raw_id_fields = ("customer", "message", "coupon", "points_entry")
