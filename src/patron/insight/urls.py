"""The insight pages, included in ``patron.web.urls`` (namespace ``web``)."""

from __future__ import annotations

from django.urls import path

from patron.insight import report_views, views

urlpatterns = [
    path("insights/", views.dashboard, name="insights"),
    path("insights/metrics/<str:key>/", views.metric_detail, name="insights-metric"),
    path("insights/targets/", views.target_list, name="insights-targets"),
    path("insights/correlations/", views.correlations, name="insights-correlations"),
    path("insights/targets/<int:target_id>/", views.target_edit, name="insights-target"),
    path("insights/reports/", report_views.report_list, name="insights-reports"),
    path("insights/reports/<str:month>/", report_views.report_detail, name="insights-report"),
    path(
        "insights/reports/<str:month>/download.<str:fmt>",
        report_views.report_download,
        name="insights-report-download",
    ),
]
