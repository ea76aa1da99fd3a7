"""``patron outbox``: deliver the due messages now, and list the latest ones.

Mounted by ``patron.cli`` as ``app.add_typer(outbox_app, name="outbox")``. Django is set up
inside each command, before any model is imported, as in ``patron.cli``.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from patron.clikit import django_setup, require_migrated

outbox_app = typer.Typer(
    help="Messages to customers: deliver the due ones, list the latest.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals may hold personal data
)
console = Console(stderr=True)

STATUSES = ("queued", "sending", "sent", "failed", "suppressed", "cancelled")


@outbox_app.command("deliver")
def deliver(
    limit: Annotated[int, typer.Option(min=1, help="Send at most this many messages")] = 200,
) -> None:
    """Send the messages that are due now (what the delivery job does), print what happened."""
    django_setup()
    from patron.outbox.services import outbox_deliver

    require_migrated()
    result = outbox_deliver(limit=limit)
    console.print(
        f"{result.claimed:,} due: {result.sent:,} sent, {result.retried:,} to retry, "
        f"{result.failed:,} failed, {result.suppressed:,} suppressed"
        + (f"; {result.recovered:,} taken back from a stopped run" if result.recovered else "")
    )
    print(json.dumps(result.as_dict()))


@outbox_app.command("list")
def list_(
    status: Annotated[
        str | None,
        typer.Option(help=f"Only messages in this status: {', '.join(STATUSES)}"),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many, newest first")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """The latest messages (addresses masked)."""
    if status is not None and status not in STATUSES:
        console.print(f"[red]--status: one of {', '.join(STATUSES)}; got {status!r}")
        raise typer.Exit(2)
    django_setup()
    from django.utils import timezone

    from patron.outbox.selectors import message_recent

    require_migrated()
    views = message_recent(status=status, limit=limit)
    if as_json:
        rows = [
            {
                "id": v.id,
                "customer_id": v.customer_id,
                "channel": v.channel,
                "purpose": v.purpose,
                "template": v.template,
                "status": v.status,
                "attempts": v.attempts,
                "reason": v.reason or v.last_error,
                "created_at": v.created_at.isoformat(),
                "sent_at": v.sent_at.isoformat() if v.sent_at else None,
            }
            for v in views
        ]
        print(json.dumps(rows, ensure_ascii=False))
        return
    table = Table(title="messages", title_justify="left")
    for column in ("id", "customer", "channel", "template", "status", "tries", "when", "note"):
        table.add_column(column)
    for v in views:
        moment = v.sent_at or v.created_at
        table.add_row(
            str(v.id),
            f"{v.customer_name} ({v.customer_id})",
            v.channel,
            v.template,
            v.status,
            str(v.attempts),
            timezone.localtime(moment).strftime("%Y-%m-%d %H:%M"),
            (v.reason or v.last_error)[:60],
        )
    Console().print(table)
