"""Fixtures of the after-sales tests: the default policy (a migration seeds it, but a
transactional test elsewhere in the run flushes it away, so each database test puts it back),
a customer with a delivered order in known categories, the staff who handle it, and a stand-in
for the service desk's ``ticket_open`` at the edge of the system."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from patron.account.models import User
from patron.account.roles import Role
from patron.aftersales import services
from patron.aftersales.models import AfterSalesRequest
from patron.commerce.models import Category, Order, OrderLine, Product, Shipment
from patron.conftest import make_customer, make_line, make_order, make_user
from patron.customer.models import Customer


def utc(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=UTC)


@pytest.fixture(autouse=True)
def default_policy(request: pytest.FixtureRequest) -> None:
    marker = request.node.get_closest_marker("django_db")
    if marker is None and "db" not in request.fixturenames:
        return
    transactional = bool(marker and marker.kwargs.get("transaction"))
    request.getfixturevalue("transactional_db" if transactional else "db")
    services.policies_seed()


@dataclass
class Shop:
    """王小红 and her order SO-9001, delivered by a shipment: a dress (clothes, 2 × 150.00) and
    a cake (fresh food, exempt from the no-reason return, 1 × 88.00)."""

    customer: Customer
    order: Order
    dress: OrderLine
    cake: OrderLine
    shipment: Shipment
    other: Customer


def make_shop(*, delivered_at: datetime, placed_at: datetime | None = None) -> Shop:
    """A new customer with a new order (SO-9001 for the first shop of a test, SO-9002 …)."""
    number = 9001 + Order.objects.filter(external_id__startswith="SO-90").count()
    customer = make_customer(name="王小红", email="xiaohong@example.com", phone="13900139000")
    clothes, _ = Category.objects.get_or_create(
        source="shop", external_id="CAT01", defaults={"name": "服装", "name_en": "Clothes"}
    )
    fresh, _ = Category.objects.get_or_create(
        source="shop",
        external_id="CAT09",
        defaults={"name": "生鲜", "name_en": "Fresh food", "is_no_reason_return_exempt": True},
    )
    dress, _ = Product.objects.get_or_create(
        source="shop",
        external_id="SKU-D",
        defaults={"name": "Dress", "category": clothes, "price": Decimal("150")},
    )
    cake, _ = Product.objects.get_or_create(
        source="shop",
        external_id="SKU-C",
        defaults={"name": "Cake", "category": fresh, "price": Decimal("88")},
    )
    order = make_order(
        customer,
        external_id=f"SO-{number}",
        placed_at=placed_at or delivered_at.replace(hour=1),
        total="388.00",
        status=Order.Status.DELIVERED,
    )
    dress_line = make_line(
        order, line_no=1, name="Dress", unit_price="150.00", quantity=2, product=dress
    )
    cake_line = make_line(order, line_no=2, name="Cake", unit_price="88.00", product=cake)
    shipment = Shipment.objects.create(
        source="shop",
        external_id=f"SH-{number}",
        order=order,
        carrier="SF Express",
        tracking_number=f"SF{number}",
        status=Shipment.Status.DELIVERED,
        shipped_at=delivered_at.replace(hour=0),
        delivered_at=delivered_at,
    )
    return Shop(
        customer=customer,
        order=order,
        dress=dress_line,
        cake=cake_line,
        shipment=shipment,
        other=make_customer(name="李四"),
    )


@pytest.fixture
def shop(db: None) -> Shop:
    """Delivered now-ish: within every window."""
    from django.utils import timezone

    return make_shop(delivered_at=timezone.now().replace(microsecond=0))


@pytest.fixture
def agent(db: None) -> User:
    return make_user(Role.SERVICE_AGENT, username="agent-zhao")


@pytest.fixture
def second_agent(db: None) -> User:
    return make_user(Role.SERVICE_AGENT, username="agent-qian")


@pytest.fixture
def manager(db: None) -> User:
    return make_user(Role.OPERATIONS_MANAGER, username="manager-sun")


def file_return(
    user: Any,
    shop: Shop,
    *,
    kind: str = "return",
    quantity: int = 1,
    line: OrderLine | None = None,
    reason_code: str = "no_reason",
    amount: Decimal | None = None,
) -> AfterSalesRequest:
    return services.aftersales_file(
        user=user,
        customer_id=shop.customer.pk,
        order_id=shop.order.pk,
        kind=kind,
        reason_code=reason_code,
        reason="不合适",
        lines=[services.LineRequest(order_line_id=(line or shop.dress).pk, quantity=quantity)],
        requested_amount=amount,
    )


@dataclass
class DeskCalls:
    calls: list[dict[str, Any]] = field(default_factory=list)
    refuse: bool = False


@pytest.fixture
def desk(monkeypatch: pytest.MonkeyPatch, db: None) -> DeskCalls:
    """The service desk's ``ticket_open`` (another team's, at the edge): records its calls
    and opens a real ``Ticket`` row, as the desk would."""
    import sys
    import types

    from patron.errors import Conflict
    from patron.service.models import Ticket

    calls = DeskCalls()

    def ticket_open(**kwargs: Any) -> Ticket:
        calls.calls.append(kwargs)
        if calls.refuse:
            raise Conflict("the desk is closed for maintenance")
        return Ticket.objects.create(
            source="patron",
            external_id=kwargs.get("external_id") or f"T{len(calls.calls)}",
            customer_id=kwargs["customer_id"],
            order_id=kwargs.get("order_id"),
            channel=kwargs["channel"],
            category=kwargs.get("category", ""),
            subject=kwargs["subject"],
            opened_at=datetime.now(tz=UTC),
        )

    try:
        import patron.service.services as module
    except ImportError:
        module = types.ModuleType("patron.service.services")
        monkeypatch.setitem(sys.modules, "patron.service.services", module)
        import patron.service

        monkeypatch.setattr(patron.service, "services", module, raising=False)
    monkeypatch.setattr(module, "ticket_open", ticket_open, raising=False)
    return calls


Factory = Callable[..., AfterSalesRequest]
