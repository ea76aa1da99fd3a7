"""Service desk pages (staff, login required), included in ``patron.web.urls`` (namespace
``web``)."""

from __future__ import annotations

from django.urls import path

from patron.service import views

urlpatterns = [
    path("service/", views.queue, name="service-queue"),
    path("service/tickets/<int:ticket_id>/", views.ticket_page, name="service-ticket"),
    path("service/tickets/<int:ticket_id>/step/", views.ticket_step, name="service-ticket-step"),
]
