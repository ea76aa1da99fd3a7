"""``patron knowledge``: load the shop's FAQ, measure retrieval, try a question.

Mounted by ``patron.cli`` as ``app.add_typer(knowledge_app, name="knowledge")``. Django is set
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

knowledge_app = typer.Typer(
    help="Knowledge base: the FAQ, suggested answers and automatic replies.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
console = Console(stderr=True)


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


@knowledge_app.command("seed")
def seed() -> None:
    """Load the shop's FAQ articles, published (idempotent: existing keys are left alone)."""
    django_setup()
    from patron.knowledge.services import knowledge_seed

    require_migrated()
    result = knowledge_seed()
    console.print(f"{result.created} FAQ articles added, {result.existing} there already")
    print(json.dumps(result.as_dict()))


@knowledge_app.command("evaluate")
def evaluate(
    as_json: Annotated[
        bool, typer.Option("--json", help="The whole report as JSON on stdout")
    ] = False,
    threshold: Annotated[
        float | None,
        typer.Option(help="Measure at this threshold instead of the one in force", min=0.0),
    ] = None,
) -> None:
    """Measure retrieval on the shipped labelled questions: hit@1, hit@3, MRR, and automatic
    replies at the threshold (share answered, how often right, unanswerable ones answered)."""
    django_setup()
    from patron.knowledge.selectors import faq_evaluation

    require_migrated()
    report = faq_evaluation(threshold=threshold)
    summary: dict[str, Any] = {
        name: getattr(report, name)
        for name in (
            "pairs",
            "answerable",
            "unanswerable",
            "hit_at_1",
            "hit_at_3",
            "mrr",
            "threshold",
            "auto_answered",
            "auto_share",
            "auto_precision",
            "unanswerable_auto_rate",
            "suggested_threshold",
        )
    }
    if report.unknown_labels:
        console.print(
            f"[yellow]{len(report.unknown_labels)} labelled articles are not published here "
            "(their questions count as unanswerable): run 'patron knowledge seed'"
        )
    table = Table(title="FAQ retrieval on the labelled questions", title_justify="left")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for label, value in (
        (
            "questions (answerable / not)",
            f"{report.pairs} ({report.answerable} / {report.unanswerable})",
        ),
        ("hit@1", _percent(report.hit_at_1)),
        ("hit@3", _percent(report.hit_at_3)),
        ("MRR", f"{report.mrr:.3f}"),
        ("threshold", f"{report.threshold:g}"),
        ("answered automatically", f"{_percent(report.auto_share)} ({report.auto_answered})"),
        ("automatic answers right", _percent(report.auto_precision)),
        ("unanswerable answered anyway", _percent(report.unanswerable_auto_rate)),
        ("suggested threshold (rules.threshold_suggest)", str(report.suggested_threshold)),
    ):
        table.add_row(label, value)
    console.print(table)
    print(json.dumps(report.as_dict() if as_json else summary, ensure_ascii=False))


@knowledge_app.command("suggest")
def suggest(
    text: Annotated[str, typer.Argument(help="A customer's question, as written")],
    k: Annotated[int, typer.Option(help="How many articles", min=1, max=10)] = 3,
) -> None:
    """The published articles that best answer TEXT, with their confidence, and whether the
    best one would be sent automatically."""
    django_setup()
    from patron.knowledge.selectors import auto_reply_threshold
    from patron.knowledge.selectors import suggest as find
    from patron.knowledge.services import decide_auto_reply

    require_migrated()
    found = find(text, k=k)
    chosen = decide_auto_reply(text)
    table = Table(
        title=f"suggestions (automatic reply at ≥ {auto_reply_threshold():g})", title_justify="left"
    )
    for column in ("key", "question", "score", "confidence"):
        table.add_column(column, justify="right" if column in ("score", "confidence") else "left")
    for s in found:
        table.add_row(s.key, s.question, f"{s.score:.2f}", f"{s.confidence:.2f}")
    console.print(table if found else "no published article matches")
    console.print(
        f"automatic reply: {chosen.key}" if chosen else "automatic reply: none (an agent answers)"
    )
    print(
        json.dumps(
            {
                "suggestions": [
                    {
                        "article_id": s.article_id,
                        "key": s.key,
                        "score": s.score,
                        "confidence": s.confidence,
                    }
                    for s in found
                ],
                "auto_reply": chosen.key if chosen else None,
            },
            ensure_ascii=False,
        )
    )
