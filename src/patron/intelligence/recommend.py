"""Product suggestions from item–item co-occurrence, with their reasons (R-G1).

Pure numpy/scipy/pyarrow, no Django: ``patron.recommend.services`` feeds it the orders and the
lake's behaviour events and writes the suggestions back.

The method is item-based collaborative filtering (Sarwar, Karypis, Konstan & Riedl 2001,
"Item-based collaborative filtering recommendation algorithms", WWW '01; Linden, Smith & York
2003, "Amazon.com recommendations: item-to-item collaborative filtering"):

1. **Baskets.** A customer × item matrix ``W``: each cell is the weight of the strongest thing
   the customer did with the item before the cut-off (``EVENT_WEIGHTS``: a purchase 1.0, a cart
   or a favourite 0.5, a view 0.2). The *strongest*, not the sum: a customer who viewed an item
   forty times must not outweigh one who bought it. A customer's basket keeps at most
   ``max_items_per_customer`` items (strongest, then most recent), because a basket of ``m``
   items costs ``m²`` pairs and a handful of crawlers would otherwise dominate time and memory.
2. **Co-occurrence and normalisation.** ``C = Wᵀ W`` (for purchases alone: the number of
   customers who bought both items). By default the *conditional* normalisation
   ``sim(i, j) = C_ij / Σ_c W_ci``: of the customers who had item ``i``, the (weighted) share
   who also had ``j`` — "customers who bought X also bought Y", the sentence a reason shows
   (Deshpande & Karypis 2004, "Item-based top-N recommendation algorithms", ACM TOIS 22(1),
   their conditional-probability similarity with α = 1). It removes the popularity of the
   customer's own item (a best seller in the basket does not drown the rest) and keeps that of
   the suggested item, which is what predicts a purchase. The alternatives are there to
   compare: ``cosine`` ``C_ij / (‖W_i‖ ‖W_j‖)`` also divides by the suggested item's
   popularity, and lift ``P(i, j) / (P(i) P(j))`` divides by all of it and ranks first the pairs
   seen once between two rare items (one customer makes a lift of ``n``); raw ``count``
   suggests the best sellers to everyone. Measured by ``bench/recommend.py --similarity``:
   conditional was best on the demo and on Taobao, lift worst (docs/recommendations.md).
3. **Bounded neighbours.** Only the ``neighbours`` most similar items of each item are kept
   (a sparse items × items matrix with at most that many entries a row). ``C`` is computed a
   block of item rows at a time, each block sized so that the pairs it can touch stay under
   ``block_pairs``: memory is bounded whatever the catalogue.
4. **Scores.** ``score(c, j) = Σᵢ W_ci · sim(i, j)`` over the customer's items ``i``; what the
   customer bought (``exclude="purchased"``, the default), or did anything with
   (``"interacted"``), is never suggested. The top ``k`` per customer, ties broken by the
   item's buyers, then by the item's key: the same input gives the same answer whatever its row
   order. Customers are scored a block at a time, like the items.
5. **Reasons.** The *anchor* of a suggestion is the customer's item that contributes most to
   its score; the reason says how many other customers bought (or looked at) both: "bought
   with X by N customers". An item the customer viewed (or carted) themselves, and nobody else
   bought with the anchor, says so: "viewed before, together with X" (the customer's own basket
   relates the items they looked at, which is most of what the model finds on browsing data).
6. **Cold start.** Customers with no history, or too few co-occurring candidates, are filled up
   with the most popular items (distinct buyers) they have not bought: "popular: bought by N
   customers".

``evaluate`` back-tests the model on a time split (train before a cut-off, test on the
purchases after it) against that popularity baseline.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from patron.intelligence.explain import N_, Reason

__all__ = [
    "BASES",
    "EVENT_WEIGHTS",
    "Baskets",
    "Evaluation",
    "ItemNeighbours",
    "RecommenderConfig",
    "Suggestions",
    "baskets",
    "evaluate",
    "item_neighbours",
    "recommend",
    "suggestion_reason",
]

PURCHASE = "purchase"
#: How much each behaviour says about a customer's interest in an item (the lake's event
#: types, ``patron.ingest.lake``); a purchase is the strongest. Other types (search) carry
#: no item and are ignored.
EVENT_WEIGHTS: Mapping[str, float] = {
    "purchase": 1.0,
    "add_to_cart": 0.5,
    "favourite": 0.5,
    "browse": 0.2,
}
#: What a suggestion is based on: items bought with the customer's own, or the best sellers.
BASES = ("together", "popular")
TOGETHER, POPULAR = 0, 1

Similarity = Literal["cosine", "conditional", "lift", "count"]
Exclusion = Literal["purchased", "interacted", "none"]
SIMILARITIES = ("cosine", "conditional", "lift", "count")
LOG_COLUMNS = ("customer_id", "item_id", "event_type")
#: Scores equal to this many decimals are ties (broken by popularity, then key): sparse sums
#: over different paths may differ in the last bits.
_TIE_DECIMALS = 12


@dataclass(frozen=True)
class RecommenderConfig:
    """How suggestions are made; the defaults are what the bench measured best."""

    neighbours: int = 50  # most similar items kept per item
    similarity: Similarity = "conditional"
    min_customers: int = 1  # customers two items need in common to count as related
    weights: Mapping[str, float] = field(default_factory=lambda: dict(EVENT_WEIGHTS))
    exclude: Exclusion = "purchased"
    max_items_per_customer: int = 200
    block_pairs: int = 4_000_000  # memory bound: item pairs touched per block

    def __post_init__(self) -> None:
        if self.neighbours < 1:
            raise ValueError("neighbours must be at least 1")
        if self.similarity not in SIMILARITIES:
            raise ValueError(f"unknown similarity {self.similarity!r}: {', '.join(SIMILARITIES)}")
        if self.exclude not in ("purchased", "interacted", "none"):
            raise ValueError(f"unknown exclusion {self.exclude!r}: purchased, interacted or none")
        if self.min_customers < 1:
            raise ValueError("min_customers must be at least 1")
        if self.max_items_per_customer < 1:
            raise ValueError("max_items_per_customer must be at least 1")
        if self.block_pairs < 1:
            raise ValueError("block_pairs must be at least 1")
        if any(w < 0 or not np.isfinite(w) for w in self.weights.values()):
            raise ValueError("event weights must be finite and not negative")


# ----------------------------------------------------------------------------- baskets


@dataclass(frozen=True)
class Baskets:
    """Customers × items, rows and columns in the sorted order of their keys."""

    customers: np.ndarray  # distinct customer keys, sorted (row i)
    items: np.ndarray  # distinct item keys, sorted (column j)
    weights: sp.csr_array  # the strongest interaction's weight, > 0 where any
    purchased: sp.csr_array  # 1.0 where the customer bought the item
    buyers: np.ndarray  # per item: distinct customers who bought it
    interested: np.ndarray  # per item: distinct customers who did anything with it

    @property
    def n_customers(self) -> int:
        return len(self.customers)

    @property
    def n_items(self) -> int:
        return len(self.items)

    def customer_index(self, keys: Any) -> np.ndarray:
        """Row of each key; -1 for customers not in the baskets."""
        return _lookup(self.customers, keys)

    def item_index(self, keys: Any) -> np.ndarray:
        """Column of each key; -1 for items not in the baskets."""
        return _lookup(self.items, keys)


def _lookup(sorted_keys: np.ndarray, keys: Any) -> np.ndarray:
    wanted = _key_array(keys, like=sorted_keys)
    if len(sorted_keys) == 0 or len(wanted) == 0:
        return np.full(len(wanted), -1, dtype=np.int64)
    at = np.searchsorted(sorted_keys, wanted)
    at = np.minimum(at, len(sorted_keys) - 1)
    return np.where(sorted_keys[at] == wanted, at, -1).astype(np.int64)


def _key_array(keys: Any, *, like: np.ndarray | None = None) -> np.ndarray:
    if isinstance(keys, pa.ChunkedArray | pa.Array):
        keys = keys.to_pylist()
    array = np.asarray(list(keys) if not isinstance(keys, np.ndarray) else keys)
    if like is not None and like.dtype == object and array.dtype != object:
        array = array.astype(object)
    return array


def _encode(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct values, code of each row): Arrow does the hashing, not Python."""
    distinct = pc.unique(column)
    distinct = distinct.take(pc.sort_indices(distinct))
    codes = pc.index_in(column, value_set=distinct).to_numpy(zero_copy_only=False)
    keys = distinct.to_numpy(zero_copy_only=False)
    if keys.dtype.kind in "OUS":
        keys = keys.astype(object)
    return keys, codes.astype(np.int64)


def _micros(column: pa.ChunkedArray) -> np.ndarray:
    if pa.types.is_timestamp(column.type):
        column = pc.cast(pc.cast(column, pa.timestamp("us", tz="UTC")), pa.int64())
    else:
        column = pc.cast(column, pa.int64())
    return column.fill_null(0).to_numpy()


def baskets(log: pa.Table, *, config: RecommenderConfig | None = None) -> Baskets:
    """The customer × item matrix of an interaction log.

    ``log`` has ``customer_id`` and ``item_id`` (integers or strings), ``event_type`` (a key of
    ``config.weights``: ``purchase``, ``add_to_cart``, ``favourite``, ``browse``; rows of other
    types, or with no customer or item, are ignored) and optionally ``occurred_at`` (for
    keeping the most recent items of an over-full basket). Cut the log at the cut-off first.
    """
    config = config or RecommenderConfig()
    missing = [name for name in LOG_COLUMNS if name not in log.column_names]
    if missing:
        raise ValueError(f"the interaction log has no column {missing[0]!r}")
    weighted = sorted(t for t, w in config.weights.items() if w > 0)
    types = pa.array(weighted, pa.string())
    event_type = pc.cast(log.column("event_type"), pa.string())
    keep = pc.and_(
        pc.is_in(event_type, value_set=types),
        pc.and_(pc.is_valid(log.column("customer_id")), pc.is_valid(log.column("item_id"))),
    )
    log = log.filter(keep)
    customers, c = _encode(log.column("customer_id"))
    items, i = _encode(log.column("item_id"))
    n_c, n_i = len(customers), len(items)
    if log.num_rows == 0:
        empty = sp.csr_array((n_c, n_i), dtype=np.float64)
        zeros = np.zeros(n_i, dtype=np.int64)
        return Baskets(customers, items, empty, empty.copy(), zeros, zeros.copy())
    kind = pc.index_in(pc.cast(log.column("event_type"), pa.string()), value_set=types)
    kind_codes = kind.to_numpy(zero_copy_only=False).astype(np.int64)
    weight = np.array([config.weights[t] for t in weighted], dtype=np.float64)[kind_codes]
    bought = (np.array([t == PURCHASE for t in weighted])[kind_codes]).astype(np.int8)
    when = (
        _micros(log.column("occurred_at"))
        if "occurred_at" in log.column_names
        else np.zeros(log.num_rows, dtype=np.int64)
    )
    pair = c * n_i + i
    order = np.argsort(pair, kind="stable")
    pair = pair[order]
    starts = np.flatnonzero(np.r_[True, pair[1:] != pair[:-1]])
    strongest = np.maximum.reduceat(weight[order], starts)
    was_bought = np.maximum.reduceat(bought[order], starts).astype(bool)
    latest = np.maximum.reduceat(when[order], starts)
    rows, cols = pair[starts] // n_i, pair[starts] % n_i
    cap = config.max_items_per_customer
    counts = np.bincount(rows, minlength=n_c)
    if counts.size and counts.max() > cap:
        # strongest first, then most recent, then by key; keep the first ``cap`` of each row
        by = np.lexsort((cols, -latest, -strongest, rows))
        first = np.r_[0, np.cumsum(counts)[:-1]]
        rank = np.arange(len(by)) - first[rows[by]]
        kept = np.sort(by[rank < cap])
        rows, cols, strongest, was_bought = (
            rows[kept],
            cols[kept],
            strongest[kept],
            was_bought[kept],
        )
        counts = np.bincount(rows, minlength=n_c)
    indptr = np.r_[0, np.cumsum(counts)]
    weights = sp.csr_array((strongest, cols, indptr), shape=(n_c, n_i))
    purchased = sp.csr_array(
        (
            np.ones(int(was_bought.sum())),
            cols[was_bought],
            np.r_[0, np.cumsum(np.bincount(rows[was_bought], minlength=n_c))],
        ),
        shape=(n_c, n_i),
    )
    buyers = np.bincount(cols[was_bought], minlength=n_i).astype(np.int64)
    interested = np.bincount(cols, minlength=n_i).astype(np.int64)
    return Baskets(customers, items, weights, purchased, buyers, interested)


def _binary(matrix: sp.csr_array) -> sp.csr_array:
    out = matrix.copy()
    out.data = np.ones_like(out.data)
    return out


def _blocks(bound: np.ndarray, budget: int) -> Iterator[tuple[int, int]]:
    """Consecutive [start, end) ranges whose summed ``bound`` stays under ``budget`` (a range
    holds at least one position, even one over budget on its own)."""
    start, n = 0, len(bound)
    cumulative = np.cumsum(bound, dtype=np.float64)
    while start < n:
        base = cumulative[start - 1] if start else 0.0
        end = int(np.searchsorted(cumulative, base + budget, side="right"))
        end = max(end, start + 1)
        yield start, min(end, n)
        start = end


# -------------------------------------------------------------------------- neighbours


@dataclass(frozen=True)
class ItemNeighbours:
    """The most similar items of each item (rows: items of the baskets, same order)."""

    similarity: sp.csr_array  # at most ``neighbours`` entries per row, none on the diagonal
    together: sp.csr_array  # same pattern: customers with both items in their baskets
    bought_together: sp.csr_array  # same pattern: customers who bought both (may be 0)

    @property
    def pairs(self) -> int:
        return int(self.similarity.nnz)


def _rows_of(indptr: np.ndarray) -> np.ndarray:
    return np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))


def _top_per_row(rows: np.ndarray, keys: Sequence[np.ndarray], limit: int) -> np.ndarray:
    """Positions of the first ``limit`` entries of each row when ordered by ``keys`` (as
    ``np.lexsort``: the last key first; smaller is better), returned in (row, keys) order.

    ``rows`` must be non-decreasing (CSR order). A row with more than ``limit`` entries is cut
    with a partition on the last key, in O(its length), and only its ties at the cut are
    ordered by the other keys: no sort of all the entries, which was most of the time on
    browsing data (a popular item co-occurs with thousands of others).
    """
    if len(rows) == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    ends = np.r_[starts[1:], len(rows)]
    primary, others = keys[-1], keys[:-1]
    if limit == 1:  # the best of each row, all rows at once
        best = np.minimum.reduceat(primary, starts)
        ties = np.flatnonzero(primary == np.repeat(best, ends - starts))
        ties = ties[np.lexsort((*(key[ties] for key in others), rows[ties]))]
        return ties[np.r_[True, rows[ties][1:] != rows[ties][:-1]]]
    crowded = (ends - starts) > limit
    chosen = [np.flatnonzero(np.repeat(~crowded, ends - starts))]
    for low, high in zip(starts[crowded].tolist(), ends[crowded].tolist(), strict=True):
        segment = primary[low:high]
        cut = np.partition(segment, limit - 1)[limit - 1]
        better = np.flatnonzero(segment < cut)
        tied = np.flatnonzero(segment == cut)
        room = limit - len(better)
        if len(tied) > room:
            if others:
                tied = tied[np.lexsort(tuple(key[low:high][tied] for key in others))]
            tied = tied[:room]
        chosen.append(low + better)
        chosen.append(low + tied)
    picked = np.concatenate(chosen)
    return picked[np.lexsort((*(key[picked] for key in keys), rows[picked]))]


def _same_pattern(a: sp.csr_array, b: sp.csr_array) -> bool:
    return bool(np.array_equal(a.indptr, b.indptr) and np.array_equal(a.indices, b.indices))


def item_neighbours(b: Baskets, config: RecommenderConfig | None = None) -> ItemNeighbours:
    """Each item's ``config.neighbours`` most similar items (see the module docstring)."""
    config = config or RecommenderConfig()
    n_i, n_c = b.n_items, b.n_customers
    weights, binary, purchased = b.weights, _binary(b.weights), b.purchased
    weights_t = weights.T.tocsr()
    binary_t = binary.T.tocsr()
    purchased_t = purchased.T.tocsr()
    norms = np.sqrt(np.asarray(weights_t.multiply(weights_t).sum(axis=1)).ravel())
    support = np.asarray(weights_t.sum(axis=1)).ravel()
    basket_sizes = np.diff(binary.indptr).astype(np.float64)
    bound = binary_t @ basket_sizes  # per item: the pairs its row of C can touch
    parts_rows, parts_cols, parts_sim, parts_together, parts_bought = [], [], [], [], []
    for start, end in _blocks(np.asarray(bound), config.block_pairs):
        product = (weights_t[start:end] @ weights).tocsr()
        counts = (binary_t[start:end] @ binary).tocsr()
        local_rows = _rows_of(counts.indptr)
        # Both products have the pattern of the baskets, and scipy lays a row's columns out in
        # an order that depends on the pattern only: the data align without sorting (checked).
        if not _same_pattern(product, counts):
            product.sort_indices()
            counts.sort_indices()
        if _same_pattern(product, counts):
            dot = product.data
        else:  # only if a product underflowed to zero: look the values up on the counts' pattern
            dot = _pair_values(product, local_rows, counts.indices)
        rows = local_rows + start
        cols = counts.indices.astype(np.int64)
        together = counts.data
        keep = (cols != rows) & (together >= config.min_customers)
        rows, cols, together, dot = rows[keep], cols[keep], together[keep], dot[keep]
        if config.similarity == "cosine":
            sim = dot / (norms[rows] * norms[cols])
        elif config.similarity == "conditional":
            sim = dot / support[rows]
        elif config.similarity == "lift":
            sim = together * n_c / (b.interested[rows] * b.interested[cols])
        else:
            sim = together.astype(np.float64)
        best = _top_per_row(rows, (cols, -np.round(sim, _TIE_DECIMALS)), config.neighbours)
        best = best[np.lexsort((cols[best], rows[best]))]  # canonical: by row, then column
        rows, cols, sim, together = rows[best], cols[best], sim[best], together[best]
        bought = _pair_values((purchased_t[start:end] @ purchased).tocsr(), rows - start, cols)
        parts_rows.append(rows)
        parts_cols.append(cols)
        parts_sim.append(sim)
        parts_together.append(together)
        parts_bought.append(bought)

    def assemble(values: list[np.ndarray]) -> sp.csr_array:
        rows = np.concatenate(parts_rows) if parts_rows else np.zeros(0, np.int64)
        cols = np.concatenate(parts_cols) if parts_cols else np.zeros(0, np.int64)
        data = np.concatenate(values) if values else np.zeros(0)
        indptr = np.r_[0, np.cumsum(np.bincount(rows, minlength=n_i))]
        return sp.csr_array((data.astype(np.float64), cols, indptr), shape=(n_i, n_i))

    return ItemNeighbours(
        similarity=assemble(parts_sim),
        together=assemble(parts_together),
        bought_together=assemble(parts_bought),
    )


# ----------------------------------------------------------------------------- suggest


@dataclass(frozen=True)
class Suggestions:
    """One row per (customer, rank): ``table`` has ``customer_id``, ``item_id``, ``rank``
    (1-based), ``score``, ``basis`` (``together`` or ``popular``), ``anchor_item_id`` (the
    customer's item behind a ``together`` suggestion, else null), ``customers`` (together: the
    *other* customers with both items; popular: customers interested in the item), ``buyers``
    (together: other customers who bought both; popular: who bought the item) and ``seen``
    (together: the customer had looked at the item themselves). Sorted by customer, then
    rank."""

    table: pa.Table

    def __len__(self) -> int:
        return self.table.num_rows

    def for_customer(self, customer: Any) -> list[dict[str, Any]]:
        rows = self.table.filter(pc.equal(self.table.column("customer_id"), customer))
        return rows.to_pylist()

    def items_by_customer(self) -> dict[Any, list[Any]]:
        out: dict[Any, list[Any]] = {}
        for customer, item in zip(
            self.table.column("customer_id").to_pylist(),
            self.table.column("item_id").to_pylist(),
            strict=True,
        ):
            out.setdefault(customer, []).append(item)
        return out


def _popular_order(b: Baskets) -> np.ndarray:
    """Items by distinct buyers, then distinct interested customers, then key."""
    return np.lexsort((np.arange(b.n_items), -b.interested, -b.buyers))


def _excluded(b: Baskets, exclude: Exclusion) -> sp.csr_array | None:
    if exclude == "purchased":
        return b.purchased
    if exclude == "interacted":
        return _binary(b.weights)
    return None


@dataclass
class _Rows:
    """Suggestion columns being collected (in row indices of the baskets)."""

    customer: list[np.ndarray] = field(default_factory=list)
    item: list[np.ndarray] = field(default_factory=list)
    rank: list[np.ndarray] = field(default_factory=list)
    score: list[np.ndarray] = field(default_factory=list)
    basis: list[np.ndarray] = field(default_factory=list)
    anchor: list[np.ndarray] = field(default_factory=list)
    customers: list[np.ndarray] = field(default_factory=list)
    buyers: list[np.ndarray] = field(default_factory=list)
    seen: list[np.ndarray] = field(default_factory=list)

    def add(self, **columns: np.ndarray) -> None:
        for name, values in columns.items():
            getattr(self, name).append(values)

    def column(self, name: str, dtype: Any) -> np.ndarray:
        parts = getattr(self, name)
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)


def _anchors(weights_rows: sp.csr_array, similarity: sp.csr_array, cols: np.ndarray) -> np.ndarray:
    """For each (customer's row of weights, suggested item): the customer's item contributing
    most to the score, ``W_ci · sim(i, j)`` (ties: the smaller item index).

    Looked up per item of the customer's basket (at most ``max_items_per_customer``), not by
    taking column ``j`` of the similarities: a best seller is a neighbour of nearly every item,
    and its column can be as long as the catalogue."""
    pair = _rows_of(weights_rows.indptr)
    items = weights_rows.indices.astype(np.int64)
    contribution = weights_rows.data * _pair_values(similarity, items, cols[pair])
    useful = contribution > 0
    pair, items, contribution = pair[useful], items[useful], contribution[useful]
    best = _top_per_row(pair, (items, -np.round(contribution, _TIE_DECIMALS)), 1)
    anchors = np.full(len(cols), -1, dtype=np.int64)
    anchors[pair[best]] = items[best]
    return anchors


def _pair_values(matrix: sp.csr_array, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    if len(rows) == 0:
        return np.zeros(0)
    return np.asarray(matrix[rows, cols], dtype=np.float64).ravel()


def recommend(
    b: Baskets,
    neighbours: ItemNeighbours | None,
    *,
    k: int = 10,
    customers: Any = None,
    config: RecommenderConfig | None = None,
) -> Suggestions:
    """The top ``k`` suggestions of each customer (see the module docstring).

    ``customers``: whom to suggest for (keys; default every customer of the baskets); keys not
    in the baskets are cold and get the best sellers. ``neighbours=None`` gives the popularity
    baseline alone (the same exclusions apply).
    """
    if k < 1:
        raise ValueError("k must be at least 1")
    config = config or RecommenderConfig()
    targets = b.customers if customers is None else _key_array(customers, like=b.customers)
    if len(targets):
        targets = np.unique(targets)
    index = b.customer_index(targets)
    warm = index >= 0
    out = _Rows()
    excluded = _excluded(b, config.exclude)
    popular = _popular_order(b)
    share = b.buyers / max(b.n_customers, 1)
    warm_rows = index[warm]
    if neighbours is not None and neighbours.pairs:
        per_row = np.diff(b.weights.indptr)[warm_rows] * config.neighbours
        for start, end in _blocks(per_row.astype(np.float64), config.block_pairs):
            _suggest_block(b, neighbours, excluded, warm_rows[start:end], k, out)
    _fill_with_popular(b, excluded, warm_rows, k, popular, share, out)
    cold = targets[~warm]
    if len(cold) and b.n_items:
        top = popular[:k]
        out.add(
            customer=np.repeat(-1 - np.arange(len(cold)), len(top)),  # cold: negative codes
            item=np.tile(top, len(cold)),
            rank=np.tile(np.arange(1, len(top) + 1), len(cold)),
            score=np.tile(share[top], len(cold)),
            basis=np.full(len(cold) * len(top), POPULAR),
            anchor=np.full(len(cold) * len(top), -1),
            customers=np.tile(b.interested[top], len(cold)),
            buyers=np.tile(b.buyers[top], len(cold)),
            seen=np.zeros(len(cold) * len(top), dtype=bool),
        )
    return _suggestions_table(b, cold, out)


def _suggest_block(
    b: Baskets,
    neighbours: ItemNeighbours,
    excluded: sp.csr_array | None,
    rows: np.ndarray,
    k: int,
    out: _Rows,
) -> None:
    weights = b.weights[rows]
    scores = (weights @ neighbours.similarity).tocsr()
    if excluded is not None:
        scores = (scores - scores.multiply(excluded[rows])).tocsr()
    scores.eliminate_zeros()
    local = _rows_of(scores.indptr)
    cols = scores.indices.astype(np.int64)
    rounded = np.round(scores.data, _TIE_DECIMALS)
    # by customer, then best first: score, then the item's buyers, then its key
    best = _top_per_row(local, (cols, -b.buyers[cols], -rounded), k)
    local, cols, score = local[best], cols[best], scores.data[best]
    if len(best) == 0:
        return
    first = np.searchsorted(local, local, side="left")
    rank = np.arange(len(local)) - first + 1
    anchors = _anchors(weights[local], neighbours.similarity, cols)
    # the counts are of *other* customers: this one had the anchor, and maybe the item too
    seen = _pair_values(weights, local, cols) > 0
    purchased = b.purchased[rows]
    bought_both = (_pair_values(purchased, local, anchors) > 0) & (
        _pair_values(purchased, local, cols) > 0
    )
    out.add(
        customer=rows[local],
        item=cols,
        rank=rank,
        score=score,
        basis=np.full(len(cols), TOGETHER),
        anchor=anchors,
        customers=_pair_values(neighbours.together, anchors, cols) - seen,
        buyers=_pair_values(neighbours.bought_together, anchors, cols) - bought_both,
        seen=seen,
    )


def _fill_with_popular(
    b: Baskets,
    excluded: sp.csr_array | None,
    rows: np.ndarray,
    k: int,
    popular: np.ndarray,
    share: np.ndarray,
    out: _Rows,
) -> None:
    """Top up every warm customer with fewer than ``k`` suggestions with best sellers they have
    not bought (nor already been suggested)."""
    if len(rows) == 0 or b.n_items == 0:
        return
    have_rows = np.concatenate(out.customer) if out.customer else np.zeros(0, np.int64)
    have_items = np.concatenate(out.item) if out.item else np.zeros(0, np.int64)
    have = np.bincount(have_rows, minlength=b.n_customers)[rows]
    needy = rows[have < k]
    if len(needy) == 0:
        return
    most_excluded = (
        int(np.diff(excluded.indptr).max()) if excluded is not None and excluded.nnz else 0
    )
    depth = min(b.n_items, 2 * k + most_excluded)
    candidates = popular[:depth]
    position = np.full(b.n_items, -1, dtype=np.int64)
    position[candidates] = np.arange(depth)
    block = max(1, 4_000_000 // max(depth, 1))
    for start in range(0, len(needy), block):
        chunk = needy[start : start + block]
        taken = np.zeros((len(chunk), depth), dtype=bool)
        if excluded is not None:
            taken |= excluded[chunk][:, candidates].toarray() > 0
        row_of = np.full(b.n_customers, -1, dtype=np.int64)
        row_of[chunk] = np.arange(len(chunk))
        mine = row_of[have_rows] >= 0
        hit = mine & (position[have_items] >= 0)
        taken[row_of[have_rows[hit]], position[have_items[hit]]] = True
        free = ~taken
        need = k - np.bincount(row_of[have_rows[mine]], minlength=len(chunk))
        order_in_row = np.cumsum(free, axis=1)
        chosen = free & (order_in_row <= need[:, None])
        r, c = np.nonzero(chosen)
        items = candidates[c]
        start_rank = k - need
        out.add(
            customer=chunk[r],
            item=items,
            rank=start_rank[r] + order_in_row[r, c],
            score=share[items],
            basis=np.full(len(items), POPULAR),
            anchor=np.full(len(items), -1),
            customers=b.interested[items],
            buyers=b.buyers[items],
            seen=np.zeros(len(items), dtype=bool),
        )


def _suggestions_table(b: Baskets, cold: np.ndarray, out: _Rows) -> Suggestions:
    customer = out.column("customer", np.int64)
    item = out.column("item", np.int64)
    rank = out.column("rank", np.int64)
    order = np.lexsort((rank, customer))
    customer, item, rank = customer[order], item[order], rank[order]
    anchor = out.column("anchor", np.int64)[order]
    basis = out.column("basis", np.int64)[order]
    # customer codes: >= 0 rows of the baskets, < 0 the cold customers (-1 is cold[0])
    keys = np.concatenate([b.customers, cold]) if len(cold) else b.customers
    customer_keys = keys[np.where(customer >= 0, customer, b.n_customers - 1 - customer)]
    anchor_keys = np.full(len(anchor), None, dtype=object)
    anchor_keys[anchor >= 0] = b.items[anchor[anchor >= 0]]
    table = pa.table(
        {
            "customer_id": _arrow_keys(customer_keys, b.customers),
            "item_id": _arrow_keys(b.items[item], b.items),
            "rank": pa.array(rank, pa.int32()),
            "score": pa.array(out.column("score", np.float64)[order], pa.float64()),
            "basis": pa.array(np.array(BASES, dtype=object)[basis], pa.string()),
            "anchor_item_id": _arrow_keys(anchor_keys, b.items),
            "customers": pa.array(out.column("customers", np.int64)[order], pa.int64()),
            "buyers": pa.array(out.column("buyers", np.int64)[order], pa.int64()),
            "seen": pa.array(out.column("seen", bool)[order], pa.bool_()),
        }
    )
    return Suggestions(table.sort_by([("customer_id", "ascending"), ("rank", "ascending")]))


def _arrow_keys(values: np.ndarray, like: np.ndarray) -> pa.Array:
    """Keys as Arrow: integers stay integers, anything else becomes text; None is null. The
    type follows ``values``, or ``like`` (the key universe) when ``values`` are all None."""
    if values.dtype.kind in "iu":
        return pa.array(values, pa.int64())
    listed = values.tolist()
    sample = next((v for v in listed if v is not None), None)
    if sample is None and len(like):
        sample = like[0]
    if isinstance(sample, int | np.integer) and not isinstance(sample, bool):
        return pa.array([None if v is None else int(v) for v in listed], pa.int64())
    return pa.array([None if v is None else str(v) for v in listed], pa.string())


# ----------------------------------------------------------------------------- reasons

_REASONS = {
    ("together", True, False): N_("Bought with {anchor} by {customers} customers"),
    ("together", True, True): N_("Bought with {anchor} by 1 customer"),
    ("together", False, False): N_("Looked at with {anchor} by {customers} customers"),
    ("together", False, True): N_("Looked at with {anchor} by 1 customer"),
    ("popular", True, False): N_("Popular: bought by {customers} customers"),
    ("popular", True, True): N_("Popular: bought by 1 customer"),
    ("popular", False, False): N_("Popular: looked at by {customers} customers"),
    ("popular", False, True): N_("Popular: looked at by 1 customer"),
}


#: The customer looked at the item themselves and nobody else bought it with the anchor.
SEEN_REASON = N_("Viewed before, together with {anchor}")


def suggestion_reason(
    basis: str, *, anchor: str, customers: int, buyers: int, seen: bool = False
) -> Reason:
    """Why an item is suggested, as a reason to store (``patron.intelligence.explain``).

    ``together``: "Bought with {anchor} by N customers" (N other customers who bought both);
    else, when the customer looked at the item themselves (``seen``), "Viewed before, together
    with {anchor}"; else "Looked at with {anchor} by N customers" (viewed, carted or favourited
    together). ``popular``: "Popular: bought by N customers" (N distinct buyers), or "looked
    at" when nobody bought it yet.
    """
    if basis not in BASES:
        raise ValueError(f"unknown basis {basis!r}")
    by_purchase = buyers > 0
    if basis == "together" and seen and not by_purchase:
        return Reason(SEEN_REASON, {"anchor": anchor})
    count = buyers if by_purchase else customers
    template = _REASONS[(basis, by_purchase, count == 1)]
    params: dict[str, Any] = {"customers": int(count)}
    if basis == "together":
        params["anchor"] = anchor
    return Reason(template, params)


# -------------------------------------------------------------------------- evaluation


@dataclass(frozen=True)
class Evaluation:
    """A time-split back-test: suggestions made from what happened before ``cut`` against the
    items each customer bought from ``cut`` to ``end`` that they had not bought before.

    ``hit_rate``: share of evaluated customers with at least one of those items among their
    ``k`` suggestions; ``recall``: mean over customers of (items suggested and bought) /
    (items bought). ``*_warm``: the customers with any history before the cut (the cold ones
    get the best sellers from both methods). ``model_only`` / ``popular_only``: customers hit by
    one method and not the other (a paired comparison: McNemar's test uses these two counts).
    """

    k: int
    cut: datetime
    end: datetime | None
    train_customers: int
    train_items: int
    train_pairs: int
    neighbour_pairs: int
    customers: int  # evaluated: bought something new in the test window
    warm_customers: int
    test_purchases: int  # (customer, new item) pairs in the test window
    unknown_items: int  # of those, items nobody touched before the cut (out of any reach)
    hit_rate: float | None
    hit_rate_popular: float | None
    recall: float | None
    recall_popular: float | None
    hit_rate_warm: float | None
    hit_rate_warm_popular: float | None
    model_only: int
    popular_only: int
    seconds_fit: float
    seconds_suggest: float

    @property
    def mcnemar_p(self) -> float | None:
        """Exact two-sided McNemar p-value of "the model hits as often as popularity": a
        binomial test on the customers hit by one method only. None when there are none."""
        discordant = self.model_only + self.popular_only
        if discordant == 0:
            return None
        from scipy.stats import binomtest

        return float(binomtest(self.model_only, discordant, 0.5).pvalue)

    def as_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["mcnemar_p"] = self.mcnemar_p
        out["cut"] = self.cut.isoformat()
        out["end"] = self.end.isoformat() if self.end else None
        return out


def _cut_log(log: pa.Table, start: datetime | None, end: datetime | None) -> pa.Table:
    when = pc.cast(log.column("occurred_at"), pa.timestamp("us", tz="UTC"))
    mask = pa.array(np.ones(log.num_rows, dtype=bool))
    if start is not None:
        mask = pc.and_(mask, pc.greater_equal(when, pa.scalar(start, pa.timestamp("us", "UTC"))))
    if end is not None:
        mask = pc.and_(mask, pc.less(when, pa.scalar(end, pa.timestamp("us", "UTC"))))
    return log.filter(pc.fill_null(mask, False))


def _ratio(numerator: float, denominator: int) -> float | None:
    return float(numerator) / denominator if denominator else None


def evaluate(
    log: pa.Table,
    *,
    cut: datetime,
    end: datetime | None = None,
    k: int = 10,
    config: RecommenderConfig | None = None,
) -> Evaluation:
    """Back-test on a time split (see ``Evaluation``): fit on ``log`` before ``cut``, test on
    the purchases in [``cut``, ``end``). ``log`` as for ``baskets``, with ``occurred_at``
    (aware datetimes or UTC timestamps)."""
    config = config or RecommenderConfig()
    if "occurred_at" not in log.column_names:
        raise ValueError("the interaction log has no column 'occurred_at'")
    started = time.perf_counter()
    train = _cut_log(log, None, cut)
    b = baskets(train, config=config)
    neighbours = item_neighbours(b, config)
    fitted = time.perf_counter()
    test = _cut_log(log, cut, end)
    test = test.filter(pc.equal(pc.cast(test.column("event_type"), pa.string()), PURCHASE))
    test = test.filter(
        pc.and_(pc.is_valid(test.column("customer_id")), pc.is_valid(test.column("item_id")))
    )
    customer_keys, customer_codes = _encode(test.column("customer_id"))
    n_items_known = b.n_items
    item_codes = b.item_index(test.column("item_id"))
    # unknown items get codes above the known ones, so that they count but never hit
    unknown = item_codes < 0
    if unknown.any():
        _, unknown_codes = _encode(test.column("item_id").filter(pa.array(unknown)))
        item_codes[unknown] = n_items_known + unknown_codes
    width = int(item_codes.max()) + 1 if len(item_codes) else 1
    pairs = np.unique(customer_codes * width + item_codes)
    p_customer, p_item = pairs // width, pairs % width
    # only new purchases: items the customer had not bought before the cut
    rows = b.customer_index(customer_keys)[p_customer]
    known = (rows >= 0) & (p_item < n_items_known)
    before = np.zeros(len(pairs), dtype=bool)
    if known.any():
        before[known] = _pair_values(b.purchased, rows[known], p_item[known]) > 0
    p_customer, p_item = p_customer[~before], p_item[~before]
    evaluated = np.unique(p_customer)
    relevant = np.bincount(p_customer, minlength=len(customer_keys))
    targets = customer_keys[evaluated]
    suggestions = recommend(b, neighbours, k=k, customers=targets, config=config)
    suggested = time.perf_counter()
    baseline = recommend(b, None, k=k, customers=targets, config=config)

    def hits(s: Suggestions) -> np.ndarray:
        """Per customer code: how many of the suggestions were bought in the test window."""
        if len(s) == 0:
            return np.zeros(len(customer_keys), dtype=np.int64)
        codes = _lookup(customer_keys, s.table.column("customer_id"))
        items = b.item_index(s.table.column("item_id"))
        got = np.isin(codes * width + items, p_customer * width + p_item)
        return np.bincount(codes[got], minlength=len(customer_keys))

    model_hits, popular_hits = hits(suggestions)[evaluated], hits(baseline)[evaluated]
    warm = b.customer_index(targets) >= 0
    n = len(evaluated)
    return Evaluation(
        k=k,
        cut=cut,
        end=end,
        train_customers=b.n_customers,
        train_items=b.n_items,
        train_pairs=int(b.weights.nnz),
        neighbour_pairs=neighbours.pairs,
        customers=n,
        warm_customers=int(warm.sum()),
        test_purchases=len(p_customer),
        unknown_items=int((p_item >= n_items_known).sum()),
        hit_rate=_ratio(int((model_hits > 0).sum()), n),
        hit_rate_popular=_ratio(int((popular_hits > 0).sum()), n),
        recall=_ratio(float((model_hits / relevant[evaluated]).sum()), n) if n else None,
        recall_popular=_ratio(float((popular_hits / relevant[evaluated]).sum()), n) if n else None,
        hit_rate_warm=_ratio(int((model_hits[warm] > 0).sum()), int(warm.sum())),
        hit_rate_warm_popular=_ratio(int((popular_hits[warm] > 0).sum()), int(warm.sum())),
        model_only=int(((model_hits > 0) & (popular_hits == 0)).sum()),
        popular_only=int(((popular_hits > 0) & (model_hits == 0)).sum()),
        seconds_fit=fitted - started,
        seconds_suggest=suggested - fitted,
    )
