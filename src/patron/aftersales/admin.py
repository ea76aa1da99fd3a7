"""Back-office views of after-sales data. Requests change only through the services (their
states, refunds and audit trail), so they are read-only here; the policy is edited on its page
or through the API (audited)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from patron.aftersales.models import (
    AfterSalesPolicy,
    AfterSalesRequest,
    LogisticsException,
    ShipmentEvent,
)


class _ReadOnly(admin.ModelAdmin[Any]):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AfterSalesRequest)
class AfterSalesRequestAdmin(_ReadOnly):
    list_display = ("id", "kind", "status", "customer", "order", "requested_at", "is_within_policy")
    list_filter = ("kind", "status", "is_within_policy")
    raw_id_fields = ("customer", "order")


@admin.register(AfterSalesPolicy)
class AfterSalesPolicyAdmin(_ReadOnly):
    list_display = ("kind", "category_code", "days_after_delivery", "requires_reason", "is_active")


@admin.register(ShipmentEvent)
class ShipmentEventAdmin(_ReadOnly):
    list_display = ("shipment", "at", "status", "location", "source")
    raw_id_fields = ("shipment",)


@admin.register(LogisticsException)
class LogisticsExceptionAdmin(_ReadOnly):
    list_display = ("shipment", "kind", "status", "detected_at", "ticket")
    list_filter = ("kind", "status")
    raw_id_fields = ("shipment", "order", "customer", "ticket")
