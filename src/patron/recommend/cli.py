"""``patron recommend``: refresh every customer's suggested products, or back-test them.

Mounted by ``patron.cli`` as ``app.add_typer(recommend_app, name="recommend")``. Django is set
up inside each command, before any model is imported. Each command prints a Rich summary on
stderr and one JSON object on stdout's last line (for scripts).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from patron.clikit import django_setup, require_migrated

recommend_app = typer.Typer(
    help="Product recommendations: refresh the suggestions, back-test them on a time split.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals may hold personal data
)
console = Console(stderr=True)

DATE_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]
SIMILARITY_HELP = "conditional (default), cosine, lift or count"
EXCLUDE_HELP = "purchased (default), interacted or none"


def _aware(moment: datetime | None) -> datetime | None:
    """A date on the command line is midnight in the merchant's time zone."""
    from django.utils import timezone

    if moment is None:
        return None
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment)


def _config(similarity: str, exclude: str, neighbours: int) -> Any:
    from patron.intelligence.recommend import RecommenderConfig

    try:
        return RecommenderConfig(
            similarity=similarity,  # type: ignore[arg-type]
            exclude=exclude,  # type: ignore[arg-type]
            neighbours=neighbours,
        )
    except ValueError as error:
        console.print(f"[red]{error}")
        raise typer.Exit(2) from None


def _fail(error: Exception) -> None:
    console.print(f"[red]{error}")
    raise typer.Exit(2)


@recommend_app.command("refresh")
def refresh(
    as_of: Annotated[
        datetime | None,
        typer.Option("--as-of", formats=DATE_FORMATS, help="Read data before this (default now)"),
    ] = None,
    k: Annotated[int, typer.Option(help="Suggestions kept per customer")] = 10,
    events: Annotated[
        bool, typer.Option("--events/--no-events", help="Also read the lake's behaviour events")
    ] = True,
    similarity: Annotated[str, typer.Option(help=SIMILARITY_HELP)] = "conditional",
    exclude: Annotated[str, typer.Option(help=EXCLUDE_HELP)] = "purchased",
    neighbours: Annotated[int, typer.Option(help="Most similar products kept per product")] = 50,
) -> None:
    """Replace every customer's suggested products (safe to run again)."""
    django_setup()
    from patron.errors import PatronError
    from patron.recommend.services import recommendations_refresh

    require_migrated()
    config = _config(similarity, exclude, neighbours)
    try:
        result = recommendations_refresh(as_of=_aware(as_of), k=k, config=config, use_events=events)
    except PatronError as error:
        _fail(error)
        return
    table = Table(title="suggestions refreshed", title_justify="left", show_header=False)
    table.add_column("what")
    table.add_column("how many", justify="right")
    for name, value in (
        ("as of", result.as_of.isoformat(timespec="seconds")),
        ("purchase lines read", f"{result.purchase_lines:,}"),
        ("behaviour events read", f"{result.events:,}"),
        ("customers with history", f"{result.customers:,}"),
        ("products", f"{result.items:,}"),
        ("related product pairs kept", f"{result.neighbour_pairs:,}"),
        ("suggestions written", f"{result.suggestions:,}"),
        ("of which bought-together", f"{result.personal:,}"),
        ("seconds", f"{result.seconds:.1f}"),
    ):
        table.add_row(name, value)
    console.print(table)
    print(json.dumps(result.as_dict()))


@recommend_app.command("evaluate")
def evaluate(
    cut: Annotated[
        datetime | None,
        typer.Option(
            "--cut", formats=DATE_FORMATS, help="Train before, test after (default: end - days)"
        ),
    ] = None,
    end: Annotated[
        datetime | None,
        typer.Option("--end", formats=DATE_FORMATS, help="End of the test window (default now)"),
    ] = None,
    days: Annotated[int, typer.Option(help="Test window in days when --cut is not given")] = 90,
    k: Annotated[int, typer.Option(help="Suggestions per customer")] = 10,
    events: Annotated[bool, typer.Option("--events/--no-events")] = True,
    similarity: Annotated[str, typer.Option(help=SIMILARITY_HELP)] = "conditional",
    exclude: Annotated[str, typer.Option(help=EXCLUDE_HELP)] = "purchased",
    neighbours: Annotated[int, typer.Option()] = 50,
) -> None:
    """Back-test on this shop's data: hit rate and recall at k against the best sellers."""
    django_setup()
    from django.utils import timezone

    from patron.errors import PatronError
    from patron.recommend.services import recommendations_evaluate

    require_migrated()
    config = _config(similarity, exclude, neighbours)
    end_at = _aware(end) or timezone.now()
    cut_at = _aware(cut) or end_at - timedelta(days=days)
    try:
        result = recommendations_evaluate(
            cut=cut_at, end=end_at, k=k, config=config, use_events=events
        )
    except PatronError as error:
        _fail(error)
        return

    def percent(value: float | None) -> str:
        return "—" if value is None else f"{100 * value:.1f} %"

    table = Table(
        title=f"hit rate at {k}: train before {cut_at:%Y-%m-%d}, test to {end_at:%Y-%m-%d}",
        title_justify="left",
    )
    table.add_column("customers")
    table.add_column("how many", justify="right")
    table.add_column(f"hit@{k} model", justify="right")
    table.add_column(f"hit@{k} popular", justify="right")
    table.add_row(
        "bought something new",
        f"{result.customers:,}",
        percent(result.hit_rate),
        percent(result.hit_rate_popular),
    )
    table.add_row(
        "… with history before the cut",
        f"{result.warm_customers:,}",
        percent(result.hit_rate_warm),
        percent(result.hit_rate_warm_popular),
    )
    console.print(table)
    console.print(
        f"recall@{k}: model {percent(result.recall)}, popular {percent(result.recall_popular)}; "
        f"hit by the model only {result.model_only:,}, by popularity only "
        f"{result.popular_only:,}; {result.unknown_items:,} of {result.test_purchases:,} new "
        "purchases were of products nobody had touched before the cut"
    )
    print(json.dumps(result.as_dict()))
