"""Satisfaction pages. ``urlpatterns`` (staff, login required) are included in
``patron.web.urls`` (namespace ``web``); ``public_urlpatterns`` (the customers' pages, no
login: ``/csat/<token>/``, ``/survey/<token>/``, ``/suggest/``) in ``patron.urls`` (namespace
``feedback``)."""

from __future__ import annotations

from django.urls import path

from patron.satisfaction import public_views, views

urlpatterns = [
    path("service/csat/", views.csat_list, name="satisfaction-csat"),
    path("service/surveys/", views.survey_list, name="satisfaction-surveys"),
    path("service/surveys/new/", views.survey_edit, name="satisfaction-survey-new"),
    path("service/surveys/<int:survey_id>/", views.survey_edit, name="satisfaction-survey"),
    path(
        "service/surveys/<int:survey_id>/results/",
        views.survey_results,
        name="satisfaction-survey-results",
    ),
    path("service/suggestions/", views.suggestion_list, name="satisfaction-suggestions"),
    path("service/plans/", views.plan_list, name="satisfaction-plans"),
    path("service/plans/<int:plan_id>/", views.plan_detail, name="satisfaction-plan"),
    path("service/kpis/", views.kpi_dashboard, name="satisfaction-kpis"),
]

public_urlpatterns = [
    path("csat/<str:token>/", public_views.csat_page, name="csat"),
    path("survey/<str:token>/", public_views.survey_page, name="survey"),
    path("suggest/", public_views.suggest_page, name="suggest"),
]
