"""``patron loyalty``: accrue points, expire lots, evaluate tiers — what the jobs do, now.

Mounted by ``patron.cli`` as ``app.add_typer(loyalty_app, name="loyalty")``. Django is set up
inside each command, before any model is imported, as in ``patron.cli``. Each command prints a
Rich summary on stderr and one JSON object on stdout's last line (for scripts).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from patron.clikit import django_setup, require_migrated

loyalty_app = typer.Typer(
    help="Loyalty: accrue and expire points, evaluate membership tiers.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals may hold personal data
)
console = Console(stderr=True)

AS_OF_FORMATS = ["%Y-%m-%d"]


def _table(title: str, rows: list[tuple[str, Any]]) -> None:
    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column("what")
    table.add_column("how many", justify="right")
    for name, value in rows:
        table.add_row(name, f"{value:,}" if isinstance(value, int) else str(value))
    console.print(table)


@loyalty_app.command("accrue")
def accrue() -> None:
    """Post points for paid orders and reviews, take them back for refunds (idempotent)."""
    django_setup()
    from patron.loyalty.services import points_accrue

    require_migrated()
    result = points_accrue()
    _table(
        "points accrued",
        [
            ("orders credited", result.orders_credited),
            ("reviews credited", result.reviews_credited),
            ("refunds reversed", result.returns_reversed),
            ("cancellations reversed", result.cancellations_reversed),
            ("points earned", result.points_earned),
            ("points taken back", result.points_reversed),
            ("shortfall (already spent)", result.shortfall),
            ("accounts", result.accounts),
        ],
    )
    print(json.dumps(result.as_dict()))


@loyalty_app.command("expire")
def expire(
    as_of: Annotated[
        datetime | None,
        typer.Option("--as-of", formats=AS_OF_FORMATS, help="Expire lots due by this day"),
    ] = None,
) -> None:
    """Expire the lots whose expiry date has come (default: today)."""
    django_setup()
    from patron.loyalty.services import points_expire

    require_migrated()
    result = points_expire(as_of=as_of.date() if as_of else None)
    _table(
        f"points expired as of {result.as_of}",
        [("lots", result.lots), ("points", result.points), ("accounts", result.accounts)],
    )
    print(json.dumps(result.as_dict()))


@loyalty_app.command("tiers")
def tiers(
    as_of: Annotated[
        datetime | None,
        typer.Option("--as-of", formats=AS_OF_FORMATS, help="Evaluate as of this day"),
    ] = None,
) -> None:
    """Move customers between tiers (up at once, down after the grace period); tell those
    moving up."""
    django_setup()
    from patron.errors import PatronError
    from patron.loyalty.models import Tier
    from patron.loyalty.tiers import tiers_evaluate

    require_migrated()
    try:
        result = tiers_evaluate(as_of=as_of.date() if as_of else None)
    except PatronError as error:  # e.g. history already runs past --as-of: a message, no trace
        console.print(f"[red]{error.message}")
        raise typer.Exit(2) from None
    _table(
        f"tiers as of {result.as_of}",
        [
            ("customers", result.customers),
            ("joined", result.joined),
            ("moved up", result.up),
            ("moved down", result.down),
            ("in grace", result.in_grace),
            ("unchanged", result.unchanged),
            ("already moved today", result.skipped),
            ("told (messages queued)", result.told),
        ],
    )
    members = Table(title="members per tier", title_justify="left")
    for column in ("tier", "name", "members"):
        members.add_column(column, justify="right" if column == "members" else "left")
    for tier in Tier.objects.order_by("rank"):
        members.add_row(
            tier.code, f"{tier.name} {tier.name_en}", f"{result.members.get(tier.code, 0):,}"
        )
    console.print(members)
    print(json.dumps(result.as_dict(), ensure_ascii=False))
