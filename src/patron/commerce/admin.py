from __future__ import annotations

from django.contrib import admin

from patron.commerce.models import (
    Category,
    Order,
    OrderLine,
    Payment,
    Product,
    ReturnRequest,
    Review,
    Shipment,
)
from patron.web.adminkit import PatronModelAdmin


@admin.register(Category)
class CategoryAdmin(PatronModelAdmin):
    list_display = (
        "name",
        "name_en",
        "parent",
        "is_no_reason_return_exempt",
        "source",
        "external_id",
    )
    list_filter = ("is_no_reason_return_exempt", "source")
    search_fields = ("name", "name_en", "external_id")
    raw_id_fields = ("parent",)


@admin.register(Product)
class ProductAdmin(PatronModelAdmin):
    list_display = ("name", "category", "price", "currency", "source", "external_id")
    list_filter = ("source", "currency")
    search_fields = ("name", "external_id")
    raw_id_fields = ("category",)
    list_select_related = ("category",)


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    extra = 0
    fields = ("line_no", "product", "product_name", "quantity", "unit_price", "amount", "currency")
    raw_id_fields = ("product",)


class PaymentInline(admin.TabularInline):
    model = Payment
    extra = 0
    fields = ("external_id", "method", "status", "amount", "currency", "installments", "paid_at")


@admin.register(Order)
class OrderAdmin(PatronModelAdmin):
    list_display = (
        "external_id",
        "customer",
        "status",
        "channel",
        "store",
        "placed_at",
        "total_amount",
        "currency",
    )
    list_filter = ("status", "channel", "store", "source")
    search_fields = ("external_id", "customer__name", "customer__external_id", "coupon_code")
    raw_id_fields = ("customer",)
    list_select_related = ("customer",)
    date_hierarchy = "placed_at"
    inlines = (OrderLineInline, PaymentInline)


@admin.register(OrderLine)
class OrderLineAdmin(PatronModelAdmin):
    list_display = (
        "order",
        "line_no",
        "product_name",
        "quantity",
        "unit_price",
        "amount",
        "currency",
    )
    search_fields = ("order__external_id", "product_name", "external_id")
    raw_id_fields = ("order", "product")
    list_select_related = ("order",)


@admin.register(Payment)
class PaymentAdmin(PatronModelAdmin):
    list_display = (
        "external_id",
        "order",
        "method",
        "status",
        "amount",
        "currency",
        "installments",
        "paid_at",
    )
    list_filter = ("method", "status", "currency")
    search_fields = ("external_id", "order__external_id")
    raw_id_fields = ("order",)
    list_select_related = ("order",)
    date_hierarchy = "paid_at"


@admin.register(ReturnRequest)
class ReturnRequestAdmin(PatronModelAdmin):
    list_display = (
        "external_id",
        "order",
        "kind",
        "status",
        "reason",
        "requested_at",
        "refund_amount",
        "currency",
    )
    list_filter = ("kind", "status")
    search_fields = ("external_id", "order__external_id", "reason")
    raw_id_fields = ("order", "order_line")
    list_select_related = ("order",)
    date_hierarchy = "requested_at"


@admin.register(Review)
class ReviewAdmin(PatronModelAdmin):
    list_display = (
        "external_id",
        "customer",
        "order",
        "rating",
        "title",
        "created_at",
        "answered_at",
    )
    list_filter = ("rating",)
    search_fields = ("external_id", "title", "text", "customer__name", "customer__external_id")
    raw_id_fields = ("customer", "order", "product")
    list_select_related = ("customer", "order")
    date_hierarchy = "created_at"


@admin.register(Shipment)
class ShipmentAdmin(PatronModelAdmin):
    list_display = (
        "external_id",
        "order",
        "carrier",
        "tracking_number",
        "status",
        "shipped_at",
        "estimated_delivery_at",
        "delivered_at",
        "delay",
    )
    list_filter = ("status", "carrier")
    search_fields = ("external_id", "tracking_number", "order__external_id")
    raw_id_fields = ("order",)
    list_select_related = ("order",)

    @admin.display(description="delay (days)")
    def delay(self, obj: Shipment) -> int | None:
        return obj.delay_days
