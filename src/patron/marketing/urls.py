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
    path("marketing/campaigns/", views.campaign_list, name="marketing-campaigns"),
    path(
        "marketing/campaigns/<int:campaign_id>/",
        views.campaign_detail,
        name="marketing-campaign",
    ),
    path("marketing/winback/", views.winback_list, name="marketing-winback"),
    path(
        "marketing/winback/<int:programme_id>/",
        views.winback_detail,
        name="marketing-winback-programme",
    ),
]
