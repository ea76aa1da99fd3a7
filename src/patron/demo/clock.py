"""Time helpers: all times are ``int64`` Unix seconds (UTC); ``NA`` (-1) marks a missing time.

Local (Beijing) time of day matters for realism, so helpers move a time within its local day.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

NA = -1
UTC_OFFSET = 8 * 3600  # Asia/Shanghai has no daylight saving time
HOUR = 3600
DAY = 86_400
WEEK = 7 * DAY

#: Relative online-shopping activity by local hour (peaks late morning and 20:00-23:00).
SHOPPING_HOURS = np.array(
    [
        3.0,
        1.8,
        1.0,
        0.6,
        0.4,
        0.5,
        1.0,
        1.8,
        2.8,
        3.8,
        4.6,
        4.8,
        4.6,
        4.4,
        4.6,
        4.6,
        4.5,
        4.3,
        4.4,
        5.0,
        6.2,
        7.0,
        6.5,
        4.8,
    ],
    dtype=np.float64,
)
_SHOPPING_CDF = np.cumsum(SHOPPING_HOURS) / SHOPPING_HOURS.sum()

Times = NDArray[np.int64]


def local_midnight(t: Times) -> Times:
    """Start of the Beijing day containing each time, as UTC seconds."""
    return ((t + UTC_OFFSET) // DAY) * DAY - UTC_OFFSET


def local_hour(t: Times) -> NDArray[np.int64]:
    return ((t + UTC_OFFSET) % DAY) // HOUR


def shopping_time_of_day(rng: np.random.Generator, t: Times) -> Times:
    """Keep each time's Beijing date but redraw its time of day from the shopping-hours profile."""
    hours = np.searchsorted(_SHOPPING_CDF, rng.random(t.size), side="right")
    seconds = rng.integers(0, HOUR, size=t.size)
    return local_midnight(t) + hours * HOUR + seconds


def to_daytime(rng: np.random.Generator, t: Times, first: int = 8, last: int = 21) -> Times:
    """Move times outside ``first``..``last`` o'clock (Beijing) to the next morning's work hours."""
    hour = local_hour(t)
    out = t.copy()
    night = (hour < first) | (hour >= last)
    if night.any():
        base = local_midnight(t[night])
        base = np.where(hour[night] >= last, base + DAY, base)
        out[night] = base + first * HOUR + rng.integers(0, 3 * HOUR, size=int(night.sum()))
    return out


def valid(t: Times) -> NDArray[np.bool_]:
    return t != NA


def censor(t: Times, end: int) -> Times:
    """Times after ``end`` have not happened yet: they become ``NA``."""
    return np.where(t > end, NA, t)
