"""REST endpoints of the loyalty programme.

Under ``/api/customers/{id}/points``: the summary (balance, tier, next tier, expiring points,
latest entries), the ledger page by page, redemptions and staff adjustments. Under
``/api/loyalty``: the tiers and the points policy.

Thin: each endpoint calls one selector or one service. 403 permission, 404 unknown customer
or tier, 409 a balance too short (the message names it) or a request key reused for another
amount, 422 invalid input.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from django.http import HttpRequest
from ninja import Query, Router, Schema
from pydantic import BeforeValidator, ConfigDict, Field, field_validator

from patron.apitext import NO_NUL, TEXT, Number, WholeNumber, json_number
from patron.customer.api import ErrorOut
from patron.customer.selectors import MAX_PAGE, MAX_PAGE_SIZE
from patron.loyalty import rules, selectors, services, tiers

router = Router(tags=["loyalty"])
customer_router = Router(tags=["loyalty"])

ERRORS: dict[int, Any] = {403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut}
#: A reason or a name: words, not only spaces, and no NUL (PostgreSQL text cannot hold it).
#: \x1c-\x1f are excluded too: Python's strip() removes them, the schema's \s does not.
#: A client's request key: letters, digits and . _ : - (the same for every retry).
REQUEST_KEY = r"^[A-Za-z0-9._:-]+$"

EntryKindOut = Literal[
    "earn_order", "reverse_return", "reverse_cancel", "earn_review", "redeem", "expire", "adjust"
]
GradeIn = Literal["core", "potential", "ordinary"]


#: Request bodies: no unknown fields.
BODY = ConfigDict(extra="forbid")


# ---------------------------------------------------------------------- points


class EntryOut(Schema):
    id: int
    kind: EntryKindOut
    kind_label: str
    points: int = Field(description="Signed: positive in, negative out")
    balance_after: int
    shortfall: int = Field(description="Reversals: points due but not taken (balance stops at 0)")
    amount: Decimal | None = Field(description="Money the points were computed from")
    source_type: str
    source_id: int | None
    reason: str
    occurred_at: datetime
    posted_at: datetime
    expires_on: date | None = Field(description="Lots: the day their points are lost")
    remaining: int | None = Field(description="Lots: points not yet spent, taken back or expired")
    created_by: str


class TierOut(Schema):
    code: str
    name: str
    name_en: str
    rank: int
    min_spend: Decimal | None
    min_grade: GradeIn | None
    min_points: int | None
    needs: Literal["all", "any"]
    grace_days: int
    version: int
    updated_by: str
    updated_at: datetime


class CheckOut(Schema):
    criterion: Literal["spend", "grade", "points"]
    needed: str
    have: str
    missing: str
    is_met: bool


class PointsSummaryOut(Schema):
    customer_id: int
    balance: int
    tier: TierOut | None
    tier_since: date | None
    tier_keeps_until: date | None = Field(
        description="Set while the customer no longer qualifies and keeps the tier (grace)"
    )
    next_tier: TierOut | None
    next_tier_needs: str = Field(description="all or any of next_tier_checks")
    next_tier_checks: list[CheckOut]
    spend: Decimal = Field(description="Net spend over the tier window (CNY)")
    spend_window_months: int
    grade: str
    expiring_points: int
    expiring_by: date
    recent: list[EntryOut]


class EntryPageOut(Schema):
    count: int
    page: int
    page_size: int
    num_pages: int
    items: list[EntryOut]


class LedgerParams(Schema):
    page: int = Field(1, ge=1, le=MAX_PAGE)
    page_size: int = Field(20, ge=1, le=MAX_PAGE_SIZE)
    kind: EntryKindOut | None = None


class RedeemIn(Schema):
    model_config = BODY

    points: WholeNumber = Field(gt=0, le=rules.MAX_POINTS)
    reason: str = Field(min_length=1, max_length=services.MAX_REASON, pattern=TEXT)
    request_key: str = Field(
        min_length=1,
        max_length=services.MAX_REQUEST_KEY,
        pattern=REQUEST_KEY,
        description="Your id for this request: a retry with the same key posts nothing new",
    )


class AdjustIn(Schema):
    model_config = BODY

    points: WholeNumber = Field(
        ge=-rules.MAX_POINTS,
        le=rules.MAX_POINTS,
        description="Positive adds a lot; negative takes points, oldest first; never 0",
        json_schema_extra={"not": {"const": 0}},
    )
    reason: str = Field(min_length=1, max_length=services.MAX_REASON, pattern=TEXT)

    @field_validator("points")
    @classmethod
    def _not_zero(cls, value: int) -> int:
        if value == 0:
            raise ValueError("an adjustment of zero points changes nothing")
        return value


@customer_router.get(
    "/{customer_id}/points",
    response={200: PointsSummaryOut, **ERRORS},
    summary="The customer's points and tier: balance, next tier, expiring points, latest entries",
)
def points_summary(request: HttpRequest, customer_id: int) -> selectors.LoyaltySummary:
    return selectors.loyalty_summary(user=request.user, customer_id=customer_id)


@customer_router.get(
    "/{customer_id}/points/ledger",
    response={200: EntryPageOut, **ERRORS},
    summary="The customer's points ledger, newest first",
)
def points_ledger(
    request: HttpRequest, customer_id: int, params: Query[LedgerParams]
) -> dict[str, Any]:
    page = selectors.ledger_page(
        user=request.user,
        customer_id=customer_id,
        page=params.page,
        page_size=params.page_size,
        kind=params.kind,
    )
    return {
        "count": page.count,
        "page": page.page,
        "page_size": page.page_size,
        "num_pages": page.num_pages,
        "items": list(page.items),
    }


@customer_router.post(
    "/{customer_id}/points/redeem",
    response={201: EntryOut, **ERRORS},
    summary="Redeem points (409 naming the balance when it is short; retries are idempotent)",
)
def points_redeem(
    request: HttpRequest, customer_id: int, body: RedeemIn
) -> tuple[int, selectors.EntryView]:
    entry = services.points_redeem(
        user=request.user,
        customer_id=customer_id,
        points=body.points,
        reason=body.reason,
        request_key=body.request_key,
    )
    return 201, selectors.entry_view(entry)


@customer_router.post(
    "/{customer_id}/points/adjust",
    response={201: EntryOut, **ERRORS},
    summary="Correct a balance by hand (audited; never below zero)",
)
def points_adjust(
    request: HttpRequest, customer_id: int, body: AdjustIn
) -> tuple[int, selectors.EntryView]:
    entry = services.points_adjust(
        user=request.user, customer_id=customer_id, points=body.points, reason=body.reason
    )
    return 201, selectors.entry_view(entry)


# ---------------------------------------------------------------------- tiers


def _yuan(value: float) -> Decimal:
    """A number from JSON as an amount with two decimals (JSON has no decimal type)."""
    return Decimal(str(value)).quantize(Decimal("0.01"))


def _unless_sent(**constraints: Any) -> Any:
    """A field of a partial update: absent unless sent (``exclude_unset``), never null."""
    return Field(None, **constraints)


class TierPatchIn(Schema):
    """Only the fields sent are changed; null clears a criterion."""

    model_config = BODY

    # Names, rank, needs and grace cannot be null (the schema says so); criteria can.
    name: str = _unless_sent(min_length=1, max_length=60, pattern=TEXT)
    name_en: str = _unless_sent(min_length=1, max_length=60, pattern=TEXT)
    rank: WholeNumber = _unless_sent(ge=0, le=1000)
    # (constraints inside the optional type: outside it pydantic leaves them out of the spec)
    min_spend: (
        Annotated[float, Field(ge=0, le=999_999_999_999), BeforeValidator(json_number)] | None
    ) = Field(None, description="Yuan")
    min_grade: GradeIn | None = None
    min_points: (
        Annotated[int, Field(ge=0, le=rules.MAX_POINTS), BeforeValidator(json_number)] | None
    ) = None
    needs: Literal["all", "any"] = _unless_sent()
    grace_days: WholeNumber = _unless_sent(ge=0, le=3650)


@router.get("/tiers", response={200: list[TierOut], **ERRORS}, summary="The membership tiers")
def list_tiers(request: HttpRequest) -> list[selectors.TierView]:
    tiers.tiers_seed()
    return selectors.tiers_list(user=request.user)


@router.patch(
    "/tiers/{code}",
    response={200: TierOut, **ERRORS},
    summary="Change a tier's names, rank, criteria or grace period (audited)",
)
def patch_tier(request: HttpRequest, code: str, body: TierPatchIn) -> selectors.TierView:
    data = body.model_dump(exclude_unset=True)
    if data.get("min_spend") is not None:
        data["min_spend"] = _yuan(data["min_spend"])
    tier = tiers.tier_update(user=request.user, code=code, data=data)
    return selectors.tier_view(tier)


# ---------------------------------------------------------------------- policy


class LoyaltyPolicyOut(Schema):
    version: int
    points_per_cny: Decimal
    review_points: int
    review_min_length: int
    expiry_months: int
    tier_window_months: int
    note: str
    created_by: str
    created_at: datetime


class LoyaltyPolicyIn(Schema):
    model_config = BODY

    points_per_cny: Number = Field(ge=0, le=100, description="Rounded to 2 decimals")
    review_points: WholeNumber = Field(ge=0, le=10_000)
    review_min_length: WholeNumber = Field(ge=0, le=2_000)
    expiry_months: WholeNumber = Field(ge=1, le=120)
    tier_window_months: WholeNumber = Field(ge=1, le=36)
    note: str = Field("", max_length=200, pattern=NO_NUL)


@router.get(
    "/policy", response={200: LoyaltyPolicyOut, **ERRORS}, summary="The points policy in force"
)
def get_policy(request: HttpRequest) -> selectors.PolicyView:
    return selectors.loyalty_policy_in_force(user=request.user)


@router.put(
    "/policy",
    response={200: LoyaltyPolicyOut, **ERRORS},
    summary="Save a new version of the points policy and put it in force (audited)",
)
def put_policy(request: HttpRequest, body: LoyaltyPolicyIn) -> selectors.PolicyView:
    data = body.model_dump(exclude={"note"})
    data["points_per_cny"] = _yuan(body.points_per_cny)
    policy = services.loyalty_policy_save(user=request.user, data=data, note=body.note)
    return selectors.policy_view(policy)
