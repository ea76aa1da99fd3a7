"""The ``patron`` command line: the contract for operators, scripts and CI (DESIGN.md §10)."""

from __future__ import annotations

import json
import os
import secrets
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from patron.aftersales.cli import aftersales_app
from patron.care.cli import care_app
from patron.clikit import django_setup, require_migrated
from patron.complaints.cli import complaints_app
from patron.knowledge.cli import knowledge_app
from patron.loyalty.cli import loyalty_app
from patron.marketing.cli import marketing_app
from patron.outbox.cli import outbox_app
from patron.recommend.cli import recommend_app
from patron.satisfaction.cli import satisfaction_app
from patron.service.cli import service_app

app = typer.Typer(
    help="Patron: customer quality platform for e-commerce merchants.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals may hold personal data
)
customers_app = typer.Typer(help="Look at customers.", no_args_is_help=True)
app.add_typer(customers_app, name="customers")
models_app = typer.Typer(help="Customer models: back-tests and parameters.", no_args_is_help=True)
app.add_typer(models_app, name="models")
risk_app = typer.Typer(
    help="Risk control: run detection, list and back-test rules, see the alert queue.",
    no_args_is_help=True,
)
app.add_typer(risk_app, name="risk")
insights_app = typer.Typer(
    help="Insights: fill the KPI tables, see targets and where they stand.", no_args_is_help=True
)
app.add_typer(insights_app, name="insights")
certification_app = typer.Typer(
    help="Certified customers: levels, re-verification, applicant links, process figures.",
    no_args_is_help=True,
)
app.add_typer(certification_app, name="certification")
app.add_typer(outbox_app, name="outbox")
app.add_typer(loyalty_app, name="loyalty")
app.add_typer(recommend_app, name="recommend")
app.add_typer(marketing_app, name="marketing")
app.add_typer(care_app, name="care")
app.add_typer(satisfaction_app, name="satisfaction")
app.add_typer(complaints_app, name="complaints")
app.add_typer(aftersales_app, name="aftersales")
app.add_typer(knowledge_app, name="knowledge")
app.add_typer(service_app, name="service")
console = Console(stderr=True)

ADAPTERS = ("olist", "taobao", "cdnow")


_django = django_setup


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description:<32}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
        disable=not console.is_terminal and os.environ.get("PATRON_PROGRESS") != "1",
    )


class _Bars:
    """Adapts the services' ``progress(step, done, total)`` callbacks to Rich bars."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, Any] = {}

    def __call__(self, step: str, done: int, total: int | None) -> None:
        if step not in self.tasks:
            self.tasks[step] = self.progress.add_task(step, total=total)
        self.progress.update(self.tasks[step], completed=done, total=total)


def _migrate(verbosity: int = 0) -> None:
    from django.core.management import call_command

    from patron.account.services import roles_sync

    call_command("migrate", interactive=False, verbosity=verbosity)
    roles_sync()


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema and the roles."""
    _django()
    _migrate(verbosity=1)


@app.command()
def createuser(
    name: Annotated[str, typer.Argument(help="Login name")],
    role: Annotated[
        str,
        typer.Option(
            help="administrator, operations_manager, service_agent, risk_analyst, marketer, auditor, analyst"
        ),
    ],
    token: Annotated[
        bool, typer.Option("--token", help="Also create an API token and print it")
    ] = False,
    password: Annotated[
        str | None,
        typer.Option(help="Password for the web app (prompted if omitted and no --token)"),
    ] = None,
    email: Annotated[str, typer.Option(help="E-mail address")] = "",
) -> None:
    """Create a staff user with a role; with --token, print a new API token for them."""
    _django()
    from patron.account.services import token_create, user_create
    from patron.errors import PatronError

    if password is None and not token and sys.stdin.isatty():
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        user = user_create(username=name, role=role, password=password, email=email)
    except PatronError as exc:
        console.print(f"[red]{exc.message}")
        raise typer.Exit(2) from None
    console.print(f"created user '{user.username}' with role {role}")
    if token:
        print(token_create(user=user))


@app.command("import")
def import_(
    kind: Annotated[
        str,
        typer.Argument(
            help="customers, consents, orders, order-lines, payments, returns, reviews, events, tickets, shipments, products, categories; or an adapter: olist (a folder), taobao, cdnow"
        ),
    ],
    path: Annotated[Path, typer.Argument(help="CSV, Parquet or JSONL file (a folder for olist)")],
    mapping: Annotated[
        Path | None, typer.Option(help="TOML file mapping your column names and values to Patron's")
    ] = None,
    source: Annotated[
        str | None,
        typer.Option(help="Source system name; records are keyed by (source, external id)"),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check and count, write nothing")
    ] = False,
    skip_invalid: Annotated[
        bool,
        typer.Option(
            "--skip-invalid", help="Load the valid records, write the rest to a rejects file"
        ),
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the summary as one JSON object on the last line")
    ] = False,
) -> None:
    """Load a file all-or-nothing and idempotently; exits 1 when any record was rejected."""
    _django()
    from patron.errors import PatronError
    from patron.ingest.mapping import mapping_load
    from patron.ingest.services import ImportSummary, import_file, import_parts

    _migrate()
    try:
        with _progress() as progress:
            bars = _Bars(progress)
            summary: ImportSummary
            if kind in ADAPTERS:
                summary = import_parts(
                    label=kind,
                    source=kind,
                    path=str(path),
                    parts=lambda: _adapter_parts(kind, path),
                    dry_run=dry_run,
                    skip_invalid=skip_invalid,
                    progress=bars,
                )
            else:
                loaded = mapping_load(mapping) if mapping else None
                summary = import_file(
                    kind=kind,
                    path=path,
                    mapping=loaded,
                    source=source,
                    dry_run=dry_run,
                    skip_invalid=skip_invalid,
                    progress=bars,
                )
    except PatronError as exc:
        console.print(f"[red]{exc.message}")
        if as_json:
            print(
                json.dumps(
                    {
                        "status": "rejected",
                        "inserted": 0,
                        "updated": 0,
                        "rejected": 1,
                        "errors": [{"reason": exc.message}],
                    },
                    ensure_ascii=False,
                )
            )
        raise typer.Exit(2) from None
    _print_summary(summary)
    if as_json:
        print(json.dumps(summary.as_dict(), ensure_ascii=False, default=str))
    if not summary.ok:
        raise typer.Exit(1)


def _adapter_parts(kind: str, path: Path) -> list[Any]:
    if kind == "olist":
        from patron.ingest.adapters.olist import olist_parts

        return olist_parts(path)
    if kind == "taobao":
        from patron.ingest.adapters.taobao import taobao_parts

        return taobao_parts(path)
    from patron.ingest.adapters.cdnow import cdnow_parts

    return cdnow_parts(path)


def _print_summary(summary: Any) -> None:
    table = Table(
        title=f"import #{summary.batch} {summary.kind} → {summary.status}", title_justify="left"
    )
    for column in ("kind", "read", "inserted", "updated", "unchanged", "rejected"):
        table.add_column(column, justify="right" if column != "kind" else "left")
    for kind, counts in summary.by_kind.items():
        table.add_row(
            kind,
            *(
                str(counts.get(c, 0))
                for c in ("read", "inserted", "updated", "unchanged", "rejected")
            ),
        )
    table.add_row(
        "[bold]total",
        str(summary.read),
        str(summary.inserted),
        str(summary.updated),
        str(summary.unchanged),
        str(summary.rejected),
    )
    console.print(table)
    if summary.duplicates:
        console.print(
            f"{summary.duplicates} identical duplicate record(s) in the file were skipped"
        )
    for error in summary.errors[:20]:
        where = (
            f"{error['file']} line {error['line']}" if error.get("line") else error.get("file", "")
        )
        field = f" field '{error['field']}'" if error.get("field") else ""
        value = f" value {error['value']!r}" if error.get("value") else ""
        console.print(f"[red]rejected[/] {where}{field}{value}: {error['reason']}")
    if len(summary.errors) > 20 or summary.rejected > len(summary.errors):
        console.print(f"… {summary.rejected} record(s) rejected in all")
    if summary.rejects_file:
        console.print(f"rejected records with reasons: {summary.rejects_file}")
    if summary.status == "rejected":
        console.print("[red]nothing was written: fix the records above or use --skip-invalid")
    console.print(f"{summary.seconds:.2f} s")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes")] = 2,
) -> None:
    """Serve the web app and the API (gunicorn, sync workers with threads)."""
    _django()
    _migrate()
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        "patron.wsgi:application",
        "--bind",
        f"{host}:{port}",
        "--workers",
        str(workers),
        "--threads",
        "4",
        "--access-logfile",
        "-",
        "--log-level",
        "warning",
    ]
    os.execv(sys.executable, argv)


DEMO_SOURCE = "demo"


def _demo_loyalty_and_certification(as_of: datetime, *, seed: int) -> None:
    """Points and tiers as of the end of the demo history; some certified customers."""
    from patron.demo.certifications import demo_certifications
    from patron.loyalty.services import points_accrue
    from patron.loyalty.tiers import tiers_evaluate, tiers_seed

    tiers_seed()
    accrued = points_accrue(as_of=as_of + timedelta(seconds=1))
    tiers = tiers_evaluate(as_of=as_of.date())
    console.print(
        f"loyalty: {accrued.points_earned:,} points earned on {accrued.orders_credited:,} orders "
        f"and {accrued.reviews_credited:,} reviews; tiers: {tiers.joined:,} placed, {tiers.up:,} up"
    )
    made = demo_certifications(seed=seed)
    console.print(
        f"certification: {made.certified} certified, {made.waiting} waiting for review, "
        f"{made.returned} sent back"
    )
    from patron.demo.campaigns import demo_campaign

    placebo = demo_campaign(as_of=as_of, seed=seed)
    if placebo.uplift is not None:
        console.print(
            f"campaign {placebo.campaign_id} (placebo, nothing sent): {placebo.treatment:,} "
            f"treated, {placebo.holdout:,} held out; repurchase uplift {placebo.uplift:+.3f}, "
            f"95 % interval [{placebo.low:+.3f}, {placebo.high:+.3f}]"
        )
    from patron.knowledge.services import knowledge_seed

    faq = knowledge_seed()
    console.print(f"FAQ: {faq.created} articles added, {faq.existing} there already")


def _demo_complaints(as_of: datetime, *, seed: int) -> None:
    """Complaints in every stage on the demo's complaint tickets; complaint-risk scores."""
    from patron.complaints.risk import complaint_risk_refresh
    from patron.demo.complaints import demo_complaints

    made = demo_complaints(seed=seed, as_of=as_of)
    console.print(
        f"complaints: {made.recorded} taken through the workflow ("
        + ", ".join(f"{stage} {count}" for stage, count in made.by_stage.items())
        + ")"
    )
    run = complaint_risk_refresh(as_of=as_of + timedelta(seconds=1))
    auc = run.metrics.get("auc")
    console.print(
        f"complaint risk: {run.tickets_scored:,} open tickets scored ({run.method}"
        + (f", holdout AUC {auc:.3f}" if auc is not None else "")
        + ")"
    )


def _demo_desk(*, seed: int) -> None:
    """The service desk alive: agents and today's tickets with their SLA clocks."""
    from patron.demo.desk import demo_desk

    desk = demo_desk(seed=seed)
    console.print(
        f"service desk: {desk.opened} live tickets ({desk.answered_by_faq} answered by the FAQ, "
        f"{desk.replied} replied, {desk.solved} solved, {desk.escalated} escalated on a missed "
        f"SLA); agents {', '.join(desk.agents)}"
    )


def _demo_aftersales(*, seed: int) -> None:
    """After-sales requests in every state; parcels with their scans and exceptions."""
    from patron.demo.aftersales_desk import demo_aftersales

    made = demo_aftersales(seed=seed)
    console.print(
        f"after-sales: {made.requests} requests ({made.outside_policy} outside the policy); "
        f"{made.shipments} parcels tracked, {made.exceptions} logistics exceptions"
    )


def _demo_satisfaction(*, seed: int) -> None:
    """CSAT on the solved tickets, a quarterly survey with answers, suggestions and plans."""
    from patron.demo.satisfaction import demo_satisfaction

    made = demo_satisfaction(seed=seed)
    console.print(
        f"satisfaction: CSAT asked on {made.asked} solved tickets, {made.answered} answered; "
        f"survey sent to {made.invited} core customers, {made.survey_answers} answered; "
        f"{made.suggestions} suggestions, {made.plans} improvement plans"
    )


def _demo_marketing(as_of: datetime, *, seed: int) -> None:
    """Suggested products, care for the last day by the measures per grade, and the win-back
    programme replayed as a placebo 90 days before the end of the history."""
    from patron.demo.care import demo_care
    from patron.demo.winback import demo_winback
    from patron.recommend.services import recommendations_refresh

    made = recommendations_refresh(as_of=as_of + timedelta(seconds=1))
    console.print(
        f"recommendations: {made.suggestions:,} suggestions for {made.customers:,} customers "
        f"({made.personal:,} from what was bought together)"
    )
    care = demo_care(as_of=as_of)
    console.print(
        f"care on {care.day}: {care.birthday_greetings} birthday and {care.holiday_greetings} "
        f"holiday greetings ({care.coupons} coupons), {care.visits} follow-up visits, "
        f"{care.not_sent} not sent"
    )
    winback = demo_winback(as_of=as_of, seed=seed)
    if winback.uplift is not None and winback.low is not None and winback.high is not None:
        console.print(
            f"win-back programme {winback.programme_id} (placebo, nothing sent): "
            f"{winback.treatment:,} treated, {winback.holdout:,} held out; reactivation uplift "
            f"{winback.uplift:+.3f}, 95 % interval [{winback.low:+.3f}, {winback.high:+.3f}]"
        )


@app.command()
def demo(
    customers: Annotated[
        int, typer.Option(help="How many customers the demo merchant has")
    ] = 20_000,
    seed: Annotated[
        int, typer.Option(help="Random seed: the same seed gives the same merchant")
    ] = 7,
    no_serve: Annotated[
        bool, typer.Option("--no-serve", help="Stop after loading; do not start the web app")
    ] = False,
    host: Annotated[str, typer.Option(help="Address to serve on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to serve on")] = 8000,
) -> None:
    """Build a realistic demo merchant in PATRON_HOME (SQLite + Parquet), load it, serve it."""
    _django()
    from django.conf import settings

    from patron.account.models import User
    from patron.account.services import user_create
    from patron.demo.generator import generate_demo
    from patron.errors import PatronError
    from patron.ingest.schemas import LOAD_ORDER
    from patron.ingest.services import import_file

    _migrate()
    out_dir = Path(settings.HOME) / "demo" / f"seed-{seed}-n{customers}"
    with _progress() as progress:
        bars = _Bars(progress)
        manifest = generate_demo(out_dir=out_dir, customers=customers, seed=seed, progress=bars)
        failed = []
        for kind in LOAD_ORDER:
            summary = import_file(
                kind=kind, path=manifest.files[kind], source=DEMO_SOURCE, progress=bars
            )
            if not summary.ok:
                failed.append((kind, summary))
    for kind, summary in failed:
        console.print(f"[red]demo data for {kind} was refused:")
        _print_summary(summary)
    if failed:
        raise typer.Exit(1)
    console.print(
        "[bold]demo merchant loaded[/]: "
        + ", ".join(f"{k} {v:,}" for k, v in manifest.counts.items())
    )
    console.print(
        f"problem customers (for measuring risk detection): {out_dir / 'problem_customers.json'}"
    )
    try:
        _score(manifest.as_of.date() + timedelta(days=1))
    except PatronError as exc:
        console.print(f"[yellow]scoring skipped: {exc.message}")
    _detect(manifest.as_of + timedelta(seconds=1))  # the history ends at manifest.as_of
    from patron.insight.services import metrics_fill

    filled = metrics_fill()
    console.print(
        f"insights: {sum(filled.months.values()):,} metric-months filled in {filled.seconds:.1f} s"
    )
    _demo_loyalty_and_certification(manifest.as_of, seed=seed)
    _demo_complaints(manifest.as_of, seed=seed)
    _demo_desk(seed=seed)
    _demo_aftersales(seed=seed)
    _demo_satisfaction(seed=seed)
    _demo_marketing(manifest.as_of, seed=seed)
    from patron.insight.correlations import correlations_run

    correlations_run(as_of=manifest.as_of.date())
    password = secrets.token_urlsafe(9)
    admin = User.objects.filter(username="admin").first()
    if admin is None:
        admin = user_create(username="admin", role="administrator", password=password)
    else:
        admin.set_password(password)
        admin.save(update_fields=["password"])
    login = Path(settings.HOME) / "demo-login.txt"
    login.write_text(f"user: admin\npassword: {password}\n", encoding="utf-8")
    login.chmod(0o600)
    console.print(f"staff login: [bold]admin[/] / [bold]{password}[/] (also in {login})")
    if no_serve:
        return
    console.print(f"serving on [bold]http://{host}:{port}/[/] (Ctrl-C stops)")
    serve(host=host, port=port, workers=2)


@app.command()
def score(
    as_of: Annotated[
        datetime | None,
        typer.Option(
            "--as-of",
            formats=["%Y-%m-%d"],
            help="Score with the data before this date (default: today)",
        ),
    ] = None,
    regrade: Annotated[
        bool,
        typer.Option(
            "--regrade",
            help="Re-decide every customer's grade (the quarterly job does this); without it "
            "only customers with no grade yet get one",
        ),
    ] = False,
) -> None:
    """Run the whole pipeline (features, purchase models, credit, churn, clusters, value,
    grades) and write every customer's scores with their reasons."""
    _django()
    from patron.errors import PatronError

    _migrate()
    try:
        _score((as_of or datetime.now()).date(), regrade=regrade)
    except PatronError as exc:
        console.print(f"[red]{exc.message}")
        raise typer.Exit(2) from None


def _score(as_of: Any, *, regrade: bool = False) -> Any:
    from patron.scoring.services import grade_counts_text, score_customers

    with _progress() as progress:
        run = score_customers(as_of=as_of, regrade=regrade, progress=_Bars(progress))
    bg = run.parameters["bgnbd"]
    summary = run.summary
    console.print(
        f"scored [bold]{run.customers:,}[/] customers as of {run.as_of} "
        f"(BG/NBD r={bg['r']:.3g} alpha={bg['alpha']:.3g} a={bg['a']:.3g} b={bg['b']:.3g}; "
        f"credit: {run.parameters['credit']['model']}; churn: {run.parameters['churn']['model']}; "
        f"{len(summary.get('clusters', []))} clusters)"
    )
    console.print(f"grades: {grade_counts_text(summary['grade_counts'])}")
    moves = summary["moves"] or summary["pending_moves"]
    verb = "moved" if summary["regrade"] else "would move at the next re-grade"
    console.print(
        f"{moves['up']:,} up, {moves['down']:,} down {verb}; {moves['unchanged']:,} unchanged; "
        f"{summary['history']['new']:,} graded for the first time"
    )
    console.print("seconds: " + ", ".join(f"{k} {v}" for k, v in run.seconds.items()))
    return run


@models_app.command("report")
def models_report(
    as_of: Annotated[
        datetime | None,
        typer.Option("--as-of", formats=["%Y-%m-%d"], help="Calibration cut-off (default: today)"),
    ] = None,
    holdout_days: Annotated[
        int, typer.Option(help="Days after the cut-off the models are judged on")
    ] = 90,
    period_days: Annotated[
        float, typer.Option(help="Length of the model's time unit in days (7 = weeks)")
    ] = 7.0,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the report as one JSON object on the last line")
    ] = False,
) -> None:
    """Fit the models on the data before --as-of and back-test them on the holdout after it."""
    _django()
    from patron.errors import PatronError
    from patron.scoring.report import models_report as build_report

    cutoff = (as_of or datetime.now()).date()
    try:
        report = build_report(as_of=cutoff, holdout_days=holdout_days, period_days=period_days)
    except PatronError as exc:
        console.print(f"[red]{exc.message}")
        raise typer.Exit(2) from None
    _print_report(report)
    if as_json:
        print(json.dumps(report, ensure_ascii=False))


def _number(value: Any, spec: str = ".3f") -> str:
    return "n/a" if value is None else format(value, spec)


def _print_report(report: dict[str, Any]) -> None:
    bg, gg = report["bgnbd"], report["gamma_gamma"]
    holdout = bg["holdout"]
    table = Table(
        title=f"models as of {report['as_of']}, holdout {report['holdout_days']} days, "
        f"{report['customers']:,} customers",
        title_justify="left",
    )
    table.add_column("model")
    table.add_column("parameters / training")
    table.add_column("holdout")
    table.add_row(
        "BG/NBD",
        f"r={bg['r']:.4g} alpha={bg['alpha']:.4g} a={bg['a']:.4g} b={bg['b']:.4g} "
        f"LL={bg['log_likelihood']:.1f}",
        f"repeat purchases predicted {holdout['predicted_repeat_transactions']:,.0f} vs actual "
        f"{holdout['actual_repeat_transactions']:,}; correlation per customer "
        + _number(holdout["correlation_per_customer"]),
    )
    pareto = report["pareto_nbd"]
    table.add_row(
        "Pareto/NBD",
        f"r={pareto['r']:.4g} alpha={pareto['alpha']:.4g} s={pareto['s']:.4g} "
        f"beta={pareto['beta']:.4g} LL={pareto['log_likelihood']:.1f}",
        f"repeat purchases predicted {pareto['holdout']['predicted_repeat_transactions']:,.0f}; "
        "correlation per customer "
        + _number(pareto["holdout"]["correlation_per_customer"])
        + ("; closer than BG/NBD" if pareto["closer_than_bgnbd"] else "; BG/NBD is closer"),
    )
    clv = report["clv_error"]
    table.add_row(
        "Gamma-Gamma (CLV)",
        f"p={gg['p']:.4g} q={gg['q']:.4g} gamma={gg['gamma']:.4g}",
        f"spend predicted {clv['predicted_total']:,.0f} vs actual {clv['actual_total']:,.0f}; "
        f"mean abs. error {clv['mean_absolute_error']:,.2f} per customer; correlation "
        + _number(clv["correlation_per_customer"]),
    )
    churn = report["churn"]
    table.add_row(
        f"churn ({churn['model_in_use']})",
        f"{churn['customers']:,} buyers, {churn['churned_in_holdout']:,} bought nothing",
        f"AUC {_number(churn['model_in_use_auc'])} (BG/NBD {_number(churn['bgnbd_auc'])}); "
        f"Brier {_number(churn['model_in_use_brier'])} (BG/NBD {_number(churn['bgnbd_brier'])})",
    )
    credit = report["credit"]
    table.add_row(
        f"credit ({credit['model']})",
        f"trained on {credit['training'].get('train_rows', 0):,} customers, "
        f"{credit['training'].get('train_bad', 0):,} bad outcomes",
        f"{credit['bad_in_holdout']:,} bad outcomes; AUC {_number(credit['auc'])}, "
        f"KS {_number(credit['ks'])}",
    )
    stability = report["grade_stability"]
    if "not_measured" in stability:
        table.add_row("grades", "", f"stability not measured: {stability['not_measured']}")
    else:
        table.add_row(
            "grades",
            ", ".join(f"{k} {v:,}" for k, v in report["grade_counts"].items()),
            f"a quarter apart: {_number(stability['share_unchanged'], '.1%')} kept their grade, "
            f"{stability['up']:,} up, {stability['down']:,} down",
        )
    console.print(table)


@customers_app.command("show")
def customers_show(
    customer_id: Annotated[int, typer.Argument(help="Customer id")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Show one customer's profile (personal data unmasked: the CLI is an operator's tool)."""
    _django()
    from patron.customer.models import Customer

    customer = Customer.objects.filter(pk=customer_id).first()
    if customer is None:
        console.print(f"[red]customer {customer_id} not found")
        raise typer.Exit(1)
    data = {
        "id": customer.pk,
        "source": customer.source,
        "external_id": customer.external_id,
        "name": customer.name,
        "kind": customer.kind,
        "phone": customer.phone,
        "email": customer.email,
        "province": customer.province,
        "city": customer.city,
        "registered_at": customer.registered_at,
        "orders": customer.orders.count(),
        "reviews": customer.reviews.count(),
        "tickets": customer.tickets.count(),
    }
    if as_json:
        print(json.dumps(data, ensure_ascii=False, default=str))
        return
    table = Table(show_header=False)
    for key, value in data.items():
        table.add_row(key, "" if value is None else str(value))
    Console().print(table)


# --- background jobs (docs/jobs.md) -------------------------------------------------------------

jobs_app = typer.Typer(
    help="Periodic jobs: the schedule, and running a job by hand.", no_args_is_help=True
)
app.add_typer(jobs_app, name="jobs")


_require_migrated = require_migrated


def _local(moment: datetime | None) -> str:
    from django.utils import timezone

    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M %Z") if moment else "—"


@app.command()
def worker(
    queue: Annotated[
        str, typer.Option(help="Queues to run jobs from, comma-separated; '*' for all")
    ] = "*",
    interval: Annotated[
        float, typer.Option(help="Seconds to wait before looking again when the queue is empty")
    ] = 1.0,
    batch: Annotated[
        bool,
        typer.Option("--batch", "--once", help="Run the jobs that are queued now, then exit"),
    ] = False,
    max_tasks: Annotated[
        int | None, typer.Option(help="Exit after this many jobs (the supervisor restarts it)")
    ] = None,
    worker_id: Annotated[
        str | None, typer.Option(help="Name of this worker, unique in the pool (default: random)")
    ] = None,
) -> None:
    """Run background jobs from the database queue until SIGTERM or Ctrl-C.

    On the first signal the job that is running finishes; a second one abandons it.
    """
    _django()
    from django.conf import settings
    from django.core.management import call_command
    from django.tasks import DEFAULT_TASK_BACKEND_ALIAS, task_backends
    from django_tasks_db import DatabaseBackend

    _require_migrated()
    if not isinstance(task_backends[DEFAULT_TASK_BACKEND_ALIAS], DatabaseBackend):
        console.print(
            "[red]the task backend is not the database queue (PATRON_TASKS_BACKEND): "
            "jobs run where they are enqueued, there is nothing for a worker to do"
        )
        raise typer.Exit(2)
    unknown = set(queue.split(",")) - {"*", *settings.TASK_QUEUES}
    if unknown:
        console.print(
            f"[red]unknown queue(s) {', '.join(sorted(unknown))}; "
            f"the queues are: {', '.join(settings.TASK_QUEUES)}"
        )
        raise typer.Exit(2)
    if max_tasks is not None and max_tasks < 1:
        console.print("[red]--max-tasks must be at least 1")
        raise typer.Exit(2)
    options: dict[str, Any] = {
        "queue_name": queue,
        "interval": interval,
        "batch": batch,
        "max_tasks": max_tasks,
        "reload": False,
        "startup_delay": not batch,
        "verbosity": 1,
    }
    if worker_id:
        options["worker_id"] = worker_id
    call_command("db_worker", **options)


@app.command()
def scheduler(
    once: Annotated[
        bool, typer.Option("--once", help="Enqueue the slots that are due now, then exit")
    ] = False,
) -> None:
    """Enqueue the periodic jobs when they fall due, until SIGTERM or Ctrl-C.

    Each slot is enqueued once even when several schedulers run. A job's first run enqueues
    only its latest due slot, never its history.
    """
    _django()
    import signal

    from rich.markup import escape

    from patron.jobs import services
    from patron.jobs.schedule import SCHEDULE

    _require_migrated()
    identity = services.scheduler_identity()

    def report(result: services.SchedulerPass) -> None:
        for slot in result.enqueued:
            console.print(
                f"enqueued {slot.job} for {_local(slot.slot_time)} "
                f"(task {slot.task_result_id or '—'})"
            )
        for name, error in result.failed.items():
            console.print(f"[red]{name} could not be enqueued: {escape(error)}")

    if once:
        result = services.scheduler_pass(now=services.clock(), scheduler_id=identity)
        report(result)
        if not result.enqueued and not result.failed:
            console.print("nothing due")
        if result.failed:
            raise typer.Exit(1)
        return

    stopping: list[int] = []

    def stop(signum: int, frame: Any) -> None:
        stopping.append(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    console.print(
        f"scheduler {identity}: {len(SCHEDULE)} job(s) ({', '.join(j.name for j in SCHEDULE)}), "
        "times in the merchant's zone; SIGTERM or Ctrl-C stops"
    )
    services.scheduler_run(
        should_stop=lambda: bool(stopping), scheduler_id=identity, on_pass=report
    )
    console.print(
        f"scheduler {identity} stopped ({signal.strsignal(stopping[0]) if stopping else ''})"
    )


@jobs_app.command("list")
def jobs_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """The schedule: each job's cron, next due time, last slot and the status of its task."""
    _django()
    from patron.jobs import services
    from patron.jobs.selectors import job_statuses

    _require_migrated()
    statuses = job_statuses(now=services.clock())
    if as_json:
        print(
            json.dumps(
                [
                    {
                        "name": status.name,
                        "cron": status.cron,
                        "task": status.task,
                        "next_due": status.next_due.isoformat(),
                        "last_slot": status.last_slot.isoformat() if status.last_slot else None,
                        "last_task_result_id": status.last_task_result_id or None,
                        "last_task_status": status.last_task_status,
                    }
                    for status in statuses
                ],
                ensure_ascii=False,
            )
        )
        return
    table = Table(title="periodic jobs (merchant's time zone)", title_justify="left")
    table.add_column("job", no_wrap=True)
    for column in ("cron", "next due", "last slot", "its task"):
        table.add_column(column)
    for status in statuses:
        table.add_row(
            status.name,
            status.cron,
            _local(status.next_due),
            _local(status.last_slot),
            status.last_task_status or "—",
        )
    Console().print(table)


@jobs_app.command("run")
def jobs_run(
    name: Annotated[str, typer.Argument(help="Job name (see 'patron jobs list')")],
    as_of: Annotated[
        datetime | None,
        typer.Option(
            "--as-of",
            formats=["%Y-%m-%d"],
            help="Run the job as its slot on this date would (default: today)",
        ),
    ] = None,
    now: Annotated[
        bool, typer.Option("--now", help="Run it here and wait, instead of queueing it")
    ] = False,
) -> None:
    """Enqueue one job now, outside the schedule (or run it in this process with --now)."""
    _django()
    from django.utils import timezone

    from patron.errors import PatronError
    from patron.jobs import services
    from patron.jobs.schedule import job_get

    _require_migrated()
    try:
        job = job_get(name)
    except PatronError as exc:
        console.print(f"[red]{exc.message}")
        raise typer.Exit(2) from None
    day = as_of.date() if as_of else timezone.localdate(services.clock())
    slot_time = services.job_slot_for_date(day=day)
    if not now:
        result = services.job_enqueue(job=job, slot_time=slot_time)
        console.print(f"enqueued {job.name} {result.kwargs} as task {result.id} ({result.status})")
        print(result.id)
        return
    result = services.job_run_inline(job=job, slot_time=slot_time)
    if result.errors:
        console.print(f"[red]{job.name} {result.kwargs} failed:")
        console.print(result.errors[-1].traceback, markup=False, highlight=False)
        raise typer.Exit(1)
    console.print(f"{job.name} {result.kwargs}: {result.status}")
    print(json.dumps(result.return_value, ensure_ascii=False, default=str))


# ---------------------------------------------------------------------- risk


def _detect(as_of: datetime | None = None, *, with_model: bool = True) -> Any:
    from patron.risk.detect import detection_run

    run = detection_run(as_of=as_of, trigger="cli", with_model=with_model)
    per_1000 = 1000 / run.customers if run.customers else 0.0
    console.print(
        f"detection as of {run.as_of:%Y-%m-%d %H:%M} over [bold]{run.customers:,}[/] customers: "
        f"{run.alerts_new:,} new alerts, {run.alerts_updated:,} refreshed ({run.seconds:.1f} s)"
    )
    for code, hits in sorted(run.hits.items()):
        console.print(f"  {code:<26} {hits:>6,} customers  ({hits * per_1000:.1f} per 1,000)")
    return run


@risk_app.command("detect")
def risk_detect(
    as_of: Annotated[
        datetime | None,
        typer.Option(
            "--as-of",
            formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M"],
            help="Read only the data before this moment (default: now)",
        ),
    ] = None,
    no_model: Annotated[
        bool, typer.Option("--no-model", help="Run the rules only, not the anomaly model")
    ] = False,
) -> None:
    """Run every enabled rule and the anomaly model; raise or refresh alerts. Nobody is
    restricted or blacklisted by this: analysts decide on the alerts."""
    _django()
    from django.utils import timezone

    _migrate()
    moment = timezone.make_aware(as_of) if as_of is not None else None
    run = _detect(moment, with_model=not no_model)
    print(json.dumps({"detection_run": run.pk, "alerts_new": run.alerts_new}))


@risk_app.command("rules")
def risk_rules(as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False) -> None:
    """The detection rules as analysts have set them."""
    _django()
    from patron.risk.detect import rules_seed
    from patron.risk.models import RiskRule

    _require_migrated()
    rules_seed()
    fields = (
        "code",
        "measure",
        "window_days",
        "threshold",
        "min_volume",
        "severity",
        "action",
        "is_enabled",
        "version",
    )
    rows = list(RiskRule.objects.order_by("code").values(*fields))
    if as_json:
        print(json.dumps(rows, ensure_ascii=False))
        return
    table = Table(title="risk rules", title_justify="left")
    for name in fields:
        table.add_column(name.replace("_", " "))
    for row in rows:
        table.add_row(*(str(row[name]) for name in fields))
    Console().print(table)


@risk_app.command("backtest")
def risk_backtest(
    code: Annotated[str, typer.Argument(help="Rule code (see 'patron risk rules')")],
    threshold: Annotated[float | None, typer.Option(help="Changed threshold")] = None,
    window_days: Annotated[int | None, typer.Option(help="Changed window, days")] = None,
    min_volume: Annotated[int | None, typer.Option(help="Changed minimum volume")] = None,
    days: Annotated[int, typer.Option(help="How many days back to look")] = 90,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """What a changed rule would have flagged over the last N days, next to the rule as it is.
    Nothing is saved."""
    _django()
    from patron.errors import PatronError
    from patron.risk.detect import backtest, rules_seed

    _require_migrated()
    rules_seed()
    changes = {
        name: value
        for name, value in (
            ("threshold", threshold),
            ("window_days", window_days),
            ("min_volume", min_volume),
        )
        if value is not None
    }
    try:
        result = backtest(user=None, code=code, data=changes, days=days)
    except PatronError as exc:
        console.print(f"[red]{exc.message}")
        raise typer.Exit(2) from None
    if as_json:
        print(json.dumps(result, ensure_ascii=False, default=str))
        return
    console.print(f"rule {code}, changed {result['changed'] or 'nothing'}, last {days} days:")
    for side in ("current", "proposed"):
        figures = result[side]
        console.print(
            f"  {side:<9} {figures['flagged']:>6,} customers ({figures['per_1000']} per 1,000)"
        )
    console.print(
        f"  only current: {len(result['only_current']):,} "
        f"({result['dropped_were_dismissed']} of them dismissed by analysts, "
        f"{result['dropped_were_acted_on']} acted on); only proposed: {len(result['only_proposed']):,}"
    )


# ---------------------------------------------------------------------- insights


@insights_app.command("fill")
def insights_fill(
    today: Annotated[
        datetime | None,
        typer.Option("--today", formats=["%Y-%m-%d"], help="Fill up to this day's month"),
    ] = None,
    rebuild: Annotated[
        bool,
        typer.Option("--rebuild", help="Recompute every month (after a back-dated import)"),
    ] = False,
) -> None:
    """Compute every metric for the months not yet filled (the nightly job does this), the
    cohort retention and grade movement, and seed the default targets."""
    _django()
    from patron.insight.services import metrics_fill

    _migrate()
    with _progress() as progress:
        summary = metrics_fill(
            today=today.date() if today else None, rebuild=rebuild, progress=_Bars(progress)
        )
    written = sum(summary.months.values())
    console.print(
        f"filled {written:,} metric-months over {len(summary.months)} metrics "
        f"in {summary.seconds:.1f} s"
        + (f"; no data yet for {', '.join(summary.skipped)}" if summary.skipped else "")
    )
    print(json.dumps({"months": summary.months, "skipped": summary.skipped}))


@insights_app.command("targets")
def insights_targets(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Every target with its goal, latest value and status (achieved, on track, at risk, …)."""
    _django()
    from patron.insight.selectors import target_views

    _require_migrated()
    views = target_views()
    if as_json:
        print(
            json.dumps(
                [
                    {
                        "id": v.id,
                        "metric": v.metric,
                        "name": v.name,
                        "baseline": v.baseline,
                        "goal": v.goal,
                        "current": v.current,
                        "deadline": v.deadline.isoformat(),
                        "status": v.status,
                    }
                    for v in views
                ],
                ensure_ascii=False,
            )
        )
        return
    table = Table(title="targets", title_justify="left")
    for column in ("target", "baseline", "goal", "latest", "deadline", "status"):
        table.add_column(column)
    for v in views:
        latest = "—" if v.current is None else f"{v.current:.4g}"
        table.add_row(
            v.name, f"{v.baseline:.4g}", f"{v.goal:.4g}", latest, str(v.deadline), v.status
        )
    Console().print(table)


@insights_app.command("correlations")
def insights_correlations(
    as_of: Annotated[
        datetime | None,
        typer.Option("--as-of", formats=["%Y-%m-%d"], help="Analysis date (default: today)"),
    ] = None,
    horizon_days: Annotated[
        int,
        typer.Option("--horizon-days", min=30, max=730, help="Outcome window after the cut-off"),
    ] = 180,
) -> None:
    """Which factors move with repurchase and satisfaction (rank correlations with 95 %
    intervals, a simple model's weights); the page /insights/correlations/ shows the result."""
    _django()
    from patron.insight.correlations import correlations_run

    _migrate()
    data = correlations_run(as_of=as_of.date() if as_of else None, horizon_days=horizon_days)
    for study in data["studies"]:
        console.print(
            f"[bold]{study['outcome']}[/]: {study['positive']:,} of {study['customers']:,} customers"
            + (f", model AUC {study['model_auc']:.2f}" if study["model_auc"] else "")
        )
        for factor in study["factors"][:8]:
            console.print(
                f"  {factor['feature']:<24} ρ {factor['rho']:+.2f}  "
                f"[{factor['low']:+.2f}, {factor['high']:+.2f}]  n={factor['customers']:,}"
            )
    print(json.dumps({s["outcome"]: len(s["factors"]) for s in data["studies"]}))


@certification_app.command("reverify")
def certification_reverify(
    as_of: Annotated[
        datetime | None,
        typer.Option(
            "--as-of",
            formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M"],
            help="Act as if it were this moment (default: now)",
        ),
    ] = None,
) -> None:
    """Remind customers whose certification expires soon (once); at expiry, downgrade to the
    level's fallback when the customer still meets it, else end the certification (the daily
    job does this)."""
    _django()
    from django.utils import timezone

    from patron.certification.services import certifications_reverify

    _migrate()
    result = certifications_reverify(now=timezone.make_aware(as_of) if as_of else None)
    console.print(
        f"reminded {result.reminded}, expired {result.expired}, downgraded {result.downgraded}"
    )
    print(
        json.dumps(
            {
                "reminded": result.reminded,
                "expired": result.expired,
                "downgraded": result.downgraded,
            }
        )
    )


@certification_app.command("levels")
def certification_levels(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """The certification levels and their criteria, as staff have set them."""
    _django()
    from dataclasses import asdict

    from patron.certification.selectors import level_list

    _require_migrated()
    levels = level_list()
    if as_json:
        print(json.dumps([asdict(level) for level in levels], ensure_ascii=False))
        return
    table = Table(title="certification levels", title_justify="left")
    columns = ("code", "name", "kind", "credit ≥", "orders ≥", "documents", "valid days")
    for column in (*columns, "falls back to"):
        table.add_column(column)
    for level in levels:
        table.add_row(
            level.code,
            f"{level.name} {level.name_en}",
            level.applicant_kind,
            str(level.min_credit_score or "–"),
            str(level.min_paid_orders),
            ", ".join(level.required_documents),
            str(level.validity_days),
            level.fallback or "–",
        )
    Console().print(table)


@certification_app.command("link")
def certification_link(customer_id: Annotated[int, typer.Argument(help="Customer id")]) -> None:
    """Print the customer's signed link to the public certification page (to send to them)."""
    _django()
    from patron.certification.services import applicant_link_issue
    from patron.certification.tokens import link_days
    from patron.errors import NotFound

    _require_migrated()
    try:
        url = applicant_link_issue(user=None, customer_id=customer_id)
    except NotFound as exc:
        console.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(1) from exc
    console.print(f"valid for {link_days()} days")
    print(url)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
