"""``patron score``: fit the purchase models as of a date and write every customer's scores.

One run is one transaction: the previous scores stay visible until the new ones replace them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date
from decimal import Decimal

import numpy as np
from django.db import transaction
from django.utils import timezone

from patron.errors import ValidationFailed
from patron.intelligence.models.btyd import BetaGeo, GammaGamma, Summary, compress_rows, rfm_summary
from patron.intelligence.models.rfm import RFM, rfm
from patron.scoring.extract import PurchaseLog, purchase_log
from patron.scoring.models import CustomerScore, ScoreRun
from patron.scoring.rules import alive_reason, rfm_reason, value_reason

Progress = Callable[[str, int, int | None], None]
WEEK = 7.0
CENT = Decimal("0.01")
MIN_CUSTOMERS = 20  # fewer and the BG/NBD fit is not worth showing anyone
MIN_REPEAT_CUSTOMERS = 10  # fewer and Gamma-Gamma gives way to observed averages


def _last_currency(
    ids: np.ndarray, days: np.ndarray, currencies: np.ndarray, customers: np.ndarray
) -> np.ndarray:
    order = np.lexsort((days, ids))
    last = np.r_[ids[order][1:] != ids[order][:-1], True]
    mapping = dict(zip(ids[order][last].tolist(), currencies[order][last].tolist(), strict=True))
    return np.array([mapping[c] for c in customers.tolist()], dtype=object)


def score_customers(*, as_of: date, progress: Progress | None = None) -> ScoreRun:
    """Score every customer who bought before ``as_of``; customers who never bought get no row."""
    run = ScoreRun.objects.create(as_of=as_of, started_at=timezone.now())
    seconds: dict[str, float] = {}

    def stage(name: str, started: float) -> None:
        seconds[name] = round(time.perf_counter() - started, 3)
        if progress:
            progress(name, 1, 1)

    try:
        started = time.perf_counter()
        log = purchase_log()
        cutoff = np.datetime64(as_of, "D")
        if len(log) == 0 or not (log.days < cutoff).any():
            raise ValidationFailed(
                f"no purchases before {as_of}: import orders first or choose a later --as-of"
            )
        stage("extract", started)

        started = time.perf_counter()
        summary = rfm_summary(
            log.customer_ids, log.days, log.amounts, cutoff=cutoff, unit_days=WEEK
        )
        stage("summary", started)

        if len(summary) < MIN_CUSTOMERS:
            raise ValidationFailed(
                f"only {len(summary)} customers bought before {as_of}; scoring needs at least {MIN_CUSTOMERS}"
            )
        started = time.perf_counter()
        x, t_x, big_t, weights = compress_rows(summary.frequency, summary.recency, summary.T)
        bgnbd = BetaGeo().fit(x, t_x, big_t, weights=weights)
        repeat = summary.frequency > 0
        gamma = (
            GammaGamma().fit(summary.frequency[repeat], summary.monetary_value[repeat])
            if repeat.sum() >= MIN_REPEAT_CUSTOMERS
            else None
        )
        stage("fit", started)

        started = time.perf_counter()
        p_alive = bgnbd.probability_alive(summary.frequency, summary.recency, summary.T)
        next_90 = bgnbd.conditional_expected_purchases(
            90 / WEEK, summary.frequency, summary.recency, summary.T
        )
        next_365 = bgnbd.conditional_expected_purchases(
            365 / WEEK, summary.frequency, summary.recency, summary.T
        )
        order_value = _order_values(gamma, summary, log)
        currencies = _last_currency(log.customer_ids, log.days, log.currencies, summary.customer_id)
        segments = _rfm(summary, log, cutoff)
        rows = _score_rows(
            run, as_of, summary, p_alive, next_90, next_365, order_value, currencies, segments
        )
        stage("score", started)

        started = time.perf_counter()
        with transaction.atomic():
            CustomerScore.objects.all().delete()
            CustomerScore.objects.bulk_create(rows, batch_size=5000)
        stage("write", started)
    except BaseException:
        ScoreRun.objects.filter(pk=run.pk).update(
            status=ScoreRun.Status.FAILED, finished_at=timezone.now(), seconds=seconds
        )
        raise
    run.status = ScoreRun.Status.COMPLETED
    run.finished_at = timezone.now()
    run.customers = len(rows)
    run.parameters = {
        "bgnbd": {**bgnbd.params_, "log_likelihood": bgnbd.log_likelihood_, "period_days": WEEK},
        "gamma_gamma": dict(gamma.params_) if gamma else None,
    }
    run.seconds = seconds
    run.save()
    return run


def _rfm(summary: Summary, log: PurchaseLog, cutoff: np.datetime64) -> RFM:
    """RFM on calendar days: days since the last purchase (to the cut-off), purchase days, and
    total spend before the cut-off."""
    before = log.days < cutoff
    index = np.searchsorted(summary.customer_id, log.customer_ids[before])
    spend = np.bincount(index, weights=log.amounts[before], minlength=len(summary))
    days_since = np.round((summary.T - summary.recency) * WEEK) + 1
    return rfm(days_since, summary.frequency + 1, spend)


def _order_values(gamma: GammaGamma | None, summary: Summary, log: PurchaseLog) -> np.ndarray:
    """Expected value per order: Gamma-Gamma where it was fitted, else each customer's own
    average, else the shop's average order value."""
    shop_mean = float(log.amounts.mean())
    if gamma is not None:
        values = gamma.conditional_expected_average_value(summary.frequency, summary.monetary_value)
    else:
        values = np.where(summary.frequency > 0, summary.monetary_value, shop_mean)
    return np.where(np.isfinite(values), values, shop_mean)


def _score_rows(
    run: ScoreRun,
    as_of: date,
    s: Summary,
    p_alive: np.ndarray,
    next_90: np.ndarray,
    next_365: np.ndarray,
    order_value: np.ndarray,
    currencies: np.ndarray,
    segments: RFM,
) -> list[CustomerScore]:
    rows = []
    spend = segments.spend
    for i, customer_id in enumerate(s.customer_id.tolist()):
        x = int(s.frequency[i])
        # T runs to the day before the cut-off; count the days up to the cut-off itself.
        since_last = round(float(s.T[i] - s.recency[i]) * WEEK) + 1
        gap = float(s.recency[i]) * WEEK / x if x else None
        value = float(order_value[i])
        rows.append(
            CustomerScore(
                customer_id=customer_id,
                run=run,
                as_of=as_of,
                purchase_days=x + 1,
                days_since_last_purchase=since_last,
                p_alive=float(p_alive[i]),
                expected_orders_90d=float(next_90[i]),
                expected_order_value=Decimal(value).quantize(CENT),
                clv_12m=Decimal(float(next_365[i]) * value).quantize(CENT),
                currency=str(currencies[i]),
                rfm_r=int(segments.r_score[i]),
                rfm_f=int(segments.f_score[i]),
                rfm_m=int(segments.m_score[i]),
                rfm_segment=str(segments.segment[i]),
                reasons={
                    "rfm": [
                        rfm_reason(
                            days_since_last=since_last,
                            purchase_days=x + 1,
                            spend=float(spend[i]),
                            currency=str(currencies[i]),
                            mean_days_since_last=segments.mean_recency_days,
                            mean_purchase_days=segments.mean_frequency,
                            mean_spend=segments.mean_monetary,
                        )
                    ],
                    "p_alive": [
                        alive_reason(
                            purchase_days=x + 1, days_since_last=since_last, typical_gap_days=gap
                        )
                    ],
                    "clv_12m": [
                        value_reason(
                            expected_orders_12m=float(next_365[i]),
                            order_value=value,
                            currency=str(currencies[i]),
                            repeat=x > 0,
                        )
                    ],
                },
            )
        )
    return rows
