"""The after-sales pages: the queue and its filters, one request with its verdict, timeline and
the steps its status allows, filing for a customer, the policy, the logistics exceptions, and the
customer's own page behind the signed link."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from patron.account.models import User
from patron.account.roles import Role
from patron.aftersales import services, tokens
from patron.aftersales.models import AfterSalesPolicy, AfterSalesRequest, LogisticsException
from patron.aftersales.tests.conftest import Shop, file_return, make_shop
from patron.conftest import make_user

pytestmark = pytest.mark.django_db


def client_for(user: User | None) -> Client:
    client = Client(headers={"accept-language": "en"})
    if user is not None:
        client.force_login(user)
    return client


def text_of(html: str) -> str:
    without_tags = re.sub(r"<script.*?</script>|<[^>]+>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", without_tags).strip()


def test_the_queue_lists_requests_and_filters_them(agent: User, shop: Shop) -> None:
    # given
    inside = file_return(agent, shop)
    late = file_return(agent, make_shop(delivered_at=timezone.now() - timedelta(days=40)))
    client = client_for(agent)
    # when
    page = client.get("/service/returns/")
    outside = client.get("/service/returns/?policy=outside")
    bad = client.get("/service/returns/?status=lost")
    # then
    assert page.status_code == 200
    html = page.content.decode()
    assert (
        f'data-testid="request-{inside.pk}"' in html and f'data-testid="request-{late.pk}"' in html
    )
    assert f'data-testid="outside-{late.pk}"' in html
    assert 'data-testid="file-for"' in html
    assert f'data-testid="request-{inside.pk}"' not in outside.content.decode()
    assert bad.status_code == 422


def test_a_request_page_shows_lines_verdict_timeline_and_the_steps_allowed(
    agent: User, shop: Shop
) -> None:
    # given
    request = file_return(agent, shop)
    # when
    html = client_for(agent).get(f"/service/returns/{request.pk}/").content.decode()
    # then
    text = text_of(html)
    assert f"AS{request.pk}" in text and "Dress" in text and "Within the policy" in text
    assert 'data-testid="approve"' in html and 'data-testid="reject"' in html
    assert 'data-testid="receive-form"' not in html
    assert "Filed" in text


def test_steps_are_taken_on_the_page_and_refusals_shown_next_to_the_form(
    agent: User, shop: Shop
) -> None:
    # given
    request = file_return(agent, shop)
    client = client_for(agent)
    url = f"/service/returns/{request.pk}/"
    # when
    refused = client.post(url, {"action": "reject", "reason": " "})
    approved = client.post(url, {"action": "approve"})
    received = client.post(url, {"action": "receive", "note": "ok"})
    too_much = client.post(url, {"action": "refund", "amount": "999", "method": "original"})
    refunded = client.post(url, {"action": "refund", "amount": "150.00", "method": "original"})
    # then
    assert refused.status_code == 422
    assert 'data-testid="form-error"' in refused.content.decode()
    assert (approved.status_code, received.status_code, refunded.status_code) == (302, 302, 302)
    assert too_much.status_code == 409
    assert "more than can still be refunded" in too_much.content.decode()
    request.refresh_from_db()
    assert request.status == "refunded"


def test_an_agent_sees_that_a_supervisor_must_approve_outside_the_policy(
    agent: User, manager: User
) -> None:
    # given
    request = file_return(agent, make_shop(delivered_at=timezone.now() - timedelta(days=40)))
    # when
    for_agent = client_for(agent).get(f"/service/returns/{request.pk}/").content.decode()
    for_manager = client_for(manager).get(f"/service/returns/{request.pk}/").content.decode()
    forced = client_for(agent).post(
        f"/service/returns/{request.pk}/", {"action": "approve", "exception_reason": "x"}
    )
    # then
    assert 'data-testid="approve"' not in for_agent
    assert "only a supervisor may approve it" in for_agent
    assert 'data-testid="approve"' in for_manager and 'name="exception_reason"' in for_manager
    assert forced.status_code == 403
    request.refresh_from_db()
    assert request.status == "requested"


def test_filing_for_a_customer_on_the_page(agent: User, shop: Shop) -> None:
    # given
    url = f"/service/returns/new/?customer={shop.customer.pk}"
    client = client_for(agent)
    # when
    form = client.get(url)
    wrong = client.post(
        url,
        {
            "order": shop.order.pk,
            "kind": "return",
            "reason_code": "no_reason",
            f"quantity_{shop.dress.pk}": "5",
        },
    )
    filed = client.post(
        url,
        {
            "order": shop.order.pk,
            "kind": "exchange",
            "reason_code": "size_or_fit",
            "reason": "要大一号",
            f"quantity_{shop.dress.pk}": "1",
        },
    )
    # then
    assert form.status_code == 200
    assert 'data-testid="customer-link"' in form.content.decode()
    assert wrong.status_code == 422
    assert "lines.0.quantity" in wrong.content.decode()
    assert filed.status_code == 302
    request = AfterSalesRequest.objects.get()
    assert filed["Location"] == f"/service/returns/{request.pk}/"
    assert (request.kind, request.channel, request.reason) == ("exchange", "staff", "要大一号")


def test_the_policy_page_shows_and_saves_the_rows(manager: User, agent: User, shop: Shop) -> None:
    # given
    policy = AfterSalesPolicy.objects.get(kind="return", category_code="")
    # when
    for_agent = client_for(agent).get("/service/returns/policy/")
    agent_post = client_for(agent).post(
        "/service/returns/policy/", {"policy": policy.pk, "days_after_delivery": "10"}
    )
    saved = client_for(manager).post(
        "/service/returns/policy/",
        {"policy": policy.pk, "days_after_delivery": "10", "is_active": "on", "description": "x"},
    )
    # then
    assert for_agent.status_code == 200 and 'data-testid="save-' not in for_agent.content.decode()
    assert agent_post.status_code == 403
    assert saved.status_code == 302
    policy.refresh_from_db()
    assert (policy.days_after_delivery, policy.is_active, policy.requires_reason) == (
        10,
        True,
        False,
    )


def test_the_logistics_page_lists_exceptions(agent: User, shop: Shop) -> None:
    # given
    LogisticsException.objects.create(
        shipment=shop.shipment,
        order=shop.order,
        customer=shop.customer,
        kind="late",
        detected_at=timezone.now(),
        detail="promised for 2026-11-19 10:00, not delivered yet",
    )
    # when
    page = client_for(agent).get("/service/logistics/")
    resolved = client_for(agent).get("/service/logistics/?status=resolved")
    # then
    assert page.status_code == 200
    assert "promised for 2026-11-19 10:00" in page.content.decode()
    assert "promised for" not in resolved.content.decode()


@pytest.mark.parametrize("role", [Role.MARKETER, Role.RISK_ANALYST])
def test_roles_without_after_sales_get_403_pages(role: str) -> None:
    # when
    client = client_for(make_user(role))
    # then
    assert client.get("/service/returns/").status_code == 403
    assert client.get("/service/logistics/").status_code == 403


def test_pages_need_a_login() -> None:
    assert Client().get("/service/returns/").status_code == 302


# ---------------------------------------------------------------------- the customer's page


def test_the_customer_files_follows_and_appeals_through_their_link(
    agent: User, second_agent: User, shop: Shop
) -> None:
    # given
    url = tokens.customer_path(shop.customer.pk)
    client = client_for(None)
    # when: the customer files a return
    page = client.get(url)
    filed = client.post(
        url,
        {
            "action": "file",
            "order": shop.order.pk,
            "kind": "return",
            "reason_code": "no_reason",
            f"quantity_{shop.dress.pk}": "1",
        },
    )
    request = AfterSalesRequest.objects.get()
    services.aftersales_reject(user=agent, request_id=request.pk, reason="吊牌已剪")
    rejected_page = client.get(url).content.decode()
    appealed = client.post(url, {"action": "appeal", "request": request.pk, "reason": "吊牌没剪"})
    # then
    assert page.status_code == 200 and page["X-Robots-Tag"] == "noindex"
    assert 'data-testid="filing-form"' in page.content.decode()
    assert filed.status_code == 302
    assert (request.channel, request.created_by) == ("public", None)
    assert "吊牌已剪" in rejected_page and f'data-testid="appeal-{request.pk}"' in rejected_page
    assert appealed.status_code == 302
    request.refresh_from_db()
    assert (request.status, request.appeal_reason) == ("appealed", "吊牌没剪")


def test_the_link_cannot_touch_another_customers_request(agent: User, shop: Shop) -> None:
    # given
    request = file_return(agent, shop)
    other_url = tokens.customer_path(shop.other.pk)
    # when
    response = client_for(None).post(
        other_url, {"action": "cancel", "request": request.pk, "reason": "不要了"}
    )
    # then
    assert response.status_code == 404
    request.refresh_from_db()
    assert request.status == "requested"


def test_a_bad_or_expired_link_shows_an_error_page(shop: Shop, settings: object) -> None:
    # when
    bad = client_for(None).get("/aftersales/not-a-token/")
    settings.PATRON_AFTERSALES_LINK_DAYS = -1  # type: ignore[attr-defined]
    expired = client_for(None).get(tokens.customer_path(shop.customer.pk))
    # then
    assert bad.status_code == 404 and 'data-testid="link-error"' in bad.content.decode()
    assert expired.status_code == 403


def test_the_pages_speak_chinese_by_default(agent: User) -> None:
    # given: a delivery long past the 7-day window
    request = file_return(agent, make_shop(delivered_at=timezone.now() - timedelta(days=40)))
    client = Client(headers={"accept-language": "zh-hans"})
    client.force_login(agent)
    # when
    queue = text_of(client.get("/service/returns/").content.decode())
    detail = text_of(client.get(f"/service/returns/{request.pk}/").content.decode())
    # then
    assert "售后申请" in queue and "待决定" in queue and "超出" in queue
    assert "政策判定" in detail and "天无理由退货期限已于" in detail
