"""Role × action matrix over every page and API endpoint (deny by default).

The expected tables are written out here on purpose, not derived from ``ROLE_PERMISSIONS``:
a change to a role's rights must show up as a failing line in this file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from django.test import Client

from patron.account.roles import Role
from patron.conftest import NO_ROLE, CustomerFile, make_user

pytestmark = pytest.mark.django_db

ADMINISTRATOR = Role.ADMINISTRATOR.value
OPERATIONS_MANAGER = Role.OPERATIONS_MANAGER.value
SERVICE_AGENT = Role.SERVICE_AGENT.value
RISK_ANALYST = Role.RISK_ANALYST.value
MARKETER = Role.MARKETER.value
AUDITOR = Role.AUDITOR.value
ANALYST = Role.ANALYST.value
INTEGRATION = Role.INTEGRATION.value  # checkout and other systems: the checkout policy only
EVERY_ROLE = {
    ADMINISTRATOR,
    OPERATIONS_MANAGER,
    SERVICE_AGENT,
    RISK_ANALYST,
    MARKETER,
    AUDITOR,
    ANALYST,
}
ROLES = [role.value for role in Role] + [NO_ROLE]

URL = Callable[[int], str]

# action: (url for a customer id, roles allowed)
PAGES: dict[str, tuple[URL, set[str]]] = {
    "customer list": (lambda _: "/customers/", EVERY_ROLE),
    "customer search": (lambda _: "/customers/?q=%E7%8E%8B&kind=individual", EVERY_ROLE),
    "customer page": (lambda pk: f"/customers/{pk}/", EVERY_ROLE),
    "customer orders": (lambda pk: f"/customers/{pk}/orders/", EVERY_ROLE - {AUDITOR}),
    "imports": (
        lambda _: "/imports/",
        {ADMINISTRATOR, OPERATIONS_MANAGER, RISK_ANALYST, AUDITOR, ANALYST},
    ),
    "audit log": (lambda _: "/audit/", {ADMINISTRATOR, AUDITOR}),
}

ENDPOINTS: dict[str, tuple[URL, set[str]]] = {
    "GET /api/customers": (lambda _: "/api/customers", EVERY_ROLE),
    "GET /api/customers/{id}": (lambda pk: f"/api/customers/{pk}", EVERY_ROLE),
    "GET /api/customers/{id}/orders": (
        lambda pk: f"/api/customers/{pk}/orders",
        EVERY_ROLE - {AUDITOR},
    ),
    "GET /api/customers/{id}/timeline": (lambda pk: f"/api/customers/{pk}/timeline", EVERY_ROLE),
    "GET /api/me": (lambda _: "/api/me", EVERY_ROLE | {NO_ROLE, INTEGRATION}),
    "GET /api/customers/{id}/checkout-policy": (
        lambda pk: f"/api/customers/{pk}/checkout-policy",
        {ADMINISTRATOR, OPERATIONS_MANAGER, SERVICE_AGENT, RISK_ANALYST, AUDITOR, INTEGRATION},
    ),
    "GET /api/customers/{id}/restrictions": (
        lambda pk: f"/api/customers/{pk}/restrictions",
        {ADMINISTRATOR, OPERATIONS_MANAGER, SERVICE_AGENT, RISK_ANALYST, AUDITOR},
    ),
    "GET /api/risk/alerts": (
        lambda _: "/api/risk/alerts",
        {ADMINISTRATOR, OPERATIONS_MANAGER, RISK_ANALYST, AUDITOR},
    ),
}

MAY_SEE_PII = {ADMINISTRATOR, OPERATIONS_MANAGER}


def logged_in(role: str) -> Client:
    client = Client(headers={"accept-language": "en"})
    client.force_login(make_user(role))
    return client


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", list(PAGES))
def test_pages(customer_file: CustomerFile, lake: Path, role: str, action: str) -> None:
    # given
    url, allowed = PAGES[action]
    client = logged_in(role)

    # when
    response = client.get(url(customer_file.customer.pk))

    # then
    assert response.status_code == (200 if role in allowed else 403)
    if response.status_code == 403:
        assert "You do not have permission to see this page" in response.content.decode()


@pytest.mark.parametrize("action", list(PAGES))
def test_pages_send_anonymous_users_to_login(customer_file: CustomerFile, action: str) -> None:
    # given
    url = PAGES[action][0](customer_file.customer.pk)

    # when
    response = Client().get(url)

    # then
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", list(ENDPOINTS))
def test_api(customer_file: CustomerFile, lake: Path, role: str, action: str) -> None:
    # given
    url, allowed = ENDPOINTS[action]
    client = logged_in(role)

    # when
    response = client.get(url(customer_file.customer.pk))

    # then
    assert response.status_code == (200 if role in allowed else 403)
    if response.status_code == 403:
        assert response.json()["code"] == "permission_denied"


@pytest.mark.parametrize("action", list(ENDPOINTS))
def test_api_refuses_anonymous_requests(customer_file: CustomerFile, action: str) -> None:
    # given
    url = ENDPOINTS[action][0](customer_file.customer.pk)

    # when
    response = Client().get(url)

    # then
    assert response.status_code == 401


@pytest.mark.parametrize("role", sorted(EVERY_ROLE))
def test_pii_on_the_customer_page(customer_file: CustomerFile, lake: Path, role: str) -> None:
    # when
    html = logged_in(role).get(f"/customers/{customer_file.customer.pk}/").content.decode()

    # then
    if role in MAY_SEE_PII:
        assert '<dd class="text-mono" data-testid="customer-phone">13812341234</dd>' in html
        assert "138****1234" not in html
    else:
        assert '<dd class="text-mono" data-testid="customer-phone">138****1234</dd>' in html
        assert "13812341234" not in html


@pytest.mark.parametrize("role", sorted(EVERY_ROLE))
def test_pii_on_the_customer_list(customer_file: CustomerFile, role: str) -> None:
    # when
    html = logged_in(role).get("/customers/", {"q": "C1001"}).content.decode()

    # then
    assert ("13812341234" in html) is (role in MAY_SEE_PII)
    assert ("138****1234" in html) is (role not in MAY_SEE_PII)


@pytest.mark.parametrize("role", sorted(EVERY_ROLE))
def test_pii_in_the_api(customer_file: CustomerFile, lake: Path, role: str) -> None:
    # given
    client = logged_in(role)

    # when
    listed = client.get("/api/customers", {"q": "C1001"}).json()["items"][0]["phone"]
    profile = client.get(f"/api/customers/{customer_file.customer.pk}").json()["customer"]["phone"]

    # then
    expected = "13812341234" if role in MAY_SEE_PII else "138****1234"
    assert (listed, profile) == (expected, expected)


# --- Django admin -------------------------------------------------------------------------------


def test_admin_is_open_to_the_administrator(db: None) -> None:
    # when
    response = logged_in(ADMINISTRATOR).get("/admin/")

    # then
    assert response.status_code == 200


def test_admin_audit_log_is_read_only(customer_file: CustomerFile) -> None:
    # given
    from patron.audit.models import AuditEvent

    client = logged_in(ADMINISTRATOR)
    event = AuditEvent.objects.get()

    # when
    listing = client.get("/admin/audit/auditevent/")
    add = client.get("/admin/audit/auditevent/add/")
    delete = client.post(f"/admin/audit/auditevent/{event.pk}/delete/", {"post": "yes"})
    change = client.post(f"/admin/audit/auditevent/{event.pk}/change/", {"summary": "edited"})

    # then
    assert listing.status_code == 200
    assert (add.status_code, delete.status_code, change.status_code) == (403, 403, 403)
    assert AuditEvent.objects.get().summary == "tags changed"


@pytest.mark.parametrize("role", [ADMINISTRATOR, SERVICE_AGENT])
def test_admin_customer_list_masks_pii(customer_file: CustomerFile, role: str) -> None:
    # when
    html = logged_in(role).get("/admin/customer/customer/").content.decode()

    # then: masked in the list, whatever the role
    assert "138****1234" in html
    assert "13812341234" not in html


def test_admin_change_form_edits_pii_only_with_view_pii(customer_file: CustomerFile) -> None:
    # given
    pk = customer_file.customer.pk

    # when
    full = logged_in(ADMINISTRATOR).get(f"/admin/customer/customer/{pk}/change/").content.decode()
    masked = logged_in(SERVICE_AGENT).get(f"/admin/customer/customer/{pk}/change/").content.decode()

    # then
    assert 'name="phone"' in full
    assert 'value="13812341234"' in full
    assert 'name="phone"' not in masked
    assert "138****1234" in masked
    assert "13812341234" not in masked


def test_admin_phone_change_refreshes_the_lookup_hash_and_is_audited(
    customer_file: CustomerFile,
) -> None:
    # given
    from django.forms.models import model_to_dict

    from patron.audit.models import AuditEvent
    from patron.customer.models import Customer
    from patron.privacy import crypto

    customer = customer_file.customer
    client = logged_in(ADMINISTRATOR)
    form = {
        key: ("" if value is None else value)
        for key, value in model_to_dict(customer).items()
        if not key.endswith("_hash") and key not in {"id", "row_hash"}
    }
    del form["registered_at"]  # the admin splits it into a date and a local time
    form.update(
        {"registered_at_0": "2024-01-05", "registered_at_1": "10:00:00", "phone": "13900009999"}
    )

    # when
    response = client.post(f"/admin/customer/customer/{customer.pk}/change/", form)

    # then
    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.phone == "13900009999"
    assert customer.phone_hash == crypto.lookup_hash("13900009999", kind="phone")
    event = AuditEvent.objects.order_by("-id").first()
    assert event is not None
    assert (event.action, event.entity_type, event.customer_id) == (
        "update",
        "customer.Customer",
        customer.pk,
    )
    assert event.changes == {"phone": ["138****1234", "139****9999"]}
    assert (
        Customer.objects.filter(phone_hash=crypto.lookup_hash("13900009999", kind="phone")).count()
        == 1
    )
