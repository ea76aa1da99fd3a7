"""The scoring tasks (patron.scoring.tasks): date in, scoring pipeline called, summary out.

The pipeline itself is replaced by a recorder: these tests are about the job, not the scores.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from django.tasks import TaskResultStatus

from patron.scoring.tasks import QUEUE, regrade_quarterly, score_nightly


def test_score_nightly_scores_as_of_the_given_date(scoring_calls: list[dict[str, Any]]) -> None:
    # when
    summary = score_nightly.call(as_of="2026-11-20")
    # then
    assert scoring_calls == [{"as_of": date(2026, 11, 20)}]
    assert summary == {
        "score_run": 41,
        "as_of": "2026-11-20",
        "status": "completed",
        "customers": 1200,
    }


def test_regrade_quarterly_scores_and_regrades(scoring_calls: list[dict[str, Any]]) -> None:
    # when
    summary = regrade_quarterly.call(as_of="2026-10-01")
    # then
    assert scoring_calls == [{"as_of": date(2026, 10, 1), "regrade": True}]
    assert summary["as_of"] == "2026-10-01"


def test_the_tasks_go_to_the_scoring_queue_and_their_results_are_json(
    scoring_calls: list[dict[str, Any]],
) -> None:
    # when: enqueued on the backend that runs in place, as `patron jobs run --now` does
    result = score_nightly.using(backend="immediate").enqueue(as_of="2026-11-20")
    # then
    assert (score_nightly.queue_name, regrade_quarterly.queue_name) == (QUEUE, QUEUE)
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == {
        "score_run": 41,
        "as_of": "2026-11-20",
        "status": "completed",
        "customers": 1200,
    }


def test_a_malformed_date_fails_the_task_before_scoring(
    scoring_calls: list[dict[str, Any]],
) -> None:
    # when
    with pytest.raises(ValueError):
        score_nightly.call(as_of="20 November")
    # then
    assert scoring_calls == []
