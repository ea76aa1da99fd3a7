"""``patron score``: run the intelligence pipeline as of a date and write every customer's
scores, grades and reasons.

Grades are official decisions (R-B4): they change at a re-grade (the quarterly job, ``patron
score --regrade``, or applying a new grade policy). A nightly run scores everyone and gives a
first grade to customers who have none yet; for the others it reports how many *would* move,
so the next re-grade surprises nobody. The database write is one transaction: the previous
scores stay visible until the new ones replace them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date, datetime
from datetime import time as clock
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from patron.errors import ValidationFailed
from patron.intelligence import grading
from patron.intelligence import reason_columns as rc
from patron.intelligence.explain import N_, Reason
from patron.intelligence.pipeline import Config, run, timed
from patron.intelligence.purchases import NotEnoughData
from patron.scoring.models import ScoreRun
from patron.scoring.policies import policy_active, policy_parse
from patron.scoring.sources import load_sources
from patron.scoring.writeback import (
    grade_history_apply,
    open_grades,
    reasons_discard,
    reasons_prune,
    reasons_write,
    scores_replace,
    scores_staged,
    snapshot_write,
)

Progress = Callable[[str, int, int | None], None]
STAGES = (
    "extract",
    "features",
    "purchase_models",
    "churn",
    "credit",  # learnt beside the purchase models and churn
    "clusters",
    "value",
    "grades",
)


def cutoff_of(as_of: date) -> datetime:
    """Midnight at the start of ``as_of`` in the merchant's time zone."""
    return datetime.combine(as_of, clock.min, tzinfo=ZoneInfo(settings.TIME_ZONE))


def pipeline_config() -> Config:
    return Config(time_zone=settings.TIME_ZONE)


def score_customers(
    *, as_of: date, regrade: bool = False, progress: Progress | None = None
) -> ScoreRun:
    """Score every customer known before ``as_of``; with ``regrade`` re-decide every grade."""
    policy_row = policy_active()
    policy = policy_parse(policy_row.rules)
    run_row = ScoreRun.objects.create(
        as_of=as_of, started_at=timezone.now(), is_regrade=regrade, policy=policy_row
    )
    seconds: dict[str, float] = {}
    committed = False
    reasons_job: Future[tuple[str, float]] | None = None

    def report(name: str) -> None:
        if progress:
            progress(name, STAGES.index(name) + 1 if name in STAGES else 0, len(STAGES))

    try:
        started = time.perf_counter()
        sources = load_sources()
        seconds["extract"] = round(time.perf_counter() - started, 3)
        report("extract")
        current = open_grades()
        previous = {customer: grade for customer, (grade, _) in current.items()}
        try:
            result = run(
                sources,
                cutoff_of(as_of),
                policy=policy,
                previous_grades=previous,
                config=pipeline_config(),
                progress=report,
            )
        except NotEnoughData as error:
            raise ValidationFailed(str(error)) from error
        seconds.update(result.seconds)

        started = time.perf_counter()
        scores, to_record, reasons, summary = _official_grades(
            result.scores, current, regrade=regrade
        )
        seconds["grades"] = round(seconds.get("grades", 0.0) + time.perf_counter() - started, 3)
        started = time.perf_counter()
        # The reasons go to the lake on a second thread (Arrow's Parquet writer releases the
        # GIL) while the database takes the scores; on a large SQLite database a child process
        # stages the score rows. Leaving the executor waits for the reasons, even on an error.
        with ThreadPoolExecutor(1) as beside, scores_staged(run_row, scores) as rows:
            reasons_job = beside.submit(
                timed,
                reasons_write,
                run_row,
                scores,
                explainers=result.explainers,
                inputs=result.explainer_inputs,
            )
            with transaction.atomic():
                scores_replace(rows)
                history = grade_history_apply(
                    run=run_row,
                    as_of=as_of,
                    grades=to_record,
                    reasons=reasons,
                    policy_version=policy_row.version,
                )
                # Before the commit: once the score rows point at this run, its reasons are there.
                run_row.reasons_folder, reasons_seconds = reasons_job.result()
                seconds["reasons"] = round(reasons_seconds, 3)
                ScoreRun.objects.filter(pk=run_row.pk).update(reasons_folder=run_row.reasons_folder)
            committed = True
        seconds["write"] = round(time.perf_counter() - started, 3)
        started = time.perf_counter()
        snapshot_write(run_row, scores)
        reasons_prune()
        seconds["snapshot"] = round(time.perf_counter() - started, 3)
    except BaseException:
        if not committed:  # no score row points at this run: its reasons are nobody's
            reasons_discard(run_row.reasons_folder or _written(reasons_job))
            run_row.reasons_folder = ""
        ScoreRun.objects.filter(pk=run_row.pk).update(
            status=ScoreRun.Status.FAILED,
            finished_at=timezone.now(),
            seconds=seconds,
            reasons_folder=run_row.reasons_folder,
        )
        raise
    run_row.status = ScoreRun.Status.COMPLETED
    run_row.finished_at = timezone.now()
    run_row.customers = scores.num_rows
    run_row.parameters = result.parameters
    run_row.seconds = seconds
    run_row.summary = {**summary, "history": history, "clusters": result.clusters}
    run_row.save()
    return run_row


def _written(job: Future[tuple[str, float]] | None) -> str:
    """The reasons folder a finished ``reasons_write`` job made ("" if none)."""
    if job is None or job.cancelled() or job.exception() is not None:
        return ""
    return job.result()[0]


def _official_grades(
    scores: pa.Table, current: dict[int, tuple[str, date]], *, regrade: bool
) -> tuple[pa.Table, dict[int, str], dict[int, str], dict[str, Any]]:
    """Decide which grades become official and say so in the grade reasons.

    Returns the score table with the official grade, the grades to record in the history,
    their reasons (JSON text), and a summary (grade counts, moves made or pending).
    """
    ids = scores.column("customer_id").to_pylist()
    indicated = scores.column("grade").to_pylist()
    previous = {customer: grade for customer, (grade, _) in current.items()}
    moves = grading.moves(previous, dict(zip(ids, indicated, strict=True)))
    official: list[str] = []
    recorded: list[int] = []  # rows whose grade is recorded in the history
    holds: dict[int, tuple[tuple[str, date], str]] = {}  # rows whose grade is held
    for i, customer in enumerate(ids):
        held = current.get(customer)
        if regrade or held is None:
            official.append(indicated[i])
            recorded.append(i)
            continue
        official.append(held[0])
        if held[0] != indicated[i]:
            holds[i] = (held, indicated[i])
    # Only the rows concerned go through Python: a nightly run records and holds few.
    to_record = {ids[i]: indicated[i] for i in recorded}
    texts = scores.column("grade_reasons").take(pa.array(recorded, pa.int64())).to_pylist()
    reasons = {ids[i]: text for i, text in zip(recorded, texts, strict=True)}
    table = scores.set_column(
        scores.column_names.index("grade"), "grade", pa.array(official, pa.string())
    )
    if holds:
        table = table.set_column(
            table.column_names.index("reasons"), "reasons", _held(table.column("reasons"), holds)
        )
    counts = {
        g: int(n) for g, n in zip(*np.unique(np.asarray(official), return_counts=True), strict=True)
    }
    summary = {
        "grade_counts": counts,
        "moves": moves if regrade else None,
        "pending_moves": None if regrade else moves,
        "regrade": regrade,
    }
    return table, to_record, reasons, summary


def _held(
    column: pa.ChunkedArray, holds: dict[int, tuple[tuple[str, date], str]]
) -> pa.StructArray:
    """The reasons ``column`` with each held grade explained first (rows of ``holds``)."""
    stored = column.combine_chunks()
    fields = {f.name: stored.field(f.name) for f in stored.type}
    rows = sorted(holds)
    before = fields["grade"].take(pa.array(rows, pa.int64())).to_pylist()
    after = [_with_hold(text, *holds[row]) for row, text in zip(rows, before, strict=True)]
    mask = np.zeros(len(stored), dtype=bool)
    mask[rows] = True
    fields["grade"] = pc.replace_with_mask(
        fields["grade"], pa.array(mask), pa.array(after, pa.string())
    )
    return rc.by_score(fields)


def _with_hold(reasons: str | None, held: tuple[str, date], indicated: str) -> str:
    """The customer's grade reasons (a JSON list's text) with the held grade explained
    first."""
    hold = Reason(
        N_(
            "grade held since {since} (grades change at the quarterly re-grade); "
            "by today's scores it would be {grade}"
        ),
        {"since": held[1].isoformat(), "grade": grading.GRADE_WORDS[indicated]},
    ).to_json()
    return json.dumps(
        [hold, *json.loads(reasons or "[]")], ensure_ascii=False, separators=(",", ":")
    )


def grade_counts_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{grade} {counts.get(grade, 0):,}" for grade in grading.GRADES)
