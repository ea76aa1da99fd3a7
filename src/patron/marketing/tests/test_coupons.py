"""Coupons: templates, issuing (stock, per-customer limit, idempotency), redeeming (exact
discounts, every refusal, budget, idempotency), voiding, expiry and imported orders."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from patron.account.roles import Role
from patron.audit.models import AuditEvent
from patron.commerce.models import Category, Product
from patron.conftest import make_customer, make_line, make_order, make_user
from patron.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from patron.marketing import services
from patron.marketing.models import Coupon, CouponTemplate
from patron.marketing.tests.factories import template

pytestmark = pytest.mark.django_db


@pytest.fixture
def marketer() -> Any:
    return make_user(Role.MARKETER)


@pytest.fixture
def checkout() -> Any:
    return make_user(Role.INTEGRATION)


def _issue(user: Any, tpl: CouponTemplate, key: str = "k1", **kwargs: Any) -> list[Coupon]:
    return services.coupons_issue(
        user=user, template_id=tpl.pk, reason="新客礼", request_key=key, **kwargs
    )


def _redeem(
    user: Any, code: str, total: str, customer_id: int, key: str = "r1", **kw: Any
) -> Coupon:
    return services.coupon_redeem(
        user=user, code=code, order_total=Decimal(total), customer_id=customer_id,
        request_key=key, **kw,
    )  # fmt: skip


def test_create_a_template_checks_its_terms(marketer: Any) -> None:
    # when
    tpl = services.coupon_template_create(
        user=marketer,
        data={"name": "九折", "kind": "percent_off", "value": "10", "valid_days": 7, "stock": 5},
    )

    # then
    assert (tpl.kind, tpl.value, tpl.min_order_amount, tpl.per_customer_limit) == (
        "percent_off", Decimal("10.00"), Decimal("0.00"), 1,
    )  # fmt: skip
    with pytest.raises(
        ValidationFailed, match=r"coupon_template\.value: a percentage is at most 100"
    ):
        services.coupon_template_create(
            user=marketer, data={"name": "x", "kind": "percent_off", "value": 150, "valid_days": 1}
        )
    assert CouponTemplate.objects.count() == 1
    assert AuditEvent.objects.filter(entity_type="marketing.coupon_template").count() == 1


def test_issue_one_code_per_customer(marketer: Any) -> None:
    # given
    tpl = template()
    a, b = make_customer(), make_customer()

    # when
    coupons = _issue(marketer, tpl, customer_ids=[a.pk, b.pk])

    # then
    assert {c.customer_id for c in coupons} == {a.pk, b.pk}
    assert all(len(c.code) == 10 and c.status == "issued" for c in coupons)
    assert all(c.expires_at == c.issued_at + timedelta(days=30) for c in coupons)


def test_a_retry_returns_the_same_codes(marketer: Any) -> None:
    tpl = template()
    a = make_customer()
    first = _issue(marketer, tpl, customer_ids=[a.pk])
    again = _issue(marketer, tpl, customer_ids=[a.pk])
    assert [c.code for c in again] == [c.code for c in first]
    assert Coupon.objects.count() == 1


def test_the_per_customer_limit_refuses_all_and_issues_nothing(marketer: Any) -> None:
    # given
    tpl = template(per_customer_limit=1)
    a, b = make_customer(), make_customer()
    _issue(marketer, tpl, "k1", customer_ids=[a.pk])

    # when / then
    with pytest.raises(Conflict) as error:
        _issue(marketer, tpl, "k2", customer_ids=[b.pk, a.pk])
    assert error.value.message == (
        f"coupon_issue.per_customer_limit: customers {a.pk} would hold more than 1 coupon(s) "
        "of this template"
    )
    assert Coupon.objects.count() == 1


def test_the_stock_is_never_exceeded(marketer: Any) -> None:
    tpl = template(stock=3, per_customer_limit=None)
    _issue(marketer, tpl, "k1", count=2)
    with pytest.raises(Conflict, match="stock: 1 of 3 codes left, 2 asked for"):
        _issue(marketer, tpl, "k2", count=2)
    assert len(_issue(marketer, tpl, "k3", count=1)) == 1
    assert Coupon.objects.filter(template=tpl).count() == 3


def test_only_coupon_managers_issue(db: None) -> None:
    tpl = template()
    with pytest.raises(PermissionDenied):
        _issue(make_user(Role.SERVICE_AGENT), tpl, count=1)
    assert not Coupon.objects.exists()


def test_redeem_an_amount_off_coupon(marketer: Any, checkout: Any) -> None:
    # given
    tpl = template(value=Decimal("20.00"), min_order_amount=Decimal("199.00"))
    a = make_customer()
    (coupon,) = _issue(marketer, tpl, customer_ids=[a.pk])

    # when
    redeemed = _redeem(checkout, coupon.code.lower(), "199.00", a.pk, order_reference="T-1")

    # then
    assert (redeemed.status, redeemed.discount_amount, redeemed.order_total) == (
        "redeemed", Decimal("20.00"), Decimal("199.00"),
    )  # fmt: skip
    assert redeemed.order_reference == "T-1" and redeemed.redeemed_at is not None
    assert _redeem(checkout, coupon.code, "199.00", a.pk).pk == coupon.pk  # a retry


def test_a_percent_coupon_rounds_to_the_cent_and_claims_an_open_code(
    marketer: Any, checkout: Any
) -> None:
    tpl = template(
        kind="percent_off", value=Decimal("15"), min_order_amount=0, per_customer_limit=1
    )
    (coupon,) = _issue(marketer, tpl, count=1)
    a = make_customer()
    redeemed = _redeem(checkout, coupon.code, "199.99", a.pk)
    assert (redeemed.discount_amount, redeemed.customer_id) == (Decimal("30.00"), a.pk)


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("used", "coupon {code}: it is redeemed"),
        ("void", "coupon {code}: it is void"),
        ("expired", "coupon {code}: it expired at"),
        ("other", "coupon {code}: it was issued to another customer"),
        ("threshold", "coupon {code}: the order total 199.99 is below the threshold 200.00"),
        (
            "budget",
            "coupon {code}: the budget of 30.00 would be exceeded (20.00 given, 20.00 asked)",
        ),
        ("category", "coupon {code}: the order has no line in the coupon's categories"),
    ],
)
def test_redeem_refusals_name_the_reason_and_change_nothing(
    marketer: Any, checkout: Any, setup: str, message: str
) -> None:
    # given
    tpl = template(budget=Decimal("30.00") if setup == "budget" else None, per_customer_limit=None)
    if setup == "category":
        tpl.category_ids = [99]
        tpl.save()
    a, b = make_customer(), make_customer()
    first, coupon = _issue(marketer, tpl, customer_ids=[a.pk, a.pk])
    if setup == "used":
        _redeem(checkout, coupon.code, "300", a.pk, key="before")
    if setup == "budget":
        _redeem(checkout, first.code, "300", a.pk, key="before")
    if setup == "void":
        services.coupon_void(user=marketer, code=coupon.code, reason="发错了")
    if setup == "expired":
        Coupon.objects.filter(pk=coupon.pk).update(expires_at=timezone.now() - timedelta(1))
    before = Coupon.objects.get(pk=coupon.pk)

    # when
    with pytest.raises(Conflict) as error:
        _redeem(
            checkout,
            coupon.code,
            "199.99" if setup == "threshold" else "300.00",
            b.pk if setup == "other" else a.pk,
            category_ids=[1, 2] if setup == "category" else None,
        )

    # then
    assert error.value.message.startswith(message.format(code=coupon.code))
    after = Coupon.objects.get(pk=coupon.pk)
    assert (after.status, after.discount_amount, after.redeem_key) == (
        before.status, before.discount_amount, before.redeem_key,
    )  # fmt: skip


def test_redeem_an_unknown_code_is_not_found(checkout: Any) -> None:
    with pytest.raises(NotFound, match="coupon 'NOPE' not found"):
        _redeem(checkout, "nope", "10", 1)


def test_void_then_nothing_more(marketer: Any) -> None:
    tpl = template()
    (coupon,) = _issue(marketer, tpl, customer_ids=[make_customer().pk])
    services.coupon_void(user=marketer, code=coupon.code, reason="客户投诉")
    with pytest.raises(Conflict, match="the coupon is void: cannot void"):
        services.coupon_void(user=marketer, code=coupon.code, reason="again")


def test_expire_marks_due_codes_once(marketer: Any) -> None:
    tpl = template(per_customer_limit=None)
    due, _fresh = _issue(marketer, tpl, count=2)
    Coupon.objects.filter(pk=due.pk).update(expires_at=timezone.now() - timedelta(1))
    assert services.coupons_expire() == 1
    assert services.coupons_expire() == 0
    assert list(Coupon.objects.order_by("pk").values_list("status", flat=True)) == [
        "expired", "issued",
    ]  # fmt: skip


def test_imported_orders_redeem_their_coupons_once(marketer: Any) -> None:
    # given: 甲's code used on an import (with the shop's discount), an open code used by 乙
    # without a recorded discount, and a code used by the wrong customer
    tpl = template(
        kind="percent_off", value=Decimal("10"), min_order_amount=0, per_customer_limit=None
    )
    jia, yi, bing = make_customer(), make_customer(), make_customer()
    own, other = _issue(marketer, tpl, "k1", customer_ids=[jia.pk, jia.pk])
    (open_code,) = _issue(marketer, tpl, "k2", count=1)
    now = timezone.now()
    o1 = make_order(
        jia,
        external_id="I1",
        placed_at=now,
        paid_at=now,
        total="180.00",
        discount_amount=Decimal("20.00"),
        coupon_code=own.code,
    )
    make_order(
        yi, external_id="I2", placed_at=now, paid_at=now, total="99.90", coupon_code=open_code.code
    )
    make_order(bing, external_id="I3", placed_at=now, paid_at=now, total="50.00",
               coupon_code=other.code)  # fmt: skip

    # when
    result = services.coupons_reconcile_imports()
    again = services.coupons_reconcile_imports()

    # then
    assert (result.redeemed, result.skipped) == (2, 1)
    assert (again.redeemed, again.skipped) == (0, 1)
    own.refresh_from_db()
    open_code.refresh_from_db()
    other.refresh_from_db()
    assert (own.status, own.order_id, own.discount_amount, own.order_total) == (
        "redeemed", o1.pk, Decimal("20.00"), Decimal("200.00"),
    )  # fmt: skip
    assert (open_code.customer_id, open_code.discount_amount) == (yi.pk, Decimal("9.99"))
    assert other.status == "issued"


def test_imported_orders_respect_the_category_restriction(marketer: Any) -> None:
    shoes = Category.objects.create(source="shop", external_id="c1", name="鞋")
    tpl = template(min_order_amount=0, category_ids=[shoes.pk], per_customer_limit=None)
    jia = make_customer()
    hit, miss = _issue(marketer, tpl, customer_ids=[jia.pk, jia.pk])
    now = timezone.now()
    o1 = make_order(jia, external_id="C1", placed_at=now, paid_at=now, total="300.00",
                    coupon_code=hit.code)  # fmt: skip
    sneaker = Product.objects.create(source="shop", external_id="p1", name="跑鞋", category=shoes)
    make_line(o1, line_no=1, name="跑鞋", unit_price="300.00", product=sneaker)
    make_order(jia, external_id="C2", placed_at=now, paid_at=now, total="300.00",
               coupon_code=miss.code)  # fmt: skip
    result = services.coupons_reconcile_imports()
    assert (result.redeemed, result.skipped) == (1, 1)
    assert Coupon.objects.get(pk=hit.pk).discount_amount == Decimal("20.00")
