"""Scoring speed against `lifetimes`, the de-facto BTYD library, on the same transactions.

    OMP_NUM_THREADS=1 .venv/bin/python bench/scoring.py --customers 1000000

Generates (once; cached under bench/out/) N customers buying by a BG/NBD process with
Gamma-Gamma spend over two years, about 10 orders each, as a Parquet file. Then, in one run:

- ours: read the Parquet columns, RFM summary (calendar days, same-day purchases merged),
  BG/NBD fit on compressed (x, t_x, T) rows, Gamma-Gamma fit, and scoring (P(alive), expected
  purchases in 90 days, 12-month value) for every customer;
- lifetimes 0.11 in its own virtual environment (made here with uv, so its pins never touch
  ours): summary_data_from_transaction_data, BetaGeoFitter, GammaGammaFitter, the same scores.

Prints the seconds per stage of both and, last,
``speedup_vs_lifetimes=<x> max_param_rel_diff=<y>`` (end-to-end time ratio; the largest
relative difference between the two libraries' fitted r, alpha, a, b, p, q, gamma).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from patron.intelligence.models.btyd import (  # noqa: E402
    BetaGeo,
    GammaGamma,
    compress_rows,
    rfm_summary,
)

OUT = ROOT / "bench" / "out"
START = np.datetime64("2024-01-01", "D")
DAYS = 730
CUTOFF = START + np.timedelta64(DAYS, "D")  # observation ends the day before
TRUE = {"r": 1.2, "alpha": 60.0, "a": 1.0, "b": 14.0, "p": 4.0, "q": 3.5, "gamma": 150.0}


def generate(customers: int, seed: int = 11, busier: float = 1.0) -> Path:
    """BG/NBD purchasing (rates per day) and Gamma-Gamma spend; first purchases in year one.
    ``busier`` multiplies every customer's purchase rate (more orders per customer)."""
    suffix = "" if busier == 1.0 else f"-x{busier:g}"
    path = OUT / f"transactions-{customers}-{seed}{suffix}.parquet"
    if path.exists():
        return path
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rate = busier * rng.gamma(TRUE["r"], 1.0 / TRUE["alpha"], customers)
    dropout = rng.beta(TRUE["a"], TRUE["b"], customers)
    nu = rng.gamma(TRUE["q"], 1.0 / TRUE["gamma"], customers)
    first = rng.integers(0, 365, customers).astype(np.float64)
    ids, times = [np.arange(customers)], [first]
    current, alive = first.copy(), np.ones(customers, dtype=bool)
    while alive.any():
        alive &= rng.random(customers) >= dropout  # may die after each purchase
        gap = rng.exponential(1.0 / np.maximum(rate, 1e-12))
        current = current + gap
        alive &= current < DAYS
        ids.append(np.flatnonzero(alive))
        times.append(current[alive])
    customer = np.concatenate(ids)
    day = np.floor(np.concatenate(times)).astype(np.int64)
    value = np.round(rng.gamma(TRUE["p"], 1.0 / nu[customer]), 2)
    order = np.lexsort((day, customer))
    table = pa.table(
        {
            "customer_id": pa.array(customer[order], pa.int64()),
            "day": pa.array((START + day[order]).astype("datetime64[D]"), pa.date32()),
            "value": pa.array(value[order], pa.float64()),
        }
    )
    pq.write_table(table, path)
    return path


def _column(table: pa.Table, name: str, dtype: str, as_dtype: str | None = None) -> np.ndarray:
    """One null-free fixed-width column as a numpy array, straight from the Arrow buffers.

    (pyarrow's own to_numpy imports pandas on first use -- seconds of imports with no
    bytecode cache, no part of reading the data.)
    """
    width = np.dtype(dtype).itemsize
    parts = []
    for chunk in table.column(name).chunks:
        if chunk.null_count:
            raise ValueError(f"{name} has nulls")
        data = chunk.buffers()[1]
        parts.append(np.frombuffer(data, dtype, len(chunk), chunk.offset * width))
    return np.concatenate(parts, dtype=as_dtype or dtype)


def ours(path: Path) -> tuple[dict[str, float], dict[str, float]]:
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    table = pq.ParquetFile(path).read(columns=["customer_id", "day", "value"])
    ids = _column(table, "customer_id", "int64")
    days = _column(table, "day", "int32", "int64").view("datetime64[D]")  # date32: days since 1970
    values = _column(table, "value", "float64")
    seconds["read"] = time.perf_counter() - started
    started = time.perf_counter()
    s = rfm_summary(ids, days, values, cutoff=CUTOFF, unit_days=1.0)
    seconds["summary"] = time.perf_counter() - started
    started = time.perf_counter()
    x, t_x, big_t, weights = compress_rows(s.frequency, s.recency, s.T)
    bg = BetaGeo().fit(x, t_x, big_t, weights=weights)
    seconds["bgnbd_fit"] = time.perf_counter() - started
    started = time.perf_counter()
    repeat = s.frequency > 0
    gg = GammaGamma().fit(s.frequency[repeat], s.monetary_value[repeat])
    seconds["gamma_gamma_fit"] = time.perf_counter() - started
    started = time.perf_counter()
    bg.probability_alive(s.frequency, s.recency, s.T)
    bg.conditional_expected_purchases(90.0, s.frequency, s.recency, s.T)
    year = bg.conditional_expected_purchases(365.0, s.frequency, s.recency, s.T)
    (year * gg.conditional_expected_average_value(s.frequency, s.monetary_value)).sum()
    seconds["score"] = time.perf_counter() - started
    return seconds, {**bg.params_, **gg.params_}


LIFETIMES = r"""
import json, sys, time
import numpy as np, pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter
from lifetimes.utils import summary_data_from_transaction_data
seconds = {}
t = time.perf_counter()
df = pd.read_parquet(sys.argv[1])
df["day"] = pd.to_datetime(df["day"])
seconds["read"] = time.perf_counter() - t
t = time.perf_counter()
s = summary_data_from_transaction_data(df, "customer_id", "day", monetary_value_col="value",
                                       observation_period_end=sys.argv[2], freq="D")
seconds["summary"] = time.perf_counter() - t
t = time.perf_counter()
bg = BetaGeoFitter().fit(s["frequency"], s["recency"], s["T"])
seconds["bgnbd_fit"] = time.perf_counter() - t
t = time.perf_counter()
r = s[s["frequency"] > 0]
gg = GammaGammaFitter().fit(r["frequency"], r["monetary_value"])
seconds["gamma_gamma_fit"] = time.perf_counter() - t
t = time.perf_counter()
bg.conditional_probability_alive(s["frequency"], s["recency"], s["T"])
bg.conditional_expected_number_of_purchases_up_to_time(90, s["frequency"], s["recency"], s["T"])
gg.customer_lifetime_value(bg, s["frequency"], s["recency"], s["T"], s["monetary_value"], time=12, freq="D", discount_rate=0.0)
seconds["score"] = time.perf_counter() - t
ggp = gg.params_.to_dict()
print(json.dumps({"seconds": seconds, "params": {**bg.params_.to_dict(), "p": ggp["p"], "q": ggp["q"], "gamma": ggp["v"]}}))
"""


def lifetimes_env() -> Path:
    venv = OUT / "lifetimes-venv"
    python = venv / "bin" / "python"
    if python.exists():
        return python
    uv = shutil.which("uv") or str(ROOT / ".tools" / "uv" / "bin" / "uv")
    subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    env = {**os.environ, "VIRTUAL_ENV": str(venv)}
    subprocess.run(
        [uv, "pip", "install", "-q", "lifetimes==0.11.3", "setuptools<81", "pyarrow"],
        check=True,
        env=env,
    )
    return python


def theirs(path: Path) -> tuple[dict[str, float], dict[str, float]]:
    python = lifetimes_env()
    end = str(CUTOFF - np.timedelta64(1, "D"))  # the last observed day, as our T convention
    result = subprocess.run(
        [str(python), "-c", LIFETIMES, str(path), end],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    data = json.loads(result.stdout.strip().splitlines()[-1])
    return data["seconds"], data["params"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=1_000_000)
    opts = parser.parse_args()
    path = generate(opts.customers)
    rows = pq.read_metadata(path).num_rows
    print(f"{opts.customers:,} customers, {rows:,} transactions ({path.name})", flush=True)
    our_seconds, our_params = ours(path)
    their_seconds, their_params = theirs(path)
    for stage in our_seconds:
        print(
            f"{stage:16} patron {our_seconds[stage]:8.2f} s   lifetimes {their_seconds.get(stage, float('nan')):8.2f} s"
        )
    total_ours, total_theirs = sum(our_seconds.values()), sum(their_seconds.values())
    print(f"{'total':16} patron {total_ours:8.2f} s   lifetimes {total_theirs:8.2f} s")
    keys = ("r", "alpha", "a", "b", "p", "q", "gamma")
    print("params patron    " + " ".join(f"{k}={our_params[k]:.6g}" for k in keys))
    print("params lifetimes " + " ".join(f"{k}={their_params[k]:.6g}" for k in keys))
    diff = max(abs(our_params[k] - their_params[k]) / abs(their_params[k]) for k in keys)
    print(f"speedup_vs_lifetimes={total_theirs / total_ours:.2f} max_param_rel_diff={diff:.3e}")


if __name__ == "__main__":
    main()
