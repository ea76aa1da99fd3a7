"""Property-based fuzzing of the REST API from its own OpenAPI spec (schemathesis): no input
may produce a server error, an undocumented status, or a body that breaks the spec."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from patron.account.services import token_create, user_create
from patron.conftest import make_customer_file
from patron.wsgi import application

#: Operations whose business rules go beyond what a schema can say (a grade policy's
#: thresholds must be ordered and name real score columns; a back-test needs purchases before
#: its date; a restriction's expiry must be in the future; an appeal names exactly one decision;
#: a risk policy's deferred methods must be among its payment methods; a CSV download names a
#: section; a report can be generated only for a month that has begun; a certification document
#: must be a PDF, JPEG or PNG by its content and under the size limit; a change request's new
#: values must pass the pre-checks and belong to the customer's certified profile; a tier's
#: criteria and a points policy are checked as a whole; an adjustment is a non-zero whole number,
#: which the fuzzer may write as -0.0; a segment's rule names known fields with the operators
#: and values their types allow; a coupon template's terms are checked as a whole, and issuing
#: needs exactly one of customer_ids or count): a
#: schema-valid request may rightly get a 422 there, so "valid data is accepted" is not checked
#: for them. Every other check (no 5xx, documented statuses, bodies that match the spec) still is.
BUSINESS_VALIDATED = {
    ("POST", "/api/models/grade-policies"),
    ("POST", "/api/models/grade-policies/preview"),
    ("GET", "/api/models/report"),
    ("POST", "/api/customers/{customer_id}/restrictions"),
    ("POST", "/api/risk/appeals"),
    ("PUT", "/api/risk/policy"),
    ("GET", "/api/insights/reports/{month}/download"),
    ("POST", "/api/insights/reports/{month}"),
    ("POST", "/api/insights/targets"),
    ("POST", "/api/certification/applications/{application_id}/documents"),
    ("POST", "/api/certification/changes"),
    ("PATCH", "/api/loyalty/tiers/{code}"),
    ("PUT", "/api/loyalty/policy"),
    ("POST", "/api/customers/{customer_id}/points/adjust"),
    ("POST", "/api/marketing/segments"),
    ("POST", "/api/marketing/segments/preview"),
    ("PUT", "/api/marketing/segments/{segment_id}"),
    ("POST", "/api/marketing/coupon-templates"),
    ("PATCH", "/api/marketing/coupon-templates/{template_id}"),
    ("POST", "/api/marketing/coupon-templates/{template_id}/issue"),
    ("POST", "/api/marketing/coupons/{code}/redeem"),
}

schema = schemathesis.openapi.from_wsgi("/api/openapi.json", application)


@pytest.fixture
def token(db: None) -> Iterator[str]:
    """An administrator's token. Like Django's test client, requests must not close the test
    database connection at their end."""
    user = user_create(username="fuzzer", role="administrator", password=None)
    make_customer_file()
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield token_create(user=user, name="fuzz")
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_spec(case: schemathesis.Case, token: str) -> None:
    excluded = (
        [positive_data_acceptance] if (case.method.upper(), case.path) in BUSINESS_VALIDATED else []
    )
    case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, excluded_checks=excluded)
