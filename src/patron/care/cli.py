"""``patron care``: run the care automation for a day, see the coming days, show the policy.

Mounted by ``patron.cli`` as ``app.add_typer(care_app, name="care")``. Django is set up inside
each command, before any model is imported, as in ``patron.cli``. Each command prints a Rich
summary on stderr and one JSON object on stdout's last line (for scripts).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from patron.clikit import django_setup, require_migrated

care_app = typer.Typer(
    help="Care: birthday and holiday greetings, follow-up visits, the measures by grade.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals may hold personal data
)
console = Console(stderr=True)

DATE_FORMATS = ["%Y-%m-%d"]


@care_app.command("run")
def run(
    day: Annotated[
        datetime | None,
        typer.Option("--date", formats=DATE_FORMATS, help="The day to run (default: today)"),
    ] = None,
) -> None:
    """Greet the day's birthdays and holidays and open the follow-up visits due (idempotent:
    a day already done sends nothing again)."""
    django_setup()
    from patron.care.services import care_run
    from patron.errors import PatronError

    require_migrated()
    try:
        result = care_run(day=day.date() if day else None)
    except PatronError as error:
        console.print(f"[red]{error.message}")
        raise typer.Exit(2) from None
    table = Table(title=f"care for {result.day}", title_justify="left")
    for column in ("", "due", "done before", "queued", "not sent", "coupons", "no coupon"):
        table.add_column(column, justify="left" if not column else "right")
    for name, counts in (("birthdays", result.birthday), ("holidays", result.holiday)):
        table.add_row(
            name,
            *(
                f"{n:,}"
                for n in (
                    counts.due,
                    counts.already,
                    counts.messaged,
                    counts.suppressed,
                    counts.coupons,
                    counts.offers_skipped,
                )
            ),
        )
    console.print(table)
    visits = result.visit
    console.print(
        f"visits: {visits.due:,} due, {visits.already:,} done before, {visits.visits:,} opened "
        f"({visits.to_dedicated_agent:,} to the dedicated agent), {visits.failed:,} failed"
    )
    print(json.dumps(result.as_dict()))


@care_app.command("upcoming")
def upcoming(
    days: Annotated[int, typer.Option(min=1, max=366, help="How many days ahead")] = 30,
    start: Annotated[
        datetime | None,
        typer.Option("--start", formats=DATE_FORMATS, help="First day (default: today)"),
    ] = None,
) -> None:
    """Birthdays, holiday greetings and follow-up visits of the coming days, per grade, by the
    policy as it stands."""
    django_setup()
    from patron.care.selectors import care_upcoming
    from patron.errors import PatronError

    require_migrated()
    try:
        entries = care_upcoming(start=start.date() if start else None, days=days)
    except PatronError as error:
        console.print(f"[red]{error.message}")
        raise typer.Exit(2) from None
    table = Table(title=f"care in the next {days} days", title_justify="left")
    for column in ("day", "what", "grade", "customers"):
        table.add_column(column, justify="right" if column == "customers" else "left")
    for entry in entries:
        what = entry.kind
        if entry.holiday:
            what = f"{entry.holiday_name} ({entry.holiday_on})"
        table.add_row(str(entry.on), what, entry.grade_label, f"{entry.customers:,}")
    console.print(table if entries else "[yellow]nothing planned in that window")
    out: list[dict[str, Any]] = [
        {
            "on": e.on.isoformat(),
            "kind": e.kind,
            "grade": e.grade,
            "customers": e.customers,
            "holiday": e.holiday,
            "holiday_on": e.holiday_on.isoformat() if e.holiday_on else None,
        }
        for e in entries
    ]
    print(json.dumps(out, ensure_ascii=False))


@care_app.command("policy")
def policy() -> None:
    """The measures each grade gets (edit them in the admin or with PUT /api/care/policy/GRADE)."""
    django_setup()
    from patron.care.selectors import measures_view
    from patron.care.services import care_policy

    require_migrated()
    rows = [measures_view(row) for row in care_policy().values()]
    table = Table(title="care policy (measures by grade)", title_justify="left")
    table.add_column("")
    for row in rows:
        table.add_column(f"{row.grade_label} v{row.version}")

    def yes(value: bool) -> str:
        return "yes" if value else "no"

    lines: list[tuple[str, list[str]]] = [
        ("exclusive discount", [f"{r.exclusive_discount_percent}%" for r in rows]),
        ("priority handling", [yes(r.has_priority_handling) for r in rows]),
        ("dedicated line", [yes(r.has_dedicated_line) for r in rows]),
        (
            "follow-up visit",
            [f"every {r.visit_interval_days} days" if r.visit_interval_days else "–" for r in rows],
        ),
        ("birthday greeting", [yes(r.sends_birthday_greeting) for r in rows]),
        ("birthday coupon", [r.birthday_coupon_template_name or "–" for r in rows]),
        ("holidays", ["\n".join(r.holidays) or "–" for r in rows]),
        ("days ahead", [str(r.holiday_days_ahead) for r in rows]),
        ("holiday coupon", [r.holiday_coupon_template_name or "–" for r in rows]),
        ("last changed by", [r.updated_by or "–" for r in rows]),
    ]
    for name, values in lines:
        table.add_row(name, *values)
    console.print(table)
    print(
        json.dumps(
            [
                {
                    "grade": r.grade,
                    "exclusive_discount_percent": str(r.exclusive_discount_percent),
                    "has_priority_handling": r.has_priority_handling,
                    "has_dedicated_line": r.has_dedicated_line,
                    "visit_interval_days": r.visit_interval_days,
                    "sends_birthday_greeting": r.sends_birthday_greeting,
                    "birthday_coupon_template_id": r.birthday_coupon_template_id,
                    "holidays": r.holidays,
                    "holiday_days_ahead": r.holiday_days_ahead,
                    "holiday_coupon_template_id": r.holiday_coupon_template_id,
                    "version": r.version,
                }
                for r in rows
            ],
            ensure_ascii=False,
        )
    )
