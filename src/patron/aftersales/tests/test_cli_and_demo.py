"""``patron aftersales`` at the command line, and the demo merchant's after-sales."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from typer.testing import CliRunner

from patron.account.models import User
from patron.aftersales.cli import aftersales_app
from patron.aftersales.models import AfterSalesRequest, LogisticsException, ShipmentEvent
from patron.aftersales.tests.conftest import DeskCalls, Shop, file_return, make_shop
from patron.commerce.models import Category, Order, Product
from patron.conftest import make_customer, make_line, make_order

pytestmark = pytest.mark.django_db

runner = CliRunner()


def test_returns_list_and_show(agent: User, shop: Shop) -> None:
    # given
    request = file_return(agent, shop)
    late = file_return(agent, make_shop(delivered_at=timezone.now() - timedelta(days=40)))
    # when
    listed = runner.invoke(aftersales_app, ["returns", "list", "--json"])
    outside = runner.invoke(aftersales_app, ["returns", "list", "--outside-policy", "--json"])
    shown = runner.invoke(aftersales_app, ["returns", "show", str(request.pk), "--json"])
    table = runner.invoke(aftersales_app, ["returns", "show", str(late.pk)])
    missing = runner.invoke(aftersales_app, ["returns", "show", "999999"])
    bad_kind = runner.invoke(aftersales_app, ["returns", "list", "--kind", "refund"])
    # then
    assert listed.exit_code == 0, listed.output
    assert {row["number"] for row in json.loads(listed.stdout)} == {
        f"AS{request.pk}",
        f"AS{late.pk}",
    }
    assert [row["id"] for row in json.loads(outside.stdout)] == [late.pk]
    detail = json.loads(shown.stdout)
    assert (detail["status"], detail["lines"][0]["paid_amount"]) == ("requested", "150.00")
    assert table.exit_code == 0 and "policy: outside" in table.stderr
    assert missing.exit_code == 2 and "not found" in missing.stderr
    assert bad_kind.exit_code == 2


def test_logistics_check_runs_the_monitor(shop: Shop, desk: DeskCalls) -> None:
    # when
    result = runner.invoke(aftersales_app, ["logistics-check"])
    # then
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.splitlines()[-1])["found"] == 0


def test_the_demo_tells_every_story_once(desk: DeskCalls) -> None:
    from patron.demo.aftersales_desk import demo_aftersales

    # given: a small merchant with a catalogue and some history
    clothes = Category.objects.create(source="demo", external_id="CAT01", name="服装")
    products = [
        Product.objects.create(
            source="demo",
            external_id=f"P{i}",
            name=f"商品{i}",
            category=clothes,
            price=Decimal("99.00"),
        )
        for i in range(5)
    ]
    for i in range(25):
        customer = make_customer(name=f"顾客{i}")
        order = make_order(
            customer,
            external_id=f"H-{i}",
            placed_at=timezone.now() - timedelta(days=60 + i),
            total="99.00",
            status=Order.Status.COMPLETED,
            delivered_at=timezone.now() - timedelta(days=57 + i),
        )
        line = make_line(order, line_no=1, name="商品", unit_price="99.00")
        line.product = products[i % 5]
        line.save()
    # when
    made = demo_aftersales(seed=7)
    again = demo_aftersales(seed=7)
    # then
    assert made.requests >= 12
    assert made.shipments == 14
    assert made.exceptions >= 3
    statuses = set(AfterSalesRequest.objects.values_list("status", flat=True))
    assert {"requested", "awaiting_goods", "received", "closed", "replaced", "refunded"} <= statuses
    assert {"appealed", "cancelled"} <= statuses
    assert AfterSalesRequest.objects.filter(is_within_policy=False).exists()
    assert ShipmentEvent.objects.exists()
    assert set(LogisticsException.objects.values_list("kind", flat=True)) == {
        "no_scan",
        "late",
        "failed_delivery",
    }
    assert again.requests == AfterSalesRequest.objects.count() == made.requests
