"""Product recommendations (R-G1) on a time split: hit rate and recall at k of the item–item
co-occurrence model against the best sellers, on the demo merchant, Olist and Taobao.

    OMP_NUM_THREADS=1 .venv/bin/python bench/recommend.py [--customers 20000] [--k 10]
        [--taobao-users 815] [--similarity conditional,cosine,lift,count] [--synthetic-events N]

Each data set becomes one interaction log (customer, item, event type, time) read straight
from its files (no database: the model is ``patron.intelligence.recommend``, the same code
``patron recommend refresh`` runs), then ``evaluate(log, cut=…, end=…)`` fits on what happened
before the cut and scores each customer's suggestions against the products they bought from
the cut to the end that they had not bought before:

- demo: ``patron.demo.generate_demo`` (seed 7, two years to 2026-10-31; cached in
  ``bench/out/recommend-demo-<n>-7/``), orders and their lines as purchases, the lake's browse,
  favourite and cart events as behaviour; test window the last ``--demo-test-days`` (180).
- olist: ``../shared/data/olist/<sample>/`` orders, items and customers (the person is
  ``customer_unique_id``); purchases only; cut 2018-05-01, test to the end (2018-08-29).
- taobao: ``../shared/data/taobao_userbehavior/UserBehavior_head84k.csv`` (pv/fav/cart/buy),
  the first ``--taobao-users`` users; cut 2017-12-02 00:00 Beijing time, test to 2017-12-04.

Columns: customers evaluated (bought something new in the test window) and how many of them
had any history before the cut ("warm"; the others get the best sellers from both methods),
hit@k and recall@k for the model and for popularity, customers hit by only one of the two,
and the seconds to fit (baskets + neighbours) and to suggest. ``--synthetic-events N`` also
times the model on a Taobao-shaped random log of N events (power-law items, bounded memory:
peak RSS is printed). Last line: a JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from patron.intelligence.recommend import (  # noqa: E402
    SIMILARITIES,
    RecommenderConfig,
    baskets,
    evaluate,
    item_neighbours,
    recommend,
)

OUT = ROOT / "bench" / "out"
DATA = ROOT.parent / "shared" / "data"
TAOBAO = DATA / "taobao_userbehavior" / "UserBehavior_head84k.csv"
OLIST_SAMPLES = ("sample_10k_thegeshwar", "sample_4k_techbyhemant")
PURCHASE_STATUSES = ("paid", "shipped", "delivered", "completed", "returned")
BEIJING = timedelta(hours=8)
TIME = pa.timestamp("us", tz="UTC")


def _log(customer: Any, item: Any, event_type: Any, occurred_at: Any) -> pa.Table:
    return pa.table(
        {
            "customer_id": customer,
            "item_id": item,
            "event_type": event_type,
            "occurred_at": pc.cast(occurred_at, TIME),
        }
    )


def demo_log(customers: int, seed: int = 7) -> tuple[pa.Table, pa.Table, datetime]:
    """(purchases, behaviour events, end of history) of the demo merchant."""
    folder = OUT / f"recommend-demo-{customers}-{seed}"
    if not (folder / "problem_customers.json").exists():
        from patron.demo import generate_demo

        print(f"generating the demo merchant ({customers:,} customers) …", flush=True)
        generate_demo(out_dir=folder, customers=customers, seed=seed)
    end = datetime.fromisoformat(
        json.loads((folder / "problem_customers.json").read_text())["as_of"]
    )
    orders = pcsv.read_csv(
        folder / "orders.csv",
        convert_options=pcsv.ConvertOptions(
            include_columns=["external_id", "customer_external_id", "status", "placed_at"],
            column_types={"placed_at": TIME},
        ),
    )
    orders = orders.filter(pc.is_in(orders.column("status"), pa.array(PURCHASE_STATUSES)))
    lines = pcsv.read_csv(
        folder / "order-lines.csv",
        convert_options=pcsv.ConvertOptions(
            include_columns=["order_external_id", "product_external_id"]
        ),
    )
    bought = lines.join(orders, keys="order_external_id", right_keys="external_id")
    purchases = _log(
        bought.column("customer_external_id"),
        bought.column("product_external_id"),
        pa.array(["purchase"] * bought.num_rows),
        bought.column("placed_at"),
    )
    events = pq.read_table(folder / "events.parquet")
    # the lake's purchase events repeat the online orders' lines: the orders are the purchases
    events = events.filter(pc.not_equal(events.column("event_type"), "purchase"))
    behaviour = _log(
        events.column("customer_external_id"),
        events.column("item_external_id"),
        events.column("event_type"),
        events.column("occurred_at"),
    )
    return purchases, behaviour, end


def olist_log(sample: str) -> pa.Table:
    folder = DATA / "olist" / sample
    orders = pcsv.read_csv(
        folder / "orders.csv",
        convert_options=pcsv.ConvertOptions(
            include_columns=["order_id", "customer_id", "order_status", "order_purchase_timestamp"],
            column_types={"order_purchase_timestamp": pa.timestamp("us")},
        ),
    )
    orders = orders.filter(
        pc.is_in(orders.column("order_status"), pa.array(["delivered", "shipped", "invoiced"]))
    )
    people = pcsv.read_csv(
        folder / "customers.csv",
        convert_options=pcsv.ConvertOptions(include_columns=["customer_id", "customer_unique_id"]),
    )
    items = pcsv.read_csv(
        folder / "order_items.csv",
        convert_options=pcsv.ConvertOptions(include_columns=["order_id", "product_id"]),
    )
    rows = items.join(orders, keys="order_id").join(people, keys="customer_id")
    # São Paulo local time (UTC-3, no daylight saving in 2018) to UTC
    local = rows.column("order_purchase_timestamp")
    utc = pc.add(pc.cast(local, pa.timestamp("us")), pa.scalar(timedelta(hours=3)))
    return _log(
        rows.column("customer_unique_id"),
        rows.column("product_id"),
        pa.array(["purchase"] * rows.num_rows),
        pc.assume_timezone(utc, "UTC"),
    )


def taobao_log(users: int | None, path: Path = TAOBAO) -> pa.Table:
    table = pcsv.read_csv(
        path,
        read_options=pcsv.ReadOptions(
            column_names=["user_id", "item_id", "category_id", "behavior_type", "timestamp"]
        ),
    )
    if users:
        first = pc.unique(table.column("user_id"))[:users]
        table = table.filter(pc.is_in(table.column("user_id"), value_set=first))
    kinds = {"pv": "browse", "fav": "favourite", "cart": "add_to_cart", "buy": "purchase"}
    event_type = pc.take(
        pa.array(list(kinds.values())),
        pc.index_in(table.column("behavior_type"), value_set=pa.array(list(kinds))),
    )
    seconds = pc.multiply(pc.cast(table.column("timestamp"), pa.int64()), 1_000_000)
    return _log(
        table.column("user_id"),
        table.column("item_id"),
        event_type,
        pc.cast(seconds, TIME),
    )


def synthetic_log(events: int, seed: int = 11) -> pa.Table:
    """A Taobao-shaped log (the full UserBehavior has about 100 events per user and 25 per
    item): users with gamma-distributed activity, items with Zipf-like popularity
    (``rank^-0.8``), 89 % views, 6 % carts, 3 % favourites, 2 % purchases, over nine days."""
    rng = np.random.default_rng(seed)
    users = max(events // 100, 10)
    items = max(events // 25, 10)
    activity = rng.gamma(0.7, size=users)
    customer = rng.choice(users, size=events, p=activity / activity.sum())
    popularity = (np.arange(items) + 1.0) ** -0.8
    item = rng.permutation(items)[rng.choice(items, size=events, p=popularity / popularity.sum())]
    kind = rng.choice(4, size=events, p=[0.89, 0.06, 0.03, 0.02])
    names = np.array(["browse", "add_to_cart", "favourite", "purchase"], dtype=object)
    start = int(datetime(2017, 11, 25, tzinfo=UTC).timestamp() * 1_000_000)
    when = start + rng.integers(0, 9 * 86_400 * 1_000_000, size=events)
    return _log(
        pa.array(customer, pa.int64()),
        pa.array(item, pa.int64()),
        pa.array(names[kind], pa.string()),
        pa.array(when, pa.int64()).cast(TIME),
    )


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:5.1f} %"


def _p(value: float | None) -> str:
    return "—" if value is None else f"{value:.1g}" if value < 0.001 else f"{value:.3f}"


HEADER = (
    f"{'dataset':34} {'similarity':11} {'customers':>9} {'warm':>6} {'hit model':>9} "
    f"{'hit pop':>8} {'rec model':>9} {'rec pop':>8} {'only m/p':>9} {'p':>7} {'fit s':>6} "
    f"{'sugg s':>6}"
)


def run(
    name: str,
    log: pa.Table,
    *,
    cut: datetime,
    end: datetime | None,
    k: int,
    config: RecommenderConfig,
) -> dict[str, Any]:
    started = time.perf_counter()
    result = evaluate(log, cut=cut, end=end, k=k, config=config)
    seconds = time.perf_counter() - started
    print(
        f"{name:34} {config.similarity:11} {result.customers:>9,} {result.warm_customers:>6,} "
        f"{_pct(result.hit_rate):>9} {_pct(result.hit_rate_popular):>8} "
        f"{_pct(result.recall):>9} {_pct(result.recall_popular):>8} "
        f"{f'{result.model_only}/{result.popular_only}':>9} {_p(result.mcnemar_p):>7} "
        f"{result.seconds_fit:6.2f} "
        f"{result.seconds_suggest:6.2f}",
        flush=True,
    )
    return {
        "dataset": name,
        "events": log.num_rows,
        "seconds": round(seconds, 3),
        **result.as_dict(),
        "similarity": config.similarity,
        "exclude": config.exclude,
    }


def scale(events: int, k: int) -> dict[str, Any]:
    """Time the model on a large random log; peak memory of the process."""
    log = synthetic_log(events)
    config = RecommenderConfig()
    started = time.perf_counter()
    b = baskets(log, config=config)
    basket_s = time.perf_counter() - started
    n = item_neighbours(b, config)
    neighbours_s = time.perf_counter() - started - basket_s
    s = recommend(b, n, k=k, config=config)
    total = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    figures = {
        "events": events,
        "customers": b.n_customers,
        "items": b.n_items,
        "pairs": int(b.weights.nnz),
        "neighbour_pairs": n.pairs,
        "suggestions": len(s),
        "seconds_baskets": round(basket_s, 2),
        "seconds_neighbours": round(neighbours_s, 2),
        "seconds_total": round(total, 2),
        "peak_rss_mb": round(peak_mb),
    }
    print(
        f"synthetic: {events:,} events, {b.n_customers:,} customers, {b.n_items:,} items, "
        f"{n.pairs:,} neighbour pairs, {len(s):,} suggestions: baskets {basket_s:.1f} s, "
        f"neighbours {neighbours_s:.1f} s, total {total:.1f} s, peak RSS {peak_mb:,.0f} MB",
        flush=True,
    )
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000, help="demo customers (0: skip)")
    parser.add_argument("--demo-test-days", type=int, default=180)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--taobao-users", type=int, default=0, help="first N users (0: all)")
    parser.add_argument("--taobao-file", type=Path, default=TAOBAO)
    parser.add_argument("--no-olist", action="store_true")
    parser.add_argument("--no-taobao", action="store_true")
    parser.add_argument(
        "--similarity",
        default="conditional",
        help=f"comma-separated, of {', '.join(SIMILARITIES)} (the first is the default model)",
    )
    parser.add_argument("--synthetic-events", type=int, default=0)
    args = parser.parse_args(argv)
    similarities = [s.strip() for s in args.similarity.split(",") if s.strip()]
    if os.environ.get("OMP_NUM_THREADS") != "1":
        print("note: set OMP_NUM_THREADS=1 (shared machine)", flush=True)
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    print(f"hit@{args.k} and recall@{args.k}, model against the best sellers", flush=True)
    print(HEADER, flush=True)
    for similarity in similarities:
        config = RecommenderConfig(similarity=similarity)
        if args.customers:
            purchases, behaviour, end = demo_log(args.customers)
            cut = end - timedelta(days=args.demo_test_days)
            label = f"demo {args.customers // 1000}k"
            rows.append(
                run(f"{label}, orders", purchases, cut=cut, end=None, k=args.k, config=config)
            )
            both = pa.concat_tables([purchases, behaviour])
            rows.append(
                run(f"{label}, orders + events", both, cut=cut, end=None, k=args.k, config=config)
            )
        if not args.no_olist:
            for sample in OLIST_SAMPLES:
                log = olist_log(sample)
                cut = datetime(2018, 5, 1, 3, tzinfo=UTC)  # midnight in São Paulo
                rows.append(
                    run(
                        f"olist {sample.split('_')[1]}",
                        log,
                        cut=cut,
                        end=None,
                        k=args.k,
                        config=config,
                    )
                )
        if not args.no_taobao:
            log = taobao_log(args.taobao_users or None, args.taobao_file)
            users = len(pc.unique(log.column("customer_id")))
            cut = datetime(2017, 12, 2, tzinfo=UTC) - BEIJING
            end = datetime(2017, 12, 4, tzinfo=UTC) - BEIJING
            rows.append(
                run(f"taobao {users} users", log, cut=cut, end=end, k=args.k, config=config)
            )
            discovery = RecommenderConfig(similarity=similarity, exclude="interacted")
            rows.append(
                run(
                    f"taobao {users} users, nothing seen",
                    log,
                    cut=cut,
                    end=end,
                    k=args.k,
                    config=discovery,
                )
            )
    synthetic = scale(args.synthetic_events, args.k) if args.synthetic_events else None
    total = time.perf_counter() - started
    print(f"total {total:.1f} s", flush=True)
    print(
        json.dumps({"k": args.k, "runs": rows, "synthetic": synthetic, "seconds": round(total, 1)})
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
