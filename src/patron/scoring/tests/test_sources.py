"""The pipeline's sources read from the database through ADBC and from the event lake."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from patron.commerce.models import Order, Payment, ReturnRequest, Review
from patron.conftest import (
    CustomerFile,
    at,
    make_customer,
    make_customer_file,
    make_order,
    make_payment,
)
from patron.customer.models import Customer
from patron.intelligence.features import customer_features
from patron.intelligence.sources import SCHEMAS
from patron.scoring import extract
from patron.scoring.sources import load_sources, read_tables
from patron.service.models import Ticket

# ADBC reads through its own connection: the data must be committed.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True, params=["in process", "child process"])
def sqlite_reader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test twice on SQLite: read in this process, and by the child process that
    reads large databases (``extract.fetch_arrow_many``)."""
    from django.db import connection

    if request.param == "child process":
        if connection.vendor != "sqlite":
            pytest.skip("PostgreSQL has one way to read")
        monkeypatch.setattr(extract, "CHILD_MIN_ROWS", 0)
    return str(request.param)


def _rows(table: pa.Table, key: str) -> dict[int, dict[str, Any]]:
    return {row[key]: row for row in table.to_pylist()}


def test_every_table_has_the_contracts_columns_and_types(lake: Path) -> None:
    # given
    make_customer_file()
    # when
    sources = load_sources()
    # then
    for name, schema in SCHEMAS.items():
        assert sources.table(name).schema == schema, name
    assert (sources.customers.num_rows, sources.orders.num_rows) == (3, 4)
    assert (sources.payments.num_rows, sources.returns.num_rows) == (2, 1)
    assert (sources.reviews.num_rows, sources.tickets.num_rows) == (1, 1)
    assert sources.events is None


def test_customers_and_orders_keep_their_values(lake: Path) -> None:
    # given
    file = make_customer_file()
    # when
    sources = load_sources()
    # then
    customers = _rows(sources.customers, "customer_id")
    assert customers[file.customer.pk] == {
        "customer_id": file.customer.pk,
        "source": "shop",
        "external_id": "C1001",
        "kind": "individual",
        "registered_at": at("2024-01-05 02:00"),
        "province": "上海",
        "registration_channel": "WeChat mini program",
        "company_size": "",
    }
    assert customers[file.others[1].pk]["registered_at"] is None
    orders = _rows(sources.orders, "order_id")
    first, _, third = file.orders
    assert orders[first.pk] == {
        "order_id": first.pk,
        "customer_id": file.customer.pk,
        "status": "completed",
        "placed_at": at("2024-02-01 04:30"),
        "paid_at": at("2024-02-01 04:31"),
        "shipped_at": None,
        "delivered_at": None,
        "cancelled_at": None,
        "total_amount": 299.0,
        "discount_amount": 20.0,
        "coupon_code": "",
        "currency": "CNY",
    }
    assert (orders[third.pk]["status"], orders[third.pk]["cancelled_at"]) == (
        "cancelled",
        at("2024-04-20 12:30"),
    )
    assert sorted(row["total_amount"] for row in orders.values()) == [59.9, 299.0, 1288.5, 5000.0]


def test_payments_and_returns_take_their_customer_and_times_from_the_order(lake: Path) -> None:
    # given: ids of payments and orders that differ, a payment without a time, a delivered order
    file = make_customer_file()
    other = make_customer(external_id="C2001")
    order = make_order(
        other,
        external_id="SO-9",
        placed_at=at("2024-06-01 10:00"),
        total="80.00",
        delivered_at=at("2024-06-03 10:00"),
    )
    payment = make_payment(
        order,
        method=Payment.Method.CASH_ON_DELIVERY,
        amount="80.00",
        paid_at=None,
        status="refused",
    )
    returned = ReturnRequest.objects.create(
        source="shop",
        external_id="RT-9",
        order=order,
        kind=ReturnRequest.Kind.EXCHANGE,
        status=ReturnRequest.Status.REQUESTED,
        reason="尺码偏小，换大一码",
        requested_at=at("2024-06-04 10:00"),
        refund_amount=Decimal("0.00"),
    )
    # when
    sources = load_sources()
    # then
    payments = _rows(sources.payments, "payment_id")
    assert set(payments) == set(Payment.objects.values_list("pk", flat=True))
    assert payments[payment.pk] == {
        "payment_id": payment.pk,
        "order_id": order.pk,
        "customer_id": other.pk,
        "method": "cod",
        "status": "refused",  # the payment's, not the order's "completed"
        "amount": 80.0,
        "at": at("2024-06-01 10:00"),  # no paid_at: the order's placed_at
    }
    first = file.orders[0]
    assert [row["at"] for row in payments.values() if row["order_id"] == first.pk] == [
        at("2024-02-01 04:31")
    ]
    returns = _rows(sources.returns, "return_id")
    assert returns[returned.pk] == {
        "return_id": returned.pk,
        "order_id": order.pk,
        "customer_id": other.pk,
        "kind": "exchange",
        "status": "requested",  # the request's, not the order's
        "reason": "尺码偏小，换大一码",
        "requested_at": at("2024-06-04 10:00"),
        "refund_amount": 0.0,
        "delivered_at": at("2024-06-03 10:00"),
    }
    earlier = ReturnRequest.objects.get(external_id="RT-0001")
    assert returns[earlier.pk]["delivered_at"] is None
    assert returns[earlier.pk]["customer_id"] == file.customer.pk


def test_reviews_join_title_and_text_and_tickets_keep_their_flags(lake: Path) -> None:
    # given
    file = make_customer_file()
    untitled = Review.objects.create(
        source="shop",
        external_id="RV-2",
        customer=file.others[0],
        rating=1,
        text="差评！",
        created_at=at("2024-05-02 10:00"),
    )
    # when
    sources = load_sources()
    # then
    reviews = _rows(sources.reviews, "review_id")
    first = Review.objects.get(external_id="RV-0001")
    assert reviews[first.pk] == {
        "review_id": first.pk,
        "customer_id": file.customer.pk,
        "order_id": file.orders[0].pk,
        "product_id": first.product_id,
        "rating": 4,
        "text": "Nice scarf Colour as pictured.",
        "created_at": at("2024-02-05 03:00"),
        "helpful_votes": 3,
    }
    assert (reviews[untitled.pk]["text"], reviews[untitled.pk]["order_id"]) == ("差评！", None)
    ticket = Ticket.objects.get()
    assert sources.tickets.to_pylist() == [
        {
            "ticket_id": ticket.pk,
            "customer_id": file.customer.pk,
            "channel": "phone",
            "category": "",
            "is_complaint": True,
            "opened_at": at("2024-03-14 01:00"),
            "first_response_at": None,
            "resolved_at": at("2024-03-18 03:00"),
            "satisfaction": 4,
        }
    ]


def test_a_long_run_of_missing_times_before_the_first_one_is_read(lake: Path) -> None:
    # given: SQLite's ADBC driver types a column by its first rows; 1,500 orders without a
    # delivery come first
    customer = make_customer(external_id="C3001")
    Order.objects.bulk_create(
        Order(
            source="shop",
            external_id=f"SO-{n}",
            customer=customer,
            status=Order.Status.PAID,
            placed_at=at("2024-01-01 10:00"),
            total_amount=Decimal("1.00"),
        )
        for n in range(1500)
    )
    make_order(
        customer,
        external_id="SO-last",
        placed_at=at("2024-01-02 10:00"),
        total="2.00",
        delivered_at=datetime(2024, 1, 3, 10, 0, 0, 250_000, tzinfo=UTC),
    )
    # when
    orders = load_sources().orders
    # then
    delivered = [value for value in orders.column("delivered_at").to_pylist() if value]
    assert delivered == [datetime(2024, 1, 3, 10, 0, 0, 250_000, tzinfo=UTC)]
    assert orders.column("delivered_at").null_count == 1500


def test_events_are_the_lakes_parquet_files_when_there_are_any(lake_with_events: Path) -> None:
    # when
    sources = load_sources()
    # then
    assert sources.events == str(lake_with_events / "events" / "date=*" / "*.parquet")
    files = sorted(lake_with_events.glob("events/date=*/*.parquet"))
    assert ds.dataset(files, format="parquet").count_rows() == 5


def test_the_sources_feed_the_features(lake_with_events: Path) -> None:
    # given
    file: CustomerFile = make_customer_file()
    # when
    features = customer_features(load_sources(), datetime(2024, 6, 1, tzinfo=UTC))
    # then: SO-0001 and SO-0002 (returned, known only by its status) were bought; SO-0003 not
    row = {r["customer_id"]: r for r in features.to_pylist()}[file.customer.pk]
    assert (row["orders"], row["spend"], row["orders_placed"], row["cancel_rate"]) == (
        2,
        1587.5,
        3,
        1 / 3,
    )
    assert (row["reviews"], row["complaints"], row["mean_csat"], row["refund_share"]) == (
        1,
        1,
        4.0,
        1288.5 / 1587.5,
    )
    # browsing on 1 May is more than 30 days back; the "other" source's C1001 is someone else
    assert (row["views_30d"], row["carts_30d"], row["events_90d"]) == (0, 1, 3)
    assert features.num_rows == Customer.objects.count()


def test_reading_the_sources_leaves_other_connections_seeing_every_write(lake: Path) -> None:
    """Regression: the ADBC SQLite driver (its own copy of SQLite) deleted the -wal file under
    Django's connection when it closed, so later writes were invisible to everyone else."""
    import sqlite3

    from django.db import connection

    # given
    make_customer_file()
    load_sources()
    # when: a write after the read
    make_customer(external_id="C-after", name="赵六")
    # then: another connection (another process, in production) sees it
    if connection.vendor == "sqlite":
        other = sqlite3.connect(str(connection.settings_dict["NAME"]))
        try:
            seen = other.execute("SELECT count(*) FROM customer_customer").fetchone()[0]
        finally:
            other.close()
    else:
        seen = load_sources().customers.num_rows
    assert seen == Customer.objects.count()


def test_the_child_process_reads_what_is_committed_and_says_what_failed(
    lake: Path, sqlite_reader: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.db import connection, transaction

    if connection.vendor != "sqlite" or sqlite_reader != "child process":
        pytest.skip("about the SQLite child process")
    # given
    make_customer_file()
    spawned: list[int] = []
    real = extract._sqlite_child

    def counted(queries: list[str]) -> list[pa.Table]:
        spawned.append(len(queries))
        return real(queries)

    monkeypatch.setattr(extract, "_sqlite_child", counted)
    # when / then: a committed shop is read by the child, all seven tables at once
    assert read_tables()["customers"].num_rows == 3
    assert spawned == [7]
    # when / then: inside a transaction this process reads itself, and sees its own writes
    with transaction.atomic():
        make_customer(external_id="C-uncommitted")
        assert read_tables("customers")["customers"].num_rows == 4
    assert spawned == [7]
    # when / then: a failing query is named, with SQLite's own words
    with pytest.raises(RuntimeError, match=r"SELECT nope FROM nowhere.*no such table: nowhere"):
        extract._sqlite_child(["SELECT 1", "SELECT nope FROM nowhere"])


def test_a_large_extract_is_split_over_two_children_and_comes_back_in_order(
    lake: Path, sqlite_reader: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.db import connection

    if connection.vendor != "sqlite" or sqlite_reader != "child process":
        pytest.skip("about the SQLite child process")
    # given: two children, each counted
    monkeypatch.setattr(extract, "CHILD_PROCESSES", 2)
    children: list[list[str]] = []
    real = extract._one_child

    def counted(database: str, queries: list[str]) -> list[pa.Table]:
        children.append(queries)
        return real(database, queries)

    monkeypatch.setattr(extract, "_one_child", counted)
    queries = [f"SELECT {n} AS n" for n in range(5)]
    # when
    tables = extract._sqlite_child(queries)
    # then: every other query to each child, the results in the order asked
    assert sorted(children) == [queries[0::2], queries[1::2]]
    assert [table.column("n")[0].as_py() for table in tables] == [0, 1, 2, 3, 4]
    # and a failure in either child names its query
    with pytest.raises(RuntimeError, match=r"SELECT nope FROM nowhere.*no such table"):
        extract._sqlite_child(["SELECT 1", "SELECT nope FROM nowhere", "SELECT 3"])


def test_rows_take_their_orders_columns_and_rows_without_an_order_are_dropped(
    sqlite_reader: str,
) -> None:
    from patron.scoring.sources import _join_orders

    if sqlite_reader != "in process":
        pytest.skip("no database involved")
    # given: orders 10 and 11; payments of 11, of a missing order 99, and of 10
    orders = pa.table({"order_id": [10, 11], "customer_id": [1, 2], "placed_at": [5, 6]})
    payments = pa.table({"payment_id": [1, 2, 3], "order_id": [11, 99, 10]})
    # when
    joined = _join_orders(payments, orders, {"customer_id": "customer_id", "at": "placed_at"})
    # then
    assert joined.to_pydict() == {
        "payment_id": [1, 3],
        "order_id": [11, 10],
        "customer_id": [2, 1],
        "at": [6, 5],
    }


def test_a_shop_with_orders_only_reads_empty_payments_and_returns(lake: Path) -> None:
    # given: orders imported, nothing else (the joins to the orders have nothing to join)
    make_order(make_customer(), external_id="SO-1", placed_at=at("2024-01-01 10:00"), total="2")
    # when
    sources = load_sources()
    # then
    assert sources.orders.num_rows == 1
    for name in ("payments", "returns", "reviews", "tickets"):
        assert sources.table(name).num_rows == 0, name
        assert sources.table(name).schema == SCHEMAS[name], name
