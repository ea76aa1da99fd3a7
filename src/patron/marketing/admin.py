"""Marketing rows in the admin are read-only: every change goes through
``patron.marketing.services`` (versions, locks, stock, budget, audit)."""

from __future__ import annotations

from django.contrib import admin

from patron.marketing.models import (
    Coupon,
    CouponTemplate,
    Segment,
    SegmentSnapshot,
    SegmentVersion,
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
