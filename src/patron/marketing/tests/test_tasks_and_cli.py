"""The jobs and the CLI: refresh the segments, expire and reconcile coupons."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from patron.account.roles import Role
from patron.conftest import make_customer, make_user
from patron.marketing import services, tasks
from patron.marketing.cli import marketing_app
from patron.marketing.models import Segment

pytestmark = pytest.mark.django_db(transaction=True)


def test_refresh_task_and_cli() -> None:
    # given
    make_customer(province="浙江")
    services.segment_save(
        user=make_user(Role.MARKETER),
        name="浙江客户",
        rule={"all": [{"field": "province", "op": "eq", "value": "浙江"}]},
    )

    # when
    result = tasks.refresh_segments.call()
    listed = CliRunner().invoke(marketing_app, ["segments", "--json"])

    # then
    assert (result["segments"], result["failed"]) == (1, 0)
    assert Segment.objects.get().member_count == 1
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.stdout.strip().splitlines()[-1])
    assert [(r["name"], r["size"]) for r in rows] == [("浙江客户", 1)]


def test_coupon_commands() -> None:
    runner = CliRunner()
    refreshed = runner.invoke(marketing_app, ["segments", "refresh"])
    expired = runner.invoke(marketing_app, ["coupons", "expire"])
    reconciled = runner.invoke(marketing_app, ["coupons", "reconcile"])
    assert refreshed.exit_code == expired.exit_code == reconciled.exit_code == 0
    assert json.loads(expired.stdout.strip().splitlines()[-1]) == {"expired": 0}
    assert json.loads(reconciled.stdout.strip().splitlines()[-1]) == {"redeemed": 0, "skipped": 0}
