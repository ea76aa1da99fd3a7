"""``patron satisfaction``: run the survey job now, the CSAT summary and the service KPIs of a
period.

Mounted by ``patron.cli`` as ``app.add_typer(satisfaction_app, name="satisfaction")``. Django
is set up inside each command, before any model is imported. Each command prints a Rich summary
on stderr and, with ``--json`` (or always, for the job), one JSON object on stdout's last line.
The reads run as the command line (an operator at the machine), not as a staff user.
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

satisfaction_app = typer.Typer(
    help="Satisfaction: the survey job, the CSAT summary and the service KPIs.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals may hold personal data
)
console = Console(stderr=True)

Start = Annotated[
    str | None, typer.Option("--start", help="First day YYYY-MM-DD (default: 29 days before end)")
]
End = Annotated[
    str | None, typer.Option("--end", help="Last day YYYY-MM-DD, included (default: today)")
]
AsJson = Annotated[bool, typer.Option("--json", help="One JSON object on stdout")]


class _Operator:
    """The command line acts with every read permission (it runs on the server itself)."""

    is_authenticated = True
    is_active = True
    pk = None

    def has_perm(self, perm: str) -> bool:
        return True


def _day(text: str | None, name: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"expected YYYY-MM-DD, got {text!r}", param_hint=name) from None


def _plain(value: Any) -> Any:
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _fail(error: Any) -> None:
    console.print(f"[red]{error.message}")
    raise typer.Exit(2)


@satisfaction_app.command("surveys-send")
def surveys_send() -> None:
    """End the survey runs whose time is up, open the surveys due today and invite their
    audience (what the daily job does; safe to run twice)."""
    django_setup()
    from patron.satisfaction.services import surveys_send as send

    require_migrated()
    result = send()
    console.print(
        f"{len(result.opened)} survey runs opened, {result.closed_runs} ended; "
        f"{result.invited} customers invited ({result.suppressed} not reachable or no consent)"
    )
    for survey_id, why in result.failed.items():
        console.print(f"[yellow]survey {survey_id} was not opened: {why}")
    print(json.dumps(result.as_dict()))


@satisfaction_app.command("csat-summary")
def csat_summary(start: Start = None, end: End = None, as_json: AsJson = False) -> None:
    """CSAT of a period: questions sent, answered, response rate, average, distribution."""
    django_setup()
    from patron.errors import PatronError
    from patron.satisfaction.selectors import csat_summary as summary_of

    require_migrated()
    try:
        summary = summary_of(user=_Operator(), start=_day(start, "--start"), end=_day(end, "--end"))
    except PatronError as error:
        _fail(error)
    data = _plain(asdict(summary))
    if as_json:
        print(json.dumps(data, ensure_ascii=False))
        return
    rate = "—" if summary.response_rate is None else f"{summary.response_rate:.1%}"
    average = "—" if summary.average is None else f"{summary.average:.2f}"
    console.print(
        f"CSAT {summary.start} – {summary.end}: {summary.sent} sent, {summary.delivered} "
        f"delivered, {summary.answered} answered ({rate}); average {average}; "
        f"{summary.low} low, {summary.needs_follow_up} need a follow-up"
    )
    console.print(
        "scores: " + ", ".join(f"{k}★ {v}" for k, v in sorted(summary.distribution.items()))
    )


def _number(value: float | None, spec: str = ".1f") -> str:
    return "—" if value is None else format(value, spec)


@satisfaction_app.command("kpis")
def kpis(start: Start = None, end: End = None, as_json: AsJson = False) -> None:
    """Service KPIs per agent and team: tickets handled, first response and resolution times,
    resolution rate, SLA attainment, CSAT, backlog (see docs/satisfaction.md)."""
    django_setup()
    from patron.errors import PatronError
    from patron.satisfaction.selectors import service_kpis

    require_migrated()
    try:
        found = service_kpis(user=_Operator(), start=_day(start, "--start"), end=_day(end, "--end"))
    except PatronError as error:
        _fail(error)
    if as_json:
        print(json.dumps(_plain(asdict(found)), ensure_ascii=False))
        return
    for title, rows in (
        ("everyone", [found.overall]),
        ("per agent", found.agents),
        ("per team", found.teams),
    ):
        table = Table(title=f"{title}, {found.start} – {found.end}", title_justify="left")
        for column in (
            "", "opened", "handled", "FRT med/mean min", "res. med/mean h", "res. rate",
            "SLA", "CSAT", "CSAT resp.", "backlog",
        ):  # fmt: skip
            table.add_column(column, justify="left" if not column else "right")
        for row in rows:
            table.add_row(
                row.label,
                str(row.opened),
                str(row.handled),
                f"{_number(row.first_response_median_minutes)} / "
                f"{_number(row.first_response_mean_minutes)}",
                f"{_number(row.resolution_median_hours)} / {_number(row.resolution_mean_hours)}",
                _number(row.resolution_rate, ".0%"),
                _number(row.sla_attainment, ".0%"),
                _number(row.csat_average, ".2f"),
                _number(row.csat_response_rate, ".0%"),
                str(row.backlog),
            )
        console.print(table)
