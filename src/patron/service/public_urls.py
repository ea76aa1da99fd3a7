"""The customer's pages of the service desk, no login (``public_views``), included at the
site's root by ``patron.urls`` with the namespace ``help``:
``path("", include("patron.service.public_urls"))``. ``links.ticket_path`` builds
``/help/t/<token>/``."""

from __future__ import annotations

from django.urls import path

from patron.service import public_views

app_name = "help"

urlpatterns = [
    path("help/", public_views.help_form, name="form"),
    path("help/thanks/", public_views.help_thanks, name="thanks"),
    path("help/t/<str:token>/", public_views.ticket_page, name="ticket"),
]
