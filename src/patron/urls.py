from django.contrib import admin
from django.urls import include, path

from patron.api import api
from patron.certification.urls import public_urlpatterns as certification_public_urls

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("patron.outbox.urls")),  # public: the unsubscribe link
    # public: the applicant's link (tokens.applicant_path)
    path("apply/", include((certification_public_urls, "apply"))),
    path("", include("patron.web.urls")),
]
