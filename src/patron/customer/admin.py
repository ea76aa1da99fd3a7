from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest

from patron.customer.models import Address, Consent, Customer, CustomerTag, Tag
from patron.privacy import crypto
from patron.web.adminkit import PatronModelAdmin, masked_column


@admin.register(Customer)
class CustomerAdmin(PatronModelAdmin):
    pii_fields = {"phone": "phone", "email": "email", "id_number": "id_number"}
    list_display = (
        "name",
        "source",
        "external_id",
        "kind",
        masked_column("phone", "phone", "phone"),
        masked_column("email", "email", "e-mail"),
        "province",
        "city",
        "source_channel",
        "status",
        "registered_at",
    )
    list_filter = ("kind", "status", "source_channel", "source", "province")
    search_fields = ("name", "external_id", "company_name")
    search_help_text = "Name or company (contains), external id, or an exact phone number or e-mail"
    readonly_fields = ("row_hash", "created_at", "updated_at")
    date_hierarchy = "registered_at"

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        """Also find customers by exact phone or e-mail, through their keyed lookup hashes."""
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        if term:
            by_hash = queryset.filter(
                Q(phone_hash=crypto.lookup_hash(term, kind="phone"))
                | Q(email_hash=crypto.lookup_hash(term, kind="email"))
            )
            results = results | by_hash
        return results, may_have_duplicates


@admin.register(Address)
class AddressAdmin(PatronModelAdmin):
    pii_fields = {"detail": "address"}
    list_display = (
        "customer",
        "label",
        "province",
        "city",
        "district",
        masked_column("detail", "address", "detail"),
        "is_default",
    )
    list_filter = ("province", "is_default")
    search_fields = ("customer__name", "customer__external_id", "city", "district")
    raw_id_fields = ("customer",)
    list_select_related = ("customer",)

    def refresh_lookup_hashes(self, obj: Any, changed: Iterable[str]) -> None:
        # Same rule as the importer: the hash covers the whole address, region included.
        if set(changed) & {"detail", "province", "city", "district"}:
            full = f"{obj.province}{obj.city}{obj.district}{obj.detail}"
            obj.detail_hash = crypto.lookup_hash(full, kind="address") if obj.detail else ""


@admin.register(Tag)
class TagAdmin(PatronModelAdmin):
    list_display = ("name", "description")
    search_fields = ("name", "description")


@admin.register(CustomerTag)
class CustomerTagAdmin(PatronModelAdmin):
    list_display = ("customer", "tag", "added_at", "added_by")
    list_filter = ("tag",)
    search_fields = ("customer__name", "customer__external_id", "tag__name")
    raw_id_fields = ("customer",)
    list_select_related = ("customer", "tag")


@admin.register(Consent)
class ConsentAdmin(PatronModelAdmin):
    """Consent rows are evidence: a new row supersedes the old one, rows are never edited."""

    list_display = ("customer", "purpose", "channel", "is_granted", "recorded_at", "evidence")
    list_filter = ("purpose", "channel", "is_granted")
    search_fields = ("customer__name", "customer__external_id")
    raw_id_fields = ("customer",)
    list_select_related = ("customer",)
    date_hierarchy = "recorded_at"

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
