"""Reasons for a whole column of customers at once, written as JSON text.

Every scoring run gives each customer a dozen reasons. Building a Python dict per reason and
serialising each customer's took about 40 s per million customers. Here a reason is
assembled from Arrow string columns instead:
- constant pieces (the key, the parameter names);
- numbers cast to text;
- phrases picked by an integer code.

Arrow's C++ kernels do the work, and the result is the same JSON as
``patron.intelligence.explain`` documents.

Nulls carry meaning:
- a reason built from a null piece is null;
- a null item is left out of :func:`listed`.

So "this customer has no such reason" needs no special case.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

Part: TypeAlias = pa.Array | str  # noqa: UP040 (mypy reads pyarrow as Any)


def dump(value: Any) -> str:
    """One value as JSON text (a constant piece of a reason)."""
    return orjson.dumps(value).decode()


def concat(*parts: Part) -> pa.Array:
    """Row-wise concatenation; null where any array part is null. At least one part must
    be an array (it gives the length)."""
    return pc.binary_join_element_wise(*parts, "")


def number(values: Any, *, decimals: int | None = None) -> pa.Array:
    """Numbers as JSON text: ``null`` where missing, NaN or infinite."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not isinstance(values, pa.Array):
        values = pa.array(np.asarray(values, dtype=np.float64))
    if not pa.types.is_floating(values.type):
        return pc.fill_null(pc.cast(values, pa.string()), "null")
    finite = pc.fill_null(pc.is_finite(values), False)
    if decimals is not None:
        values = pc.round(values, decimals)
    return pc.if_else(finite, pc.cast(values, pa.string()), "null")


def integer(values: Any) -> pa.Array:
    """Whole numbers as JSON text (NaN or missing: ``null``)."""
    array = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(array)
    text = pc.cast(pa.array(np.where(finite, np.rint(array), 0).astype(np.int64)), pa.string())
    return pc.if_else(pa.array(finite), text, "null")


def pick(codes: Any, choices: Sequence[str]) -> pa.Array:
    """``choices[code]`` per row, as given (already JSON); null where the code is negative."""
    codes = np.asarray(codes, dtype=np.int64)
    table = pa.array(list(choices), pa.string())
    return table.take(pa.array(np.maximum(codes, 0), mask=codes < 0))


def text(values: Sequence[str | None] | pa.Array) -> pa.Array:
    """Strings as JSON text: each distinct value is escaped once."""
    array = values if isinstance(values, pa.Array | pa.ChunkedArray) else pa.array(values)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    encoded = pc.dictionary_encode(pc.cast(array, pa.string()))
    escaped = [dump(v) for v in encoded.dictionary.to_pylist()]
    return pc.fill_null(pa.array(escaped, pa.string()).take(encoded.indices), "null")


def reason(key: str | tuple[Any, Sequence[str]], params: Mapping[str, Part]) -> pa.Array:
    """``{"key": …, "params": {…}}`` per row. ``key`` is one key for every row or
    ``(codes, keys)``: ``keys[code]`` per row, null where the code is negative. Each param
    is JSON text (an array from :func:`number`, :func:`text`, … or a constant)."""
    parts: list[Part] = []
    if isinstance(key, str):
        parts.append(f'{{"key":{dump(key)},"params":{{')
    else:
        codes, keys = key
        parts.append(pick(codes, [f'{{"key":{dump(k)},"params":{{' for k in keys]))
    for position, (name, value) in enumerate(params.items()):
        parts.append(("," if position else "") + f"{dump(name)}:")
        parts.append(value)
    parts.append("}}")
    if not any(isinstance(p, pa.Array) for p in parts):
        raise ValueError("reason(): at least one part must be a column")
    return concat(*parts)


def listed(items: Sequence[pa.Array], *, empty: str | None = "[]") -> pa.Array:
    """A JSON list per row of the non-null items, in order. Where every item is null:
    ``empty`` (null when ``empty`` is None)."""
    if not items:
        raise ValueError("listed(): no items")
    inner, present = _present(items, ",")
    joined = concat("[", *inner, "]")  # "[]" where no item is present
    if empty == "[]":
        return joined
    if empty is None:
        return _null_where_not(joined, present)
    return pc.if_else(present, joined, empty)


def _present(items: Sequence[pa.Array], separator: str) -> tuple[list[Part], pa.Array]:
    """Pieces that :func:`concat` joins into each row's non-null items separated by
    ``separator`` ("" where all are null), and where any item is present.

    Every piece is a short separator column or an item as it is: the items' text (most of
    the bytes) is copied once, by the final concat. Not ``binary_join_element_wise(...,
    null_handling="skip")``: in pyarrow 26 that returns too few rows when some inputs are
    null throughout (tested in test_reason_columns)."""
    pieces: list[Part] = []
    before: pa.Array | None = None  # some earlier item is present
    for item in items:
        valid = pc.is_valid(item)
        if before is not None:
            joins = pc.and_(before, valid) if item.null_count else before
            always = pc.all(joins).as_py()
            pieces.append(separator if always else pc.if_else(joins, separator, ""))
        pieces.append(pc.fill_null(item, "") if item.null_count else item)
        before = valid if before is None else pc.or_(before, valid)
    assert before is not None  # items is not empty
    return pieces, before


def _null_where_not(column: pa.Array, keep: pa.Array) -> pa.Array:
    """``column`` (no nulls) with nulls where ``keep`` is false, sharing its text: Arrow's
    ``if_else`` would copy every string (0.5 s per million reasons)."""
    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    keep = keep.combine_chunks() if isinstance(keep, pa.ChunkedArray) else keep
    if column.offset or keep.offset or keep.null_count or column.null_count:
        return pc.if_else(keep, column, pa.scalar(None, column.type))
    validity = keep.buffers()[1]
    return pa.Array.from_buffers(column.type, len(column), [validity, *column.buffers()[1:]])


def by_score(columns: Mapping[str, pa.Array | pa.ChunkedArray]) -> pa.StructArray:
    """Each customer's reasons by score name: a struct of JSON-text lists (null: none).

    A struct shares its fields' text: joining them into one JSON object per customer copied
    about 800 MB per million customers (3-4 s). :func:`decoded` turns a row back into the
    object ``patron.intelligence.explain`` documents."""
    arrays = [c.combine_chunks() if isinstance(c, pa.ChunkedArray) else c for c in columns.values()]
    return pa.StructArray.from_arrays(arrays, names=list(columns))


def decoded(row: Mapping[str, str | None] | str | None) -> dict[str, Any]:
    """A customer's reasons as ``{score name: [reason, ...]}`` from a :func:`by_score` row (a
    dict of JSON texts) or, as runs before it stored them, one JSON object's text."""
    if row is None:
        return {}
    if isinstance(row, str):
        value = orjson.loads(row or "{}")
        return value if isinstance(value, dict) else {}
    return {name: orjson.loads(text) for name, text in row.items() if text is not None}


def sparse_items(n: int, values: Mapping[int, Sequence[Any]]) -> pa.Array:
    """A column of ``n`` nulls but at the given rows, whose reasons (dicts) are written as
    list items for :func:`listed` (for the few customers a rare reason applies to)."""
    column: list[str | None] = [None] * n
    for row, reasons in values.items():
        if reasons:
            column[row] = ",".join(dump(r) for r in reasons)
    return pa.array(column, pa.string())


def feature_reasons(
    key: str,
    names: Sequence[str],
    medians: Sequence[float | None],
    columns: Any,
    values: Any,
    points: Any,
    keep: Any,
) -> list[pa.Array]:
    """A model's reasons about features (explain.py's feature shape), one column per slot:
    slot ``s`` of row ``i`` is about feature ``names[columns[i, s]]`` with the row's value
    and points; null where ``keep[i, s]`` is false."""
    heads = [
        f'{{"key":{dump(key)},"feature":{dump(name)},"median":{dump(_finite(median))},"value":'
        for name, median in zip(names, medians, strict=True)
    ]
    slots = []
    for s in range(np.shape(columns)[1]):
        codes = np.where(keep[:, s], columns[:, s], -1)
        slots.append(
            concat(
                pick(codes, heads),
                number(values[:, s], decimals=4),
                ',"points":',
                number(points[:, s], decimals=2),
                "}",
            )
        )
    return slots


def _finite(value: float | None) -> float | None:
    if value is None or not np.isfinite(value):
        return None
    return round(float(value), 4)
