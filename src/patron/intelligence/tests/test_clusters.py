"""k-means clusters with readable profiles and an explaining decision tree (R-B5)."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from patron.intelligence.models import clusters
from patron.intelligence.models.clusters import (
    DEFAULT_CLUSTER_FEATURES,
    CustomerClusters,
    describe_difference,
    profile_traits_render,
    tree_rule_text,
    tree_rules_render,
)

GROUP_SIZE = 60


def _three_groups(seed: int = 0) -> pa.Table:
    """Lapsed one-off buyers, recent shoppers who return a lot, and frequent big spenders
    (60 each, in that order), clearly apart."""
    rng = np.random.default_rng(seed)
    n = 3 * GROUP_SIZE
    group = np.repeat([0, 1, 2], GROUP_SIZE)
    orders = np.choose(
        group, [rng.integers(1, 3, n), rng.integers(3, 6, n), rng.integers(12, 20, n)]
    )
    aov = np.choose(
        group, [rng.uniform(40, 60, n), rng.uniform(80, 120, n), rng.uniform(300, 400, n)]
    )
    recency = np.choose(
        group, [rng.uniform(300, 500, n), rng.uniform(5, 40, n), rng.uniform(5, 40, n)]
    )
    return_rate = np.choose(
        group, [rng.uniform(0, 0.05, n), rng.uniform(0.3, 0.5, n), rng.uniform(0, 0.05, n)]
    )
    rating = rng.uniform(3, 5, n)
    rating[::7] = np.nan  # customers without reviews
    return pa.table(
        {
            "customer_id": np.arange(1000, 1000 + n),
            "orders": orders.astype(np.int64),
            "spend": orders * aov,
            "aov": aov,
            "recency_days": recency,
            "tenure_days": recency + rng.uniform(100, 400, n),
            "return_rate": return_rate,
            "mean_rating": rating,
            "group": group,
        }
    )


def test_finds_the_three_groups_and_numbers_them_by_spend() -> None:
    # given
    table = _three_groups()
    # when
    model = CustomerClusters(random_state=0).fit(table)
    # then: k chosen by silhouette, each true group is exactly one cluster
    assert model.n_clusters_ == 3
    assert sorted(model.silhouette_) == [3, 4, 5, 6, 7]
    assert max(model.silhouette_, key=lambda k: model.silhouette_[k]) == 3
    group = table.column("group").to_numpy()
    # lapsed one-off buyers spend least, big spenders most
    assert model.labels_.tolist() == group.tolist()
    assert [p.size for p in model.profiles_] == [GROUP_SIZE, GROUP_SIZE, GROUP_SIZE]
    assert [p.share for p in model.profiles_] == pytest.approx([1 / 3, 1 / 3, 1 / 3])
    # the default features absent from the table are skipped, in their declared order
    assert model.features_ == (
        "orders",
        "spend",
        "aov",
        "recency_days",
        "tenure_days",
        "return_rate",
        "mean_rating",
    )


def test_profiles_say_in_plain_words_what_sets_each_cluster_apart() -> None:
    # given
    table = _three_groups()
    # when
    profiles = CustomerClusters(random_state=0).fit(table).profiles_
    # then
    lapsed, returners, big = profiles
    assert lapsed.name == "lapsed · long-standing"
    assert lapsed.distinctive == ("recency_days", "tenure_days", "spend")
    assert lapsed.traits == (
        "recency 13× longer than typical",
        "tenure 1.9× longer than typical",
        "spend 79 % below the median",
    )
    assert returners.name == "many returns · recent"
    assert returners.traits[0] == "return rate 40 % vs 4 % typical"
    assert big.name == "big baskets · high spend"
    assert big.traits == (
        "average order value 3.4× the median",
        "spend 13× the median",
        "orders 4.0× the median",
    )
    # medians are of the raw features
    orders = table.column("orders").to_numpy()
    assert big.medians["orders"] == float(np.median(orders[2 * GROUP_SIZE :]))


def test_the_decision_tree_reproduces_the_clusters_with_readable_rules() -> None:
    # given
    table = _three_groups()
    # when
    tree = CustomerClusters(random_state=0).fit(table).tree_
    # then: one rule per cluster, subtrees that agree read as one line
    assert tree.model.get_depth() <= 3
    assert tree.fidelity == 1.0
    assert tree.rules == (
        "return rate ≤ 18 % and recency ≤ 170 → cluster 2 "
        "(big baskets · high spend; 60 customers, 100 % of them in it)",
        "return rate ≤ 18 % and recency > 170 → cluster 0 "
        "(lapsed · long-standing; 60 customers, 100 % of them in it)",
        "return rate > 18 % → cluster 1 (many returns · recent; 60 customers, 100 % of them in it)",
    )


def test_tree_rules_on_one_integer_feature_read_exactly() -> None:
    # given: three spend levels, whole numbers
    spend = np.concatenate([np.arange(10, 30), np.arange(100, 120), np.arange(1000, 1020)])
    table = pa.table({"customer_id": np.arange(60), "spend": spend})
    # when
    model = CustomerClusters(k=3, features=["spend"], random_state=0).fit(table)
    # then: thresholds halfway between the groups, written as whole-number bounds
    assert model.tree_.rules == (
        "spend ≤ 64 → cluster 0 (low spend; 20 customers, 100 % of them in it)",
        "spend ≥ 65 and ≤ 559 → cluster 1 (typical spend; 20 customers, 100 % of them in it)",
        "spend ≥ 560 → cluster 2 (high spend; 20 customers, 100 % of them in it)",
    )
    assert model.silhouette_ == {}


def test_same_seed_same_clusters_and_predict_matches_fit() -> None:
    # given
    table = _three_groups(seed=3)
    # when
    first = CustomerClusters(random_state=7).fit(table)
    second = CustomerClusters(random_state=7).fit(table)
    # then
    assert first.labels_.tolist() == second.labels_.tolist()
    assert first.profiles_ == second.profiles_
    assert first.tree_.rules == second.tree_.rules
    assert first.predict(table).tolist() == first.labels_.tolist()


def test_predict_handles_new_customers_with_missing_values() -> None:
    # given: a fitted model and two new customers, one with nulls
    model = CustomerClusters(random_state=0).fit(_three_groups())
    new = pa.table(
        {
            "customer_id": [1, 2],
            "orders": [15, None],
            "spend": [5200.0, None],
            "aov": [350.0, None],
            "recency_days": [10.0, None],
            "tenure_days": [300.0, None],
            "return_rate": [0.01, None],
            "mean_rating": [None, None],
        }
    )
    # when
    clusters = model.predict(new)
    # then: the big spender joins the big spenders; the blank one lands somewhere valid
    assert clusters[0] == 2
    assert 0 <= clusters[1] <= 2


def test_summary_is_json_ready() -> None:
    # given
    table = _three_groups().drop_columns(["mean_rating"])
    table = table.append_column("mean_rating", pa.array([None] * table.num_rows, pa.float64()))
    model = CustomerClusters(random_state=0).fit(table)
    # when
    summary = json.loads(json.dumps(model.summary()))
    # then
    assert summary["k"] == 3
    assert summary["tree_fidelity"] == 1.0
    assert [p["size"] for p in summary["profiles"]] == [GROUP_SIZE] * 3
    assert summary["profiles"][0]["medians"]["mean_rating"] is None


@pytest.mark.parametrize(
    ("feature", "cluster_value", "typical", "expected"),
    [
        ("spend", 320.0, 100.0, "spend 3.2× the median"),
        ("spend", 25.0, 100.0, "spend 75 % below the median"),
        ("recency_days", 200.0, 50.0, "recency 4.0× longer than typical"),
        ("recency_days", 10.0, 50.0, "recency 5.0× shorter than typical"),
        ("return_rate", 0.18, 0.05, "return rate 18 % vs 5 % typical"),
        ("complaints", 2.0, 0.0, "complaints 2 vs 0 typical"),
        ("loyalty_points", 4500.0, 300.0, "loyalty points 15× the median"),
    ],
)
def test_differences_in_plain_words(
    feature: str, cluster_value: float, typical: float, expected: str
) -> None:
    assert describe_difference(feature, cluster_value, typical) == expected


def test_when_medians_tie_the_averages_speak() -> None:
    assert (
        describe_difference("complaints", 1.4, 0.2, statistic="average")
        == "complaints 7.0× the average"
    )
    assert (
        describe_difference("complaints", 1.4, 0.0, statistic="average")
        == "complaints averages 1.4 vs 0 typical"
    )
    assert (
        describe_difference("spend", 30.0, 100.0, statistic="average")
        == "spend 70 % below the average"
    )


def test_an_explicit_feature_missing_from_the_table_is_named() -> None:
    # given
    table = _three_groups()
    # when / then
    with pytest.raises(ValueError, match="features: column\\(s\\) not in the table: coupon_share"):
        CustomerClusters(features=["spend", "coupon_share"]).fit(table)


def test_refuses_too_few_customers_or_clusters() -> None:
    tiny = pa.table({"customer_id": [1, 2], "spend": [1.0, 2.0], "orders": [1, 2]})
    with pytest.raises(ValueError, match="table: need at least 3 customers"):
        CustomerClusters().fit(tiny)
    with pytest.raises(ValueError, match="k: need at least 2 clusters"):
        CustomerClusters(k=1)
    same = pa.table({"customer_id": [1, 2, 3, 4], "spend": [5.0] * 4, "orders": [1] * 4})
    with pytest.raises(ValueError, match="table: every customer has the same features"):
        CustomerClusters(k=3).fit(same)
    two = pa.table({"customer_id": [1, 2, 3, 4], "spend": [5.0, 5.0, 9.0, 9.0], "orders": [1] * 4})
    with pytest.raises(ValueError, match="k: 3 clusters but only 2 distinct customers"):
        CustomerClusters(k=3).fit(two)


def test_default_features_cover_loyalty_value_preference_and_risk() -> None:
    assert {"orders", "recency_days", "spend", "coupon_share", "return_rate"} <= set(
        DEFAULT_CLUSTER_FEATURES
    )


def test_large_tables_use_mini_batches_and_find_the_same_groups(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given: the mini-batch path switched on for a small table
    monkeypatch.setattr(clusters, "_MINIBATCH_FROM_ROWS", 100)
    table = _three_groups()
    # when
    model = CustomerClusters(k=3, random_state=0).fit(table)
    # then
    assert type(model._model).__name__ == "MiniBatchKMeans"
    assert model.labels_.tolist() == table.column("group").to_pylist()


@pytest.mark.parametrize(
    ("feature", "cluster_value", "typical", "statistic", "expected"),
    [
        ("spend", 320.0, 100.0, "median", "消费为中位数的 3.2 倍"),
        ("spend", 25.0, 100.0, "median", "消费比中位数低 75 %"),
        ("spend", 30.0, 100.0, "average", "消费比平均值低 70 %"),
        ("recency_days", 200.0, 50.0, "median", "距上次购买为一般的 4.0 倍"),
        ("recency_days", 10.0, 50.0, "median", "距上次购买仅为一般的 1/5.0"),
        ("return_rate", 0.18, 0.05, "median", "退货率 18 %，一般为 5 %"),
        ("complaints", 2.0, 0.0, "median", "投诉数 2，一般为 0"),
        ("complaints", 1.4, 0.0, "average", "投诉数平均 1.4，一般为 0"),
        ("loyalty_points", 4500.0, 300.0, "median", "loyalty points为中位数的 15 倍"),
    ],
)
def test_differences_in_chinese(
    feature: str, cluster_value: float, typical: float, statistic: str, expected: str
) -> None:
    assert (
        describe_difference(
            feature, cluster_value, typical, statistic=statistic, language="zh-hans"
        )
        == expected
    )


def test_stored_profiles_and_tree_rules_read_in_either_language() -> None:
    # given: a fitted model's summary as a run stores it (JSON)
    model = CustomerClusters(random_state=0).fit(_three_groups())
    summary = json.loads(json.dumps(model.summary()))
    lapsed = summary["profiles"][0]
    # when / then: in English the stored data reads as the model's own lines
    assert profile_traits_render(lapsed) == list(model.profiles_[0].traits)
    assert tree_rules_render(summary) == list(model.tree_.rules)
    # in Chinese, every trait and rule is worded anew
    assert profile_traits_render(lapsed, "zh-hans") == [
        "距上次购买为一般的 13 倍",
        "客龄为一般的 1.9 倍",
        "消费比中位数低 79 %",
    ]
    assert tree_rules_render(summary, "zh-hans") == [
        "退货率 ≤ 18 % 且 距上次购买 ≤ 170 → 第 2 群组（大单 · 高消费；60 位客户，其中 100 % 属于该群组）",
        "退货率 ≤ 18 % 且 距上次购买 > 170 → 第 0 群组（久未购买 · 老客户；60 位客户，其中 100 % 属于该群组）",
        "退货率 > 18 % → 第 1 群组（退货多 · 近期购买；60 位客户，其中 100 % 属于该群组）",
    ]


def test_profiles_and_rules_stored_as_lines_only_keep_their_lines() -> None:
    # given: a run stored before the traits and rules were kept as data
    profile = {"cluster": 0, "name": "low spend", "traits": ["spend 57 % below the median"]}
    summary = {
        "tree_rules": ["spend ≤ 29.4 → cluster 0 (low spend; 12 customers, 99 % of them in it)"]
    }
    # then: they read as stored, whatever the language
    assert profile_traits_render(profile, "zh-hans") == ["spend 57 % below the median"]
    assert tree_rules_render(summary, "zh-hans") == summary["tree_rules"]


def test_a_two_sided_bound_reads_in_chinese() -> None:
    # given: three spend levels, whole numbers
    spend = np.concatenate([np.arange(10, 30), np.arange(100, 120), np.arange(1000, 1020)])
    model = CustomerClusters(k=3, features=["spend"], random_state=0).fit(
        pa.table({"customer_id": np.arange(60), "spend": spend})
    )
    # when
    middle = model.tree_.leaves[1]
    # then
    assert tree_rule_text(middle, "zh-hans") == (
        "消费 ≥ 65 且 ≤ 559 → 第 1 群组（消费一般；20 位客户，其中 100 % 属于该群组）"
    )
