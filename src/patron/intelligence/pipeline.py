"""The whole scoring pipeline as of a cut-off: sources in, one score row per customer out.

Stages (DESIGN §4): features → purchase models (BG/NBD, Gamma-Gamma, RFM) → credit (LightGBM
or the fallback scorecard) → churn (LightGBM or BG/NBD, whichever back-tests better) → value
→ clusters → grades. Pure library: the caller extracts the sources and writes the result back.

The supervised models learn from the past: features as of ``cutoff - horizon`` and what
happened in ``[cutoff - horizon, cutoff)`` (bad outcomes for credit, no purchase for churn);
they are then applied to the features as of ``cutoff``. Nothing at or after the cut-off is
read, so any past date can be scored and back-tested.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from patron.intelligence import grading
from patron.intelligence import reason_columns as rc
from patron.intelligence.features import customer_features, with_sentiment
from patron.intelligence.labels import bad_outcomes, bought_before, churned
from patron.intelligence.models.churn import ChurnModel, compare_churn
from patron.intelligence.models.clusters import CustomerClusters
from patron.intelligence.models.credit import Scorecard, fit_credit, top_contributions
from patron.intelligence.purchases import (
    PurchaseLog,
    PurchaseModels,
    alive_at,
    fit_purchase_models,
    local_day,
    purchase_log,
)
from patron.intelligence.sources import Sources
from patron.intelligence.value import customer_value

Progress = Callable[[str], None]

#: Features the supervised models and clusters never see: identifiers and raw attributes that
#: would only let a model memorise customers.
NOT_MODEL_INPUTS = ("customer_id",)


@dataclass(frozen=True)
class Config:
    time_zone: str = "Asia/Shanghai"
    horizon_days: int = 180
    num_threads: int = 1
    seed: int = 0
    min_churn_positives: int = 30


@dataclass
class Result:
    scores: pa.Table  # one row per customer; reasons: a struct of JSON texts by score name
    parameters: dict[str, Any]
    seconds: dict[str, float] = field(default_factory=dict)
    clusters: list[dict[str, Any]] = field(default_factory=list)
    #: Score name -> how to give its reasons when they are read (see :class:`Explainer`).
    explainers: dict[str, Explainer] = field(default_factory=dict)
    #: What the explainers read: ``customer_id``, their models' features as of the cut-off
    #: and their ``only_where`` columns, one row per customer (in ``scores``' order).
    explainer_inputs: pa.Table | None = None


def _align(table: pa.Table, ids: np.ndarray, key: str = "customer_id") -> pa.Table:
    """``table``'s rows in the order of ``ids`` (missing ids get nulls)."""
    index = pc.index_in(pa.array(ids, pa.int64()), value_set=table.column(key))
    return table.take(index)


def certification_rank(table: pa.Table | None, ids: np.ndarray, cutoff: datetime) -> pa.Array:
    """Each customer's certification level rank in force at the cut-off (0: none).

    ``table`` has ``customer_id``, ``rank``, ``granted_at``, ``expires_at`` and ``ended_at``
    (null while in force): ``sources.extra["certifications"]``, absent for shops without any.
    """
    ranks = np.zeros(len(ids), dtype=np.int64)
    if table is None or table.num_rows == 0:
        return pa.array(ranks, pa.int64())
    instant = pa.scalar(cutoff, pa.timestamp("us", tz="UTC"))
    live = pc.and_(
        pc.and_(
            pc.less_equal(table.column("granted_at"), instant),
            pc.greater(table.column("expires_at"), instant),
        ),
        pc.fill_null(pc.greater(table.column("ended_at"), instant), True),
    )
    held = table.filter(live).group_by("customer_id").aggregate([("rank", "max")])
    if held.num_rows == 0:  # certifications exist, none in force then (a back-dated run)
        return pa.array(ranks, pa.int64())
    position = pc.index_in(pa.array(ids, pa.int64()), value_set=held.column("customer_id"))
    found = pc.fill_null(pc.take(held.column("rank_max"), pc.fill_null(position, 0)), 0)
    ranks = np.where(pc.is_valid(position).to_numpy(zero_copy_only=False), found.to_numpy(), 0)
    return pa.array(ranks.astype(np.int64), pa.int64())


def known_before(sources: Sources, cutoff: datetime) -> Sources:
    """Only customers who had registered before the cut-off (or whose registration date is
    unknown): a back-dated run must not score people who did not exist yet."""
    registered = sources.customers.column("registered_at")
    instant = pa.scalar(cutoff, pa.timestamp("us", tz="UTC"))
    keep = pc.or_kleene(pc.is_null(registered), pc.less(registered, instant))
    customers = sources.customers.filter(pc.fill_null(keep, True))
    return replace(sources, customers=customers)


def _matrix(features: pa.Table) -> pa.Table:
    return features.drop_columns([c for c in NOT_MODEL_INPUTS if c in features.column_names])


def run(
    sources: Sources,
    cutoff: datetime,
    *,
    policy: grading.GradePolicy,
    previous_grades: Mapping[int, str] | None = None,
    config: Config = Config(),
    progress: Progress | None = None,
) -> Result:
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def stage(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[name] = round(now - clock, 3)
        clock = now
        if progress:
            progress(name)

    past = cutoff - timedelta(days=config.horizon_days)
    sources = known_before(sources, cutoff)

    # Two threads. The purchase models need only the orders: they are fitted on the second
    # thread while DuckDB takes the features here (its two threads leave room: 4.3 s for a
    # million customers' features on two, 7 s on one). The credit model needs only the
    # features: it learns there while churn learns here (LightGBM, NumPy and Arrow release
    # the GIL). Then churn scores everyone on both, and the purchase models' reasons are
    # written there while the clusters and values are made here. The purchase models' and
    # credit's seconds are their own; the other stages are timed on this thread's clock.
    with ThreadPoolExecutor(1) as beside:
        purchase_job = beside.submit(timed, _purchase_models, sources.orders, cutoff, config)
        # the reviews' sentiment once for both cut-offs (its word list loads in about 1 s)
        sources = replace(sources, reviews=with_sentiment(sources.reviews))
        features = customer_features(sources, cutoff)
        past_features = customer_features(sources, past)
        stage("features")

        medians = _medians(features)
        credit_job = beside.submit(
            timed, credit_stage, sources, features, past_features, past, cutoff, medians, config
        )
        (log, purchases), purchase_seconds = purchase_job.result()
        stage("purchase_models")  # what the wait for them added (usually nothing) ...
        seconds["purchase_models"] = round(purchase_seconds, 3)  # ... shown as their own time

        ids = features.column("customer_id").to_numpy()
        buyers = _align(purchases.table, ids)

        def credit_done() -> int:
            credit_job.result()
            return 2 * config.num_threads  # the other thread's share is free again

        churn = churn_stage(
            sources,
            features,
            past_features,
            past,
            cutoff,
            buyers,
            log,
            medians,
            config,
            ready=credit_done,
        )
        bought_reasons = beside.submit(purchases.reasons)
        stage("churn")
        credit, credit_seconds = credit_job.result()
        stage("credit")  # what the wait for it added (usually nothing) ...
        seconds["credit"] = round(credit_seconds, 3)  # ... is shown as its own time

        scored = _assemble(features, buyers, credit, churn)
        clusters = CustomerClusters(random_state=config.seed).fit(scored)
        names = clusters.names()
        scored = scored.append_column("cluster", pa.array(clusters.labels_, pa.int64()))
        scored = scored.append_column(
            "cluster_name", pa.array([names[int(c)] for c in clusters.labels_], pa.string())
        )
        stage("clusters")

        value = customer_value(scored)
        for name in ("potential_value", "word_of_mouth"):
            scored = scored.append_column(name, value.column(name))
        scored = scored.append_column(
            "certification_rank",
            certification_rank(sources.extra.get("certifications"), ids, cutoff),
        )
        stage("value")

        grades = grading.grade(scored, policy, previous=previous_grades)
        scored = scored.append_column("grade", pa.array(grades.grade.astype(object), pa.string()))
        scored = scored.append_column("grade_composite", pa.array(grades.composite, pa.float64()))
        scored = scored.append_column("grade_reasons", grades.reasons)
        scored = scored.append_column(
            "reasons", _reasons(ids, purchases, bought_reasons.result(), grades, value)
        )
    stage("grades")

    explainers = {
        name: model.explainer
        for name, model in (("credit", credit), ("churn", churn))
        if model.explainer is not None
    }
    return Result(
        scores=scored,
        explainers=explainers,
        explainer_inputs=explainer_inputs(features, scored, explainers.values()),
        parameters={
            **purchases.parameters,
            "credit": credit.info,
            "churn": churn.info,
            "clusters": clusters.summary(),
            "grade_policy": policy.to_dict(),
            "grade_counts": grades.counts(),
        },
        seconds=seconds,
        clusters=[profile.to_dict() for profile in clusters.profiles_],
    )


# --------------------------------------------------------------------------------------
# Supervised stages
# --------------------------------------------------------------------------------------


def _purchase_models(
    orders: pa.Table, cutoff: datetime, config: Config
) -> tuple[PurchaseLog, PurchaseModels]:
    log = purchase_log(orders, time_zone=config.time_zone)
    return log, fit_purchase_models(log, local_day(cutoff, config.time_zone))


def timed[T](work: Callable[..., T], *args: Any, **kwargs: Any) -> tuple[T, float]:
    """``work(*args, **kwargs)`` and the seconds it took (for work handed to a thread)."""
    started = time.perf_counter()
    return work(*args, **kwargs), time.perf_counter() - started


@dataclass(frozen=True)
class Explainer:
    """A supervised score's reasons, given when someone reads them rather than for every
    customer at every run.

    The reasons of a credit score or a churn risk are the features that moved it most
    (TreeSHAP for LightGBM): about 10 s per model and a third of the stored reasons at a
    million customers, for pages that show a few customers a day. So a run keeps the fitted
    model and its inputs, and :func:`explain` gives the same reasons for the customers asked
    about, as of the run.
    """

    model: Any  # .contributions(X) -> (base, terms) and .feature_names_
    key: str  # the reasons' template key
    direction: int  # +1: what raised it; −1: what lowered it
    minimum: float  # smaller contributions are noise, not reasons
    medians: dict[str, float]  # the shop's medians of the model's features, at the run
    #: Where no feature qualifies: these reasons (None: the score has no reasons there).
    otherwise: tuple[dict[str, Any], ...] | None = None
    #: A score column: a row where it is null has no reasons (churn: customers who never bought).
    only_where: str | None = None

    @property
    def features(self) -> list[str]:
        return list(self.model.feature_names_)


def explainer_inputs(
    features: pa.Table, scores: pa.Table, explainers: Iterable[Explainer]
) -> pa.Table:
    """The columns ``explainers`` read: model features from ``features`` (as the models saw
    them: the score table replaces some, e.g. ``purchase_days``), the rest from ``scores``."""
    chosen = list(explainers)
    columns = {"customer_id": features.column("customer_id")}
    for explainer in chosen:
        for name in explainer.features:  # a scorecard rule may name a feature not computed
            present = name in features.column_names
            columns[name] = (
                features.column(name) if present else pa.nulls(features.num_rows, pa.float64())
            )
    for explainer in chosen:
        if explainer.only_where is not None:
            columns[explainer.only_where] = scores.column(explainer.only_where)
    return pa.table(columns)


def explain(explainer: Explainer, rows: pa.Table) -> list[list[dict[str, Any]] | None]:
    """Each row's reasons (stored form, ``patron.intelligence.explain``) by ``explainer``;
    ``rows`` holds the model's features and the ``only_where`` column, as of the run."""
    _, terms = explainer.model.contributions(rows)
    terms = np.asarray(terms, dtype=np.float64)
    if explainer.only_where is not None:
        scored = pc.is_valid(rows.column(explainer.only_where)).to_numpy(zero_copy_only=False)
        terms = np.where(scored[:, None], terms, 0.0)
    column = _top_reasons(
        rows,
        explainer.features,
        terms,
        explainer.direction,
        explainer.minimum,
        explainer.key,
        explainer.medians,
    )
    fallback = list(explainer.otherwise) if explainer.otherwise is not None else None
    return [fallback if text is None else json.loads(text) for text in column.to_pylist()]


@dataclass
class Scored:
    """A supervised model's output for every customer of the feature table (in its order)."""

    model: str  # lightgbm | scorecard | bgnbd
    probability: np.ndarray  # NaN where the model does not apply
    score: np.ndarray | None
    explainer: Explainer | None  # None: the score has no reasons of its own
    info: dict[str, Any]


def _ids(table: pa.Table) -> np.ndarray:
    return table.column("customer_id").to_numpy()


def _bought(features: pa.Table) -> np.ndarray:
    return np.nan_to_num(features.column("orders").to_numpy(zero_copy_only=False)) > 0


def credit_stage(
    sources: Sources,
    features: pa.Table,
    past_features: pa.Table,
    past: datetime,
    cutoff: datetime,
    medians: Mapping[str, float],
    config: Config,
) -> Scored:
    """Learn bad outcomes in ``[past, cutoff)`` from the features at ``past`` (customers who
    had bought by then), then score everyone at ``cutoff``."""
    labels = bad_outcomes(sources, past, cutoff)
    known = _bought(past_features)
    train = past_features.filter(pa.array(known))
    bad = _align(labels, _ids(train)).column("bad").to_numpy(zero_copy_only=False)
    y = np.asarray([bool(b) for b in bad], dtype=bool) if bad.dtype == object else bad
    model = fit_credit(_matrix(train), y, num_threads=config.num_threads, seed=config.seed)
    X = _matrix(features)
    if isinstance(model, Scorecard):
        base, points = model.contributions(X)
        raw = base + points.sum(axis=1)
    else:  # the same sum, without the contributions (those are for reading: explain())
        raw = model.scale.points_from_log_odds(model.log_odds(X))
    scale = model.scale
    score = scale.clip(raw)
    probability = scale.probability(np.clip(raw, scale.lowest, scale.highest))
    name = "scorecard" if isinstance(model, Scorecard) else "lightgbm"
    # Reasons for a credit score: what took points off, largest first.
    explainer = Explainer(
        model=model,
        key="credit.feature",
        direction=-1,
        minimum=MIN_CREDIT_POINTS,
        medians={f: medians[f] for f in model.feature_names_ if f in medians},
        otherwise=({"key": "credit.nothing", "params": {}},),
    )
    info = {
        "model": name,
        "train_rows": len(y),
        "train_bad": int(y.sum()),
        "label_window": [past.isoformat(), cutoff.isoformat()],
        **_jsonable(model.info_),
    }
    return Scored(name, probability, score, explainer, info)


def churn_stage(
    sources: Sources,
    features: pa.Table,
    past_features: pa.Table,
    past: datetime,
    cutoff: datetime,
    buyers: pa.Table,
    log: Any,
    medians: Mapping[str, float],
    config: Config,
    *,
    ready: Callable[[], int] | None = None,
) -> Scored:
    """LightGBM on the features, or BG/NBD's 1 − P(alive): whichever predicts better who
    bought nothing in ``[past, cutoff)``, judged on a random quarter of the customers the
    LightGBM model did not learn from. Only buyers get a churn probability.

    ``ready`` is called before LightGBM scores everyone and says how many threads it may
    use (the pipeline waits there for the credit model on the other thread)."""
    ids = _ids(past_features)
    population = bought_before(sources, past, ids)
    y_all = churned(sources, past, cutoff, ids[population])
    p_alive_now = buyers.column("p_alive").to_numpy(zero_copy_only=False).astype(np.float64)
    info: dict[str, Any] = {"population": int(population.sum()), "churned": int(y_all.sum())}
    fallback = Scored("bgnbd", 1.0 - p_alive_now, None, None, {**info, "model": "bgnbd"})
    positives, negatives = int(y_all.sum()), int((~y_all).sum())
    if min(positives, negatives) < config.min_churn_positives:
        fallback.info["why"] = "too few customers churned or stayed to learn from"
        return fallback
    try:
        past_alive = alive_at(log, local_day(past, config.time_zone))
    except ValueError:
        fallback.info["why"] = "too little history before the label window"
        return fallback
    rng = np.random.default_rng(config.seed)
    test = rng.random(len(y_all)) < 0.25
    X = _matrix(past_features.filter(pa.array(population)))
    model = ChurnModel(num_threads=config.num_threads, seed=config.seed)
    try:
        model.fit(X.filter(pa.array(~test)), y_all[~test])
    except ValueError as error:
        fallback.info["why"] = str(error)
        return fallback
    aligned = _align(past_alive, ids[population]).column("p_alive")
    p_alive_past = np.nan_to_num(aligned.to_numpy(zero_copy_only=False).astype(float), nan=1.0)
    comparison = compare_churn(
        y_all[test], model.probability(X.filter(pa.array(test))), p_alive_past[test]
    )
    info.update({"comparison": _jsonable(comparison), "lightgbm": _jsonable(model.info_)})
    if comparison["better"] != "lightgbm":
        return Scored("bgnbd", 1.0 - p_alive_now, None, None, {**info, "model": "bgnbd"})
    bought = np.isfinite(p_alive_now)
    threads = ready() if ready is not None else config.num_threads
    everyone = model.probability(_matrix(features), num_threads=threads)
    probability = np.where(bought, everyone, np.nan)
    # Reasons for a churn risk: what raised it, largest first (buyers only).
    explainer = Explainer(
        model=model,
        key="churn.feature",
        direction=+1,
        minimum=MIN_CHURN_LOG_ODDS,
        medians={f: medians[f] for f in model.feature_names_ if f in medians},
        only_where="churn_probability",
    )
    return Scored("lightgbm", probability, None, explainer, {**info, "model": "lightgbm"})


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float | int | str | bool) or value is None:
        return value
    return str(value)


# --------------------------------------------------------------------------------------
# Assembly and reasons
# --------------------------------------------------------------------------------------


def _assemble(features: pa.Table, buyers: pa.Table, credit: Scored, churn: Scored) -> pa.Table:
    """Features, purchase-model columns and the supervised scores, one row per customer."""
    table = features
    for name in buyers.column_names:
        if name == "customer_id":
            continue
        column = buyers.column(name)
        if name == "purchase_days":  # the model's count (merchant's days) replaces the feature's
            column = pc.fill_null(column, 0)
        if name in table.column_names:
            table = table.set_column(table.column_names.index(name), name, column)
        else:
            table = table.append_column(name, column)
    table = table.append_column("credit_score", pa.array(credit.score, pa.int64()))
    table = table.append_column("credit_model", pa.array([credit.model] * table.num_rows))
    probability = np.asarray(churn.probability, dtype=np.float64)
    table = table.append_column(
        "churn_probability", pa.array(probability, pa.float64(), mask=~np.isfinite(probability))
    )
    churn_model = np.where(np.isfinite(probability), churn.model, "")
    table = table.append_column("churn_model", pa.array(churn_model.astype(object), pa.string()))
    return table


#: Contributions smaller than these are noise, not reasons worth showing anyone.
MIN_CREDIT_POINTS = 5.0
MIN_CHURN_LOG_ODDS = 0.1


def _medians(features: pa.Table) -> dict[str, float]:
    medians = {}
    for name in features.column_names:
        if name in NOT_MODEL_INPUTS:
            continue
        values = features.column(name).to_numpy(zero_copy_only=False).astype(np.float64)
        finite = values[np.isfinite(values)]
        medians[name] = float(np.median(finite)) if finite.size else float("nan")
    return medians


def _top_reasons(
    X: pa.Table,
    names: Sequence[str],
    points: np.ndarray,
    direction: int,
    minimum: float,
    key: str,
    medians: Mapping[str, float],
    top: int = 3,
) -> pa.Array:
    """Per customer, up to ``top`` features whose contribution has the sign of ``direction``
    and at least ``minimum`` in size, largest first: a JSON list of stored reasons (null
    where none), formatted on reading (``explain.render``)."""
    columns, top_points = top_contributions(points, top, direction)
    keep = (columns >= 0) & (np.abs(top_points) >= minimum)
    values = np.column_stack(
        [X.column(name).to_numpy(zero_copy_only=False).astype(np.float64) for name in names]
    )
    top_values = np.take_along_axis(values, np.maximum(columns, 0), axis=1)
    middle = [medians.get(name) for name in names]
    slots = rc.feature_reasons(key, names, middle, columns, top_values, top_points, keep)
    return rc.listed(slots, empty=None)


def _reasons(
    ids: np.ndarray,
    purchases: PurchaseModels,
    purchase_reasons: Mapping[str, pa.Array],
    grades: grading.Grades,
    value: pa.Table,
) -> pa.StructArray:
    """Per customer, score name -> reasons (JSON text, see ``patron.intelligence.explain``),
    built column-wise (``reason_columns``). The credit and churn reasons are not here: they
    are given on reading, by the run's :class:`Explainer`."""
    position = pc.index_in(
        pa.array(ids, pa.int64()), value_set=purchases.table.column("customer_id")
    )
    bought = {name: column.take(position) for name, column in purchase_reasons.items()}
    return rc.by_score({"grade": grades.reasons, **bought, "value": value.column("value_reasons")})
