"""`patron demo --no-serve` builds, loads and checks the demo merchant end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.dataset as ds
import pytest
from django.conf import settings

from patron.account.models import User
from patron.commerce.models import Order, OrderLine, Payment, Review
from patron.customer.models import Consent, Customer
from patron.service.models import Ticket

from .test_cli import patron

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_demo_loads_every_generated_record_and_prints_a_login() -> None:
    # given
    home = Path(settings.HOME)
    # when
    result = patron("demo", "--customers", "300", "--seed", "3", "--no-serve", home=home)
    # then
    assert result.returncode == 0, result.stderr[-3000:]
    out_dir = home / "demo" / "seed-3-n300"
    files = {p.name for p in out_dir.iterdir()}
    assert {"customers.csv", "orders.csv", "events.parquet", "problem_customers.json"} <= files
    lines = {
        name: sum(1 for _ in (out_dir / f"{name}.csv").open(encoding="utf-8")) - 1
        for name in ("customers", "consents", "orders", "payments", "reviews", "tickets")
        if (out_dir / f"{name}.csv").exists()
    }
    assert Customer.objects.filter(source="demo").count() == lines["customers"] == 300
    assert Consent.objects.filter(source="demo").count() == lines["consents"]
    assert Order.objects.filter(source="demo").count() == lines["orders"]
    assert Payment.objects.filter(source="demo").count() == lines["payments"]
    assert Review.objects.filter(source="demo").count() == lines["reviews"]
    assert Ticket.objects.filter(source="demo").count() == lines["tickets"]
    assert OrderLine.objects.filter(source="demo").count() > Order.objects.count()
    events = ds.dataset(
        settings.LAKE_DIR / "events", format="parquet", partitioning="hive"
    ).count_rows()
    assert events == ds.dataset(out_dir / "events.parquet").count_rows()
    problems = json.loads((out_dir / "problem_customers.json").read_text(encoding="utf-8"))
    assert problems["problem_customers"]["serial_returner"]
    login = (home / "demo-login.txt").read_text(encoding="utf-8")
    password = login.split("password: ")[1].strip()
    assert User.objects.get(username="admin").check_password(password)
    assert f"admin[/] / [bold]{password}" not in result.stderr  # Rich markup was rendered
    assert password in result.stderr
