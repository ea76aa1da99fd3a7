"""`patron models report` through the product: CDNOW imported, then back-tested, reproduces
Fader, Hardie & Lee (2005) on both databases (the data leaves the OLTP through ADBC)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from patron.errors import ValidationFailed
from patron.ingest.adapters.cdnow import cdnow_parts
from patron.ingest.services import import_parts
from patron.ingest.tests.conftest import shared_data
from patron.scoring.report import models_report

# ADBC reads through its own connection: the imported rows must be committed.
pytestmark = pytest.mark.django_db(transaction=True)

PUBLISHED = {
    "r": 0.243,
    "alpha": 4.414,
    "a": 0.793,
    "b": 2.426,
    "p": 6.25,
    "q": 3.74,
    "gamma": 15.44,
}


#: Fader, Hardie & Lee (2005), "A Note on Implementing the Pareto/NBD Model in MATLAB".
PUBLISHED_PARETO = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}


def test_cdnow_back_test_reproduces_the_paper(lake: Path) -> None:
    # given
    path = shared_data("cdnow", "CDNOW_sample.txt")
    import_parts(label="cdnow", source="cdnow", path=str(path), parts=cdnow_parts(path))
    # when
    report = models_report(as_of=date(1997, 10, 1), holdout_days=273)
    # then
    fitted = {**report["bgnbd"], **report["gamma_gamma"]}
    for name, value in PUBLISHED.items():
        assert fitted[name] == pytest.approx(value, rel=5e-3), name
    assert report["bgnbd"]["log_likelihood"] == pytest.approx(-9582.4, abs=0.5)
    assert report["customers"] == 2357
    assert report["gamma_gamma"]["repeat_customers"] == 946
    holdout = report["bgnbd"]["holdout"]
    assert holdout["actual_repeat_transactions"] == 1882
    assert holdout["correlation_per_customer"] == pytest.approx(0.626, abs=1e-3)
    # Pareto/NBD beside it: the published estimates, and nearly the same forecast
    pareto = report["pareto_nbd"]
    for name, value in PUBLISHED_PARETO.items():
        assert pareto[name] == pytest.approx(value, rel=1e-3), name
    assert pareto["log_likelihood"] == pytest.approx(-9594.98, abs=0.05)
    assert pareto["holdout"]["predicted_repeat_transactions"] == pytest.approx(
        holdout["predicted_repeat_transactions"], rel=0.02
    )
    assert pareto["holdout"]["actual_repeat_transactions"] == 1882


def test_report_refuses_when_there_is_nothing_to_fit(lake: Path) -> None:
    with pytest.raises(ValidationFailed, match="no purchases"):
        models_report(as_of=date(2025, 1, 1), holdout_days=90)
