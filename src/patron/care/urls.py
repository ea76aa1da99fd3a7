"""The care page (staff, login required), included in ``patron.web.urls`` (namespace ``web``),
under Marketing where marketers look for it."""

from __future__ import annotations

from django.urls import path

from patron.care import views

urlpatterns = [
    path("marketing/care/", views.care_overview, name="marketing-care"),
]
