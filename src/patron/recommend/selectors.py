"""Reading the stored suggestions: for pages and the API (permission-checked), and for
messages (``message_context``: what a campaign template's ``$recommended`` is filled with).

A customer with no suggestions of their own (no history when the last refresh ran, or a
newcomer since) gets the shop-wide best sellers of that run. Reasons are stored as data and
rendered here, in the reader's language.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.utils import translation

from patron.account.roles import VIEW_COMMERCE, VIEW_CUSTOMERS
from patron.account.services import require_permission
from patron.customer.models import Customer
from patron.errors import NotFound, ValidationFailed
from patron.intelligence.explain import render
from patron.recommend.models import Recommendation, RecommendationRun

DEFAULT_SHOWN = 3
MAX_SHOWN = 10
#: Between product names in a message (Chinese enumeration comma).
NAME_SEPARATOR = "、"
_IN_CHUNK = 500


@dataclass(frozen=True)
class SuggestedProduct:
    rank: int
    product_id: int | None  # None: not a catalogue product (only its reference is known)
    product_ref: str
    name: str
    score: float
    basis: str  # together | popular
    reason: str  # in the reader's language
    computed_at: datetime


@dataclass(frozen=True)
class CustomerSuggestions:
    customer_id: int
    is_personal: bool  # False: the shop-wide best sellers (no history of their own)
    computed_at: datetime | None  # None: never computed
    as_of: datetime | None
    items: tuple[SuggestedProduct, ...]


def reason_text(reason: Any) -> str:
    language = translation.get_language() or "en"
    return render(reason, language=language, translate=translation.gettext)


def _view(row: Recommendation) -> SuggestedProduct:
    return SuggestedProduct(
        rank=row.rank,
        product_id=row.product_id,
        product_ref=row.product_ref,
        name=row.display_name,
        score=row.score,
        basis=row.basis,
        reason=reason_text(row.reason),
        computed_at=row.computed_at,
    )


def _check_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_SHOWN:
        raise ValidationFailed(f"k: expected a whole number from 1 to {MAX_SHOWN}")


def _rows_for(customer_id: int, k: int) -> tuple[list[Recommendation], bool]:
    rows = list(Recommendation.objects.filter(customer_id=customer_id).order_by("rank")[:k])
    if rows:
        return rows, True
    return list(Recommendation.objects.filter(customer__isnull=True).order_by("rank")[:k]), False


def recommendations_for(customer_id: int, k: int = DEFAULT_SHOWN) -> list[SuggestedProduct]:
    """The customer's ``k`` best suggestions (names and reasons), or the best sellers.

    No permission check: for the system's own use (messages, jobs). Staff-facing callers use
    ``customer_recommendations``. Empty before the first refresh.
    """
    _check_k(k)
    rows, _ = _rows_for(customer_id, k)
    return [_view(row) for row in rows]


def customer_recommendations(
    *, user: Any, customer_id: int, k: int = DEFAULT_SHOWN
) -> CustomerSuggestions:
    """The suggestions shown on the customer's page and by the API: they are read from the
    customer's purchases and browsing, so both customer and commerce view rights are needed."""
    require_permission(user, VIEW_CUSTOMERS)
    require_permission(user, VIEW_COMMERCE)
    _check_k(k)
    if not Customer.objects.filter(pk=customer_id).exists():
        raise NotFound(
            f"customer {customer_id} does not exist", details={"customer_id": customer_id}
        )
    rows, personal = _rows_for(customer_id, k)
    run = RecommendationRun.objects.filter(pk=rows[0].run_id).first() if rows else None
    return CustomerSuggestions(
        customer_id=customer_id,
        is_personal=personal,
        computed_at=run.computed_at if run else None,
        as_of=run.as_of if run else None,
        items=tuple(_view(row) for row in rows),
    )


def may_see_recommendations(user: Any) -> bool:
    return bool(
        getattr(user, "is_authenticated", False)
        and user.has_perm(VIEW_CUSTOMERS)
        and user.has_perm(VIEW_COMMERCE)
    )


# ---------------------------------------------------------------------------- messages


def message_context(customer_id: int, k: int = DEFAULT_SHOWN) -> dict[str, str]:
    """``{"recommended": "A、B、C"}``: the names of the customer's ``k`` best suggestions for a
    message template's ``$recommended`` ("" before the first refresh)."""
    names = [item.name for item in recommendations_for(customer_id, k)]
    return {"recommended": NAME_SEPARATOR.join(names)}


def message_contexts(
    customer_ids: Iterable[int], k: int = DEFAULT_SHOWN
) -> dict[int, dict[str, str]]:
    """``message_context`` for many customers in a few queries (a campaign's chunk)."""
    _check_k(k)
    ids = sorted(set(customer_ids))
    names: dict[int, list[str]] = {pk: [] for pk in ids}
    for start in range(0, len(ids), _IN_CHUNK):
        chunk = ids[start : start + _IN_CHUNK]
        rows = (
            Recommendation.objects.filter(customer_id__in=chunk, rank__lte=k)
            .order_by("customer_id", "rank")
            .values_list("customer_id", "product_name", "product_ref")
        )
        for customer_id, name, ref in rows:
            names[customer_id].append(name or f"#{ref}")
    if any(not found for found in names.values()):
        shop_wide = [
            name or f"#{ref}"
            for name, ref in Recommendation.objects.filter(customer__isnull=True, rank__lte=k)
            .order_by("rank")
            .values_list("product_name", "product_ref")
        ]
        for found in names.values():
            if not found:
                found.extend(shop_wide)
    return {pk: {"recommended": NAME_SEPARATOR.join(found)} for pk, found in names.items()}
