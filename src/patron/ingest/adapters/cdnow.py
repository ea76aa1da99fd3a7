"""CDNOW purchases (Fader, Hardie & Lee 2005): whitespace-separated text.

Two layouts: the master file (``customer_id date number_of_cds dollar_value``, optional header)
and the sample file (``master_id sample_id date number_of_cds dollar_value``). Each line is a
transaction: an order with one line (quantity = CDs). Several transactions of one customer on one
day stay separate orders (``<customer>-<date>-<n>``); the models merge same-day purchases.
Dates are calendar days, stored as midnight UTC; money is USD.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from patron.errors import ValidationFailed
from patron.ingest.columns import RowError
from patron.ingest.mapping import Mapping
from patron.ingest.services import Part

SOURCE = "cdnow"
MAPPING = Mapping(source=SOURCE, timezone="UTC")


def _rows(path: Path) -> list[tuple[int, list[str]]]:
    rows = []
    with path.open(encoding="utf-8") as handle:
        for line_no, text in enumerate(handle, start=1):
            cells = text.split()
            if not cells or cells[0].lower().startswith("customer"):
                continue
            rows.append((line_no, cells))
    return rows


def cdnow_parts(path: Path) -> list[Part]:
    if not path.is_file():
        raise ValidationFailed(f"{path}: no such file")
    rows = _rows(path)
    if not rows:
        raise ValidationFailed(f"{path.name}: no transactions found")
    width = len(rows[0][1])
    if width not in (4, 5):
        raise ValidationFailed(
            f"{path.name} line {rows[0][0]}: expected 4 (master) or 5 (sample) columns, found {width}"
        )
    bad = [(line, cells) for line, cells in rows if len(cells) != width]
    if bad:
        line, cells = bad[0]
        raise ValidationFailed(
            f"{path.name} line {line}: expected {width} columns, found {len(cells)}",
            details=[
                RowError(
                    path.name, line, "", " ".join(cells), f"expected {width} columns"
                ).as_dict()
                for line, cells in bad[:50]
            ],
        )
    offset = width - 4
    seq: dict[tuple[str, str], int] = defaultdict(int)
    first: dict[str, tuple[int, str]] = {}
    transactions: list[tuple[int, dict[str, Any]]] = []
    for line, cells in rows:
        customer, day, cds, value = (
            cells[0],
            cells[offset + 1],
            cells[offset + 2],
            cells[offset + 3],
        )
        seq[(customer, day)] += 1
        if customer not in first or day < first[customer][1]:
            first[customer] = (line, day)
        transactions.append(
            (
                line,
                {
                    "customer": customer,
                    "day": day,
                    "n": seq[(customer, day)],
                    "cds": cds,
                    "value": value,
                },
            )
        )

    def customers() -> Iterator[tuple[int, dict[str, Any]]]:
        for customer, (line, day) in first.items():
            yield (
                line,
                {
                    "external_id": customer,
                    "name": f"CDNOW {customer}",
                    "registered_at": day,
                    "source_channel": "online",
                    "registration_channel": "cdnow",
                },
            )

    def orders() -> Iterator[tuple[int, dict[str, Any]]]:
        for line, t in transactions:
            yield (
                line,
                {
                    "external_id": f"{t['customer']}-{t['day']}-{t['n']}",
                    "customer_external_id": t["customer"],
                    "status": "completed",
                    "placed_at": t["day"],
                    "total_amount": t["value"],
                    "currency": "USD",
                    "channel": "online",
                    "store": "cdnow",
                },
            )

    def lines() -> Iterator[tuple[int, dict[str, Any]]]:
        for line, t in transactions:
            try:
                quantity = int(t["cds"])
                unit = (
                    (Decimal(t["value"]) / quantity).quantize(Decimal("0.01"))
                    if quantity
                    else Decimal(0)
                )
            except (ValueError, InvalidOperation, ArithmeticError):
                quantity, unit = t["cds"], t["value"]  # refused with a reason by validation
            yield (
                line,
                {
                    "order_external_id": f"{t['customer']}-{t['day']}-{t['n']}",
                    "line_no": 1,
                    "product_name": "CD",
                    "quantity": quantity,
                    "unit_price": str(unit),
                    "amount": t["value"],
                    "currency": "USD",
                },
            )

    return [
        Part.from_records("customers", path.name + " (customers)", customers(), MAPPING),
        Part.from_records("orders", path.name, orders(), MAPPING),
        Part.from_records("order-lines", path.name + " (lines)", lines(), MAPPING),
    ]
