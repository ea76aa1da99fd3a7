"""Deterministic demo-merchant data: one call writes a complete, realistic set of import files.

Purchase timing is BG/NBD (Fader, Hardie & Lee 2005) and order values Gamma-Gamma (Fader &
Hardie 2013); see :mod:`patron.demo.params` for the constants, which are also written to
``problem_customers.json`` for back-testing. The same seed and arguments give byte-identical
files: every random draw comes from generators seeded by ``seed`` and time never comes from the
clock.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from faker import Faker

from patron.demo import tables
from patron.demo.aftersales import build_returns, build_reviews
from patron.demo.catalogue import build_catalogue
from patron.demo.clock import DAY
from patron.demo.consents import consents_columns
from patron.demo.events import build_events
from patron.demo.orders import build_orders
from patron.demo.output import KINDS, Column, write_csv, write_events_parquet
from patron.demo.params import DEFAULT_AS_OF, PROBLEM_KINDS, SHANGHAI, model_parameters
from patron.demo.people import build_customers
from patron.demo.problems import membership, select_problem_customers
from patron.demo.tickets import build_tickets
from patron.demo.timing import simulate_purchases

Progress = Callable[[str, int, int], None]
#: The steps reported to ``progress``, in order.
STEPS = ("catalogue", "customers", "orders", "aftersales", "events", "files")


@dataclass(frozen=True)
class DemoManifest:
    out_dir: Path
    files: dict[str, Path]  # import kind -> file
    counts: dict[str, int]  # import kind -> rows written
    problem_customers: dict[str, list[str]]  # problem kind -> customer external ids
    as_of: datetime  # end of the generated history (UTC, aware)
    seed: int


def _utc(as_of: datetime | None) -> datetime:
    """``as_of`` as aware UTC, whole seconds; naive values are read as Beijing time."""
    value = DEFAULT_AS_OF if as_of is None else as_of
    if value.tzinfo is None:
        value = value.replace(tzinfo=SHANGHAI)
    return value.astimezone(UTC).replace(microsecond=0)


def generate_demo(
    *,
    out_dir: Path,
    customers: int = 20_000,
    seed: int = 7,
    years: float = 2.0,
    as_of: datetime | None = None,
    progress: Progress | None = None,
) -> DemoManifest:
    """Write the demo merchant's import files to ``out_dir`` and return what was written.

    ``years`` of history end at ``as_of`` (default 2026-10-31 23:59:59 Beijing time). Customers
    buy by BG/NBD (Fader, Hardie & Lee 2005) and spend by Gamma-Gamma (Fader & Hardie 2013).
    ``progress(step, done, total)`` is called as each step of ``STEPS`` advances.
    """
    if customers < 1:
        raise ValueError("customers must be at least 1")
    if years <= 0:
        raise ValueError("years must be positive")
    report: Progress = progress or (lambda _step, _done, _total: None)
    end_dt = _utc(as_of)
    end = int(end_dt.timestamp())
    start = end - round(years * 365.25 * DAY)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(11)]
    fake = Faker("zh_CN")
    fake.seed_instance(seed)

    report("catalogue", 0, 1)
    catalogue = build_catalogue(streams[0])
    report("catalogue", 1, 1)

    report("customers", 0, customers)
    people = build_customers(
        streams[1],
        fake,
        customers,
        start,
        end,
        tick=lambda done: report("customers", done, customers),
    )
    report("customers", customers, customers)

    report("orders", 0, 2)
    history = simulate_purchases(streams[2], people.registered_at, start, end)
    groups = select_problem_customers(streams[3], history.n_orders, people.is_business)
    masks = membership(groups, customers)
    report("orders", 1, 2)
    orders = build_orders(streams[4], history, people, catalogue, masks, start, end)
    report("orders", 2, 2)

    report("aftersales", 0, 3)
    returns = build_returns(streams[5], orders, catalogue, masks["serial_returner"], end)
    report("aftersales", 1, 3)
    reviews = build_reviews(
        streams[6], orders, catalogue, returns, people.is_business, masks["malicious_reviewer"], end
    )
    report("aftersales", 2, 3)
    problem_any = np.zeros(customers, dtype=bool)
    for mask in masks.values():
        problem_any |= mask
    tickets = build_tickets(
        streams[7],
        orders,
        returns,
        catalogue,
        people.registered_at,
        people.is_business,
        problem_any,
        end,
    )
    report("aftersales", 3, 3)

    report("events", 0, 1)
    events = build_events(
        streams[8], orders, catalogue, people.taste, people.registered_at, people.ids, start, end
    )
    report("events", 1, 1)

    ids = people.ids
    columns: dict[str, Callable[[], Mapping[str, Column]]] = {
        "categories": tables.categories_columns,
        "products": lambda: tables.products_columns(catalogue),
        "customers": lambda: people.columns,
        "consents": lambda: consents_columns(streams[10], ids, people.registered_at, end),
        "orders": lambda: tables.orders_columns(orders, ids),
        "order-lines": lambda: tables.lines_columns(orders, catalogue),
        "payments": lambda: tables.payments_columns(streams[9], orders, end),
        "returns": lambda: tables.returns_columns(returns, orders),
        "reviews": lambda: tables.reviews_columns(reviews, orders, ids, catalogue),
        "shipments": lambda: tables.shipments_columns(streams[9], orders, end),
        "tickets": lambda: tables.tickets_columns(tickets, orders, ids),
    }
    files: dict[str, Path] = {}
    counts: dict[str, int] = {}
    for done, kind in enumerate(KINDS):
        report("files", done, len(KINDS))
        if kind == "events":
            files[kind] = out_dir / "events.parquet"
            counts[kind] = write_events_parquet(files[kind], events)
        else:
            files[kind] = out_dir / f"{kind}.csv"
            counts[kind] = write_csv(files[kind], kind, columns[kind]())
    problem_ids = {kind: [ids[i] for i in groups[kind].tolist()] for kind in PROBLEM_KINDS}
    _write_problem_file(out_dir, problem_ids, customers, counts, end_dt, seed, years)
    report("files", len(KINDS), len(KINDS))
    return DemoManifest(
        out_dir=out_dir,
        files=files,
        counts=counts,
        problem_customers=problem_ids,
        as_of=end_dt,
        seed=seed,
    )


def _write_problem_file(
    out_dir: Path,
    problem_ids: dict[str, list[str]],
    customers: int,
    counts: dict[str, int],
    as_of: datetime,
    seed: int,
    years: float,
) -> None:
    """``problem_customers.json``: who the problem customers are, their shares, and the truth of
    the generating model for back-testing."""
    payload = {
        "seed": seed,
        "as_of": as_of.isoformat(),
        "years": years,
        "customers": customers,
        "problem_customers": problem_ids,
        "shares": {k: round(len(v) / customers, 6) for k, v in problem_ids.items()},
        "counts": counts,
        "parameters": model_parameters(),
    }
    text = json.dumps(payload, ensure_ascii=False, indent=2) + "\n"
    (out_dir / "problem_customers.json").write_text(text, encoding="utf-8")
