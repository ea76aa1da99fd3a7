"""Credit score: the risk of a bad outcome in the next period, on a 350–950 scale with reasons.

* :class:`CreditModel` — a small LightGBM binary classifier (Ke et al. 2017, "LightGBM: A
  Highly Efficient Gradient Boosting Decision Tree", *NeurIPS* 30) with monotone constraints
  where the direction of risk is known (:data:`MONOTONE_RISK`), Platt-calibrated on held-out
  rows, mapped to points by :class:`ScoreScale`, explained per customer by the model's own
  additive feature contributions (TreeSHAP: Lundberg, Erion & Lee 2018, "Consistent
  Individualized Feature Attribution for Tree Ensembles", arXiv:1802.03888, which is what
  LightGBM's ``pred_contrib=True`` computes; :func:`booster_contributions` gets the same
  numbers about 10–20× faster on large tables by evaluating each tree once per distinct
  decision pattern).
* :class:`Scorecard` — the fallback when too few bad outcomes are labelled to learn from:
  fixed points per feature, documented in :data:`SCORECARD_RULES`.
* :func:`fit_credit` — picks one of the two.

Both answer the same questions: ``probability`` (of a bad outcome), ``score`` (350–950, higher
is better), ``contributions`` (per-feature score points that add up to the score), ``reasons``
(what pulled the score down) and ``strengths`` (what pushed it up). Inputs are Arrow tables of
per-customer features: every numeric or boolean column except ``customer_id`` is a feature,
nulls are missing values (NaN to LightGBM, neutral to the scorecard).

Pure numpy / LightGBM / scipy, no Django.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
from scipy import optimize, special
from sklearn.model_selection import train_test_split

from patron.intelligence import metrics

__all__ = [
    "MONOTONE_RISK",
    "SCORECARD_BASE_POINTS",
    "SCORECARD_RULES",
    "SCORE_SCALE",
    "BoostedClassifier",
    "CreditModel",
    "Explanation",
    "Reason",
    "ScoreScale",
    "Scorecard",
    "ScorecardRule",
    "booster_contributions",
    "feature_matrix",
    "fit_credit",
    "platt_scaling",
    "rank_reasons",
    "top_contributions",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: Direction of risk where it is known: +1 = a higher value means a higher risk of a bad
#: outcome (so a lower score), −1 = a lower risk. Features not listed are unconstrained
#: (spend, AOV, recency, payment-method shares … can point either way). Names missing from
#: the feature table are ignored.
MONOTONE_RISK: dict[str, int] = {
    "chargebacks": +1,
    "pay_later_defaults": +1,
    "cod_refusals": +1,
    "failed_payments": +1,
    "return_rate": +1,
    "quick_return_rate": +1,
    "cancel_rate": +1,
    "cancels_after_shipment": +1,
    "low_rating_share": +1,
    "orders": -1,
    "tenure_days": -1,
}


# --------------------------------------------------------------------------------------
# The score scale
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScoreScale:
    """Points-to-double-the-odds scaling of a probability of a bad outcome to a score
    (Siddiqi 2006, *Credit Risk Scorecards*, ch. 6).

    ``score = offset + factor × ln(odds)``, where ``odds = (1 − p) / p`` are the good:bad odds,
    ``factor = points_to_double_odds / ln 2`` and ``offset = base_score − factor ×
    ln(base_odds)``; the result is rounded to the nearest integer and clipped to
    ``[lowest, highest]``.

    With the defaults (600 points at odds 50:1, 50 points to double the odds): factor =
    72.1348, offset = 317.8072; odds 50:1 (p = 1.96 %) → 600, 100:1 → 650, 200:1 (p = 0.50 %)
    → 700; p = 10 % → 476, 25 % → 397; the floor 350 is reached at p ≥ 39 %, the ceiling 950
    at p ≤ 0.0156 % (odds 6400:1).
    """

    base_score: float = 600.0
    base_odds: float = 50.0
    points_to_double_odds: float = 50.0
    lowest: int = 350
    highest: int = 950

    @property
    def factor(self) -> float:
        return self.points_to_double_odds / math.log(2.0)

    @property
    def offset(self) -> float:
        return self.base_score - self.factor * math.log(self.base_odds)

    def points_from_log_odds(self, log_odds_bad: npt.ArrayLike) -> FloatArray:
        """Unrounded, unclipped score for a log-odds of a bad outcome ``ln(p / (1 − p))``."""
        return np.asarray(
            self.offset - self.factor * np.asarray(log_odds_bad, dtype=np.float64),
            dtype=np.float64,
        )

    def clip(self, points: npt.ArrayLike) -> IntArray:
        """Round to the nearest integer and clip to ``[lowest, highest]``."""
        rounded = np.rint(np.asarray(points, dtype=np.float64))
        return np.clip(rounded, self.lowest, self.highest).astype(np.int64)

    def score(self, p_bad: npt.ArrayLike) -> IntArray:
        """The integer score of a probability of a bad outcome."""
        p = np.clip(np.asarray(p_bad, dtype=np.float64), 1e-15, 1.0 - 1e-15)
        return self.clip(self.points_from_log_odds(special.logit(p)))

    def probability(self, score: npt.ArrayLike) -> FloatArray:
        """The inverse: probability of a bad outcome at a (possibly fractional) score."""
        log_odds_bad = (self.offset - np.asarray(score, dtype=np.float64)) / self.factor
        return np.asarray(special.expit(log_odds_bad), dtype=np.float64)


#: The scale every credit score in Patron is on.
SCORE_SCALE = ScoreScale()


@dataclass(frozen=True)
class Reason:
    """One feature's part in one customer's score.

    ``value`` is the customer's value of the feature (None when missing); ``points`` the
    signed effect in the model's units — score points for credit (negative = pulled the
    score down), calibrated log-odds of churning for churn (positive = raised the risk).
    """

    feature: str
    value: float | None
    points: float


@dataclass(frozen=True)
class Explanation:
    """Everything shown for a score, from one pass over the contributions: ``probability``
    of the event, ``score`` (credit only; None for churn), and per customer the ``reasons``
    (what made it worse) and ``strengths`` (what made it better)."""

    probability: FloatArray
    score: IntArray | None
    reasons: list[list[Reason]]
    strengths: list[list[Reason]]


# --------------------------------------------------------------------------------------
# Feature tables
# --------------------------------------------------------------------------------------


def _is_feature_type(data_type: pa.DataType) -> bool:
    return bool(
        pa.types.is_integer(data_type)
        or pa.types.is_floating(data_type)
        or pa.types.is_boolean(data_type)
        or pa.types.is_decimal(data_type)
    )


def feature_matrix(
    table: pa.Table, names: Sequence[str] | None = None
) -> tuple[FloatArray, list[str]]:
    """The feature columns of ``table`` as a float64 matrix (nulls → NaN) and their names.

    With ``names`` given, exactly those columns in that order (a missing one is an error that
    names it); otherwise every numeric or boolean column except ``customer_id``, in table
    order (text and timestamp columns are skipped).
    """
    if names is None:
        names = [
            f.name for f in table.schema if f.name != "customer_id" and _is_feature_type(f.type)
        ]
    else:
        missing = [name for name in names if name not in table.column_names]
        if missing:
            raise ValueError(f"feature table lacks column(s): {', '.join(missing)}")
    # Column-major: each column is one contiguous copy (row-major was 0.7-1.2 s per call at
    # 1M x 50, strided writes), and LightGBM reads column-major matrices as they are.
    matrix = np.empty((table.num_rows, len(names)), dtype=np.float64, order="F")
    for j, name in enumerate(names):
        column = table.column(name)
        if not _is_feature_type(column.type):
            raise ValueError(f"feature column {name!r} is {column.type}, not numeric")
        matrix[:, j] = column.cast(pa.float64()).to_numpy(zero_copy_only=False)
    return matrix, list(names)


def _outcomes(y: Any, n_rows: int) -> BoolArray:
    if isinstance(y, pa.Array | pa.ChunkedArray):
        if y.null_count:
            raise ValueError("labels contain nulls")
        y = y.to_numpy(zero_copy_only=False)
    outcome = np.asarray(y).astype(bool).ravel()
    if outcome.size != n_rows:
        raise ValueError(f"the feature table has {n_rows} rows but there are {outcome.size} labels")
    return outcome


def top_contributions(
    points: FloatArray, top: int, direction: int
) -> tuple[npt.NDArray[np.int64], FloatArray]:
    """Vectorised core of the reasons: per row, the columns of the ``top`` points with the
    sign of ``direction`` (+1: largest positive first; −1: most negative first; ties in
    column order), as ``(columns, points)`` arrays of shape (n, top); a slot with no such
    feature has column −1 and points 0. For callers that format a million rows themselves."""
    if top < 0:
        raise ValueError("top must be >= 0")
    signed = np.where(points * direction > 0, points * direction, 0.0)
    n_columns = signed.shape[1]
    if 0 < top < n_columns:
        # Only the few largest matter: partition rather than sort every row (a million rows
        # × 50 features). A row whose ``top``-th largest value is tied with a value further
        # on is sorted whole, so that ties still go in column order.
        kth = -np.partition(-signed, top - 1, axis=1)[:, top - 1]
        ties = (signed >= kth[:, None]).sum(axis=1) > top
        candidate = np.argpartition(-signed, top - 1, axis=1)[:, :top]
        candidate.sort(axis=1)  # column order, so the stable sort below breaks ties by it
        rank = np.argsort(-np.take_along_axis(signed, candidate, axis=1), axis=1, kind="stable")
        order = np.take_along_axis(candidate, rank, axis=1)
        tied = np.flatnonzero(ties & (kth > 0))
        if tied.size:
            order[tied] = np.argsort(-signed[tied], axis=1, kind="stable")[:, :top]
    else:
        order = np.argsort(-signed, axis=1, kind="stable")[:, :top]
    top_points = np.take_along_axis(points, order, axis=1)
    keep = np.take_along_axis(signed, order, axis=1) > 0
    return np.where(keep, order, -1).astype(np.int64), np.where(keep, top_points, 0.0)


def rank_reasons(
    names: Sequence[str],
    values: FloatArray,
    points: FloatArray,
    top: int,
    direction: int,
) -> list[list[Reason]]:
    """Per row, up to ``top`` features whose points have the sign of ``direction``, largest
    magnitude first (ties: table order), as :class:`Reason` objects."""
    columns, top_points = top_contributions(points, top, direction)
    top_values = np.take_along_axis(values, np.maximum(columns, 0), axis=1)
    value_objects = top_values.astype(object)
    value_objects[np.isnan(top_values)] = None
    column_names = list(names)
    return [
        [
            Reason(column_names[j], None if v is None else float(v), p)
            for j, v, p in zip(js, vs, ps, strict=True)
            if j >= 0
        ]
        for js, vs, ps in zip(
            columns.tolist(), value_objects.tolist(), top_points.tolist(), strict=True
        )
    ]


# --------------------------------------------------------------------------------------
# Calibration
# --------------------------------------------------------------------------------------


def platt_scaling(margin: npt.ArrayLike, y: npt.ArrayLike) -> tuple[float, float]:
    """Fit ``P(y = 1 | m) = 1 / (1 + exp(−(a m + b)))`` to held-out raw margins ``m``.

    Platt (1999), "Probabilistic Outputs for Support Vector Machines and Comparisons to
    Regularized Likelihood Methods", with his smoothed targets ``(N₊ + 1)/(N₊ + 2)`` and
    ``1/(N₋ + 2)`` against overfitting small calibration sets, and the numerically stable
    log-loss of Lin, Lin & Weng (2007), "A Note on Platt's Probabilistic Outputs for Support
    Vector Machines", *Machine Learning* 68(3). Our sign convention has ``a > 0``; ``a`` is
    kept ≥ 1e-3 so the calibrated probability is strictly increasing in the margin (and the
    model's monotone constraints survive calibration).
    """
    m = np.asarray(margin, dtype=np.float64).ravel()
    outcome = np.asarray(y).astype(bool).ravel()
    n_pos = float(outcome.sum())
    n_neg = float(outcome.size - n_pos)
    target = np.where(outcome, (n_pos + 1.0) / (n_pos + 2.0), 1.0 / (n_neg + 2.0))

    def loss(params: FloatArray) -> tuple[float, FloatArray]:
        a, b = params
        z = a * m + b
        value = float(np.sum(np.logaddexp(0.0, z) - target * z))
        residual = special.expit(z) - target
        return value, np.array([float(residual @ m), float(residual.sum())])

    res = optimize.minimize(
        loss,
        np.array([1.0, 0.0]),
        jac=True,
        method="L-BFGS-B",
        bounds=[(1e-3, 1e3), (-1e3, 1e3)],
    )
    return float(res.x[0]), float(res.x[1])


# --------------------------------------------------------------------------------------
# Contributions at scale
# --------------------------------------------------------------------------------------

#: Below this many rows ``booster_contributions`` calls ``pred_contrib`` directly.
DEDUPLICATE_MIN_ROWS = 5000
#: Trees with more split nodes than this are coded with ``np.unique`` instead of a lookup table.
_MAX_TABLE_BITS = 20
#: Rows per chunk of the deduplicated path.
_CHUNK_ROWS = 250_000
#: LightGBM's ``kZeroThreshold`` (a float32 1e-35): |x| at most this is "zero" for missing values.
_ZERO_THRESHOLD = float(np.float32(1e-35))

SplitNode = tuple[int, float, bool, str]


def _split_nodes(tree: Mapping[str, Any]) -> list[SplitNode] | None:
    """The tree's split nodes as (feature, threshold, default_left, missing_type), or None
    when one is not a numerical ``<=`` split (categorical splits are not reproduced here)."""
    nodes: list[SplitNode] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        if "leaf_index" in node or "split_feature" not in node:
            continue
        if node["decision_type"] != "<=":
            return None
        nodes.append(
            (
                int(node["split_feature"]),
                float(node["threshold"]),
                bool(node["default_left"]),
                str(node["missing_type"]),
            )
        )
        stack.extend([node["left_child"], node["right_child"]])
    return nodes


class _Columns:
    """The feature columns as LightGBM's split decisions see them, prepared once per call:
    contiguous, with NaN read as 0 where the missing type is not NaN, and the masks."""

    def __init__(self, matrix: FloatArray) -> None:
        self.raw = np.asfortranarray(matrix, dtype=np.float64)
        self._prepared: dict[int, tuple[FloatArray, BoolArray | None]] = {}
        self._zero: dict[int, BoolArray] = {}

    def prepared(self, feature: int) -> tuple[FloatArray, BoolArray | None]:
        """The column with NaN read as 0, and its NaN mask (None when it has no NaN)."""
        if feature not in self._prepared:
            column = self.raw[:, feature]
            is_nan = np.isnan(column)
            if is_nan.any():
                self._prepared[feature] = (np.where(is_nan, 0.0, column), is_nan)
            else:
                self._prepared[feature] = (column, None)
        return self._prepared[feature]

    def goes_left(self, node: SplitNode) -> BoolArray:
        """LightGBM's ``Tree::NumericalDecision`` (src/io/tree.h), vectorised: NaN is 0
        unless the missing type is NaN; a missing value (NaN, or zero for missing type Zero)
        follows the default direction; otherwise ``x <= threshold`` goes left."""
        feature, threshold, default_left, missing_type = node
        zeroed, is_nan = self.prepared(feature)
        if missing_type == "NaN":
            left = self.raw[:, feature] <= threshold  # NaN compares False
            return left if is_nan is None else np.where(is_nan, default_left, left)
        left = zeroed <= threshold
        if missing_type == "Zero":
            if feature not in self._zero:
                self._zero[feature] = np.abs(zeroed) <= _ZERO_THRESHOLD
            return np.where(self._zero[feature], default_left, left)
        return np.asarray(left)


def booster_contributions(
    booster: Any,
    matrix: FloatArray,
    num_iteration: int,
    *,
    deduplicate: bool | None = None,
) -> FloatArray:
    """LightGBM's ``pred_contrib`` output (TreeSHAP per feature, expected value last), fast.

    TreeSHAP costs O(leaves × depth²) per tree and row: about 0.2–0.7 ms per customer for our
    models on one core, i.e. minutes for a million customers. But a row's contributions in
    one tree depend only on which way it goes at each of the tree's split nodes (TreeSHAP
    follows the row at "present" features and weighs both branches at the others, so off-path
    decisions matter too, and nothing else does). So per tree we code every row by its
    decision at every split node (≤ 14 bits with 15 leaves), let LightGBM compute that tree's
    contributions (``start_iteration=t, num_iteration=1``) for one row per distinct code —
    typically a few hundred to a few thousand — and gather. The numbers are LightGBM's own,
    identical to a direct call up to float summation order (tested).

    Parameters
    ----------
    booster : lightgbm.Booster
    matrix : ndarray, shape (n, n_features)
    num_iteration : int
        Trees to use (the best iteration).
    deduplicate : bool, optional
        Force (True) or skip (False) the per-tree deduplication; by default used from
        :data:`DEDUPLICATE_MIN_ROWS` rows on. Models with categorical splits always use the
        direct call.

    Returns
    -------
    ndarray, shape (n, n_features + 1)
    """
    n_rows, n_features = matrix.shape
    if deduplicate is None:
        deduplicate = n_rows >= DEDUPLICATE_MIN_ROWS
    if deduplicate and n_rows > _CHUNK_ROWS:  # bounds the memory of the prepared columns
        return np.concatenate(
            [
                booster_contributions(
                    booster, matrix[i : i + _CHUNK_ROWS], num_iteration, deduplicate=True
                )
                for i in range(0, n_rows, _CHUNK_ROWS)
            ]
        )
    trees = booster.dump_model(num_iteration=num_iteration)["tree_info"] if deduplicate else []
    nodes_per_tree = [_split_nodes(tree["tree_structure"]) for tree in trees]
    if not deduplicate or n_rows == 0 or any(nodes is None for nodes in nodes_per_tree):
        return np.asarray(
            booster.predict(matrix, num_iteration=num_iteration, pred_contrib=True),
            dtype=np.float64,
        )
    columns = _Columns(matrix)
    # Column-major: each tree adds to a few whole columns, contiguous this way.
    out = np.zeros((n_rows, n_features + 1), dtype=np.float64, order="F")
    every_row = np.arange(n_rows, dtype=np.int64)
    for t, nodes in enumerate(nodes_per_tree):
        assert nodes is not None
        code = np.zeros(n_rows, dtype=np.int64)
        for k, node in enumerate(nodes):
            code |= columns.goes_left(node).astype(np.int64) << k
        if len(nodes) <= _MAX_TABLE_BITS:
            representative = np.full(1 << len(nodes), -1, dtype=np.int64)
            representative[code] = every_row  # any row of a code will do: they are alike
            present = np.flatnonzero(representative >= 0)
            slot = np.zeros(representative.size, dtype=np.int64)
            slot[present] = np.arange(present.size)
            rows, index = representative[present], slot[code]
        else:
            _, rows, index = np.unique(code, return_index=True, return_inverse=True)
        part = np.asarray(
            booster.predict(matrix[rows], start_iteration=t, num_iteration=1, pred_contrib=True),
            dtype=np.float64,
        )
        for feature in sorted({node[0] for node in nodes}):
            out[:, feature] += part[index, feature]
        out[:, -1] += part[0, -1]
    return out


# --------------------------------------------------------------------------------------
# LightGBM, calibrated
# --------------------------------------------------------------------------------------


#: Most rows a model learns from: beyond this a stratified sample of the rows is used. At
#: 150,000 rows even a 1 % outcome leaves 1,500 positives, and fitting stays a few seconds
#: however large the shop (bench/pipeline.py).
MAX_TRAIN_ROWS = 150_000


class BoostedClassifier:
    """A small, calibrated LightGBM binary classifier with explanations (shared by the credit
    and churn models).

    Fitting: beyond ``max_rows`` rows a stratified sample of them is used; a stratified
    split of those keeps ``validation_share`` of the rows aside; boosting runs on
    the rest for at most ``max_trees`` rounds and stops early when the held-out log-loss has
    not improved for ``early_stopping_rounds``; :func:`platt_scaling` is then fitted on the
    held-out raw margins. The same held-out rows serve both purposes: early stopping picks one
    integer, so the optimism this adds to the calibration is small, and splitting a third
    time would leave too few positives when they are rare.

    Attributes
    ----------
    params_ : dict
        LightGBM settings actually used and the calibration ``platt_a``, ``platt_b``.
    info_ : dict
        ``n_train``, ``n_validation``, ``n_<positive>``, ``base_rate``, ``best_iteration``,
        ``validation_auc``, ``validation_brier`` (calibrated), ``feature_importance_gain``
        (feature → total gain), ``monotone`` (feature → constraint applied).
    feature_names_ : list of str
        Feature columns, in the order the booster uses them.
    """

    #: What a positive label means, for ``info_`` keys.
    positive_name: ClassVar[str] = "positive"
    #: Fewest rows of each class ``fit`` accepts.
    min_per_class: ClassVar[int] = 10

    params_: dict[str, Any]
    info_: dict[str, Any]
    feature_names_: list[str]

    def __init__(
        self,
        *,
        monotone: Mapping[str, int] | None = None,
        num_threads: int = 1,
        seed: int = 0,
        max_trees: int = 200,
        num_leaves: int = 15,
        learning_rate: float = 0.1,
        validation_share: float = 0.25,
        early_stopping_rounds: int = 20,
        max_rows: int = MAX_TRAIN_ROWS,
    ) -> None:
        bad_directions = {k: v for k, v in (monotone or {}).items() if v not in (-1, 0, 1)}
        if bad_directions:
            raise ValueError(f"monotone directions must be -1, 0 or +1: {bad_directions}")
        self.monotone = dict(monotone or {})
        self.num_threads = num_threads
        self.seed = seed
        self.max_trees = max_trees
        self.num_leaves = num_leaves
        self.learning_rate = learning_rate
        self.validation_share = validation_share
        self.early_stopping_rounds = early_stopping_rounds
        self.max_rows = max_rows
        self.params_ = {}
        self.info_ = {}
        self.feature_names_ = []
        self._booster: Any = None
        self._best_iteration = 0

    @staticmethod
    def min_data_in_leaf(n_train: int) -> int:
        """1 % of the training rows, kept within [5, 200]: small shops still get splits,
        large ones do not chase noise."""
        return int(min(200, max(5, n_train // 100)))

    def fit(self, X: pa.Table, y: Any) -> BoostedClassifier:
        """Fit on a feature table and its 0/1 (or bool) labels, aligned by row.

        Returns
        -------
        self
        """
        features, names = feature_matrix(X)
        if not names:
            raise ValueError("the feature table has no numeric feature columns")
        outcome = _outcomes(y, X.num_rows)
        n_pos = int(outcome.sum())
        n_neg = int(outcome.size - n_pos)
        if min(n_pos, n_neg) < self.min_per_class:
            raise ValueError(
                f"need at least {self.min_per_class} rows of each class, "
                f"got {n_pos} {self.positive_name} and {n_neg} other"
            )
        rows = np.arange(outcome.size)
        if outcome.size > self.max_rows:  # a stratified sample learns as well, in less time
            rows, _ = train_test_split(
                rows, train_size=self.max_rows, stratify=outcome, random_state=self.seed
            )
            rows = np.sort(rows)
        train_idx, valid_idx = train_test_split(
            rows,
            test_size=self.validation_share,
            stratify=outcome[rows],
            random_state=self.seed,
        )
        constraints = [int(self.monotone.get(name, 0)) for name in names]
        params: dict[str, Any] = {
            "objective": "binary",
            "metric": "binary_logloss",
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_data_in_leaf": self.min_data_in_leaf(train_idx.size),
            "monotone_constraints": constraints,
            "monotone_constraints_method": "intermediate",
            "num_threads": self.num_threads,
            "seed": self.seed,
            "deterministic": True,
            "force_col_wise": True,
            "verbose": -1,
        }
        train_set = lgb.Dataset(
            features[train_idx], label=outcome[train_idx].astype(np.float64), feature_name=names
        )
        valid_set = lgb.Dataset(
            features[valid_idx], label=outcome[valid_idx].astype(np.float64), reference=train_set
        )
        booster = lgb.train(
            params,
            train_set,
            num_boost_round=self.max_trees,
            valid_sets=[valid_set],
            callbacks=[lgb.early_stopping(self.early_stopping_rounds, verbose=False)],
        )
        best = int(booster.best_iteration) or int(booster.current_iteration())
        self._booster = booster
        self.feature_names_ = names
        self._best_iteration = best
        margin = np.asarray(
            booster.predict(features[valid_idx], num_iteration=best, raw_score=True),
            dtype=np.float64,
        )
        a, b = platt_scaling(margin, outcome[valid_idx])
        self.params_ = {
            **{k: v for k, v in params.items() if k != "monotone_constraints"},
            "max_trees": self.max_trees,
            "early_stopping_rounds": self.early_stopping_rounds,
            "validation_share": self.validation_share,
            "max_rows": self.max_rows,
            "platt_a": a,
            "platt_b": b,
        }
        calibrated = special.expit(a * margin + b)
        gains = booster.feature_importance(importance_type="gain", iteration=best)
        self.info_ = {
            "model": "lightgbm",
            "n_rows": int(outcome.size),
            "n_train": int(train_idx.size),
            "n_validation": int(valid_idx.size),
            f"n_{self.positive_name}": n_pos,
            "base_rate": n_pos / outcome.size,
            "best_iteration": best,
            "validation_auc": metrics.auc(outcome[valid_idx], calibrated),
            "validation_brier": metrics.brier(outcome[valid_idx], calibrated),
            "feature_importance_gain": {
                name: float(g) for name, g in zip(names, gains.tolist(), strict=True)
            },
            "monotone": {name: c for name, c in zip(names, constraints, strict=True) if c},
        }
        return self

    def _matrix(self, X: pa.Table) -> FloatArray:
        if self._booster is None:
            raise RuntimeError("model is not fitted; call fit() first")
        return feature_matrix(X, self.feature_names_)[0]

    def log_odds(self, X: pa.Table, *, num_threads: int | None = None) -> FloatArray:
        """Calibrated log-odds of the positive class, ``a × margin + b``; ``num_threads``:
        LightGBM's threads for this prediction (default: the model's)."""
        threads = {} if num_threads is None else {"num_threads": num_threads}
        margin = self._booster_predict(self._matrix(X), raw_score=True, **threads)
        return np.asarray(self.params_["platt_a"] * margin + self.params_["platt_b"])

    def probability(self, X: pa.Table, *, num_threads: int | None = None) -> FloatArray:
        """Calibrated probability of the positive class (a bad outcome; a churn)."""
        return np.asarray(
            special.expit(self.log_odds(X, num_threads=num_threads)), dtype=np.float64
        )

    def _booster_predict(self, matrix: FloatArray, **kwargs: Any) -> FloatArray:
        return np.asarray(
            self._booster.predict(matrix, num_iteration=self._best_iteration, **kwargs),
            dtype=np.float64,
        )

    def log_odds_contributions(self, X: pa.Table) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Per-row split of the calibrated log-odds into a base and one term per feature.

        LightGBM's ``pred_contrib`` (through :func:`booster_contributions`) gives additive
        TreeSHAP contributions to the raw margin (plus the expected margin as the last column); Platt's map is affine in the margin,
        so ``a × contribution`` is each feature's exact share of the calibrated log-odds and
        ``a × expected + b`` the base: base + row sum = :meth:`log_odds`.

        Returns
        -------
        base : ndarray, shape (n,)
        contributions : ndarray, shape (n, n_features)
        values : ndarray, shape (n, n_features)
            The feature values (NaN = missing), for the reasons.
        """
        matrix = self._matrix(X)
        raw = booster_contributions(self._booster, matrix, self._best_iteration)
        a, b = self.params_["platt_a"], self.params_["platt_b"]
        return a * raw[:, -1] + b, a * raw[:, :-1], matrix

    @property
    def booster(self) -> Any:
        """The fitted ``lightgbm.Booster`` (use ``best_iteration`` trees)."""
        return self._booster


class CreditModel(BoostedClassifier):
    """LightGBM credit model: P(bad outcome in the next period) → 350–950 score with reasons.

    Parameters
    ----------
    monotone : mapping, default :data:`MONOTONE_RISK`
        Feature → +1 (higher value, higher risk) / −1 (higher value, lower risk). Enforced
        by LightGBM's monotone constraints on the margin (method ``intermediate``: exact, and
        less restrictive than ``basic``), kept by the increasing Platt map and the decreasing
        score map: raising a +1 feature never raises the score.
    num_threads : int, default 1
        LightGBM threads; set explicitly (DESIGN.md §9).
    seed : int, default 0
        Seeds the validation split and LightGBM; fits are deterministic.
    scale : ScoreScale, default :data:`SCORE_SCALE`
    max_trees, num_leaves, learning_rate, validation_share, early_stopping_rounds
        See :class:`BoostedClassifier`; defaults 200, 15, 0.1, 0.25, 20. A learning rate of
        0.05 needed up to twice the trees for the same validation AUC (bench/README.md).

    Notes
    -----
    Calibration is Platt scaling on held-out margins rather than isotonic regression:
    boosted trees are typically mis-calibrated in a sigmoid-shaped way that Platt corrects
    (Niculescu-Mizil & Caruana 2005, "Predicting Good Probabilities with Supervised
    Learning", *ICML*), which also found isotonic regression to overfit on small calibration
    sets — ours hold a few dozen bad outcomes. Isotonic's step function would also give
    whole bands of customers the same score and break the additivity of the reasons; Platt
    is affine in log-odds, so the TreeSHAP contributions convert exactly into score points
    that add up to the score (before rounding and clipping): points = −factor × a ×
    contribution. Classes are not re-weighted, which would only distort the probabilities
    that calibration then has to undo.
    """

    positive_name: ClassVar[str] = "bad"

    def __init__(
        self,
        *,
        monotone: Mapping[str, int] | None = None,
        num_threads: int = 1,
        seed: int = 0,
        scale: ScoreScale = SCORE_SCALE,
        max_trees: int = 200,
        num_leaves: int = 15,
        learning_rate: float = 0.1,
        validation_share: float = 0.25,
        early_stopping_rounds: int = 20,
    ) -> None:
        super().__init__(
            monotone=MONOTONE_RISK if monotone is None else monotone,
            num_threads=num_threads,
            seed=seed,
            max_trees=max_trees,
            num_leaves=num_leaves,
            learning_rate=learning_rate,
            validation_share=validation_share,
            early_stopping_rounds=early_stopping_rounds,
        )
        self.scale = scale

    def fit(self, X: pa.Table, y: Any) -> CreditModel:
        """Fit on features and bad-outcome labels (see
        :func:`patron.intelligence.labels.bad_outcomes`). Returns self."""
        super().fit(X, y)
        self.params_["score_scale"] = _scale_params(self.scale)
        return self

    def score(self, X: pa.Table) -> IntArray:
        """Credit score, 350–950, higher is better."""
        return self.scale.clip(self.scale.points_from_log_odds(self.log_odds(X)))

    def contributions(self, X: pa.Table) -> tuple[FloatArray, FloatArray]:
        """Score points per feature: ``base + contributions.sum(axis=1)`` is the unrounded,
        unclipped score. Negative points pulled the score down.

        Returns
        -------
        base : ndarray, shape (n,)
        contributions : ndarray, shape (n, n_features), columns as ``feature_names_``
        """
        base, terms, _ = self.log_odds_contributions(X)
        factor = self.scale.factor
        return self.scale.points_from_log_odds(base), -factor * terms

    def reasons(self, X: pa.Table, top: int = 3) -> list[list[Reason]]:
        """Reason codes: per customer up to ``top`` features that pulled the score down,
        the largest loss of points first. A customer nothing pulled down gets ``[]``."""
        _, terms, values = self.log_odds_contributions(X)
        return rank_reasons(self.feature_names_, values, -self.scale.factor * terms, top, -1)

    def strengths(self, X: pa.Table, top: int = 3) -> list[list[Reason]]:
        """The other side: up to ``top`` features that pushed the score up, largest first."""
        _, terms, values = self.log_odds_contributions(X)
        return rank_reasons(self.feature_names_, values, -self.scale.factor * terms, top, +1)

    def explain(self, X: pa.Table, top: int = 3) -> Explanation:
        """Probability, score, reasons and strengths with one contributions pass (the costly
        part). Probability and score come from the summed contributions, equal to
        :meth:`probability` and :meth:`score` up to float summation order."""
        base, terms, values = self.log_odds_contributions(X)
        log_odds = base + terms.sum(axis=1)
        points = -self.scale.factor * terms
        return Explanation(
            probability=np.asarray(special.expit(log_odds), dtype=np.float64),
            score=self.scale.clip(self.scale.points_from_log_odds(log_odds)),
            reasons=rank_reasons(self.feature_names_, values, points, top, -1),
            strengths=rank_reasons(self.feature_names_, values, points, top, +1),
        )


def _scale_params(scale: ScoreScale) -> dict[str, float]:
    return {
        "base_score": scale.base_score,
        "base_odds": scale.base_odds,
        "points_to_double_odds": scale.points_to_double_odds,
        "lowest": float(scale.lowest),
        "highest": float(scale.highest),
    }


# --------------------------------------------------------------------------------------
# The fallback scorecard
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScorecardRule:
    """``points = sign × min(cap, |points_per_unit| × max(0, value − threshold))``, where
    sign is that of ``points_per_unit``; a missing value (or column) scores 0."""

    feature: str
    points_per_unit: float
    threshold: float
    cap: float

    def points(self, values: FloatArray) -> FloatArray:
        excess = np.nan_to_num(np.maximum(values - self.threshold, 0.0), nan=0.0)
        magnitude = np.minimum(abs(self.points_per_unit) * excess, self.cap)
        return np.asarray(math.copysign(1.0, self.points_per_unit) * magnitude, dtype=np.float64)


SCORECARD_BASE_POINTS = 700.0

#: The fallback scorecard. Rates are fractions (0.38 = 38 %), so −200 per unit is −2 points
#: per percentage point.
#:
#: ========================  =====================================  =========
#: feature                   points                                 at most
#: ========================  =====================================  =========
#: (base)                    700
#: chargebacks               −120 each                              −240
#: pay_later_defaults        −100 each                              −200
#: cod_refusals              −60 each                               −180
#: failed_payments           −10 each                               −50
#: return_rate               −2 per percentage point above 20 %     −160
#: quick_return_rate         −1 per percentage point                −100
#: cancel_rate               −1 per percentage point above 30 %     −70
#: cancels_after_shipment    −20 each                               −60
#: low_rating_share          −1 per percentage point above 30 %     −70
#: tenure_days               +1 per 10 days                         +73 (2 years)
#: orders                    +5 per order after the first           +70 (15 orders)
#: ========================  =====================================  =========
#:
#: A new customer with one clean order scores 700 (≈ 0.5 % risk on :data:`SCORE_SCALE`); one
#: chargeback takes 120 points, i.e. multiplies the odds of a bad outcome by about 5.3.
SCORECARD_RULES: tuple[ScorecardRule, ...] = (
    ScorecardRule("chargebacks", -120.0, 0.0, 240.0),
    ScorecardRule("pay_later_defaults", -100.0, 0.0, 200.0),
    ScorecardRule("cod_refusals", -60.0, 0.0, 180.0),
    ScorecardRule("failed_payments", -10.0, 0.0, 50.0),
    ScorecardRule("return_rate", -200.0, 0.2, 160.0),
    ScorecardRule("quick_return_rate", -100.0, 0.0, 100.0),
    ScorecardRule("cancel_rate", -100.0, 0.3, 70.0),
    ScorecardRule("cancels_after_shipment", -20.0, 0.0, 60.0),
    ScorecardRule("low_rating_share", -100.0, 0.3, 70.0),
    ScorecardRule("tenure_days", 0.1, 0.0, 73.0),
    ScorecardRule("orders", 5.0, 1.0, 70.0),
)


class Scorecard:
    """Fixed-points credit scorecard: the documented fallback of :func:`fit_credit` when too
    few bad outcomes are labelled to learn a model (see :data:`SCORECARD_RULES` for the
    points).

    ``score = clip(round(base + Σ rule points), 350, 950)``; ``probability`` is the
    :class:`ScoreScale` mapping inverted at the clipped, unrounded score, so both models speak
    the same odds. ``fit`` learns nothing: it records the label counts for the report. A
    feature column missing from the table contributes 0, like a null.
    """

    params_: dict[str, Any]
    info_: dict[str, Any]

    def __init__(
        self,
        rules: Sequence[ScorecardRule] = SCORECARD_RULES,
        *,
        base_points: float = SCORECARD_BASE_POINTS,
        scale: ScoreScale = SCORE_SCALE,
    ) -> None:
        self.rules = tuple(rules)
        self.base_points = base_points
        self.scale = scale
        self.feature_names_ = [rule.feature for rule in self.rules]
        if len(set(self.feature_names_)) != len(self.feature_names_):
            raise ValueError("one rule per feature")
        self.params_ = {
            "base_points": base_points,
            "rules": [
                {
                    "feature": r.feature,
                    "points_per_unit": r.points_per_unit,
                    "threshold": r.threshold,
                    "cap": r.cap,
                }
                for r in self.rules
            ],
            "score_scale": _scale_params(scale),
        }
        self.info_ = {"model": "scorecard"}

    def fit(self, X: pa.Table, y: Any = None) -> Scorecard:
        """Record ``n_train``, ``n_bad`` and ``base_rate`` (when labels are given) and which
        rule features the table lacks. Returns self."""
        self.info_ = {
            "model": "scorecard",
            "n_train": X.num_rows,
            "missing_features": [f for f in self.feature_names_ if f not in X.column_names],
        }
        if y is not None:
            outcome = _outcomes(y, X.num_rows)
            self.info_["n_bad"] = int(outcome.sum())
            self.info_["base_rate"] = float(outcome.mean()) if outcome.size else None
        return self

    def _values(self, X: pa.Table) -> FloatArray:
        values = np.full((X.num_rows, len(self.rules)), np.nan, dtype=np.float64, order="F")
        present = [f for f in self.feature_names_ if f in X.column_names]
        if present:
            matrix, _ = feature_matrix(X, present)
            for k, name in enumerate(present):
                values[:, self.feature_names_.index(name)] = matrix[:, k]
        return values

    def _contributions(self, X: pa.Table) -> tuple[FloatArray, FloatArray, FloatArray]:
        values = self._values(X)
        points = np.empty_like(values)
        for j, rule in enumerate(self.rules):
            points[:, j] = rule.points(values[:, j])
        return np.full(X.num_rows, self.base_points), points, values

    def contributions(self, X: pa.Table) -> tuple[FloatArray, FloatArray]:
        """Base points and points per rule feature (columns as ``feature_names_``)."""
        base, points, _ = self._contributions(X)
        return base, points

    def _raw(self, X: pa.Table) -> FloatArray:
        base, points, _ = self._contributions(X)
        return np.asarray(base + points.sum(axis=1), dtype=np.float64)

    def score(self, X: pa.Table) -> IntArray:
        """Credit score, 350–950, higher is better."""
        return self.scale.clip(self._raw(X))

    def probability(self, X: pa.Table) -> FloatArray:
        """P(bad outcome) implied by the score on :attr:`scale`."""
        clipped = np.clip(self._raw(X), self.scale.lowest, self.scale.highest)
        return self.scale.probability(clipped)

    def reasons(self, X: pa.Table, top: int = 3) -> list[list[Reason]]:
        """Per customer up to ``top`` rules that took points off, the largest first."""
        _, points, values = self._contributions(X)
        return rank_reasons(self.feature_names_, values, points, top, -1)

    def strengths(self, X: pa.Table, top: int = 3) -> list[list[Reason]]:
        """Per customer up to ``top`` rules that added points, the largest first."""
        _, points, values = self._contributions(X)
        return rank_reasons(self.feature_names_, values, points, top, +1)

    def explain(self, X: pa.Table, top: int = 3) -> Explanation:
        """Probability, score, reasons and strengths in one call, like
        :meth:`CreditModel.explain`."""
        base, points, values = self._contributions(X)
        raw = base + points.sum(axis=1)
        clipped = np.clip(raw, self.scale.lowest, self.scale.highest)
        return Explanation(
            probability=self.scale.probability(clipped),
            score=self.scale.clip(raw),
            reasons=rank_reasons(self.feature_names_, values, points, top, -1),
            strengths=rank_reasons(self.feature_names_, values, points, top, +1),
        )


def fit_credit(
    X: pa.Table,
    y: Any,
    *,
    monotone: Mapping[str, int] = MONOTONE_RISK,
    min_bad: int = 30,
    min_rows: int = 300,
    num_threads: int = 1,
    seed: int = 0,
) -> CreditModel | Scorecard:
    """Fit the credit model, or fall back to the :class:`Scorecard`.

    The learned model needs data: with fewer than ``min_bad`` bad outcomes, fewer than
    ``min_bad`` good ones, or fewer than ``min_rows`` rows, a 25 % hold-out would hold a
    handful of bad outcomes — too few to stop boosting or calibrate. Then the scorecard is
    returned (fitted, i.e. with its label counts recorded) and ``info_["fallback_reason"]``
    says why.
    """
    outcome = _outcomes(y, X.num_rows)
    n_bad = int(outcome.sum())
    n_good = int(outcome.size - n_bad)
    if n_bad < min_bad or n_good < min_bad or outcome.size < min_rows:
        scorecard = Scorecard().fit(X, outcome)
        scorecard.info_["fallback_reason"] = (
            f"{n_bad} bad and {n_good} good outcomes in {outcome.size} rows; the learned "
            f"model needs at least {min_bad} of each and {min_rows} rows"
        )
        return scorecard
    return CreditModel(monotone=monotone, num_threads=num_threads, seed=seed).fit(X, outcome)
