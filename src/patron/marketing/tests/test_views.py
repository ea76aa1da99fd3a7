"""The marketing pages: the role × page matrix, the builder's preview and save, a segment's
page, creating a template and issuing codes from the coupons page, and the navigation."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from patron.account.roles import Role
from patron.conftest import ALL_ROLES, make_customer, make_user
from patron.marketing import services
from patron.marketing.models import Coupon, CouponTemplate, Segment
from patron.marketing.tests.factories import score, template

pytestmark = pytest.mark.django_db

SEGMENT_ROLES = {"administrator", "operations_manager", "marketer", "analyst", "auditor"}
COUPON_ROLES = SEGMENT_ROLES | {"service_agent"}


def _client(role: str) -> Client:
    client = Client()
    client.force_login(make_user(role))
    return client


def _segment() -> Segment:
    return services.segment_save(
        user=make_user(Role.MARKETER),
        name="核心客户",
        rule={"all": [{"field": "grade", "op": "eq", "value": "core"}]},
    )


@pytest.mark.parametrize("role", [*ALL_ROLES, "no_role"])
@pytest.mark.parametrize("page", ["segments", "segment", "coupons"])
def test_role_page_matrix(role: str, page: str) -> None:
    # given
    segment = _segment()
    url = {
        "segments": "/marketing/segments/",
        "segment": f"/marketing/segments/{segment.pk}/",
        "coupons": "/marketing/coupons/",
    }[page]
    allowed = COUPON_ROLES if page == "coupons" else SEGMENT_ROLES

    # when
    response = _client(role).get(url)

    # then
    assert response.status_code == (200 if role in allowed else 403), (role, page)


def test_anonymous_visitors_are_sent_to_log_in() -> None:
    response = Client().get("/marketing/segments/")
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_navigation_shows_marketing_to_segment_viewers() -> None:
    assert (
        'href="/marketing/segments/"' in _client(Role.MARKETER).get("/customers/").content.decode()
    )
    assert (
        'href="/marketing/segments/"'
        not in _client(Role.RISK_ANALYST).get("/customers/").content.decode()
    )


def _builder(**rows: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"mode": "all", "name": "", "description": ""}
    data.update(rows)
    return data


def test_the_builder_previews_the_count_and_a_sample() -> None:
    # given
    core = make_customer(name="核心甲", province="浙江")
    score(core, grade="core")
    make_customer(name="普通乙", province="浙江")

    # when
    response = _client(Role.ANALYST).post(
        "/marketing/segments/",
        _builder(action="preview", field_0="grade", op_0="eq", value_0="core",
                 field_1="province", op_1="in", value_1="浙江, 江苏"),
    )  # fmt: skip

    # then
    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-testid="preview-count">1<' in html
    assert "核心甲" in html and "普通乙" not in html


def test_the_builder_names_the_mistake_with_422() -> None:
    response = _client(Role.MARKETER).post(
        "/marketing/segments/",
        _builder(action="preview", field_0="clv_12m", op_0="gt", value_0="lots"),
    )
    assert response.status_code == 422
    assert "rule.all[0].value: expected a number, got &#x27;lots&#x27;" in response.content.decode()


def test_the_builder_saves_and_the_segment_page_shows_it_in_plain_words() -> None:
    # given
    core = make_customer(name="核心甲")
    score(core, grade="core")
    client = _client(Role.MARKETER)

    # when
    saved = client.post(
        "/marketing/segments/",
        _builder(action="save", name="高价值", field_0="grade", op_0="eq", value_0="core"),
    )
    segment = Segment.objects.get()
    page = client.get(f"/marketing/segments/{segment.pk}/")

    # then
    assert saved.status_code == 302
    assert saved["Location"] == f"/marketing/segments/{segment.pk}/"
    html = page.content.decode()
    assert 'data-testid="rule-text">客户等级 等于 core<' in html  # zh-hans by default
    assert 'data-testid="member-count">1<' in html and "核心甲" in html


def test_an_analyst_cannot_save_from_the_builder() -> None:
    response = _client(Role.ANALYST).post(
        "/marketing/segments/",
        _builder(action="save", name="x", field_0="grade", op_0="eq", value_0="core"),
    )
    assert response.status_code == 403
    assert not Segment.objects.exists()


def test_create_a_template_and_issue_from_the_coupons_page() -> None:
    # given
    client = _client(Role.MARKETER)
    customer = make_customer()

    # when
    created = client.post(
        "/marketing/coupons/",
        {"action": "create", "name": "满99减10", "kind": "amount_off", "value": "10",
         "min_order_amount": "99", "valid_days": "30", "per_customer_limit": "1", "stock": "50"},
    )  # fmt: skip
    tpl = CouponTemplate.objects.get()
    issued = client.post(
        "/marketing/coupons/",
        {"action": "issue", "template_id": tpl.pk, "customer_ids": str(customer.pk),
         "reason": "生日礼", "request_key": "web-1"},
    )  # fmt: skip
    refused = client.post(
        "/marketing/coupons/",
        {"action": "issue", "template_id": tpl.pk, "customer_ids": str(customer.pk),
         "reason": "again", "request_key": "web-2"},
    )  # fmt: skip
    page = client.get("/marketing/coupons/").content.decode()

    # then
    assert (created.status_code, issued.status_code) == (302, 302)
    assert refused.status_code == 409
    assert "per_customer_limit" in refused.content.decode()
    assert Coupon.objects.filter(template=tpl).count() == 1
    assert f'data-testid="stock-{tpl.pk}">1 / 50<' in page


def test_a_service_agent_sees_coupons_but_cannot_issue() -> None:
    tpl = template()
    response = _client(Role.SERVICE_AGENT).post(
        "/marketing/coupons/",
        {"action": "issue", "template_id": tpl.pk, "count": "1", "reason": "r", "request_key": "k"},
    )
    assert response.status_code == 403
    assert not Coupon.objects.exists()
