"""Generic file imports: formats, mapping, validation, all-or-nothing, idempotency, updates."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.db import connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from patron.audit.models import AuditEvent
from patron.audit.services import audit_verify_chain
from patron.commerce.models import Order
from patron.customer.models import Consent, Customer
from patron.errors import ValidationFailed
from patron.ingest.mapping import mapping_load
from patron.ingest.models import ImportBatch
from patron.ingest.services import import_file

from .conftest import write_csv

pytestmark = pytest.mark.django_db

CUSTOMER_HEADER = ["external_id", "name", "phone", "province", "city", "registered_at"]


def _customers(
    tmp_path: Path, rows: Sequence[Sequence[object]], name: str = "customers.csv"
) -> Path:
    return write_csv(tmp_path / name, CUSTOMER_HEADER, rows)


def test_customers_csv_is_imported_with_utc_times_and_encrypted_phone(
    lake: Path, tmp_path: Path
) -> None:
    # given
    path = _customers(
        tmp_path, [["C1", "张伟", "138 0013 8000", "广东", "深圳", "2024-03-01 08:00:00"]]
    )
    # when
    summary = import_file(kind="customers", path=path)
    # then
    customer = Customer.objects.get(source="shop", external_id="C1")
    assert (summary.inserted, summary.rejected) == (1, 0)
    assert customer.phone == "138 0013 8000"
    assert customer.registered_at is not None
    assert customer.registered_at.isoformat() == "2024-03-01T00:00:00+00:00"  # 08:00 Shanghai
    with connection.cursor() as cursor:
        cursor.execute("SELECT phone FROM customer_customer WHERE id = %s", [customer.pk])
        (stored,) = cursor.fetchone()
    assert stored.startswith("v1:")
    assert "0013" not in stored


def test_a_batch_with_one_bad_row_writes_nothing_and_names_it(lake: Path, tmp_path: Path) -> None:
    # given
    path = _customers(
        tmp_path,
        [
            ["C1", "张伟", "13800138000", "广东", "深圳", "2024-03-01"],
            ["C2", "李娜", "13900139000", "浙江", "杭州", "2024-02-30"],
            ["C3", "", "13700137000", "江苏", "南京", "2024-03-02"],
        ],
    )
    # when
    summary = import_file(kind="customers", path=path)
    # then
    assert summary.status == "rejected"
    assert Customer.objects.count() == 0
    assert summary.rejected == 2
    assert [(e["line"], e["field"], e["value"]) for e in summary.errors] == [
        (3, "registered_at", "2024-02-30"),
        (4, "name", ""),
    ]
    assert summary.errors[0]["external_id"] == "C2"
    assert ImportBatch.objects.get(pk=summary.batch).status == "rejected"


def test_skip_invalid_loads_the_rest_and_writes_a_rejects_file(lake: Path, tmp_path: Path) -> None:
    path = _customers(
        tmp_path, [["C1", "张伟", "", "", "", ""], ["C2", "李娜", "", "", "", "yesterday"]]
    )
    summary = import_file(kind="customers", path=path, skip_invalid=True)
    assert summary.status == "committed"
    assert (summary.inserted, summary.rejected) == (1, 1)
    rejects = Path(summary.rejects_file).read_text(encoding="utf-8").splitlines()
    assert rejects[0] == "file,line,field,value,reason,external_id"
    assert rejects[1].startswith("customers.csv,3,registered_at,yesterday,not a valid date-time")
    assert not summary.ok


def test_orders_of_unknown_customers_are_refused_with_a_reason(lake: Path, tmp_path: Path) -> None:
    # given
    import_file(kind="customers", path=_customers(tmp_path, [["C1", "张伟", "", "", "", ""]]))
    orders = write_csv(
        tmp_path / "orders.csv",
        ["external_id", "customer_external_id", "status", "placed_at", "total_amount"],
        [
            ["O1", "C1", "paid", "2024-05-01 10:00", "99.90"],
            ["O2", "C9", "paid", "2024-05-01 11:00", "10"],
        ],
    )
    # when
    summary = import_file(kind="orders", path=orders)
    # then
    assert summary.status == "rejected"
    assert Order.objects.count() == 0
    assert summary.errors == [
        {
            "file": "orders.csv",
            "line": 3,
            "field": "customer_external_id",
            "value": "C9",
            "reason": "unknown customer 'C9' in source 'shop'",
            "external_id": "O2",
        }
    ]


def test_duplicates_in_a_file_identical_are_skipped_conflicting_are_errors(
    lake: Path, tmp_path: Path
) -> None:
    same = _customers(
        tmp_path, [["C1", "张伟", "", "", "", ""], ["C1", "张伟", "", "", "", ""]], "same.csv"
    )
    clash = _customers(
        tmp_path, [["C1", "张伟", "", "", "", ""], ["C1", "王芳", "", "", "", ""]], "clash.csv"
    )
    first = import_file(kind="customers", path=same)
    second = import_file(kind="customers", path=clash, source="other")
    assert (first.inserted, first.duplicates) == (1, 1)
    assert second.status == "rejected"
    assert second.errors[0]["reason"] == "duplicate of line 2 with different content"


def test_a_changed_record_is_updated_and_the_change_audited_without_plain_pii(
    lake: Path, tmp_path: Path
) -> None:
    # given
    import_file(
        kind="customers",
        path=_customers(tmp_path, [["C1", "张伟", "13800138000", "广东", "深圳", ""]]),
    )
    # when
    changed = _customers(
        tmp_path, [["C1", "张伟", "13900139000", "广东", "广州", ""]], "changed.csv"
    )
    summary = import_file(kind="customers", path=changed)
    # then
    customer = Customer.objects.get(external_id="C1")
    assert (summary.inserted, summary.updated, summary.unchanged) == (0, 1, 0)
    assert (customer.phone, customer.city) == ("13900139000", "广州")
    entry = AuditEvent.objects.filter(action="update", entity_type="customer.Customer").get()
    assert entry.changes == {"phone": ["138****8000", "139****9000"], "city": ["深圳", "广州"]}
    assert entry.customer_id == customer.pk
    assert audit_verify_chain() is None


def test_mapping_file_maps_columns_values_defaults_and_formats(lake: Path, tmp_path: Path) -> None:
    # given: a shop export with its own column names, statuses and time format
    import_file(
        kind="customers",
        path=_customers(tmp_path, [["U7", "赵敏", "", "", "", ""]]),
        source="myshop",
    )
    export = write_csv(
        tmp_path / "export.csv",
        ["订单号", "会员", "状态", "下单时间", "实付"],
        [["A-1", "U7", "交易成功", "2024/06/18 20:15", "¥1,299.00"]],
    )
    mapping_path = tmp_path / "map.toml"
    mapping_path.write_text(
        'source = "myshop"\n[columns]\nexternal_id = "订单号"\ncustomer_external_id = "会员"\nstatus = "状态"\n'
        'placed_at = "下单时间"\ntotal_amount = "实付"\n[values.status]\n"交易成功" = "completed"\n'
        '[defaults]\ncurrency = "CNY"\nstore = "天猫旗舰店"\n[formats]\nplaced_at = "%Y/%m/%d %H:%M"\n',
        encoding="utf-8",
    )
    # when
    summary = import_file(kind="orders", path=export, mapping=mapping_load(mapping_path))
    # then
    order = Order.objects.get(source="myshop", external_id="A-1")
    assert summary.inserted == 1
    assert (order.status, order.total_amount, order.store) == (
        "completed",
        Decimal("1299.00"),
        "天猫旗舰店",
    )
    assert order.placed_at.isoformat() == "2024-06-18T12:15:00+00:00"


def test_missing_required_column_is_refused_before_reading(lake: Path, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "orders.csv", ["external_id", "customer_external_id"], [["O1", "C1"]]
    )
    with pytest.raises(ValidationFailed, match="missing required column"):
        import_file(kind="orders", path=path)


def test_parquet_and_jsonl_give_the_same_result_as_csv(lake: Path, tmp_path: Path) -> None:
    rows = [
        {"external_id": "C1", "name": "张伟", "birthday": "1990-05-01"},
        {"external_id": "C2", "name": "李娜", "birthday": "1985-12-31"},
    ]
    jsonl = tmp_path / "c.jsonl"
    jsonl.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    parquet = tmp_path / "c.parquet"
    pq.write_table(pa.Table.from_pylist(rows), parquet)
    first = import_file(kind="customers", path=jsonl)
    second = import_file(kind="customers", path=parquet)
    assert (first.inserted, second.unchanged) == (2, 2)
    assert str(Customer.objects.get(external_id="C2").birthday) == "1985-12-31"


names = st.text(
    alphabet=st.characters(categories=["Lo", "Lu", "Ll", "Nd"]), min_size=1, max_size=12
)
rows_strategy = st.lists(
    st.tuples(
        st.integers(min_value=1, max_value=60), names, st.integers(min_value=0, max_value=10**6)
    ),
    min_size=1,
    max_size=25,
    unique_by=lambda r: r[0],
)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=rows_strategy, bad_index=st.integers(min_value=0, max_value=24))
def test_import_twice_equals_import_once_and_one_bad_row_writes_nothing(
    lake: Path, tmp_path: Path, rows: list[tuple[int, str, int]], bad_index: int
) -> None:
    Customer.objects.all().delete()
    good = [[f"C{i}", name, "", "", "", ""] for i, name, _ in rows]
    path = _customers(tmp_path, good)
    once = import_file(kind="customers", path=path)
    state = sorted(Customer.objects.values_list("external_id", "name", "row_hash"))
    twice = import_file(kind="customers", path=path)
    assert once.inserted == len(rows)
    assert (twice.inserted, twice.updated, twice.unchanged) == (0, 0, len(rows))
    assert sorted(Customer.objects.values_list("external_id", "name", "row_hash")) == state
    # a batch of new customers with one bad row changes nothing at all
    bad = [[f"N{i}", name, "", "", "", f"2024-01-{day % 28 + 1:02d}"] for i, name, day in rows]
    bad[bad_index % len(bad)][5] = "2024-13-01"
    refused = import_file(kind="customers", path=_customers(tmp_path, bad, "bad.csv"))
    assert refused.status == "rejected"
    assert sorted(Customer.objects.values_list("external_id", "name", "row_hash")) == state


def test_times_with_offsets_and_fractions_are_stored_exactly_and_filter_right(
    lake: Path, tmp_path: Path
) -> None:
    # given
    import_file(kind="customers", path=_customers(tmp_path, [["C1", "张伟", "", "", "", ""]]))
    header = ["external_id", "customer_external_id", "status", "placed_at", "total_amount"]
    rows = [
        ["O1", "C1", "paid", "2024-03-01T14:05:00.123456+08:00", "1"],
        ["O2", "C1", "paid", "2024-03-01 14:05", "1"],
        ["O3", "C1", "paid", "2024-03-01T06:05:00Z", "1"],
    ]
    # when
    summary = import_file(kind="orders", path=write_csv(tmp_path / "orders.csv", header, rows))
    # then
    placed = dict(Order.objects.values_list("external_id", "placed_at"))
    assert summary.inserted == 3
    assert placed["O1"] == datetime(2024, 3, 1, 6, 5, 0, 123456, tzinfo=UTC)
    assert placed["O2"] == placed["O3"] == datetime(2024, 3, 1, 6, 5, tzinfo=UTC)
    cutoff = datetime(2024, 3, 1, 6, 5, tzinfo=UTC)
    assert sorted(
        Order.objects.filter(placed_at__lte=cutoff).values_list("external_id", flat=True)
    ) == ["O2", "O3"]


def test_multi_line_cells_keep_line_numbers_and_ragged_rows_are_named(
    lake: Path, tmp_path: Path
) -> None:
    # given: a quoted cell spanning two lines, then a bad birthday on physical line 4
    path = tmp_path / "customers.csv"
    path.write_text(
        'external_id,name,birthday\nC1,"张\n伟",1990-01-01\nC2,李娜,1990-02-30\n', encoding="utf-8"
    )
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("external_id,name\nC1,张伟\nC2,李娜,多余\n", encoding="utf-8")
    # when
    summary = import_file(kind="customers", path=path)
    refused = import_file(kind="customers", path=ragged)
    # then
    assert [(e["line"], e["field"], e["value"]) for e in summary.errors] == [
        (4, "birthday", "1990-02-30")
    ]
    assert refused.status == "rejected"
    assert refused.errors[0]["line"] == 3
    assert refused.errors[0]["reason"] == "expected 2 columns, found 3"
    assert Customer.objects.count() == 0


def test_consents_are_keyed_by_who_what_channel_and_when(lake: Path, tmp_path: Path) -> None:
    # given
    import_file(kind="customers", path=_customers(tmp_path, [["C1", "张伟", "", "", "", ""]]))
    header = ["customer_external_id", "purpose", "channel", "is_granted", "recorded_at", "evidence"]
    rows = [
        ["C1", "marketing", "sms", "true", "2024-01-05 10:00", "注册时勾选"],
        ["C1", "marketing", "sms", "false", "2024-06-01 10:00", "短信回复TD"],
        ["C1", "marketing", "fax", "true", "2024-06-02 10:00", ""],
    ]
    path = write_csv(tmp_path / "consents.csv", header, rows)
    # when
    refused = import_file(kind="consents", path=path)
    loaded = import_file(kind="consents", path=write_csv(tmp_path / "ok.csv", header, rows[:2]))
    again = import_file(kind="consents", path=write_csv(tmp_path / "ok.csv", header, rows[:2]))
    # then
    assert refused.status == "rejected"
    assert refused.errors[0]["field"] == "channel"
    assert loaded.inserted == 2
    assert (again.inserted, again.unchanged) == (0, 2)
    latest = Consent.objects.filter(customer__external_id="C1").order_by("-recorded_at").first()
    assert latest is not None
    assert (latest.is_granted, latest.evidence, latest.external_id) == (
        False,
        "短信回复TD",
        "C1:marketing:sms:2024-06-01 02:00:00.000000",
    )
