"""Pareto/NBD against the published CDNOW estimates and against BG/NBD (no database).

Fader, Hardie & Lee (2005), "A Note on Implementing the Pareto/NBD Model in MATLAB"
(http://brucehardie.com/notes/008/): r=0.5533, alpha=10.5776, s=0.6061, beta=11.6650,
LL=-9594.98 on the 2,357 CDNOW sample customers (weeks 1-39 of 1997).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate

from patron.intelligence.models.btyd import BetaGeo, compress_rows
from patron.intelligence.models.pareto import ParetoNBD, hyp2f1_one
from patron.intelligence.tests.test_btyd import SUMMARY_CSV, _require

PUBLISHED = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}


@pytest.fixture(scope="module")
def cdnow() -> npt.NDArray[np.void]:
    _require(SUMMARY_CSV)
    return np.genfromtxt(SUMMARY_CSV, delimiter=",", names=True)


@pytest.fixture(scope="module")
def fitted(cdnow: npt.NDArray[np.void]) -> ParetoNBD:
    return ParetoNBD().fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])


def test_fit_reproduces_the_published_estimates(fitted: ParetoNBD) -> None:
    for name, value in PUBLISHED.items():
        assert fitted.params_[name] == pytest.approx(value, rel=1e-3), name
    assert fitted.log_likelihood_ == pytest.approx(-9594.98, abs=0.05)


def test_compressed_rows_give_the_same_fit(cdnow: npt.NDArray[np.void], fitted: ParetoNBD) -> None:
    x, t_x, big_t, weights = compress_rows(cdnow["frequency"], cdnow["recency"], cdnow["T"])
    compressed = ParetoNBD().fit(x, t_x, big_t, weights=weights)
    assert compressed.log_likelihood_ == pytest.approx(fitted.log_likelihood_, abs=1e-4)
    for name, value in fitted.params_.items():
        assert compressed.params_[name] == pytest.approx(value, rel=1e-3), name


def test_forecasts_agree_with_bgnbd_on_cdnow(
    cdnow: npt.NDArray[np.void], fitted: ParetoNBD
) -> None:
    # given: the two models of the same customers
    f, r, t = cdnow["frequency"], cdnow["recency"], cdnow["T"]
    bgnbd = BetaGeo().fit(f, r, t)
    # when: the 39-week holdout forecast per customer
    pareto = fitted.conditional_expected_purchases(39.0, f, r, t)
    bg = bgnbd.conditional_expected_purchases(39.0, f, r, t)
    # then: nearly the same (the paper's point: BG/NBD is the easier model, not another one)
    assert pareto.sum() == pytest.approx(bg.sum(), rel=0.02)
    assert np.corrcoef(pareto, bg)[0, 1] > 0.99


def test_a_purchase_at_the_end_of_observation_means_alive(fitted: ParetoNBD) -> None:
    alive = fitted.probability_alive([0, 5, 5, 20], [0, 38.86, 10, 10], [38.86] * 4)
    assert alive[1] == pytest.approx(1.0)
    # long silence after many purchases: more likely gone than after one purchase
    assert alive[3] < alive[2] < alive[0] < 1.0


def test_expected_purchases_is_the_integral_of_the_purchase_rate(fitted: ParetoNBD) -> None:
    # E[X(t)] = ∫0^t E[λ] P(alive at u) du = r/α ∫0^t (β/(β+u))^s du
    p = fitted.params_
    for t in (1.0, 39.0, 78.0):
        integral, _ = integrate.quad(lambda u: (p["beta"] / (p["beta"] + u)) ** p["s"], 0.0, t)
        assert fitted.expected_purchases(t) == pytest.approx(p["r"] / p["alpha"] * integral)


@settings(max_examples=60, deadline=None)
@given(
    x=st.integers(min_value=0, max_value=400),
    share=st.floats(min_value=0.0, max_value=1.0),
    big_t=st.floats(min_value=0.5, max_value=500.0),
)
def test_property_frequent_buyers_stay_finite(x: int, share: float, big_t: float) -> None:
    # given: any history, including hundreds of purchases (large hypergeometric parameters)
    model = ParetoNBD()
    for params in (
        {"r": 0.55, "alpha": 10.6, "s": 0.61, "beta": 11.7},
        {"r": 2.0, "alpha": 3.0, "s": 1.5, "beta": 40.0},
    ):
        model.params_ = params
        t_x = share * big_t if x else 0.0
        # when
        alive = model.probability_alive([x], [t_x], [big_t])
        expected = model.conditional_expected_purchases(10.0, [x], [t_x], [big_t])
        # then
        assert np.isfinite(alive).all() and 0.0 <= alive[0] <= 1.0
        assert np.isfinite(expected).all() and expected[0] >= 0.0


def _series(b: float, c: float, z: float) -> float:
    term = total = 1.0
    k = 0
    while term > 1e-17 * total:
        term *= (b + k) / (c + k) * z
        total += term
        k += 1
    return total


@pytest.mark.parametrize(
    ("b", "c", "z"),
    [
        (2.5, 104.5, 0.9136),
        (2.5, 204.5, 0.9136),
        (2.5, 404.5, 0.99),
        (0.6, 3.1, 0.5),
        (3.0, 54.0, 0.74),
    ],
)
def test_the_hypergeometric_function_where_scipy_overflows(b: float, c: float, z: float) -> None:
    value = hyp2f1_one(b, np.array([c]), np.array([z]))[0]
    assert value == pytest.approx(_series(b, c, z), rel=1e-12)


def test_fit_refuses_impossible_histories() -> None:
    with pytest.raises(ValueError, match="t_x <= T"):
        ParetoNBD().fit([1], [5.0], [4.0])
    with pytest.raises(RuntimeError, match="not fitted"):
        ParetoNBD().probability_alive([1], [1.0], [2.0])
