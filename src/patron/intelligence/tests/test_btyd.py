"""Tests for the BTYD models against the published CDNOW results (no database needed).

References
----------
Fader, Hardie & Lee (2005), "Counting Your Customers the Easy Way", Marketing Science
24(2): BG/NBD estimates r=0.243, alpha=4.414, a=0.793, b=2.426, LL=-9582.4.
Fader & Hardie (2013), "The Gamma-Gamma Model of Monetary Value": p=6.25, q=3.74,
gamma=15.44 on the 946 CDNOW sample customers with x > 0.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize, special

from patron.intelligence.models import btyd
from patron.intelligence.models.btyd import (
    BetaGeo,
    GammaGamma,
    Summary,
    compress_rows,
    rfm_summary,
)

DATA = Path("/work/shared/data/cdnow")
SUMMARY_CSV = DATA / "cdnow_customers_summary.csv"
SUMMARY_TX_CSV = DATA / "cdnow_customers_summary_with_transactions.csv"
SAMPLE_TXT = DATA / "CDNOW_sample.txt"

PUBLISHED_BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PUBLISHED_GG = {"p": 6.25, "q": 3.74, "gamma": 15.44}


def _require(path: Path) -> None:
    if not path.exists():
        pytest.skip(f"CDNOW data file not available: {path}")


def _assert_params(got: dict[str, float], expected: dict[str, float], rel: float) -> None:
    assert set(got) == set(expected)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=rel), (key, got[key], value)


@pytest.fixture(scope="module")
def summary_file() -> npt.NDArray[np.void]:
    _require(SUMMARY_CSV)
    return np.genfromtxt(SUMMARY_CSV, delimiter=",", names=True)


@pytest.fixture(scope="module")
def summary_tx_file() -> npt.NDArray[np.void]:
    _require(SUMMARY_TX_CSV)
    return np.genfromtxt(SUMMARY_TX_CSV, delimiter=",", names=True)


@pytest.fixture(scope="module")
def raw_sample() -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], np.ndarray, np.ndarray]:
    """CDNOW 1/10 sample: (master_id, sample_id, date, dollar_value)."""
    _require(SAMPLE_TXT)
    raw = np.loadtxt(SAMPLE_TXT, dtype=str)
    master_id = raw[:, 0].astype(np.int64)
    sample_id = raw[:, 1].astype(np.int64)
    dates = np.array([f"{s[:4]}-{s[4:6]}-{s[6:]}" for s in raw[:, 2]], dtype="datetime64[D]")
    dollars = raw[:, 4].astype(np.float64)
    return master_id, sample_id, dates, dollars


@pytest.fixture(scope="module")
def sample_summary(
    raw_sample: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
) -> tuple[Summary, npt.NDArray[np.int64]]:
    """Calibration summary (weeks 1-39 of 1997) and each row's index in the summary files."""
    master_id, sample_id, dates, dollars = raw_sample
    summary = rfm_summary(master_id, dates, dollars, cutoff="1997-10-01", unit_days=7.0)
    # The published files are keyed by sample_id (1..2357); map master_id -> file row.
    mapping = dict(zip(master_id.tolist(), sample_id.tolist(), strict=False))
    rows = np.array([mapping[int(c)] for c in summary.customer_id], dtype=np.int64) - 1
    return summary, rows


# --------------------------------------------------------------------------------------
# BG/NBD on the published summary
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fitted_bgnbd(summary_file: npt.NDArray[np.void]) -> BetaGeo:
    assert summary_file.shape[0] == 2357
    return BetaGeo().fit(summary_file["frequency"], summary_file["recency"], summary_file["T"])


def test_bgnbd_fit_matches_published(fitted_bgnbd: BetaGeo) -> None:
    _assert_params(fitted_bgnbd.params_, PUBLISHED_BGNBD, rel=0.005)
    assert fitted_bgnbd.log_likelihood_ == pytest.approx(-9582.4, abs=0.5)


def test_bgnbd_fit_with_compressed_weights(summary_file: npt.NDArray[np.void]) -> None:
    table = np.column_stack([summary_file["frequency"], summary_file["recency"], summary_file["T"]])
    uniq, counts = np.unique(table, axis=0, return_counts=True)
    assert uniq.shape[0] < table.shape[0]
    model = BetaGeo().fit(uniq[:, 0], uniq[:, 1], uniq[:, 2], weights=counts)
    _assert_params(model.params_, PUBLISHED_BGNBD, rel=0.005)
    assert model.log_likelihood_ == pytest.approx(-9582.4, abs=0.5)


def test_bgnbd_conditional_expectation_published(fitted_bgnbd: BetaGeo) -> None:
    # Fader, Hardie & Lee (2005), section 5: customer with x=2, t_x=30.43, T=38.86.
    value = fitted_bgnbd.conditional_expected_purchases(39.0, 2.0, 30.43, 38.86)
    assert float(value) == pytest.approx(1.226, abs=0.005)


def test_bgnbd_expected_purchases_published(fitted_bgnbd: BetaGeo) -> None:
    t = np.array([1.0, 3.0, 31.8571, 32.0, 78.0])
    expected = np.array([0.0532, 0.1506, 1.0405, 1.0437, 1.8576])
    np.testing.assert_allclose(fitted_bgnbd.expected_purchases(t), expected, atol=5e-4)


def test_bgnbd_probability_alive(fitted_bgnbd: BetaGeo) -> None:
    p = fitted_bgnbd.probability_alive(
        np.array([0.0, 2.0, 2.0]), np.array([0.0, 30.43, 5.0]), np.array([38.86] * 3)
    )
    assert p[0] == 1.0  # no repeat purchase: cannot have dropped out under BG/NBD
    assert 0.0 < p[2] < p[1] < 1.0  # older last purchase -> less likely alive


# --------------------------------------------------------------------------------------
# rfm_summary on the raw transactions
# --------------------------------------------------------------------------------------


def test_rfm_summary_reproduces_published_summary(
    sample_summary: tuple[Summary, np.ndarray], summary_tx_file: npt.NDArray[np.void]
) -> None:
    summary, rows = sample_summary
    assert len(summary) == 2357
    ref = summary_tx_file[rows]
    np.testing.assert_array_equal(summary.frequency, ref["x"])
    # The published file is rounded to 2 decimals: compare after the same rounding.
    np.testing.assert_allclose(np.round(summary.recency, 2), ref["t_x"], atol=1e-3)
    np.testing.assert_allclose(np.round(summary.T, 2), ref["T"], atol=1e-3)
    np.testing.assert_allclose(summary.recency, ref["t_x"], atol=0.005 + 1e-9)
    np.testing.assert_allclose(summary.T, ref["T"], atol=0.005 + 1e-9)
    # zbar = mean value of repeat transactions, same-day purchases merged by summing.
    # (Rounded half-up in the file; allow the full rounding error of 0.005.)
    np.testing.assert_allclose(summary.monetary_value, ref["zbar"], atol=0.005 + 1e-6)
    assert int(np.sum(summary.frequency > 0)) == 946


def test_bgnbd_fit_from_raw_transactions(sample_summary: tuple[Summary, np.ndarray]) -> None:
    summary, _ = sample_summary
    model = BetaGeo().fit(summary.frequency, summary.recency, summary.T)
    _assert_params(model.params_, PUBLISHED_BGNBD, rel=0.005)
    assert model.log_likelihood_ == pytest.approx(-9582.4, abs=0.5)


def test_gamma_gamma_matches_published(sample_summary: tuple[Summary, np.ndarray]) -> None:
    summary, _ = sample_summary
    gg = GammaGamma().fit(summary.frequency, summary.monetary_value)
    _assert_params(gg.params_, PUBLISHED_GG, rel=0.005)
    # Population mean of spend p*gamma/(q-1) (about $35) for a customer with no repeats.
    pop_mean = gg.params_["p"] * gg.params_["gamma"] / (gg.params_["q"] - 1.0)
    ev = gg.conditional_expected_average_value(np.array([0.0, 1.0]), np.array([0.0, 50.0]))
    assert ev[0] == pytest.approx(pop_mean)
    assert pop_mean < ev[1] < 50.0  # shrinkage toward the population mean


def test_customer_lifetime_value(
    sample_summary: tuple[Summary, np.ndarray], fitted_bgnbd: BetaGeo
) -> None:
    summary, _ = sample_summary
    gg = GammaGamma().fit(summary.frequency, summary.monetary_value)
    args = (summary.frequency, summary.recency, summary.T, summary.monetary_value)
    undiscounted = gg.customer_lifetime_value(fitted_bgnbd, *args, horizon_periods=52)
    direct = fitted_bgnbd.conditional_expected_purchases(
        52.0, summary.frequency, summary.recency, summary.T
    ) * gg.conditional_expected_average_value(summary.frequency, summary.monetary_value)
    np.testing.assert_allclose(undiscounted, direct, rtol=1e-12)
    discounted = gg.customer_lifetime_value(
        fitted_bgnbd, *args, horizon_periods=52, discount_rate_per_period=0.01
    )
    assert discounted.shape == undiscounted.shape
    assert np.all(discounted <= undiscounted + 1e-12)
    assert np.all(discounted > 0.5 * undiscounted)


# --------------------------------------------------------------------------------------
# Simulation / parameter recovery
# --------------------------------------------------------------------------------------


def _simulate_bgnbd(
    rng: np.random.Generator,
    n: int,
    r: float,
    alpha: float,
    a: float,
    b: float,
    T: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Simulate (x, t_x) under BG/NBD for customers observed for ``T`` after first purchase.

    Repeat purchases arrive at Poisson rate ``lambda ~ Gamma(r, rate=alpha)``; after each
    repeat purchase the customer dies with probability ``p ~ Beta(a, b)``, so the number
    of repeat purchases before death is Geometric(p) on {1, 2, ...}.
    """
    lam = rng.gamma(shape=r, scale=1.0 / alpha, size=n)
    p = rng.beta(a, b, size=n)
    max_purchases = rng.geometric(p)
    x = np.zeros(n)
    t_x = np.zeros(n)
    clock = np.zeros(n)
    active = np.ones(n, dtype=bool)
    while active.any():
        idx = np.flatnonzero(active)
        clock[idx] += rng.exponential(1.0 / lam[idx])
        happened = clock[idx] <= T[idx]
        hit = idx[happened]
        x[hit] += 1
        t_x[hit] = clock[hit]
        active[idx[~happened]] = False
        active[hit[x[hit] >= max_purchases[hit]]] = False
    return x, t_x


def test_bgnbd_recovers_simulated_parameters() -> None:
    rng = np.random.default_rng(20240601)
    n = 20_000
    true = {"r": 0.5, "alpha": 6.0, "a": 0.8, "b": 2.5}
    T = rng.uniform(26.0, 52.0, size=n)
    x, t_x = _simulate_bgnbd(rng, n, true["r"], true["alpha"], true["a"], true["b"], T)
    model = BetaGeo().fit(x, t_x, T)
    for key, value in true.items():
        assert model.params_[key] == pytest.approx(value, rel=0.2), (key, model.params_)
    # The fitted model reproduces the mean observed repeat count.
    predicted = BetaGeo()
    predicted.params_ = dict(model.params_)
    assert float(np.mean(predicted.expected_purchases(T))) == pytest.approx(
        float(np.mean(x)), rel=0.05
    )


def test_rfm_summary_float_days_and_merge() -> None:
    ids = np.array(["b", "a", "a", "a", "b", "a", "c"])
    days = np.array([3.0, 0.2, 0.7, 7.5, 10.0, 100.0, 50.0])
    value = np.array([5.0, 1.0, 2.0, 4.0, 6.0, 99.0, 1.0])
    s = rfm_summary(ids, days, value, cutoff=71.0, unit_days=7.0)
    np.testing.assert_array_equal(s.customer_id, ["a", "b", "c"])
    np.testing.assert_array_equal(s.frequency, [1.0, 1.0, 0.0])
    np.testing.assert_allclose(s.recency, [1.0, 1.0, 0.0])
    np.testing.assert_allclose(s.T, [10.0, 67.0 / 7.0, 20.0 / 7.0])
    np.testing.assert_allclose(s.monetary_value, [4.0, 6.0, 0.0])
    unmerged = rfm_summary(
        ids, days, value, cutoff=71.0, merge_same_day=False, period_end_inclusive=False
    )
    np.testing.assert_array_equal(unmerged.frequency, [2.0, 1.0, 0.0])
    np.testing.assert_allclose(unmerged.monetary_value, [3.0, 6.0, 0.0])
    np.testing.assert_allclose(unmerged.T, [(71.0 - 0.2) / 7.0, 68.0 / 7.0, 21.0 / 7.0])


def test_conditional_expectation_stays_finite_for_very_frequent_buyers() -> None:
    # given: the CDNOW parameters and customers far beyond CDNOW's range
    model = BetaGeo()
    model.params_ = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    x = np.array([2.0, 200.0, 2000.0, 5000.0])
    t_x = np.array([30.43, 300.0, 3000.0, 3000.0])
    big_t = np.array([38.86, 310.0, 3100.0, 3100.0])
    # when
    expected = model.conditional_expected_purchases(520.0, x, t_x, big_t)
    # then: finite, and a buyer who buys ~1.6 times a week keeps doing so while alive
    assert np.isfinite(expected).all()
    alive = model.probability_alive(x, t_x, big_t)
    assert expected[3] == pytest.approx(alive[3] * 520.0 * 5000.0 / 3100.0, rel=0.05)


# --------------------------------------------------------------------------------------
# Likelihoods: analytic gradients, the factored BG/NBD form, the large-data fitting path
# --------------------------------------------------------------------------------------


def _simulated_summary(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """BG/NBD customers observed for whole days (so rows repeat), in weeks."""
    rng = np.random.default_rng(seed)
    T = rng.integers(26 * 7, 52 * 7, size=n).astype(np.float64)
    x, t_x = _simulate_bgnbd(rng, n, 0.5, 6.0 / 7.0, 0.8, 2.5, T)
    return x, np.floor(t_x), T


def _direct_bgnbd_mean_neg_ll(
    log_params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, w: np.ndarray
) -> float:
    """Eq. (6) of Fader, Hardie & Lee (2005) term by term, as the paper writes it."""
    r, alpha, a, b = np.exp(log_params)
    a1 = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
    a2 = special.betaln(a, b + x) - special.betaln(a, b)
    a3 = -(r + x) * np.log(alpha + T)
    a4 = np.where(
        x > 0,
        np.log(a) - np.log(np.where(x > 0, b + x - 1.0, 1.0)) - (r + x) * np.log(alpha + t_x),
        -np.inf,
    )
    return float(-np.dot(w, a1 + a2 + np.logaddexp(a3, a4)) / w.sum())


@pytest.mark.parametrize("weighted", [False, True])
def test_bgnbd_gradient_matches_finite_differences(weighted: bool) -> None:
    # given: a simulated base, compressed or not, and random parameters around plausible values
    x, t_x, T = _simulated_summary(3000, seed=7)
    if weighted:
        x, t_x, T, w = compress_rows(x, t_x, T)
        assert x.size < 3000
    else:
        w = np.ones_like(x)
    objective = btyd._bgnbd_objective(x, t_x, T, w)
    rng = np.random.default_rng(11)
    for _ in range(5):
        theta = np.log([0.5, 6.0, 0.8, 2.5]) + rng.normal(0.0, 0.7, size=4)
        # when / then: the value is eq. (6), and the gradient is its derivative
        value, grad = objective(theta)
        assert value == pytest.approx(_direct_bgnbd_mean_neg_ll(theta, x, t_x, T, w), rel=1e-12)
        error = optimize.check_grad(
            lambda v: objective(v)[0], lambda v: objective(v)[1], theta, epsilon=1e-7
        )
        assert error < 1e-6 * max(1.0, float(np.linalg.norm(grad))), (theta, error, grad)


def test_gamma_gamma_gradient_matches_finite_differences() -> None:
    rng = np.random.default_rng(3)
    x = rng.integers(1, 30, size=2000).astype(np.float64)
    m = rng.gamma(4.0, 1.0 / rng.gamma(3.5, 1.0 / 150.0, size=2000) / x) * x / x
    w = rng.integers(1, 4, size=2000).astype(np.float64)
    objective = btyd._gamma_gamma_objective(x, m, w)
    for _ in range(5):
        theta = np.log([4.0, 3.5, 150.0]) + rng.normal(0.0, 0.7, size=3)
        p, q, gamma = np.exp(theta)
        direct = (
            special.gammaln(p * x + q)
            - special.gammaln(p * x)
            - special.gammaln(q)
            + q * np.log(gamma)
            + (p * x - 1.0) * np.log(m)
            + p * x * np.log(x)
            - (p * x + q) * np.log(gamma + m * x)
        )
        value, grad = objective(theta)
        assert value == pytest.approx(-np.dot(w, direct) / w.sum(), rel=1e-12)
        error = optimize.check_grad(
            lambda v: objective(v)[0], lambda v: objective(v)[1], theta, epsilon=1e-7
        )
        assert error < 1e-6 * max(1.0, float(np.linalg.norm(grad))), (theta, error, grad)


def test_pilot_fit_path_reaches_the_same_optimum(monkeypatch: pytest.MonkeyPatch) -> None:
    # given: the same data fitted directly and through the pilot-subsample path
    x, t_x, T = _simulated_summary(20_000, seed=5)
    rng = np.random.default_rng(5)
    m = rng.gamma(6.0, 1.0 / rng.gamma(3.7, 1.0 / 15.0, size=x.size))
    direct_bg = BetaGeo().fit(x, t_x, T)
    direct_gg = GammaGamma().fit(x, m)
    # when
    monkeypatch.setattr(btyd, "_PILOT_MIN_ROWS", 1000)
    monkeypatch.setattr(btyd, "_PILOT_ROWS", 2000)
    pilot_bg = BetaGeo().fit(x, t_x, T)
    pilot_gg = GammaGamma().fit(x, m)
    # then: the same maximum, to far better than the 1e-3 the benchmark asks for
    _assert_params(pilot_bg.params_, direct_bg.params_, rel=1e-6)
    _assert_params(pilot_gg.params_, direct_gg.params_, rel=1e-6)
    assert pilot_bg.log_likelihood_ == pytest.approx(direct_bg.log_likelihood_, rel=1e-12)


def test_compress_rows_matches_numpy_unique_rows() -> None:
    x, t_x, T = _simulated_summary(5000, seed=9)
    t_x = t_x / 7.0  # weeks: not whole numbers, the sorting path of the codes
    got = compress_rows(x, t_x, T)
    rows, counts = np.unique(np.column_stack([x, t_x, T]), axis=0, return_counts=True)
    for column, expected in zip(got, [rows[:, 0], rows[:, 1], rows[:, 2], counts], strict=True):
        np.testing.assert_array_equal(column, expected)


def test_conditional_expectation_by_distinct_pair_matches_per_customer(
    fitted_bgnbd: BetaGeo,
) -> None:
    # given: more than 4096 customers (the per-(x, T) path) and the same one by one
    x, t_x, T = _simulated_summary(40_000, seed=13)
    t_x, T = t_x / 7.0, T / 7.0
    batched = fitted_bgnbd.conditional_expected_purchases(13.0, x, t_x, T)
    assert fitted_bgnbd._numerator_by_pair(np.asarray(13.0), x, T) is not None
    singles = np.array(
        [
            fitted_bgnbd.conditional_expected_purchases(
                13.0, x[i : i + 1], t_x[i : i + 1], T[i : i + 1]
            )[0]
            for i in range(0, 40_000, 97)
        ]
    )
    np.testing.assert_allclose(batched[::97], singles, rtol=1e-13)


# --------------------------------------------------------------------------------------
# rfm_summary: the sorted fast path against the general path and a plain reference
# --------------------------------------------------------------------------------------


def _reference_summary(
    ids: list[int], days: list[int], values: list[int], cutoff: int, unit: float
) -> dict[int, tuple[float, float, float, float]]:
    """The definition, one customer at a time: same-day purchases merged, T to cutoff - 1."""
    per_day: dict[int, dict[int, float]] = defaultdict(lambda: defaultdict(float))
    for customer, day, value in zip(ids, days, values, strict=True):
        if day < cutoff:
            per_day[customer][day] += value
    out = {}
    for customer, by_day in per_day.items():
        ordered = sorted(by_day)
        x = len(ordered) - 1
        repeat = sum(by_day[d] for d in ordered[1:])
        out[customer] = (
            float(x),
            (ordered[-1] - ordered[0]) / unit,
            (cutoff - 1 - ordered[0]) / unit,
            repeat / x if x else 0.0,
        )
    return out


_logs = st.integers(1, 60).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(0, 8), min_size=n, max_size=n),
        st.lists(st.integers(0, 40), min_size=n, max_size=n),
        st.lists(st.integers(1, 500), min_size=n, max_size=n),
    )
)


@settings(max_examples=200, deadline=None)
@given(log=_logs, cutoff=st.integers(1, 45), seed=st.integers(0, 2**32 - 1))
def test_rfm_summary_sorted_fast_path_equals_general_path(
    log: tuple[list[int], list[int], list[int]], cutoff: int, seed: int
) -> None:
    # given: a random log (whole-number amounts, so sums are exact in any order), sorted by
    # (customer, day) and the same log shuffled
    ids, days, values = (np.array(column) for column in log)
    start = np.datetime64("2024-03-01", "D")
    order = np.lexsort((days, ids))
    shuffle = np.random.default_rng(seed).permutation(ids.size)
    cut = start + np.timedelta64(cutoff, "D")
    reference = _reference_summary(ids.tolist(), days.tolist(), values.tolist(), cutoff, 7.0)
    # when
    fast = rfm_summary(ids[order], start + days[order], values[order], cutoff=cut)
    general = rfm_summary(ids[shuffle], start + days[shuffle], values[shuffle], cutoff=cut)
    as_float = rfm_summary(ids[shuffle], days[shuffle] + 0.25, values[shuffle], cutoff=cutoff)
    # then: identical results, and they are the definition
    assert btyd._is_sorted(ids[order], days[order])
    for field in ("customer_id", "frequency", "recency", "T", "monetary_value"):
        np.testing.assert_array_equal(getattr(fast, field), getattr(general, field), field)
        np.testing.assert_array_equal(getattr(as_float, field), getattr(general, field), field)
    assert fast.customer_id.tolist() == sorted(reference)
    expected = np.array([reference[c] for c in sorted(reference)]).reshape(-1, 4)
    got = np.column_stack([fast.frequency, fast.recency, fast.T, fast.monetary_value])
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0.0)


@settings(max_examples=100, deadline=None)
@given(log=_logs, seed=st.integers(0, 2**32 - 1))
def test_rfm_summary_unmerged_sub_day_times_sorted_equals_shuffled(
    log: tuple[list[int], list[int], list[int]], seed: int
) -> None:
    # given: timestamps in seconds, string ids, no same-day merging
    ids_int, days, values = (np.array(column) for column in log)
    ids = np.array([f"c{i:02d}" for i in ids_int])
    rng = np.random.default_rng(seed)
    times = (
        np.datetime64("2024-03-01T00:00:00", "s") + days * 86400 + rng.integers(0, 86400, ids.size)
    )
    order = np.lexsort((times, ids))
    shuffle = rng.permutation(ids.size)
    # when
    fast, general = (
        rfm_summary(
            ids[rows],
            times[rows],
            values[rows],
            cutoff="2024-04-01",
            merge_same_day=False,
            period_end_inclusive=False,
        )
        for rows in (order, shuffle)
    )
    # then
    for field in ("customer_id", "frequency", "recency", "T", "monetary_value"):
        np.testing.assert_array_equal(getattr(fast, field), getattr(general, field), field)
    assert int(fast.frequency.sum() + len(fast)) == int(np.sum(times < np.datetime64("2024-04-01")))


def test_expected_purchases_stay_finite_when_dropout_is_nearly_fixed() -> None:
    # given: a fit at the edge of the parameter space (a, b in the millions, a/(a+b) = 0.44),
    # where (1-z)^(a-1) underflows and the 2F1 overflows
    model = BetaGeo()
    model.params_ = {"r": 0.27, "alpha": 0.06, "a": 3.5e6, "b": 4.4e6}
    x = np.array([0.0, 1.0, 5.0, 40.0])
    t_x = np.array([0.0, 10.0, 50.0, 100.0])
    big_t = np.array([100.0, 100.0, 100.0, 104.0])
    # when
    short = model.conditional_expected_purchases(13.0, x, t_x, big_t)
    long = model.conditional_expected_purchases(52.0, x, t_x, big_t)
    # then
    assert np.isfinite(short).all() and np.isfinite(long).all()
    assert (short >= 0).all() and (long >= short).all()


def test_the_large_parameter_limit_agrees_with_the_exact_value_where_both_exist() -> None:
    # given: large but still computable a, b
    exact = BetaGeo()
    exact.params_ = {"r": 0.8, "alpha": 5.0, "a": 400.0, "b": 600.0}
    z = np.array([0.1, 0.4, 0.7])
    x = np.array([0.0, 3.0, 10.0])
    # when
    direct = exact._discounted_hyp(z, x)
    q = (600.0 + x) / (400.0 + 600.0 + x - 1.0)
    limit = np.exp((0.8 + x) * (np.log1p(-z) - np.log1p(-q * z)))
    # then
    assert np.allclose(direct, limit, rtol=1e-2, atol=1e-4)
