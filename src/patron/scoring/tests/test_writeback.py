"""Grade history as a property: whatever sequence of gradings happens, every customer's periods
are contiguous, never overlap, and the open one is the last grade given."""

from __future__ import annotations

import io
import itertools
import json
import sys
import tempfile
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest
from django.db import connection, transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from patron.conftest import make_customer
from patron.customer.models import Customer
from patron.scoring import sqlite_writer, writeback
from patron.scoring.models import CustomerScore, GradeHistory, ScoreRun
from patron.scoring.writeback import grade_history_apply

GRADES = st.sampled_from(["core", "potential", "ordinary"])
STEP = st.tuples(
    st.integers(min_value=0, max_value=120),  # days after the previous grading (0: same day)
    st.dictionaries(st.integers(min_value=0, max_value=3), GRADES, max_size=4),
)


@pytest.mark.django_db
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(steps=st.lists(STEP, min_size=1, max_size=8))
def test_grade_history_never_has_gaps_or_overlaps(steps: list[tuple[int, dict[int, str]]]) -> None:
    with transaction.atomic():
        # given
        customers = [make_customer(external_id=f"G{i}", name=f"客户{i}").pk for i in range(4)]
        run = ScoreRun.objects.create(as_of=date(2026, 1, 1), started_at=timezone.now())
        day = date(2026, 1, 1)
        last: dict[int, str] = {}
        # when
        for gap, grades in steps:
            day += timedelta(days=gap)
            chosen = {customers[i]: grade for i, grade in grades.items()}
            grade_history_apply(run=run, as_of=day, grades=chosen, reasons={}, policy_version=1)
            last.update(chosen)
        # then
        for customer in customers:
            periods = list(GradeHistory.objects.filter(customer_id=customer).order_by("valid_from"))
            assert bool(periods) == (customer in last)
            if not periods:
                continue
            for earlier, later in itertools.pairwise(periods):
                assert earlier.valid_to == later.valid_from
                assert earlier.valid_from < earlier.valid_to
            assert periods[-1].valid_to is None
            assert periods[-1].grade == last[customer]
        transaction.set_rollback(True)


@pytest.mark.django_db
def test_reasons_are_kept_as_text_and_read_back_as_json() -> None:
    # given: reasons with Chinese text, written through the ORM
    run = ScoreRun.objects.create(as_of=date(2026, 1, 1), started_at=timezone.now())
    reasons = [{"key": "grade.top", "params": {"label": {"zh-hans": "12 个月价值"}, "share": 8}}]
    row = GradeHistory.objects.create(
        customer=make_customer(),
        grade="core",
        valid_from=date(2026, 1, 1),
        run=run,
        policy_version=1,
        reasons=reasons,
    )
    # then: the column is text on every database (never jsonb: see JSONTextField) ...
    with connection.cursor() as cursor:
        description = connection.introspection.get_table_description(
            cursor, GradeHistory._meta.db_table
        )
        cursor.execute(f"SELECT reasons FROM {GradeHistory._meta.db_table} WHERE id = %s", [row.pk])
        stored = cursor.fetchone()[0]
    kind = {column.name: column.type_code for column in description}["reasons"]
    if connection.vendor == "postgresql":
        assert kind == 25  # text's type oid; jsonb is 3802
    assert json.loads(stored) == reasons
    assert "12 个月价值" in stored  # written as it reads, not \u-escaped
    # ... and reads back as the same JSON
    assert GradeHistory.objects.get(pk=row.pk).reasons == reasons


# --------------------------------------------------------------------------------------
# Score rows staged in a scratch file (large SQLite write-backs)
# --------------------------------------------------------------------------------------


def _score_table(customers: list[int], credit: int = 600) -> pa.Table:
    n = len(customers)
    return pa.table(
        {
            "customer_id": pa.array(customers, pa.int64()),
            "purchase_days": pa.array(range(n), pa.int64()),
            "days_since_last_purchase": pa.array([None, *range(1, n)], pa.int64()),
            "p_alive": pa.array([0.25, None, *[0.5] * (n - 2)], pa.float64()),
            "expected_orders_90d": pa.array([1.0 / 3] * n, pa.float64()),
            "expected_order_value": pa.array([123.456, None, *[7.0] * (n - 2)], pa.float64()),
            "clv_12m": pa.array([1_000.005] * n, pa.float64()),
            "currency": pa.array(["CNY"] * n),
            "rfm_r": pa.array([None, *[5] * (n - 1)], pa.int64()),
            "rfm_f": pa.array([3] * n, pa.int64()),
            "rfm_m": pa.array([4] * n, pa.int64()),
            "rfm_segment": pa.array(["champions", None, *["at_risk"] * (n - 2)]),
            "credit_score": pa.array([credit] * n, pa.int64()),
            "credit_model": pa.array(["lightgbm"] * n),
            "churn_probability": pa.array([None, *[0.125] * (n - 1)], pa.float64()),
            "churn_model": pa.array([None, *["bgnbd"] * (n - 1)]),
            "cluster": pa.array([0, 1, *[2] * (n - 2)], pa.int64()),
            "cluster_name": pa.array(["高价值 high value", *["其他"] * (n - 1)]),
            "potential_value": pa.array([55.5] * n, pa.float64()),
            "word_of_mouth": pa.array([0.0] * n, pa.float64()),
            "certification_rank": pa.array([0] * n, pa.int64()),
            "grade": pa.array(["core", "potential", *["ordinary"] * (n - 2)]),
            "grade_composite": pa.array([0.9, 0.5, *[0.1] * (n - 2)], pa.float64()),
        }
    )


def _stored() -> list[dict[str, object]]:
    return [dict(row) for row in CustomerScore.objects.order_by("customer_id").values()]


def _customers_and_run(prefix: str, n: int) -> tuple[list[int], ScoreRun]:
    customers = [make_customer(external_id=f"{prefix}{i}").pk for i in range(n)]
    return customers, ScoreRun.objects.create(as_of=date(2026, 3, 1), started_at=timezone.now())


def _attached() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA database_list")
        return [row[1] for row in cursor.fetchall()]


@pytest.mark.django_db(transaction=True)
def test_staged_score_rows_are_stored_exactly_as_bound_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if connection.vendor != "sqlite":
        pytest.skip("only SQLite stages score rows")
    # given: the same score table, written once bound from Python and once staged
    customers, run = _customers_and_run("S", 4)
    table = _score_table(customers)
    with writeback.scores_staged(run, table) as rows, transaction.atomic():
        assert not rows.staged
        writeback.scores_replace(rows)
    bound = _stored()
    # when
    monkeypatch.setattr(writeback, "STAGE_MIN_ROWS", 1)
    with writeback.scores_staged(run, table) as rows:
        assert rows.staged
        folder = rows.folder
        with transaction.atomic():
            assert writeback.scores_replace(rows) == 4
    # then: the same values, types included (Decimal, date, None), and nothing left behind
    staged = _stored()
    for row in bound + staged:
        row.pop("id")
    assert staged == bound
    assert staged[0]["expected_order_value"] == Decimal("123.46")
    assert staged[0]["as_of"] == date(2026, 3, 1)
    assert staged[1]["rfm_segment"] == ""
    assert staged[0]["cluster_name"] == "高价值 high value"
    assert folder is not None and not folder.exists()
    assert writeback._STAGE not in _attached()


@pytest.mark.django_db(transaction=True)
def test_a_failed_write_back_keeps_the_old_scores_and_leaves_nothing_behind(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if connection.vendor != "sqlite":
        pytest.skip("only SQLite stages score rows")
    # given: scores in place
    customers, run = _customers_and_run("F", 3)
    with (
        writeback.scores_staged(run, _score_table(customers, credit=500)) as rows,
        transaction.atomic(),
    ):
        writeback.scores_replace(rows)
    monkeypatch.setattr(writeback, "STAGE_MIN_ROWS", 1)
    # when: the transaction fails after the staged rows went in
    with (
        pytest.raises(RuntimeError, match="later step"),
        writeback.scores_staged(run, _score_table(customers, credit=900)) as rows,
    ):
        folder = rows.folder
        with transaction.atomic():
            writeback.scores_replace(rows)
            raise RuntimeError("a later step failed")
    # then
    assert {row["credit_score"] for row in _stored()} == {500}
    assert folder is not None and not folder.exists()
    assert writeback._STAGE not in _attached()


@pytest.mark.django_db(transaction=True)
def test_a_failing_staging_child_says_why_and_writes_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if connection.vendor != "sqlite":
        pytest.skip("only SQLite stages score rows")
    customers, run = _customers_and_run("C", 3)
    monkeypatch.setattr(writeback, "STAGE_MIN_ROWS", 1)
    monkeypatch.setattr(writeback, "_WRITER", "patron.scoring.no_such_writer")
    with (
        pytest.raises(RuntimeError, match="no_such_writer"),
        writeback.scores_staged(run, _score_table(customers)) as rows,
        transaction.atomic(),
    ):
        writeback.scores_replace(rows)
    assert _stored() == []


@pytest.mark.django_db
def test_score_rows_are_not_staged_inside_an_open_transaction(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a scratch file attached inside a transaction could not be detached before it ends
    customers, run = _customers_and_run("T", 3)
    monkeypatch.setattr(writeback, "STAGE_MIN_ROWS", 1)
    with writeback.scores_staged(run, _score_table(customers)) as rows:
        assert not rows.staged
        writeback.scores_replace(rows)
    assert [row["customer_id"] for row in _stored()] == customers


def test_the_staging_writer_refuses_a_file_that_exists(tmp_path: Path) -> None:
    path = tmp_path / "scores.sqlite3"
    path.write_bytes(b"")
    with pytest.raises(FileExistsError):
        sqlite_writer.write(str(path), "scores", io.BytesIO())


@pytest.mark.django_db(transaction=True)
def test_a_staging_child_that_cannot_start_leaves_no_scratch_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    if connection.vendor != "sqlite":
        pytest.skip("only SQLite stages score rows")
    customers, run = _customers_and_run("N", 3)
    monkeypatch.setattr(writeback, "STAGE_MIN_ROWS", 1)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-such-python"))
    with (
        pytest.raises(FileNotFoundError),
        writeback.scores_staged(run, _score_table(customers)),
    ):
        pass
    assert list(tmp_path.iterdir()) == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("staged", [False, True])
def test_rows_of_customers_deleted_during_the_run_are_not_kept(
    monkeypatch: pytest.MonkeyPatch, staged: bool
) -> None:
    if staged and connection.vendor != "sqlite":
        pytest.skip("only SQLite stages score rows")
    # given: a run scored four customers, and one of them was deleted since the extract
    customers, run = _customers_and_run("D", 4)
    table = _score_table(customers)
    Customer.objects.filter(pk=customers[2]).delete()
    if staged:
        monkeypatch.setattr(writeback, "STAGE_MIN_ROWS", 1)
    # when
    with writeback.scores_staged(run, table) as rows, transaction.atomic():
        written = writeback.scores_replace(rows)
    # then: the table has no foreign-key constraint, yet no row is left without its customer
    kept = list(CustomerScore.objects.order_by("customer_id").values_list("customer_id", flat=True))
    assert written == 3
    assert kept == [customers[0], customers[1], customers[3]]


@pytest.mark.django_db
def test_deleting_a_customer_or_a_run_deletes_its_score_rows() -> None:
    # given
    customers, run = _customers_and_run("C", 3)
    with writeback.scores_staged(run, _score_table(customers)) as rows, transaction.atomic():
        writeback.scores_replace(rows)
    # when / then: Django cascades without the database's constraints
    Customer.objects.get(pk=customers[0]).delete()
    assert CustomerScore.objects.count() == 2
    run.delete()
    assert not CustomerScore.objects.exists()
