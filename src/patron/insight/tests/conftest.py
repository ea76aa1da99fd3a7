"""A small shop for the metric fills: six customers ordering from January to May 2026."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from patron.conftest import at, make_customer, make_order

TODAY = date(2026, 5, 15)  # four complete months of data (January to April) and May running


@pytest.fixture
def shop(lake: Path) -> None:
    for i in range(6):
        customer = make_customer(registered_at=at("2026-01-02 09:00"))
        for month in range(1, 6 if i % 2 else 3):
            make_order(
                customer,
                external_id=f"O{i}-{month}",
                placed_at=at(f"2026-{month:02d}-1{i} 10:00"),
                total=str(100 + 10 * i),
                delivered_at=at(f"2026-{month:02d}-1{i} 10:00") + timedelta(days=2),
            )
