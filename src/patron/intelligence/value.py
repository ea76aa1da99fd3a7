"""Customer value: what a customer is worth now, what they could be worth, and how much they
bring through others (R-B6).

Definitions (per customer, from the per-customer score table):

``current_value``
    Spend in the last 365 days (``spend_365d``); missing → 0.

``potential_value``
    Realistic headroom: how much more a year the customer would spend if they reached the
    75th percentile of ``current_value`` among *similar* customers, discounted by the chance
    that they are still active::

        potential_value = p_alive × max(0, P75(current_value of peers) − current_value)

    Peers are the customers sharing the value of ``peer_column`` — by default the
    customer's k-means ``cluster`` when the table has one, else the ``rfm_segment``, else
    everybody. The 75th percentile of *similar* customers, rather than the best customer
    of the shop, is an outcome many customers like this one already reach, so the gap is
    one a campaign can plausibly close; ``p_alive`` (BG/NBD) keeps lapsed customers from
    showing phantom potential; where ``p_alive`` is absent or missing it counts as 1. A
    model-based alternative — predicted 12-month CLV minus the last year's spend — was rejected as the
    headline number: the Gamma-Gamma CLV shrinks every customer towards the shop's mean, so
    that difference mostly measures regression to the mean, not an opportunity.

``word_of_mouth``
    Influence on other customers, in points::

        word_of_mouth = 1 × helpful_votes + 3 × positive_reviews + 10 × referrals

    A referral is a customer brought in (strongest), a positive review is public advocacy,
    a helpful vote is evidence that a review was read and weighed. ``positive_reviews`` is
    taken from that column when present; otherwise all of a customer's ``reviews`` count as
    positive when their ``mean_sentiment`` is at least ``positive_sentiment`` (0.6 on the 0–1
    scale), or, without sentiment, when their ``mean_rating`` is 4 or more. Missing counts
    are 0; ``referrals`` is used when the table has it.

Pure numpy / pyarrow; no Django.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from patron.intelligence import reason_columns as rc
from patron.intelligence.models.rfm import LABELS as RFM_LABELS

__all__ = ["WORD_OF_MOUTH_WEIGHTS", "customer_value"]

FloatArray = npt.NDArray[np.float64]

#: Points per helpful vote, positive review and referral.
WORD_OF_MOUTH_WEIGHTS: Final[dict[str, float]] = {
    "helpful_votes": 1.0,
    "positive_reviews": 3.0,
    "referrals": 10.0,
}
PEER_QUANTILE: Final[float] = 0.75
_DEFAULT_PEER_COLUMNS: Final[tuple[str, ...]] = ("cluster", "rfm_segment")


def customer_value(
    table: pa.Table,
    *,
    peer_column: str | None = "auto",
    positive_sentiment: float = 0.6,
) -> pa.Table:
    """Current value, potential value, word of mouth and reasons per customer.

    Parameters
    ----------
    table : pyarrow.Table
        One row per customer: ``customer_id`` and ``spend_365d``; optionally ``p_alive``,
        ``cluster`` / ``rfm_segment`` (peer groups), ``helpful_votes``, ``positive_reviews``,
        ``reviews``, ``mean_sentiment``, ``mean_rating``, ``referrals``.
    peer_column : str or None, default "auto"
        Column defining "similar customers"; ``None`` compares with everybody; ``"auto"``
        takes ``cluster`` if present, else ``rfm_segment``, else everybody.
    positive_sentiment : float, default 0.6
        ``mean_sentiment`` from which a customer's reviews count as positive.

    Returns
    -------
    pyarrow.Table
        ``customer_id``, ``current_value``, ``potential_value``, ``word_of_mouth`` (float64)
        and ``value_reasons`` (a JSON list of reasons, ``patron.intelligence.explain``
        shapes), in the order of ``table``.
    """
    names = set(table.column_names)
    for column in ("customer_id", "spend_365d"):
        if column not in names:
            raise ValueError(f"table: column {column!r} is missing")
    if peer_column == "auto":
        peer_column = next((c for c in _DEFAULT_PEER_COLUMNS if c in names), None)
    elif peer_column is not None and peer_column not in names:
        raise ValueError(f"peer_column: column {peer_column!r} is not in the table")
    n = table.num_rows

    current = np.nan_to_num(_column(table, "spend_365d"), nan=0.0)
    p_alive = _column(table, "p_alive") if "p_alive" in names else np.ones(n)
    p_alive = np.clip(np.nan_to_num(p_alive, nan=1.0), 0.0, 1.0)
    if peer_column:
        groups, group_values = _groups(table, peer_column)
    else:
        groups, group_values = np.zeros(n, dtype=np.int64), [None]
    peer_target = _group_quantile(current, groups, PEER_QUANTILE)
    potential = p_alive * np.maximum(0.0, peer_target - current)

    helpful = _count(table, "helpful_votes")
    positive = _positive_reviews(table, positive_sentiment)
    referrals = _count(table, "referrals")
    word_of_mouth = (
        WORD_OF_MOUTH_WEIGHTS["helpful_votes"] * helpful
        + WORD_OF_MOUTH_WEIGHTS["positive_reviews"] * positive
        + WORD_OF_MOUTH_WEIGHTS["referrals"] * referrals
    )

    reasons = _reasons(
        current=current,
        potential=potential,
        peer_target=peer_target,
        p_alive=p_alive if "p_alive" in names else None,
        peers=rc.pick(groups, _peer_words(peer_column, group_values)),
        helpful=helpful,
        positive=positive,
        referrals=referrals,
    )
    return pa.table(
        {
            "customer_id": table.column("customer_id"),
            "current_value": pa.array(current, pa.float64()),
            "potential_value": pa.array(potential, pa.float64()),
            "word_of_mouth": pa.array(word_of_mouth, pa.float64()),
            "value_reasons": reasons,
        }
    )


def _column(table: pa.Table, name: str) -> FloatArray:
    column = pc.cast(table.column(name), pa.float64())
    return np.asarray(column.to_numpy(zero_copy_only=False), dtype=np.float64)


def _count(table: pa.Table, name: str) -> FloatArray:
    """A non-negative count column, 0 where missing or absent."""
    if name not in table.column_names:
        return np.zeros(table.num_rows)
    return np.maximum(0.0, np.nan_to_num(_column(table, name), nan=0.0))


def _positive_reviews(table: pa.Table, positive_sentiment: float) -> FloatArray:
    names = set(table.column_names)
    if "positive_reviews" in names:
        return _count(table, "positive_reviews")
    reviews = _count(table, "reviews")
    if "mean_sentiment" in names:
        is_positive = _column(table, "mean_sentiment") >= positive_sentiment
    elif "mean_rating" in names:
        is_positive = _column(table, "mean_rating") >= 4.0
    else:
        return np.zeros(table.num_rows)
    return np.where(is_positive, reviews, 0.0)  # NaN compares False: not positive


def _groups(table: pa.Table, column: str) -> tuple[npt.NDArray[np.int64], list[object]]:
    """Dense group codes for any column type, and each code's value; nulls form a group of
    their own, whose value is ``None``."""
    encoded = pc.dictionary_encode(table.column(column).combine_chunks())
    nulls = np.asarray(encoded.indices.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    indices = np.nan_to_num(encoded.indices.to_numpy(zero_copy_only=False), nan=0.0)
    codes = np.where(nulls, len(encoded.dictionary), indices).astype(np.int64)
    return codes, [*encoded.dictionary.to_pylist(), None]


def _group_quantile(
    values: FloatArray, groups: npt.NDArray[np.int64], quantile: float
) -> FloatArray:
    """Each row's group quantile (linear interpolation), computed with one sort."""
    if values.size == 0:
        return np.zeros(0)
    order = np.lexsort((values, groups))
    sorted_values = values[order]
    counts = np.bincount(groups)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    present = counts > 0
    position = starts[present] + quantile * (counts[present] - 1)
    below = np.floor(position).astype(np.int64)
    above = np.minimum(below + 1, starts[present] + counts[present] - 1)
    fraction = position - below
    per_group = np.zeros(counts.size)
    per_group[present] = sorted_values[below] * (1 - fraction) + sorted_values[above] * fraction
    return per_group[groups]


def _peer_words(column: str | None, values: list[object]) -> list[str]:
    """Who the peers of each group are, in each language, as JSON reason parameters."""
    if column is None:
        return [rc.dump({"en": "all customers", "zh-hans": "全部客户"})] * len(values)
    noun = "cluster" if column == "cluster" else column.replace("_", " ")

    def words(value: object) -> dict[str, str]:
        if value is None:
            return {"en": f"customers without a {noun}", "zh-hans": f"没有{noun}的客户"}
        if column == "rfm_segment" and value in RFM_LABELS:
            zh, en = RFM_LABELS[str(value)]
            return {"en": f"customers in the {en} segment", "zh-hans": f"{zh}分群的客户"}
        if column == "cluster":
            return {"en": f"customers in cluster {value}", "zh-hans": f"第 {value} 群组的客户"}
        return {"en": f"customers in {noun} {value}", "zh-hans": f"{noun} 为 {value} 的客户"}

    return [rc.dump(words(value)) for value in values]


def _reasons(
    *,
    current: FloatArray,
    potential: FloatArray,
    peer_target: FloatArray,
    p_alive: FloatArray | None,
    peers: pa.Array,
    helpful: FloatArray,
    positive: FloatArray,
    referrals: FloatArray,
) -> pa.Array:
    """Three reasons per customer — current value, potential, word of mouth — as a JSON list
    (keys of ``reason_texts``), built column-wise: this runs for every customer."""
    amount = np.rint(current)
    spent = rc.reason(
        (np.where(amount > 0, 0, 1), ("value.spent", "value.no_spend")),
        {"amount": rc.integer(amount)},
    )
    gap, target = np.rint(potential), np.rint(peer_target)
    short = np.rint(peer_target - current)
    # 0 headroom, 1 already at the top, 2 little headroom; + 3: with the chance of being active
    kind = np.where(gap >= 1, 0, np.where(short < 1, 1, 2))
    if p_alive is not None:
        kind = np.where(kind == 1, 1, kind + 3)
        alive = rc.integer(np.floor(100 * p_alive))
    else:
        alive = rc.integer(np.full(current.shape, np.nan))
    headroom = rc.reason(
        (
            kind,
            (
                "value.headroom",
                "value.at_top",
                "value.little",
                "value.headroom_alive",
                "value.at_top",
                "value.little_alive",
            ),
        ),
        {
            "gap": rc.integer(gap),
            "peers": peers,
            "target": rc.integer(target),
            "alive": alive,
        },
    )
    # one reason per distinct (votes, positive reviews, referrals): packed into one integer
    counts = [
        np.clip(np.rint(c), 0, _COUNT_MAX).astype(np.int64) for c in (helpful, positive, referrals)
    ]
    packed = (counts[0] << 42) | (counts[1] << 21) | counts[2]
    distinct, which = np.unique(packed, return_inverse=True)
    mouth = rc.pick(
        which.reshape(-1),
        [
            _word_of_mouth(int(k >> 42), int((k >> 21) & _COUNT_MAX), int(k & _COUNT_MAX))
            for k in distinct
        ],
    )
    return rc.listed([spent, headroom, mouth])


_COUNT_MAX = (1 << 21) - 1  # counts above two million are shown as that


def _word_of_mouth(helpful: int, positive: int, referrals: int) -> str:
    """The word-of-mouth reason for one (votes, positive reviews, referrals) triple, as JSON
    (few distinct triples among many customers)."""
    if not (helpful or positive or referrals):
        return rc.dump({"key": "value.no_mouth", "params": {}})
    english = [
        f"{count} {noun if count == 1 else plural}"
        for count, noun, plural in (
            (helpful, "helpful vote on reviews", "helpful votes on reviews"),
            (positive, "positive review", "positive reviews"),
            (referrals, "referral", "referrals"),
        )
        if count > 0
    ]
    chinese = [
        words
        for count, words in (
            (helpful, f"评价获得 {helpful} 次“有用”"),
            (positive, f"{positive} 条好评"),
            (referrals, f"推荐 {referrals} 位新客户"),
        )
        if count > 0
    ]
    counts = {"en": ", ".join(english), "zh-hans": "，".join(chinese)}
    return rc.dump({"key": "value.mouth", "params": {"counts": counts}})
