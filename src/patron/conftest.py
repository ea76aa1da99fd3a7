"""Shared test fixtures and small data factories (plain functions, created through the ORM).

``customer_file`` builds one customer with a known history, so that tests can assert exact
values: 王小明 (shop:C1001) with three orders, lines, payments, a return, a review, a late
shipment, a complaint ticket, tags, consents, an address and an audit entry.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from patron.account.models import User
from patron.account.roles import Role
from patron.account.services import user_create
from patron.audit.services import AuditEntry, audit_record
from patron.commerce.models import (
    Order,
    OrderLine,
    Payment,
    Product,
    ReturnRequest,
    Review,
    Shipment,
)
from patron.customer.models import Address, Consent, Customer, CustomerTag, SourceChannel, Tag
from patron.privacy import crypto
from patron.service.models import Ticket

PASSWORD = "correct-horse-battery-staple"
NO_ROLE = "no_role"
ALL_ROLES: list[str] = [role.value for role in Role]
_sequence = itertools.count(1)


def at(text: str) -> datetime:
    """A UTC instant from ``YYYY-MM-DD HH:MM``."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=UTC)


def make_user(
    role: str | None, *, username: str | None = None, password: str | None = None
) -> User:
    """A staff user with one role; ``None`` or ``NO_ROLE`` makes a staff user with no role.

    No password unless given (tests log in with ``force_login``): hashing one is slow on purpose.
    """
    username = username or f"{role or NO_ROLE}-{next(_sequence)}"
    if role is None or role == NO_ROLE:
        return User.objects.create_user(username=username, password=password, is_staff=True)
    return user_create(username=username, role=role, password=password)


def make_customer(**fields: Any) -> Customer:
    """A customer; phone, e-mail and ID number get their lookup hashes like an import would."""
    number = next(_sequence)
    values: dict[str, Any] = {
        "source": "shop",
        "external_id": f"C{9000 + number}",
        "name": f"客户{number}",
        "province": "",
        "source_channel": SourceChannel.ONLINE,
    }
    values.update(fields)
    for name, kind in (("phone", "phone"), ("email", "email"), ("id_number", "id_number")):
        if values.get(name):
            values[f"{name}_hash"] = crypto.lookup_hash(values[name], kind=kind)
    return Customer.objects.create(**values)


def make_order(
    customer: Customer, *, external_id: str, placed_at: datetime, total: str, **fields: Any
) -> Order:
    values: dict[str, Any] = {"status": Order.Status.COMPLETED, "store": "Tmall"}
    values.update(fields)
    return Order.objects.create(
        source=customer.source,
        external_id=external_id,
        customer=customer,
        placed_at=placed_at,
        total_amount=Decimal(total),
        **values,
    )


def make_line(
    order: Order,
    *,
    line_no: int,
    name: str,
    unit_price: str,
    quantity: int = 1,
    product: Product | None = None,
) -> OrderLine:
    return OrderLine.objects.create(
        source=order.source,
        external_id=f"{order.external_id}:{line_no}",
        order=order,
        line_no=line_no,
        product=product,
        product_name=name,
        quantity=quantity,
        unit_price=Decimal(unit_price),
        amount=Decimal(unit_price) * quantity,
    )


def make_payment(
    order: Order, *, method: str, amount: str, paid_at: datetime | None, **fields: Any
) -> Payment:
    return Payment.objects.create(
        source=order.source,
        external_id=f"P-{order.external_id}-{next(_sequence)}",
        order=order,
        method=method,
        amount=Decimal(amount),
        paid_at=paid_at,
        **fields,
    )


@dataclass(frozen=True)
class CustomerFile:
    customer: Customer
    others: tuple[Customer, ...]
    orders: tuple[Order, ...]


def make_customer_file() -> CustomerFile:
    """王小明 and two other customers; see the module docstring."""
    customer = make_customer(
        external_id="C1001",
        name="王小明",
        gender=Customer.Gender.MALE,
        birthday=date(1990, 3, 7),
        phone="13812341234",
        email="xiaoming.wang@example.com",
        id_number="110101199003074514",
        province="上海",
        city="上海",
        registration_channel="WeChat mini program",
        registered_at=at("2024-01-05 02:00"),
    )
    Address.objects.create(
        customer=customer,
        label="Home",
        province="上海",
        city="上海",
        district="浦东新区",
        detail="世纪大道100号1号楼101室",
        postal_code="200120",
        is_default=True,
    )
    for name in ("VIP", "Frequent buyer"):
        CustomerTag.objects.create(
            customer=customer, tag=Tag.objects.create(name=name), added_by="system"
        )
    Consent.objects.create(
        source="shop",
        external_id="consent-1",
        customer=customer,
        purpose="marketing",
        channel="sms",
        is_granted=True,
        recorded_at=at("2024-01-05 02:00"),
    )
    Consent.objects.create(
        source="shop",
        external_id="consent-2",
        customer=customer,
        purpose="marketing",
        channel="sms",
        is_granted=False,
        recorded_at=at("2024-06-01 02:00"),
    )
    Consent.objects.create(
        source="shop",
        external_id="consent-3",
        customer=customer,
        purpose="service",
        channel="app",
        is_granted=True,
        recorded_at=at("2024-01-05 02:00"),
    )

    scarf = Product.objects.create(
        source="shop", external_id="SKU-1", name="Silk scarf", price=Decimal("199.00")
    )
    first = make_order(
        customer,
        external_id="SO-0001",
        placed_at=at("2024-02-01 04:30"),
        total="299.00",
        discount_amount=Decimal("20.00"),
        paid_at=at("2024-02-01 04:31"),
        ship_province="上海",
        ship_city="上海",
    )
    make_line(first, line_no=1, name="Silk scarf", unit_price="199.00", product=scarf)
    make_line(first, line_no=2, name="Tea set", unit_price="50.00", quantity=2)
    make_payment(
        first, method=Payment.Method.ALIPAY, amount="299.00", paid_at=at("2024-02-01 04:31")
    )
    Shipment.objects.create(
        source="shop",
        external_id="SH-0001",
        order=first,
        carrier="SF Express",
        tracking_number="SF1234567890",
        status=Shipment.Status.DELIVERED,
        shipped_at=at("2024-02-01 10:00"),
        estimated_delivery_at=at("2024-02-03 10:00"),
        delivered_at=at("2024-02-05 10:00"),
    )
    Review.objects.create(
        source="shop",
        external_id="RV-0001",
        customer=customer,
        order=first,
        product=scarf,
        rating=4,
        title="Nice scarf",
        text="Colour as pictured.",
        created_at=at("2024-02-05 03:00"),
        helpful_votes=3,
    )

    second = make_order(
        customer,
        external_id="SO-0002",
        placed_at=at("2024-03-10 08:00"),
        total="1288.50",
        status=Order.Status.RETURNED,
        store="JD",
    )
    cooker = make_line(second, line_no=1, name="Rice cooker", unit_price="1288.50")
    make_payment(
        second, method=Payment.Method.WECHAT_PAY, amount="1288.50", paid_at=at("2024-03-10 08:05")
    )
    ReturnRequest.objects.create(
        source="shop",
        external_id="RT-0001",
        order=second,
        order_line=cooker,
        kind=ReturnRequest.Kind.RETURN,
        status=ReturnRequest.Status.REFUNDED,
        reason="Damaged on arrival",
        requested_at=at("2024-03-15 02:00"),
        resolved_at=at("2024-03-18 02:00"),
        refund_amount=Decimal("1288.50"),
    )
    Ticket.objects.create(
        source="shop",
        external_id="TK-0001",
        customer=customer,
        order=second,
        channel=Ticket.Channel.PHONE,
        subject="Rice cooker arrived broken",
        status=Ticket.Status.SOLVED,
        priority=Ticket.Priority.HIGH,
        is_complaint=True,
        opened_at=at("2024-03-14 01:00"),
        resolved_at=at("2024-03-18 03:00"),
        satisfaction=4,
    )

    third = make_order(
        customer,
        external_id="SO-0003",
        placed_at=at("2024-04-20 12:00"),
        total="59.90",
        status=Order.Status.CANCELLED,
        cancelled_at=at("2024-04-20 12:30"),
    )
    make_line(third, line_no=1, name="Notebook", unit_price="59.90")

    audit_record(
        AuditEntry(
            action="update",
            entity_type="customer",
            entity_id=str(customer.pk),
            customer_id=customer.pk,
            summary="tags changed",
            changes={"tags": ["VIP", "Frequent buyer"]},
        ),
        actor_label="ops-lead",
    )

    business = make_customer(
        external_id="C1002",
        name="李华",
        kind=Customer.Kind.BUSINESS,
        phone="13900001111",
        email="hua.li@example.com",
        company_name="华光贸易有限公司",
        province="广东",
        city="深圳",
        source_channel=SourceChannel.OFFLINE,
        registered_at=at("2024-02-10 02:00"),
    )
    make_order(business, external_id="SO-0101", placed_at=at("2024-05-01 02:00"), total="5000.00")
    third_party = make_customer(
        external_id="C1003",
        name="王芳",
        province="浙江",
        city="杭州",
        source_channel=SourceChannel.THIRD_PARTY,
    )
    return CustomerFile(
        customer=customer, others=(business, third_party), orders=(first, second, third)
    )


@pytest.fixture
def customer_file(db: None) -> CustomerFile:
    return make_customer_file()


@pytest.fixture
def user_factory(db: None) -> Callable[..., User]:
    return make_user


EVENT_ROWS: list[dict[str, Any]] = [
    {
        "source": "shop",
        "customer_external_id": "C1001",
        "event_type": "browse",
        "occurred_at": at("2024-05-01 01:00"),
        "item_external_id": "SKU-1",
        "category_external_id": "CAT-1",
        "query": None,
        "session_id": "s1",
    },
    {
        "source": "shop",
        "customer_external_id": "C1001",
        "event_type": "search",
        "occurred_at": at("2024-05-01 01:05"),
        "item_external_id": None,
        "category_external_id": None,
        "query": "围巾",
        "session_id": "s1",
    },
    {
        "source": "shop",
        "customer_external_id": "C1001",
        "event_type": "add_to_cart",
        "occurred_at": at("2024-05-02 09:00"),
        "item_external_id": "SKU-1",
        "category_external_id": "CAT-1",
        "query": None,
        "session_id": "s2",
    },
    {
        "source": "shop",
        "customer_external_id": "C1002",
        "event_type": "browse",
        "occurred_at": at("2024-05-02 09:30"),
        "item_external_id": "SKU-9",
        "category_external_id": None,
        "query": None,
        "session_id": "s3",
    },
    {
        "source": "other",
        "customer_external_id": "C1001",
        "event_type": "purchase",
        "occurred_at": at("2024-05-02 10:00"),
        "item_external_id": "X-1",
        "category_external_id": None,
        "query": None,
        "session_id": "s4",
    },
]


def write_events(lake: Path, rows: list[dict[str, Any]]) -> None:
    """Write behaviour events the way the lake keeps them: ``events/date=YYYY-MM-DD/*.parquet``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema(
        [
            ("source", pa.string()),
            ("customer_external_id", pa.string()),
            ("event_type", pa.string()),
            ("occurred_at", pa.timestamp("us", tz="UTC")),
            ("item_external_id", pa.string()),
            ("category_external_id", pa.string()),
            ("query", pa.string()),
            ("session_id", pa.string()),
        ]
    )
    by_day: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_day.setdefault(row["occurred_at"].strftime("%Y-%m-%d"), []).append(row)
    for day, day_rows in by_day.items():
        folder = lake / "events" / f"date={day}"
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(day_rows, schema=schema), folder / "part-0.parquet")


@pytest.fixture
def lake(tmp_path: Path, settings: Any) -> Path:
    """An empty event lake for this test (``settings.LAKE_DIR``)."""
    path = tmp_path / "lake"
    path.mkdir()
    settings.LAKE_DIR = path
    return path


@pytest.fixture
def lake_with_events(lake: Path) -> Path:
    write_events(lake, EVENT_ROWS)
    return lake


# ---------------------------------------------------------------------- races


def race(*calls: Callable[[], Any]) -> list[Any]:
    """Run ``calls`` at once, each in its own thread and database connection (start together
    at a barrier); their results, or the errors they raised, in order."""
    import threading

    from django.db import close_old_connections, connection

    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = calls[i]()
        except Exception as error:
            results[i] = error
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a call never finished"
    return results


def require_postgresql() -> None:
    """Skip a race test on SQLite, whose writers never race."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("SQLite serialises writers: the race needs PostgreSQL's row locks")
