"""Back-test metrics for classifiers and probability forecasts (credit, churn).

Pure numpy / scikit-learn, no Django. Every function takes ``y`` as 0/1 or bool outcomes (1 =
the event: a bad outcome, a churn) and returns plain Python values, so the back-test report
can print them or dump them as JSON directly. A metric that is undefined on the data (AUC
with a single class, anything on no rows) is ``None``, never NaN.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt
from sklearn.metrics import roc_auc_score, roc_curve

__all__ = ["auc", "brier", "calibration_table", "ks"]

ArrayLike = npt.ArrayLike


def _outcomes_and_values(y: ArrayLike, values: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    outcome = np.asarray(y).astype(bool).ravel()
    value = np.asarray(values, dtype=np.float64).ravel()
    if outcome.shape != value.shape:
        raise ValueError(f"y has {outcome.size} rows but the scores have {value.size}")
    if np.isnan(value).any():
        raise ValueError("scores contain NaN")
    return outcome, value


def _has_both_classes(outcome: np.ndarray) -> bool:
    return bool(outcome.any()) and not bool(outcome.all())


def auc(y: ArrayLike, score: ArrayLike) -> float | None:
    """Area under the ROC curve of ``score`` as a predictor of ``y == 1``.

    Higher ``score`` must mean "more likely the event": pass ``-credit_score`` to measure
    how well a credit score (higher = better) ranks bad outcomes. ``None`` when ``y`` holds
    only one class (the AUC is undefined).
    """
    outcome, value = _outcomes_and_values(y, score)
    if not _has_both_classes(outcome):
        return None
    return float(roc_auc_score(outcome, value))


def ks(y: ArrayLike, score: ArrayLike) -> float | None:
    """Kolmogorov–Smirnov statistic: the largest gap between the score distributions of the
    events and the non-events, ``max_t |F_event(t) − F_non_event(t)|`` = ``max |TPR − FPR|``
    over all thresholds.

    Direction-free (a reversed score has the same KS), in [0, 1]. ``None`` with one class.
    """
    outcome, value = _outcomes_and_values(y, score)
    if not _has_both_classes(outcome):
        return None
    fpr, tpr, _ = roc_curve(outcome, value)
    return float(np.max(np.abs(tpr - fpr)))


def brier(y: ArrayLike, p: ArrayLike) -> float | None:
    """Brier score, the mean squared error of the probabilities: ``mean((p − y)²)``
    (Brier 1950, "Verification of forecasts expressed in terms of probability", *Monthly
    Weather Review* 78(1)). Lower is better; ``None`` on no rows."""
    outcome, prob = _outcomes_and_values(y, p)
    if outcome.size == 0:
        return None
    return float(np.mean((prob - outcome.astype(np.float64)) ** 2))


def calibration_table(
    y: ArrayLike,
    p: ArrayLike,
    bins: int = 10,
    *,
    strategy: Literal["uniform", "quantile"] = "uniform",
) -> list[dict[str, float | int]]:
    """Reliability table: per bin of predicted probability, the mean prediction against the
    observed event rate.

    Parameters
    ----------
    y : array_like
        Outcomes (0/1 or bool).
    p : array_like
        Predicted probabilities in [0, 1].
    bins : int, default 10
        Number of bins.
    strategy : {"uniform", "quantile"}, default "uniform"
        ``uniform``: equal-width bins on [0, 1] (the classic reliability diagram; a bin is
        ``[lower, upper)``, the last one ``[lower, 1]``). ``quantile``: bins holding about
        the same number of rows (useful for rare events, where uniform bins put almost
        everyone in the first one); ties can merge quantile edges, giving fewer bins.

    Returns
    -------
    list of dict
        One dict per non-empty bin, in order: ``lower``, ``upper`` (bin edges),
        ``count``, ``mean_predicted``, ``observed_rate``. Empty bins are left out.
    """
    if bins < 1:
        raise ValueError("bins must be >= 1")
    outcome, prob = _outcomes_and_values(y, p)
    if np.any((prob < 0.0) | (prob > 1.0)):
        raise ValueError("probabilities must lie in [0, 1]")
    if strategy == "uniform":
        edges = np.linspace(0.0, 1.0, bins + 1)
    elif strategy == "quantile":
        if prob.size == 0:
            return []
        edges = np.unique(np.quantile(prob, np.linspace(0.0, 1.0, bins + 1)))
        if edges.size == 1:
            edges = np.array([edges[0], edges[0]])
    else:
        raise ValueError(f"unknown strategy {strategy!r}")
    # Bin i holds edges[i] <= p < edges[i+1]; the top edge is inclusive.
    index = np.clip(np.searchsorted(edges, prob, side="right") - 1, 0, edges.size - 2)
    counts = np.bincount(index, minlength=edges.size - 1)
    sum_p = np.bincount(index, weights=prob, minlength=edges.size - 1)
    sum_y = np.bincount(index, weights=outcome.astype(np.float64), minlength=edges.size - 1)
    table: list[dict[str, float | int]] = []
    for i in np.flatnonzero(counts).tolist():
        n = int(counts[i])
        table.append(
            {
                "lower": float(edges[i]),
                "upper": float(edges[i + 1]),
                "count": n,
                "mean_predicted": float(sum_p[i] / n),
                "observed_rate": float(sum_y[i] / n),
            }
        )
    return table
