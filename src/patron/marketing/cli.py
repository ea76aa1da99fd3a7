"""``patron marketing``: segment sizes, refreshing them, the coupon jobs, now, campaigns
(list, launch, evaluate) and win-back programmes (list, run, evaluate).

Mounted by ``patron.cli`` as ``app.add_typer(marketing_app, name="marketing")``. Django is set
up inside each command, before any model is imported. Each command prints a Rich summary on
stderr and one JSON object on stdout's last line (for scripts).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from patron.clikit import django_setup, require_migrated

marketing_app = typer.Typer(
    help="Marketing: segments, coupons and campaigns.",
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


campaigns_app = typer.Typer(help="Campaigns: list, launch, evaluate.", no_args_is_help=True)
marketing_app.add_typer(campaigns_app, name="campaigns")


def _user(username: str | None) -> object:
    if username is None:
        return None
    from patron.account.models import User

    found = User.objects.filter(username=username).first()
    if found is None:
        console.print(f"[red]no user named {username!r}")
        raise typer.Exit(2)
    return found


@campaigns_app.command("list")
def campaigns_list(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON list on stdout")] = False,
) -> None:
    """The campaigns, newest first, with their audience split and how many were messaged."""
    django_setup()
    from patron.marketing.selectors import campaigns_list as summaries

    require_migrated()
    rows: list[dict[str, Any]] = []
    for summary in summaries(user=_System()):
        campaign = summary.campaign
        rows.append(
            {
                "id": campaign.pk,
                "name": campaign.name,
                "status": campaign.status,
                "goal_metric": campaign.goal_metric,
                "segment": campaign.segment.name,
                "period_start": campaign.period_start.isoformat(),
                "period_end": campaign.period_end.isoformat(),
                "treatment": summary.treatment,
                "holdout": summary.holdout,
                "messaged": summary.messaged,
                "skipped": summary.skipped,
            }
        )
    if as_json:
        print(json.dumps(rows, ensure_ascii=False))
        return
    table = Table(title="campaigns", title_justify="left")
    for column in ("id", "name", "status", "goal", "period", "treatment", "holdout", "messaged"):
        table.add_column(
            column,
            justify="right" if column in ("id", "treatment", "holdout", "messaged") else "left",
        )
    for row in rows:
        table.add_row(
            str(row["id"]), str(row["name"]), str(row["status"]), str(row["goal_metric"]),
            f"{row['period_start'][:10]} – {row['period_end'][:10]}", str(row["treatment"]),
            str(row["holdout"]), str(row["messaged"]),
        )  # fmt: skip
    console.print(table)


@campaigns_app.command("launch")
def campaigns_launch(
    campaign_id: Annotated[int, typer.Argument(help="The campaign's id")],
    as_user: Annotated[
        str | None,
        typer.Option("--as", help="Act as this user (default: who scheduled or created it)"),
    ] = None,
) -> None:
    """Launch a draft or scheduled campaign now (or resume a running one); idempotent."""
    django_setup()
    from patron.errors import PatronError
    from patron.marketing.selectors import campaign_get
    from patron.marketing.services import campaign_launch

    require_migrated()
    try:
        campaign = campaign_launch(user=_user(as_user), campaign_id=campaign_id)
    except PatronError as error:
        console.print(f"[red]{error.message}")
        raise typer.Exit(1 if error.status == 409 else 2) from None
    summary = campaign_get(user=_System(), campaign_id=campaign.pk)
    console.print(
        f"campaign {campaign.pk} {campaign.status}: {summary.treatment} treated "
        f"({summary.messaged} messaged, {summary.skipped} skipped), {summary.holdout} held out"
    )
    print(
        json.dumps(
            {
                "id": campaign.pk,
                "status": campaign.status,
                "treatment": summary.treatment,
                "holdout": summary.holdout,
                "messaged": summary.messaged,
                "skipped": summary.skipped,
                "spent": str(campaign.spent),
            }
        )
    )


def _interval(found: object) -> dict[str, float] | None:
    if found is None:
        return None
    return {k: getattr(found, k) for k in ("estimate", "low", "high")}


@campaigns_app.command("evaluate")
def campaigns_evaluate(
    campaign_id: Annotated[int, typer.Argument(help="The campaign's id")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout")] = False,
) -> None:
    """Treatment against holdout: the goal metric per group and the uplift with its 95 %
    interval (intention to treat)."""
    django_setup()
    from patron.errors import PatronError
    from patron.marketing.selectors import campaign_evaluation

    require_migrated()
    try:
        evaluation = campaign_evaluation(user=_System(), campaign_id=campaign_id)
    except PatronError as error:
        console.print(f"[red]{error.message}")
        raise typer.Exit(2) from None
    groups: dict[str, dict[str, Any]] = {
        g.group: {
            "members": g.members,
            "buyers": g.buyers,
            "orders": g.orders,
            "revenue": str(g.revenue),
            "reactivated": g.reactivated,
            "coupons_redeemed": g.coupons_redeemed,
            "metric": g.metric,
            "interval": _interval(g.metric_interval),
        }
        for g in (evaluation.treatment, evaluation.holdout)
    }
    result: dict[str, Any] = {
        "id": campaign_id,
        "goal_metric": evaluation.goal_metric,
        "window": [evaluation.window_start.isoformat(), evaluation.window_end.isoformat()],
        "is_complete": evaluation.is_complete,
        "groups": groups,
        "uplift": _interval(evaluation.uplift),
        "method": evaluation.uplift.method if evaluation.uplift else None,
        "is_significant": evaluation.is_significant,
        "target": evaluation.target,
        "progress": evaluation.progress,
        "messaged": sum(r.messages for r in evaluation.reach),
        "notes": list(evaluation.notes),
    }
    if as_json:
        print(json.dumps(result, ensure_ascii=False))
        return
    table = Table(title=f"campaign {campaign_id}: {evaluation.goal_label}", title_justify="left")
    for column in ("group", "members", "buyers", "orders", "revenue", "metric", "95 % interval"):
        table.add_column(column, justify="left" if column == "group" else "right")
    for name, g in groups.items():
        interval = g["interval"]
        table.add_row(
            name, str(g["members"]), str(g["buyers"]), str(g["orders"]), str(g["revenue"]),
            "—" if g["metric"] is None else f"{g['metric']:.4f}",
            "—" if interval is None else f"[{interval['low']:.4f}, {interval['high']:.4f}]",
        )  # fmt: skip
    console.print(table)
    uplift = result["uplift"]
    if uplift is not None:
        verdict = "significant" if evaluation.is_significant else "not significant"
        console.print(
            f"uplift {uplift['estimate']:+.4f}, 95 % interval [{uplift['low']:+.4f}, "
            f"{uplift['high']:+.4f}] ({verdict}; {result['method']})"
        )
    for note in evaluation.notes:
        console.print(f"· {note}")


winback_app = typer.Typer(help="Win-back programmes: list, run, evaluate.", no_args_is_help=True)
marketing_app.add_typer(winback_app, name="winback")


@winback_app.command("list")
def winback_list(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON list on stdout")] = False,
) -> None:
    """The win-back programmes with their threshold, entries by group and latest run."""
    django_setup()
    from patron.marketing.selectors import winback_programmes_list

    require_migrated()
    rows: list[dict[str, Any]] = []
    for summary in winback_programmes_list(user=_System()):
        programme = summary.programme
        rows.append(
            {
                "id": programme.pk,
                "name": programme.name,
                "is_active": programme.is_active,
                "churn_threshold": float(programme.churn_threshold),
                "entries": summary.entries,
                "treatment": summary.treatment,
                "holdout": summary.holdout,
                "messaged": summary.messaged,
                "last_run_at": programme.last_run_at.isoformat() if programme.last_run_at else None,
            }
        )
    if as_json:
        print(json.dumps(rows, ensure_ascii=False))
        return
    table = Table(title="win-back programmes", title_justify="left")
    for column in (
        "id",
        "name",
        "active",
        "threshold",
        "entries",
        "treatment",
        "holdout",
        "last run",
    ):
        table.add_column(column, justify="left" if column in ("name", "last run") else "right")
    for row in rows:
        table.add_row(
            str(row["id"]), str(row["name"]), "yes" if row["is_active"] else "paused",
            f"{row['churn_threshold']:.3f}", str(row["entries"]), str(row["treatment"]),
            str(row["holdout"]), str(row["last_run_at"] or "never"),
        )  # fmt: skip
    console.print(table)


@winback_app.command("run")
def winback_run_command(
    programme_id: Annotated[
        int | None,
        typer.Option("--programme", help="Run this programme only (default: all active)"),
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Enrolment time, ISO 8601 (default: now)"),
    ] = None,
    as_user: Annotated[
        str | None, typer.Option("--as", help="Act as this user (default: the creator)")
    ] = None,
) -> None:
    """Enrol the customers whose churn risk has newly risen to a programme's threshold and send
    the treated their offer (what the daily job does); idempotent."""
    django_setup()
    from datetime import datetime

    from django.utils import timezone

    from patron.errors import PatronError
    from patron.marketing.services import winback_programme_run, winback_run

    require_migrated()
    try:
        moment = datetime.fromisoformat(as_of) if as_of else timezone.now()
    except ValueError:
        console.print(f"[red]--as-of: expected an ISO 8601 time, got {as_of!r}")
        raise typer.Exit(2) from None
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    if programme_id is None and as_user is None:
        result = winback_run(as_of=moment).as_dict()
    else:
        ids = [programme_id] if programme_id is not None else _active_programmes()
        result = {"runs": {}, "failed": {}}
        for pk in ids:
            try:
                run = winback_programme_run(programme_id=pk, as_of=moment, user=_user(as_user))
            except PatronError as error:
                result["failed"][str(pk)] = error.message
                continue
            result["runs"][str(pk)] = {
                "run": run.pk, "at_risk": run.at_risk, "entered": run.entered,
                "treatment": run.treatment, "holdout": run.holdout, "messaged": run.messaged,
                "skipped": run.skipped, "recovered": run.recovered,
            }  # fmt: skip
    for pk, run_summary in result["runs"].items():
        console.print(
            f"programme {pk}: {run_summary['at_risk']} at risk, {run_summary['entered']} entered "
            f"({run_summary['treatment']} treated, {run_summary['holdout']} held out), "
            f"{run_summary['messaged']} messaged, {run_summary['skipped']} skipped, "
            f"{run_summary['recovered']} recovered"
        )
    for pk, message in result["failed"].items():
        console.print(f"[red]programme {pk}: {message}")
    print(json.dumps(result, ensure_ascii=False))
    if result["failed"]:
        raise typer.Exit(1)


def _active_programmes() -> list[int]:
    from patron.marketing.models import WinbackProgramme

    return list(
        WinbackProgramme.objects.filter(is_active=True).order_by("pk").values_list("pk", flat=True)
    )


@winback_app.command("evaluate")
def winback_evaluate(
    programme_id: Annotated[int, typer.Argument(help="The programme's id")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout")] = False,
) -> None:
    """Reactivation within the measurement window, treatment against holdout, and the uplift
    with its 95 % interval (entries whose window has closed; intention to treat)."""
    django_setup()
    from patron.errors import PatronError
    from patron.marketing.selectors import winback_evaluation

    require_migrated()
    try:
        evaluation = winback_evaluation(user=_System(), programme_id=programme_id)
    except PatronError as error:
        console.print(f"[red]{error.message}")
        raise typer.Exit(2) from None
    groups: dict[str, dict[str, Any]] = {
        g.group: {
            "entries": g.entries,
            "reactivated": g.reactivated,
            "rate": g.rate,
            "interval": _interval(g.rate_interval),
            "orders": g.orders,
            "revenue": str(g.revenue),
            "revenue_per_entry": g.revenue_per_entry,
        }
        for g in (evaluation.treatment, evaluation.holdout)
    }
    result: dict[str, Any] = {
        "id": programme_id,
        "window_days": evaluation.programme.window_days,
        "matured": evaluation.matured,
        "in_window": evaluation.in_window,
        "groups": groups,
        "uplift": _interval(evaluation.uplift),
        "method": evaluation.uplift.method if evaluation.uplift else None,
        "is_significant": evaluation.is_significant,
        "revenue_uplift": _interval(evaluation.revenue_uplift),
        "tiers": [
            {
                "tier": t.tier,
                "treatment": [t.treatment_reactivated, t.treatment],
                "holdout": [t.holdout_reactivated, t.holdout],
                "uplift": _interval(t.uplift),
            }
            for t in evaluation.tiers
        ],
        "notes": list(evaluation.notes),
    }
    if as_json:
        print(json.dumps(result, ensure_ascii=False))
        return
    table = Table(
        title=f"win-back {programme_id}: reactivation within {result['window_days']} days",
        title_justify="left",
    )
    for column in ("group", "entries", "reactivated", "rate", "95 % interval", "orders", "revenue"):
        table.add_column(column, justify="left" if column == "group" else "right")
    for name, g in groups.items():
        interval = g["interval"]
        table.add_row(
            name, str(g["entries"]), str(g["reactivated"]),
            "—" if g["rate"] is None else f"{g['rate']:.4f}",
            "—" if interval is None else f"[{interval['low']:.4f}, {interval['high']:.4f}]",
            str(g["orders"]), str(g["revenue"]),
        )  # fmt: skip
    console.print(table)
    found = result["uplift"]
    if found is not None:
        verdict = "significant" if evaluation.is_significant else "not significant"
        console.print(
            f"uplift {found['estimate']:+.4f}, 95 % interval [{found['low']:+.4f}, "
            f"{found['high']:+.4f}] ({verdict}; {result['method']})"
        )
    for note in evaluation.notes:
        console.print(f"· {note}")


class _System:
    """The operator at the command line reads everything (as the other commands do)."""

    is_authenticated = True
    is_active = True

    def has_perm(self, perm: str) -> bool:
        return True
