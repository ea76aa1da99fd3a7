"""The whole scoring pipeline at scale, stage by stage, on synthetic sources.

    OMP_NUM_THREADS=1 .venv/bin/python bench/pipeline.py --customers 1000000 [--write]

Builds (once; cached under bench/out/) N customers with the orders of bench/scoring.py's
BG/NBD generator (about 8 per customer), one payment per order (a few chargebacks, defaults
and refusals), returns on 6 % of orders, reviews on 20 % with Chinese text, and tickets on 3 %.
Then runs ``patron.intelligence.pipeline.run`` exactly as ``patron score`` does and prints the
seconds of every stage. With ``--write`` it also writes the score table into a fresh SQLite
database (or, with ``--database-url``, a fresh PostgreSQL one) the way ``patron score`` does
(official grades, reasons to the lake, bulk insert, grade history, commit, lake snapshot) and
times each part (foreign keys off: the synthetic customers have no customer rows). The OLTP
extract is not included here; ``--oltp`` times it.

Last line: ``customers=<n> orders=<m> pipeline_seconds=<s> write_seconds=<w>``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

# First, before pyarrow: importing patron picks Arrow's allocator, as in `patron score`.
import patron  # noqa: E402, F401

# isort: split
import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from scoring import CUTOFF, generate  # noqa: E402

from patron.intelligence.sources import Sources, conform  # noqa: E402

OUT = ROOT / "bench" / "out"
UTC_US = pa.timestamp("us", tz="UTC")
TEXTS = [
    "质量很好，很满意",
    "物流很快，包装不错",
    "一般般",
    "质量差，不推荐",
    "穿过一次就坏了，失望",
]


def _times(days: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    seconds = days.astype("datetime64[D]").astype("datetime64[s]").astype(np.int64)
    return (seconds + rng.integers(0, 86_400, len(days))) * 1_000_000


def build(customers: int, seed: int = 5, busier: float = 1.0) -> Sources:
    path = OUT / f"pipeline-{customers}-{seed}{_busier(busier)}"
    if not path.exists():
        _write(path, customers, seed, busier)
    tables = {name: pq.read_table(path / f"{name}.parquet") for name in _NAMES}
    return Sources(**{name: conform(name, tables[name]) for name in _NAMES})


_NAMES = ("customers", "orders", "payments", "returns", "reviews", "tickets")


def _busier(busier: float) -> str:
    """The cache folders' suffix for a ``--busier`` shop ("" for the default one)."""
    return "" if busier == 1.0 else f"-x{busier:g}"


def _write(path: Path, customers: int, seed: int, busier: float) -> None:
    rng = np.random.default_rng(seed)
    log = pq.read_table(generate(customers, busier=busier))
    ids = log.column("customer_id").to_numpy()
    days = log.column("day").to_numpy().astype("datetime64[D]")
    n = len(ids)
    placed = _times(days, rng)
    order_id = np.arange(1, n + 1)
    status = np.where(rng.random(n) < 0.05, "cancelled", "completed")
    hour = 3_600 * 1_000_000
    delivered = placed + rng.integers(24, 96, n) * hour
    cancelled = status == "cancelled"
    orders = pa.table(
        {
            "order_id": order_id,
            "customer_id": ids,
            "status": status,
            "placed_at": pa.array(placed, UTC_US),
            "paid_at": pa.array(placed + hour, UTC_US),
            "shipped_at": pa.array(placed + 12 * hour, UTC_US, mask=cancelled),
            "delivered_at": pa.array(delivered, UTC_US, mask=cancelled),
            "cancelled_at": pa.array(placed + 2 * hour, UTC_US, mask=~cancelled),
            "total_amount": log.column("value").to_numpy(),
            "discount_amount": np.where(rng.random(n) < 0.2, 10.0, 0.0),
            "coupon_code": np.where(rng.random(n) < 0.2, "NEW10", ""),
            "currency": np.full(n, "CNY"),
        }
    )
    draw = rng.random(n)
    pay_status = np.select(
        [draw < 0.003, draw < 0.006, draw < 0.009, draw < 0.03],
        ["chargeback", "defaulted", "refused", "failed"],
        "succeeded",
    )
    payments = pa.table(
        {
            "payment_id": order_id,
            "order_id": order_id,
            "customer_id": ids,
            "method": rng.choice(["alipay", "wechat_pay", "card", "cod", "pay_later"], n),
            "status": pay_status,
            "amount": log.column("value").to_numpy(),
            "at": pa.array(placed + hour, UTC_US),
        }
    )
    picked = np.flatnonzero((rng.random(n) < 0.06) & ~cancelled)
    returns = pa.table(
        {
            "return_id": np.arange(1, len(picked) + 1),
            "order_id": order_id[picked],
            "customer_id": ids[picked],
            "kind": rng.choice(["return", "exchange"], len(picked), p=[0.8, 0.2]),
            "status": np.full(len(picked), "completed"),
            "reason": rng.choice(["尺码不合适", "质量问题", "穿过了不喜欢"], len(picked)),
            "requested_at": pa.array(
                delivered[picked] + rng.integers(1, 200, len(picked)) * hour, UTC_US
            ),
            "refund_amount": log.column("value").to_numpy()[picked],
            "delivered_at": pa.array(delivered[picked], UTC_US),
        }
    )
    picked = np.flatnonzero((rng.random(n) < 0.2) & ~cancelled)
    reviews = pa.table(
        {
            "review_id": np.arange(1, len(picked) + 1),
            "customer_id": ids[picked],
            "order_id": order_id[picked],
            "product_id": rng.integers(1, 500, len(picked)),
            "rating": rng.integers(1, 6, len(picked)),
            "text": rng.choice(TEXTS, len(picked)),
            "created_at": pa.array(delivered[picked] + 48 * hour, UTC_US),
            "helpful_votes": rng.poisson(0.3, len(picked)),
        }
    )
    picked = np.flatnonzero(rng.random(n) < 0.03)
    tickets = pa.table(
        {
            "ticket_id": np.arange(1, len(picked) + 1),
            "customer_id": ids[picked],
            "channel": rng.choice(["web", "wechat", "phone"], len(picked)),
            "category": np.full(len(picked), "delivery"),
            "is_complaint": rng.random(len(picked)) < 0.2,
            "opened_at": pa.array(placed[picked] + 30 * hour, UTC_US),
            "first_response_at": pa.array(placed[picked] + 31 * hour, UTC_US),
            "resolved_at": pa.array(placed[picked] + 50 * hour, UTC_US),
            "satisfaction": rng.integers(1, 6, len(picked)),
        }
    )
    first = np.full(customers, np.iinfo(np.int64).max)
    np.minimum.at(first, ids, placed)
    people = pa.table(
        {
            "customer_id": np.arange(customers),
            "source": np.full(customers, "bench"),
            "external_id": np.arange(customers).astype(str),
            "kind": np.where(rng.random(customers) < 0.1, "business", "individual"),
            "registered_at": pa.array(first - 86_400 * 1_000_000, UTC_US),
            "province": np.full(customers, "上海"),
            "registration_channel": rng.choice(["app", "tmall", "jd"], customers),
            "company_size": np.full(customers, ""),
        }
    )
    path.mkdir(parents=True, exist_ok=True)
    for name, table in zip(
        _NAMES, (people, orders, payments, returns, reviews, tickets), strict=True
    ):
        pq.write_table(table, path / f"{name}.parquet")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--write", action="store_true", help="also time the database write-back")
    parser.add_argument(
        "--database-url",
        help="write back into this PostgreSQL database (dropped and made afresh) "
        "instead of a fresh SQLite file, e.g. postgres://postgres@127.0.0.1:5432/patron_bench",
    )
    parser.add_argument(
        "--oltp",
        action="store_true",
        help="load the shop into the OLTP database (cached under bench/out/ for SQLite; the "
        "--database-url database is kept between runs) and time `patron score` end to end: "
        "extract, pipeline, write-back, snapshot",
    )
    parser.add_argument("--runs", type=int, default=1, help="with --oltp: score this many times")
    parser.add_argument(
        "--busier",
        type=float,
        default=1.0,
        help="multiply every customer's purchase rate (default 1: about 7.9M orders at 1M "
        "customers; 1.5: about 10.1M)",
    )
    opts = parser.parse_args()
    if opts.oltp:
        _oltp_score(opts.customers, opts.database_url, opts.runs, opts.busier)
        return
    started = time.perf_counter()
    sources = build(opts.customers, busier=opts.busier)
    print(
        f"{opts.customers:,} customers, {sources.orders.num_rows:,} orders "
        f"(built/read in {time.perf_counter() - started:.1f} s)",
        flush=True,
    )
    from patron.intelligence import grading
    from patron.intelligence.pipeline import Config, run

    cutoff = datetime.combine(CUTOFF.astype(datetime), datetime.min.time(), tzinfo=UTC)
    policy = grading.GradePolicy.from_dict(grading.DEFAULT_POLICY)
    started = time.perf_counter()
    result = run(sources, cutoff, policy=policy, config=Config(time_zone="UTC"))
    total = time.perf_counter() - started
    for stage, seconds in result.seconds.items():
        print(f"{stage:16} {seconds:8.2f} s")
    print(f"{'pipeline':16} {total:8.2f} s", flush=True)
    write = float("nan")
    if opts.write:
        write = _write_back(result, opts.database_url)
        print(f"{'write-back':16} {write:8.2f} s")
    print(
        f"customers={opts.customers} orders={sources.orders.num_rows} "
        f"pipeline_seconds={total:.2f} write_seconds={write:.2f}"
    )


def _write_back(result: Any, database_url: str | None) -> float:
    """Write the scores as ``patron score`` does, into a fresh SQLite file or, with
    ``database_url``, a fresh PostgreSQL database; print the time of each part."""
    home = tempfile.mkdtemp(prefix="patron-bench-")
    os.environ["PATRON_HOME"] = home
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "patron.settings")
    if database_url:
        _fresh_postgres(database_url)
        os.environ["DATABASE_URL"] = database_url
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    from datetime import date

    from django.db import connection, transaction
    from django.utils import timezone

    from patron.scoring.models import ScoreRun
    from patron.scoring.services import _official_grades
    from patron.scoring.writeback import (
        grade_history_apply,
        reasons_write,
        scores_replace,
        scores_staged,
        snapshot_write,
    )

    with connection.cursor() as cursor:  # the synthetic customers have no rows of their own
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = replica")
        else:
            cursor.execute("PRAGMA foreign_keys = OFF")
    run_row = ScoreRun.objects.create(as_of=date(2026, 1, 1), started_at=timezone.now())
    clock = [time.perf_counter()]
    parts: dict[str, float] = {}

    def lap(name: str) -> None:
        now = time.perf_counter()
        parts[name] = now - clock[0]
        clock[0] = now

    table, grades, reasons, _ = _official_grades(result.scores, {}, regrade=False)
    lap("grades")
    with scores_staged(run_row, table) as rows:
        reasons_write(run_row, table, explainers=result.explainers, inputs=result.explainer_inputs)
        lap("reasons")
        with transaction.atomic():
            scores_replace(rows)
            lap("scores")
            grade_history_apply(
                run=run_row, as_of=run_row.as_of, grades=grades, reasons=reasons, policy_version=1
            )
            lap("history")
        lap("commit")
    snapshot_write(run_row, table)
    lap("snapshot")
    print(
        f"  write-back on {connection.vendor}: "
        + ", ".join(f"{k} {v:.2f} s" for k, v in parts.items())
    )
    return sum(parts.values())


def _oltp_score(customers: int, database_url: str | None, runs: int, busier: float) -> None:
    """``patron score`` as the command runs it, on the shop loaded into the OLTP database."""
    vendor = "postgresql" if database_url else "sqlite"
    home = OUT / f"oltp-{customers}-{vendor}{_busier(busier)}"
    loaded = home / "loaded"
    if not loaded.exists():
        home.mkdir(parents=True, exist_ok=True)
        for stale in home.glob("*.sqlite3*"):
            stale.unlink()
        if database_url:
            _fresh_postgres(database_url)
    os.environ["PATRON_HOME"] = str(home)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "patron.settings")
    if database_url:
        os.environ["DATABASE_URL"] = database_url
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    from django.db import connection

    if not loaded.exists():
        started = time.perf_counter()
        rows = _oltp_load(build(customers, busier=busier))
        print(
            f"loaded {rows:,} rows into {connection.vendor} in {time.perf_counter() - started:.1f} s"
        )
        loaded.touch()
    from datetime import date

    from patron.scoring.services import score_customers

    as_of = date.fromisoformat(str(CUTOFF.astype("datetime64[D]")))
    for number in range(1, runs + 1):
        started = time.perf_counter()
        run = score_customers(as_of=as_of)
        total = time.perf_counter() - started
        parts = ", ".join(f"{k} {v:.2f}" for k, v in run.seconds.items())
        print(f"run {number} on {connection.vendor}: {parts}")
        print(f"customers={run.customers} patron_score_seconds={total:.2f}", flush=True)


def _oltp_load(sources: Sources) -> int:
    """The synthetic shop as rows of the product's own tables (ids shifted by one: the
    generator counts from 0), in one transaction, through the bulk writer imports use."""
    from django.db import transaction
    from django.utils import timezone

    from patron.commerce.models import Order, Payment, ReturnRequest, Review
    from patron.customer.models import Customer
    from patron.ingest.bulk import bulk_insert
    from patron.service.models import Ticket

    now = pa.scalar(timezone.now(), UTC_US)

    def const(value: object, n: int, kind: pa.DataType | None = None) -> pa.Array:
        return pa.repeat(pa.scalar(value, kind or pa.string()), n)

    def ids(column: pa.ChunkedArray) -> pa.ChunkedArray:
        return pc.add(column, 1)

    def text(column: pa.ChunkedArray) -> pa.ChunkedArray:
        return pc.cast(column, pa.string())

    def same(table: pa.Table, *names: str) -> dict[str, object]:
        return {name: table.column(name) for name in names}

    def common(table: pa.Table, id_column: str, prefix: str) -> dict[str, object]:
        n = table.num_rows
        return {
            "id": ids(table.column(id_column)),
            "source": const("bench", n),
            "external_id": pc.binary_join_element_wise(prefix, text(table.column(id_column)), ""),
            "row_hash": const("", n),
        }

    people, orders = sources.customers, sources.orders
    n = people.num_rows
    tables: list[tuple[str, dict[str, object]]] = [
        (
            Customer._meta.db_table,
            {
                **common(people, "customer_id", "c"),
                **{
                    name: const("", n)
                    for name in (
                        "name",
                        "gender",
                        "phone",
                        "phone_hash",
                        "email",
                        "email_hash",
                        "id_number",
                        "id_number_hash",
                        "city",
                        "source_channel",
                        "company_name",
                        "industry",
                    )
                },
                "kind": people.column("kind"),
                "province": people.column("province"),
                "registration_channel": people.column("registration_channel"),
                "company_size": people.column("company_size"),
                "registered_at": people.column("registered_at"),
                "status": const("active", n),
                "created_at": pa.repeat(now, n),
                "updated_at": pa.repeat(now, n),
            },
        )
    ]
    m = orders.num_rows
    tables.append(
        (
            Order._meta.db_table,
            {
                **common(orders, "order_id", "o"),
                "customer_id": ids(orders.column("customer_id")),
                **same(
                    orders,
                    "status",
                    "placed_at",
                    "paid_at",
                    "shipped_at",
                    "delivered_at",
                    "cancelled_at",
                    "total_amount",
                    "discount_amount",
                    "currency",
                ),
                "coupon_code": pc.fill_null(orders.column("coupon_code"), ""),
                "shipping_fee": const(0.0, m, pa.float64()),
                "channel": const("app", m),
                "store": const("", m),
                "ship_province": const("", m),
                "ship_city": const("", m),
            },
        )
    )
    pays = sources.payments
    tables.append(
        (
            Payment._meta.db_table,
            {
                **common(pays, "payment_id", "p"),
                "order_id": ids(pays.column("order_id")),
                "method": pays.column("method"),
                "status": pays.column("status"),
                "amount": pays.column("amount"),
                "currency": const("CNY", pays.num_rows),
                "installments": const(1, pays.num_rows, pa.int16()),
                "paid_at": pays.column("at"),
            },
        )
    )
    back = sources.returns
    tables.append(
        (
            ReturnRequest._meta.db_table,
            {
                **common(back, "return_id", "r"),
                "order_id": ids(back.column("order_id")),
                **same(back, "kind", "status", "requested_at"),
                "reason": pc.fill_null(back.column("reason"), ""),
                "refund_amount": pc.fill_null(back.column("refund_amount"), 0.0),
                "currency": const("CNY", back.num_rows),
            },
        )
    )
    said = sources.reviews
    tables.append(
        (
            Review._meta.db_table,
            {
                **common(said, "review_id", "v"),
                "customer_id": ids(said.column("customer_id")),
                "order_id": ids(said.column("order_id")),
                "rating": said.column("rating"),
                "title": const("", said.num_rows),
                "text": pc.fill_null(said.column("text"), ""),
                "created_at": said.column("created_at"),
                "helpful_votes": said.column("helpful_votes"),
            },
        )
    )
    asked = sources.tickets
    k = asked.num_rows
    tables.append(
        (
            Ticket._meta.db_table,
            {
                **common(asked, "ticket_id", "t"),
                "customer_id": ids(asked.column("customer_id")),
                **same(
                    asked,
                    "channel",
                    "category",
                    "is_complaint",
                    "opened_at",
                    "first_response_at",
                    "resolved_at",
                    "satisfaction",
                ),
                "subject": const("", k),
                "status": const("solved", k),
                "priority": const("normal", k),
                "auto_answered": const(False, k, pa.bool_()),
                "contact": const("", k),
                "escalation_level": const(0, k, pa.int16()),
                "priority_reasons": const("[]", k),
                "sla_business_hours": const(False, k, pa.bool_()),
                "sla_fired": const("[]", k),
                "sla_pauses": const("[]", k),
                "sla_policy": const("", k),
                "thread_key": const("", k),
                "updated_at": pa.repeat(now, k),
            },
        )
    )
    written = 0
    with transaction.atomic():
        for name, columns in tables:
            table = pa.table(columns)
            for start in range(0, table.num_rows, 500_000):
                written += bulk_insert(name, table.slice(start, 500_000))
    return written


def _fresh_postgres(url: str) -> None:
    import psycopg

    base, _, name = url.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')


if __name__ == "__main__":
    main()
