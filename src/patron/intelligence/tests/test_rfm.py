"""RFM quintiles and the eight classes."""

from __future__ import annotations

import numpy as np

from patron.intelligence.models.rfm import CLASSES, quintile_scores, rfm


def test_quintiles_split_ranks_into_fifths_and_share_ties() -> None:
    assert quintile_scores(np.arange(10.0)).tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert quintile_scores(np.arange(10.0), higher_is_better=False).tolist() == [
        5,
        5,
        4,
        4,
        3,
        3,
        2,
        2,
        1,
        1,
    ]
    assert quintile_scores(np.array([7.0, 7.0, 7.0, 7.0])).tolist() == [3, 3, 3, 3]
    assert quintile_scores(np.array([])).tolist() == []


def test_eight_classes_against_the_shops_averages() -> None:
    # given: averages are recency 50 days, frequency 3, spend 500
    recency = np.array([10.0, 10.0, 90.0, 90.0, 10.0, 10.0, 90.0, 90.0])
    frequency = np.array([5.0, 1.0, 5.0, 1.0, 5.0, 1.0, 5.0, 1.0])
    monetary = np.array([900.0, 900.0, 900.0, 900.0, 100.0, 100.0, 100.0, 100.0])
    # when
    result = rfm(recency, frequency, monetary)
    # then
    assert result.segment.tolist() == [
        "important_value",
        "important_develop",
        "important_retain",
        "important_win_back",
        "general_value",
        "general_develop",
        "general_retain",
        "general_win_back",
    ]
    assert (result.mean_recency_days, result.mean_frequency, result.mean_monetary) == (
        50.0,
        3.0,
        500.0,
    )
    assert len({code for code, _, _ in CLASSES.values()}) == 8
