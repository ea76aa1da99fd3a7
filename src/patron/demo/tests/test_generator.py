"""Tests of the demo-merchant generator (pure Python: no database, no Django settings)."""

from __future__ import annotations

import csv
import json
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from patron.demo import STEPS, DemoManifest, generate_demo
from patron.demo.geo import DISTRICTS
from patron.demo.output import HEADERS, KINDS
from patron.demo.params import (
    BGNBD_A,
    BGNBD_ALPHA,
    BGNBD_B,
    BGNBD_R,
    PROBLEM_KINDS,
    WEEK,
    bgnbd_expected_repeats,
    hyp2f1,
)
from patron.demo.people import id_check_digit, make_id_number
from patron.demo.timing import simulate_repeat_purchases

DOCS = Path(__file__).resolve().parents[4] / "docs" / "import-formats.md"
SMALL = 300
TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+08:00$")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
MONEY_RE = re.compile(r"^\d+\.\d{2}$")
PHONE_RE = re.compile(r"^1[3-9]\d{9}$")
TIME_COLUMNS = {
    "registered_at",
    "placed_at",
    "paid_at",
    "shipped_at",
    "delivered_at",
    "estimated_delivery_at",
    "cancelled_at",
    "requested_at",
    "resolved_at",
    "created_at",
    "answered_at",
    "opened_at",
    "first_response_at",
}
MONEY_COLUMNS = {
    "price",
    "total_amount",
    "discount_amount",
    "shipping_fee",
    "unit_price",
    "amount",
    "refund_amount",
}


# --- helpers ----------------------------------------------------------------------------------
def _contract() -> dict[str, tuple[list[str], set[str], dict[str, set[str]]]]:
    """Parse docs/import-formats.md: kind -> (columns, required columns, allowed values)."""
    out: dict[str, tuple[list[str], set[str], dict[str, set[str]]]] = {}
    for line in DOCS.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^\| `([a-z-]+)` \| (.+) \|$", line)
        if not m:
            continue
        names: list[str] = []
        required: set[str] = set()
        allowed: dict[str, set[str]] = {}
        for part in re.split(r",\s*(?![^()]*\))", m.group(2)):
            cm = re.match(r"^\s*([a-z_]+)(\*?)\s*(?:\((.*)\))?\s*$", part)
            assert cm, part
            name, star, note = cm.groups()
            names.append(name)
            if star:
                required.add(name)
            values = re.findall(r"`([^`]+)`", note or "")
            if values and "/" in (note or ""):
                allowed[name] = set(values)
            elif note and "true/false" in note:
                allowed[name] = {"true", "false"}
        out[m.group(1)] = (names, required, allowed)
    return out


def _rows(manifest: DemoManifest, kind: str) -> list[dict[str, str]]:
    with manifest.files[kind].open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def _files(path: Path) -> Iterator[Path]:
    return iter(sorted(p for p in path.iterdir() if p.is_file()))


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoManifest:
    calls: list[tuple[str, int, int]] = []
    manifest = generate_demo(
        out_dir=tmp_path_factory.mktemp("demo-a"),
        customers=SMALL,
        progress=lambda s, d, t: calls.append((s, d, t)),
    )
    demo_progress.extend(calls)
    return manifest


demo_progress: list[tuple[str, int, int]] = []


@pytest.fixture(scope="module")
def tables(demo: DemoManifest) -> dict[str, list[dict[str, str]]]:
    return {kind: _rows(demo, kind) for kind in KINDS if kind != "events"}


@pytest.fixture(scope="module")
def events(demo: DemoManifest) -> pa.Table:
    return pq.read_table(demo.files["events"])


@pytest.fixture(scope="module")
def larger(tmp_path_factory: pytest.TempPathFactory) -> DemoManifest:
    """A bigger sample for statistical checks."""
    return generate_demo(out_dir=tmp_path_factory.mktemp("demo-large"), customers=1500, seed=11)


# --- determinism and the manifest ---------------------------------------------------------------
def test_same_seed_gives_byte_identical_files(demo: DemoManifest, tmp_path: Path) -> None:
    again = generate_demo(out_dir=tmp_path / "b", customers=SMALL)
    first = [(p.name, p.read_bytes()) for p in _files(demo.out_dir)]
    second = [(p.name, p.read_bytes()) for p in _files(again.out_dir)]
    assert [n for n, _ in first] == [n for n, _ in second]
    for (name, a), (_, b) in zip(first, second, strict=True):
        assert a == b, f"{name} differs between two runs with the same seed"
    assert again.counts == demo.counts and again.problem_customers == demo.problem_customers


def test_other_seed_gives_other_data(demo: DemoManifest, tmp_path: Path) -> None:
    other = generate_demo(out_dir=tmp_path / "c", customers=SMALL, seed=8)
    for kind in ("customers", "orders", "order-lines", "events"):
        assert other.files[kind].read_bytes() != demo.files[kind].read_bytes(), kind


def test_manifest(demo: DemoManifest) -> None:
    assert set(demo.files) == {
        "categories",
        "products",
        "customers",
        "consents",
        "orders",
        "order-lines",
        "payments",
        "returns",
        "reviews",
        "shipments",
        "tickets",
        "events",
    }
    assert set(demo.counts) == set(demo.files)
    assert demo.files["events"].name == "events.parquet"
    for kind, path in demo.files.items():
        assert path.exists() and path.parent == demo.out_dir
        if kind != "events":
            assert path.suffix == ".csv"
            assert demo.counts[kind] == len(_rows(demo, kind))
    assert demo.counts["events"] == pq.read_metadata(demo.files["events"]).num_rows
    assert demo.counts["customers"] == SMALL
    assert demo.seed == 7
    assert demo.as_of == datetime(2026, 10, 31, 15, 59, 59, tzinfo=UTC)
    offset = demo.as_of.utcoffset()
    assert offset is not None and offset.total_seconds() == 0
    assert all(demo.counts[k] > 0 for k in demo.counts)


def test_progress_reports_every_step(demo: DemoManifest) -> None:
    assert demo_progress, "the module fixture records progress"
    assert [s for s in STEPS] == list(dict.fromkeys(s for s, _, _ in demo_progress))
    for step in STEPS:
        last = [c for c in demo_progress if c[0] == step][-1]
        assert last[1] == last[2] and last[2] > 0
        assert all(0 <= d <= t for s, d, t in demo_progress if s == step)


def test_explicit_as_of_and_years(tmp_path: Path) -> None:
    as_of = datetime(2025, 6, 30, 12, 0, tzinfo=UTC)
    m = generate_demo(out_dir=tmp_path, customers=60, years=1.0, as_of=as_of, seed=3)
    assert m.as_of == as_of
    placed = [_ts(r["placed_at"]) for r in _rows(m, "orders")]
    assert placed and max(placed) <= as_of.timestamp()
    assert min(placed) >= as_of.timestamp() - 366 * 86400


# --- the contract ---------------------------------------------------------------------------------
def test_headers_match_the_contract_exactly(demo: DemoManifest) -> None:
    contract = _contract()
    assert set(contract) == set(KINDS)
    for kind in KINDS:
        names = contract[kind][0]
        assert list(HEADERS[kind]) == names, kind
        if kind == "events":
            assert pq.read_schema(demo.files[kind]).names == names
        else:
            with demo.files[kind].open(encoding="utf-8", newline="") as handle:
                assert next(csv.reader(handle)) == names, kind


def test_values_follow_the_contract(tables: dict[str, list[dict[str, str]]]) -> None:
    contract = _contract()
    for kind, rows in tables.items():
        _, required, allowed = contract[kind]
        for row in rows:
            for col in required:
                assert row[col] != "", (kind, col, row)
            for col, values in allowed.items():
                assert row[col] == "" or row[col] in values, (kind, col, row[col])
            for col, value in row.items():
                if not value:
                    continue
                if col in TIME_COLUMNS:
                    assert TIME_RE.match(value), (kind, col, value)
                elif col in MONEY_COLUMNS:
                    assert MONEY_RE.match(value), (kind, col, value)
                elif col == "birthday":
                    assert DATE_RE.match(value)
                elif col == "currency":
                    assert value == "CNY"
                elif col == "phone":
                    assert PHONE_RE.match(value), value
                elif col in ("rating", "satisfaction"):
                    assert 1 <= int(value) <= 5


def test_events_parquet_types(events: pa.Table) -> None:
    schema = events.schema
    assert schema.field("occurred_at").type == pa.timestamp("us", tz="UTC")
    for name in schema.names:
        if name != "occurred_at":
            assert schema.field(name).type == pa.string(), name
    kinds = Counter(events.column("event_type").to_pylist())
    assert set(kinds) == {"browse", "search", "favourite", "add_to_cart", "purchase"}
    queries = [
        q
        for q, k in zip(
            events.column("query").to_pylist(), events.column("event_type").to_pylist(), strict=True
        )
        if k == "search"
    ]
    assert queries and all(q and re.search(r"[\u4e00-\u9fff]|[a-z]", q) for q in queries)
    per_customer = events.num_rows / SMALL
    assert 25 <= per_customer <= 70, per_customer


# --- consistency ----------------------------------------------------------------------------------
def test_order_totals_add_up(tables: dict[str, list[dict[str, str]]]) -> None:
    lines: dict[str, Decimal] = defaultdict(Decimal)
    for line in tables["order-lines"]:
        amount = Decimal(line["amount"])
        assert amount == Decimal(line["unit_price"]) * int(line["quantity"])
        lines[line["order_external_id"]] += amount
    for order in tables["orders"]:
        expected = (
            lines[order["external_id"]]
            - Decimal(order["discount_amount"])
            + Decimal(order["shipping_fee"])
        )
        assert Decimal(order["total_amount"]) == expected, order["external_id"]
        assert Decimal(order["discount_amount"]) < lines[order["external_id"]]
        assert bool(order["coupon_code"]) == (Decimal(order["discount_amount"]) > 0)
    totals = {o["external_id"]: o["total_amount"] for o in tables["orders"]}
    for pay in tables["payments"]:
        assert pay["amount"] == totals[pay["order_external_id"]]
    numbers: dict[str, list[int]] = defaultdict(list)
    for line in tables["order-lines"]:
        numbers[line["order_external_id"]].append(int(line["line_no"]))
    assert set(numbers) == set(totals)
    assert all(sorted(v) == list(range(1, len(v) + 1)) and len(v) <= 4 for v in numbers.values())


def test_every_reference_exists(tables: dict[str, list[dict[str, str]]], events: pa.Table) -> None:
    customers = {c["external_id"] for c in tables["customers"]}
    orders = {o["external_id"] for o in tables["orders"]}
    products = {p["external_id"] for p in tables["products"]}
    categories = {c["external_id"] for c in tables["categories"]}
    assert {c["parent_external_id"] for c in tables["categories"]} - {""} <= categories
    assert {p["category_external_id"] for p in tables["products"]} <= categories
    assert {o["customer_external_id"] for o in tables["orders"]} <= customers
    lines = {(ln["order_external_id"], ln["line_no"]) for ln in tables["order-lines"]}
    assert {ln["product_external_id"] for ln in tables["order-lines"]} <= products
    for kind in ("order-lines", "payments", "returns", "shipments"):
        assert {r["order_external_id"] for r in tables[kind]} <= orders, kind
    for kind in ("reviews", "tickets"):
        assert {r["order_external_id"] for r in tables[kind]} - {""} <= orders, kind
        assert {r["customer_external_id"] for r in tables[kind]} <= customers, kind
    assert {r["product_external_id"] for r in tables["reviews"]} <= products
    for ret in tables["returns"]:
        if ret["line_no"]:
            assert (ret["order_external_id"], ret["line_no"]) in lines
    owner = {o["external_id"]: o["customer_external_id"] for o in tables["orders"]}
    for kind in ("reviews", "tickets"):
        for r in tables[kind]:
            if r["order_external_id"]:
                assert owner[r["order_external_id"]] == r["customer_external_id"]
    assert set(events.column("customer_external_id").to_pylist()) <= customers
    assert set(events.column("item_external_id").drop_null().to_pylist()) <= products
    assert set(events.column("category_external_id").drop_null().to_pylist()) <= categories
    assert {r["customer_external_id"] for r in tables["consents"]} <= customers
    for kind in KINDS:
        if kind in ("order-lines", "consents", "events"):  # keyed by the importer's default
            continue
        ids = [r["external_id"] for r in tables[kind]]
        assert len(ids) == len(set(ids)), f"duplicate external_id in {kind}"


def test_times_are_consistent(
    demo: DemoManifest, tables: dict[str, list[dict[str, str]]], events: pa.Table
) -> None:
    end = demo.as_of.timestamp()
    registered = {c["external_id"]: _ts(c["registered_at"]) for c in tables["customers"]}
    orders = {o["external_id"]: o for o in tables["orders"]}
    for o in tables["orders"]:
        times = [_ts(o[k]) for k in ("placed_at", "shipped_at", "delivered_at") if o[k]]
        assert times == sorted(times), o
        assert all(t <= end for t in times)
        assert _ts(o["placed_at"]) >= registered[o["customer_external_id"]]
        if o["paid_at"]:
            assert _ts(o["placed_at"]) <= _ts(o["paid_at"]) <= end
        if o["cancelled_at"]:
            assert o["status"] == "cancelled" and not o["delivered_at"]
            assert _ts(o["placed_at"]) <= _ts(o["cancelled_at"]) <= end
        if o["status"] in ("delivered", "completed", "returned"):
            assert o["delivered_at"]
        if o["status"] == "shipped":
            assert o["shipped_at"] and not o["delivered_at"]
    for r in tables["returns"]:
        o = orders[r["order_external_id"]]
        assert o["delivered_at"] and _ts(o["delivered_at"]) <= _ts(r["requested_at"]) <= end
    for t in tables["tickets"]:
        opened = _ts(t["opened_at"])
        assert registered[t["customer_external_id"]] <= opened <= end
        if t["first_response_at"]:
            assert opened <= _ts(t["first_response_at"])
        if t["resolved_at"]:
            assert _ts(t["first_response_at"]) <= _ts(t["resolved_at"]) <= end
    occurred = events.column("occurred_at").cast(pa.int64()).to_numpy()
    assert occurred.max() <= end * 1_000_000 + 999_999


# --- realism ----------------------------------------------------------------------------------------
def test_customers_look_real(tables: dict[str, list[dict[str, str]]]) -> None:
    customers = tables["customers"]
    kinds = Counter(c["kind"] for c in customers)
    assert 0.02 <= kinds["business"] / len(customers) <= 0.16
    for c in customers:
        assert re.fullmatch(r"C\d{6}", c["external_id"])
        assert re.search(r"[\u4e00-\u9fff]", c["name"])
        if c["kind"] == "business":
            assert c["company_name"] and c["company_size"] and c["industry"]
            assert not c["id_number"]
        else:
            assert not c["company_name"] and not c["company_size"]
        channel = c["registration_channel"]
        expected = {
            "offline_store": "offline",
            "tmall": "third_party",
            "jd": "third_party",
            "douyin": "third_party",
        }.get(channel, "online")
        assert c["source_channel"] == expected
    cities = {(d.province, d.city, d.district) for d in DISTRICTS}
    assert all((c["province"], c["city"], c["district"]) in cities for c in customers)


def test_id_numbers_are_valid(tables: dict[str, list[dict[str, str]]]) -> None:
    province_prefix = {d.province: d.code[:2] for d in DISTRICTS}
    individuals = [c for c in tables["customers"] if c["kind"] == "individual"]
    with_id = [c for c in individuals if c["id_number"]]
    assert 0.45 <= len(with_id) / len(individuals) <= 0.75
    ric = pytest.importorskip("stdnum.cn.ric")  # python-stdnum is a project dependency
    for c in with_id:
        number = c["id_number"]
        assert re.fullmatch(r"\d{17}[\dX]", number)
        assert id_check_digit(number[:17]) == number[17]
        assert number[6:14] == c["birthday"].replace("-", "")
        assert number[:2] == province_prefix[c["province"]]
        assert int(number[16]) % 2 == (1 if c["gender"] == "male" else 0)
        assert ric.is_valid(number), number
        assert ric.get_birth_date(number).isoformat() == c["birthday"]
        assert ric.get_birth_place(number)["province"] == c["province"]


def test_id_check_digit_known_value() -> None:
    # The GB 11643-1999 example number.
    assert id_check_digit("11010519491231002") == "X"
    assert make_id_number("110105", "19491231", 2) == "11010519491231002X"


def test_ages_between_18_and_70(
    demo: DemoManifest, tables: dict[str, list[dict[str, str]]]
) -> None:
    as_of = demo.as_of.date()
    for c in tables["customers"]:
        if c["birthday"]:
            born = datetime.fromisoformat(c["birthday"]).date()
            age = (as_of - born).days / 365.2425
            assert 18 <= age <= 70.01, (c["external_id"], age)
            adult = datetime(born.year + 18, born.month, 1, tzinfo=UTC).timestamp()
            assert _ts(c["registered_at"]) >= adult


def test_catalogue(tables: dict[str, list[dict[str, str]]]) -> None:
    cats = {c["external_id"]: c for c in tables["categories"]}
    assert 10 <= len(cats) <= 16
    exempt = {c["name"] for c in cats.values() if c["is_no_reason_return_exempt"] == "true"}
    assert {"食品生鲜", "定制商品"} <= exempt
    assert exempt & {"报纸期刊", "数字内容"}
    products = tables["products"]
    assert 350 <= len(products) <= 450
    assert len({p["name"] for p in products}) == len(products)
    prices: dict[str, list[float]] = defaultdict(list)
    for p in products:
        prices[cats[p["category_external_id"]]["name"]].append(float(p["price"]))
    assert np.median(prices["家用电器"]) > 2 * np.median(prices["食品生鲜"])


def test_order_mix(tables: dict[str, list[dict[str, str]]], larger: DemoManifest) -> None:
    orders = _rows(larger, "orders")
    problem = {c for ids in larger.problem_customers.values() for c in ids}
    regular = [o for o in orders if o["customer_external_id"] not in problem]
    status = Counter(o["status"] for o in regular)
    assert 0.02 <= status["cancelled"] / len(regular) <= 0.08
    assert (status["completed"] + status["delivered"]) / len(regular) > 0.8
    coupons = sum(1 for o in orders if o["coupon_code"]) / len(orders)
    assert 0.08 <= coupons <= 0.22
    methods = Counter(p["method"] for p in _rows(larger, "payments"))
    total = sum(methods.values())
    assert 0.35 <= methods["alipay"] / total <= 0.55
    assert 0.25 <= methods["wechat_pay"] / total <= 0.45
    late = [
        o
        for o in orders
        if o["delivered_at"]
        and o["estimated_delivery_at"]
        and o["delivered_at"] > o["estimated_delivery_at"]
    ]
    assert 0.03 <= len(late) / len(orders) <= 0.15
    carriers = {s["carrier"] for s in _rows(larger, "shipments")}
    assert carriers == {"顺丰速运", "中通快递", "圆通速递", "韵达快递", "京东物流", "EMS"}


def test_aftersales_mix(larger: DemoManifest) -> None:
    orders = _rows(larger, "orders")
    delivered = [o for o in orders if o["delivered_at"]]
    returned = {r["order_external_id"] for r in _rows(larger, "returns")}
    assert 0.03 <= len(returned) / len(orders) <= 0.12
    reviews = _rows(larger, "reviews")
    ratings = Counter(int(r["rating"]) for r in reviews)
    assert 0.25 <= len(reviews) / len(delivered) <= 0.45
    assert ratings[5] > ratings[4] > ratings[3]
    for r in reviews:
        assert re.search(r"[\u4e00-\u9fff]", r["text"])
    good = [r["text"] for r in reviews if r["rating"] == "5"]
    assert not any(t.startswith(("差评", "非常失望")) for t in good)
    tickets = _rows(larger, "tickets")
    with_tickets = {t["customer_external_id"] for t in tickets}
    assert 0.04 <= len(with_tickets) / 1500 <= 0.13
    complaints = sum(t["is_complaint"] == "true" for t in tickets) / len(tickets)
    assert 0.07 <= complaints <= 0.25
    quick = [
        t
        for t in tickets
        if t["first_response_at"] and _ts(t["first_response_at"]) - _ts(t["opened_at"]) <= 1800
    ]
    assert len(quick) / len(tickets) >= 0.7
    assert len(quick) < len(tickets)  # some are late


# --- problem customers ---------------------------------------------------------------------------
def test_problem_groups(demo: DemoManifest) -> None:
    groups = demo.problem_customers
    assert tuple(groups) == PROBLEM_KINDS
    seen: set[str] = set()
    for kind, ids in groups.items():
        assert 0.01 * SMALL <= len(ids) <= 0.03 * SMALL, kind
        assert not seen & set(ids), "problem groups overlap"
        seen |= set(ids)
    saved = json.loads((demo.out_dir / "problem_customers.json").read_text(encoding="utf-8"))
    assert saved["problem_customers"] == groups
    assert saved["shares"] == {k: round(len(v) / SMALL, 6) for k, v in groups.items()}
    bgnbd = saved["parameters"]["bg_nbd"]
    assert (bgnbd["r"], bgnbd["alpha"], bgnbd["a"], bgnbd["b"]) == (
        BGNBD_R,
        BGNBD_ALPHA,
        BGNBD_A,
        BGNBD_B,
    )
    assert {"p", "q", "gamma"} <= set(saved["parameters"]["gamma_gamma"])


def _by_customer(rows: list[dict[str, str]]) -> dict[str, list[dict[str, str]]]:
    out: dict[str, list[dict[str, str]]] = defaultdict(list)
    for r in rows:
        out[r["customer_external_id"]].append(r)
    return out


@pytest.mark.parametrize("which", ["demo", "larger"])
def test_problem_behaviour_shows(which: str, request: pytest.FixtureRequest) -> None:
    check_problem_behaviour(request.getfixturevalue(which))


def check_problem_behaviour(m: DemoManifest) -> None:
    orders = _rows(m, "orders")
    by_cust = _by_customer(orders)
    returned = {r["order_external_id"] for r in _rows(m, "returns")}
    groups = {k: set(v) for k, v in m.problem_customers.items()}
    problem = set().union(*groups.values())

    def return_rate(custs: set[str]) -> float:
        delivered = [o for c in custs for o in by_cust[c] if o["delivered_at"]]
        return sum(o["external_id"] in returned for o in delivered) / max(1, len(delivered))

    def cancel_rate(custs: set[str]) -> float:
        own = [o for c in custs for o in by_cust[c]]
        return sum(o["status"] == "cancelled" for o in own) / max(1, len(own))

    others = set(by_cust) - problem
    for c in groups["serial_returner"]:
        if any(o["delivered_at"] for o in by_cust[c]):
            assert return_rate({c}) >= 0.5, c
    assert return_rate(others) < 0.15
    assert cancel_rate(groups["frequent_canceller"]) >= 0.4
    assert cancel_rate(others) < 0.1
    after_ship = [
        o
        for c in groups["frequent_canceller"]
        for o in by_cust[c]
        if o["status"] == "cancelled" and o["shipped_at"]
    ]
    assert after_ship, "frequent cancellers also cancel after shipment"

    reviews = _rows(m, "reviews")
    bad = [r for r in reviews if r["customer_external_id"] in groups["malicious_reviewer"]]
    good = [r for r in reviews if r["customer_external_id"] not in groups["malicious_reviewer"]]
    assert bad and np.mean([int(r["rating"]) for r in bad]) <= 1.5
    assert np.mean([int(r["rating"]) for r in good]) >= 3.8
    order_at = {o["external_id"]: o for o in orders}
    undelivered = [
        r
        for r in bad
        if not r["order_external_id"]
        or not order_at[r["order_external_id"]]["delivered_at"]
        or _ts(order_at[r["order_external_id"]]["delivered_at"]) > _ts(r["created_at"])
    ]
    assert undelivered, "malicious reviews also hit orders not delivered"
    # Bursts: each malicious reviewer posts several reviews within two hours.
    for c in groups["malicious_reviewer"]:
        times = sorted(_ts(r["created_at"]) for r in bad if r["customer_external_id"] == c)
        assert len(times) >= 3 and any(
            b - a <= 7200 for a, b in zip(times, times[2:], strict=False)
        )

    owner = {o["external_id"]: o["customer_external_id"] for o in orders}
    bad_pay: dict[str, int] = defaultdict(int)
    for p in _rows(m, "payments"):
        if p["status"] in ("chargeback", "defaulted", "refused"):
            bad_pay[owner[p["order_external_id"]]] += 1
    assert all(bad_pay[c] >= 1 for c in groups["chargeback"])
    assert set(bad_pay) <= groups["chargeback"]


# --- the models ---------------------------------------------------------------------------------------
def test_hypergeometric_series() -> None:
    for z in (0.1, 0.5, 0.9):
        assert math.isclose(hyp2f1(1.0, 1.0, 2.0, z), -math.log(1 - z) / z, rel_tol=1e-9)


def test_bgnbd_simulation_matches_expectation() -> None:
    """Mean repeat purchases of a simulated population vs E[X(t)] (Fader, Hardie & Lee 2005)."""
    rng = np.random.default_rng(2024)
    horizon = np.full(40_000, 104.0)
    cust, _ = simulate_repeat_purchases(rng, horizon)
    repeats = np.bincount(cust, minlength=horizon.size)
    expected = bgnbd_expected_repeats(104.0)
    assert abs(repeats.mean() - expected) / expected < 0.04, (repeats.mean(), expected)
    assert 2 <= np.median(repeats + 1) <= 4  # the median customer buys 2-4 times in two years
    assert np.percentile(repeats + 1, 99) >= 3 * np.median(repeats + 1)  # long tail
    mixed = rng.uniform(1, 104, size=40_000)
    cust, t = simulate_repeat_purchases(rng, mixed)
    assert np.all(t <= mixed[cust])
    expected_mixed = np.mean([bgnbd_expected_repeats(float(x)) for x in mixed[:4000]])
    assert (
        abs(np.bincount(cust, minlength=mixed.size).mean() - expected_mixed) / expected_mixed < 0.06
    )


def test_generated_orders_follow_bgnbd(larger: DemoManifest) -> None:
    """In the generated data, repeat purchases of customers who signed up inside the history
    average out to E[X(T)] for their own observation windows (loose bound)."""
    customers = {c["external_id"]: c for c in _rows(larger, "customers")}
    start = larger.as_of.timestamp() - 2.0 * 365.25 * 86400
    by_cust = _by_customer(_rows(larger, "orders"))
    observed: list[int] = []
    expected: list[float] = []
    for c, own in by_cust.items():
        if _ts(customers[c]["registered_at"]) < start:
            continue
        first = min(_ts(o["placed_at"]) for o in own)
        observed.append(len(own) - 1)
        expected.append(bgnbd_expected_repeats((larger.as_of.timestamp() - first) / WEEK))
    assert len(observed) > 500
    ratio = np.mean(observed) / np.mean(expected)
    assert 0.85 <= ratio <= 1.15, ratio


def test_order_values_follow_gamma_gamma(larger: DemoManifest) -> None:
    """Individuals' mean merchandise value per order is near p*gamma/(q-1) (Fader & Hardie 2013)."""
    from patron.demo.params import gamma_gamma_expected_value

    kind = {c["external_id"]: c["kind"] for c in _rows(larger, "customers")}
    values = [
        float(o["total_amount"]) + float(o["discount_amount"]) - float(o["shipping_fee"])
        for o in _rows(larger, "orders")
        if kind[o["customer_external_id"]] == "individual"
    ]
    ratio = np.mean(values) / gamma_gamma_expected_value()
    assert 0.75 <= ratio <= 1.35, ratio
    business = [
        float(o["total_amount"])
        for o in _rows(larger, "orders")
        if kind[o["customer_external_id"]] == "business"
    ]
    assert np.mean(business) > 2 * np.mean(values)


def test_consents_are_granted_at_sign_up_and_some_withdrawn_later(demo: DemoManifest) -> None:
    with demo.files["consents"].open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    with demo.files["customers"].open(encoding="utf-8") as handle:
        registered = {r["external_id"]: r["registered_at"] for r in csv.DictReader(handle)}
    service = {
        r["customer_external_id"]
        for r in rows
        if r["purpose"] == "service" and r["channel"] == "sms"
    }
    assert service == set(registered)
    grants = [r for r in rows if r["is_granted"] == "true"]
    withdrawals = [r for r in rows if r["is_granted"] == "false"]
    assert all(r["recorded_at"] == registered[r["customer_external_id"]] for r in grants)
    assert withdrawals
    assert all(r["recorded_at"] >= registered[r["customer_external_id"]] for r in withdrawals)
    assert {r["purpose"] for r in withdrawals} <= {"marketing", "profiling"}
