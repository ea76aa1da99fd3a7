"""What campaign messages and other apps read: ``recommendations_for`` and the message
context."""

from __future__ import annotations

import pytest

from patron.conftest import make_customer
from patron.errors import ValidationFailed
from patron.recommend.selectors import message_context, message_contexts, recommendations_for
from patron.recommend.services import recommendations_refresh
from patron.recommend.tests.conftest import AS_OF, TeaShop

# the refresh reads orders and events through ADBC on PostgreSQL: it sees committed rows only
pytestmark = pytest.mark.django_db(transaction=True)


def test_recommendations_for_gives_names_and_reasons(tea_shop: TeaShop) -> None:
    # given
    recommendations_refresh(as_of=AS_OF, k=5)
    # when
    items = recommendations_for(tea_shop.customers["丁"].pk, k=2)
    # then
    assert [(i.rank, i.name, i.basis) for i in items] == [
        (1, "茶叶", "together"),
        (2, "茶壶", "together"),
    ]
    assert items[0].reason in {"Bought with 茶杯 by 2 customers", "与「茶杯」一起被 2 位顾客购买"}


def test_the_message_context_lists_the_names(tea_shop: TeaShop) -> None:
    # given
    recommendations_refresh(as_of=AS_OF, k=5)
    ding, wu = tea_shop.customers["丁"].pk, tea_shop.customers["戊"].pk
    # when / then
    assert message_context(ding) == {"recommended": "茶叶、茶壶、杯垫"}
    assert message_context(wu) == {"recommended": "茶杯、茶叶、茶壶"}  # best sellers
    assert message_contexts([ding, wu], k=2) == {
        ding: {"recommended": "茶叶、茶壶"},
        wu: {"recommended": "茶杯、茶叶"},
    }


def test_before_any_refresh_the_context_is_empty() -> None:
    customer = make_customer(name="新客")
    assert message_context(customer.pk) == {"recommended": ""}
    assert message_contexts([customer.pk]) == {customer.pk: {"recommended": ""}}


def test_k_is_bounded() -> None:
    with pytest.raises(ValidationFailed, match="k:"):
        recommendations_for(1, k=0)
    with pytest.raises(ValidationFailed, match="k:"):
        message_contexts([1], k=11)
