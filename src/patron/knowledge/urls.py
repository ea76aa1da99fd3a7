"""Knowledge-base pages (staff, login required), included in ``patron.web.urls`` (namespace
``web``) under the service desk's ``/service/faq/``."""

from __future__ import annotations

from django.urls import path

from patron.knowledge import views

urlpatterns = [
    path("service/faq/", views.faq_list, name="faq-list"),
    path("service/faq/suggest/", views.faq_suggest, name="faq-suggest"),
    path("service/faq/new/", views.faq_new, name="faq-new"),
    path("service/faq/evaluation/", views.faq_evaluation, name="faq-evaluation"),
    path("service/faq/<int:article_id>/", views.faq_edit, name="faq-edit"),
]
