"""``patron models report``: back-test the models on a calibration / holdout split.

Calibration is everything before ``as_of``; the holdout is the ``holdout_days`` after it. The
models are fitted on calibration only and judged on what customers then did in the holdout.
Only the BTYD models (BG/NBD, Gamma-Gamma) exist so far; the report says so for the others
rather than leaving them out silently.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np

from patron.errors import ValidationFailed
from patron.intelligence.models.btyd import BetaGeo, GammaGamma, rfm_summary
from patron.scoring.extract import purchase_log

NOT_BUILT_YET = ("churn", "credit", "clv_error", "grade_stability")


@dataclass(frozen=True)
class Split:
    as_of: date
    holdout_days: int
    period_days: float

    @property
    def holdout_end(self) -> date:
        return self.as_of + timedelta(days=self.holdout_days)


def _holdout_counts(
    ids: np.ndarray, days: np.ndarray, split: Split, customers: np.ndarray
) -> np.ndarray:
    """Repeat transactions (distinct purchase days) of each calibration customer in the holdout."""
    start, end = np.datetime64(split.as_of, "D"), np.datetime64(split.holdout_end, "D")
    inside = (days >= start) & (days < end)
    pairs = np.unique(np.stack([ids[inside], days[inside].astype(np.int64)]), axis=1)
    counted, counts = np.unique(pairs[0], return_counts=True)
    out = np.zeros(len(customers))
    where = np.searchsorted(customers, counted)
    known = (where < len(customers)) & (customers[np.minimum(where, len(customers) - 1)] == counted)
    out[where[known]] = counts[known]
    return out


def models_report(*, as_of: date, holdout_days: int, period_days: float = 7.0) -> dict[str, Any]:
    """Fit every model as of ``as_of`` and measure it on the holdout; a JSON-ready dict."""
    if holdout_days < 1:
        raise ValidationFailed("holdout_days must be at least 1")
    split = Split(as_of, holdout_days, period_days)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    log = purchase_log()
    timings["extract"] = time.perf_counter() - started
    if len(log) == 0:
        raise ValidationFailed("there are no purchases to fit models on: import orders first")
    ids, days, amounts = log.customer_ids, log.days, log.amounts

    started = time.perf_counter()
    summary = rfm_summary(
        ids, days, amounts, cutoff=np.datetime64(as_of, "D"), unit_days=period_days
    )
    timings["summary"] = time.perf_counter() - started
    if len(summary) == 0:
        raise ValidationFailed(f"no customer bought before {as_of}: choose a later --as-of")

    started = time.perf_counter()
    bgnbd = BetaGeo().fit(summary.frequency, summary.recency, summary.T)
    timings["bgnbd_fit"] = time.perf_counter() - started
    started = time.perf_counter()
    repeaters = summary.frequency > 0
    gamma = GammaGamma().fit(summary.frequency[repeaters], summary.monetary_value[repeaters])
    timings["gamma_gamma_fit"] = time.perf_counter() - started

    horizon = holdout_days / period_days
    predicted = bgnbd.conditional_expected_purchases(
        horizon, summary.frequency, summary.recency, summary.T
    )
    actual = _holdout_counts(ids, days, split, summary.customer_id)
    correlation = float(np.corrcoef(predicted, actual)[0, 1]) if actual.std() > 0 else None
    spend = gamma.conditional_expected_average_value(summary.frequency, summary.monetary_value)

    return {
        "as_of": as_of.isoformat(),
        "holdout_days": holdout_days,
        "period_days": period_days,
        "customers": len(summary),
        "calibration_transactions": int(summary.frequency.sum() + len(summary)),
        "bgnbd": {
            **{k: float(v) for k, v in bgnbd.params_.items()},
            "log_likelihood": float(bgnbd.log_likelihood_),
            "holdout": {
                "predicted_repeat_transactions": float(predicted.sum()),
                "actual_repeat_transactions": int(actual.sum()),
                "correlation_per_customer": correlation,
                "mean_absolute_error_per_customer": float(np.abs(predicted - actual).mean()),
            },
        },
        "gamma_gamma": {
            **{k: float(v) for k, v in gamma.params_.items()},
            "repeat_customers": int(repeaters.sum()),
            "mean_expected_spend_per_transaction": float(spend.mean()),
        },
        "not_built_yet": list(NOT_BUILT_YET),
        "seconds": {k: round(v, 3) for k, v in timings.items()},
    }
