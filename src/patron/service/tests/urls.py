"""The site's URLs with the channels' router and the customer's pages mounted, for the tests
of this app until ``patron.api`` and ``patron.urls`` mount them. Until then the router is
served by a copy of the site's API (same authentication, same error handlers)."""

from __future__ import annotations

from django.urls import include, path
from ninja import NinjaAPI

from patron.api import api
from patron.service.channels_api import router
from patron.urls import urlpatterns as site

urlpatterns: list = []
if not any(mounted is router for _, mounted in api._routers):
    test_api = NinjaAPI(auth=api.auth, urls_namespace="service_channels_test")
    test_api._exception_handlers.update(api._exception_handlers)
    test_api.add_router("/service", router)
    urlpatterns.append(path("api/", test_api.urls))
if not any(getattr(p, "namespace", None) == "help" for p in site):
    urlpatterns.append(path("", include("patron.service.public_urls")))
urlpatterns += site
