"""What every Patron model admin shares: audited changes and masked personal data.

The Django admin is the back-office surface for data fixes, so it follows the same rules as the
other surfaces: every create, change and delete is appended to the audit log (personal data
masked), encrypted fields are masked in change lists, and they are editable in the change form
only for users holding ``account.view_pii`` (others see them masked and read-only). The
``*_hash`` lookup columns are never edited by hand: they are recomputed when the value changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest

from patron.account.services import may_see_pii
from patron.audit.services import AuditEntry, audit_record, audit_record_many
from patron.privacy import crypto
from patron.privacy.fields import EncryptedTextField


def masked_column(field: str, kind: str, label: str) -> Callable[[Any], str]:
    """A list/readonly column showing ``field`` masked (``138****1234``)."""

    @admin.display(description=label)
    def column(obj: Any) -> str:
        return crypto.mask(getattr(obj, field), kind=kind) or "—"

    column.__name__ = f"masked_{field}"
    return column


def _plain(value: Any) -> Any:
    if isinstance(value, models.Model):
        return value.pk
    if isinstance(value, datetime | date | Decimal):
        return str(value)
    if isinstance(value, str | int | bool | float) or value is None:
        return value
    return str(value)


class PatronModelAdmin(admin.ModelAdmin):
    """Base admin: audited saves and deletes; ``pii_fields`` maps encrypted fields to mask kinds."""

    pii_fields: dict[str, str] = {}
    list_per_page = 50
    show_full_result_count = False
    formfield_overrides = {EncryptedTextField: {"widget": forms.TextInput(attrs={"size": 40})}}

    # --- personal data ------------------------------------------------------------------------

    def __init__(self, model: type[models.Model], admin_site: admin.AdminSite) -> None:
        super().__init__(model, admin_site)
        # Built once: the admin compares readonly fields by identity between calls.
        self._masked_columns: list[Any] = [
            masked_column(
                name, kind, str(getattr(model._meta.get_field(name), "verbose_name", name))
            )
            for name, kind in self.pii_fields.items()
        ]

    def get_exclude(self, request: HttpRequest, obj: Any = None) -> Any:
        exclude = list(super().get_exclude(request, obj) or [])
        exclude += [f"{name}_hash" for name in self.pii_fields]
        if not may_see_pii(request.user):
            exclude += list(self.pii_fields)
        return exclude

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        readonly = list(super().get_readonly_fields(request, obj))
        if self.pii_fields and not may_see_pii(request.user):
            readonly += self._masked_columns
        return readonly

    def refresh_lookup_hashes(self, obj: Any, changed: Iterable[str]) -> None:
        """Recompute ``<field>_hash`` for the encrypted fields that changed."""
        for name in changed:
            kind = self.pii_fields.get(name)
            if kind is not None:
                value = getattr(obj, name)
                setattr(obj, f"{name}_hash", crypto.lookup_hash(value, kind=kind) if value else "")

    # --- audit --------------------------------------------------------------------------------

    def audit_customer_id(self, obj: Any) -> int | None:
        if obj._meta.label == "customer.Customer":
            return int(obj.pk)
        if getattr(obj, "customer_id", None) is not None:
            return int(obj.customer_id)
        order = getattr(obj, "order", None)
        return int(order.customer_id) if order is not None else None

    def _audit_value(self, name: str, value: Any) -> Any:
        kind = self.pii_fields.get(name)
        if kind is not None:
            return crypto.mask(value, kind=kind)
        return _plain(value)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        changed = list(form.changed_data)
        self.refresh_lookup_hashes(obj, changed)
        diff = {
            name: [
                self._audit_value(name, form.initial.get(name)),
                self._audit_value(name, getattr(obj, name, None)),
            ]
            for name in changed
            if not name.endswith("_hash")
        }
        super().save_model(request, obj, form, change)
        audit_record(
            AuditEntry(
                action="update" if change else "create",
                entity_type=obj._meta.label,
                entity_id=str(obj.pk),
                customer_id=self.audit_customer_id(obj),
                summary=f"{'changed' if change else 'created'} in the admin",
                changes=diff,
            ),
            actor=request.user,
        )

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        entry = AuditEntry(
            action="delete",
            entity_type=obj._meta.label,
            entity_id=str(obj.pk),
            customer_id=self.audit_customer_id(obj),
            summary="deleted in the admin",
        )
        super().delete_model(request, obj)
        audit_record(entry, actor=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        entries = [
            AuditEntry(
                action="delete",
                entity_type=obj._meta.label,
                entity_id=str(obj.pk),
                customer_id=self.audit_customer_id(obj),
                summary="deleted in the admin",
            )
            for obj in queryset
        ]
        super().delete_queryset(request, queryset)
        audit_record_many(entries, actor=request.user)


class ReadOnlyAdmin(admin.ModelAdmin):
    """History that is written by the system only: viewable, never added, changed or deleted."""

    list_per_page = 50
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
