""" "Buy till you die" (BTYD) models for non-contractual customer bases.

Implemented on plain numpy / scipy, with no Django dependency:

* :func:`rfm_summary` -- turn a transaction log into the per-customer sufficient
  statistics ``(x, t_x, T)`` plus mean repeat-transaction value.
* :class:`BetaGeo` -- the BG/NBD model of Fader, Hardie & Lee (2005),
  "Counting Your Customers the Easy Way: An Alternative to the Pareto/NBD Model",
  *Marketing Science* 24(2), 275-284.
* :class:`GammaGamma` -- the Gamma-Gamma model of monetary value, Fader & Hardie (2013),
  "The Gamma-Gamma Model of Monetary Value" (note, http://brucehardie.com/notes/025/),
  originally in Fader, Hardie & Lee (2005), "RFM and CLV: Using Iso-Value Curves for
  Customer Base Analysis", *Journal of Marketing Research* 42(4), 415-430.

Notation follows the papers: ``x`` is the number of repeat transactions in the
calibration period, ``t_x`` the time of the last transaction and ``T`` the length of
observation, both measured from the customer's first purchase.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import optimize, special

__all__ = ["BetaGeo", "GammaGamma", "Summary", "compress_rows", "rfm_summary"]

FloatArray = npt.NDArray[np.float64]
ArrayLike = npt.ArrayLike


# --------------------------------------------------------------------------------------
# RFM summary
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    """Per-customer calibration statistics (one entry per customer, sorted by id).

    Attributes
    ----------
    customer_id : ndarray
        Customer identifiers (sorted, unique).
    frequency : ndarray of float
        ``x``: number of repeat purchases (the first purchase is not a repeat).
    recency : ndarray of float
        ``t_x``: time of the last purchase, measured from the first purchase.
    T : ndarray of float
        Length of observation, from the first purchase to the end of the window.
    monetary_value : ndarray of float
        Mean value of the *repeat* purchases; 0 when ``x == 0``.
    """

    customer_id: npt.NDArray[Any]
    frequency: FloatArray
    recency: FloatArray
    T: FloatArray
    monetary_value: FloatArray

    def __len__(self) -> int:
        return int(self.customer_id.shape[0])


def _to_days(values: ArrayLike) -> FloatArray:
    """Convert datetime64 values (any unit) or numeric day counts to float days."""
    arr = np.asarray(values)
    if np.issubdtype(arr.dtype, np.datetime64):
        seconds = arr.astype("datetime64[s]").astype(np.int64)
        return seconds.astype(np.float64) / 86400.0
    return arr.astype(np.float64)


def rfm_summary(
    customer_ids: ArrayLike,
    times: ArrayLike,
    monetary: ArrayLike,
    *,
    cutoff: Any,
    unit_days: float = 7.0,
    merge_same_day: bool = True,
    period_end_inclusive: bool = True,
) -> Summary:
    """Compute ``(x, t_x, T, mean repeat value)`` per customer from a transaction log.

    Parameters
    ----------
    customer_ids : array_like
        Customer identifier of each transaction.
    times : array_like
        Transaction time, as ``numpy.datetime64`` or as float days since any origin.
    monetary : array_like
        Value of each transaction.
    cutoff : datetime64, str or float
        End of the calibration window (exclusive): only transactions strictly before
        ``cutoff`` count. Same kind as ``times`` (a date string is accepted when
        ``times`` are datetimes).
    unit_days : float, default 7.0
        Length of one time unit in days (7 = weeks, as in the CDNOW analyses).
    merge_same_day : bool, default True
        Merge a customer's purchases on the same calendar day into one transaction
        whose value is the sum (Fader, Hardie & Lee 2005 treat a day as the finest
        time resolution). Days are ``floor(times)`` for float input.
    period_end_inclusive : bool, default True
        When True, ``T`` is measured to the *last day* of the window, i.e.
        ``cutoff - 1 day``. This is the convention of the published CDNOW summary
        (calibration = 1997-01-01 .. 1997-09-30 inclusive, cut-off 1997-10-01; a
        customer first buying on 1997-01-01 has ``T = 272 / 7 = 38.86`` weeks).
        When False, ``T`` is measured to ``cutoff`` itself.

    Returns
    -------
    Summary
        One row per customer with at least one transaction before ``cutoff``.

    Notes
    -----
    Fully vectorised: one ``np.lexsort`` and a few ``np.unique`` / ``np.add.reduceat``
    calls, no Python loop over customers.
    """
    ids = np.asarray(customer_ids)
    raw_times = np.asarray(times)
    is_datetime = np.issubdtype(raw_times.dtype, np.datetime64)
    t = _to_days(raw_times)
    value = np.asarray(monetary, dtype=np.float64)
    if not (ids.shape == t.shape == value.shape) or ids.ndim != 1:
        raise ValueError("customer_ids, times and monetary must be 1-d arrays of equal length")

    if is_datetime:
        cutoff_days = float(_to_days(np.asarray(np.datetime64(cutoff)))[()])
    else:
        cutoff_days = float(cutoff)

    keep = t < cutoff_days
    ids, t, value = ids[keep], t[keep], value[keep]

    # Encode customers as dense integer codes (sorted unique ids).
    uniq_ids, codes = np.unique(ids, return_inverse=True)
    codes = codes.reshape(-1)

    if merge_same_day:
        t = np.floor(t)
    order = np.lexsort((t, codes))
    codes, t, value = codes[order], t[order], value[order]

    if merge_same_day and codes.size:
        new_group = np.empty(codes.size, dtype=bool)
        new_group[0] = True
        new_group[1:] = (codes[1:] != codes[:-1]) | (t[1:] != t[:-1])
        starts = np.flatnonzero(new_group)
        value = np.add.reduceat(value, starts)
        codes, t = codes[starts], t[starts]

    n_customers = uniq_ids.shape[0]
    if codes.size == 0:
        empty = np.zeros(0, dtype=np.float64)
        return Summary(uniq_ids, empty, empty.copy(), empty.copy(), empty.copy())

    _, first_idx, counts = np.unique(codes, return_index=True, return_counts=True)
    last_idx = first_idx + counts - 1
    first_t = t[first_idx]
    x = (counts - 1).astype(np.float64)
    t_x = (t[last_idx] - first_t) / unit_days
    end = cutoff_days - 1.0 if period_end_inclusive else cutoff_days
    T = (end - first_t) / unit_days

    total = np.add.reduceat(value, first_idx)
    repeat_total = total - value[first_idx]
    monetary_value = np.divide(
        repeat_total, x, out=np.zeros(n_customers, dtype=np.float64), where=x > 0
    )
    return Summary(
        customer_id=uniq_ids,
        frequency=x,
        recency=t_x,
        T=T,
        monetary_value=monetary_value,
    )


# --------------------------------------------------------------------------------------
# BG/NBD
# --------------------------------------------------------------------------------------


def _as_float(a: ArrayLike) -> FloatArray:
    return np.asarray(a, dtype=np.float64)


def _minimise(
    neg_ll: Any, start: FloatArray, bounds: list[tuple[float, float]]
) -> optimize.OptimizeResult:
    """L-BFGS-B on log-parameters, then again from its answer with tight tolerances: the
    second pass takes the fit to about 1e-6 relative for a fraction of a Nelder-Mead polish."""
    res = optimize.minimize(neg_ll, start, method="L-BFGS-B", bounds=bounds)
    return optimize.minimize(
        neg_ll,
        res.x,
        method="L-BFGS-B",
        bounds=bounds,
        options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 5000},
    )


def compress_rows(
    frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Identical ``(x, t_x, T)`` rows collapsed to one with a count, for ``BetaGeo.fit``'s
    ``weights`` (DESIGN.md §9: it pays off most on cohort data)."""
    stacked = np.stack([_as_float(frequency), _as_float(recency), _as_float(T)], axis=1)
    rows, counts = np.unique(stacked, axis=0, return_counts=True)
    return rows[:, 0], rows[:, 1], rows[:, 2], counts.astype(np.float64)


class BetaGeo:
    """BG/NBD model (Fader, Hardie & Lee 2005, "Counting Your Customers the Easy Way").

    While active, a customer buys according to a Poisson process with rate
    ``lambda ~ Gamma(r, alpha)``; after any (repeat) transaction the customer drops out
    with probability ``p ~ Beta(a, b)``.

    Attributes
    ----------
    params_ : dict
        Fitted parameters with keys ``r``, ``alpha``, ``a``, ``b``.
    log_likelihood_ : float
        Maximised (weighted) log-likelihood, eq. (6) of the paper summed over customers.
    """

    params_: dict[str, float]
    log_likelihood_: float

    def __init__(self) -> None:
        self.params_ = {}
        self.log_likelihood_ = float("nan")

    # -- likelihood ---------------------------------------------------------------------
    # Individual log-likelihood, eq. (6) of Fader, Hardie & Lee (2005):
    # L = B(a, b+x)/B(a, b) * Gamma(r+x) alpha^r / (Gamma(r) (alpha+T)^(r+x))
    #     + delta_{x>0} B(a+1, b+x-1)/B(a, b) * Gamma(r+x) alpha^r / (Gamma(r) (alpha+t_x)^(r+x)),
    # evaluated in log space (logaddexp of the two terms) inside ``fit``.

    def fit(
        self,
        frequency: ArrayLike,
        recency: ArrayLike,
        T: ArrayLike,
        weights: ArrayLike | None = None,
        *,
        initial_params: tuple[float, float, float, float] | None = None,
    ) -> BetaGeo:
        """Fit by maximum likelihood.

        Parameters
        ----------
        frequency, recency, T : array_like
            ``x``, ``t_x`` and ``T`` per customer (or per distinct row when ``weights``
            is given).
        weights : array_like, optional
            Number of customers sharing each ``(x, t_x, T)`` row, so callers can pass a
            compressed table. Defaults to 1 for every row.
        initial_params : tuple, optional
            Starting values ``(r, alpha, a, b)``. Defaults to ``(1, mean(T), 1, 1)``
            scaled sensibly; the optimisation is on log-parameters, with L-BFGS-B
            followed by a Nelder-Mead polish.

        Returns
        -------
        BetaGeo
            ``self``, with ``params_`` and ``log_likelihood_`` set.
        """
        x, t_x, t_end = _as_float(frequency), _as_float(recency), _as_float(T)
        w = np.ones_like(x) if weights is None else _as_float(weights)
        if np.any(x < 0) or np.any(t_x < 0) or np.any(t_x > t_end + 1e-9):
            raise ValueError("need x >= 0 and 0 <= t_x <= T")
        total_w = float(w.sum())
        # x, t_x and T take few distinct values (whole purchases, calendar days): evaluate the
        # special functions once per distinct value and gather, not once per customer.
        ux, ix = np.unique(x, return_inverse=True)
        ut, it = np.unique(t_x, return_inverse=True)
        uT, iT = np.unique(t_end, return_inverse=True)
        pos = x > 0
        upos = ux > 0

        def neg_ll(log_params: FloatArray) -> float:
            r, alpha, a, b = np.exp(log_params)
            head = special.gammaln(r + ux) - special.gammaln(r) + r * np.log(alpha)
            head += special.betaln(a, b + ux) - special.betaln(a, b)
            tail = np.where(upos, np.log(a) - np.log(np.where(upos, b + ux - 1.0, 1.0)), 0.0)
            power = r + x
            a3 = -power * np.log(alpha + uT)[iT]
            a4 = np.where(pos, tail[ix] - power * np.log(alpha + ut)[it], -np.inf)
            ll = head[ix] + np.logaddexp(a3, a4)
            value = -float(np.dot(w, ll)) / total_w
            return value if np.isfinite(value) else 1e300

        if initial_params is None:
            mean_rate = float(np.dot(w, x) / max(np.dot(w, t_end), 1e-12))
            initial_params = (1.0, 1.0 / max(mean_rate, 1e-6), 1.0, 1.0)
        start = np.log(np.asarray(initial_params, dtype=np.float64))
        bounds = [(-20.0, 20.0)] * 4
        res = _minimise(neg_ll, start, bounds)
        r, alpha, a, b = (float(v) for v in np.exp(res.x))
        self.params_ = {"r": r, "alpha": alpha, "a": a, "b": b}
        self.log_likelihood_ = -float(res.fun) * total_w
        return self

    def _params(self) -> tuple[float, float, float, float]:
        if not self.params_:
            raise RuntimeError("model is not fitted; call fit() first")
        p = self.params_
        return p["r"], p["alpha"], p["a"], p["b"]

    # -- predictions --------------------------------------------------------------------
    def expected_purchases(self, t: ArrayLike) -> FloatArray:
        """Expected repeat purchases of a new customer in ``(0, t]``, eq. (7).

        ``E[X(t)] = (a+b-1)/(a-1) * [1 - (alpha/(alpha+t))^r 2F1(r, b; a+b-1; t/(alpha+t))]``
        """
        _, alpha, a, b = self._params()
        tt = _as_float(t)
        tail = self._discounted_hyp(tt / (alpha + tt), np.zeros_like(tt))
        return np.asarray((a + b - 1.0) / (a - 1.0) * (1.0 - tail), dtype=np.float64)

    def _discounted_hyp(self, z: FloatArray, x: FloatArray) -> FloatArray:
        """``(1-z)^(r+x) 2F1(r+x, b+x; a+b+x-1; z)``, evaluated in its Euler-transformed form
        ``(1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z)``.

        The direct form overflows: for large ``x`` (a frequent buyer) the 2F1 grows without
        bound while the power term underflows, and their product comes out NaN. After
        Euler's transformation 2F1(a,b;c;z) = (1-z)^(c-a-b) 2F1(c-a, c-b; c; z) the series'
        numerator parameters stay small and fixed, so it converges quickly for any ``x``.
        """
        r, _, a, b = self._params()
        return np.asarray(
            (1.0 - z) ** (a - 1.0) * special.hyp2f1(a + b - 1.0 - r, a - 1.0, a + b + x - 1.0, z),
            dtype=np.float64,
        )

    def probability_alive(
        self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> FloatArray:
        """P(active at T | x, t_x, T), eq. (A10) of the technical appendix / Fader et al. (2005).

        ``P = 1 / (1 + delta_{x>0} a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x))``
        """
        r, alpha, a, b = self._params()
        x, t_x, t_end = _as_float(frequency), _as_float(recency), _as_float(T)
        return 1.0 / (1.0 + self._death_odds(r, alpha, a, b, x, t_x, t_end))

    @staticmethod
    def _death_odds(
        r: float, alpha: float, a: float, b: float, x: FloatArray, t_x: FloatArray, T: FloatArray
    ) -> FloatArray:
        pos = x > 0
        denom = np.where(pos, b + x - 1.0, 1.0)
        log_odds = np.log(a) - np.log(denom) + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
        return np.where(pos, np.exp(log_odds), 0.0)

    def conditional_expected_purchases(
        self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> FloatArray:
        """Expected repeat purchases in ``(T, T+t]`` given ``(x, t_x, T)``, eq. (10).

        ``E[Y(t) | x, t_x, T] =
        (a+b+x-1)/(a-1) * [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; t/(alpha+T+t))]
        / [1 + delta_{x>0} a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x)]``
        """
        r, alpha, a, b = self._params()
        tt = _as_float(t)
        x, t_x, t_end = _as_float(frequency), _as_float(recency), _as_float(T)
        z = tt / (alpha + t_end + tt)
        numer = (a + b + x - 1.0) / (a - 1.0) * (1.0 - self._discounted_hyp(z, x))
        return np.asarray(
            numer / (1.0 + self._death_odds(r, alpha, a, b, x, t_x, t_end)), dtype=np.float64
        )


# --------------------------------------------------------------------------------------
# Gamma-Gamma
# --------------------------------------------------------------------------------------


class GammaGamma:
    """Gamma-Gamma model of monetary value (Fader & Hardie 2013 note; Fader, Hardie & Lee 2005b).

    Individual transaction values are ``Gamma(p, nu)``; across customers
    ``nu ~ Gamma(q, gamma)``. The model conditions on ``x`` (repeat transactions) and
    ``m_x`` (their mean value) for customers with ``x > 0``.

    Attributes
    ----------
    params_ : dict
        Fitted parameters with keys ``p``, ``q``, ``gamma``.
    log_likelihood_ : float
        Maximised log-likelihood (eq. 3 of the note summed over customers, including the
        ``x^(px)`` Jacobian term).
    """

    params_: dict[str, float]
    log_likelihood_: float

    def __init__(self) -> None:
        self.params_ = {}
        self.log_likelihood_ = float("nan")

    # ln f(m_x | p, q, gamma; x), eq. (3) of Fader & Hardie (2013):
    # f = Gamma(px+q)/(Gamma(px) Gamma(q)) gamma^q m_x^(px-1) x^(px) / (gamma + m_x x)^(px+q),
    # evaluated inside ``fit``.

    def fit(
        self,
        frequency: ArrayLike,
        monetary_value: ArrayLike,
        weights: ArrayLike | None = None,
    ) -> GammaGamma:
        """Fit by maximum likelihood on customers with ``frequency > 0``.

        Parameters
        ----------
        frequency : array_like
            ``x``, number of repeat transactions.
        monetary_value : array_like
            ``m_x``, mean value of the repeat transactions (must be > 0 where ``x > 0``).
        weights : array_like, optional
            Row counts, as in :meth:`BetaGeo.fit`.

        Returns
        -------
        GammaGamma
            ``self``.
        """
        x_all, m_all = _as_float(frequency), _as_float(monetary_value)
        w_all = np.ones_like(x_all) if weights is None else _as_float(weights)
        mask = x_all > 0
        x, m, w = x_all[mask], m_all[mask], w_all[mask]
        if x.size == 0:
            raise ValueError("no customers with frequency > 0")
        if np.any(m <= 0):
            raise ValueError("monetary_value must be > 0 for customers with frequency > 0")
        total_w = float(w.sum())

        # What does not depend on the parameters is computed once; gammaln runs per distinct x.
        ux, ix = np.unique(x, return_inverse=True)
        log_m, log_x, mx = np.log(m), np.log(x), m * x

        def neg_ll(log_params: FloatArray) -> float:
            p, q, gamma = np.exp(log_params)
            upx = p * ux
            head = (special.gammaln(upx + q) - special.gammaln(upx))[ix]
            px = upx[ix]
            ll = head + (px - 1.0) * log_m + px * log_x - (px + q) * np.log(gamma + mx)
            value = -(float(np.dot(w, ll)) / total_w - special.gammaln(q) + q * np.log(gamma))
            return value if np.isfinite(value) else 1e300

        mean_m = float(np.dot(w, m) / total_w)
        start = np.log(np.array([1.0, 2.0, mean_m]))
        bounds = [(-20.0, 20.0)] * 3
        res = _minimise(neg_ll, start, bounds)
        p, q, gamma = (float(v) for v in np.exp(res.x))
        self.params_ = {"p": p, "q": q, "gamma": gamma}
        self.log_likelihood_ = -float(res.fun) * total_w
        return self

    def _params(self) -> tuple[float, float, float]:
        if not self.params_:
            raise RuntimeError("model is not fitted; call fit() first")
        return self.params_["p"], self.params_["q"], self.params_["gamma"]

    def conditional_expected_average_value(
        self, frequency: ArrayLike, monetary_value: ArrayLike
    ) -> FloatArray:
        """``E[M | p, q, gamma; m_x, x]``, eq. (5) of Fader & Hardie (2013).

        ``E = (q-1)/(px+q-1) * gamma p/(q-1) + px/(px+q-1) * m_x``
        = ``p (gamma + x m_x) / (px + q - 1)``; for ``x = 0`` it is the population mean
        ``p gamma / (q - 1)``. Requires ``q > 1``.
        """
        p, q, gamma = self._params()
        x, m = _as_float(frequency), _as_float(monetary_value)
        m = np.where(x > 0, m, 0.0)
        return np.asarray(p * (gamma + x * m) / (p * x + q - 1.0), dtype=np.float64)

    def customer_lifetime_value(
        self,
        betageo: BetaGeo,
        frequency: ArrayLike,
        recency: ArrayLike,
        T: ArrayLike,
        monetary_value: ArrayLike,
        *,
        horizon_periods: int,
        discount_rate_per_period: float = 0.0,
    ) -> FloatArray:
        """Expected (discounted) value of each customer's purchases over a horizon.

        ``CLV = sum_{k=1..H} (E[Y(k)|.] - E[Y(k-1)|.]) / (1+d)^k * E[M|.]``,
        with ``E[Y(.)|.]`` from :meth:`BetaGeo.conditional_expected_purchases`
        (eq. 10 of Fader, Hardie & Lee 2005) and ``E[M|.]`` from
        :meth:`conditional_expected_average_value`.

        Parameters
        ----------
        betageo : BetaGeo
            Fitted BG/NBD model (time unit = one period).
        frequency, recency, T, monetary_value : array_like
            ``x``, ``t_x``, ``T`` (in periods) and mean repeat value.
        horizon_periods : int
            Horizon ``H`` in periods.
        discount_rate_per_period : float, default 0
            ``d``. With ``d = 0`` this is exactly ``E[Y(H)|.] * E[M|.]``.

        Notes
        -----
        Approximation: purchases expected within period ``k`` are discounted as if
        they all occurred at the end of that period (discrete discounting), rather than
        the continuous-time discounted expected residual transactions (DERT) of Fader,
        Hardie & Lee (2005b). It also assumes spend is independent of the transaction
        process, as the Gamma-Gamma model does.
        """
        if horizon_periods < 0:
            raise ValueError("horizon_periods must be >= 0")
        x, t_x, t_end = _as_float(frequency), _as_float(recency), _as_float(T)
        value = self.conditional_expected_average_value(x, monetary_value)
        if horizon_periods == 0:
            return np.zeros(np.broadcast(x, t_x, t_end).shape, dtype=np.float64)
        if discount_rate_per_period == 0.0:
            purchases = betageo.conditional_expected_purchases(
                float(horizon_periods), x, t_x, t_end
            )
            return np.asarray(purchases * value, dtype=np.float64)
        ks = np.arange(0, horizon_periods + 1, dtype=np.float64)
        cum = betageo.conditional_expected_purchases(
            ks.reshape((-1,) + (1,) * np.ndim(x)), x, t_x, t_end
        )
        per_period = np.diff(cum, axis=0)
        factors = (1.0 + discount_rate_per_period) ** -ks[1:]
        discounted = np.tensordot(factors, per_period, axes=(0, 0))
        return np.asarray(discounted * value, dtype=np.float64)
