"""Imports of the real public exports in ../shared/data, with the exact counts they hold."""

from __future__ import annotations

import csv
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.dataset as ds
import pytest

from patron.commerce.models import Order, OrderLine, Payment, Product, Review, Shipment
from patron.customer.models import Customer
from patron.ingest.adapters.cdnow import cdnow_parts
from patron.ingest.adapters.olist import olist_parts
from patron.ingest.adapters.taobao import taobao_parts
from patron.ingest.lake import customer_events_dataset
from patron.ingest.services import ImportSummary, import_parts

from .conftest import shared_data

pytestmark = pytest.mark.django_db


def _olist(folder: Path) -> ImportSummary:
    return import_parts(label="olist", source="olist", path=str(folder), parts=olist_parts(folder))


def test_olist_4k_sample_imports_every_record_exactly(lake: Path) -> None:
    # given
    folder = shared_data("olist", "sample_4k_techbyhemant")
    with (folder / "customers.csv").open(newline="") as handle:
        people = {row["customer_unique_id"] for row in csv.DictReader(handle)}
    # when
    summary = _olist(folder)
    # then
    assert summary.status == "committed"
    assert summary.rejected == 0
    assert Customer.objects.filter(source="olist").count() == len(people) == 3998
    assert Order.objects.filter(source="olist").count() == 4000
    assert OrderLine.objects.filter(source="olist").count() == 4519
    assert Payment.objects.filter(source="olist").count() == 4161
    assert Review.objects.filter(source="olist").count() == 3986
    assert Product.objects.filter(source="olist").count() == 3132
    assert Shipment.objects.filter(source="olist").count() == 3939
    assert summary.by_kind["orders"] == {
        "read": 4000,
        "inserted": 4000,
        "updated": 0,
        "unchanged": 0,
        "rejected": 0,
    }


def test_olist_order_money_and_times_are_exact(lake: Path) -> None:
    # given
    folder = shared_data("olist", "sample_4k_techbyhemant")
    # when
    _olist(folder)
    # then: the first order of orders.csv, checked by hand against the file
    order = Order.objects.get(source="olist", external_id="bb953a084ab406da9e19dfdc06df0245")
    assert order.status == "delivered"
    assert order.currency == "BRL"
    # 2018-07-29 13:54:51 in São Paulo (UTC-3) is 16:54:51 UTC
    assert order.placed_at.isoformat() == "2018-07-29T16:54:51+00:00"
    lines = list(order.lines.values_list("unit_price", flat=True))
    assert order.total_amount == sum(lines) + order.shipping_fee


def test_olist_reimport_changes_nothing(lake: Path) -> None:
    # given
    folder = shared_data("olist", "sample_4k_techbyhemant")
    first = _olist(folder)
    # when
    again = _olist(folder)
    # then
    assert first.inserted == 27804
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 27804)


@pytest.mark.slow
def test_olist_10k_sample_imports_every_record_exactly(lake: Path) -> None:
    folder = shared_data("olist", "sample_10k_thegeshwar")
    summary = _olist(folder)
    assert summary.status == "committed"
    assert Customer.objects.filter(source="olist").count() == 9957
    assert Order.objects.filter(source="olist").count() == 10000
    assert OrderLine.objects.filter(source="olist").count() == 11513
    assert Payment.objects.filter(source="olist").count() == 10415


def test_taobao_user_behaviour_lands_in_the_lake(lake: Path) -> None:
    # given
    path = shared_data("taobao_userbehavior", "UserBehavior_head84k.csv")
    # when
    summary = import_parts(
        label="taobao", source="taobao", path=str(path), parts=taobao_parts(path)
    )
    again = import_parts(label="taobao", source="taobao", path=str(path), parts=taobao_parts(path))
    # then
    assert summary.by_kind["events"]["inserted"] == 84475
    assert Customer.objects.filter(source="taobao").count() == 815
    table = ds.dataset(lake / "events", format="parquet", partitioning="hive").to_table()
    assert table.num_rows == 84475
    types = set(table.column("event_type").to_pylist())
    assert types == {"browse", "favourite", "add_to_cart", "purchase"}
    assert (again.inserted, again.unchanged) == (0, 84475 + 815)
    assert not (lake / "_staging").exists() or not any((lake / "_staging").iterdir())


def test_cdnow_sample_layout(lake: Path) -> None:
    path = shared_data("cdnow", "CDNOW_sample.txt")
    summary = import_parts(label="cdnow", source="cdnow", path=str(path), parts=cdnow_parts(path))
    assert summary.status == "committed"
    assert Customer.objects.filter(source="cdnow").count() == 2357
    assert Order.objects.filter(source="cdnow").count() == 6919


@pytest.mark.slow
def test_cdnow_master_layout(lake: Path) -> None:
    path = shared_data("cdnow", "CDNOW_master.txt")
    summary = import_parts(label="cdnow", source="cdnow", path=str(path), parts=cdnow_parts(path))
    assert summary.status == "committed"
    assert Customer.objects.filter(source="cdnow").count() == 23570
    assert Order.objects.filter(source="cdnow").count() == 69659


def test_corrupted_olist_export_is_refused_whole(lake: Path, tmp_path: Path) -> None:
    # given: one purchase timestamp on line 100 of orders.csv made impossible
    import shutil

    folder = tmp_path / "bad"
    shutil.copytree(shared_data("olist", "sample_4k_techbyhemant"), folder)
    with (folder / "orders.csv").open(newline="") as handle:
        rows = list(csv.reader(handle))
    column = rows[0].index("order_purchase_timestamp")
    rows[99][column] = "2017-13-45 99:99:99"
    with (folder / "orders.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    # when
    summary = _olist(folder)
    # then
    assert summary.status == "rejected"
    assert summary.inserted == 0
    assert Order.objects.count() == Customer.objects.count() == 0
    reasons = [(e["file"], e["line"], e["field"], e["value"]) for e in summary.errors]
    assert ("orders.csv", 100, "order_purchase_timestamp", "2017-13-45 99:99:99") in reasons


def test_customer_index_holds_exactly_each_customers_events(lake: Path) -> None:
    # given
    path = shared_data("taobao_userbehavior", "UserBehavior_head84k.csv")
    (lake / "_staging" / "999999").mkdir(parents=True)  # left behind by a killed batch
    # when
    import_parts(label="taobao", source="taobao", path=str(path), parts=taobao_parts(path))
    # then
    everything = ds.dataset(lake / "events", format="parquet", partitioning="hive").to_table()
    for user in ("1", "100", "1000001"):
        expected = everything.filter(
            pc.equal(everything.column("customer_external_id"), user)
        ).num_rows
        dataset = customer_events_dataset(lake, source="taobao", customer_external_id=user)
        found = (
            0
            if dataset is None
            else dataset.to_table(filter=ds.field("customer_external_id") == user).num_rows
        )
        assert found == expected
    assert expected > 0
    index_rows = ds.dataset(
        lake / "events_by_customer", format="parquet", partitioning="hive"
    ).count_rows()
    assert index_rows == everything.num_rows == 84475
    assert not (lake / "_staging" / "999999").exists()
