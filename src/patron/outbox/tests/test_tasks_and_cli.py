"""The delivery job and ``patron outbox deliver|list``."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from patron.conftest import make_customer
from patron.outbox import services
from patron.outbox.cli import outbox_app
from patron.outbox.models import Message
from patron.outbox.tasks import TASK_PATH, deliver_outbox

pytestmark = pytest.mark.django_db


def _queue(key: str) -> Message:
    customer = make_customer(name="王小明", email=f"{key}@example.com")
    return services.message_queue(
        customer_id=customer.pk,
        template="loyalty.tier_up",
        purpose="service",
        context={"tier": "黄金"},
        key=key,
    )


def test_the_task_delivers_and_reports(mailoutbox: list[Any]) -> None:
    # given
    _queue("a")
    _queue("b")

    # when
    summary = deliver_outbox.call(limit=10)

    # then
    assert summary == {
        "claimed": 2,
        "sent": 2,
        "retried": 0,
        "failed": 0,
        "suppressed": 0,
        "recovered": 0,
    }
    assert len(mailoutbox) == 2
    assert deliver_outbox.module_path == TASK_PATH


def test_cli_deliver(mailoutbox: list[Any]) -> None:
    # given
    _queue("a")

    # when
    result = CliRunner().invoke(outbox_app, ["deliver", "--limit", "5"])

    # then
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["sent"] == 1
    assert len(mailoutbox) == 1


def test_cli_list_as_json_and_as_a_table() -> None:
    # given
    message = _queue("a")

    # when
    as_json = CliRunner().invoke(outbox_app, ["list", "--status", "queued", "--json"])
    table = CliRunner().invoke(outbox_app, ["list"], env={"COLUMNS": "200"})
    none = CliRunner().invoke(outbox_app, ["list", "--status", "sent", "--json"])

    # then
    assert as_json.exit_code == 0, as_json.output
    rows = json.loads(as_json.stdout)
    assert [(r["id"], r["template"], r["status"]) for r in rows] == [
        (message.pk, "loyalty.tier_up", "queued")
    ]
    assert table.exit_code == 0 and "loyalty.tier_up" in table.stdout
    assert json.loads(none.stdout) == []


def test_cli_list_refuses_an_unknown_status() -> None:
    result = CliRunner().invoke(outbox_app, ["list", "--status", "lost"])
    assert result.exit_code == 2
