"""Grade history as a property: whatever sequence of gradings happens, every customer's periods
are contiguous, never overlap, and the open one is the last grade given."""

from __future__ import annotations

import itertools
import json
from datetime import date, timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from patron.conftest import make_customer
from patron.scoring.models import GradeHistory, ScoreRun
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
