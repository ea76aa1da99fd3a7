"""Customer clusters (k-means) with readable profiles and a decision tree that explains them.

R-B5 asks for groups by preference, loyalty and risk that staff can read. k-means finds the
groups; two things make them readable:

* a **profile** per cluster: its size, the medians of the raw features, and the three features
  that set it apart from everybody else, in plain words ("spend 3.2× the median"), plus a short
  name built from them ("high spend · frequent");
* a shallow **decision tree** (depth 3) trained on the *raw* features to predict the cluster,
  whose rules read as "spend > 1,200 and orders ≥ 5 → cluster 2". Its fidelity (accuracy at
  reproducing the k-means labels) says how far the rules can be trusted as a description.

Transforms before k-means, fitted once and reused by :meth:`CustomerClusters.predict`:
missing values → the feature's median; ``log1p`` for counts, money and day counts (any
non-negative column whose sample skewness exceeds 1, plus the known ones in
:data:`LOG_FEATURES`); clipping to the 1st–99th percentiles so that a handful of extreme
customers don't get a cluster of their own; standardisation to zero mean and unit variance.

References
----------
Lloyd (1982), "Least squares quantization in PCM", IEEE Trans. Inf. Theory 28(2), 129-137.
Rousseeuw (1987), "Silhouettes: a graphical aid to the interpretation and validation of
cluster analysis", J. Comput. Appl. Math. 20, 53-65 (choice of k).
Breiman, Friedman, Olshen & Stone (1984), *Classification and Regression Trees* (the tree).

Pure numpy / scikit-learn; no Django.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.metrics import silhouette_score
from sklearn.tree import DecisionTreeClassifier

__all__ = [
    "DEFAULT_CLUSTER_FEATURES",
    "ClusterProfile",
    "ClusterTree",
    "CustomerClusters",
    "describe_difference",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Loyalty (orders, recency, tenure), value (spend, basket size), preference (coupons) and
#: risk (returns, cancellations, complaints, rating). Columns missing from the table are
#: skipped when the default is used; an explicit list must be present in full.
DEFAULT_CLUSTER_FEATURES: tuple[str, ...] = (
    "orders",
    "spend",
    "aov",
    "recency_days",
    "tenure_days",
    "return_rate",
    "cancel_rate",
    "coupon_share",
    "mean_rating",
    "complaints",
)

#: Counts, money and day counts: heavy right tails, compared on a log scale.
LOG_FEATURES = frozenset(
    {
        "orders",
        "purchase_days",
        "spend",
        "aov",
        "recency_days",
        "tenure_days",
        "orders_90d",
        "spend_365d",
        "reviews",
        "helpful_votes",
        "tickets",
        "complaints",
        "clv_12m",
        "expected_orders_90d",
    }
)

#: Features that are shares in [0, 1]; described as percentages.
_RATE_SUFFIXES = ("_rate", "_share", "_probability")
_RATE_FEATURES = frozenset({"p_alive", "is_business"})
#: Features counted in days; a larger value reads "longer".
_DAY_SUFFIX = "_days"

_LABELS: dict[str, str] = {
    "orders": "orders",
    "purchase_days": "purchase days",
    "spend": "spend",
    "aov": "average order value",
    "recency_days": "recency",
    "tenure_days": "tenure",
    "orders_90d": "orders in 90 days",
    "spend_365d": "12-month spend",
    "return_rate": "return rate",
    "cancel_rate": "cancellation rate",
    "coupon_share": "coupon use",
    "mean_rating": "rating",
    "mean_sentiment": "review sentiment",
    "reviews": "reviews",
    "helpful_votes": "helpful votes",
    "tickets": "tickets",
    "complaints": "complaints",
    "is_business": "business share",
    "p_alive": "P(alive)",
    "churn_probability": "churn risk",
    "clv_12m": "12-month value",
    "credit_score": "credit score",
}

#: Short words for a cluster's name: feature -> (when high, when low).
_NAME_WORDS: dict[str, tuple[str, str]] = {
    "orders": ("frequent", "occasional"),
    "purchase_days": ("frequent", "occasional"),
    "orders_90d": ("active", "quiet"),
    "spend": ("high spend", "low spend"),
    "spend_365d": ("high spend", "low spend"),
    "clv_12m": ("high value", "low value"),
    "aov": ("big baskets", "small baskets"),
    "recency_days": ("lapsed", "recent"),
    "tenure_days": ("long-standing", "new"),
    "return_rate": ("many returns", "few returns"),
    "cancel_rate": ("cancels often", "rarely cancels"),
    "coupon_share": ("coupon-driven", "full price"),
    "mean_rating": ("happy", "unhappy"),
    "mean_sentiment": ("positive", "negative"),
    "reviews": ("reviewers", "silent"),
    "helpful_votes": ("influential", "little influence"),
    "tickets": ("needs support", "self-reliant"),
    "complaints": ("complains", "no complaints"),
    "is_business": ("business", "individual"),
    "p_alive": ("active", "likely gone"),
    "churn_probability": ("churn risk", "safe"),
    "credit_score": ("good credit", "poor credit"),
}

_MAX_SELECTION_ROWS = 20_000  # k-means fits while choosing k
_MAX_SILHOUETTE_ROWS = 4_000  # silhouette is O(n²) in time
_MAX_TREE_ROWS = 100_000
_MAX_TRANSFORM_ROWS = 200_000
_MINIBATCH_FROM_ROWS = 100_000
_K_CANDIDATES = range(3, 8)


@dataclass(frozen=True)
class Comparison:
    """A cluster's value of a feature against everybody's (its median, or its average when
    the medians are equal): one trait of a cluster, before it is put into words."""

    feature: str
    value: float
    typical: float
    statistic: str = "median"  # or "average"

    def to_dict(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "value": _finite_or_none(self.value),
            "typical": _finite_or_none(self.typical),
            "statistic": self.statistic,
        }


@dataclass(frozen=True)
class TreeLeaf:
    """One rule of the explaining tree: the bounds that lead to a leaf, the cluster it
    predicts, how many customers reach it and the share of them in that cluster."""

    conditions: tuple[tuple[str, float, float, bool], ...]  # feature, low, high, integer data
    cluster: int
    name: str
    support: int
    purity: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "conditions": [
                [f, _finite_or_none(low), _finite_or_none(high), integer]
                for f, low, high, integer in self.conditions
            ],
            "cluster": self.cluster,
            "name": self.name,
            "support": self.support,
            "purity": self.purity,
        }


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class ClusterProfile:
    """What a cluster is, for people.

    Attributes
    ----------
    cluster : int
        Cluster id; clusters are numbered by median spend, 0 = lowest.
    name : str
        Short name from the two most distinctive traits, e.g. ``"high spend · frequent"``.
    size, share : int, float
        Number and share of customers in the cluster.
    medians : dict
        Median of every raw feature in the cluster (NaN for a feature nobody has).
    distinctive : tuple of str
        The (up to) three features that most set the cluster apart, most distinctive first,
        measured by the standardised distance of the cluster's mean from the overall mean.
    traits : tuple of str
        The same three in plain words, e.g. ``"spend 3.2× the median"``.
    comparisons : tuple of Comparison
        What the traits say, as numbers, so they can be worded in any language
        (:func:`describe_difference`).
    """

    cluster: int
    name: str
    size: int
    share: float
    medians: dict[str, float]
    distinctive: tuple[str, ...]
    traits: tuple[str, ...]
    comparisons: tuple[Comparison, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (a median nobody has becomes ``None``)."""
        return {
            "cluster": self.cluster,
            "name": self.name,
            "size": self.size,
            "share": self.share,
            "medians": {k: _finite_or_none(v) for k, v in self.medians.items()},
            "distinctive": list(self.distinctive),
            "traits": list(self.traits),
            "comparisons": [c.to_dict() for c in self.comparisons],
        }


@dataclass(frozen=True)
class ClusterTree:
    """A depth-limited decision tree that predicts the cluster from the raw features.

    Attributes
    ----------
    model : DecisionTreeClassifier
        Trained on the raw features (missing values filled with the medians used by k-means).
    fidelity : float
        Share of customers the tree puts in their k-means cluster.
    rules : tuple of str
        One line per leaf, e.g. ``"spend > 1,200 and orders ≥ 5 → cluster 2 (…)"``.
    features : tuple of str
        The tree's input columns, in order.
    leaves : tuple of TreeLeaf
        The same rules as data (:func:`tree_rule_text` words them in a language).
    """

    model: DecisionTreeClassifier
    fidelity: float
    rules: tuple[str, ...]
    features: tuple[str, ...]
    leaves: tuple[TreeLeaf, ...] = ()


@dataclass(frozen=True)
class _Transform:
    fill: FloatArray  # raw medians
    is_log: npt.NDArray[np.bool_]
    low: FloatArray  # clip bounds, on the transformed scale
    high: FloatArray
    mean: FloatArray
    scale: FloatArray

    def raw(self, matrix: FloatArray) -> FloatArray:
        """Raw features with missing values filled."""
        return np.where(np.isnan(matrix), self.fill, matrix)

    def apply(self, matrix: FloatArray) -> FloatArray:
        filled = self.raw(matrix)
        logged = np.where(self.is_log, np.log1p(np.maximum(filled, 0.0)), filled)
        clipped = np.clip(logged, self.low, self.high)
        return (clipped - self.mean) / self.scale


class CustomerClusters:
    """k-means segmentation of customers, explained by profiles and a decision tree.

    Parameters
    ----------
    k : int, optional
        Number of clusters. ``None`` chooses among 3..7 by the silhouette on a sample.
    features : sequence of str
        Numeric columns to cluster on. With the default, columns absent from the table are
        skipped; an explicit list must be present in full.
    random_state : int, default 0
        Seeds sampling, k-means and the tree: the same data and seed give the same clusters.
    order_by : str, default "spend"
        Clusters are numbered by the median of this column (0 = lowest), so that ids stay
        comparable between runs. When the table lacks it, clusters are numbered by size,
        largest first.

    Attributes
    ----------
    labels_ : ndarray of int
        Cluster of every row of the fitted table.
    profiles_ : tuple of ClusterProfile
        One per cluster, in id order.
    tree_ : ClusterTree
    n_clusters_ : int
    features_ : tuple of str
        Features actually used.
    silhouette_ : dict of int -> float
        Silhouette per candidate k when k was chosen automatically, else empty.
    """

    def __init__(
        self,
        k: int | None = None,
        features: Sequence[str] = DEFAULT_CLUSTER_FEATURES,
        random_state: int = 0,
        order_by: str = "spend",
    ) -> None:
        if k is not None and k < 2:
            raise ValueError(f"k: need at least 2 clusters, got {k}")
        self.k = k
        self.features = tuple(features)
        self.random_state = random_state
        self.order_by = order_by

    # ------------------------------------------------------------------ fitting

    def fit(self, table: pa.Table) -> CustomerClusters:
        """Fit transforms, k-means, profiles and tree on a per-customer table."""
        features = self._resolve_features(table)
        raw = _matrix(table, features)
        n = raw.shape[0]
        if n < 3:
            raise ValueError(f"table: need at least 3 customers to cluster, got {n}")
        rng = np.random.default_rng(self.random_state)
        # medians and percentiles are estimated well enough on a sample
        transform = _fit_transform(raw[_sample_rows(n, _MAX_TRANSFORM_ROWS, rng)], features)
        scaled = transform.apply(raw)

        silhouettes: dict[int, float] = {}
        selection = scaled[_sample_rows(n, _MAX_SELECTION_ROWS, rng)]
        n_distinct = _count_distinct(scaled, selection)
        if n_distinct < 2:
            raise ValueError("table: every customer has the same features; nothing to cluster")
        if self.k is None:
            k, silhouettes = self._choose_k(selection, n_distinct)
        else:
            k = self.k
            if k > n_distinct:
                raise ValueError(f"k: {k} clusters but only {n_distinct} distinct customers")
        if n >= _MINIBATCH_FROM_ROWS:
            # start mini-batch k-means from a full k-means on the sample: one run suffices
            start = KMeans(n_clusters=k, n_init=3, random_state=self.random_state).fit(selection)
            model: KMeans | MiniBatchKMeans = MiniBatchKMeans(
                n_clusters=k,
                init=start.cluster_centers_,
                n_init=1,
                batch_size=4096,
                random_state=self.random_state,
            ).fit(scaled)
        else:
            model = KMeans(n_clusters=k, n_init=3, random_state=self.random_state).fit(scaled)
        raw_labels = np.asarray(model.labels_, dtype=np.int64)

        order = self._cluster_order(table, raw_labels, k)
        relabel = np.empty(k, dtype=np.int64)
        relabel[order] = np.arange(k)
        labels = relabel[raw_labels]

        self.features_ = features
        self.n_clusters_ = k
        self.silhouette_ = silhouettes
        self._transform = transform
        self._model = model
        self._relabel = relabel
        self.labels_ = labels
        filled = transform.raw(raw)
        self.profiles_ = _profiles(features, raw, scaled, labels, k)
        self.tree_ = self._fit_tree(filled, labels, rng)
        return self

    def predict(self, table: pa.Table) -> IntArray:
        """Cluster ids for the customers of ``table`` (same numbering as the fit)."""
        if not hasattr(self, "_model"):
            raise ValueError("CustomerClusters: call fit() before predict()")
        scaled = self._transform.apply(_matrix(table, self.features_))
        return self._relabel[np.asarray(self._model.predict(scaled), dtype=np.int64)]

    def names(self) -> dict[int, str]:
        """Cluster id -> short name."""
        return {p.cluster: p.name for p in self.profiles_}

    def summary(self) -> dict[str, Any]:
        """Everything a report or a run record needs, JSON-ready."""
        return {
            "k": self.n_clusters_,
            "features": list(self.features_),
            "silhouette": {str(k): v for k, v in self.silhouette_.items()},
            "tree_fidelity": self.tree_.fidelity,
            "tree_rules": list(self.tree_.rules),
            "tree_leaves": [leaf.to_dict() for leaf in self.tree_.leaves],
            "profiles": [p.to_dict() for p in self.profiles_],
        }

    # ------------------------------------------------------------------ helpers

    def _resolve_features(self, table: pa.Table) -> tuple[str, ...]:
        present = set(table.column_names)
        if "customer_id" not in present:
            raise ValueError("table: column 'customer_id' is missing")
        if self.features == DEFAULT_CLUSTER_FEATURES:
            used = tuple(f for f in self.features if f in present)
            if len(used) < 2:
                raise ValueError(
                    "features: fewer than 2 of the default cluster features are in the table"
                )
            return used
        missing = [f for f in self.features if f not in present]
        if missing:
            raise ValueError(f"features: column(s) not in the table: {', '.join(missing)}")
        if not self.features:
            raise ValueError("features: empty")
        return self.features

    def _choose_k(self, sample: FloatArray, n_distinct: int) -> tuple[int, dict[int, float]]:
        candidates = [k for k in _K_CANDIDATES if k < min(n_distinct, sample.shape[0])]
        if not candidates:
            return min(n_distinct, _K_CANDIDATES[0]), {}
        scores: dict[int, float] = {}
        for k in candidates:
            labels = KMeans(n_clusters=k, n_init=2, random_state=self.random_state).fit_predict(
                sample
            )
            if len(np.unique(labels)) < 2:
                continue
            scores[k] = float(
                silhouette_score(
                    sample,
                    labels,
                    sample_size=min(_MAX_SILHOUETTE_ROWS, sample.shape[0]),
                    random_state=self.random_state,
                )
            )
        if not scores:
            return candidates[0], {}
        # the smallest k among the best: fewer clusters are easier to read
        best = max(scores.values())
        return min(k for k, s in scores.items() if s >= best - 1e-9), scores

    def _cluster_order(self, table: pa.Table, labels: IntArray, k: int) -> IntArray:
        counts = np.bincount(labels, minlength=k)
        if self.order_by in table.column_names:
            values = _column(table, self.order_by)
            medians = np.array(
                [
                    np.nanmedian(values[labels == c])
                    if np.any(~np.isnan(values[labels == c]))
                    else -np.inf
                    for c in range(k)
                ]
            )
            # ties: the bigger cluster first, then the k-means label, for determinism
            return np.lexsort((np.arange(k), -counts, medians)).astype(np.int64)
        return np.lexsort((np.arange(k), -counts)).astype(np.int64)

    def _fit_tree(
        self, filled: FloatArray, labels: IntArray, rng: np.random.Generator
    ) -> ClusterTree:
        rows = _sample_rows(filled.shape[0], _MAX_TREE_ROWS, rng)
        tree = DecisionTreeClassifier(
            max_depth=3, min_samples_leaf=max(1, rows.size // 200), random_state=self.random_state
        )
        tree.fit(filled[rows], labels[rows])
        fidelity = float(np.mean(tree.predict(filled) == labels))
        names = {p.cluster: p.name for p in self.profiles_}
        leaves = _tree_leaves(tree, filled, labels, self.n_clusters_, self.features_, names)
        return ClusterTree(
            model=tree,
            fidelity=fidelity,
            rules=tuple(tree_rule_text(leaf) for leaf in leaves),
            features=self.features_,
            leaves=leaves,
        )


# ---------------------------------------------------------------------- transforms


def _column(table: pa.Table, name: str) -> FloatArray:
    """A column as float64 with nulls as NaN."""
    column = pc.cast(table.column(name), pa.float64())
    return np.asarray(column.to_numpy(zero_copy_only=False), dtype=np.float64)


def _matrix(table: pa.Table, features: Sequence[str]) -> FloatArray:
    missing = [f for f in features if f not in table.column_names]
    if missing:
        raise ValueError(f"table: column(s) missing: {', '.join(missing)}")
    if not features:
        return np.zeros((table.num_rows, 0))
    return np.column_stack([_column(table, f) for f in features])


def _skewness(values: FloatArray) -> float:
    centred = values - values.mean()
    spread = np.sqrt(np.mean(centred**2))
    return 0.0 if spread == 0 else float(np.mean(centred**3) / spread**3)


def _fit_transform(raw: FloatArray, features: Sequence[str]) -> _Transform:
    n_features = raw.shape[1]
    fill = np.zeros(n_features)
    is_log = np.zeros(n_features, dtype=bool)
    for j, name in enumerate(features):
        present = raw[~np.isnan(raw[:, j]), j]
        fill[j] = float(np.median(present)) if present.size else 0.0
        nonnegative = bool(present.size) and float(present.min()) >= 0.0
        is_log[j] = nonnegative and (name in LOG_FEATURES or _skewness(present) > 1.0)
    filled = np.where(np.isnan(raw), fill, raw)
    logged = np.where(is_log, np.log1p(np.maximum(filled, 0.0)), filled)
    low, high = np.percentile(logged, [1.0, 99.0], axis=0)
    clipped = np.clip(logged, low, high)
    mean = clipped.mean(axis=0)
    scale = clipped.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    return _Transform(fill=fill, is_log=is_log, low=low, high=high, mean=mean, scale=scale)


def _count_distinct(matrix: FloatArray, sample: FloatArray) -> int:
    """Distinct customers (rows), which bound k; the whole matrix is only searched when the
    sample looks degenerate."""
    in_sample = len(np.unique(sample, axis=0))
    if in_sample > _K_CANDIDATES[-1] or sample.shape[0] == matrix.shape[0]:
        return in_sample
    return len(np.unique(matrix, axis=0))


def _sample_rows(n: int, cap: int, rng: np.random.Generator) -> IntArray:
    if n <= cap:
        return np.arange(n, dtype=np.int64)
    return np.sort(rng.choice(n, size=cap, replace=False)).astype(np.int64)


# ---------------------------------------------------------------------- wording


def _label(feature: str, language: str = "en") -> str:
    label = _LABELS.get(feature, feature.replace("_", " "))
    return CHINESE.get(label, label) if _is_chinese(language) else label


def _is_chinese(language: str) -> bool:
    return language.startswith("zh")


def _is_rate(feature: str) -> bool:
    return feature in _RATE_FEATURES or feature.endswith(_RATE_SUFFIXES)


def _number(value: float) -> str:
    """Readable number: thousands separators, few decimals."""
    if not np.isfinite(value):
        return "n/a"
    if abs(value) >= 100 or value == round(value):
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _ratio(ratio: float) -> str:
    return f"{ratio:.1f}" if ratio < 10 else f"{ratio:.0f}"


#: The sentences of :func:`describe_difference`, English and Chinese.
_DIFFERENCE: dict[str, tuple[str, str]] = {
    "rate": ("{label} {value} % vs {typical} % typical", "{label} {value} %，一般为 {typical} %"),
    "longer": ("{label} {ratio}× longer than typical", "{label}为一般的 {ratio} 倍"),
    "shorter": ("{label} {ratio}× shorter than typical", "{label}仅为一般的 1/{ratio}"),
    "times": ("{label} {ratio}× the {statistic}", "{label}为{statistic}的 {ratio} 倍"),
    "below": ("{label} {percent} % below the {statistic}", "{label}比{statistic}低 {percent} %"),
    "vs": ("{label} {value} vs {typical} typical", "{label} {value}，一般为 {typical}"),
    "averages": (
        "{label} averages {value} vs {typical} typical",
        "{label}平均 {value}，一般为 {typical}",
    ),
}
_STATISTIC_ZH = {"median": "中位数", "average": "平均值"}


def describe_difference(
    feature: str,
    cluster_value: float,
    typical: float,
    *,
    statistic: str = "median",
    language: str = "en",
) -> str:
    """One plain-words line comparing a cluster's value of a feature with everybody's.

    Examples: ``"spend 3.2× the median"``, ``"recency 4.0× longer than typical"``,
    ``"return rate 18 % vs 5 % typical"``, ``"complaints 2 vs 0 typical"``; in Chinese
    (``language="zh-hans"``) ``"消费为中位数的 3.2 倍"``. ``statistic`` is ``"median"`` or
    ``"average"`` (used when the medians are equal, e.g. counts that are mostly zero).
    """
    chinese = _is_chinese(language)
    words = {
        "label": _label(feature, language),
        "statistic": _STATISTIC_ZH.get(statistic, statistic) if chinese else statistic,
    }
    if _is_rate(feature):
        kind = "rate"
        words.update(value=f"{100 * cluster_value:.0f}", typical=f"{100 * typical:.0f}")
    elif typical > 0 and cluster_value > 0:
        ratio = cluster_value / typical
        is_days = feature.endswith(_DAY_SUFFIX)
        if ratio >= 1.0:
            kind = "longer" if is_days else "times"
            words["ratio"] = _ratio(ratio)
        elif is_days:
            kind = "shorter"
            words["ratio"] = _ratio(1 / ratio)
        else:
            kind = "below"
            words["percent"] = f"{100 * (1 - ratio):.0f}"
    else:
        kind = "vs" if statistic == "median" else "averages"
        words.update(value=_number(cluster_value), typical=_number(typical))
    return _DIFFERENCE[kind][chinese].format(**words)


def profile_traits_render(profile: Mapping[str, Any], language: str = "en") -> list[str]:
    """A stored cluster profile's traits in the reader's language (profiles stored before
    their comparisons were keep their English traits)."""
    comparisons = profile.get("comparisons")
    if not comparisons:
        return [str(trait) for trait in profile.get("traits") or ()]
    return [
        describe_difference(
            str(c["feature"]),
            _nan_if_none(c.get("value")),
            _nan_if_none(c.get("typical")),
            statistic=str(c.get("statistic") or "median"),
            language=language,
        )
        for c in comparisons
    ]


def tree_rules_render(summary: Mapping[str, Any], language: str = "en") -> list[str]:
    """A stored cluster summary's tree rules in the reader's language (summaries stored
    before the rules were kept as data keep their English lines)."""
    leaves = summary.get("tree_leaves")
    if not leaves:
        return [str(rule) for rule in summary.get("tree_rules") or ()]
    return [
        tree_rule_text(
            TreeLeaf(
                conditions=tuple(
                    (str(f), _nan_if_none(low, -np.inf), _nan_if_none(high, np.inf), bool(i))
                    for f, low, high, i in leaf["conditions"]
                ),
                cluster=int(leaf["cluster"]),
                name=str(leaf.get("name") or ""),
                support=int(leaf["support"]),
                purity=float(leaf["purity"]),
            ),
            language,
        )
        for leaf in leaves
    ]


def _nan_if_none(value: Any, default: float = float("nan")) -> float:
    return default if value is None else float(value)


def _profiles(
    features: Sequence[str], raw: FloatArray, scaled: FloatArray, labels: IntArray, k: int
) -> tuple[ClusterProfile, ...]:
    n = raw.shape[0]
    overall_median, overall_mean, cluster_median, cluster_mean = _cluster_statistics(raw, labels, k)
    effects = _cluster_means(scaled, labels, k)
    profiles: list[ClusterProfile] = []
    used_names: set[str] = set()
    for c in range(k):
        size = int(np.count_nonzero(labels == c))
        medians, means, effect = cluster_median[c], cluster_mean[c], effects[c]
        # effect: distance of the cluster's centre from everybody's, in standard deviations
        top = [int(j) for j in np.argsort(-np.abs(effect), kind="stable")[:3]]
        comparisons = tuple(
            Comparison(features[j], medians[j], overall_median[j])
            if medians[j] != overall_median[j] or not np.isfinite(medians[j])
            else Comparison(features[j], means[j], overall_mean[j], "average")
            for j in top
        )
        words = [_name_word(features[j], effect[j]) for j in top]
        name = _unique_name(words, used_names)
        used_names.add(name)
        profiles.append(
            ClusterProfile(
                cluster=c,
                name=name,
                size=size,
                share=size / n,
                medians={f: float(medians[j]) for j, f in enumerate(features)},
                distinctive=tuple(features[j] for j in top),
                traits=tuple(
                    describe_difference(c.feature, c.value, c.typical, statistic=c.statistic)
                    for c in comparisons
                ),
                comparisons=comparisons,
            )
        )
    return tuple(profiles)


def _cluster_statistics(
    raw: FloatArray, labels: IntArray, k: int
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Median and mean of every feature, overall and per cluster, ignoring missing values
    (NaN where nobody has the feature). One feature column at a time, sorted by cluster, so
    that every slice is contiguous."""
    n_features = raw.shape[1]
    overall_median, overall_mean = np.full(n_features, np.nan), np.full(n_features, np.nan)
    cluster_median, cluster_mean = (
        np.full((k, n_features), np.nan),
        np.full((k, n_features), np.nan),
    )
    order = np.argsort(labels, kind="stable")
    ends = np.cumsum(np.bincount(labels, minlength=k))
    starts = ends - np.bincount(labels, minlength=k)
    for j in range(n_features):
        column = raw[order, j]
        present = column[~np.isnan(column)]
        if present.size:
            overall_median[j], overall_mean[j] = np.median(present), present.mean()
        for c in range(k):
            segment = column[starts[c] : ends[c]]
            present = segment[~np.isnan(segment)]
            if present.size:
                cluster_median[c, j], cluster_mean[c, j] = np.median(present), present.mean()
    return overall_median, overall_mean, cluster_median, cluster_mean


def _cluster_means(matrix: FloatArray, labels: IntArray, k: int) -> FloatArray:
    """Per-cluster column means of a matrix without missing values."""
    counts = np.maximum(np.bincount(labels, minlength=k), 1)
    sums = [np.bincount(labels, weights=matrix[:, j], minlength=k) for j in range(matrix.shape[1])]
    return np.column_stack(sums) / counts[:, None] if sums else np.zeros((k, 0))


_TYPICAL, _HIGH, _LOW = "typical {label}", "high {label}", "low {label}"

#: The words of cluster names and labels in Chinese (names are stored in English and
#: shown in the reader's language: :func:`cluster_name_render`).
CHINESE: dict[str, str] = {
    _TYPICAL: "{label}一般",
    _HIGH: "{label}高",
    _LOW: "{label}低",
    # labels
    "orders": "订单数",
    "purchase days": "购买天数",
    "spend": "消费",
    "average order value": "客单价",
    "recency": "距上次购买",
    "tenure": "客龄",
    "orders in 90 days": "90 天订单数",
    "12-month spend": "12 个月消费",
    "return rate": "退货率",
    "cancellation rate": "取消率",
    "coupon use": "用券率",
    "rating": "评分",
    "review sentiment": "评价情感",
    "reviews": "评价数",
    "helpful votes": "有用票数",
    "tickets": "工单数",
    "complaints": "投诉数",
    "business share": "企业客户占比",
    "P(alive)": "活跃概率",
    "churn risk": "流失风险",
    "12-month value": "12 个月价值",
    "credit score": "信用分",
    # words
    "frequent": "常购",
    "occasional": "偶购",
    "active": "活跃",
    "quiet": "沉寂",
    "high spend": "高消费",
    "low spend": "低消费",
    "high value": "高价值",
    "low value": "低价值",
    "big baskets": "大单",
    "small baskets": "小单",
    "lapsed": "久未购买",
    "recent": "近期购买",
    "long-standing": "老客户",
    "new": "新客户",
    "many returns": "退货多",
    "few returns": "退货少",
    "cancels often": "常取消",
    "rarely cancels": "少取消",
    "coupon-driven": "爱用券",
    "full price": "原价购买",
    "happy": "满意",
    "unhappy": "不满意",
    "positive": "好评",
    "negative": "差评",
    "reviewers": "爱评价",
    "silent": "不评价",
    "influential": "有影响力",
    "little influence": "影响力小",
    "needs support": "常需客服",
    "self-reliant": "少找客服",
    "complains": "常投诉",
    "no complaints": "无投诉",
    "business": "企业",
    "individual": "个人",
    "likely gone": "可能流失",
    "safe": "稳定",
    "good credit": "信用好",
    "poor credit": "信用差",
}
_WORDS = {word for pair in _NAME_WORDS.values() for word in pair}
_SUFFIX = re.compile(r"^(?P<base>.*?)(?P<suffix> \(\d+\))?$")


def _name_word(feature: str, effect: float) -> str:
    """A word for the cluster's side of ``feature``; within a quarter of a standard
    deviation of everybody it is "typical"."""
    label = _label(feature)
    if abs(effect) < 0.25:
        return _TYPICAL.format(label=label)
    high, low = _NAME_WORDS.get(feature, (_HIGH.format(label=label), _LOW.format(label=label)))
    return high if effect > 0 else low


def cluster_name_render(name: str, language: str = "en") -> str:
    """A cluster's name (as stored, in English) in the reader's language, word by word,
    e.g. "coupon-driven · occasional" → "爱用券 · 偶购". Unknown words stay in English."""
    match = _SUFFIX.match(name)
    if not language.startswith("zh") or not name or match is None:
        return name
    words = []
    for word in match["base"].split(" · "):
        for template in (_TYPICAL, _HIGH, _LOW):
            prefix = template.removesuffix("{label}")
            if word not in _WORDS and word.startswith(prefix):
                label = word.removeprefix(prefix)
                words.append(CHINESE[template].format(label=CHINESE.get(label, label)))
                break
        else:
            words.append(CHINESE.get(word, word))
    return " · ".join(words) + (match["suffix"] or "")


def _unique_name(words: list[str], used: set[str]) -> str:
    distinct = list(dict.fromkeys(words))
    for length in (2, 3):
        name = " · ".join(distinct[:length])
        if name not in used:
            return name
    base = " · ".join(distinct[:2])
    suffix = 2
    while f"{base} ({suffix})" in used:
        suffix += 1
    return f"{base} ({suffix})"


# ---------------------------------------------------------------------- tree rules


def _threshold_text(feature: str, value: float) -> str:
    return f"{100 * value:.0f} %" if _is_rate(feature) else _number(value)


def _condition(
    feature: str, is_left: bool, threshold: float, is_integer: bool, language: str = "en"
) -> str:
    label = _label(feature, language)
    if is_integer and np.isfinite(threshold) and not _is_rate(feature):
        # integer data split between n and n+1: "orders ≤ 3" / "orders ≥ 4"
        cut = float(np.floor(threshold))
        return f"{label} ≤ {_number(cut)}" if is_left else f"{label} ≥ {_number(cut + 1)}"
    text = _threshold_text(feature, threshold)
    return f"{label} ≤ {text}" if is_left else f"{label} > {text}"


def _tree_leaves(
    tree: DecisionTreeClassifier,
    filled: FloatArray,
    labels: IntArray,
    k: int,
    features: Sequence[str],
    names: dict[int, str],
) -> tuple[TreeLeaf, ...]:
    """One rule per leaf, left to right, with support and purity measured on all customers.

    A subtree whose leaves all predict the same cluster is read as one leaf, and bounds on
    the same feature along a path are merged, so each rule is as short as it can be.
    """
    structure = tree.tree_
    classes = np.asarray(tree.classes_, dtype=np.int64)
    is_integer = np.all(filled == np.round(filled), axis=0)
    paths = tree.decision_path(filled).tocsc()
    # customers per node and cluster, over the whole table (the tree may be fit on a sample)
    node_counts = np.zeros((structure.node_count, k), dtype=np.int64)
    for node in range(structure.node_count):
        members = paths.indices[paths.indptr[node] : paths.indptr[node + 1]]
        node_counts[node] = np.bincount(labels[members], minlength=k)

    def leaf_classes(node: int) -> set[int]:
        left, right = structure.children_left[node], structure.children_right[node]
        if left == right:
            return {int(classes[int(np.argmax(structure.value[node][0]))])}
        return leaf_classes(left) | leaf_classes(right)

    leaves: list[TreeLeaf] = []

    def walk(node: int, bounds: dict[int, tuple[float, float]]) -> None:
        predicted = leaf_classes(node)
        if len(predicted) == 1:
            cluster = predicted.pop()
            counts = node_counts[node]
            support = int(counts.sum())
            leaves.append(
                TreeLeaf(
                    conditions=tuple(
                        (features[j], low, high, bool(is_integer[j]))
                        for j, (low, high) in bounds.items()
                    ),
                    cluster=cluster,
                    name=names.get(cluster, ""),
                    support=support,
                    purity=float(counts[cluster] / support) if support else 0.0,
                )
            )
            return
        j = int(structure.feature[node])
        threshold = float(structure.threshold[node])
        low, high = bounds.get(j, (-np.inf, np.inf))
        walk(int(structure.children_left[node]), {**bounds, j: (low, min(high, threshold))})
        walk(int(structure.children_right[node]), {**bounds, j: (max(low, threshold), high)})

    walk(0, {})
    return tuple(leaves)


#: A tree rule's words, English and Chinese.
_RULE = (
    "{head} → cluster {cluster} ({name}; {support:,} customers, {purity:.0f} % of them in it)",
    "{head} → 第 {cluster} 群组（{name}；{support:,} 位客户，其中 {purity:.0f} % 属于该群组）",
)
_AND = (" and ", " 且 ")
_EVERYONE = ("everyone", "所有客户")


def tree_rule_text(leaf: TreeLeaf, language: str = "en") -> str:
    """A tree rule in words, e.g. ``"spend > 1,200 and orders ≥ 5 → cluster 2 (high spend;
    1,234 customers, 91 % of them in it)"``."""
    chinese = _is_chinese(language)
    conditions = [
        _bounds_text(feature, low, high, integer, language)
        for feature, low, high, integer in leaf.conditions
    ]
    return _RULE[chinese].format(
        head=_AND[chinese].join(conditions) if conditions else _EVERYONE[chinese],
        cluster=leaf.cluster,
        name=cluster_name_render(leaf.name, language),
        support=leaf.support,
        purity=100 * leaf.purity,
    )


def _bounds_text(
    feature: str, low: float, high: float, is_integer: bool, language: str = "en"
) -> str:
    if np.isfinite(low) and np.isfinite(high):
        lower = _condition(feature, False, low, is_integer, language)
        upper = _condition(feature, True, high, is_integer, language)
        return f"{lower}{_AND[_is_chinese(language)]}{upper.removeprefix(_label(feature, language) + ' ')}"
    if np.isfinite(high):
        return _condition(feature, True, high, is_integer, language)
    return _condition(feature, False, low, is_integer, language)
