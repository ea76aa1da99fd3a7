"""Marketing pages (staff, login required), included in ``patron.web.urls`` (namespace
``web``)."""

from __future__ import annotations

from django.urls import path

from patron.marketing import views

urlpatterns = [
    path("marketing/segments/", views.segment_list, name="marketing-segments"),
    path(
        "marketing/segments/<int:segment_id>/",
        views.segment_detail,
        name="marketing-segment",
    ),
    path("marketing/coupons/", views.coupon_list, name="marketing-coupons"),
]
