from django.contrib import admin
from django.urls import include, path

from patron.aftersales.urls import public_urlpatterns as aftersales_public_urls
from patron.api import api
from patron.certification.urls import public_urlpatterns as certification_public_urls
from patron.complaints.urls import public_urlpatterns as complaints_public_urls
from patron.satisfaction.urls import public_urlpatterns as satisfaction_public_urls

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("patron.outbox.urls")),  # public: the unsubscribe link
    # public: the applicant's link (tokens.applicant_path)
    path("apply/", include((certification_public_urls, "apply"))),
    # public: the customer's answer to a proposed resolution (tokens.answer_path)
    path("complaint/", include((complaints_public_urls, "complaint"))),
    # public: the customer's after-sales page (tokens.customer_path)
    path("aftersales/", include((aftersales_public_urls, "aftersales"))),
    # public: CSAT and survey links (tokens.csat_path, survey_path), the suggestion box
    path("", include((satisfaction_public_urls, "feedback"))),
    # public: the help form and the customer's ticket link (links.ticket_path)
    path("", include("patron.service.public_urls")),
    path("", include("patron.web.urls")),
]
