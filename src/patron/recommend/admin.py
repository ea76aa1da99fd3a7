"""Suggestions in the admin are read-only: they are recomputed by
``patron.recommend.services.recommendations_refresh`` (CLI ``patron recommend refresh``, or the
job), which replaces them all."""

from __future__ import annotations

from django.contrib import admin

from patron.recommend.models import Recommendation, RecommendationRun
from patron.web.adminkit import ReadOnlyAdmin


@admin.register(RecommendationRun)
class RecommendationRunAdmin(ReadOnlyAdmin):
    list_display = ("id", "as_of", "computed_at", "customers", "suggestions", "items", "seconds")


@admin.register(Recommendation)
class RecommendationAdmin(ReadOnlyAdmin):
    list_display = ("id", "customer", "rank", "product_name", "product_ref", "basis", "score")
    list_filter = ("basis",)
    search_fields = ("customer__external_id", "product_name", "product_ref")
    list_select_related = ("customer",)
    raw_id_fields = ("customer", "product", "run")
