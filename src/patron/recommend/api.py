"""``GET /api/customers/{id}/recommendations``: the customer's suggested products with their
reasons (R-G1), from the last refresh (``patron recommend refresh``), never computed inline.

Thin: one selector. 403 without the customer and commerce view rights, 404 unknown customer,
422 a ``k`` out of range.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from django.http import HttpRequest
from ninja import Query, Router, Schema
from pydantic import Field

from patron.customer.api import ErrorOut
from patron.recommend import selectors

customer_router = Router(tags=["recommendations"])

ERRORS: dict[int, Any] = {403: ErrorOut, 404: ErrorOut, 422: ErrorOut}


class RecommendationParams(Schema):
    k: int = Field(selectors.DEFAULT_SHOWN, ge=1, le=selectors.MAX_SHOWN)


class SuggestedProductOut(Schema):
    rank: int
    product_id: int | None = Field(description="Null when the item is not in the catalogue")
    product_ref: str = Field(description="The product's id in its source")
    name: str
    score: float
    basis: Literal["together", "popular"]
    reason: str = Field(description="Why, in the request's language")


class RecommendationsOut(Schema):
    customer_id: int
    is_personal: bool = Field(
        description="False: the shop's best sellers (the customer had no history)"
    )
    computed_at: datetime | None = Field(description="Null: never computed")
    as_of: datetime | None
    items: list[SuggestedProductOut]


@customer_router.get(
    "/{customer_id}/recommendations",
    response={200: RecommendationsOut, **ERRORS},
    summary="Products to suggest to the customer, with the reason for each",
)
def customer_recommendations(
    request: HttpRequest, customer_id: int, params: Query[RecommendationParams]
) -> dict[str, Any]:
    view = selectors.customer_recommendations(
        user=request.user, customer_id=customer_id, k=params.k
    )
    return {
        "customer_id": view.customer_id,
        "is_personal": view.is_personal,
        "computed_at": view.computed_at,
        "as_of": view.as_of,
        "items": list(view.items),
    }
