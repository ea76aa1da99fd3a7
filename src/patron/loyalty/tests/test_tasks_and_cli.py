"""The loyalty jobs, the accrual queued after each committed import batch, and
``patron loyalty accrue|expire|tiers``."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from django_tasks_db.models import DBTaskResult
from typer.testing import CliRunner

from patron.conftest import at, make_customer, make_order
from patron.customer.models import Customer
from patron.ingest.signals import batch_committed
from patron.loyalty import rules
from patron.loyalty.cli import loyalty_app
from patron.loyalty.models import PointsAccount, TierMembership
from patron.loyalty.tasks import (
    ACCRUE_TASK_PATH,
    accrue_points,
    enqueue_accrual,
    evaluate_tiers,
    expire_points,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def buyer() -> Customer:
    customer = make_customer(name="张三")
    make_order(
        customer,
        external_id="SO-1",
        placed_at=at("2026-01-10 02:00"),
        paid_at=at("2026-01-10 02:00"),
        total="299.00",
    )
    return customer


def test_the_jobs_accrue_expire_and_evaluate(buyer: Customer) -> None:
    # when
    accrued = accrue_points.call(as_of="2026-03-01")
    again = accrue_points.call(as_of="2026-03-01")
    placed = evaluate_tiers.call(as_of="2026-03-01")
    expired = expire_points.call(as_of="2028-01-10")
    # then
    assert (accrued["orders_credited"], accrued["points_earned"]) == (1, 299)
    assert accrued["as_of"] == "2026-03-01T00:00:00+08:00"
    assert again["points_earned"] == 0
    assert (placed["joined"], placed["as_of"]) == (1, "2026-03-01")
    assert (expired["lots"], expired["points"]) == (1, 299)
    assert PointsAccount.objects.get(customer=buyer).balance == 0
    assert accrue_points.module_path == ACCRUE_TASK_PATH


def test_a_committed_import_batch_queues_one_accrual(
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    # when: a batch of orders, then one of returns while the first accrual still waits
    with django_capture_on_commit_callbacks(execute=True):
        batch_committed.send(sender=None, batch_id=1, kinds={"orders"})
    with django_capture_on_commit_callbacks(execute=True):
        batch_committed.send(sender=None, batch_id=2, kinds={"returns"})
    # then
    assert DBTaskResult.objects.filter(task_path=ACCRUE_TASK_PATH).count() == 1


def test_batches_that_earn_nothing_queue_nothing() -> None:
    assert not enqueue_accrual({"events", "tickets", "customers"})
    assert not DBTaskResult.objects.filter(task_path=ACCRUE_TASK_PATH).exists()


def _last_json(output: str) -> dict[str, Any]:
    return json.loads(output.strip().splitlines()[-1])


def test_the_cli_runs_each_job() -> None:
    # given: an order paid ten days ago
    customer = make_customer(name="李四")
    paid_at = timezone.now() - timedelta(days=10)
    make_order(customer, external_id="SO-9", placed_at=paid_at, paid_at=paid_at, total="88.80")
    expires_on = rules.add_months(timezone.localdate(paid_at), 24)
    today = timezone.localdate().isoformat()
    runner = CliRunner()

    # when / then
    accrued = runner.invoke(loyalty_app, ["accrue"])
    assert accrued.exit_code == 0, accrued.output
    assert _last_json(accrued.stdout)["points_earned"] == 88

    tiers = runner.invoke(loyalty_app, ["tiers", "--as-of", today])
    assert tiers.exit_code == 0, tiers.output
    assert _last_json(tiers.stdout)["members"] == {"member": 1}
    assert TierMembership.objects.get(customer=customer).tier.code == "member"

    earlier = runner.invoke(loyalty_app, ["tiers", "--as-of", "2020-01-01"])
    assert earlier.exit_code == 2
    assert f"tier history already runs from {today}" in earlier.output

    expired = runner.invoke(loyalty_app, ["expire", "--as-of", expires_on.isoformat()])
    assert expired.exit_code == 0, expired.output
    assert _last_json(expired.stdout) == {
        "as_of": expires_on.isoformat(),
        "lots": 1,
        "points": 88,
        "accounts": 1,
    }
