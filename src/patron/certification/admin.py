"""Certification levels in the admin: criteria, validity and the fallback kept at expiry, edited
by whoever may change levels (``certification.change_certificationlevel``). A save goes through
``patron.certification.services.level_update``, so the admin refuses what the levels page and
the API refuse (a fallback that loops, is not lower or is of another kind), with the message
next to the field, and the audit log keeps old and new values.

Trades (``BusinessCategory``: the permits a business selling in one must list) are added and
edited here by the same people, through ``services.category_save`` (validated, audited); they
are switched off, never deleted, once applications name them.

Levels are added here (``services.level_create``: the same checks, audited) but never deleted
(certifications refer to them; a level no longer offered is switched off). Applications, certifications and documents hold identity data and are read
on the certification pages, where every document read is audited — not in the admin.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from patron.account.roles import CHANGE_CERTIFICATION_LEVELS, VIEW_CERTIFICATION
from patron.certification import services
from patron.certification.models import BusinessCategory, CertificationLevel
from patron.errors import PatronError


class CertificationLevelForm(forms.ModelForm):
    class Meta:
        model = CertificationLevel
        fields = list(services.LEVEL_EDITABLE)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        fallback = self.fields.get("fallback")
        if fallback is not None and self.instance.pk is not None:
            # Offer the levels of the same kind; the service says why another one will not do.
            choices = CertificationLevel.objects.filter(
                applicant_kind=self.instance.applicant_kind
            ).exclude(pk=self.instance.pk)
            fallback.queryset = choices.order_by("rank")  # type: ignore[attr-defined]

    def new_level(self) -> dict[str, Any]:
        """Every editable field as ``level_create`` takes them (a fallback by code)."""
        changes = {name: self.cleaned_data.get(name) for name in services.LEVEL_EDITABLE}
        level = changes["fallback"]
        changes["fallback"] = level.code if level is not None else None
        return changes

    def changes(self) -> dict[str, Any]:
        """The fields the user changed, as ``level_update`` takes them (a fallback by code)."""
        changes = {name: self.cleaned_data[name] for name in self.changed_data}
        if "fallback" in changes:
            level = changes["fallback"]
            changes["fallback"] = level.code if level is not None else None
        return changes


@admin.register(CertificationLevel)
class CertificationLevelAdmin(admin.ModelAdmin):
    form = CertificationLevelForm
    list_display = (
        "code",
        "name",
        "name_en",
        "applicant_kind",
        "rank",
        "validity_days",
        "fallback",
        "is_active",
    )
    list_filter = ("applicant_kind", "is_active")
    fields = ("code", "applicant_kind", *services.LEVEL_EDITABLE, "updated_at")
    list_select_related = ("fallback",)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        # a level's code and kind are fixed once certifications may refer to it
        return ("code", "applicant_kind", "updated_at") if obj is not None else ("updated_at",)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return self.fields if obj is not None else self.fields[:-1]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(CHANGE_CERTIFICATION_LEVELS)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        form_class = super().get_form(request, obj, change=change, **kwargs)
        user = request.user

        class Checked(form_class):  # type: ignore[valid-type,misc]
            """Asks the service before saving, so that its refusal shows on the form."""

            def clean(self) -> Any:
                cleaned = super().clean()
                if self.errors:
                    return cleaned
                try:
                    if obj is None:
                        services.level_create_check(
                            user=user,
                            code=cleaned.get("code", ""),
                            applicant_kind=cleaned.get("applicant_kind", ""),
                            changes=self.new_level(),
                        )
                    else:
                        services.level_update_check(
                            user=user, code=obj.code, changes=self.changes()
                        )
                except PatronError as error:
                    self.add_error(_field_of(error.message), error.message)
                return cleaned

        return Checked

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        """Saved through the service (locks, checks, audit), never by the form."""
        if change:
            services.level_update(user=request.user, code=obj.code, changes=form.changes())
        else:
            created = services.level_create(
                user=request.user,
                code=form.cleaned_data["code"],
                applicant_kind=form.cleaned_data["applicant_kind"],
                changes=form.new_level(),
            )
            obj.pk = created.pk
        obj.refresh_from_db()

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        """Nothing related to save: ``save_model`` saved what changed."""


def _field_of(message: str) -> str | None:
    """The form field a service message names (``level trusted.fallback: …``), else None."""
    head = message.split(":", 1)[0]
    name = head.rsplit(".", 1)[-1] if "." in head else ""
    return name if name in (*services.LEVEL_EDITABLE, "code", "applicant_kind") else None


class BusinessCategoryForm(forms.ModelForm):
    class Meta:
        model = BusinessCategory
        fields = ("code", "name", "name_en", "required_permits", "is_active")

    def clean_required_permits(self) -> list[str]:
        try:
            return services.category_permits(
                self.cleaned_data.get("required_permits"),
                code=self.cleaned_data.get("code") or "new",
            )
        except PatronError as error:
            raise forms.ValidationError(error.message) from error


@admin.register(BusinessCategory)
class BusinessCategoryAdmin(admin.ModelAdmin):
    form = BusinessCategoryForm
    list_display = ("code", "name", "name_en", "required_permits", "is_active")
    list_filter = ("is_active",)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return ("code",) if obj is not None else ()  # applications refer to it by code

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm(VIEW_CERTIFICATION)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(CHANGE_CERTIFICATION_LEVELS)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm(CHANGE_CERTIFICATION_LEVELS)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(VIEW_CERTIFICATION)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        """Saved through the service (permission, validation, audit)."""
        services.category_save(user=request.user, category=obj)
