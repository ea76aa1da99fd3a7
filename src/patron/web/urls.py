from django.contrib.auth import views as auth_views
from django.urls import path

from patron.aftersales.urls import urlpatterns as aftersales_urls
from patron.care.urls import urlpatterns as care_urls
from patron.certification.urls import urlpatterns as certification_urls
from patron.complaints.urls import urlpatterns as complaints_urls
from patron.insight.urls import urlpatterns as insight_urls
from patron.knowledge.urls import urlpatterns as knowledge_urls
from patron.marketing.urls import urlpatterns as marketing_urls
from patron.risk import views as risk_views
from patron.satisfaction.urls import urlpatterns as satisfaction_urls
from patron.scoring import views as scoring_views
from patron.service.urls import urlpatterns as service_urls
from patron.web import views

app_name = "web"
urlpatterns = [
    path("", views.home, name="home"),
    path(
        "login/",
        auth_views.LoginView.as_view(
            template_name="web/login.html", redirect_authenticated_user=True
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(next_page="web:login"), name="logout"),
    path("customers/", views.customer_list, name="customer-list"),
    path("customers/<int:customer_id>/", views.customer_detail, name="customer-detail"),
    path("customers/<int:customer_id>/orders/", views.customer_orders, name="customer-orders"),
    path("imports/", views.import_list, name="import-list"),
    path("audit/", views.audit_list, name="audit-list"),
    path("models/", scoring_views.models_overview, name="models"),
    path("models/report/", scoring_views.models_report, name="models-report"),
    path("models/grade-policy/", scoring_views.policy_list, name="grade-policy-list"),
    path("models/grade-policy/new/", scoring_views.policy_edit, name="grade-policy-new"),
    path(
        "models/grade-policy/<int:version>/",
        scoring_views.policy_detail,
        name="grade-policy-detail",
    ),
    path(
        "models/grade-policy/<int:version>/apply/",
        scoring_views.policy_apply_page,
        name="grade-policy-apply",
    ),
    path("risk/", risk_views.alert_list, name="risk-alerts"),
    path("risk/alerts/<int:alert_id>/", risk_views.alert_detail, name="risk-alert"),
    path("risk/blacklist/", risk_views.blacklist, name="risk-blacklist"),
    path("risk/appeals/", risk_views.appeal_list, name="risk-appeals"),
    path("risk/appeals/<int:appeal_id>/", risk_views.appeal_detail, name="risk-appeal"),
    path("risk/rules/", risk_views.rule_list, name="risk-rules"),
    path(
        "risk/customers/<int:customer_id>/appeals/",
        risk_views.appeal_file,
        name="risk-appeal-file",
    ),
    path(
        "risk/restrictions/<int:restriction_id>/lift/",
        risk_views.restriction_lift,
        name="risk-restriction-lift",
    ),
    *insight_urls,
    *certification_urls,
    *marketing_urls,
    *care_urls,
    *satisfaction_urls,
    *aftersales_urls,
    *service_urls,
    *knowledge_urls,
    *complaints_urls,
]
