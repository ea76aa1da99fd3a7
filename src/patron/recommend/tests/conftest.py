"""A small tea shop with a known purchase history and a lake of behaviour events.

Before 2026-03-01: 甲 and 乙 bought the cup and the tea, 丙 the cup and the pot, 丁 the cup
alone (and a pot in an order that was cancelled: not a purchase); 甲 and 丁 looked at the
coaster (lake events). 戊 has no history. After 2026-03-01, 丁 bought the tea.

Suggestions for 丁 as of 2026-03-01 (conditional normalisation, by hand): the tea
1 · 2/4 (from the cup) + 0.2 · 0.2/0.4 (from the coaster) = 0.6; the pot 1 · 1/4 = 0.25; the
coaster 1 · (0.2 + 0.2)/4 = 0.1 (丁 looked at it: "viewed before"). The shop's best sellers:
cup (4 buyers), tea (2), pot (1).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from patron.commerce.models import Order, Product
from patron.conftest import make_customer, make_line, make_order
from patron.customer.models import Customer
from patron.ingest import lake

AS_OF = datetime(2026, 3, 1, tzinfo=UTC)


@dataclass(frozen=True)
class TeaShop:
    customers: dict[str, Customer]
    products: dict[str, Product]


@pytest.fixture
def lake_dir(settings: Any, tmp_path: Path) -> Path:
    settings.LAKE_DIR = tmp_path / "lake"
    return Path(settings.LAKE_DIR)


def write_events(folder: Path, rows: list[tuple[str, str, str, datetime]], *, source: str) -> None:
    """(customer external id, event type, item external id, when) into the lake."""
    table = pa.table(
        {
            "customer_external_id": [r[0] for r in rows],
            "event_type": [r[1] for r in rows],
            "occurred_at": pa.array([r[3] for r in rows], pa.timestamp("us", tz="UTC")),
            "item_external_id": [r[2] for r in rows],
            "category_external_id": pa.array([None] * len(rows), pa.string()),
            "query": pa.array([None] * len(rows), pa.string()),
            "session_id": pa.array([None] * len(rows), pa.string()),
        }
    )
    lake.publish(lake.stage_events(folder, table, source=source, batch_id=1))


@pytest.fixture
def tea_shop(db: None, lake_dir: Path) -> TeaShop:
    products = {
        name: Product.objects.create(
            source="shop", external_id=ref, name=name, price=Decimal("10.00")
        )
        for ref, name in (("P1", "茶杯"), ("P2", "茶叶"), ("P3", "茶壶"), ("P4", "杯垫"))
    }
    customers = {
        name: make_customer(name=name, external_id=ref)
        for ref, name in (("C1", "甲"), ("C2", "乙"), ("C3", "丙"), ("C4", "丁"), ("C5", "戊"))
    }
    day = AS_OF - timedelta(days=30)
    baskets = {
        "甲": ["茶杯", "茶叶"],
        "乙": ["茶杯", "茶叶"],
        "丙": ["茶杯", "茶壶"],
        "丁": ["茶杯"],
    }
    for n, (who, names) in enumerate(baskets.items()):
        order = make_order(
            customers[who], external_id=f"O{n}", placed_at=day + timedelta(days=n), total="20.00"
        )
        for line_no, name in enumerate(names, start=1):
            make_line(order, line_no=line_no, name=name, unit_price="10.00", product=products[name])
    cancelled = make_order(
        customers["丁"],
        external_id="O-cancelled",
        placed_at=day,
        total="10.00",
        status=Order.Status.CANCELLED,
    )
    make_line(cancelled, line_no=1, name="茶壶", unit_price="10.00", product=products["茶壶"])
    later = make_order(
        customers["丁"], external_id="O-later", placed_at=AS_OF + timedelta(days=3), total="10.00"
    )
    make_line(later, line_no=1, name="茶叶", unit_price="10.00", product=products["茶叶"])
    write_events(
        lake_dir,
        [
            ("C1", "browse", "P4", day),
            ("C4", "browse", "P4", day + timedelta(hours=1)),
            ("C4", "search", "", day + timedelta(hours=2)),  # no item: ignored
            ("C4", "browse", "P4", AS_OF + timedelta(days=1)),  # after the cut-off
        ],
        source="shop",
    )
    return TeaShop(customers, products)
