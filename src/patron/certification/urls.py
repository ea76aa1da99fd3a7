"""Certification pages. ``urlpatterns`` (staff, login required) are included in
``patron.web.urls`` (namespace ``web``); ``public_urlpatterns`` (the applicant's link, no login:
``tokens.applicant_path`` builds ``/apply/<token>/``) in ``patron.urls`` (namespace ``apply``)."""

from __future__ import annotations

from django.urls import path

from patron.certification import public_views, views

urlpatterns = [
    path("certification/", views.queue, name="certification-queue"),
    path(
        "certification/applications/<int:application_id>/",
        views.application_detail,
        name="certification-application",
    ),
    path(
        "certification/documents/<int:document_id>/",
        views.document,
        name="certification-document",
    ),
    path("certification/apply/", views.apply, name="certification-apply"),
    path("certification/changes/", views.change_list, name="certification-changes"),
    path("certification/changes/new/", views.change_new, name="certification-change-new"),
    path("certification/levels/", views.level_list, name="certification-levels"),
]

public_urlpatterns = [
    path("<str:token>/", public_views.applicant_page, name="page"),
    path(
        "<str:token>/documents/<int:document_id>/",
        public_views.applicant_document,
        name="document",
    ),
]
