"""``patron complaints``: the open complaints, and how well the complaint-risk model ranks.

Mounted by ``patron.cli`` as ``app.add_typer(complaints_app, name="complaints")``. Django is
set up inside each command, before any model is imported. Tables go to stderr; with ``--json``
one JSON document goes to stdout (for scripts).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from patron.clikit import django_setup, require_migrated

complaints_app = typer.Typer(
    help="Complaints: the workflow's open cases and the complaint-risk early warning.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals may hold personal data
)
console = Console(stderr=True)


def _as_of(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    from django.utils import timezone

    return value if timezone.is_aware(value) else timezone.make_aware(value)


@complaints_app.command("list")
def list_(
    stage: Annotated[
        list[str] | None, typer.Option(help="Only this stage (repeat for several)")
    ] = None,
    overdue: Annotated[bool, typer.Option("--overdue", help="Only overdue ones")] = False,
    include_closed: Annotated[bool, typer.Option("--all", help="Closed ones too")] = False,
    limit: Annotated[int, typer.Option(help="At most this many")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON list on stdout")] = False,
) -> None:
    """Complaints, the longest in their stage first (open ones unless told otherwise)."""
    django_setup()
    from patron.complaints import selectors
    from patron.complaints.models import Complaint
    from patron.complaints.rules import STAGES
    from patron.errors import PatronError

    require_migrated()
    try:
        total, rows = selectors.complaint_rows(
            filters=selectors.ComplaintFilter(
                stages=tuple(stage or ()), is_overdue=overdue, include_closed=include_closed
            ),
            limit=limit,
        )
    except PatronError as error:
        console.print(f"[red]{error.message}")
        raise typer.Exit(2) from None
    if as_json:
        print(json.dumps([_plain(r) for r in rows], ensure_ascii=False, default=str))
        return
    table = Table(title=f"complaints ({len(rows)} of {total})", title_justify="left")
    for column in (
        "id",
        "customer",
        "severity",
        "stage",
        "department",
        "age",
        "in stage",
        "overdue",
    ):
        table.add_column(column, justify="right" if column in ("id", "age", "in stage") else "left")
    for r in rows:
        table.add_row(
            str(r.id), r.customer_name, r.severity, r.stage, r.team or "—",
            f"{r.age_hours:.1f} h", f"{r.stage_hours:.1f} h", r.overdue_step or "",
        )  # fmt: skip
    console.print(table)
    counts = {s: Complaint.objects.filter(stage=s).count() for s in STAGES}
    console.print(", ".join(f"{s} {n}" for s, n in counts.items()))


def _plain(row: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(row)


@complaints_app.command("risk-report")
def risk_report(
    as_of: Annotated[
        datetime | None,
        typer.Option(
            "--as-of",
            formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"],
            help="Use the data before this moment (default: now)",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout")] = False,
) -> None:
    """How well the complaint-risk model ranks: fitted on the earlier 80 % of the decided
    tickets, measured on the later 20 % (AUC, precision@k, each feature's own AUC)."""
    django_setup()
    from patron.complaints.risk import complaint_risk_report
    from patron.complaints.risk_model import FEATURES

    require_migrated()
    report = complaint_risk_report(as_of=_as_of(as_of))
    data = report.to_json()
    if as_json:
        print(json.dumps(data, ensure_ascii=False))
        return
    console.print(
        f"[bold]complaint-risk model[/]: {data['method']} · as of {data['as_of']} · "
        f"{data['labelled_tickets']:,} decided tickets, {data['complaints']:,} complaints, "
        f"{data['open_tickets']:,} open to score"
    )
    console.print(
        f"holdout from {data['holdout_from']}: train {data['train_size']:,} "
        f"({data['train_positives']:,} complaints), test {data['test_size']:,} "
        f"({data['test_positives']:,} complaints)"
    )
    auc = data["auc"]
    hand = data["hand_weighted_auc"]
    console.print(
        f"AUC {auc if auc is not None else '—'} (hand-weighted score: "
        f"{hand if hand is not None else '—'}); base rate {data['base_rate']}"
    )
    for name, value in data["auc_without"].items():
        console.print(
            f"AUC without {name}: {value if value is not None else '—'} (a feature that alone "
            "nearly decides the label inflates the AUC: see docs/complaints.md)"
        )
    table = Table(title="precision@k on the holdout", title_justify="left")
    table.add_column("k", justify="right")
    table.add_column("precision", justify="right")
    for k, value in data["precision_at_k"].items():
        table.add_row(k, "—" if value is None else f"{value:.3f}")
    console.print(table)
    weights = Table(title="features", title_justify="left")
    for column in ("feature", "weight", "AUC alone"):
        weights.add_column(column, justify="left" if column == "feature" else "right")
    for feature in FEATURES:
        alone = data["feature_auc"].get(feature.name)
        weights.add_row(
            feature.name,
            f"{data['weights'].get(feature.name, 0.0):+.3f}",
            "—" if alone is None else f"{alone:.3f}",
        )
    console.print(weights)


@complaints_app.command("risk-refresh")
def risk_refresh() -> None:
    """Refresh the stored complaint-risk scores now (what the hourly job does)."""
    django_setup()
    from patron.complaints.risk import complaint_risk_refresh
    from patron.complaints.services import complaints_reconcile

    require_migrated()
    recorded = complaints_reconcile()
    run = complaint_risk_refresh()
    console.print(
        f"{recorded} complaint(s) recorded from desk tickets; scored {run.tickets_scored:,} "
        f"open tickets and {run.customers_scored:,} customers ({run.method})"
    )
    print(
        json.dumps(
            {
                "complaints_recorded": recorded,
                "run": run.pk,
                "method": run.method,
                "tickets_scored": run.tickets_scored,
                "customers_scored": run.customers_scored,
                "auc": run.metrics.get("auc"),
            }
        )
    )
