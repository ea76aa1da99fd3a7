"""The REST API under /api/ (OpenAPI spec at /api/openapi.json). Each app adds its router here.

Authentication: ``Authorization: Bearer <token>`` (per-user tokens from
``patron createuser NAME --role ROLE --token``) or the web session (CSRF-checked).
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import HttpError, ValidationError
from ninja.openapi.schema import OpenAPISchema
from ninja.security import HttpBearer, SessionAuth

from patron.account.services import token_authenticate
from patron.errors import PatronError


class TokenAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> Any:
        user = token_authenticate(token)
        if user is not None:
            request.user = user
        return user


class PatronAPI(NinjaAPI):
    """The routers are mounted once at start-up, so the spec never changes while the process
    runs: build it once per path prefix instead of on every request (it took about 1.4 s of
    CPU each time /api/openapi.json or the docs page was read)."""

    _specs: dict[str, OpenAPISchema]

    def get_openapi_schema(
        self, *, path_prefix: str | None = None, path_params: dict[str, Any] | None = None
    ) -> OpenAPISchema:
        if path_prefix is None:
            path_prefix = self.get_root_path(path_params or {})
        specs = self.__dict__.setdefault("_specs", {})
        if path_prefix not in specs:
            specs[path_prefix] = super().get_openapi_schema(path_prefix=path_prefix)
        return specs[path_prefix]


api = PatronAPI(
    title="Patron API",
    version="1",
    description="Customer quality platform: customers, orders, imports, models, risk, insights. Errors carry "
    "{code, message, details}; 403 permission, 404 not found, 409 conflict, 422 invalid.",
    auth=[TokenAuth(), SessionAuth()],
    urls_namespace="api",
)


@api.exception_handler(PatronError)
def _patron_error(request: HttpRequest, exc: PatronError) -> HttpResponse:
    return api.create_response(
        request,
        {"code": exc.code, "message": exc.message, "details": exc.details},
        status=exc.status,
    )


@api.exception_handler(OverflowError)
def _out_of_range(request: HttpRequest, exc: OverflowError) -> HttpResponse:
    """A number beyond what the database holds (SQLite: 64-bit) names no record: 404, as any
    other unknown number. PostgreSQL compares such numbers and finds nothing by itself."""
    return api.create_response(
        request,
        {
            "code": "not_found",
            "message": "no record has that number (out of range)",
            "details": None,
        },
        status=404,
    )


@api.exception_handler(ValidationError)
def _malformed(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    """Malformed requests get the same error shape as every other error (422)."""
    fields = [".".join(str(p) for p in error.get("loc", ())) for error in exc.errors]
    return api.create_response(
        request,
        {
            "code": "validation_failed",
            "message": f"invalid request: {', '.join(fields)}",
            "details": exc.errors,
        },
        status=422,
    )


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    """ninja's own errors in the usual shape; its 400 (a body that is not JSON at all) is a
    malformed request, so 422 like every other."""
    status = 422 if exc.status_code == 400 else exc.status_code
    code = "validation_failed" if status == 422 else "http_error"
    return api.create_response(
        request, {"code": code, "message": str(exc), "details": None}, status=status
    )


def _mount() -> None:
    from patron.account.api import router as account_router
    from patron.aftersales.api import router as aftersales_router
    from patron.care.api import router as care_router
    from patron.certification.api import customer_router as certification_customer_router
    from patron.certification.api import router as certification_router
    from patron.complaints.api import router as complaints_router
    from patron.customer.api import router as customer_router
    from patron.insight.api import router as insight_router
    from patron.insight.report_api import router as insight_report_router
    from patron.knowledge.api import router as knowledge_router
    from patron.loyalty.api import customer_router as loyalty_customer_router
    from patron.loyalty.api import router as loyalty_router
    from patron.marketing.api import router as marketing_router
    from patron.outbox.api import customer_router as outbox_customer_router
    from patron.outbox.api import router as outbox_router
    from patron.recommend.api import customer_router as recommend_customer_router
    from patron.risk.api import customer_router as risk_customer_router
    from patron.risk.api import router as risk_router
    from patron.satisfaction.api import router as satisfaction_router
    from patron.scoring.api import router as scoring_router
    from patron.service.api import router as service_router
    from patron.service.channels_api import router as service_channels_router

    api.add_router("", account_router)
    api.add_router("/customers", customer_router)
    api.add_router("/customers", risk_customer_router)
    api.add_router("/models", scoring_router)
    api.add_router("/risk", risk_router)
    api.add_router("/insights", insight_router)
    api.add_router("/insights", insight_report_router)
    api.add_router("/outbox", outbox_router)
    api.add_router("/customers", outbox_customer_router)
    api.add_router("/certification", certification_router)
    api.add_router("/customers", certification_customer_router)
    api.add_router("/customers", loyalty_customer_router)
    api.add_router("/customers", recommend_customer_router)
    api.add_router("/loyalty", loyalty_router)
    api.add_router("/marketing", marketing_router)
    api.add_router("/care", care_router)
    api.add_router("/satisfaction", satisfaction_router)
    api.add_router("/aftersales", aftersales_router)
    api.add_router("/faq", knowledge_router)
    api.add_router("/complaints", complaints_router)
    api.add_router("/service", service_router)
    api.add_router("/service", service_channels_router)


_mount()
