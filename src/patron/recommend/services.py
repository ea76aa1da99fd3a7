"""Computing every customer's product suggestions (R-G1) and back-testing them.

The thin Django side of ``patron.intelligence.recommend``: it reads the purchases (order
lines of paid-or-later orders) from the OLTP database and the behaviour events (browse,
favourite, cart, purchase) from the Parquet lake, as of a cut-off, hands them to the pure
library as one interaction log, and writes the suggestions back.

Items are products: a catalogue product is keyed by its id (``p<id>``); an item that is not in
the catalogue (an order line without a product, a lake event for an unknown item: Taobao's
items) by its source and reference (``r<source>\\x1f<ref>``), so one product bought and viewed
is one item.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from patron.commerce.models import Order, OrderLine, Product
from patron.customer.models import Customer
from patron.errors import ValidationFailed
from patron.intelligence.recommend import (
    PURCHASE,
    Evaluation,
    RecommenderConfig,
    baskets,
    evaluate,
    item_neighbours,
    recommend,
    suggestion_reason,
)
from patron.recommend.models import Recommendation, RecommendationRun

#: Orders that count as purchases (as in the intelligence pipeline).
PURCHASE_STATUSES = ("paid", "shipped", "delivered", "completed", "returned")
#: Suggestions kept per customer: more than any page or message shows, so a product that goes
#: out of stock can be skipped by the reader without a new run.
STORED_PER_CUSTOMER = 10
MAX_STORED_PER_CUSTOMER = 50
BATCH = 2_000  # rows per INSERT
_IN_CHUNK = 500  # ids per IN (...): SQLite limits a statement's parameters
_SEP = "\x1f"

Progress = Callable[[str, int, int | None], None]


def _no_progress(step: str, done: int, total: int | None) -> None:
    return None


# ------------------------------------------------------------------------------- read


@dataclass
class ItemCatalogue:
    """What is known about each item key: its product id, source, reference and a name."""

    product: dict[str, int | None] = field(default_factory=dict)
    source: dict[str, str] = field(default_factory=dict)
    ref: dict[str, str] = field(default_factory=dict)
    name: dict[str, str] = field(default_factory=dict)

    def remember(
        self, keys: list[str], sources: list[str], refs: list[str], names: list[str]
    ) -> None:
        for key, source, ref, name in zip(keys, sources, refs, names, strict=True):
            if key not in self.source:
                self.product[key] = int(key[1:]) if key.startswith("p") else None
                self.source[key] = source
                self.ref[key] = ref
            if name and key not in self.name:
                self.name[key] = name

    def fill_products(self, keys: set[str]) -> None:
        """Source, reference and current name of the catalogue products among ``keys``."""
        ids = sorted({int(k[1:]) for k in keys if k.startswith("p")})
        for chunk in _chunks(ids):
            for pk, source, ref, name in Product.objects.filter(pk__in=chunk).values_list(
                "pk", "source", "external_id", "name"
            ):
                key = f"p{pk}"
                self.product[key] = pk
                self.source[key] = source
                self.ref[key] = ref
                self.name[key] = name

    def display(self, key: str) -> str:
        return self.name.get(key) or f"#{self.ref.get(key, key)}"


@dataclass
class InteractionLog:
    table: pa.Table  # customer_id, item_id, event_type, occurred_at
    catalogue: ItemCatalogue
    purchase_lines: int
    events: int


def _chunks[T](items: Sequence[T], size: int = _IN_CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _text(column: pa.ChunkedArray) -> pa.ChunkedArray:
    return pc.fill_null(pc.cast(column, pa.string()), "")


def _before(table: pa.Table, column: str, as_of: datetime) -> pa.Table:
    when = pc.cast(table.column(column), pa.timestamp("us", tz="UTC"))
    cut = pa.scalar(as_of.astimezone(UTC), pa.timestamp("us", tz="UTC"))
    return table.filter(pc.fill_null(pc.less(when, cut), False))


def _purchases(as_of: datetime, catalogue: ItemCatalogue) -> pa.Table:
    """One row per order line of a purchase before ``as_of``."""
    from patron.scoring.extract import fetch_arrow, utc

    statuses = ", ".join(f"'{s}'" for s in PURCHASE_STATUSES)
    sql = (
        "SELECT o.customer_id, o.source AS order_source, o.placed_at, l.product_id, "
        "l.product_ref, l.product_name "
        f"FROM {OrderLine._meta.db_table} l JOIN {Order._meta.db_table} o ON o.id = l.order_id "
        f"WHERE o.status IN ({statuses})"
    )
    table = fetch_arrow(sql)
    if table.num_rows == 0:
        return _empty_log()
    table = table.set_column(
        table.schema.get_field_index("placed_at"), "placed_at", utc(table.column("placed_at"))
    )
    table = _before(table, "placed_at", as_of)
    product = table.column("product_id")
    ref = _text(table.column("product_ref"))
    name = _text(table.column("product_name"))
    ref = pc.if_else(pc.equal(ref, ""), name, ref)  # a line with neither id: its name is its key
    # "r" + source + SEP + ref for a line without a catalogue product, "p<id>" otherwise
    loose = pc.binary_join_element_wise(
        pa.scalar("r"), _text(table.column("order_source")), pa.scalar(_SEP), ref, ""
    )
    catalogued = pc.binary_join_element_wise(pa.scalar("p"), _text(product), "")
    keys = pc.if_else(pc.is_valid(product), catalogued, loose)
    # newest lines first, so that the name remembered is the latest
    order = pc.sort_indices(table, sort_keys=[("placed_at", "descending")])
    catalogue.remember(
        pc.take(keys, order).to_pylist(),
        pc.take(_text(table.column("order_source")), order).to_pylist(),
        pc.take(ref, order).to_pylist(),
        pc.take(name, order).to_pylist(),
    )
    return pa.table(
        {
            "customer_id": pc.cast(table.column("customer_id"), pa.int64()),
            "item_id": keys,
            "event_type": pa.array([PURCHASE] * table.num_rows, pa.string()),
            "occurred_at": table.column("placed_at"),
        }
    )


def _empty_log() -> pa.Table:
    return pa.table(
        {
            "customer_id": pa.array([], pa.int64()),
            "item_id": pa.array([], pa.string()),
            "event_type": pa.array([], pa.string()),
            "occurred_at": pa.array([], pa.timestamp("us", tz="UTC")),
        }
    )


def _events(
    as_of: datetime, catalogue: ItemCatalogue, config: RecommenderConfig, lake: Path
) -> pa.Table:
    """The lake's behaviour events before ``as_of`` of the weighted types, with the customer's
    id and the item's key (a catalogue product when the source has it)."""
    import pyarrow.dataset as ds

    from patron.ingest.lake import events_dir
    from patron.scoring.extract import fetch_arrow

    folder = events_dir(lake)
    if not folder.is_dir() or next(folder.glob("date=*/*.parquet"), None) is None:
        return _empty_log()
    dataset = ds.dataset(folder, format="parquet", partitioning="hive")
    needed = {"source", "customer_external_id", "event_type", "occurred_at", "item_external_id"}
    if not needed <= set(dataset.schema.names):
        return _empty_log()
    types = sorted(t for t, w in config.weights.items() if w > 0)
    cut = pa.scalar(as_of.astimezone(UTC), pa.timestamp("us", tz="UTC"))
    events = dataset.to_table(
        columns=sorted(needed),
        filter=(ds.field("occurred_at") < cut)
        & ds.field("event_type").isin(types)
        & ds.field("item_external_id").is_valid()
        & (ds.field("item_external_id") != ""),
    )
    if events.num_rows == 0:
        return _empty_log()
    customers = fetch_arrow(
        f"SELECT id AS customer_id, source, external_id FROM {Customer._meta.db_table}"
    )
    if customers.num_rows == 0:
        return _empty_log()
    customers = customers.cast(
        pa.schema(
            [("customer_id", pa.int64()), ("source", pa.string()), ("external_id", pa.string())]
        )
    )
    events = events.join(
        customers,
        keys=["source", "customer_external_id"],
        right_keys=["source", "external_id"],
        join_type="inner",
    )
    products = fetch_arrow(
        f"SELECT id AS product_id, source AS product_source, external_id AS product_ref "
        f"FROM {Product._meta.db_table}"
    )
    if products.num_rows:
        products = products.cast(
            pa.schema(
                [
                    ("product_id", pa.int64()),
                    ("product_source", pa.string()),
                    ("product_ref", pa.string()),
                ]
            )
        )
        events = events.join(
            products,
            keys=["source", "item_external_id"],
            right_keys=["product_source", "product_ref"],
            join_type="left outer",
        )
        product = events.column("product_id")
    else:
        product = pa.chunked_array([pa.nulls(events.num_rows, pa.int64())])
    source = _text(events.column("source"))
    ref = _text(events.column("item_external_id"))
    loose = pc.binary_join_element_wise(pa.scalar("r"), source, pa.scalar(_SEP), ref, "")
    catalogued = pc.binary_join_element_wise(pa.scalar("p"), _text(product), "")
    keys = pc.if_else(pc.is_valid(product), catalogued, loose)
    unknown = pc.invert(pc.is_valid(product))
    if pc.any(unknown).as_py():
        distinct = pa.table({"key": keys, "source": source, "ref": ref}).filter(unknown)
        distinct = distinct.group_by(["key", "source", "ref"]).aggregate([])
        catalogue.remember(
            distinct.column("key").to_pylist(),
            distinct.column("source").to_pylist(),
            distinct.column("ref").to_pylist(),
            [""] * distinct.num_rows,
        )
    return pa.table(
        {
            "customer_id": events.column("customer_id"),
            "item_id": keys,
            "event_type": pc.cast(events.column("event_type"), pa.string()),
            "occurred_at": pc.cast(events.column("occurred_at"), pa.timestamp("us", tz="UTC")),
        }
    )


def interaction_log(
    *, as_of: datetime, config: RecommenderConfig, use_events: bool = True, lake: Path | None = None
) -> InteractionLog:
    """Purchases (order lines) and, with ``use_events``, the lake's behaviour events before
    ``as_of``, as the pure library's interaction log."""
    catalogue = ItemCatalogue()
    purchases = _purchases(as_of, catalogue)
    events = (
        _events(as_of, catalogue, config, Path(lake if lake is not None else settings.LAKE_DIR))
        if use_events
        else _empty_log()
    )
    return InteractionLog(
        table=pa.concat_tables([purchases, events.cast(purchases.schema)]),
        catalogue=catalogue,
        purchase_lines=purchases.num_rows,
        events=events.num_rows,
    )


# ------------------------------------------------------------------------------ write


@dataclass(frozen=True)
class RefreshResult:
    run_id: int
    as_of: datetime
    customers: int
    suggestions: int
    personal: int  # suggestions from co-occurrence (the rest: best sellers)
    items: int
    pairs: int
    neighbour_pairs: int
    purchase_lines: int
    events: int
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["as_of"] = self.as_of.isoformat()
        return out


def _aware(moment: datetime | None) -> datetime:
    if moment is None:
        return timezone.now()
    if timezone.is_naive(moment):
        raise ValidationFailed("as_of: expected a time with its zone")
    return moment


def recommendations_refresh(
    *,
    as_of: datetime | None = None,
    k: int = STORED_PER_CUSTOMER,
    config: RecommenderConfig | None = None,
    use_events: bool = True,
    progress: Progress | None = None,
) -> RefreshResult:
    """Replace every customer's suggestions by new ones from what happened before ``as_of``
    (default now).

    One transaction: the previous run's rows are deleted and the new ones written in batches
    of ``BATCH``, so readers see one run or the other. Safe to run twice (the second run
    writes the same rows again). Customers without any purchase or event get no rows of their
    own: they are shown the shop-wide best sellers (rows without a customer).
    """
    as_of = _aware(as_of)
    if not 1 <= k <= MAX_STORED_PER_CUSTOMER:
        raise ValidationFailed(f"k: expected 1 to {MAX_STORED_PER_CUSTOMER}")
    config = config or RecommenderConfig()
    report = progress or _no_progress
    started = time.perf_counter()
    report("read", 0, None)
    log = interaction_log(as_of=as_of, config=config, use_events=use_events)
    report("read", 1, 1)
    report("fit", 0, None)
    b = baskets(log.table, config=config)
    neighbours = item_neighbours(b, config)
    personal = recommend(b, neighbours, k=k, config=config).table
    shop_wide = recommend(b, None, k=k, customers=[-1], config=config).table
    report("fit", 1, 1)
    keys = set(personal.column("item_id").to_pylist())
    keys |= {a for a in personal.column("anchor_item_id").to_pylist() if a is not None}
    keys |= set(shop_wide.column("item_id").to_pylist())
    log.catalogue.fill_products(keys)
    computed_at = timezone.now()
    total = personal.num_rows + shop_wide.num_rows
    with transaction.atomic():
        run = RecommendationRun.objects.create(
            as_of=as_of,
            computed_at=computed_at,
            customers=b.n_customers,
            items=b.n_items,
            pairs=int(b.weights.nnz),
            neighbour_pairs=neighbours.pairs,
            purchase_lines=log.purchase_lines,
            events=log.events,
            settings={
                "k": k,
                "use_events": use_events,
                "similarity": config.similarity,
                "neighbours": config.neighbours,
                "min_customers": config.min_customers,
                "exclude": config.exclude,
                "weights": dict(config.weights),
                "max_items_per_customer": config.max_items_per_customer,
            },
        )
        Recommendation.objects.all().delete()
        written = 0
        for rows in _rows(run, shop_wide, personal, log.catalogue, computed_at):
            Recommendation.objects.bulk_create(rows)
            written += len(rows)
            report("write", written, total)
        run.suggestions = written
        run.seconds = time.perf_counter() - started
        run.save(update_fields=["suggestions", "seconds"])
    bases = personal.column("basis")
    return RefreshResult(
        run_id=run.pk,
        as_of=as_of,
        customers=b.n_customers,
        suggestions=written,
        personal=int(pc.sum(pc.equal(bases, "together")).as_py() or 0),
        items=b.n_items,
        pairs=int(b.weights.nnz),
        neighbour_pairs=neighbours.pairs,
        purchase_lines=log.purchase_lines,
        events=log.events,
        seconds=run.seconds,
    )


def _rows(
    run: RecommendationRun,
    shop_wide: pa.Table,
    personal: pa.Table,
    catalogue: ItemCatalogue,
    computed_at: datetime,
) -> Iterator[list[Recommendation]]:
    batch: list[Recommendation] = []
    for customer, table in ((None, shop_wide), (True, personal)):
        for row in table.to_pylist():
            item = row["item_id"]
            anchor = row["anchor_item_id"]
            reason = suggestion_reason(
                row["basis"],
                anchor=catalogue.display(anchor) if anchor is not None else "",
                customers=row["customers"],
                buyers=row["buyers"],
                seen=row["seen"],
            )
            batch.append(
                Recommendation(
                    run=run,
                    customer_id=row["customer_id"] if customer else None,
                    rank=row["rank"],
                    product_id=catalogue.product.get(item),
                    product_source=catalogue.source.get(item, "")[:40],
                    product_ref=catalogue.ref.get(item, "")[:100],
                    product_name=catalogue.name.get(item, "")[:200],
                    score=row["score"],
                    basis=row["basis"],
                    reason=reason.to_json(),
                    computed_at=computed_at,
                )
            )
            if len(batch) >= BATCH:
                yield batch
                batch = []
    if batch:
        yield batch


# --------------------------------------------------------------------------- evaluate


def recommendations_evaluate(
    *,
    cut: datetime,
    end: datetime | None = None,
    k: int = 10,
    config: RecommenderConfig | None = None,
    use_events: bool = True,
) -> Evaluation:
    """Back-test on this shop's data: suggestions from what happened before ``cut`` against
    the products each customer bought from ``cut`` to ``end`` (default now) that they had not
    bought before; the popularity baseline alongside. Reads, writes nothing."""
    cut = _aware(cut)
    end = _aware(end)
    if end <= cut:
        raise ValidationFailed("end: must be after the cut")
    config = config or RecommenderConfig()
    log = interaction_log(as_of=end, config=config, use_events=use_events)
    return evaluate(log.table, cut=cut, end=end, k=k, config=config)
