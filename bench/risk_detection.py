"""Risk detection on the demo merchant: precision, recall and alert volume of the default
rules and of the anomaly model; and the review-text signals on real Chinese reviews.

    OMP_NUM_THREADS=1 .venv/bin/python bench/risk_detection.py --customers 20000

Part 1 generates the demo merchant (``patron.demo.generate_demo``, seed 7), imports it into a
fresh SQLite ``PATRON_HOME`` through ``patron.ingest.services.import_file`` and reads it back
with ``patron.scoring.sources.load_sources`` and ``patron.risk.identities.load_identities``
(cached under ``bench/out/``; ``--fresh`` rebuilds). Then, as of the end of the history, it
runs ``detect(sources, as_of, DEFAULT_RULES)`` and ``anomalies(customer_features(...))`` and
prints per rule and for the model: alerts, alerts per 1,000 customers, and precision and
recall against the generator's problem customers, of any kind and of the kind the rule is
meant for.

Part 2 (skip with ``--no-reviews``) reads ``../shared/data/chinese_reviews/`` (label 1 =
positive) and prints the AUC of ``-sentiment(text)`` and of the abusive-review signals for
telling negative reviews from positive ones.

Last line: a JSON object with every figure.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.csv as pcsv
import pyarrow.dataset as ds
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from patron.intelligence.features import customer_features  # noqa: E402
from patron.intelligence.metrics import auc  # noqa: E402
from patron.intelligence.sources import Sources  # noqa: E402
from patron.risk.anomaly import anomalies  # noqa: E402
from patron.risk.detection import (  # noqa: E402
    DEFAULT_RULES,
    MEASURES,
    RuleSpec,
    detect,
    measure_values,
    review_text_flags,
)

OUT = ROOT / "bench" / "out"
REVIEWS = ROOT.parent / "shared" / "data" / "chinese_reviews"
REVIEW_FILES = ("online_shopping_10_cats.csv", "waimai_10k.csv")
TABLES = ("customers", "orders", "payments", "returns", "reviews", "tickets")
#: The problem kind of the demo generator each measure is meant to catch (none: no such
#: customers in the demo).
INTENDED: dict[str, str | None] = {
    "return_rate": "serial_returner",
    "return_count": "serial_returner",
    "quick_returns": "serial_returner",
    "cancel_after_ship": "frequent_canceller",
    "cancel_rate": "frequent_canceller",
    "one_star_burst": "malicious_reviewer",
    "abusive_reviews": "malicious_reviewer",
    "reviews_without_receipt": "malicious_reviewer",
    "rating_deviation": "malicious_reviewer",
    "chargebacks": "chargeback",
    "paylater_defaults": "chargeback",
    "cod_refusals": "chargeback",
    "shared_identity": None,
    "coupon_abuse": None,
}


@dataclass
class Demo:
    sources: Sources
    as_of: datetime
    problems: dict[str, set[int]]  # problem kind -> customer ids
    seconds: float  # to generate, import and read, when not cached


def build_demo(customers: int, seed: int, *, fresh: bool) -> Demo:
    """The demo merchant's sources, as the product reads them; cached in ``bench/out/``."""
    path = OUT / f"risk-demo-{customers}-{seed}"
    seconds = 0.0
    if fresh or not (path / "demo.json").exists():
        started = time.perf_counter()
        _import_demo(path, customers, seed)
        seconds = time.perf_counter() - started
    meta = json.loads((path / "demo.json").read_text())
    tables = {name: pq.read_table(path / f"{name}.parquet") for name in TABLES}
    events = path / "events.parquet"
    sources = Sources(
        **tables,
        events=pq.read_table(events) if events.exists() else None,
        extra={"identities": pq.read_table(path / "identities.parquet")},
    )
    problems = {kind: set(ids) for kind, ids in meta["problems"].items()}
    return Demo(sources, datetime.fromisoformat(meta["as_of"]), problems, seconds)


def _import_demo(path: Path, customers: int, seed: int) -> None:
    home = tempfile.mkdtemp(prefix="patron-bench-risk-")
    os.environ["PATRON_HOME"] = home
    os.environ.pop("DATABASE_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "patron.settings")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    from patron.customer.models import Customer
    from patron.demo import generate_demo
    from patron.ingest.schemas import LOAD_ORDER
    from patron.ingest.services import import_file
    from patron.risk.identities import load_identities
    from patron.scoring.sources import load_sources

    manifest = generate_demo(out_dir=Path(home) / "demo", customers=customers, seed=seed)
    for kind in LOAD_ORDER:
        summary = import_file(kind=kind, path=manifest.files[kind], source="demo")
        if not summary.ok:
            raise SystemExit(f"import of {kind} failed: {summary.errors[:3]}")
        print(f"imported {kind}", flush=True)
    sources = load_sources()
    path.mkdir(parents=True, exist_ok=True)
    for name in TABLES:
        pq.write_table(sources.table(name), path / f"{name}.parquet")
    if isinstance(sources.events, str):
        files = sorted(glob.glob(sources.events))
        pq.write_table(ds.dataset(files).to_table(), path / "events.parquet")
    pq.write_table(load_identities(), path / "identities.parquet")
    ids = dict(Customer.objects.filter(source="demo").values_list("external_id", "id"))
    problems = {
        kind: [ids[e] for e in external] for kind, external in manifest.problem_customers.items()
    }
    # the cut-off: just after the last second of the generated history
    as_of = manifest.as_of + timedelta(seconds=1)
    (path / "demo.json").write_text(json.dumps({"as_of": as_of.isoformat(), "problems": problems}))


@dataclass(frozen=True)
class Row:
    name: str
    alerts: int
    per_1000: float
    precision: float | None
    recall: float | None
    kind: str | None
    kind_precision: float | None
    kind_recall: float | None
    active_recall: float | None  # of the kind's customers with any volume in the window


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def score_row(
    name: str,
    flagged: set[int],
    customers: int,
    problems: dict[str, set[int]],
    kind: str | None,
    active: set[int] | None = None,
) -> Row:
    every = set().union(*problems.values())
    intended = problems.get(kind, set()) if kind else set()
    reachable = intended & active if active is not None else set()
    return Row(
        name=name,
        alerts=len(flagged),
        per_1000=1000 * len(flagged) / customers,
        precision=_ratio(len(flagged & every), len(flagged)),
        recall=_ratio(len(flagged & every), len(every)),
        kind=kind,
        kind_precision=_ratio(len(flagged & intended), len(flagged)) if kind else None,
        kind_recall=_ratio(len(flagged & intended), len(intended)) if kind else None,
        active_recall=_ratio(len(flagged & reachable), len(reachable)) if kind else None,
    )


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.0f} %"


def print_rows(rows: Iterable[Row]) -> None:
    header = (
        f"{'rule':24} {'alerts':>6} {'/1000':>6} {'prec':>5} {'recall':>6}  "
        f"{'meant for':18} {'prec':>5} {'recall':>6} {'active':>6}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r.name:24} {r.alerts:6d} {r.per_1000:6.1f} {_percent(r.precision):>5} "
            f"{_percent(r.recall):>6}  {r.kind or '—':18} {_percent(r.kind_precision):>5} "
            f"{_percent(r.kind_recall):>6} {_percent(r.active_recall):>6}"
        )


def _active(demo: Demo, rule: RuleSpec) -> set[int]:
    """Customers with any volume for the rule's measure in its window."""
    table = measure_values(demo.sources, demo.as_of, rule.measure, rule.window_days, rule.params)
    return set(table.column("customer_id").to_pylist())


def demo_part(
    customers: int, seed: int, *, fresh: bool, rules: Sequence[RuleSpec], sweep: bool
) -> dict[str, Any]:
    demo = build_demo(customers, seed, fresh=fresh)
    n = demo.sources.customers.num_rows
    print(
        f"demo merchant: {n} customers, {demo.sources.orders.num_rows} orders, as of {demo.as_of}"
    )
    print("problem customers: " + ", ".join(f"{k} {len(v)}" for k, v in demo.problems.items()))
    started = time.perf_counter()
    hits = detect(demo.sources, demo.as_of, rules)
    detect_seconds = time.perf_counter() - started
    started = time.perf_counter()
    features = customer_features(demo.sources, demo.as_of)
    model = anomalies(features)
    model_seconds = time.perf_counter() - started
    by_rule: dict[str, set[int]] = {rule.code: set() for rule in rules}
    for hit in hits:
        by_rule[hit.rule].add(hit.customer_id)
    rows = [
        score_row(
            f"{rule.code} {rule.measure}"[:24],
            by_rule[rule.code],
            n,
            demo.problems,
            INTENDED.get(rule.measure),
            _active(demo, rule),
        )
        for rule in rules
    ]
    flagged_rules = set().union(*by_rule.values())
    outliers = set(
        np.asarray(model.column("customer_id"))[np.asarray(model.column("is_outlier"))].tolist()
    )
    rows.append(score_row("all rules", flagged_rules, n, demo.problems, None))
    rows.append(score_row("model (isolation forest)", outliers, n, demo.problems, None))
    rows.append(
        score_row("model, not by any rule", outliers - flagged_rules, n, demo.problems, None)
    )
    rows.append(score_row("rules or model", flagged_rules | outliers, n, demo.problems, None))
    print("(recall: of all 4 problem kinds; 'meant for': of the rule's kind; 'active': of the")
    print(" rule's kind with any volume in the rule's window)")
    print_rows(rows)
    every = set().union(*demo.problems.values())
    ids = np.asarray(model.column("customer_id"))
    score = np.asarray(model.column("score"))
    model_auc = auc(np.isin(ids, list(every)), score)
    per_kind_auc = {
        kind: auc(np.isin(ids, list(members)), score) for kind, members in demo.problems.items()
    }
    print(
        f"model score AUC for problem customers: {model_auc:.3f} ("
        + ", ".join(f"{k} {v:.3f}" for k, v in per_kind_auc.items() if v is not None)
        + ")"
    )
    reasons: dict[str, int] = {}
    for listed in model.filter(model.column("is_outlier")).column("reasons").to_pylist():
        for reason in listed[:1]:
            reasons[reason["feature"]] = reasons.get(reason["feature"], 0) + 1
    top = sorted(reasons.items(), key=lambda item: -item[1])[:8]
    print("model outliers' first reason: " + ", ".join(f"{k} {v}" for k, v in top))
    print(f"detect {detect_seconds:.2f} s, features + model {model_seconds:.2f} s")
    if sweep:
        _sweep(demo, rules)
    return {
        "customers": n,
        "rows": [r.__dict__ for r in rows],
        "model_auc": model_auc,
        "model_auc_by_kind": per_kind_auc,
        "detect_seconds": round(detect_seconds, 2),
        "model_seconds": round(model_seconds, 2),
        "setup_seconds": round(demo.seconds, 2),
    }


def _neighbours(rule: RuleSpec) -> list[float]:
    """The rule's threshold and one step either side."""
    step = {"ratio": 0.1, "count": 1.0, "score": 0.5}[MEASURES[rule.measure].unit]
    return [t for t in (rule.threshold - step, rule.threshold, rule.threshold + step) if t > 0]


def _sweep(demo: Demo, rules: Sequence[RuleSpec]) -> None:
    """Each rule at windows of 90, 180 and 365 days and at thresholds one step either side:
    alerts, precision and recall against the kind the rule is meant for."""
    print("sweep: window, threshold -> alerts, precision, recall (of the rule's kind)")
    for rule in rules:
        kind = INTENDED.get(rule.measure)
        if kind is None:
            continue
        target = demo.problems[kind]
        cells = []
        for window in (90, 180, 365):
            table = measure_values(demo.sources, demo.as_of, rule.measure, window, rule.params)
            ids = np.asarray(table.column("customer_id"))
            value = np.asarray(table.column("value"))
            enough = np.asarray(table.column("volume")) >= rule.min_volume
            for threshold in _neighbours(rule):
                flagged = set(ids[enough & (value >= threshold)].tolist())
                hit = len(flagged & target)
                cells.append(
                    f"{window}d ≥{threshold:g}: {len(flagged)} "
                    f"{_percent(_ratio(hit, len(flagged)))} {_percent(_ratio(hit, len(target)))}"
                )
        print(f"{rule.code} (min volume {rule.min_volume}): " + "; ".join(cells))


def reviews_part() -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for name in REVIEW_FILES:
        table = pcsv.read_csv(REVIEWS / name)
        texts = [t.lstrip("\ufeff") if t else t for t in table.column("review").to_pylist()]
        negative = np.asarray(table.column("label")) == 0
        started = time.perf_counter()
        abusive, has_aspect, scores = review_text_flags(texts)
        seconds = time.perf_counter() - started
        off_topic = abusive | (
            (scores <= MEASURES["abusive_reviews"].default_params["sentiment"]) & ~has_aspect
        )
        shares = {
            "abusive_share_negative": float(abusive[negative].mean()),
            "abusive_share_positive": float(abusive[~negative].mean()),
            "off_topic_share_negative": float(off_topic[negative].mean()),
            "off_topic_share_positive": float(off_topic[~negative].mean()),
            "abusive_flagged_negative": float(negative[abusive].mean()) if abusive.any() else 0.0,
            "off_topic_flagged_negative": (
                float(negative[off_topic].mean()) if off_topic.any() else 0.0
            ),
        }
        aucs = {
            "auc_sentiment": auc(negative, -scores),
            "auc_abusive_lexicon": auc(negative, abusive),
            "auc_abusive_or_off_topic": auc(negative, off_topic),
        }
        figures[name] = {
            "reviews": len(texts),
            "negative_share": float(negative.mean()),
            **aucs,
            **shares,
            "seconds": round(seconds, 1),
        }
        print(
            f"{name}: {len(texts)} reviews ({100 * negative.mean():.0f} % negative); "
            f"AUC -sentiment {aucs['auc_sentiment']:.3f}; "
            f"abusive lexicon AUC {aucs['auc_abusive_lexicon']:.3f} "
            f"(flags {100 * shares['abusive_share_negative']:.1f} % of negatives, "
            f"{100 * shares['abusive_share_positive']:.1f} % of positives, "
            f"{100 * shares['abusive_flagged_negative']:.1f} % of those flagged are negative); "
            f"abusive or negative-without-aspect AUC {aucs['auc_abusive_or_off_topic']:.3f} "
            f"({100 * shares['off_topic_share_negative']:.1f} % / "
            f"{100 * shares['off_topic_share_positive']:.1f} %, "
            f"{100 * shares['off_topic_flagged_negative']:.1f} % negative); {seconds:.0f} s"
        )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--fresh", action="store_true", help="rebuild the cached demo")
    parser.add_argument("--no-reviews", action="store_true", help="skip the review part")
    parser.add_argument("--no-demo", action="store_true", help="skip the demo part")
    parser.add_argument(
        "--sweep", action="store_true", help="also try other windows and thresholds per rule"
    )
    opts = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    report: dict[str, Any] = {}
    if not opts.no_demo:
        report["demo"] = demo_part(
            opts.customers, opts.seed, fresh=opts.fresh, rules=DEFAULT_RULES, sweep=opts.sweep
        )
    if not opts.no_reviews:
        report["reviews"] = reviews_part()
    print(json.dumps(report, default=str))


if __name__ == "__main__":
    main()
