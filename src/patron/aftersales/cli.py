"""``patron aftersales``: the after-sales requests and the logistics monitor, from the command
line.

Mounted by ``patron.cli`` as ``app.add_typer(aftersales_app, name="aftersales")``. Django is set
up inside each command, before any model is imported. Each command prints a Rich summary on
stderr and JSON on stdout (for scripts).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import date, datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from patron.clikit import django_setup, require_migrated

aftersales_app = typer.Typer(
    help="After-sales (returns, exchanges, repairs, compensation) and logistics exceptions.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals may hold personal data
)
returns_app = typer.Typer(help="After-sales requests of every kind.", no_args_is_help=True)
aftersales_app.add_typer(returns_app, name="returns")
console = Console(stderr=True)


class _Operator:
    """The operator at the command line reads everything (as the other commands do)."""

    is_authenticated = True
    is_active = True
    pk = None

    def has_perm(self, perm: str) -> bool:
        return True

    def get_username(self) -> str:
        return "command line"


def _json(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _exit_for(error: Any) -> typer.Exit:
    console.print(f"[red]{error.message}")
    return typer.Exit(1 if error.status == 409 else 2)


@returns_app.command("list")
def returns_list(
    kind: Annotated[
        list[str] | None, typer.Option("--kind", help="return, exchange, repair, compensation")
    ] = None,
    status: Annotated[
        list[str] | None, typer.Option("--status", help="Any of the statuses")
    ] = None,
    outside_policy: Annotated[
        bool, typer.Option("--outside-policy", help="Only requests outside the policy")
    ] = False,
    limit: Annotated[int, typer.Option(help="At most this many")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON list on stdout")] = False,
) -> None:
    """The requests, those waiting for a decision first (the longest waiting first)."""
    django_setup()
    from patron.aftersales.selectors import request_list
    from patron.errors import PatronError

    require_migrated()
    try:
        count, rows = request_list(
            user=_Operator(),
            kinds=kind or (),
            statuses=status or (),
            outside_policy=True if outside_policy else None,
            limit=limit,
        )
    except PatronError as error:
        raise _exit_for(error) from None
    if as_json:
        print(json.dumps([asdict(row) for row in rows], ensure_ascii=False, default=_json))
        return
    table = Table(title=f"after-sales requests ({count})", title_justify="left")
    for column in (
        "number",
        "kind",
        "status",
        "order",
        "customer",
        "requested",
        "policy",
        "waiting",
    ):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row.number, row.kind, row.status, row.order_external_id, row.customer_name,
            f"{row.requested_at:%Y-%m-%d %H:%M}",
            "within" if row.is_within_policy else "[yellow]outside",
            "—" if row.waiting_hours is None else f"{row.waiting_hours:g} h",
        )  # fmt: skip
    console.print(table)


@returns_app.command("show")
def returns_show(
    request_id: Annotated[int, typer.Argument(help="The request's id (AS<id> without AS)")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout")] = False,
) -> None:
    """One request: its lines, the policy verdict, refunds and timeline."""
    django_setup()
    from patron.aftersales.selectors import request_detail
    from patron.errors import PatronError

    require_migrated()
    try:
        view = request_detail(user=_Operator(), request_id=request_id)
    except PatronError as error:
        raise _exit_for(error) from None
    if as_json:
        print(json.dumps(asdict(view), ensure_ascii=False, default=_json))
        return
    console.print(
        f"[bold]{view.number}[/] {view.kind} · {view.status} · order {view.order_external_id} · "
        f"{view.customer_name} (customer {view.customer_id})"
    )
    console.print(f"reason: {view.reason_code}{' — ' + view.reason if view.reason else ''}")
    if view.is_within_policy:
        console.print("policy: within")
    else:
        console.print("[yellow]policy: outside — " + "; ".join(view.policy_verdict))
    for line in view.lines:
        console.print(
            f"  line {line.line_no}: {line.product_name} × {line.quantity} of {line.bought} "
            f"(paid {line.paid_amount})"
        )
    if view.refunds:
        console.print(f"refunded {view.refunded} {view.currency}; {view.refundable} refundable")
    timeline = Table(title="timeline", title_justify="left")
    for column in ("at", "who", "action", "status", "note"):
        timeline.add_column(column)
    for event in view.events:
        timeline.add_row(
            f"{event.at:%Y-%m-%d %H:%M}", event.actor, event.action,
            f"{event.from_status or '—'} → {event.to_status}", event.note[:60],
        )  # fmt: skip
    console.print(timeline)


@aftersales_app.command("logistics-check")
def logistics_check() -> None:
    """Run the logistics monitor now (what the ``logistics-exceptions`` job does)."""
    django_setup()
    from patron.aftersales.services import logistics_check as check

    require_migrated()
    result = check()
    console.print(
        f"{result.watched} shipments watched: {result.found} new exceptions, "
        f"{result.resolved} resolved, {result.tickets_opened} tickets opened "
        f"({result.tickets_waiting} waiting for the service desk), "
        f"{result.customers_told} customers told"
    )
    print(json.dumps(result.as_dict()))
