"""After-sales pages. ``urlpatterns`` (staff, login required) are included in
``patron.web.urls`` (namespace ``web``); ``public_urlpatterns`` (the customer's link, no login:
``tokens.customer_path`` builds ``/aftersales/<token>/``) in ``patron.urls`` (namespace
``aftersales``)."""

from __future__ import annotations

from django.urls import path

from patron.aftersales import public_views, views

urlpatterns = [
    path("service/returns/", views.queue, name="aftersales-returns"),
    path("service/returns/new/", views.request_new, name="aftersales-return-new"),
    path("service/returns/policy/", views.policy_list, name="aftersales-policies"),
    path(
        "service/returns/<int:request_id>/",
        views.request_detail,
        name="aftersales-return",
    ),
    path("service/logistics/", views.logistics, name="aftersales-logistics"),
]

public_urlpatterns = [
    path("<str:token>/", public_views.customer_page, name="page"),
]
