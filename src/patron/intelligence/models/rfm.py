"""RFM: recency, frequency and monetary value as quintile scores and as the eight classes
Chinese operations teams use (high/low on each of R, F, M against the shop's averages).

Pure numpy; no Django.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.stats import rankdata

FloatArray = npt.NDArray[np.float64]

#: (R high, F high, M high) -> (code, 中文名, English name)
CLASSES: dict[tuple[bool, bool, bool], tuple[str, str, str]] = {
    (True, True, True): ("important_value", "重要价值客户", "Important value"),
    (True, False, True): ("important_develop", "重要发展客户", "Important to develop"),
    (False, True, True): ("important_retain", "重要保持客户", "Important to retain"),
    (False, False, True): ("important_win_back", "重要挽留客户", "Important to win back"),
    (True, True, False): ("general_value", "一般价值客户", "General value"),
    (True, False, False): ("general_develop", "一般发展客户", "General to develop"),
    (False, True, False): ("general_retain", "一般保持客户", "General to retain"),
    (False, False, False): ("general_win_back", "一般挽留客户", "General to win back"),
}
LABELS: dict[str, tuple[str, str]] = {code: (zh, en) for code, zh, en in CLASSES.values()}


@dataclass(frozen=True)
class RFM:
    """Per customer: quintile scores 1–5 (5 best) and the eight-class code; plus the shop's
    averages the classes were judged against."""

    r_score: npt.NDArray[np.int64]
    f_score: npt.NDArray[np.int64]
    m_score: npt.NDArray[np.int64]
    segment: npt.NDArray[np.str_]
    spend: FloatArray
    mean_recency_days: float
    mean_frequency: float
    mean_monetary: float


def quintile_scores(values: FloatArray, *, higher_is_better: bool = True) -> npt.NDArray[np.int64]:
    """1–5 by rank (ties share the average rank), 5 for the best fifth."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return np.zeros(0, dtype=np.int64)
    ranks = rankdata(values if higher_is_better else -values, method="average")
    return np.minimum(5, 1 + np.floor(5 * (ranks - 0.5) / values.size).astype(np.int64))


def rfm(recency_days: FloatArray, frequency: FloatArray, monetary: FloatArray) -> RFM:
    """Score and classify customers. ``recency_days``: days since the last purchase (lower is
    better); ``frequency``: purchases; ``monetary``: spend. "High" means at least as good as
    the shop's average (for recency: at most as many days)."""
    recency = np.asarray(recency_days, dtype=np.float64)
    freq = np.asarray(frequency, dtype=np.float64)
    money = np.asarray(monetary, dtype=np.float64)
    means = (
        (float(recency.mean()), float(freq.mean()), float(money.mean()))
        if recency.size
        else (0.0, 0.0, 0.0)
    )
    r_high, f_high, m_high = recency <= means[0], freq >= means[1], money >= means[2]
    codes = np.array(
        [
            CLASSES[key][0]
            for key in zip(r_high.tolist(), f_high.tolist(), m_high.tolist(), strict=True)
        ],
        dtype=np.str_,
    )
    return RFM(
        r_score=quintile_scores(recency, higher_is_better=False),
        f_score=quintile_scores(freq),
        m_score=quintile_scores(money),
        segment=codes,
        spend=money,
        mean_recency_days=means[0],
        mean_frequency=means[1],
        mean_monetary=means[2],
    )
