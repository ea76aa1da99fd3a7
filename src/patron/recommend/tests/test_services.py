"""Refreshing the suggestions from orders and lake events, and back-testing them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from patron.commerce.models import Product
from patron.conftest import make_customer, make_line, make_order
from patron.errors import ValidationFailed
from patron.intelligence.explain import render
from patron.recommend.models import Recommendation, RecommendationRun
from patron.recommend.services import recommendations_evaluate, recommendations_refresh
from patron.recommend.tests.conftest import AS_OF, TeaShop

# the refresh reads orders and events through ADBC on PostgreSQL: it sees committed rows only
pytestmark = pytest.mark.django_db(transaction=True)


def _rows(customer: Any) -> list[tuple[int, str, str, float, str]]:
    return [
        (r.rank, r.product_name, r.basis, round(r.score, 6), render(r.reason))
        for r in Recommendation.objects.filter(customer=customer).order_by("rank")
    ]


def test_refresh_writes_what_was_bought_with_each_customers_products(tea_shop: TeaShop) -> None:
    # when
    result = recommendations_refresh(as_of=AS_OF, k=3)
    # then: 丁 gets the tea and the pot (bought with the cup) and the coaster (looked at)
    assert _rows(tea_shop.customers["丁"]) == [
        (1, "茶叶", "together", 0.6, "Bought with 茶杯 by 2 customers"),
        (2, "茶壶", "together", 0.25, "Bought with 茶杯 by 1 customer"),
        (3, "杯垫", "together", 0.1, "Viewed before, together with 茶杯"),
    ]
    first = Recommendation.objects.get(customer=tea_shop.customers["丁"], rank=1)
    assert (first.product_id, first.product_source, first.product_ref) == (
        tea_shop.products["茶叶"].pk,
        "shop",
        "P2",
    )
    assert first.reason == {
        "template": "Bought with {anchor} by {customers} customers",
        "params": {"anchor": "茶杯", "customers": 2},
    }
    assert (result.customers, result.items, result.purchase_lines, result.events) == (4, 4, 7, 2)
    run = RecommendationRun.objects.get()
    assert (run.pk, run.as_of, run.customers, run.suggestions) == (
        result.run_id,
        AS_OF,
        4,
        result.suggestions,
    )
    assert run.settings["similarity"] == "conditional"


def test_what_a_customer_bought_is_not_suggested_to_them(tea_shop: TeaShop) -> None:
    # when
    recommendations_refresh(as_of=AS_OF, k=3)
    # then: 甲 bought the cup and the tea; the coaster they only looked at may come back
    names = [name for _, name, *_ in _rows(tea_shop.customers["甲"])]
    assert names == ["茶壶", "杯垫"]


def test_customers_without_history_get_the_shop_wide_best_sellers(tea_shop: TeaShop) -> None:
    # when
    recommendations_refresh(as_of=AS_OF, k=3)
    # then
    assert _rows(tea_shop.customers["戊"]) == []
    assert _rows(None) == [
        (1, "茶杯", "popular", 1.0, "Popular: bought by 4 customers"),
        (2, "茶叶", "popular", 0.5, "Popular: bought by 2 customers"),
        (3, "茶壶", "popular", 0.25, "Popular: bought by 1 customer"),
    ]


def test_refresh_twice_replaces_the_set_with_the_same_rows(tea_shop: TeaShop) -> None:
    # given
    recommendations_refresh(as_of=AS_OF, k=3)
    before = _rows(tea_shop.customers["丁"]) + _rows(None)
    # when
    recommendations_refresh(as_of=AS_OF, k=3)
    # then
    assert _rows(tea_shop.customers["丁"]) + _rows(None) == before
    latest = RecommendationRun.objects.order_by("-pk").first()
    assert latest is not None
    assert set(Recommendation.objects.values_list("run_id", flat=True)) == {latest.pk}
    assert Recommendation.objects.count() == latest.suggestions


def test_without_events_only_purchases_count(tea_shop: TeaShop) -> None:
    # when
    result = recommendations_refresh(as_of=AS_OF, k=3, use_events=False)
    # then: nobody bought the coaster: it is no longer related to anything
    assert result.events == 0
    assert [name for _, name, *_ in _rows(tea_shop.customers["丁"])] == ["茶叶", "茶壶"]


def test_order_lines_outside_the_catalogue_are_items_by_their_name(db: None, lake_dir: Any) -> None:
    # given: two customers bought a tray that is not in the catalogue with a cup that is
    cup = Product.objects.create(source="shop", external_id="P1", name="茶杯")
    for n in range(2):
        order = make_order(
            make_customer(name=f"客{n}"),
            external_id=f"T{n}",
            placed_at=AS_OF - timedelta(days=5),
            total="30.00",
        )
        make_line(order, line_no=1, name="茶杯", unit_price="10.00", product=cup)
        if n == 0:
            make_line(order, line_no=2, name="手工茶盘", unit_price="20.00")
    # when
    recommendations_refresh(as_of=AS_OF, k=2)
    # then
    row = Recommendation.objects.get(customer__name="客1", rank=1)
    assert (row.product_id, row.product_ref, row.product_name, row.basis) == (
        None,
        "手工茶盘",
        "手工茶盘",
        "together",
    )


def test_an_empty_shop_refreshes_to_nothing(db: None, lake_dir: Any) -> None:
    result = recommendations_refresh(as_of=AS_OF)
    assert (result.customers, result.suggestions) == (0, 0)
    assert Recommendation.objects.count() == 0


def test_refresh_refuses_bad_arguments(db: None, lake_dir: Any) -> None:
    with pytest.raises(ValidationFailed, match="as_of"):
        recommendations_refresh(as_of=AS_OF.replace(tzinfo=None))
    with pytest.raises(ValidationFailed, match="k:"):
        recommendations_refresh(as_of=AS_OF, k=0)
    assert RecommendationRun.objects.count() == 0


def test_evaluate_backtests_on_the_shops_own_orders(tea_shop: TeaShop) -> None:
    # when: 丁 bought the tea after the cut; it was the model's first suggestion
    result = recommendations_evaluate(cut=AS_OF, end=AS_OF + timedelta(days=30), k=1)
    # then: the best seller left for 丁 is the tea too (the cup is theirs already)
    assert (result.customers, result.warm_customers) == (1, 1)
    assert (result.hit_rate, result.hit_rate_popular) == (1.0, 1.0)
    with pytest.raises(ValidationFailed, match="end"):
        recommendations_evaluate(cut=AS_OF, end=AS_OF)
