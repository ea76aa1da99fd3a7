"""A run's reasons live in a folder of the lake: written before the score rows point at the
run, read back one customer at a time (the credit and churn reasons given then by the run's
models), pruned with old runs, moved there on upgrade."""

from __future__ import annotations

import json
import shutil
import time
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from django.utils import timezone

from patron.conftest import make_customer, make_user
from patron.scoring import services
from patron.scoring.models import CustomerScore, ScoreRun
from patron.scoring.selectors import score_of_customer, stored_reasons
from patron.scoring.writeback import (
    REASONS_ROW_GROUP,
    reasons_dir,
    reasons_of,
    reasons_prune,
    reasons_write,
)

CHINESE = {"grade": [{"key": "grade.top", "params": {"label": {"zh-hans": "12 个月价值"}}}]}


def reasons_table(ids: list[int], make: Any = lambda i: {"value": [{"i": i}]}) -> pa.Table:
    texts = [json.dumps(make(i), ensure_ascii=False) for i in ids]
    return pa.table({"customer_id": pa.array(ids, pa.int64()), "reasons": texts})


def new_run(**fields: Any) -> ScoreRun:
    return ScoreRun.objects.create(as_of=date(2026, 11, 1), started_at=timezone.now(), **fields)


@pytest.mark.django_db
def test_each_customer_reads_back_their_own_reasons(lake: Path) -> None:
    # given: more customers than one row group, written out of order
    ids = list(range(3 * REASONS_ROW_GROUP, 0, -1))
    run = new_run()
    name = reasons_write(run, reasons_table(ids))
    # when / then
    for customer in (1, REASONS_ROW_GROUP, REASONS_ROW_GROUP + 1, 3 * REASONS_ROW_GROUP):
        assert reasons_of(name, customer, lake=lake) == {"value": [{"i": customer}]}
    assert reasons_of(name, 10**9) == {}  # not scored by that run
    assert reasons_of("", 1) is None
    assert reasons_of("run-1-gone", 1) is None


@pytest.mark.django_db
def test_chinese_reasons_are_stored_as_written_and_names_never_repeat(lake: Path) -> None:
    run = new_run()
    first = reasons_write(run, reasons_table([7], lambda i: CHINESE))
    second = reasons_write(run, reasons_table([7], lambda i: CHINESE))
    assert first != second  # a random part: two databases sharing a lake never mix
    assert first.startswith(f"run-{run.pk}-")
    assert reasons_of(first, 7) == CHINESE
    assert sorted(p.name for p in reasons_dir().iterdir()) == sorted([first, second])
    assert reasons_of("", 7) is None


@pytest.mark.django_db
def test_prune_keeps_the_newest_runs_and_the_one_the_scores_point_at(lake: Path) -> None:
    # given: five runs with reasons folders; the score rows point at the oldest
    customer = make_customer(name="李雷")
    runs = [new_run() for _ in range(5)]
    for run in runs:
        run.reasons_folder = reasons_write(run, reasons_table([customer.pk]))
        run.save(update_fields=["reasons_folder"])
    CustomerScore.objects.create(customer=customer, run=runs[0], as_of=runs[0].as_of)
    names = {run.pk: run.reasons_folder for run in runs}
    # when
    deleted = reasons_prune(keep=2)
    # then: runs 2 and 3 (of 1…5) lose their files, and say so
    assert deleted == 2
    kept = {runs[0].pk, runs[3].pk, runs[4].pk}
    for run in runs:
        run.refresh_from_db()
        assert (reasons_dir() / names[run.pk]).exists() == (run.pk in kept)
        assert bool(run.reasons_folder) == (run.pk in kept)
    assert reasons_prune(keep=2) == 0


@pytest.mark.django_db
def test_the_page_and_the_api_say_when_the_reasons_are_no_longer_kept(lake: Path) -> None:
    # given: a score row whose run's reasons folder has gone
    customer = make_customer(name="韩梅梅")
    run = new_run()
    run.reasons_folder = reasons_write(run, reasons_table([customer.pk], lambda i: CHINESE))
    run.save(update_fields=["reasons_folder"])
    score = CustomerScore.objects.create(customer=customer, run=run, as_of=run.as_of)
    assert stored_reasons(score) == CHINESE
    shutil.rmtree(reasons_dir() / run.reasons_folder)
    client = Client(headers={"accept-language": "en"})
    client.force_login(make_user("service_agent"))
    # when
    page = client.get(f"/customers/{customer.pk}/").content.decode()
    body = client.get(f"/api/customers/{customer.pk}").json()["score"]
    # then
    assert 'data-testid="reasons-missing"' in page
    assert (body["reasons"], body["reasons_available"]) == ({}, False)
    view = score_of_customer(customer_id=customer.pk)
    assert view is not None and not view.reasons_available


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("failing", ["grade_history_apply", "reasons_write", "slow_reasons"])
def test_a_run_that_fails_before_its_scores_are_written_leaves_no_reasons_folder(
    lake: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    # given: the demo-sized CDNOW sample, and a database write or the reasons' write (on
    # its own thread) that fails; "slow_reasons": the database fails while the reasons are
    # still being written, and they finish after it
    from patron.ingest.adapters.cdnow import cdnow_parts
    from patron.ingest.services import import_parts
    from patron.ingest.tests.conftest import shared_data

    path = shared_data("cdnow", "CDNOW_sample.txt")
    import_parts(label="cdnow", source="cdnow", path=str(path), parts=cdnow_parts(path))

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("disk full")

    if failing == "slow_reasons":
        written = services.reasons_write

        def slow(*args: Any, **kwargs: Any) -> str:
            time.sleep(1.0)
            return written(*args, **kwargs)

        monkeypatch.setattr(services, "reasons_write", slow)
    monkeypatch.setattr(
        services, "reasons_write" if failing == "reasons_write" else "grade_history_apply", broken
    )
    # when
    with pytest.raises(RuntimeError, match="disk full"):
        services.score_customers(as_of=date(1997, 10, 1))
    # then: nothing points at a file, and no file is left behind
    run = ScoreRun.objects.get()
    assert (run.status, run.reasons_folder) == ("failed", "")
    assert not CustomerScore.objects.exists()
    assert not reasons_dir().exists() or not any(reasons_dir().iterdir())


@pytest.mark.django_db(transaction=True)
def test_upgrading_moves_the_stored_reasons_into_the_lake(lake: Path) -> None:
    # given: the database as it was before the reasons left the score rows, with one row
    executor = MigrationExecutor(connection)
    before = [("scoring", "0004_reasons_as_text")]
    latest = executor.loader.graph.leaf_nodes()
    executor.migrate(before)
    try:
        old = MigrationExecutor(connection).loader.project_state(before).apps
        customer = make_customer(name="张伟")
        run = old.get_model("scoring", "ScoreRun").objects.create(
            as_of=date(2026, 11, 1), started_at=timezone.now()
        )
        old.get_model("scoring", "CustomerScore").objects.create(
            customer_id=customer.pk, run_id=run.pk, as_of=run.as_of, reasons=CHINESE
        )
        # when
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(latest)
    finally:
        MigrationExecutor(connection).migrate(latest)
    # then
    score = CustomerScore.objects.get(customer=customer)
    assert stored_reasons(score) == CHINESE
    assert ScoreRun.objects.get(pk=run.pk).reasons_folder.startswith(f"run-{run.pk}-")


@pytest.mark.django_db(transaction=True)
def test_credit_reasons_are_given_by_the_runs_model_when_read(lake: Path) -> None:
    # given: CDNOW scored (a credit model, reasons in the lake)
    from patron.ingest.adapters.cdnow import cdnow_parts
    from patron.ingest.services import import_parts
    from patron.ingest.tests.conftest import shared_data
    from patron.intelligence.explain import render

    path = shared_data("cdnow", "CDNOW_sample.txt")
    import_parts(label="cdnow", source="cdnow", path=str(path), parts=cdnow_parts(path))
    run = services.score_customers(as_of=date(1997, 10, 1))
    stored = pq.read_table(reasons_dir() / run.reasons_folder / "reasons.parquet")
    # no credit reasons are stored: the model and its inputs are kept instead
    assert "credit" not in {field.name for field in stored.schema.field("reasons").type}
    assert "grade" in {field.name for field in stored.schema.field("reasons").type}
    assert {"chargebacks", "recency_days"} <= set(stored.column_names)
    # when: a few customers are read
    for score in CustomerScore.objects.order_by("customer_id")[:20]:
        reasons = stored_reasons(score)
        # then: each has credit reasons in plain words, from the run's own model
        assert reasons is not None and reasons["credit"], score.customer_id
        for reason in reasons["credit"]:
            assert "{" not in render(reason) and "{" not in render(reason, language="zh-hans")


class _Unrunnable:
    """A model this version cannot run (as if a later release renamed its internals)."""

    feature_names_ = ("orders",)

    def contributions(self, rows: pa.Table) -> Any:
        raise AttributeError("'CreditModel' object has no attribute '_booster'")


@pytest.mark.django_db
@pytest.mark.parametrize("broken", ["unreadable file", "model that fails"])
def test_models_that_cannot_be_used_leave_the_other_reasons_shown(
    lake: Path, broken: str, caplog: pytest.LogCaptureFixture
) -> None:
    # given: a run whose credit model cannot give its reasons
    from patron.intelligence.pipeline import Explainer

    run = new_run()
    table = reasons_table([5], lambda i: CHINESE).append_column("orders", pa.array([3.0]))
    explainer = Explainer(_Unrunnable(), "credit.feature", -1, 5.0, {"orders": 2.0})
    name = reasons_write(
        run, table, explainers={"credit": explainer}, inputs=table.select(["customer_id", "orders"])
    )
    if broken == "unreadable file":
        (reasons_dir() / name / "explainers.pickle").write_bytes(b"not a pickle")
    # when
    reasons = reasons_of(name, 5)
    # then: the reasons kept as JSON are shown, and the log says what is missing
    assert reasons == CHINESE
    assert "credit" in caplog.text or "could not be read" in caplog.text
