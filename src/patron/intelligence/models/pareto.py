"""The Pareto/NBD model (Schmittlein, Morrison & Colombo 1987), the first "buy till you die"
model, as a yardstick for BG/NBD (:mod:`patron.intelligence.models.btyd`).

While active, a customer buys by a Poisson process with rate ``lambda ~ Gamma(r, alpha)``.
Their lifetime is exponential with rate ``mu ~ Gamma(s, beta)``. Unlike BG/NBD, a customer
can drop out at any time, not only just after a purchase.

The likelihood and the predictions follow Fader, Hardie & Lee (2005), "A Note on
Implementing the Pareto/NBD Model in MATLAB" (http://brucehardie.com/notes/008/). The
Gaussian hypergeometric function there, ``2F1(r+s+x, s+1 or r+x; r+s+x+1; z)``, is taken
through Euler's transformation to ``2F1(1, ·; r+s+x+1; z)``. Its series has terms that only
shrink, so a frequent buyer's large ``x`` cannot overflow it. Everything else is computed
in log space.

Same notation and inputs as :class:`~patron.intelligence.models.btyd.BetaGeo`: ``x`` repeat
purchases, ``t_x`` the time of the last one, ``T`` the time observed, from the first
purchase; optional weights for compressed rows.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import special

from patron.intelligence.models.btyd import _minimise

__all__ = ["ParetoNBD", "hyp2f1_one"]

FloatArray = npt.NDArray[np.float64]


def hyp2f1_one(b: FloatArray | float, c: FloatArray, z: FloatArray) -> FloatArray:
    """``2F1(1, b; c; z)`` for ``0 < b < c`` and ``0 <= z < 1``.

    SciPy's ``hyp2f1`` gives ``inf`` or NaN here once ``c`` is large and ``z`` near 1, e.g.
    ``2F1(1, 2.5; 104.5; 0.91)``: a customer with a hundred purchases. Its power series has
    positive terms whose ratio ``(b+k)/(c+k) · z`` stays below 1, so where SciPy fails the
    series is summed instead. With ``c`` large, its first ratios are small and it converges
    in few terms.
    """
    b_ = np.broadcast_to(np.asarray(b, dtype=np.float64), np.shape(c))
    value = np.asarray(special.hyp2f1(1.0, b_, c, z), dtype=np.float64)
    failed = np.flatnonzero(~np.isfinite(value))
    if failed.size:
        bb, cc, zz = b_[failed], np.asarray(c)[failed], np.asarray(z)[failed]
        term, total = np.ones(failed.size), np.ones(failed.size)
        for k in range(_MAX_SERIES_TERMS):
            term = term * (bb + k) / (cc + k) * zz
            total += term
            if np.all(term <= 1e-17 * total):
                break
        value[failed] = total
    return value


_MAX_SERIES_TERMS = 100_000


def _log_tail(
    r: float, alpha: float, s: float, beta: float, x: FloatArray, t: FloatArray
) -> FloatArray:
    """``log`` of ``2F1(r+s+x, ·; r+s+x+1; z(t)) / (max(alpha, beta) + t)^(r+s+x)``, the
    term whose difference at ``t_x`` and ``T`` is the note's ``A0`` (eq. 2 and 3)."""
    c = r + s + x + 1.0
    if alpha >= beta:
        # 2F1(r+s+x, s+1; c; z) = (1-z)^(-s) 2F1(1, r+x; c; z), 1 - z = (beta+t)/(alpha+t)
        z = (alpha - beta) / (alpha + t)
        series = hyp2f1_one(r + x, c, z)
        return np.log(series) - (r + x) * np.log(alpha + t) - s * np.log(beta + t)
    # 2F1(r+s+x, r+x; c; z) = (1-z)^(1-r-x) 2F1(1, s+1; c; z), 1 - z = (alpha+t)/(beta+t)
    z = (beta - alpha) / (beta + t)
    series = hyp2f1_one(s + 1.0, c, z)
    return np.log(series) - (r + x - 1.0) * np.log(alpha + t) - (s + 1.0) * np.log(beta + t)


def _log_terms(
    params: tuple[float, float, float, float], x: FloatArray, t_x: FloatArray, T: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """The two terms of the bracket in the note's eq. (1), in logs: still active at ``T``,
    ``1/((α+T)^(r+x) (β+T)^s)``, and dropped out before, ``s/(r+s+x) · A0``. Their ratio is
    the odds of being alive (eq. 4)."""
    r, alpha, s, beta = params
    at_end = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
    upper, lower = _log_tail(r, alpha, s, beta, x, t_x), _log_tail(r, alpha, s, beta, x, T)
    # A0 = exp(upper) - exp(lower) > 0: t_x <= T, and the term falls with t
    with np.errstate(divide="ignore"):
        log_a0 = upper + np.log1p(-np.exp(np.minimum(lower - upper, 0.0)))
    return at_end, np.log(s) - np.log(r + s + x) + log_a0


def _log_likelihood(
    params: tuple[float, float, float, float], x: FloatArray, t_x: FloatArray, T: FloatArray
) -> FloatArray:
    """Each row's log-likelihood, the note's eq. (1):
    ``Γ(r+x) α^r β^s / Γ(r) · [1/((α+T)^(r+x) (β+T)^s) + s/(r+s+x) · A0]``."""
    r, alpha, s, beta = params
    at_end, dropped = _log_terms(params, x, t_x, T)
    return (
        special.gammaln(r + x)
        - special.gammaln(r)
        + r * np.log(alpha)
        + s * np.log(beta)
        + np.logaddexp(at_end, dropped)
    )


class ParetoNBD:
    """Pareto/NBD fitted by maximum likelihood.

    Attributes
    ----------
    params_ : dict
        ``r``, ``alpha``, ``s``, ``beta``.
    log_likelihood_ : float
        The maximised (weighted) log-likelihood.
    """

    params_: dict[str, float]
    log_likelihood_: float

    def __init__(self) -> None:
        self.params_ = {}
        self.log_likelihood_ = float("nan")

    def fit(
        self,
        frequency: npt.ArrayLike,
        recency: npt.ArrayLike,
        T: npt.ArrayLike,
        weights: npt.ArrayLike | None = None,
    ) -> ParetoNBD:
        """Fit on ``(x, t_x, T)`` per customer, or per distinct row with ``weights``.

        Optimised over log-parameters from ``(1, 1/mean rate, 1, 1)``: L-BFGS-B on finite
        differences, then again from its answer with tight tolerances. That is slower than
        BG/NBD's analytic gradient, and fine for a model that serves as a comparison.
        """
        x, t_x, t_end = (np.asarray(v, dtype=np.float64) for v in (frequency, recency, T))
        w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=np.float64)
        if x.size == 0:
            raise ValueError("no customers to fit")
        if np.any(x < 0) or np.any(t_x < 0) or np.any(t_x > t_end + 1e-9) or np.any(t_end <= 0):
            raise ValueError("need x >= 0, 0 <= t_x <= T and T > 0")
        total = float(w.sum())
        mean_rate = float(np.dot(w, x) / max(float(np.dot(w, t_end)), 1e-12))

        def negative(log_params: FloatArray) -> float:
            params = tuple(float(v) for v in np.exp(log_params))
            values = _log_likelihood(params, x, t_x, t_end)  # type: ignore[arg-type]
            value = -float(np.dot(w, values)) / total
            return value if np.isfinite(value) else 1e100

        start = np.log([1.0, 1.0 / max(mean_rate, 1e-6), 1.0, 1.0])
        result = _minimise(negative, start, [(-20.0, 20.0)] * 4)
        r, alpha, s, beta = (float(v) for v in np.exp(result.x))
        self.params_ = {"r": r, "alpha": alpha, "s": s, "beta": beta}
        self.log_likelihood_ = -float(result.fun) * total
        return self

    def _params(self) -> tuple[float, float, float, float]:
        if not self.params_:
            raise RuntimeError("model is not fitted; call fit() first")
        p = self.params_
        return p["r"], p["alpha"], p["s"], p["beta"]

    def probability_alive(
        self, frequency: npt.ArrayLike, recency: npt.ArrayLike, T: npt.ArrayLike
    ) -> FloatArray:
        """P(still active at ``T`` | x, t_x, T), the note's eq. (4):
        ``1 / (1 + s/(r+s+x) · (α+T)^(r+x) (β+T)^s · A0)``."""
        x, t_x, t_end = (np.asarray(v, dtype=np.float64) for v in (frequency, recency, T))
        at_end, dropped = _log_terms(self._params(), x, t_x, t_end)
        return np.asarray(special.expit(at_end - dropped), dtype=np.float64)

    def expected_purchases(self, t: npt.ArrayLike) -> FloatArray:
        """Expected purchases of a new customer in ``(0, t]``:
        ``r β / (α (s-1)) · [1 - (β/(β+t))^(s-1)]`` (``r t / α · β log(1 + t/β) / t`` at
        ``s = 1``)."""
        r, alpha, s, beta = self._params()
        tt = np.asarray(t, dtype=np.float64)
        if abs(s - 1.0) < 1e-9:
            return np.asarray(r * beta / alpha * np.log1p(tt / beta), dtype=np.float64)
        shrink = -np.expm1((s - 1.0) * np.log(beta / (beta + tt)))
        return np.asarray(r * beta / (alpha * (s - 1.0)) * shrink, dtype=np.float64)

    def conditional_expected_purchases(
        self, t: npt.ArrayLike, frequency: npt.ArrayLike, recency: npt.ArrayLike, T: npt.ArrayLike
    ) -> FloatArray:
        """Expected purchases in ``(T, T+t]`` given ``(x, t_x, T)``, the note's eq. (5):
        ``(r+x)(β+T) / ((α+T)(s-1)) · [1 - ((β+T)/(β+T+t))^(s-1)] · P(alive)``."""
        r, alpha, s, beta = self._params()
        x, t_end = np.asarray(frequency, dtype=np.float64), np.asarray(T, dtype=np.float64)
        tt = np.asarray(t, dtype=np.float64)
        alive = self.probability_alive(frequency, recency, T)
        if abs(s - 1.0) < 1e-9:
            horizon = (beta + t_end) * np.log1p(tt / (beta + t_end))
        else:
            ratio = np.log((beta + t_end) / (beta + t_end + tt))
            horizon = (beta + t_end) * -np.expm1((s - 1.0) * ratio) / (s - 1.0)
        return np.asarray((r + x) / (alpha + t_end) * horizon * alive, dtype=np.float64)
