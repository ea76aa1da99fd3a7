"""``patron models report``: back-test every model on a calibration / holdout split.

Calibration is everything before ``as_of``; the holdout is the ``holdout_days`` after it. Each
model is fitted on calibration data only (the supervised ones learn from the horizon before
``as_of``, exactly as a nightly run would) and judged on what customers then did:

- BG/NBD: repeat purchases predicted vs actual, in total, per week, and per customer;
- Gamma-Gamma + BG/NBD: each customer's spend in the holdout (the CLV error);
- churn: who bought nothing in the holdout — LightGBM and BG/NBD's 1 − P(alive), AUC, Brier
  and calibration;
- credit: bad outcomes in the holdout (chargebacks, defaults, refusals, abusive returns) — AUC
  and KS of the credit score;
- grades: the active policy applied a quarter before ``as_of`` and at ``as_of``: how many
  customers kept their grade.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from patron.errors import ValidationFailed
from patron.intelligence import grading
from patron.intelligence.labels import bad_outcomes, churned
from patron.intelligence.metrics import auc, brier, calibration_table, ks
from patron.intelligence.models.btyd import BetaGeo, GammaGamma, compress_rows, rfm_summary
from patron.intelligence.models.pareto import ParetoNBD
from patron.intelligence.pipeline import Result, run
from patron.intelligence.purchases import PurchaseLog, purchase_log
from patron.intelligence.sources import Sources
from patron.scoring.policies import policy_active, policy_parse
from patron.scoring.services import cutoff_of, pipeline_config
from patron.scoring.sources import load_sources

QUARTER_DAYS = 91
MAX_TRACKING_POINTS = 60


@dataclass(frozen=True)
class Split:
    as_of: date
    holdout_days: int
    period_days: float

    @property
    def holdout_end(self) -> date:
        return self.as_of + timedelta(days=self.holdout_days)


def _holdout_counts(
    ids: np.ndarray,
    days: np.ndarray,
    start: np.datetime64,
    end: np.datetime64,
    customers: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Per calibration customer: purchase days in ``[start, end)`` and the day offsets of them."""
    inside = (days >= start) & (days < end)
    pairs = np.unique(np.stack([ids[inside], days[inside].astype(np.int64)]), axis=1)
    counted, counts = np.unique(pairs[0], return_counts=True)
    out = np.zeros(len(customers))
    where = np.searchsorted(customers, counted)
    known = (where < len(customers)) & (customers[np.minimum(where, len(customers) - 1)] == counted)
    out[where[known]] = counts[known]
    member = np.isin(pairs[0], customers)
    offsets = pairs[1][member] - start.astype(np.int64)
    return out, offsets


def _holdout_fit(predicted: np.ndarray, actual: np.ndarray) -> dict[str, Any]:
    """Predicted against actual repeat purchases in the holdout, in total and per customer."""
    return {
        "predicted_repeat_transactions": float(predicted.sum()),
        "actual_repeat_transactions": int(actual.sum()),
        "correlation_per_customer": (
            float(np.corrcoef(predicted, actual)[0, 1]) if actual.std() > 0 else None
        ),
        "mean_absolute_error_per_customer": float(np.abs(predicted - actual).mean()),
    }


def _btyd(log: PurchaseLog, split: Split) -> dict[str, Any]:
    start = np.datetime64(split.as_of, "D")
    end = np.datetime64(split.holdout_end, "D")
    summary = rfm_summary(
        log.customer_ids, log.days, log.amounts, cutoff=start, unit_days=split.period_days
    )
    if len(summary) == 0:
        raise ValidationFailed(f"no customer bought before {split.as_of}: choose a later --as-of")
    x, t_x, big_t, weights = compress_rows(summary.frequency, summary.recency, summary.T)
    bgnbd = BetaGeo().fit(x, t_x, big_t, weights=weights)
    repeaters = summary.frequency > 0
    gamma = GammaGamma().fit(summary.frequency[repeaters], summary.monetary_value[repeaters])
    horizon = split.holdout_days / split.period_days
    f, r, t = summary.frequency, summary.recency, summary.T
    predicted = bgnbd.conditional_expected_purchases(horizon, f, r, t)
    actual, offsets = _holdout_counts(log.customer_ids, log.days, start, end, summary.customer_id)
    spend = gamma.conditional_expected_average_value(f, summary.monetary_value)
    shop_mean = float(np.nanmean(summary.monetary_value[repeaters])) if repeaters.any() else 0.0
    spend = np.where(np.isfinite(spend), spend, shop_mean)

    # The tracking plot of Fader, Hardie & Lee (2005): cumulative repeat purchases by period.
    step = max(1, int(np.ceil(split.holdout_days / MAX_TRACKING_POINTS)))
    points = list(range(step, split.holdout_days + 1, step))
    if not points or points[-1] != split.holdout_days:
        points.append(split.holdout_days)
    cumulative_predicted = [
        float(bgnbd.conditional_expected_purchases(d / split.period_days, f, r, t).sum())
        for d in points
    ]
    cumulative_actual = [int((offsets < d).sum()) for d in points]

    in_window = (log.days >= start) & (log.days < end)
    position = np.searchsorted(summary.customer_id, log.customer_ids[in_window])
    position = np.minimum(position, len(summary) - 1)
    known = summary.customer_id[position] == log.customer_ids[in_window]
    actual_spend = np.bincount(
        position[known], weights=log.amounts[in_window][known], minlength=len(summary)
    )
    predicted_spend = predicted * spend
    pareto = ParetoNBD().fit(x, t_x, big_t, weights=weights)
    pareto_predicted = pareto.conditional_expected_purchases(horizon, f, r, t)
    return {
        "customers": len(summary),
        "calibration_transactions": int(summary.frequency.sum() + len(summary)),
        "bgnbd": {
            **{k: float(v) for k, v in bgnbd.params_.items()},
            "log_likelihood": float(bgnbd.log_likelihood_),
            "holdout": {
                **_holdout_fit(predicted, actual),
                "tracking": {
                    "days": points,
                    "predicted_cumulative": cumulative_predicted,
                    "actual_cumulative": cumulative_actual,
                },
            },
        },
        "pareto_nbd": {
            **{k: float(v) for k, v in pareto.params_.items()},
            "log_likelihood": float(pareto.log_likelihood_),
            "holdout": _holdout_fit(pareto_predicted, actual),
            "closer_than_bgnbd": bool(
                np.abs(pareto_predicted - actual).mean() < np.abs(predicted - actual).mean()
            ),
        },
        "gamma_gamma": {
            **{k: float(v) for k, v in gamma.params_.items()},
            "repeat_customers": int(repeaters.sum()),
            "mean_expected_spend_per_transaction": float(spend.mean()),
        },
        "clv_error": {
            "note": "holdout spend per customer: BG/NBD purchases × Gamma-Gamma value vs actual",
            "predicted_total": float(predicted_spend.sum()),
            "actual_total": float(actual_spend.sum()),
            "mean_absolute_error": float(np.abs(predicted_spend - actual_spend).mean()),
            "correlation_per_customer": (
                float(np.corrcoef(predicted_spend, actual_spend)[0, 1])
                if actual_spend.std() > 0
                else None
            ),
        },
    }


def _column(table: pa.Table, name: str) -> np.ndarray:
    return np.asarray(table.column(name).to_numpy(zero_copy_only=False), dtype=np.float64)


def _churn(sources: Sources, result: Result, split: Split) -> dict[str, Any]:
    scores = result.scores
    bought = np.isfinite(_column(scores, "p_alive"))
    ids = scores.column("customer_id").to_numpy()[bought]
    start = cutoff_of(split.as_of)
    y = churned(sources, start, start + timedelta(days=split.holdout_days), ids)
    chosen = _column(scores, "churn_probability")[bought]
    btyd = 1.0 - _column(scores, "p_alive")[bought]
    model = result.parameters["churn"].get("model", "bgnbd")
    return {
        "customers": int(bought.sum()),
        "churned_in_holdout": int(y.sum()),
        "model_in_use": model,
        "model_in_use_auc": auc(y, chosen),
        "model_in_use_brier": brier(y, chosen),
        "bgnbd_auc": auc(y, btyd),
        "bgnbd_brier": brier(y, btyd),
        "calibration": calibration_table(y, chosen, bins=10),
        "training": result.parameters["churn"],
    }


def _credit(sources: Sources, result: Result, split: Split) -> dict[str, Any]:
    scores = result.scores
    start = cutoff_of(split.as_of)
    labels = bad_outcomes(sources, start, start + timedelta(days=split.holdout_days))
    index = pc.index_in(scores.column("customer_id"), value_set=labels.column("customer_id"))
    bad = np.asarray(
        pc.fill_null(labels.column("bad").take(index), False).to_numpy(zero_copy_only=False),
        dtype=bool,
    )
    risk = -_column(scores, "credit_score")  # a lower score must mean more bad outcomes
    info = result.parameters["credit"]
    return {
        "customers": len(bad),
        "bad_in_holdout": int(bad.sum()),
        "model": info.get("model"),
        "auc": auc(bad, risk),
        "ks": ks(bad, risk),
        "training": info,
    }


def _stability(earlier: Result, later: Result) -> dict[str, Any]:
    before = dict(
        zip(
            earlier.scores.column("customer_id").to_pylist(),
            earlier.scores.column("grade").to_pylist(),
            strict=True,
        )
    )
    after = dict(
        zip(
            later.scores.column("customer_id").to_pylist(),
            later.scores.column("grade").to_pylist(),
            strict=True,
        )
    )
    moves = grading.moves(before, after)
    both = moves["unchanged"] + moves["up"] + moves["down"]
    return {
        "quarter_days": QUARTER_DAYS,
        "share_unchanged": moves["unchanged"] / both if both else None,
        **moves,
    }


def models_report(*, as_of: date, holdout_days: int, period_days: float = 7.0) -> dict[str, Any]:
    """Fit every model as of ``as_of`` and measure it on the holdout; a JSON-ready dict."""
    if holdout_days < 1:
        raise ValidationFailed("holdout_days must be at least 1")
    split = Split(as_of, holdout_days, period_days)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    sources = load_sources()
    config = pipeline_config()
    log = purchase_log(sources.orders, time_zone=config.time_zone)
    timings["extract"] = time.perf_counter() - started
    if len(log) == 0:
        raise ValidationFailed("there are no purchases to fit models on: import orders first")

    started = time.perf_counter()
    report: dict[str, Any] = {
        "as_of": as_of.isoformat(),
        "holdout_days": holdout_days,
        "period_days": period_days,
    }
    report.update(_btyd(log, split))
    timings["btyd"] = time.perf_counter() - started

    started = time.perf_counter()
    policy = policy_parse(policy_active().rules)
    earlier: Result | None = None
    try:
        earlier = run(
            sources, cutoff_of(as_of - timedelta(days=QUARTER_DAYS)), policy=policy, config=config
        )
    except ValueError as error:
        report["grade_stability"] = {"not_measured": str(error)}
    previous = (
        dict(
            zip(
                earlier.scores.column("customer_id").to_pylist(),
                earlier.scores.column("grade").to_pylist(),
                strict=True,
            )
        )
        if earlier
        else None
    )
    now = run(sources, cutoff_of(as_of), policy=policy, previous_grades=previous, config=config)
    if earlier is not None:
        report["grade_stability"] = _stability(earlier, now)
    timings["pipeline"] = time.perf_counter() - started
    started = time.perf_counter()
    report["churn"] = _churn(sources, now, split)
    report["credit"] = _credit(sources, now, split)
    timings["evaluate"] = time.perf_counter() - started
    report["grade_counts"] = now.parameters.get("grade_counts", {})
    report["clusters"] = now.clusters
    report["seconds"] = {k: round(v, 3) for k, v in timings.items()}
    return report
