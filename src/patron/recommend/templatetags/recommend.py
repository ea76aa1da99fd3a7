"""``{% suggested_products customer_id as suggestions %}``: the customer page's panel reads
the stored suggestions itself, so the page's view needs no change (None for those who may not
see them)."""

from __future__ import annotations

from typing import Any

from django import template

from patron.recommend import selectors

register = template.Library()


@register.simple_tag(takes_context=True)
def suggested_products(
    context: template.Context, customer_id: int, k: int = selectors.DEFAULT_SHOWN
) -> selectors.CustomerSuggestions | None:
    request = context.get("request")
    user: Any = getattr(request, "user", None) or context.get("user")
    if user is None or not selectors.may_see_recommendations(user):
        return None
    return selectors.customer_recommendations(user=user, customer_id=customer_id, k=k)
