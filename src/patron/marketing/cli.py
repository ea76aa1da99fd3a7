"""``patron marketing``: segment sizes, refreshing them, and the coupon jobs, now.

Mounted by ``patron.cli`` as ``app.add_typer(marketing_app, name="marketing")``. Django is set
up inside each command, before any model is imported. Each command prints a Rich summary on
stderr and one JSON object on stdout's last line (for scripts).
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from patron.clikit import django_setup, require_migrated

marketing_app = typer.Typer(
    help="Marketing: segments and coupons.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals may hold personal data
)
segments_app = typer.Typer(help="Saved segments.", invoke_without_command=True)
coupons_app = typer.Typer(help="Coupon jobs.", no_args_is_help=True)
marketing_app.add_typer(segments_app, name="segments")
marketing_app.add_typer(coupons_app, name="coupons")
console = Console(stderr=True)


@segments_app.callback()
def segments(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON list on stdout")] = False,
) -> None:
    """List the saved segments with their size and when it was counted."""
    if ctx.invoked_subcommand is not None:
        return
    django_setup()
    from patron.marketing.models import Segment

    require_migrated()
    rows = [
        {
            "id": s.pk,
            "name": s.name,
            "version": s.version,
            "size": s.member_count,
            "evaluated_at": s.evaluated_at.isoformat() if s.evaluated_at else None,
            "error": s.evaluation_error,
        }
        for s in Segment.objects.order_by("name")
    ]
    if as_json:
        print(json.dumps(rows, ensure_ascii=False))
        return
    table = Table(title="segments", title_justify="left")
    for column in ("id", "name", "version", "size", "evaluated at"):
        table.add_column(column, justify="right" if column in ("id", "size") else "left")
    for row in rows:
        size = "—" if row["size"] is None else f"{row['size']:,}"
        table.add_row(
            str(row["id"]), str(row["name"]), str(row["version"]), size,
            str(row["evaluated_at"] or "never"),
        )  # fmt: skip
    console.print(table)


@segments_app.command("refresh")
def segments_refresh() -> None:
    """Count every saved segment's members now (what runs after each scoring run)."""
    django_setup()
    from patron.marketing.services import segments_refresh as refresh

    require_migrated()
    result = refresh()
    console.print(f"{result.segments} segments counted, {result.failed} with an invalid rule")
    print(json.dumps(result.as_dict()))


@coupons_app.command("reconcile")
def coupons_reconcile() -> None:
    """Mark the coupons whose codes imported orders carry as redeemed (idempotent)."""
    django_setup()
    from patron.marketing.services import coupons_reconcile_imports

    require_migrated()
    result = coupons_reconcile_imports()
    console.print(
        f"{result.redeemed} coupons redeemed by imported orders, {result.skipped} skipped"
    )
    print(json.dumps(result.as_dict()))


@coupons_app.command("expire")
def coupons_expire() -> None:
    """Mark issued coupons whose expiry has come as expired (idempotent)."""
    django_setup()
    from patron.marketing.services import coupons_expire as expire

    require_migrated()
    count = expire()
    console.print(f"{count} coupons expired")
    print(json.dumps({"expired": count}))
