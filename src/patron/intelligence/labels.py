"""Outcome labels for the supervised models, built from the source tables over a window.

A label window is ``[start, end)``: only events stamped inside it count, so that a model fitted
on features as of ``start`` and labels over ``[start, end)`` is back-tested honestly, and the
same functions with ``start`` = the cut-off give the labels a future back-test will score.

* :func:`bad_outcomes` — the credit model's target: chargebacks, pay-later defaults,
  cash-on-delivery refusals, malicious returns and external fraud flags.
* :func:`churned` — the churn model's target: an existing buyer who bought nothing in the window.

Pure pyarrow / numpy, no Django. Times are compared as UTC microseconds; a null time is never
inside any window.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from patron.intelligence.sources import Sources

__all__ = [
    "ABUSE_REASON_MARKERS",
    "BAD_COUNT_COLUMNS",
    "bad_outcomes",
    "bought_before",
    "churned",
]

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: Substrings of a return reason (case-insensitive) that say the goods were used before being
#: sent back — wardrobing, the commonest return abuse. Deliberately left out: plain change of
#: mind (不想要了, 七天无理由, 和想象的不一样): the 7-day no-reason return is a consumer's
#: right, and such reasons within 48 h are common among ordinary customers; and honest
#: mistakes or faults (拍错了, 尺码不合适, 质量问题). "Tried on" (试穿) is kept although a
#: fitting can be honest: together with the 48-hour window it is the classic pattern.
ABUSE_REASON_MARKERS: tuple[str, ...] = (
    "试穿",
    "穿过",
    "穿了一次",
    "用过",
    "用了一次",
    "用完",
    "拍完照",
    "活动结束",
    "tried it on",
    "tried on",
    "worn",
    "used once",
    "after the event",
)

#: Count columns of :func:`bad_outcomes`, one per kind of bad outcome.
BAD_COUNT_COLUMNS: tuple[str, ...] = (
    "chargebacks",
    "pay_later_defaults",
    "cod_refusals",
    "abusive_quick_returns",
    "serial_return_orders",
    "fraud_flags",
)

_NULL_TIME = np.iinfo(np.int64).min


def _micros(when: datetime) -> int:
    if when.tzinfo is None:
        raise ValueError(f"window bound {when!r} must be timezone-aware")
    return int(pa.scalar(when, type=pa.timestamp("us", tz="UTC")).value)


def _times(table: pa.Table, column: str) -> IntArray:
    """A timestamp column as int64 UTC microseconds; null → a sentinel before any window."""
    values = pc.cast(table.column(column), pa.timestamp("us", tz="UTC"))
    as_int = pc.fill_null(pc.cast(values, pa.int64()), _NULL_TIME)
    return np.asarray(as_int.to_numpy(), dtype=np.int64)


def _is_null(table: pa.Table, column: str) -> BoolArray:
    return np.asarray(pc.is_null(table.column(column)).to_numpy(zero_copy_only=False), dtype=bool)


def _ids(table: pa.Table, column: str = "customer_id") -> IntArray:
    return np.asarray(pc.fill_null(table.column(column), -1).to_numpy(), dtype=np.int64)


def _equals(table: pa.Table, column: str, value: str) -> BoolArray:
    mask = pc.fill_null(pc.equal(table.column(column), value), False)
    return np.asarray(mask.to_numpy(zero_copy_only=False), dtype=bool)


def _contains_any(table: pa.Table, column: str, markers: Sequence[str]) -> BoolArray:
    found = np.zeros(table.num_rows, dtype=bool)
    for marker in markers:
        hit = pc.fill_null(
            pc.match_substring(table.column(column), marker, ignore_case=True), False
        )
        found |= np.asarray(hit.to_numpy(zero_copy_only=False), dtype=bool)
    return found


def _in_window(times: IntArray, start: int, end: int) -> BoolArray:
    return (times >= start) & (times < end)


def _unique(ids: IntArray) -> IntArray:
    """Sorted distinct ids (Arrow's hash-based unique: far faster than a sort on millions)."""
    distinct = pc.unique(pa.array(ids, type=pa.int64())).to_numpy()
    return np.sort(np.asarray(distinct, dtype=np.int64))


def _is_in(ids: IntArray, members: IntArray) -> BoolArray:
    found = pc.is_in(pa.array(ids, type=pa.int64()), value_set=pa.array(members, type=pa.int64()))
    return np.asarray(found.to_numpy(zero_copy_only=False), dtype=bool)


def _count_by(universe: IntArray, ids: IntArray) -> IntArray:
    """How often each id of the sorted ``universe`` occurs in ``ids`` (all present in it)."""
    if ids.size == 0:
        return np.zeros(universe.size, dtype=np.int64)
    positions = np.searchsorted(universe, ids)
    return np.bincount(positions, minlength=universe.size).astype(np.int64)


def _distinct_pairs(customer: IntArray, order: IntArray) -> tuple[IntArray, IntArray]:
    pairs = (
        pa.table({"customer_id": pa.array(customer, pa.int64()), "order_id": order})
        .group_by(["customer_id", "order_id"])
        .aggregate([])
    )
    return _ids(pairs), _ids(pairs, "order_id")


def bad_outcomes(
    sources: Sources,
    start: datetime,
    end: datetime,
    *,
    abuse_reason_markers: Sequence[str] = ABUSE_REASON_MARKERS,
    quick_return_hours: float = 48.0,
    serial_min_returned_orders: int = 3,
    serial_min_share: float = 0.5,
) -> pa.Table:
    """Per customer, the bad outcomes of the window ``[start, end)`` and whether any occurred.

    Kinds of bad outcome, each counted per customer (the columns of the result):

    ``chargebacks``
        Payments with status ``chargeback`` and ``at`` in the window.
    ``pay_later_defaults``
        Payments with status ``defaulted`` and ``at`` in the window.
    ``cod_refusals``
        Payments with status ``refused`` (cash on delivery refused at the door) and ``at`` in
        the window.
    ``abusive_quick_returns``
        Malicious returns, rule 1: return requests (``kind == "return"``, status other than
        ``cancelled``, i.e. not withdrawn; a rejected request still counts, the attempt is
        the signal) with ``requested_at`` in the window, made within ``quick_return_hours``
        (48 h) after the order's delivery (``0 <= requested_at − delivered_at <= 48 h``; a
        null ``delivered_at`` never qualifies), whose ``reason`` contains one of
        ``abuse_reason_markers`` (case-insensitive substrings; see
        :data:`ABUSE_REASON_MARKERS`).
    ``serial_return_orders``
        Malicious returns, rule 2 (serial returning): let ``R`` be the customer's distinct
        orders with a return request as in rule 1 (any reason, any delay) in the window, and
        ``D`` the distinct orders that were delivered in the window (``orders.delivered_at``)
        or are among those ``R`` (an order delivered before the window but returned inside it
        still counts as delivered, so ``R <= D``). When ``R >= serial_min_returned_orders``
        (3) and ``R > serial_min_share × D`` (more than half), the column holds ``R``;
        otherwise 0.
    ``fraud_flags``
        Rows of ``sources.extra["fraud_flags"]`` (columns ``customer_id``, ``flagged_at``)
        with ``flagged_at`` in the window; 0 everywhere when that table is absent.

    A customer is ``bad`` when any count is positive. Events outside the window, and rows
    with a null time, are ignored: nothing after ``end`` leaks into the label.

    Parameters
    ----------
    sources : Sources
        The source tables (see :mod:`patron.intelligence.sources`).
    start, end : datetime
        Timezone-aware window bounds, ``start`` inclusive, ``end`` exclusive.

    Returns
    -------
    pyarrow.Table
        ``customer_id`` (int64, sorted, every customer of ``sources.customers`` plus any id
        met in the window's events), ``bad`` (bool) and the int64 count columns above, in
        the order of :data:`BAD_COUNT_COLUMNS`.
    """
    lo, hi = _micros(start), _micros(end)
    if hi < lo:
        raise ValueError("window end precedes its start")

    payments = sources.payments
    paid_in = _in_window(_times(payments, "at"), lo, hi)
    payment_ids = _ids(payments)

    def payments_with(status: str) -> IntArray:
        return payment_ids[paid_in & _equals(payments, "status", status)]

    chargeback_ids = payments_with("chargeback")
    default_ids = payments_with("defaulted")
    refusal_ids = payments_with("refused")

    returns = sources.returns
    requested = _times(returns, "requested_at")
    is_return = (
        _in_window(requested, lo, hi)
        & _equals(returns, "kind", "return")
        & ~_equals(returns, "status", "cancelled")
    )
    delivered = _times(returns, "delivered_at")
    delay = requested - delivered
    is_quick = (
        ~_is_null(returns, "delivered_at")
        & (delay >= 0)
        & (delay <= int(quick_return_hours * 3600 * 1_000_000))
    )
    is_abusive = is_return & is_quick & _contains_any(returns, "reason", abuse_reason_markers)
    return_customer, return_order = _ids(returns)[is_return], _ids(returns, "order_id")[is_return]
    returned_customer, returned_order = _distinct_pairs(return_customer, return_order)

    orders = sources.orders
    delivered_in = _in_window(_times(orders, "delivered_at"), lo, hi)
    delivered_customer, _ = _distinct_pairs(
        np.concatenate([_ids(orders)[delivered_in], returned_customer]),
        np.concatenate([_ids(orders, "order_id")[delivered_in], returned_order]),
    )

    flag_ids = np.zeros(0, dtype=np.int64)
    flags = sources.extra.get("fraud_flags")
    if flags is not None:
        missing = [c for c in ("customer_id", "flagged_at") if c not in flags.column_names]
        if missing:
            raise ValueError(f"source table 'fraud_flags' lacks column(s): {', '.join(missing)}")
        flag_ids = _ids(flags)[_in_window(_times(flags, "flagged_at"), lo, hi)]

    universe = _unique(
        np.concatenate(
            [
                _ids(sources.customers),
                chargeback_ids,
                default_ids,
                refusal_ids,
                _ids(returns)[is_abusive],
                returned_customer,
                flag_ids,
            ]
        )
    )
    universe = universe[universe >= 0]  # -1 stands for a null customer id
    returned = _count_by(universe, returned_customer[returned_customer >= 0])
    delivered_count = _count_by(universe, delivered_customer[delivered_customer >= 0])
    is_serial = (returned >= serial_min_returned_orders) & (
        returned > serial_min_share * delivered_count
    )
    abusive_ids = _ids(returns)[is_abusive]
    counts = {
        "chargebacks": _count_by(universe, chargeback_ids[chargeback_ids >= 0]),
        "pay_later_defaults": _count_by(universe, default_ids[default_ids >= 0]),
        "cod_refusals": _count_by(universe, refusal_ids[refusal_ids >= 0]),
        "abusive_quick_returns": _count_by(universe, abusive_ids[abusive_ids >= 0]),
        "serial_return_orders": np.where(is_serial, returned, 0).astype(np.int64),
        "fraud_flags": _count_by(universe, flag_ids[flag_ids >= 0]),
    }
    bad = np.zeros(universe.size, dtype=bool)
    for column in BAD_COUNT_COLUMNS:
        bad |= counts[column] > 0
    return pa.table(
        {
            "customer_id": pa.array(universe, type=pa.int64()),
            "bad": pa.array(bad, type=pa.bool_()),
            **{column: pa.array(counts[column], type=pa.int64()) for column in BAD_COUNT_COLUMNS},
        }
    )


def _purchase_customers(orders: pa.Table, lo: int, hi: int) -> IntArray:
    """Customers with an order placed in ``[lo, hi)`` that was not cancelled by ``hi``.

    An order counts as cancelled when ``cancelled_at < hi``, or when its status is
    ``cancelled`` with no ``cancelled_at`` (time unknown: treated as never a purchase).
    A cancellation after ``hi`` is not known at ``hi``, so the order still counts.
    """
    cancelled_at = _times(orders, "cancelled_at")
    cancelled_by_then = (~_is_null(orders, "cancelled_at") & (cancelled_at < hi)) | (
        _is_null(orders, "cancelled_at") & _equals(orders, "status", "cancelled")
    )
    bought = _in_window(_times(orders, "placed_at"), lo, hi) & ~cancelled_by_then
    return _unique(_ids(orders)[bought])


def _as_ids(customers: npt.ArrayLike | pa.Array | pa.ChunkedArray) -> IntArray:
    if isinstance(customers, pa.Array | pa.ChunkedArray):
        customers = customers.to_numpy(zero_copy_only=False)
    return np.asarray(customers, dtype=np.int64)


def bought_before(
    sources: Sources, cutoff: datetime, customers: npt.ArrayLike | pa.Array | pa.ChunkedArray
) -> BoolArray:
    """True for each of ``customers`` with at least one purchase placed before ``cutoff``
    (an order not cancelled by ``cutoff``): the population :func:`churned` is defined on."""
    ids = _as_ids(customers)
    buyers = _purchase_customers(sources.orders, np.iinfo(np.int64).min + 1, _micros(cutoff))
    return _is_in(ids, buyers)


def churned(
    sources: Sources,
    start: datetime,
    end: datetime,
    customers: npt.ArrayLike | pa.Array | pa.ChunkedArray,
) -> BoolArray:
    """Churn labels for the window ``[start, end)``, aligned with ``customers``.

    True when the customer bought before ``start`` (see :func:`bought_before`) and made no
    purchase in the window: no order with ``placed_at`` in ``[start, end)`` that was not
    cancelled by ``end``. False otherwise — including for customers who never bought before
    ``start``, for whom churn is undefined: restrict the population with
    :func:`bought_before` before fitting or scoring a churn model. Orders placed at or after
    ``end`` are ignored.
    """
    lo, hi = _micros(start), _micros(end)
    if hi < lo:
        raise ValueError("window end precedes its start")
    ids = _as_ids(customers)
    before = _is_in(ids, _purchase_customers(sources.orders, np.iinfo(np.int64).min + 1, lo))
    during = _is_in(ids, _purchase_customers(sources.orders, lo, hi))
    return np.asarray(before & ~during, dtype=bool)
