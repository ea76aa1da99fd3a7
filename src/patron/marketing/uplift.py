"""The statistics of a campaign's uplift, without Django: intervals for one group's rate or
mean, and for the difference between the treatment and the holdout.

* **Rates** (repurchase, reactivation): the Wilson score interval for one proportion, and
  Newcombe's hybrid score interval for a difference of two independent proportions (his
  method 10), which combines the two Wilson intervals. Unlike the textbook Wald interval
  (``d ± z·se``) it stays inside [-1, 1], does not collapse to a point when a group has 0 or
  all successes, and keeps close to its nominal coverage with small groups and rare events.
  Newcombe, R. G. (1998). Interval estimation for the difference between independent
  proportions: comparison of eleven methods. *Statistics in Medicine* 17, 873–890.
  Wilson, E. B. (1927). Probable inference, the law of succession, and statistical inference.
  *JASA* 22, 209–212.
* **Revenue per customer**: Welch's t interval for a difference of two means with unequal
  variances (Welch–Satterthwaite degrees of freedom), on per-customer revenue with every
  non-buyer counted as 0. Revenue is skewed (most customers spend nothing in the period), so
  the interval relies on the central limit theorem: trustworthy with dozens of buyers per
  group, rough below. Welch, B. L. (1947). The generalization of "Student's" problem when
  several different population variances are involved. *Biometrika* 34, 28–35.

All intervals are two-sided at ``confidence`` (95 % by default). An uplift is *significant*
when its interval leaves out 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from scipy import stats

CONFIDENCE = 0.95
#: Below this many members in a group, an evaluation warns that its interval is wide.
SMALL_GROUP = 30

WILSON = "Wilson score interval"
NEWCOMBE = "Newcombe hybrid score interval (method 10) for a difference of proportions"
STUDENT = "Student's t interval for a mean"
WELCH = "Welch's t interval for a difference of means (unequal variances)"


@dataclass(frozen=True)
class Interval:
    """An estimate with its two-sided interval at ``confidence``."""

    estimate: float
    low: float
    high: float
    confidence: float
    method: str

    @property
    def is_significant(self) -> bool:
        """Whether the interval leaves out 0 (for a difference: a real uplift, or a fall)."""
        return self.low > 0 or self.high < 0

    def scaled(self, factor: float) -> Interval:
        """The interval multiplied by a positive constant (units, or the Bloom adjustment)."""
        if factor <= 0:
            raise ValueError(f"factor must be positive, got {factor}")
        return Interval(
            self.estimate * factor, self.low * factor, self.high * factor, self.confidence,
            self.method,
        )  # fmt: skip


def _z(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    return float(stats.norm.ppf(0.5 + confidence / 2))


def _count(successes: int, n: int) -> None:
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"need 0 <= successes <= n, got {successes} of {n}")


def wilson_interval(successes: int, n: int, confidence: float = CONFIDENCE) -> Interval | None:
    """The Wilson score interval of the proportion ``successes / n``; None when ``n`` is 0.

    ``(p + z²/2n ± z·sqrt(p(1−p)/n + z²/4n²)) / (1 + z²/n)`` (Wilson 1927)."""
    _count(successes, n)
    if n == 0:
        return None
    z = _z(confidence)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    # At 0 or n successes one bound is exactly 0 or 1; rounding must not push it past.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return Interval(p, low, high, confidence, WILSON)


def newcombe_difference(
    successes_a: int, n_a: int, successes_b: int, n_b: int, confidence: float = CONFIDENCE
) -> Interval | None:
    """The difference of proportions ``p_a − p_b`` with Newcombe's hybrid score interval
    (1998, method 10); None when a group is empty.

    With ``(l_a, u_a)`` and ``(l_b, u_b)`` the Wilson intervals of each group:
    ``low = d − sqrt((p_a − l_a)² + (u_b − p_b)²)``,
    ``high = d + sqrt((u_a − p_a)² + (p_b − l_b)²)``."""
    a = wilson_interval(successes_a, n_a, confidence)
    b = wilson_interval(successes_b, n_b, confidence)
    if a is None or b is None:
        return None
    d = a.estimate - b.estimate
    low = d - math.sqrt((a.estimate - a.low) ** 2 + (b.high - b.estimate) ** 2)
    high = d + math.sqrt((a.high - a.estimate) ** 2 + (b.estimate - b.low) ** 2)
    return Interval(d, max(-1.0, low), min(1.0, high), confidence, NEWCOMBE)


@dataclass(frozen=True)
class Sample:
    """Summary of one group's per-customer values: size, mean and variance (``ddof=1``)."""

    n: int
    mean: float
    variance: float

    @classmethod
    def of(cls, values: Iterable[float], *, size: int | None = None) -> Sample:
        """The summary of ``values``, padded with zeros up to ``size`` members (a group's
        non-buyers spend 0: only the buyers' values need to be read)."""
        listed = [float(v) for v in values]
        n = len(listed) if size is None else size
        if n < len(listed):
            raise ValueError(f"size {n} is smaller than the {len(listed)} values given")
        if n == 0:
            return cls(0, 0.0, 0.0)
        total = math.fsum(listed)
        mean = total / n
        # Two-pass sum of squares about the mean: the zeros contribute mean² each.
        squares = math.fsum((v - mean) ** 2 for v in listed) + (n - len(listed)) * mean * mean
        return cls(n, mean, squares / (n - 1) if n > 1 else 0.0)


def mean_interval(sample: Sample, confidence: float = CONFIDENCE) -> Interval | None:
    """Student's t interval of one group's mean; None with fewer than two members."""
    if sample.n < 2:
        return None
    half = _t(confidence, sample.n - 1) * math.sqrt(sample.variance / sample.n)
    return Interval(sample.mean, sample.mean - half, sample.mean + half, confidence, STUDENT)


def _t(confidence: float, degrees: float) -> float:
    _z(confidence)  # checks the range
    return float(stats.t.ppf(0.5 + confidence / 2, degrees))


def welch_difference(a: Sample, b: Sample, confidence: float = CONFIDENCE) -> Interval | None:
    """The difference of means ``a − b`` with Welch's t interval; None when a group has fewer
    than two members. Degrees of freedom by Welch–Satterthwaite:
    ``(s²_a/n_a + s²_b/n_b)² / ((s²_a/n_a)²/(n_a−1) + (s²_b/n_b)²/(n_b−1))``.
    When neither group varies (everyone spent the same) the interval is the point itself."""
    if a.n < 2 or b.n < 2:
        return None
    d = a.mean - b.mean
    va, vb = a.variance / a.n, b.variance / b.n
    se = math.sqrt(va + vb)
    if se == 0:
        return Interval(d, d, d, confidence, WELCH)
    degrees = (va + vb) ** 2 / (va * va / (a.n - 1) + vb * vb / (b.n - 1))
    half = _t(confidence, degrees) * se
    return Interval(d, d - half, d + half, confidence, WELCH)


def precision_notes(treatment: int, holdout: int, *, events: int | None = None) -> list[str]:
    """Plain warnings about how far an uplift can be trusted, for the evaluation page."""
    notes = []
    if holdout == 0:
        notes.append(
            "No holdout: there is nothing to compare the treatment with, so the uplift cannot "
            "be measured."
        )
    elif min(treatment, holdout) < SMALL_GROUP:
        notes.append(
            f"Small groups ({treatment} treated, {holdout} held out): the interval is wide; "
            "read the uplift as a direction at most."
        )
    if events is not None and holdout > 0 and events < 10:
        notes.append(
            f"Only {events} customer(s) did what the goal counts: the interval rests on very "
            "few events."
        )
    return notes
