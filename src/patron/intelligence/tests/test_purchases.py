"""The purchase models' per-buyer table: the currency each buyer last paid in."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pyarrow as pa

from patron.intelligence.purchases import alive_at, fit_purchase_models, local_day, purchase_log

CUTOFF = datetime(2026, 1, 1, tzinfo=UTC)


def _orders(currencies: list[str]) -> pa.Table:
    """30 customers with two orders each (the second later); ``currencies`` per order."""
    n = 60
    customer = np.repeat(np.arange(30), 2)
    placed = [datetime(2025, 1 + (i % 2) * 6, 1 + (i // 2) % 28, tzinfo=UTC) for i in range(n)]
    return pa.table(
        {
            "customer_id": customer,
            "status": ["completed"] * n,
            "placed_at": pa.array(placed, pa.timestamp("us", tz="UTC")),
            "total_amount": np.linspace(50.0, 300.0, n),
            "currency": currencies,
        }
    )


def test_each_buyer_carries_the_currency_of_their_last_purchase() -> None:
    # given: customer 0 paid in CNY first, then in USD; customer 1 the other way round
    currencies = ["CNY"] * 60
    currencies[1], currencies[2] = "USD", "USD"
    log = purchase_log(_orders(currencies), time_zone="UTC")
    # when
    table = fit_purchase_models(log, local_day(CUTOFF, "UTC")).table
    # then
    by_customer = dict(
        zip(
            table.column("customer_id").to_pylist(),
            table.column("currency").to_pylist(),
            strict=True,
        )
    )
    assert by_customer[0] == "USD"
    assert by_customer[1] == "CNY"
    assert {by_customer[c] for c in range(2, 30)} == {"CNY"}


def test_a_shop_in_one_currency_gives_it_to_everyone() -> None:
    log = purchase_log(_orders(["CNY"] * 60), time_zone="UTC")
    table = fit_purchase_models(log, local_day(CUTOFF, "UTC")).table
    assert table.column("currency").to_pylist() == ["CNY"] * 30
    assert table.column("currency").type == pa.string()


def test_the_log_holds_purchases_only_in_the_merchants_days_and_their_currencies() -> None:
    # given: the last order was cancelled, and paid in a currency no purchase used
    orders = _orders(["CNY"] * 59 + ["EUR"])
    statuses = orders.column("status").to_pylist()
    statuses[-1] = "cancelled"
    orders = orders.set_column(1, "status", pa.array(statuses))
    # when: the merchant is in Shanghai (UTC+8)
    log = purchase_log(orders, time_zone="Asia/Shanghai")
    # then
    assert log.customer_ids.tolist() == np.repeat(np.arange(30), 2)[:59].tolist()
    assert log.currency_names.to_pylist() == ["CNY"]
    assert set(log.currencies.tolist()) == {0}
    assert log.days[0] == np.datetime64("2025-01-01")  # midnight UTC is 08:00 there
    assert np.allclose(log.amounts, np.linspace(50.0, 300.0, 60)[:59])


def test_alive_at_gives_the_full_fits_p_alive() -> None:
    log = purchase_log(_orders(["CNY"] * 60), time_zone="UTC")
    full = fit_purchase_models(log, local_day(CUTOFF, "UTC")).table
    alive = alive_at(log, local_day(CUTOFF, "UTC"))
    assert alive.column("customer_id").equals(full.column("customer_id"))
    assert alive.column("p_alive").equals(full.column("p_alive"))
