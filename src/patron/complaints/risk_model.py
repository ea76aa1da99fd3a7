"""The complaint-risk model (R-D6), pure: no Django. A feature matrix in, probabilities and the
reasons behind each out; ``patron.complaints.risk`` gathers the features from the database and
stores what comes out.

The model is deliberately transparent: a **logistic regression** (scikit-learn) on standardised
features, trained on past tickets whose label is "became a complaint" (``Ticket.is_complaint``).
A ticket's log-odds is a sum of one term per feature, ``w_j · (x_j − mean_j) / sd_j``, so its
reasons are simply the largest positive terms: "what makes this ticket riskier than the average
ticket" (Hosmer, Lemeshow & Sturdivant, *Applied Logistic Regression*, 3rd ed., 2013, ch. 1).

With too few labelled examples (fewer than ``MIN_POSITIVES`` complaints or ``MIN_NEGATIVES``
other tickets in the training window) a fitted model would be noise, so a **hand-weighted
score** is used instead: the same form with the documented weights of ``FEATURES``
(``HAND_INTERCEPT`` + Σ weight · value, squashed by the logistic function). Its reasons are the
largest terms ``weight · value``.

How well either ranks is measured on a **time-based holdout**: fit on the earlier tickets,
score the later ones, report the AUC (the chance that a random complaint is ranked above a
random non-complaint; 0.5 is guessing) and precision@k (the share of complaints among the k
highest-scored tickets, against the base rate).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

Matrix = npt.NDArray[np.float64]
Vector = npt.NDArray[np.float64]

MIN_POSITIVES = 20
MIN_NEGATIVES = 20
HAND_INTERCEPT = -3.0
TOP_REASONS = 3
#: A term smaller than this (in log-odds) is not worth naming as a reason.
MIN_CONTRIBUTION = 0.05
#: Features the holdout report also leaves out one at a time (``HoldoutReport.auc_without``).
ABLATE: tuple[str, ...] = ("priority",)


@dataclass(frozen=True)
class Feature:
    """One input: its name, how a person reads it (both languages, ``{value}`` filled in), the
    hand-set weight of the fallback score, and the cap applied before either model sees it
    (one customer with 200 contacts must not dominate the fit)."""

    name: str
    label_en: str
    label_zh: str
    reason_en: str
    reason_zh: str
    hand_weight: float
    cap: float
    is_count: bool = True


FEATURES: tuple[Feature, ...] = (
    Feature(
        "contacts_7d",
        "contacts in the last 7 days",
        "近7天联系次数",
        "{value:g} other contacts in the 7 days before",
        "此前7天内另有{value:g}次联系",
        0.6,
        10,
    ),
    Feature(
        "contacts_30d",
        "contacts in the last 30 days",
        "近30天联系次数",
        "{value:g} other contacts in the 30 days before",
        "此前30天内另有{value:g}次联系",
        0.2,
        20,
    ),
    Feature(
        "inbound_messages_30d",
        "customer messages in the last 30 days",
        "近30天客户消息数",
        "{value:g} messages from the customer",
        "客户发来{value:g}条消息",
        0.1,
        40,
    ),
    Feature(
        "negative_sentiment",
        "negative tone of the customer's words",
        "客户用语的负面程度",
        "negative tone in the customer's words ({value:.0%})",
        "客户用语明显负面（{value:.0%}）",
        2.5,
        1,
        is_count=False,
    ),
    Feature(
        "sla_breaches",
        "service-level breaches",
        "服务时限超时次数",
        "{value:g} service-level breach(es) on this ticket",
        "本工单超出服务时限{value:g}次",
        0.7,
        2,
    ),
    Feature(
        "past_complaints",
        "earlier complaints",
        "以往投诉次数",
        "{value:g} earlier complaint(s)",
        "以往投诉过{value:g}次",
        0.9,
        5,
    ),
    Feature(
        "reopens",
        "times reopened",
        "重新打开次数",
        "reopened {value:g} time(s)",
        "被重新打开{value:g}次",
        0.8,
        5,
    ),
    Feature(
        "priority",
        "priority (0 low … 3 urgent)",
        "优先级（0低…3紧急）",
        "priority {value_label}",
        "优先级：{value_label}",
        0.4,
        3,
        is_count=False,
    ),
    Feature(
        "grade",
        "customer grade (0 ordinary, 1 potential, 2 core)",
        "客户等级（0普通、1潜力、2核心）",
        "{value_label} customer",
        "{value_label}客户",
        0.2,
        2,
        is_count=False,
    ),
)
FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
BY_NAME: dict[str, Feature] = {f.name: f for f in FEATURES}
PRIORITY_VALUE: dict[str, float] = {"low": 0.0, "normal": 1.0, "high": 2.0, "urgent": 3.0}
GRADE_VALUE: dict[str, float] = {"ordinary": 0.0, "potential": 1.0, "core": 2.0}
_VALUE_LABELS: dict[str, dict[str, tuple[str, ...]]] = {
    "priority": {
        "en": ("low", "normal", "high", "urgent"),
        "zh-hans": ("低", "普通", "高", "紧急"),
    },
    "grade": {"en": ("ordinary", "potential", "core"), "zh-hans": ("普通", "潜力", "核心")},
}


def feature_matrix(rows: Sequence[Mapping[str, float]]) -> Matrix:
    """Rows of ``{feature: value}`` as a matrix in ``FEATURE_NAMES`` order, capped; a missing
    value is 0 ("none seen")."""
    matrix = np.zeros((len(rows), len(FEATURES)), dtype=np.float64)
    for i, row in enumerate(rows):
        for j, feature in enumerate(FEATURES):
            value = float(row.get(feature.name, 0.0) or 0.0)
            matrix[i, j] = min(max(value, 0.0), feature.cap)
    return matrix


def _sigmoid(z: Vector) -> Vector:
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(z, -30, 30))), dtype=np.float64)


class RiskModel(Protocol):
    method: str

    def predict(self, x: Matrix) -> Vector: ...

    def contributions(self, x: Matrix) -> Matrix: ...

    def weights(self) -> dict[str, float]: ...


@dataclass
class HandWeightedScore:
    """The fallback: documented weights, no fitting. ``predict`` is a logistic of
    ``HAND_INTERCEPT + Σ weight · value`` (a score in 0..1, not a calibrated probability)."""

    method: str = "hand_weighted"
    intercept: float = HAND_INTERCEPT
    coefficients: Vector = field(
        default_factory=lambda: np.array([f.hand_weight for f in FEATURES], dtype=np.float64)
    )

    def contributions(self, x: Matrix) -> Matrix:
        return np.asarray(x * self.coefficients, dtype=np.float64)

    def predict(self, x: Matrix) -> Vector:
        return _sigmoid(self.intercept + self.contributions(x).sum(axis=1))

    def weights(self) -> dict[str, float]:
        return {
            "intercept": self.intercept,
            **{f.name: float(w) for f, w in zip(FEATURES, self.coefficients, strict=True)},
        }


@dataclass
class LogisticComplaintModel:
    """Logistic regression on standardised features (L2, C=1). ``weights`` are per standard
    deviation of each feature, so they compare with each other."""

    method: str = "logistic"
    mean: Vector = field(default_factory=lambda: np.zeros(len(FEATURES)))
    scale: Vector = field(default_factory=lambda: np.ones(len(FEATURES)))
    coefficients: Vector = field(default_factory=lambda: np.zeros(len(FEATURES)))
    intercept: float = 0.0

    @classmethod
    def fit(cls, x: Matrix, y: npt.NDArray[np.int_]) -> LogisticComplaintModel:
        from sklearn.linear_model import LogisticRegression

        mean = x.mean(axis=0)
        scale = x.std(axis=0)
        scale = np.where(scale > 1e-9, scale, 1.0)
        fitted = LogisticRegression(C=1.0, max_iter=1000)
        fitted.fit((x - mean) / scale, y)
        return cls(
            mean=mean,
            scale=scale,
            coefficients=np.asarray(fitted.coef_[0], dtype=np.float64),
            intercept=float(fitted.intercept_[0]),
        )

    def contributions(self, x: Matrix) -> Matrix:
        return np.asarray((x - self.mean) / self.scale * self.coefficients, dtype=np.float64)

    def predict(self, x: Matrix) -> Vector:
        return _sigmoid(self.intercept + self.contributions(x).sum(axis=1))

    def weights(self) -> dict[str, float]:
        return {
            "intercept": round(self.intercept, 4),
            **{
                f.name: round(float(w), 4) for f, w in zip(FEATURES, self.coefficients, strict=True)
            },
        }


def has_enough_labels(y: npt.NDArray[np.int_]) -> bool:
    positives = int(y.sum())
    return positives >= MIN_POSITIVES and (y.size - positives) >= MIN_NEGATIVES


def fit_model(x: Matrix, y: npt.NDArray[np.int_]) -> RiskModel:
    """The logistic model, or the hand-weighted score when the labels are too few."""
    if not has_enough_labels(y):
        return HandWeightedScore()
    return LogisticComplaintModel.fit(x, y)


def reasons(
    contributions: Vector, values: Vector, *, top: int = TOP_REASONS
) -> list[dict[str, Any]]:
    """The features that push one ticket's risk up the most, largest first, as stored JSON
    ``{feature, value, contribution}`` (contribution in log-odds)."""
    order = np.argsort(-contributions, kind="stable")
    found: list[dict[str, Any]] = []
    for j in order[:top]:
        if contributions[j] < MIN_CONTRIBUTION:
            break
        found.append(
            {
                "feature": FEATURES[int(j)].name,
                "value": round(float(values[int(j)]), 4),
                "contribution": round(float(contributions[j]), 4),
            }
        )
    return found


def reason_text(reason: Mapping[str, Any], *, language: str = "en") -> str:
    """One stored reason in plain words ("3 other contacts in the 7 days before")."""
    feature = BY_NAME.get(str(reason.get("feature", "")))
    if feature is None:
        return str(reason.get("feature", ""))
    is_zh = language.lower().startswith("zh")
    value = float(reason.get("value", 0.0) or 0.0)
    template = feature.reason_zh if is_zh else feature.reason_en
    labels = _VALUE_LABELS.get(feature.name, {}).get("zh-hans" if is_zh else "en", ())
    index = min(max(round(value), 0), len(labels) - 1) if labels else 0
    return template.format(value=value, value_label=labels[index] if labels else "")


# ---------------------------------------------------------------------- measuring


def auc(scores: Vector, y: npt.NDArray[np.int_]) -> float | None:
    """Area under the ROC curve; ``None`` when only one class is present."""
    if y.size == 0 or y.min() == y.max():
        return None
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, scores))


def precision_at_k(scores: Vector, y: npt.NDArray[np.int_], k: int) -> float | None:
    """Share of complaints among the ``k`` highest scores (ties broken by order)."""
    if k <= 0 or y.size == 0:
        return None
    top = np.argsort(-scores, kind="stable")[: min(k, y.size)]
    return float(y[top].mean())


@dataclass(frozen=True)
class HoldoutReport:
    method: str
    train_size: int
    train_positives: int
    test_size: int
    test_positives: int
    cut: float | None  # the time (seconds since the epoch) train ends and test begins
    auc: float | None
    hand_weighted_auc: float | None
    precision_at_k: dict[int, float | None]
    base_rate: float | None
    feature_auc: dict[str, float | None]
    weights: dict[str, float]
    auc_without: dict[str, float | None] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "train_size": self.train_size,
            "train_positives": self.train_positives,
            "test_size": self.test_size,
            "test_positives": self.test_positives,
            "cut": self.cut,
            "auc": _round(self.auc),
            "hand_weighted_auc": _round(self.hand_weighted_auc),
            "precision_at_k": {str(k): _round(v) for k, v in self.precision_at_k.items()},
            "base_rate": _round(self.base_rate),
            "feature_auc": {name: _round(v) for name, v in self.feature_auc.items()},
            "auc_without": {name: _round(v) for name, v in self.auc_without.items()},
            "weights": self.weights,
        }


def _round(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else round(value, 4)


def holdout_report(
    x: Matrix,
    y: npt.NDArray[np.int_],
    times: Vector,
    *,
    test_share: float = 0.2,
    ks: Sequence[int] = (10, 20, 50),
    ablate: Sequence[str] = ABLATE,
) -> HoldoutReport:
    """Fit on the earliest ``1 − test_share`` of the tickets (by opening time), measure on the
    rest. Every ticket opened at the cut goes to the test side, so no day is split.

    ``auc_without[name]`` is the AUC of the same fit with feature ``name`` left out: a feature
    that alone nearly decides the label (a ticket's priority can be set *because* it is a
    complaint) shows there, and the figure without it is the honest one."""
    n = y.size
    if n == 0:
        return HoldoutReport(
            method=HandWeightedScore().method,
            train_size=0,
            train_positives=0,
            test_size=0,
            test_positives=0,
            cut=None,
            auc=None,
            hand_weighted_auc=None,
            precision_at_k=dict.fromkeys(ks),
            base_rate=None,
            feature_auc=dict.fromkeys(FEATURE_NAMES),
            weights=HandWeightedScore().weights(),
        )
    order = np.argsort(times, kind="stable")
    cut_index = min(max(math.floor(n * (1 - test_share)), 1), n - 1) if n > 1 else 0
    cut = float(times[order[cut_index]])
    train = times < cut
    test = ~train
    model = fit_model(x[train], y[train])
    scores = model.predict(x[test])
    hand = HandWeightedScore().predict(x[test])
    y_test = y[test]
    return HoldoutReport(
        method=model.method,
        train_size=int(train.sum()),
        train_positives=int(y[train].sum()),
        test_size=int(test.sum()),
        test_positives=int(y_test.sum()),
        cut=cut,
        auc=auc(scores, y_test),
        hand_weighted_auc=auc(hand, y_test),
        precision_at_k={k: precision_at_k(scores, y_test, k) for k in ks},
        base_rate=float(y_test.mean()) if y_test.size else None,
        feature_auc={name: auc(x[test][:, j], y_test) for j, name in enumerate(FEATURE_NAMES)},
        weights=model.weights(),
        auc_without={name: _auc_without(x, y, train, name) for name in ablate},
    )


def _without(x: Matrix, name: str) -> Matrix:
    """``x`` with feature ``name`` set to zero (a constant: the fit gives it no weight)."""
    copy = x.copy()
    copy[:, FEATURE_NAMES.index(name)] = 0.0
    return copy


def _auc_without(
    x: Matrix, y: npt.NDArray[np.int_], train: npt.NDArray[np.bool_], name: str
) -> float | None:
    reduced = _without(x, name)
    model = fit_model(reduced[train], y[train])
    return auc(model.predict(reduced[~train]), y[~train])
