"""Unusual customers the rules miss: an isolation forest on the customer features.

Pure library, no Django. The input is the table of
``patron.intelligence.features.customer_features`` (one row per customer, numbers only); the
output ranks every customer by how easily the forest isolates them, marks the most unusual
``contamination`` share as outliers, and names the features that made each one unusual.

Isolation forest: Liu, Ting & Zhou, "Isolation Forest", ICDM 2008 (scikit-learn's
``IsolationForest``). Its anomaly score ``s(x, n) = 2^(−E[h(x)] / c(n))`` lies in (0, 1]:
about 0.5 and below is ordinary, near 1 is isolated at once; ``score`` is that number.

The features are put on one scale first, robustly, so that one heavy-tailed feature (spend)
does not decide every split and the reasons read alike across features: ``z = (x − median) /
scale`` with ``scale = IQR / 1.349`` (the IQR of a normal distribution is 1.349 σ); when the
IQR is 0, as for counts most customers have none of (chargebacks), ``1.2533 × mean |x −
median|`` (the mean absolute deviation of a normal distribution is 0.7979 σ), and 1 when that
is 0 too. Missing values are replaced by the feature's median (z = 0), so a customer without
reviews is ordinary on the review features rather than unusual.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyarrow as pa
from sklearn.ensemble import IsolationForest

#: Features left out: codes of a category (no order to isolate along) and the key.
EXCLUDED = frozenset({"customer_id", "registration_channel"})
IQR_TO_SIGMA = 1.349
MEAN_DEVIATION_TO_SIGMA = 1.2533

REASON_TYPE = pa.struct(
    [
        ("feature", pa.string()),
        ("value", pa.float64()),
        ("median", pa.float64()),
        ("z", pa.float64()),
    ]
)
RESULT_SCHEMA = pa.schema(
    [
        ("customer_id", pa.int64()),
        ("score", pa.float64()),
        ("is_outlier", pa.bool_()),
        ("reasons", pa.list_(REASON_TYPE)),
    ]
)

F64 = npt.NDArray[np.float64]


def anomalies(
    features: pa.Table, *, contamination: float = 0.01, seed: int = 0, top: int = 3
) -> pa.Table:
    """Every customer of ``features`` with an anomaly score (higher = more unusual, 0..1),
    whether it is among the ``contamination`` share of outliers, and its ``top`` reasons:
    the features furthest from the median in robust z, each with the customer's value (null
    when missing), the median and z.

    Deterministic given ``seed`` (one thread). Rows keep the input's order. Columns that are
    not numeric, are excluded (``EXCLUDED``) or are null for everyone are not used.
    """
    if not 0 < contamination <= 0.5:
        raise ValueError("contamination must be in (0, 0.5]")
    if "customer_id" not in features.column_names:
        raise ValueError("features lack the column customer_id")
    names = [
        f.name
        for f in features.schema
        if f.name not in EXCLUDED
        and (pa.types.is_integer(f.type) or pa.types.is_floating(f.type))
        and features.column(f.name).null_count < features.num_rows
    ]
    n = features.num_rows
    customers = features.column("customer_id").cast(pa.int64())
    if n == 0 or not names:
        empty = pa.array([[]] * n, pa.list_(REASON_TYPE))
        return _table(customers, np.zeros(n), np.zeros(n, dtype=bool), empty)
    raw = np.column_stack(
        [
            np.asarray(
                features.column(name).cast(pa.float64()).to_numpy(zero_copy_only=False),
                dtype=np.float64,
            )
            for name in names
        ]
    )
    medians, z = robust_z(raw)
    if n < 2:
        score = np.zeros(n)
        outlier = np.zeros(n, dtype=bool)
    else:
        forest = IsolationForest(
            n_estimators=200, contamination=contamination, random_state=seed, n_jobs=1
        )
        forest.fit(z)
        score = -forest.score_samples(z)
        outlier = forest.predict(z) == -1
    return _table(customers, score, outlier, _reasons(names, raw, medians, z, top))


def robust_z(raw: F64) -> tuple[F64, F64]:
    """Per column the median and every value's robust z (see the module); missing values get
    z = 0."""
    with np.errstate(all="ignore"):
        medians = np.nanmedian(raw, axis=0)
        q75, q25 = np.nanpercentile(raw, [75, 25], axis=0)
        scale = (q75 - q25) / IQR_TO_SIGMA
        mean_deviation = np.nanmean(np.abs(raw - medians), axis=0) * MEAN_DEVIATION_TO_SIGMA
    scale = np.where(scale > 0, scale, mean_deviation)
    scale = np.where(scale > 0, scale, 1.0)
    z = (raw - medians) / scale
    return medians, np.nan_to_num(z, nan=0.0)


def _reasons(names: list[str], raw: F64, medians: F64, z: F64, top: int) -> pa.ListArray:
    """Per row the ``top`` features of largest |z|, largest first (among equals the earlier
    feature), leaving out those at the median (z = 0)."""
    n = raw.shape[0]
    top = min(top, len(names))
    rows = np.repeat(np.arange(n), top)
    columns = np.argsort(-np.abs(z), axis=1, kind="stable")[:, :top].ravel()
    chosen = z[rows, columns] != 0
    rows, columns = rows[chosen], columns[chosen]
    offsets = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=n))]).astype(np.int32)
    value = raw[rows, columns]
    items = pa.StructArray.from_arrays(
        [
            pa.array(np.asarray(names, dtype=object)[columns], pa.string()),
            pa.array(value, pa.float64(), mask=np.isnan(value)),
            pa.array(medians[columns], pa.float64()),
            pa.array(z[rows, columns], pa.float64()),
        ],
        fields=list(REASON_TYPE),
    )
    return pa.ListArray.from_arrays(
        pa.array(offsets, pa.int32()), items, type=pa.list_(REASON_TYPE)
    )


def _table(
    customers: pa.ChunkedArray, score: F64, outlier: npt.NDArray[np.bool_], reasons: pa.Array
) -> pa.Table:
    return pa.table(
        [customers, pa.array(score, pa.float64()), pa.array(outlier, pa.bool_()), reasons],
        schema=RESULT_SCHEMA,
    )
