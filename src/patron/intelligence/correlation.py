"""Which customer factors move with an outcome (repurchase, satisfaction): rank correlations
with confidence intervals, and a simple model's view of the same factors (R-C3).

Pure library: takes the customer features as of a cut-off (``features.customer_features``)
and a 0/1 outcome per customer observed after it, returns plain data. Correlation is not
cause: the readers are told so; the numbers are for deciding what to look into.

- Each factor: Spearman's rank correlation with the outcome over the customers with a value,
  and its 95 % interval by Fisher's z with the Bonett–Wright standard error
  ``sqrt((1 + r²/2) / (n − 3))`` (Bonett & Wright 2000, Psychometrika 65: 23–28).
- The model: a logistic regression on the standardised factors (missing values set to the
  median), fitted on three quarters of the customers and scored on the rest (AUC); a factor's
  weight is its coefficient, the change in log-odds per standard deviation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from scipy import stats

Z_95 = 1.959963984540054
MIN_CUSTOMERS = 30
MODEL_FACTORS = 8  # fewer than this with a value: no correlation is reported for a factor


@dataclass(frozen=True)
class Factor:
    feature: str
    customers: int  # with a value for the factor
    rho: float
    low: float
    high: float
    p_value: float
    is_clear: bool  # the interval excludes 0


@dataclass(frozen=True)
class ModelWeight:
    feature: str
    coefficient: float  # log-odds per standard deviation


@dataclass(frozen=True)
class Study:
    outcome: str
    customers: int
    positive: int
    factors: list[Factor]
    model_auc: float | None
    model_weights: list[ModelWeight]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def fisher_interval(rho: float, n: int, z: float = Z_95) -> tuple[float, float]:
    """The interval of a Spearman correlation (Fisher's z, Bonett–Wright standard error)."""
    if n <= 3:
        return (-1.0, 1.0)
    clipped = min(max(rho, -0.999999), 0.999999)
    se = math.sqrt((1 + clipped**2 / 2) / (n - 3))
    centre = math.atanh(clipped)
    return (math.tanh(centre - z * se), math.tanh(centre + z * se))


def _column(table: pa.Table, name: str) -> np.ndarray:
    return np.asarray(table.column(name).to_numpy(zero_copy_only=False), dtype=np.float64)


def factor_correlations(
    table: pa.Table, outcome: np.ndarray, features: Sequence[str]
) -> list[Factor]:
    """Every factor with enough customers and some spread, strongest first."""
    y = np.asarray(outcome, dtype=np.float64)
    out: list[Factor] = []
    for name in features:
        x = _column(table, name)
        keep = np.isfinite(x) & np.isfinite(y)
        n = int(keep.sum())
        if n < MIN_CUSTOMERS or np.ptp(x[keep]) == 0 or np.ptp(y[keep]) == 0:
            continue
        result = stats.spearmanr(x[keep], y[keep])
        rho, p = float(result.statistic), float(result.pvalue)
        if not math.isfinite(rho):
            continue
        low, high = fisher_interval(rho, n)
        out.append(Factor(name, n, rho, low, high, p, low > 0 or high < 0))
    return sorted(out, key=lambda f: (-abs(f.rho), f.feature))


def model_weights(
    table: pa.Table, outcome: np.ndarray, features: Sequence[str], *, seed: int = 7
) -> tuple[float | None, list[ModelWeight]]:
    """A standardised logistic regression's coefficients and its held-out AUC."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split

    y = np.asarray(outcome, dtype=np.int64)
    if len(features) == 0 or len(np.unique(y)) < 2 or len(y) < 4 * MIN_CUSTOMERS:
        return None, []
    columns = []
    for name in features:
        x = _column(table, name)
        median = np.nanmedian(x) if np.isfinite(x).any() else 0.0
        x = np.where(np.isfinite(x), x, median)
        spread = x.std()
        columns.append((x - x.mean()) / spread if spread > 0 else np.zeros_like(x))
    matrix = np.column_stack(columns)
    train_x, test_x, train_y, test_y = train_test_split(
        matrix, y, test_size=0.25, random_state=seed, stratify=y
    )
    model = LogisticRegression(max_iter=1000, C=1.0)
    model.fit(train_x, train_y)
    auc = (
        float(roc_auc_score(test_y, model.predict_proba(test_x)[:, 1]))
        if len(np.unique(test_y)) == 2
        else None
    )
    weights = [
        ModelWeight(name, float(coefficient))
        for name, coefficient in zip(features, model.coef_[0], strict=True)
    ]
    return auc, sorted(weights, key=lambda w: (-abs(w.coefficient), w.feature))


def study(table: pa.Table, outcome: np.ndarray, features: Sequence[str], *, name: str) -> Study:
    """Correlations and model weights of ``features`` with a 0/1 ``outcome`` (one per row)."""
    y = np.asarray(outcome, dtype=np.float64)
    factors = factor_correlations(table, y, features)
    # The model sees the clearest factors only: dozens of overlapping counts would share
    # their weight out at random (collinearity) and read as nonsense.
    usable = [f.feature for f in factors if f.is_clear][:MODEL_FACTORS]
    auc, weights = model_weights(table, y, usable)
    return Study(
        outcome=name,
        customers=len(y),
        positive=int(np.nansum(y)),
        factors=factors,
        model_auc=auc,
        model_weights=weights,
    )
