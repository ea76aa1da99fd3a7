"""Complaint pages. ``urlpatterns`` (staff, login required) are included in ``patron.web.urls``
(namespace ``web``); ``public_urlpatterns`` (the customer's link, no login:
``tokens.answer_path`` builds ``/complaint/<token>/``) in ``patron.urls`` (namespace
``complaint``)."""

from __future__ import annotations

from django.urls import path

from patron.complaints import public_views, views

urlpatterns = [
    path("service/complaints/", views.complaint_list, name="complaints-list"),
    path("service/complaints/at-risk/", views.at_risk, name="complaints-at-risk"),
    path(
        "service/complaints/<int:complaint_id>/",
        views.complaint_detail,
        name="complaints-detail",
    ),
]

public_urlpatterns = [
    path("<str:token>/", public_views.answer_page, name="answer"),
]
