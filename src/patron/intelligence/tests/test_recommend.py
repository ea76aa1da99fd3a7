"""Item–item co-occurrence suggestions on hand-made baskets with known answers, and the
time-split evaluation on a constructed log."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from patron.intelligence.recommend import (
    RecommenderConfig,
    baskets,
    evaluate,
    item_neighbours,
    recommend,
    suggestion_reason,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _log(rows: Sequence[tuple[Any, Any, str]], *, start: datetime = T0) -> pa.Table:
    """(customer, item, event type) rows, one minute apart from ``start``."""
    return pa.table(
        {
            "customer_id": [r[0] for r in rows],
            "item_id": [r[1] for r in rows],
            "event_type": [r[2] for r in rows],
            "occurred_at": pa.array(
                [start + timedelta(minutes=n) for n in range(len(rows))],
                pa.timestamp("us", tz="UTC"),
            ),
        }
    )


# A and B bought together by c1 and c2, A and C by c3, D alone by c4, A alone by c5; c6 only
# looked at B.
SHOP = [
    ("c1", "A", "purchase"),
    ("c1", "B", "purchase"),
    ("c2", "A", "purchase"),
    ("c2", "B", "purchase"),
    ("c3", "A", "purchase"),
    ("c3", "C", "purchase"),
    ("c4", "D", "purchase"),
    ("c5", "A", "purchase"),
    ("c6", "B", "browse"),
]


def _suggest(rows: Sequence[tuple[Any, Any, str]], **kwargs: Any) -> list[dict[str, Any]]:
    k = int(kwargs.pop("k", 3))
    customers = kwargs.pop("customers", None)
    config = RecommenderConfig(**kwargs)
    b = baskets(_log(rows), config=config)
    return recommend(
        b, item_neighbours(b, config), k=k, customers=customers, config=config
    ).table.to_pylist()


def test_baskets_keep_the_strongest_interaction_per_customer_and_item() -> None:
    # given: c1 viewed A twice, carted it, then bought it; viewed B once
    log = _log(
        [
            ("c1", "A", "browse"),
            ("c1", "A", "browse"),
            ("c1", "A", "add_to_cart"),
            ("c1", "A", "purchase"),
            ("c1", "B", "browse"),
            ("c1", "B", "search"),  # no weight: ignored
        ]
    )
    # when
    b = baskets(log)
    # then
    assert b.customers.tolist() == ["c1"]
    assert b.items.tolist() == ["A", "B"]
    assert b.weights.toarray().tolist() == [[1.0, 0.2]]
    assert b.purchased.toarray().tolist() == [[1.0, 0.0]]
    assert b.buyers.tolist() == [1, 0]
    assert b.interested.tolist() == [1, 1]


def test_neighbours_are_conditional_shares_of_the_customers_who_had_the_item() -> None:
    # given
    b = baskets(_log(SHOP))
    # when
    n = item_neighbours(b)
    # then: of A's four buyers two bought B and one C; B had weight 1 + 1 + 0.2 (c6 viewed it)
    sim = n.similarity.toarray()
    assert sim[0].tolist() == [0.0, 0.5, 0.25, 0.0]
    assert sim[1].tolist() == pytest.approx([2 / 2.2, 0.0, 0.0, 0.0])
    assert sim[3].tolist() == [0.0, 0.0, 0.0, 0.0]
    assert n.together.toarray()[0].tolist() == [0.0, 2.0, 1.0, 0.0]
    assert n.bought_together.toarray()[0].tolist() == [0.0, 2.0, 1.0, 0.0]


def test_a_customer_gets_what_was_bought_with_their_items_then_best_sellers() -> None:
    # when
    rows = _suggest(SHOP, customers=["c5"])
    # then: B (half of A's buyers), C (a quarter), then D as the best seller left
    assert [(r["item_id"], r["rank"], r["basis"], r["anchor_item_id"]) for r in rows] == [
        ("B", 1, "together", "A"),
        ("C", 2, "together", "A"),
        ("D", 3, "popular", None),
    ]
    assert [r["score"] for r in rows[:2]] == [0.5, 0.25]
    assert [(r["customers"], r["buyers"]) for r in rows] == [(2, 2), (1, 1), (1, 1)]


def test_what_a_customer_bought_is_never_suggested_unless_asked() -> None:
    # when
    purchased = _suggest(SHOP, customers=["c1", "c6"], k=4)
    interacted = _suggest(SHOP, customers=["c1", "c6"], k=4, exclude="interacted")
    everything = _suggest(SHOP, customers=["c1"], k=4, exclude="none")
    # then
    by = lambda rows, c: [r["item_id"] for r in rows if r["customer_id"] == c]  # noqa: E731
    assert by(purchased, "c1") == ["C", "D"]  # A and B were bought; only two items are left
    assert by(purchased, "c6") == ["A", "B", "C", "D"]  # only looked at B: it may come back
    assert by(interacted, "c6") == ["A", "C", "D"]
    assert by(everything, "c1") == ["A", "B", "C", "D"]


def test_cold_customers_get_the_best_sellers_with_ties_broken_by_key() -> None:
    # when
    rows = _suggest(SHOP, customers=["new"], k=4)
    # then: A has 4 buyers, B 2; C and D one each (and one interested each): by key
    assert [r["item_id"] for r in rows] == ["A", "B", "C", "D"]
    assert {r["basis"] for r in rows} == {"popular"}
    assert [r["buyers"] for r in rows] == [4, 2, 1, 1]
    assert rows[0]["score"] == pytest.approx(4 / 6)


def test_the_same_log_in_any_row_order_gives_the_same_suggestions() -> None:
    # given
    rng = np.random.default_rng(3)
    rows = [
        (f"c{rng.integers(30)}", f"i{rng.integers(12)}", ["purchase", "browse"][rng.integers(2)])
        for _ in range(300)
    ]
    shuffled = [rows[i] for i in rng.permutation(len(rows))]
    # when
    first = _suggest(rows, k=5)
    second = _suggest(shuffled, k=5)
    # then
    assert first == second


def test_equal_scores_are_ordered_by_buyers_then_key() -> None:
    # given: X was bought with Q and with P by one customer each; P has a second buyer
    rows = [
        ("a", "X", "purchase"),
        ("a", "Q", "purchase"),
        ("b", "X", "purchase"),
        ("b", "P", "purchase"),
        ("c", "P", "purchase"),
        ("d", "X", "purchase"),
    ]
    # when
    suggested = _suggest(rows, customers=["d"], k=2)
    # then: P and Q both have P(·|X) = 1/3; P has two buyers
    assert [r["item_id"] for r in suggested] == ["P", "Q"]
    assert suggested[0]["score"] == suggested[1]["score"]


def test_neighbours_are_bounded_per_item_and_blocks_do_not_change_the_answer() -> None:
    # given
    rng = np.random.default_rng(5)
    rows = [(int(rng.integers(40)), int(rng.integers(25)), "purchase") for _ in range(400)]
    small = RecommenderConfig(neighbours=3, block_pairs=1)
    # when
    b = baskets(_log(rows), config=small)
    bounded = item_neighbours(b, small)
    whole = item_neighbours(b, RecommenderConfig(neighbours=3))
    # then
    assert np.diff(bounded.similarity.indptr).max() <= 3
    assert (bounded.similarity != whole.similarity).nnz == 0
    assert recommend(b, bounded, k=4, config=small).table.equals(
        recommend(b, whole, k=4, config=RecommenderConfig(neighbours=3)).table
    )


def test_integer_keys_stay_integers() -> None:
    # when: customer 1 bought both items, so nothing is left for them
    rows = _suggest([(1, 10, "purchase"), (1, 11, "purchase"), (2, 10, "purchase")])
    # then
    assert rows == [
        {
            "customer_id": 2,
            "item_id": 11,
            "rank": 1,
            "score": 0.5,
            "basis": "together",
            "anchor_item_id": 10,
            "customers": 1,
            "buyers": 1,
            "seen": False,
        }
    ]


def test_pairs_seen_by_fewer_customers_than_required_do_not_count() -> None:
    # when: A–C was bought together once, A–B twice
    rows = _suggest(SHOP, customers=["c5"], min_customers=2)
    # then: C comes only as a best seller (it ties with D on buyers: C first by key)
    assert [(r["item_id"], r["basis"]) for r in rows] == [
        ("B", "together"),
        ("C", "popular"),
        ("D", "popular"),
    ]


def test_a_crowded_basket_keeps_its_strongest_then_latest_items() -> None:
    # given: a customer viewed i1..i4, then bought i2
    log = _log(
        [
            ("c", "i1", "browse"),
            ("c", "i2", "browse"),
            ("c", "i3", "browse"),
            ("c", "i4", "browse"),
            ("c", "i2", "purchase"),
        ]
    )
    # when
    b = baskets(log, config=RecommenderConfig(max_items_per_customer=2))
    # then: i2 (bought), then i4 (the latest view)
    assert b.weights.toarray().tolist() == [[0.0, 1.0, 0.0, 0.2]]


def test_reasons_say_who_bought_or_looked_at_both() -> None:
    assert suggestion_reason("together", anchor="茶杯", customers=5, buyers=3).render() == (
        "Bought with 茶杯 by 3 customers"
    )
    assert suggestion_reason("together", anchor="A", customers=1, buyers=1).render() == (
        "Bought with A by 1 customer"
    )
    assert suggestion_reason("together", anchor="A", customers=4, buyers=0).render() == (
        "Looked at with A by 4 customers"
    )
    assert suggestion_reason("together", anchor="A", customers=1, buyers=0, seen=True).render() == (
        "Viewed before, together with A"
    )
    assert suggestion_reason("together", anchor="A", customers=3, buyers=2, seen=True).render() == (
        "Bought with A by 2 customers"
    )
    assert suggestion_reason("popular", anchor="", customers=9, buyers=7).render() == (
        "Popular: bought by 7 customers"
    )
    assert suggestion_reason("popular", anchor="", customers=2, buyers=0).to_json() == {
        "template": "Popular: looked at by {customers} customers",
        "params": {"customers": 2},
    }


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="similarity"):
        RecommenderConfig(similarity="jaccard")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="exclusion"):
        RecommenderConfig(exclude="all")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="neighbours"):
        RecommenderConfig(neighbours=0)
    with pytest.raises(ValueError, match="k must"):
        b = baskets(_log(SHOP))
        recommend(b, None, k=0)
    with pytest.raises(ValueError, match="no column 'item_id'"):
        baskets(pa.table({"customer_id": [1], "event_type": ["purchase"]}))


def test_an_empty_log_gives_no_suggestions_for_anyone() -> None:
    b = baskets(_log([("c", None, "purchase")]))
    assert b.n_customers == 0
    assert len(recommend(b, item_neighbours(b), k=3, customers=["x"])) == 0


_rows = st.lists(
    st.tuples(
        st.integers(0, 12),
        st.integers(0, 15),
        st.sampled_from(["purchase", "add_to_cart", "favourite", "browse"]),
    ),
    min_size=1,
    max_size=80,
)


@settings(max_examples=60, deadline=None)
@given(
    rows=_rows,
    k=st.integers(1, 6),
    exclude=st.sampled_from(["purchased", "interacted"]),
    neighbours=st.integers(1, 5),
    similarity=st.sampled_from(["conditional", "cosine", "lift", "count"]),
)
def test_suggestions_respect_k_and_never_include_excluded_items(
    rows: list[tuple[int, int, str]], k: int, exclude: str, neighbours: int, similarity: str
) -> None:
    # given
    config = RecommenderConfig(
        exclude=exclude,  # type: ignore[arg-type]
        neighbours=neighbours,
        similarity=similarity,  # type: ignore[arg-type]
        block_pairs=7,
    )
    b = baskets(_log(rows), config=config)
    # when
    table = recommend(
        b, item_neighbours(b, config), k=k, customers=[*range(13), 99], config=config
    ).table
    # then
    kinds = (
        {"purchase"}
        if exclude == "purchased"
        else {"purchase", "add_to_cart", "favourite", "browse"}
    )
    excluded = {(c, i) for c, i, kind in rows if kind in kinds}
    got = list(
        zip(
            table.column("customer_id").to_pylist(),
            table.column("item_id").to_pylist(),
            strict=True,
        )
    )
    assert not excluded & set(got)
    assert len(set(got)) == len(got)
    for customer in {c for c, _ in got}:
        ranks = [
            r
            for (c, _), r in zip(got, table.column("rank").to_pylist(), strict=True)
            if c == customer
        ]
        assert ranks == list(range(1, len(ranks) + 1))
        assert len(ranks) <= k
    # a customer with nothing excluded (the stranger 99) always gets min(k, items) suggestions
    assert sum(1 for c, _ in got if c == 99) == min(k, b.n_items)


# ------------------------------------------------------------------------- evaluation


def test_evaluation_counts_hits_of_new_purchases_after_the_cut() -> None:
    # given: before the cut, A and B go together (c1, c2), c3 bought A; D is the best seller
    cut = T0 + timedelta(days=10)
    before = _log(
        [
            ("c1", "A", "purchase"),
            ("c1", "B", "purchase"),
            ("c2", "A", "purchase"),
            ("c2", "B", "purchase"),
            ("c3", "A", "purchase"),
            ("c4", "D", "purchase"),
            ("c5", "D", "purchase"),
            ("c6", "D", "purchase"),
            ("c7", "D", "purchase"),
            ("c8", "B", "purchase"),
        ]
    )
    # after: c3 buys B (the model's first pick; the best seller D is popularity's); the
    # newcomer c9 buys B and Z (an item nobody had); c8 buys B again (not new: not evaluated);
    # c1 only looks
    after = _log(
        [
            ("c3", "B", "purchase"),
            ("c9", "B", "purchase"),
            ("c9", "Z", "purchase"),
            ("c8", "B", "purchase"),
            ("c1", "C", "browse"),
        ],
        start=cut,
    )
    # when
    result = evaluate(pa.concat_tables([before, after]), cut=cut, k=1)
    # then
    assert (result.customers, result.warm_customers) == (2, 1)
    assert (result.test_purchases, result.unknown_items) == (3, 1)
    assert (result.hit_rate, result.hit_rate_popular) == (0.5, 0.0)
    assert (result.hit_rate_warm, result.hit_rate_warm_popular) == (1.0, 0.0)
    assert (result.recall, result.recall_popular) == (0.5, 0.0)  # c3: 1/1, c9: 0/2
    assert (result.model_only, result.popular_only) == (1, 0)
    assert result.mcnemar_p == 1.0  # one customer proves nothing
    assert (result.train_customers, result.train_items) == (8, 3)


def test_evaluation_with_nothing_bought_after_the_cut_has_no_rates() -> None:
    result = evaluate(_log(SHOP), cut=T0 + timedelta(days=1), k=3)
    assert result.customers == 0
    assert result.hit_rate is None and result.recall is None
    assert result.as_dict()["cut"] == "2026-01-02T00:00:00+00:00"
    assert result.mcnemar_p is None
