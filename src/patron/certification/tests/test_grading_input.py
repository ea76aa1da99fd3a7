"""A certification feeds grading: the pipeline's ``certification_rank`` column, as of the
cut-off, which grade policies may weigh or require (``scoring.policies.grading_inputs``)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pyarrow as pa

from patron.intelligence.grading import grade
from patron.intelligence.pipeline import certification_rank
from patron.scoring.policies import grading_inputs


def _at(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=UTC)


CERTIFICATIONS = pa.table(
    {
        "customer_id": pa.array([1, 2, 2, 3, 4], pa.int64()),
        "rank": pa.array([1, 1, 2, 3, 1], pa.int64()),
        "granted_at": pa.array(
            [
                _at("2026-01-01"),
                _at("2026-01-01"),
                _at("2026-06-01"),
                _at("2026-01-01"),
                _at("2026-12-01"),
            ],
            pa.timestamp("us", tz="UTC"),
        ),
        "expires_at": pa.array(
            [
                _at("2027-01-01"),
                _at("2027-01-01"),
                _at("2027-06-01"),
                _at("2026-10-01"),
                _at("2027-12-01"),
            ],
            pa.timestamp("us", tz="UTC"),
        ),
        "ended_at": pa.array(
            [None, _at("2026-06-01"), None, None, None], pa.timestamp("us", tz="UTC")
        ),
    }
)


def test_the_rank_in_force_at_the_cut_off() -> None:
    ids = np.array([1, 2, 3, 4, 5])
    ranks = certification_rank(CERTIFICATIONS, ids, _at("2026-11-01")).to_pylist()
    # 1: in force; 2: the first ended (superseded), the second in force; 3: expired;
    # 4: granted after the cut-off; 5: never certified
    assert ranks == [1, 2, 0, 0, 0]
    assert certification_rank(CERTIFICATIONS, ids, _at("2026-03-01")).to_pylist() == [1, 1, 3, 0, 0]


def test_no_certifications_rank_everyone_zero() -> None:
    assert certification_rank(None, np.array([7, 8]), _at("2026-11-01")).to_pylist() == [0, 0]


def test_a_policy_may_weigh_certification() -> None:
    assert "certification_rank" in grading_inputs()
    table = pa.table(
        {
            "customer_id": [1, 2, 3],
            "clv_12m": [100.0, 100.0, 100.0],
            "certification_rank": [0.0, 1.0, 3.0],
        }
    )
    policy = {
        "version": 9,
        "inputs": {"clv_12m": 0.5, "certification_rank": 0.5},
        "lower_is_better": [],
        "thresholds": {"core_min": 0.7, "potential_min": 0.5},
        "requires": {"core": [], "potential": []},
        "hysteresis": 0.0,
    }
    assert grade(table, policy).grade.tolist() == ["ordinary", "potential", "core"]
