"""The complaint-risk model, pure: it learns a known rule, ranks well on a time-based holdout,
names the features behind each score, and falls back to the hand-weighted score when labels are
few. No database."""

from __future__ import annotations

import numpy as np
import pytest

from patron.complaints import risk_model
from patron.complaints.risk_model import (
    FEATURE_NAMES,
    HandWeightedScore,
    LogisticComplaintModel,
)

CONTACTS = FEATURE_NAMES.index("contacts_7d")
NEGATIVE = FEATURE_NAMES.index("negative_sentiment")


def synthetic(
    n: int, seed: int = 11, rate_shift: float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tickets whose chance of a complaint is a known logistic function of repeat contacts and
    negative tone (logit = −3.5 + 0.9·contacts + 3·negative); the other features are noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        rows.append(
            {
                "contacts_7d": float(rng.poisson(1.0)),
                "contacts_30d": float(rng.poisson(2.0)),
                "inbound_messages_30d": float(rng.poisson(3.0)),
                "negative_sentiment": float(rng.uniform(0, 1)),
                "sla_breaches": float(rng.integers(0, 2)),
                "past_complaints": float(rng.poisson(0.2)),
                "reopens": 0.0,
                "priority": float(rng.integers(0, 4)),
                "grade": float(rng.integers(0, 3)),
            }
        )
    x = risk_model.feature_matrix(rows)
    logit = -3.5 + rate_shift + 0.9 * x[:, CONTACTS] + 3.0 * x[:, NEGATIVE]
    y = (rng.uniform(0, 1, n) < 1 / (1 + np.exp(-logit))).astype(np.int_)
    times = np.arange(n, dtype=np.float64) * 3600
    return x, y, times


def test_the_logistic_model_ranks_a_known_rule_well_on_the_later_tickets() -> None:
    # given
    x, y, times = synthetic(3000)
    # when
    report = risk_model.holdout_report(x, y, times)
    # then
    assert report.method == "logistic"
    assert (report.train_size, report.test_size) == (2400, 600)
    assert report.auc is not None and report.auc > 0.75
    assert report.base_rate is not None
    precision = report.precision_at_k[50]
    assert precision is not None and precision > 2 * report.base_rate
    # the two features of the rule carry the largest weights, both positive
    weights = {k: v for k, v in report.weights.items() if k != "intercept"}
    top_two = sorted(weights, key=lambda k: -abs(weights[k]))[:2]
    assert set(top_two) == {"contacts_7d", "negative_sentiment"}
    assert weights["contacts_7d"] > 0 and weights["negative_sentiment"] > 0
    # each alone ranks better than guessing; pure noise does not
    assert report.feature_auc["negative_sentiment"] > 0.6  # type: ignore[operator]
    assert abs(report.feature_auc["grade"] - 0.5) < 0.1  # type: ignore[operator]
    # priority is noise here: leaving it out changes little
    assert report.auc_without["priority"] > 0.75  # type: ignore[operator]


def test_reasons_name_the_features_that_raise_a_tickets_risk() -> None:
    # given
    x, y, _ = synthetic(3000)
    model = risk_model.fit_model(x, y)
    row = risk_model.feature_matrix(
        [{"contacts_7d": 5, "negative_sentiment": 0.9, "priority": 1, "grade": 1}]
    )
    # when
    reasons = risk_model.reasons(model.contributions(row)[0], row[0])
    # then
    assert isinstance(model, LogisticComplaintModel)
    assert [r["feature"] for r in reasons[:2]] == ["contacts_7d", "negative_sentiment"]
    assert reasons[0]["value"] == 5.0 and reasons[0]["contribution"] > reasons[1]["contribution"]
    assert risk_model.reason_text(reasons[0]) == "5 other contacts in the 7 days before"
    assert risk_model.reason_text(reasons[1], language="zh-hans") == "客户用语明显负面（90%）"


def test_an_average_ticket_has_no_reasons() -> None:
    # given
    x, y, _ = synthetic(2000)
    model = risk_model.fit_model(x, y)
    average = x.mean(axis=0, keepdims=True)
    # when
    reasons = risk_model.reasons(model.contributions(average)[0], average[0])
    # then
    assert reasons == []


def test_with_few_complaints_the_hand_weighted_score_is_used() -> None:
    # given: 2,000 tickets, only 15 complaints
    x, _, times = synthetic(2000)
    y = np.zeros(2000, dtype=np.int_)
    y[np.argsort(-x[:, CONTACTS])[:15]] = 1
    # when
    model = risk_model.fit_model(x, y)
    report = risk_model.holdout_report(x, y, times)
    # then
    assert isinstance(model, HandWeightedScore)
    assert report.method == "hand_weighted"
    assert report.weights["intercept"] == risk_model.HAND_INTERCEPT
    assert report.weights["negative_sentiment"] == 2.5


def test_the_hand_weighted_score_is_documented_weights_times_values() -> None:
    # given
    model = HandWeightedScore()
    row = risk_model.feature_matrix([{"contacts_7d": 3, "past_complaints": 1, "priority": 3}])
    # when
    contributions = model.contributions(row)[0]
    probability = float(model.predict(row)[0])
    reasons = risk_model.reasons(contributions, row[0])
    # then: −3 + 0.6·3 + 0.9·1 + 0.4·3 = 0.9
    assert probability == pytest.approx(1 / (1 + np.exp(-0.9)))
    assert [(r["feature"], r["contribution"]) for r in reasons] == [
        ("contacts_7d", 1.8),
        ("priority", 1.2),
        ("past_complaints", 0.9),
    ]
    assert risk_model.reason_text(reasons[1]) == "priority urgent"
    assert risk_model.reason_text(reasons[2], language="zh-hans") == "以往投诉过1次"


def test_features_are_capped_and_missing_ones_are_zero() -> None:
    # when
    matrix = risk_model.feature_matrix([{"contacts_7d": 500, "negative_sentiment": -0.4}, {}])
    # then
    assert matrix[0, CONTACTS] == 10
    assert matrix[0, NEGATIVE] == 0.0
    assert matrix[1].tolist() == [0.0] * len(FEATURE_NAMES)


def test_precision_at_k_and_auc_on_a_small_example() -> None:
    # given
    scores = np.array([0.9, 0.8, 0.7, 0.2, 0.1])
    y = np.array([1, 0, 1, 0, 0])
    # then
    assert risk_model.precision_at_k(scores, y, 1) == 1.0
    assert risk_model.precision_at_k(scores, y, 2) == 0.5
    assert risk_model.precision_at_k(scores, y, 10) == 0.4
    assert risk_model.auc(scores, y) == pytest.approx(5 / 6)
    assert risk_model.auc(scores, np.zeros(5, dtype=np.int_)) is None


def test_the_holdout_keeps_time_order_and_an_empty_set_reports_nothing() -> None:
    # given: later tickets are all complaints, earlier none
    x, _, times = synthetic(100)
    y = (times >= times[80]).astype(np.int_)
    # when
    report = risk_model.holdout_report(x, y, times)
    empty = risk_model.holdout_report(
        np.zeros((0, len(FEATURE_NAMES))), np.zeros(0, np.int_), np.zeros(0)
    )
    # then: the model never saw a complaint, and the test side has only complaints
    assert (report.method, report.train_positives, report.test_positives) == (
        "hand_weighted",
        0,
        20,
    )
    assert report.auc is None
    assert (empty.train_size, empty.test_size, empty.auc) == (0, 0, None)


def test_a_feature_set_because_of_the_label_shows_in_the_ablation() -> None:
    # given: the label is noise, but priority was raised for the complaints (a leak)
    x, _, times = synthetic(2000)
    rng = np.random.default_rng(5)
    y = (rng.uniform(0, 1, 2000) < 0.15).astype(np.int_)
    x[:, FEATURE_NAMES.index("priority")] = np.where(y == 1, 3.0, rng.integers(0, 3, 2000))
    # when
    report = risk_model.holdout_report(x, y, times)
    # then
    assert report.auc is not None and report.auc > 0.85
    assert abs(report.auc_without["priority"] - 0.5) < 0.1  # type: ignore[operator]
    assert report.to_json()["auc_without"].keys() == {"priority"}
