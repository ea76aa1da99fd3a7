"""REST endpoints of marketing under ``/api/marketing``: segments (list, save, preview, members,
the field registry), coupons (templates, issue, list, redeem, void), campaigns and win-back
programmes (list, create, change, run, entries, evaluation).

Thin: each endpoint calls one selector or one service. 403 permission, 404 unknown segment,
template, coupon or customer, 409 a coupon that cannot be issued or redeemed (the message names
why), 422 invalid input (a rule's mistake is named by its path: ``rule.all[1].value: …``).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from django.http import HttpRequest
from ninja import Query, Router, Schema
from pydantic import BeforeValidator, ConfigDict, Field

from patron.apitext import MAX_ID, NO_NUL, TEXT, DateTimeText, Number, json_number
from patron.customer.api import ErrorOut
from patron.customer.selectors import MAX_PAGE, MAX_PAGE_SIZE
from patron.marketing import selectors, services
from patron.marketing.models import Coupon, Segment

router = Router(tags=["marketing"])

ERRORS: dict[int, Any] = {403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut}
BODY = ConfigDict(extra="forbid")
REQUEST_KEY = r"^[A-Za-z0-9._:-]+$"
CODE = r"^[A-Za-z0-9]{1,20}$"
RULE_DOC = (
    'A rule: {"all": [...]} or {"any": [...]} of conditions {"field", "op", "value"} and, at '
    "the top level, groups of conditions. Fields and their operators: GET "
    "/api/marketing/segment-fields."
)


CouponKindIn = Literal["amount_off", "percent_off"]
CouponStatusIn = Literal["issued", "redeemed", "expired", "void"]


def _yuan(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(str(value)).quantize(Decimal("0.01"))


# ---------------------------------------------------------------------- segments


class SegmentFieldOut(Schema):
    name: str
    label_zh: str
    label_en: str
    type: Literal["text", "choice", "number", "date", "consent"]
    group: str
    operators: list[str]
    choices: list[str]
    unit: str
    is_whole: bool


class SegmentOut(Schema):
    id: int
    name: str
    description: str
    rule: dict[str, Any]
    rule_text: str
    version: int
    member_count: int | None
    evaluated_at: datetime | None
    evaluation_error: str
    created_by: str
    updated_by: str
    updated_at: datetime


class SegmentIn(Schema):
    model_config = BODY

    name: str = Field(min_length=1, max_length=services.MAX_NAME, pattern=TEXT)
    description: str = Field("", max_length=services.MAX_DESCRIPTION, pattern=NO_NUL)
    rule: dict[str, Any] = Field(description=RULE_DOC)


class SegmentPreviewIn(Schema):
    model_config = BODY

    rule: dict[str, Any] = Field(description=RULE_DOC)


class SegmentMemberOut(Schema):
    id: int
    name: str
    kind: str
    province: str
    city: str
    grade: str
    registered_at: datetime | None


class SegmentPreviewOut(Schema):
    count: int
    sample: list[SegmentMemberOut]
    description: str
    rule: dict[str, Any]


class SegmentMemberPageOut(Schema):
    count: int
    page: int
    page_size: int
    num_pages: int
    items: list[SegmentMemberOut]


class SegmentMemberParams(Schema):
    page: int = Field(1, ge=1, le=MAX_PAGE)
    page_size: int = Field(50, ge=1, le=MAX_PAGE_SIZE)


def _segment_out(segment: Segment) -> dict[str, Any]:
    return {
        "id": segment.pk,
        "name": segment.name,
        "description": segment.description,
        "rule": segment.rule,
        "rule_text": selectors.segment_description(segment),
        "version": segment.version,
        "member_count": segment.member_count,
        "evaluated_at": segment.evaluated_at,
        "evaluation_error": segment.evaluation_error,
        "created_by": segment.created_by,
        "updated_by": segment.updated_by,
        "updated_at": segment.updated_at,
    }


@router.get(
    "/segment-fields",
    response={200: list[SegmentFieldOut], **ERRORS},
    summary="The fields a segment's rule may test, with their types and operators",
)
def segment_fields(request: HttpRequest) -> list[dict[str, Any]]:
    return selectors.segment_fields(user=request.user)


@router.get("/segments", response={200: list[SegmentOut], **ERRORS}, summary="Saved segments")
def list_segments(request: HttpRequest) -> list[dict[str, Any]]:
    return [_segment_out(s) for s in selectors.segments_list(user=request.user)]


@router.post(
    "/segments",
    response={201: SegmentOut, **ERRORS},
    summary="Save a new segment (audited; 422 names the rule's mistake by its path)",
)
def create_segment(request: HttpRequest, body: SegmentIn) -> tuple[int, dict[str, Any]]:
    segment = services.segment_save(
        user=request.user, name=body.name, description=body.description, rule=body.rule
    )
    return 201, _segment_out(segment)


@router.post(
    "/segments/preview",
    response={200: SegmentPreviewOut, **ERRORS},
    summary="How many customers a rule matches now, and a sample of 20",
)
def preview_segment(request: HttpRequest, body: SegmentPreviewIn) -> selectors.SegmentPreview:
    return selectors.segment_preview(user=request.user, rule=body.rule)


@router.get("/segments/{segment_id}", response={200: SegmentOut, **ERRORS}, summary="A segment")
def get_segment(request: HttpRequest, segment_id: int) -> dict[str, Any]:
    return _segment_out(selectors.segment_get(user=request.user, segment_id=segment_id))


@router.put(
    "/segments/{segment_id}",
    response={200: SegmentOut, **ERRORS},
    summary="Save a new version of a segment (audited)",
)
def update_segment(request: HttpRequest, segment_id: int, body: SegmentIn) -> dict[str, Any]:
    selectors.segment_get(user=request.user, segment_id=segment_id)
    segment = services.segment_save(
        user=request.user,
        segment_id=segment_id,
        name=body.name,
        description=body.description,
        rule=body.rule,
    )
    return _segment_out(segment)


@router.get(
    "/segments/{segment_id}/members",
    response={200: SegmentMemberPageOut, **ERRORS},
    summary="The segment's members now, by customer id",
)
def segment_members(
    request: HttpRequest, segment_id: int, params: Query[SegmentMemberParams]
) -> dict[str, Any]:
    page = selectors.segment_members(
        user=request.user, segment_id=segment_id, page=params.page, page_size=params.page_size
    )
    return {
        "count": page.count,
        "page": page.page,
        "page_size": page.page_size,
        "num_pages": page.num_pages,
        "items": list(page.items),
    }


# ---------------------------------------------------------------------- coupon templates


class CouponTemplateOut(Schema):
    id: int
    name: str
    kind: CouponKindIn
    value: Decimal
    min_order_amount: Decimal
    category_ids: list[int]
    valid_from: datetime | None
    valid_until: datetime | None
    valid_days: int | None
    per_customer_limit: int | None
    stock: int | None
    budget: Decimal | None
    is_active: bool
    issued: int
    redeemed: int
    discount_given: Decimal
    stock_left: int | None
    budget_left: Decimal | None
    created_by: str
    created_at: datetime


def _unless_sent(**constraints: Any) -> Any:
    """A field of a partial update: absent unless sent (``exclude_unset``), never null."""
    return Field(None, **constraints)


def _bounded_int(low: int, high: int) -> Any:
    return Annotated[int, Field(ge=low, le=high), BeforeValidator(json_number)] | None


def _bounded_money(low: float, high: float) -> Any:
    return Annotated[float, Field(ge=low, le=high), BeforeValidator(json_number)] | None


class CouponTemplateIn(Schema):
    model_config = BODY

    name: str = Field(min_length=1, max_length=services.MAX_NAME, pattern=TEXT)
    kind: CouponKindIn
    value: Number = Field(gt=0, le=1_000_000, description="CNY off, or percent off (≤ 100)")
    min_order_amount: Number = Field(0, ge=0, le=1_000_000_000, description="Threshold, CNY")
    category_ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(
        default_factory=list, max_length=200
    )
    valid_from: DateTimeText | None = None
    valid_until: DateTimeText | None = None
    valid_days: _bounded_int(1, 3650) = None  # type: ignore[valid-type]
    per_customer_limit: _bounded_int(1, 1000) = 1  # type: ignore[valid-type]
    stock: _bounded_int(1, 100_000_000) = None  # type: ignore[valid-type]
    budget: _bounded_money(0.01, 1_000_000_000) = None  # type: ignore[valid-type]
    is_active: bool = True


class CouponTemplatePatchIn(Schema):
    """Only the fields sent are changed; null clears an optional term."""

    model_config = BODY

    name: str = _unless_sent(min_length=1, max_length=services.MAX_NAME, pattern=TEXT)
    kind: CouponKindIn = _unless_sent()
    value: Number = _unless_sent(gt=0, le=1_000_000)
    min_order_amount: Number = _unless_sent(ge=0, le=1_000_000_000)
    category_ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = _unless_sent(max_length=200)
    valid_from: DateTimeText | None = None
    valid_until: DateTimeText | None = None
    valid_days: _bounded_int(1, 3650) = None  # type: ignore[valid-type]
    per_customer_limit: _bounded_int(1, 1000) = None  # type: ignore[valid-type]
    stock: _bounded_int(1, 100_000_000) = None  # type: ignore[valid-type]
    budget: _bounded_money(0.01, 1_000_000_000) = None  # type: ignore[valid-type]
    is_active: bool = _unless_sent()


def _template_out(usage: selectors.TemplateUsage) -> dict[str, Any]:
    t = usage.template
    return {
        **{
            f: getattr(t, f)
            for f in (
                "name",
                "kind",
                "value",
                "min_order_amount",
                "category_ids",
                "valid_from",
                "valid_until",
                "valid_days",
                "per_customer_limit",
                "stock",
                "budget",
                "is_active",
                "created_by",
                "created_at",
            )
        },
        "id": t.pk,
        "issued": usage.issued,
        "redeemed": usage.redeemed,
        "discount_given": usage.discount_given,
        "stock_left": usage.stock_left,
        "budget_left": usage.budget_left,
    }


def _template_data(data: dict[str, Any]) -> dict[str, Any]:
    for name in ("value", "min_order_amount", "budget"):
        if name in data and data[name] is not None:
            data[name] = _yuan(data[name])
    return data


@router.get(
    "/coupon-templates",
    response={200: list[CouponTemplateOut], **ERRORS},
    summary="Coupon templates with their codes issued, redeemed, stock and budget used",
)
def list_templates(request: HttpRequest) -> list[dict[str, Any]]:
    return [_template_out(u) for u in selectors.coupon_templates_list(user=request.user)]


@router.post(
    "/coupon-templates",
    response={201: CouponTemplateOut, **ERRORS},
    summary="Create a coupon template (audited)",
)
def create_template(request: HttpRequest, body: CouponTemplateIn) -> tuple[int, dict[str, Any]]:
    template = services.coupon_template_create(
        user=request.user, data=_template_data(body.model_dump())
    )
    return 201, _template_out(
        selectors.coupon_template_get(user=request.user, template_id=template.pk)
    )


@router.patch(
    "/coupon-templates/{template_id}",
    response={200: CouponTemplateOut, **ERRORS},
    summary="Change a coupon template's terms (audited)",
)
def patch_template(
    request: HttpRequest, template_id: int, body: CouponTemplatePatchIn
) -> dict[str, Any]:
    data = _template_data(body.model_dump(exclude_unset=True))
    for name in ("name", "kind", "value", "min_order_amount", "category_ids", "is_active"):
        if name in data and data[name] is None:
            del data[name]
    services.coupon_template_update(user=request.user, template_id=template_id, changes=data)
    return _template_out(selectors.coupon_template_get(user=request.user, template_id=template_id))


# ---------------------------------------------------------------------- coupons


class CouponOut(Schema):
    code: str
    template_id: int
    template_name: str
    customer_id: int | None
    status: CouponStatusIn
    issued_at: datetime
    expires_at: datetime | None
    redeemed_at: datetime | None
    order_id: int | None
    order_reference: str
    order_total: Decimal | None
    discount_amount: Decimal | None


def _coupon_out(coupon: Coupon) -> dict[str, Any]:
    return {
        "code": coupon.code,
        "template_id": coupon.template_id,
        "template_name": coupon.template.name,
        "customer_id": coupon.customer_id,
        "status": coupon.status,
        "issued_at": coupon.issued_at,
        "expires_at": coupon.expires_at,
        "redeemed_at": coupon.redeemed_at,
        "order_id": coupon.order_id,
        "order_reference": coupon.order_reference,
        "order_total": coupon.order_total,
        "discount_amount": coupon.discount_amount,
    }


class CouponIssueIn(Schema):
    model_config = BODY

    customer_ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] | None = Field(
        None, min_length=1, max_length=services.MAX_ISSUE, description="One code per entry"
    )
    count: _bounded_int(1, services.MAX_ISSUE) = Field(  # type: ignore[valid-type]
        None, description="Open codes (anyone may redeem); give this or customer_ids"
    )
    reason: str = Field(min_length=1, max_length=500, pattern=TEXT)
    request_key: str = Field(
        min_length=1,
        max_length=services.MAX_REQUEST_KEY,
        pattern=REQUEST_KEY,
        description="Your id for this request: a retry with the same key issues nothing new",
    )


class CouponIssueOut(Schema):
    template_id: int
    count: int
    coupons: list[CouponOut]


class CouponRedeemIn(Schema):
    model_config = BODY

    customer_id: int = Field(ge=1, le=MAX_ID)
    order_total: Number = Field(ge=0, le=1_000_000_000, description="CNY, before the discount")
    order_reference: str = Field("", max_length=100, pattern=NO_NUL)
    category_ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] | None = Field(
        None, max_length=500, description="Categories of the order's lines (restricted coupons)"
    )
    request_key: str = Field(min_length=1, max_length=services.MAX_REQUEST_KEY, pattern=REQUEST_KEY)


class CouponVoidIn(Schema):
    model_config = BODY

    reason: str = Field(min_length=1, max_length=500, pattern=TEXT)


class CouponListParams(Schema):
    template_id: int | None = Field(None, ge=1, le=MAX_ID)
    customer_id: int | None = Field(None, ge=1, le=MAX_ID)
    status: CouponStatusIn | None = None
    page: int = Field(1, ge=1, le=MAX_PAGE)
    page_size: int = Field(50, ge=1, le=MAX_PAGE_SIZE)


class CouponPageOut(Schema):
    count: int
    page: int
    page_size: int
    num_pages: int
    items: list[CouponOut]


@router.post(
    "/coupon-templates/{template_id}/issue",
    response={201: CouponIssueOut, **ERRORS},
    summary="Issue codes to customers or open codes (409 naming the stock or limit)",
)
def issue_coupons(
    request: HttpRequest, template_id: int, body: CouponIssueIn
) -> tuple[int, dict[str, Any]]:
    coupons = services.coupons_issue(
        user=request.user,
        template_id=template_id,
        customer_ids=body.customer_ids,
        count=body.count,
        reason=body.reason,
        request_key=body.request_key,
    )
    return 201, {
        "template_id": template_id,
        "count": len(coupons),
        "coupons": [_coupon_out(c) for c in coupons],
    }


@router.get("/coupons", response={200: CouponPageOut, **ERRORS}, summary="Coupons, newest first")
def list_coupons(request: HttpRequest, params: Query[CouponListParams]) -> dict[str, Any]:
    page = selectors.coupons_list(
        user=request.user,
        template_id=params.template_id,
        customer_id=params.customer_id,
        status=params.status,
        page=params.page,
        page_size=params.page_size,
    )
    return {
        "count": page.count,
        "page": page.page,
        "page_size": page.page_size,
        "num_pages": page.num_pages,
        "items": [_coupon_out(c) for c in page.items],
    }


@router.get("/coupons/{code}", response={200: CouponOut, **ERRORS}, summary="One coupon")
def get_coupon(request: HttpRequest, code: str) -> dict[str, Any]:
    return _coupon_out(selectors.coupon_get(user=request.user, code=code))


@router.post(
    "/coupons/{code}/redeem",
    response={200: CouponOut, **ERRORS},
    summary="Redeem a code at checkout (409 naming why not; retries are idempotent)",
)
def redeem_coupon(request: HttpRequest, code: str, body: CouponRedeemIn) -> dict[str, Any]:
    coupon = services.coupon_redeem(
        user=request.user,
        code=code,
        order_total=Decimal(str(body.order_total)),
        customer_id=body.customer_id,
        request_key=body.request_key,
        order_reference=body.order_reference,
        category_ids=body.category_ids,
    )
    return _coupon_out(coupon)


@router.post(
    "/coupons/{code}/void",
    response={200: CouponOut, **ERRORS},
    summary="Void an issued code (audited)",
)
def void_coupon(request: HttpRequest, code: str, body: CouponVoidIn) -> dict[str, Any]:
    return _coupon_out(services.coupon_void(user=request.user, code=code, reason=body.reason))


# ---------------------------------------------------------------------- campaigns

CampaignGoalIn = Literal["repurchase_rate", "revenue_per_customer", "reactivation_rate"]
CampaignOfferIn = Literal["coupon", "points", "gift", "message"]
CampaignChannelIn = Literal["sms", "email", "wechat", "phone", "app"]
CampaignStatusIn = Literal["draft", "scheduled", "running", "finished", "cancelled"]


class CampaignOut(Schema):
    id: int
    name: str
    description: str
    status: CampaignStatusIn
    goal_metric: CampaignGoalIn
    target_value: float | None
    period_start: datetime
    period_end: datetime
    segment_id: int
    segment_name: str
    snapshot_id: int | None
    holdout_share: float
    seed: int
    offer_kind: CampaignOfferIn
    coupon_template_id: int | None
    points: int | None
    gift_text: str
    channels: list[str]
    message_template: str
    message_title: str
    message_text: str
    send_at: datetime | None
    budget: Decimal | None
    unit_cost: Decimal | None
    spent: Decimal
    frequency_cap_messages: int | None
    frequency_cap_days: int | None
    members: int
    treatment: int
    holdout: int
    messaged: int
    skipped: int
    pending: int
    launched_at: datetime | None
    launched_by: str
    finished_at: datetime | None
    cancelled_at: datetime | None
    cancel_reason: str
    note: str
    created_at: datetime


def _campaign_out(summary: selectors.CampaignSummary) -> dict[str, Any]:
    c = summary.campaign
    return {
        **{
            f: getattr(c, f)
            for f in (
                "name", "description", "status", "goal_metric", "period_start", "period_end",
                "segment_id", "snapshot_id", "seed", "offer_kind", "coupon_template_id",
                "points", "gift_text", "channels", "message_template", "message_title",
                "message_text", "send_at", "budget", "unit_cost", "spent",
                "frequency_cap_messages", "frequency_cap_days", "launched_at", "launched_by",
                "finished_at", "cancelled_at", "cancel_reason", "note", "created_at",
            )
        },
        "id": c.pk,
        "target_value": float(c.target_value) if c.target_value is not None else None,
        "holdout_share": float(c.holdout_share),
        "segment_name": c.segment.name,
        "members": summary.members,
        "treatment": summary.treatment,
        "holdout": summary.holdout,
        "messaged": summary.messaged,
        "skipped": summary.skipped,
        "pending": summary.pending,
    }  # fmt: skip


def _text(max_length: int) -> Any:
    return Field(min_length=1, max_length=max_length, pattern=TEXT)


class CampaignIn(Schema):
    model_config = BODY

    name: str = _text(services.MAX_NAME)
    description: str = Field("", max_length=services.MAX_DESCRIPTION, pattern=NO_NUL)
    goal_metric: CampaignGoalIn
    target_value: _bounded_money(-1_000_000, 1_000_000) = Field(  # type: ignore[valid-type]
        None, description="Uplift aimed for: a share for rates (0.03 = 3 points), CNY otherwise"
    )
    period_start: DateTimeText
    period_end: DateTimeText
    segment_id: int = Field(ge=1, le=MAX_ID)
    holdout_share: _bounded_money(0, 0.5) = Field(  # type: ignore[valid-type]
        0.1, description="Share of the audience kept out as the control group (0 to 0.5)"
    )
    seed: _bounded_int(0, MAX_ID) = Field(  # type: ignore[valid-type]
        None, description="Seed of the holdout draw; drawn and recorded when left out"
    )
    offer_kind: CampaignOfferIn
    coupon_template_id: _bounded_int(1, MAX_ID) = None  # type: ignore[valid-type]
    points: _bounded_int(1, 1_000_000) = None  # type: ignore[valid-type]
    gift_text: str = Field("", max_length=services.MAX_GIFT_TEXT, pattern=NO_NUL)
    channels: list[CampaignChannelIn] = Field(
        min_length=1, max_length=5, description="In order of preference: one message each"
    )
    message_template: str = Field("marketing.announcement", max_length=80, pattern=r"^[a-z._]+$")
    message_title: str = _text(services.MAX_TITLE)
    message_text: str = Field(
        min_length=1,
        max_length=services.MAX_MESSAGE_TEXT,
        pattern=TEXT,
        description="May use {coupon_code}, {points} and {gift}",
    )
    send_at: DateTimeText | None = None
    budget: _bounded_money(0.01, 1_000_000_000) = None  # type: ignore[valid-type]
    unit_cost: _bounded_money(0, 1_000_000) = None  # type: ignore[valid-type]
    frequency_cap_messages: _bounded_int(1, 1000) = 2  # type: ignore[valid-type]
    frequency_cap_days: _bounded_int(1, 366) = 7  # type: ignore[valid-type]


class CampaignPatchIn(Schema):
    """Only the fields sent are changed (a draft only); null clears an optional term."""

    model_config = BODY

    name: str = _unless_sent(min_length=1, max_length=services.MAX_NAME, pattern=TEXT)
    description: str = _unless_sent(max_length=services.MAX_DESCRIPTION, pattern=NO_NUL)
    goal_metric: CampaignGoalIn = _unless_sent()
    target_value: _bounded_money(-1_000_000, 1_000_000) = None  # type: ignore[valid-type]
    period_start: DateTimeText = _unless_sent()
    period_end: DateTimeText = _unless_sent()
    segment_id: int = _unless_sent(ge=1, le=MAX_ID)
    holdout_share: _bounded_money(0, 0.5) = _unless_sent()  # type: ignore[valid-type]
    seed: _bounded_int(0, MAX_ID) = _unless_sent()  # type: ignore[valid-type]
    offer_kind: CampaignOfferIn = _unless_sent()
    coupon_template_id: _bounded_int(1, MAX_ID) = None  # type: ignore[valid-type]
    points: _bounded_int(1, 1_000_000) = None  # type: ignore[valid-type]
    gift_text: str = _unless_sent(max_length=services.MAX_GIFT_TEXT, pattern=NO_NUL)
    channels: list[CampaignChannelIn] = _unless_sent(min_length=1, max_length=5)
    message_template: str = _unless_sent(max_length=80, pattern=r"^[a-z._]+$")
    message_title: str = _unless_sent(min_length=1, max_length=services.MAX_TITLE, pattern=TEXT)
    message_text: str = _unless_sent(
        min_length=1, max_length=services.MAX_MESSAGE_TEXT, pattern=TEXT
    )
    send_at: DateTimeText | None = None
    budget: _bounded_money(0.01, 1_000_000_000) = None  # type: ignore[valid-type]
    unit_cost: _bounded_money(0, 1_000_000) = None  # type: ignore[valid-type]
    frequency_cap_messages: _bounded_int(1, 1000) = None  # type: ignore[valid-type]
    frequency_cap_days: _bounded_int(1, 366) = None  # type: ignore[valid-type]


class CampaignCancelIn(Schema):
    model_config = BODY

    reason: str = Field(min_length=1, max_length=500, pattern=TEXT)


class CampaignListParams(Schema):
    status: CampaignStatusIn | None = None


class CampaignIntervalOut(Schema):
    estimate: float
    low: float
    high: float
    confidence: float
    method: str


class CampaignGroupOut(Schema):
    group: Literal["treatment", "holdout"]
    members: int
    outcomes: dict[str, int]
    buyers: int
    orders: int
    revenue: Decimal
    lapsed: int
    reactivated: int
    coupons_issued: int
    coupons_redeemed: int
    discount_given: Decimal
    points_granted: int
    cost: Decimal
    metric: float | None
    metric_interval: CampaignIntervalOut | None


class CampaignReachOut(Schema):
    channel: str
    messages: int
    pending: int
    sent: int
    failed: int
    suppressed: int
    cancelled: int
    delivered: int | str
    opened: int | str
    clicked: int | str


class CampaignEvaluationOut(Schema):
    campaign_id: int
    status: CampaignStatusIn
    as_of: datetime
    window_start: datetime
    window_end: datetime
    is_complete: bool
    goal_metric: CampaignGoalIn
    goal_label: str
    goal_definition: str
    unit: Literal["share", "CNY"]
    treatment: CampaignGroupOut
    holdout: CampaignGroupOut
    uplift: CampaignIntervalOut | None
    is_significant: bool | None
    target: float | None
    progress: float | None
    is_target_reached: bool | None
    contact_rate: float | None
    effect_on_contacted: CampaignIntervalOut | None
    reach: list[CampaignReachOut]
    notes: list[str]


def _campaign_data(data: dict[str, Any]) -> dict[str, Any]:
    for name in ("budget", "unit_cost"):
        if name in data and data[name] is not None:
            data[name] = _yuan(data[name])
    for name in ("target_value", "holdout_share"):
        if name in data and data[name] is not None:
            data[name] = Decimal(str(data[name]))
    return data


def _evaluation_out(evaluation: selectors.CampaignEvaluation) -> dict[str, Any]:
    def reach(r: selectors.CampaignChannelReach) -> dict[str, Any]:
        out = dict(r.__dict__)
        for name in ("delivered", "opened", "clicked"):
            if out[name] is None:
                out[name] = selectors.NOT_REPORTED
        return out

    return {
        **{
            f: getattr(evaluation, f)
            for f in (
                "as_of", "window_start", "window_end", "is_complete", "goal_metric",
                "goal_label", "goal_definition", "unit", "treatment", "holdout", "uplift",
                "is_significant", "target", "progress", "is_target_reached", "contact_rate",
                "effect_on_contacted",
            )
        },
        "campaign_id": evaluation.campaign.pk,
        "status": evaluation.campaign.status,
        "reach": [reach(r) for r in evaluation.reach],
        "notes": list(evaluation.notes),
    }  # fmt: skip


@router.get(
    "/campaigns",
    response={200: list[CampaignOut], **ERRORS},
    summary="Campaigns, newest first, with their members by group",
)
def list_campaigns(request: HttpRequest, params: Query[CampaignListParams]) -> list[dict[str, Any]]:
    return [
        _campaign_out(s) for s in selectors.campaigns_list(user=request.user, status=params.status)
    ]


@router.post(
    "/campaigns",
    response={201: CampaignOut, **ERRORS},
    summary="Create a campaign in draft (audited; the plan is checked as a whole)",
)
def create_campaign(request: HttpRequest, body: CampaignIn) -> tuple[int, dict[str, Any]]:
    campaign = services.campaign_create(user=request.user, data=_campaign_data(body.model_dump()))
    return 201, _campaign_out(selectors.campaign_get(user=request.user, campaign_id=campaign.pk))


@router.get("/campaigns/{campaign_id}", response={200: CampaignOut, **ERRORS}, summary="A campaign")
def get_campaign(request: HttpRequest, campaign_id: int) -> dict[str, Any]:
    return _campaign_out(selectors.campaign_get(user=request.user, campaign_id=campaign_id))


@router.patch(
    "/campaigns/{campaign_id}",
    response={200: CampaignOut, **ERRORS},
    summary="Change a draft campaign's plan (409 once scheduled or launched)",
)
def patch_campaign(request: HttpRequest, campaign_id: int, body: CampaignPatchIn) -> dict[str, Any]:
    data = _campaign_data(body.model_dump(exclude_unset=True))
    for name in (
        "name", "description", "goal_metric", "period_start", "period_end", "segment_id",
        "holdout_share", "seed", "offer_kind", "gift_text", "channels", "message_template",
        "message_title", "message_text",
    ):  # fmt: skip
        if name in data and data[name] is None:
            del data[name]
    services.campaign_update(user=request.user, campaign_id=campaign_id, changes=data)
    return _campaign_out(selectors.campaign_get(user=request.user, campaign_id=campaign_id))


@router.post(
    "/campaigns/{campaign_id}/schedule",
    response={200: CampaignOut, **ERRORS},
    summary="Schedule a draft campaign for its send_at (the campaign job launches it)",
)
def schedule_campaign(request: HttpRequest, campaign_id: int) -> dict[str, Any]:
    services.campaign_schedule(user=request.user, campaign_id=campaign_id)
    return _campaign_out(selectors.campaign_get(user=request.user, campaign_id=campaign_id))


@router.post(
    "/campaigns/{campaign_id}/launch",
    response={200: CampaignOut, **ERRORS},
    summary="Launch now: freeze the audience, draw the holdout, send offers and messages "
    "(idempotent: a second launch sends nobody twice)",
)
def launch_campaign(request: HttpRequest, campaign_id: int) -> dict[str, Any]:
    services.campaign_launch(user=request.user, campaign_id=campaign_id)
    return _campaign_out(selectors.campaign_get(user=request.user, campaign_id=campaign_id))


@router.post(
    "/campaigns/{campaign_id}/cancel",
    response={200: CampaignOut, **ERRORS},
    summary="Cancel a draft, scheduled or running campaign (audited with the reason)",
)
def cancel_campaign(
    request: HttpRequest, campaign_id: int, body: CampaignCancelIn
) -> dict[str, Any]:
    services.campaign_cancel(user=request.user, campaign_id=campaign_id, reason=body.reason)
    return _campaign_out(selectors.campaign_get(user=request.user, campaign_id=campaign_id))


@router.get(
    "/campaigns/{campaign_id}/evaluation",
    response={200: CampaignEvaluationOut, **ERRORS},
    summary="Treatment against holdout: reach, offers, orders, the goal metric and its uplift "
    "with a 95 % interval",
)
def campaign_evaluation(request: HttpRequest, campaign_id: int) -> dict[str, Any]:
    return _evaluation_out(
        selectors.campaign_evaluation(user=request.user, campaign_id=campaign_id)
    )


# ---------------------------------------------------------------------- win-back (R-G7)

WinbackOfferIn = Literal["coupon", "points", "gift", "message"]
GradeIn = Literal["core", "potential", "ordinary"]
WinbackGroupIn = Literal["treatment", "holdout"]
WinbackOutcomeIn = Literal[
    "pending", "messaged", "suppressed", "no_consent", "no_address", "capped", "over_budget",
    "coupon_limit", "out_of_stock", "not_sent", "holdout",
]  # fmt: skip


def _required_int(low: int, high: int) -> Any:
    return Annotated[int, Field(ge=low, le=high), BeforeValidator(json_number)]


def _required_number(low: float, high: float) -> Any:
    return Annotated[float, Field(ge=low, le=high), BeforeValidator(json_number)]


class WinbackRunOut(Schema):
    id: int
    as_of: datetime
    started_at: datetime
    finished_at: datetime | None
    is_placebo: bool
    threshold: float
    at_risk: int
    entered: int
    treatment: int
    holdout: int
    cool_down: int
    still_at_risk: int
    recovered: int
    messaged: int
    skipped: int
    run_by: str


class WinbackProgrammeOut(Schema):
    id: int
    name: str
    description: str
    is_active: bool
    churn_threshold: float
    holdout_share: float
    seed: int
    cool_down_days: int
    window_days: int
    offer_kind: WinbackOfferIn
    coupon_template_id: int | None
    points: int | None
    gift_text: str
    high_value_offer_kind: WinbackOfferIn | Literal[""]
    high_value_coupon_template_id: int | None
    high_value_points: int | None
    high_value_gift_text: str
    high_value_min_clv: Decimal | None
    high_value_grades: list[str]
    channels: list[str]
    message_title: str
    message_text: str
    category_fallback: str
    frequency_cap_messages: int | None
    frequency_cap_days: int | None
    entries: int
    treatment: int
    holdout: int
    messaged: int
    pending: int
    last_run: WinbackRunOut | None
    created_at: datetime
    updated_by: str
    updated_at: datetime


def _winback_run_out(run: Any) -> dict[str, Any]:
    return {
        **{
            f: getattr(run, f)
            for f in (
                "as_of", "started_at", "finished_at", "is_placebo", "at_risk", "entered",
                "treatment", "holdout", "cool_down", "still_at_risk", "recovered", "messaged",
                "skipped", "run_by",
            )
        },
        "id": run.pk,
        "threshold": float(run.threshold),
    }  # fmt: skip


def _winback_out(summary: selectors.WinbackSummary) -> dict[str, Any]:
    p = summary.programme
    return {
        **{
            f: getattr(p, f)
            for f in (
                "name", "description", "is_active", "seed", "cool_down_days", "window_days",
                "offer_kind", "coupon_template_id", "points", "gift_text", "high_value_offer_kind",
                "high_value_coupon_template_id", "high_value_points", "high_value_gift_text",
                "high_value_min_clv", "high_value_grades", "channels", "message_title",
                "message_text", "category_fallback", "frequency_cap_messages",
                "frequency_cap_days", "created_at", "updated_by", "updated_at",
            )
        },
        "id": p.pk,
        "churn_threshold": float(p.churn_threshold),
        "holdout_share": float(p.holdout_share),
        "entries": summary.entries,
        "treatment": summary.treatment,
        "holdout": summary.holdout,
        "messaged": summary.messaged,
        "pending": summary.pending,
        "last_run": _winback_run_out(summary.last_run) if summary.last_run else None,
    }  # fmt: skip


class WinbackProgrammeIn(Schema):
    model_config = BODY

    name: str = _text(services.MAX_NAME)
    description: str = Field("", max_length=services.MAX_DESCRIPTION, pattern=NO_NUL)
    is_active: bool = True
    churn_threshold: Number = Field(
        gt=0, lt=1, description="Customers whose churn probability rises to this or above enter"
    )
    holdout_share: _required_number(0, 0.5) = Field(  # type: ignore[valid-type]
        0.1, description="Share held out, decided per customer from the seed (0 to 0.5)"
    )
    seed: _bounded_int(0, MAX_ID) = Field(  # type: ignore[valid-type]
        None, description="Seed of the holdout draw; drawn and recorded when left out"
    )
    cool_down_days: _required_int(1, 730) = Field(  # type: ignore[valid-type]
        90, description="A customer is not enrolled again within this many days (≥ window_days)"
    )
    window_days: _required_int(1, 730) = Field(  # type: ignore[valid-type]
        60, description="Reactivation: a paid order within this many days of enrolment"
    )
    offer_kind: WinbackOfferIn
    coupon_template_id: _bounded_int(1, MAX_ID) = None  # type: ignore[valid-type]
    points: _bounded_int(1, 1_000_000) = None  # type: ignore[valid-type]
    gift_text: str = Field("", max_length=services.MAX_GIFT_TEXT, pattern=NO_NUL)
    high_value_offer_kind: WinbackOfferIn | None = Field(
        None, description="The high-value customers' offer; none: everyone gets offer_kind"
    )
    high_value_coupon_template_id: _bounded_int(1, MAX_ID) = None  # type: ignore[valid-type]
    high_value_points: _bounded_int(1, 1_000_000) = None  # type: ignore[valid-type]
    high_value_gift_text: str = Field("", max_length=services.MAX_GIFT_TEXT, pattern=NO_NUL)
    high_value_min_clv: _bounded_money(0, 1_000_000_000) = Field(  # type: ignore[valid-type]
        None, description="High value: 12-month CLV at least this (CNY)"
    )
    high_value_grades: list[GradeIn] = Field(
        default_factory=list, max_length=3, description="High value: or one of these grades"
    )
    channels: list[CampaignChannelIn] = Field(
        min_length=1, max_length=5, description="In order of preference: one message each"
    )
    message_title: str = _text(services.MAX_TITLE)
    message_text: str = Field(
        min_length=1,
        max_length=services.MAX_MESSAGE_TEXT,
        pattern=TEXT,
        description="May use {coupon_code}, {points}, {gift} and {top_category}",
    )
    category_fallback: str = Field(
        services.DEFAULT_CATEGORY_FALLBACK,
        min_length=1,
        max_length=services.MAX_CATEGORY_FALLBACK,
        pattern=TEXT,
        description="Put for {top_category} when the customer bought nothing categorised",
    )
    frequency_cap_messages: _bounded_int(1, 1000) = 2  # type: ignore[valid-type]
    frequency_cap_days: _bounded_int(1, 366) = 7  # type: ignore[valid-type]


class WinbackProgrammePatchIn(Schema):
    """Only the fields sent are changed; null clears an optional term. The seed and the holdout
    share are fixed once a customer is enrolled (409)."""

    model_config = BODY

    name: str = _unless_sent(min_length=1, max_length=services.MAX_NAME, pattern=TEXT)
    description: str = _unless_sent(max_length=services.MAX_DESCRIPTION, pattern=NO_NUL)
    is_active: bool = _unless_sent()
    churn_threshold: Number = _unless_sent(gt=0, lt=1)
    holdout_share: _required_number(0, 0.5) = _unless_sent()  # type: ignore[valid-type]
    seed: _required_int(0, MAX_ID) = _unless_sent()  # type: ignore[valid-type]
    cool_down_days: _required_int(1, 730) = _unless_sent()  # type: ignore[valid-type]
    window_days: _required_int(1, 730) = _unless_sent()  # type: ignore[valid-type]
    offer_kind: WinbackOfferIn = _unless_sent()
    coupon_template_id: _bounded_int(1, MAX_ID) = None  # type: ignore[valid-type]
    points: _bounded_int(1, 1_000_000) = None  # type: ignore[valid-type]
    gift_text: str = _unless_sent(max_length=services.MAX_GIFT_TEXT, pattern=NO_NUL)
    high_value_offer_kind: WinbackOfferIn | None = None
    high_value_coupon_template_id: _bounded_int(1, MAX_ID) = None  # type: ignore[valid-type]
    high_value_points: _bounded_int(1, 1_000_000) = None  # type: ignore[valid-type]
    high_value_gift_text: str = _unless_sent(max_length=services.MAX_GIFT_TEXT, pattern=NO_NUL)
    high_value_min_clv: _bounded_money(0, 1_000_000_000) = None  # type: ignore[valid-type]
    high_value_grades: list[GradeIn] = _unless_sent(max_length=3)
    channels: list[CampaignChannelIn] = _unless_sent(min_length=1, max_length=5)
    message_title: str = _unless_sent(min_length=1, max_length=services.MAX_TITLE, pattern=TEXT)
    message_text: str = _unless_sent(
        min_length=1, max_length=services.MAX_MESSAGE_TEXT, pattern=TEXT
    )
    category_fallback: str = _unless_sent(
        min_length=1, max_length=services.MAX_CATEGORY_FALLBACK, pattern=TEXT
    )
    frequency_cap_messages: _bounded_int(1, 1000) = None  # type: ignore[valid-type]
    frequency_cap_days: _bounded_int(1, 366) = None  # type: ignore[valid-type]


_WINBACK_REQUIRED = (
    "name", "description", "is_active", "churn_threshold", "holdout_share", "seed",
    "cool_down_days", "window_days", "offer_kind", "gift_text", "high_value_gift_text",
    "high_value_grades", "channels", "message_title", "message_text", "category_fallback",
)  # fmt: skip


def _winback_data(data: dict[str, Any]) -> dict[str, Any]:
    for name in ("churn_threshold", "holdout_share"):
        if name in data and data[name] is not None:
            data[name] = Decimal(str(data[name]))
    if "high_value_min_clv" in data and data["high_value_min_clv"] is not None:
        data["high_value_min_clv"] = _yuan(data["high_value_min_clv"])
    if "high_value_offer_kind" in data and data["high_value_offer_kind"] is None:
        data["high_value_offer_kind"] = ""
    return data


class WinbackRunIn(Schema):
    model_config = BODY

    placebo: bool = Field(
        False, description="Enrol and record, but send nothing (an A/A test of the programme)"
    )


class WinbackGroupOut(Schema):
    group: WinbackGroupIn
    entries: int
    customers: int
    outcomes: dict[str, int]
    reactivated: int
    orders: int
    revenue: Decimal
    rate: float | None
    rate_interval: CampaignIntervalOut | None
    revenue_per_entry: float | None
    revenue_interval: CampaignIntervalOut | None
    coupons_issued: int
    coupons_redeemed: int
    discount_given: Decimal
    points_granted: int
    cost: Decimal


class WinbackTierOut(Schema):
    tier: Literal["standard", "high_value"]
    treatment: int
    treatment_reactivated: int
    holdout: int
    holdout_reactivated: int
    uplift: CampaignIntervalOut | None


class WinbackEvaluationOut(Schema):
    programme_id: int
    as_of: datetime
    window_days: int
    entries: int
    matured: int
    in_window: int
    in_window_reactivated: int
    treatment: WinbackGroupOut
    holdout: WinbackGroupOut
    uplift: CampaignIntervalOut | None
    is_significant: bool | None
    revenue_uplift: CampaignIntervalOut | None
    contact_rate: float | None
    effect_on_contacted: CampaignIntervalOut | None
    tiers: list[WinbackTierOut]
    notes: list[str]


class WinbackEnrolmentOut(Schema):
    id: int
    customer_id: int
    cycle: int
    run_id: int
    enrolled_at: datetime
    window_ends_at: datetime
    churn_probability: float
    score_as_of: date | None
    group: WinbackGroupIn
    offer_tier: Literal["standard", "high_value"]
    offer_kind: WinbackOfferIn
    coupon_template_id: int | None
    points: int | None
    offer_reason: str
    basis: dict[str, Any]
    outcome: WinbackOutcomeIn
    reason: str
    channel: str
    coupon_code: str | None
    message_id: int | None
    recovered_at: datetime | None


class WinbackEnrolmentPageOut(Schema):
    count: int
    page: int
    page_size: int
    num_pages: int
    items: list[WinbackEnrolmentOut]


class WinbackEnrolmentParams(Schema):
    group: WinbackGroupIn | None = None
    outcome: WinbackOutcomeIn | None = None
    page: int = Field(1, ge=1, le=MAX_PAGE)
    page_size: int = Field(50, ge=1, le=MAX_PAGE_SIZE)


def _enrolment_out(entry: Any) -> dict[str, Any]:
    return {
        **{
            f: getattr(entry, f)
            for f in (
                "customer_id", "cycle", "run_id", "enrolled_at", "window_ends_at",
                "churn_probability", "score_as_of", "group", "offer_tier", "offer_kind",
                "coupon_template_id", "points", "offer_reason", "basis", "outcome", "reason",
                "channel", "message_id", "recovered_at",
            )
        },
        "id": entry.pk,
        "coupon_code": entry.coupon.code if entry.coupon_id else None,
    }  # fmt: skip


def _winback_evaluation_out(evaluation: selectors.WinbackEvaluation) -> dict[str, Any]:
    return {
        **{
            f: getattr(evaluation, f)
            for f in (
                "as_of", "entries", "matured", "in_window", "in_window_reactivated",
                "treatment", "holdout", "uplift", "is_significant", "revenue_uplift",
                "contact_rate", "effect_on_contacted",
            )
        },
        "programme_id": evaluation.programme.pk,
        "window_days": evaluation.programme.window_days,
        "tiers": list(evaluation.tiers),
        "notes": list(evaluation.notes),
    }  # fmt: skip


@router.get(
    "/winback-programmes",
    response={200: list[WinbackProgrammeOut], **ERRORS},
    summary="Win-back programmes with their entries by group and latest run",
)
def list_winback_programmes(request: HttpRequest) -> list[dict[str, Any]]:
    return [_winback_out(s) for s in selectors.winback_programmes_list(user=request.user)]


@router.post(
    "/winback-programmes",
    response={201: WinbackProgrammeOut, **ERRORS},
    summary="Create a win-back programme (audited; checked as a whole)",
)
def create_winback_programme(
    request: HttpRequest, body: WinbackProgrammeIn
) -> tuple[int, dict[str, Any]]:
    programme = services.winback_programme_create(
        user=request.user, data=_winback_data(body.model_dump())
    )
    return 201, _winback_out(
        selectors.winback_programme_get(user=request.user, programme_id=programme.pk)
    )


@router.get(
    "/winback-programmes/{programme_id}",
    response={200: WinbackProgrammeOut, **ERRORS},
    summary="A win-back programme",
)
def get_winback_programme(request: HttpRequest, programme_id: int) -> dict[str, Any]:
    return _winback_out(
        selectors.winback_programme_get(user=request.user, programme_id=programme_id)
    )


@router.patch(
    "/winback-programmes/{programme_id}",
    response={200: WinbackProgrammeOut, **ERRORS},
    summary="Change a win-back programme (audited; pausing stops the sending)",
)
def patch_winback_programme(
    request: HttpRequest, programme_id: int, body: WinbackProgrammePatchIn
) -> dict[str, Any]:
    data = _winback_data(body.model_dump(exclude_unset=True))
    for name in _WINBACK_REQUIRED:
        if name in data and data[name] is None:
            del data[name]
    services.winback_programme_update(user=request.user, programme_id=programme_id, changes=data)
    return _winback_out(
        selectors.winback_programme_get(user=request.user, programme_id=programme_id)
    )


@router.post(
    "/winback-programmes/{programme_id}/run",
    response={200: WinbackRunOut, **ERRORS},
    summary="Run now: enrol the customers whose churn risk newly rose to the threshold, send "
    "the treated their offer (idempotent: nobody is enrolled twice)",
)
def run_winback_programme(
    request: HttpRequest, programme_id: int, body: WinbackRunIn
) -> dict[str, Any]:
    run = services.winback_programme_run(
        user=request.user, programme_id=programme_id, placebo=body.placebo
    )
    return _winback_run_out(run)


@router.get(
    "/winback-programmes/{programme_id}/runs",
    response={200: list[WinbackRunOut], **ERRORS},
    summary="The programme's latest runs, newest first",
)
def list_winback_runs(request: HttpRequest, programme_id: int) -> list[dict[str, Any]]:
    return [
        _winback_run_out(r)
        for r in selectors.winback_runs_list(user=request.user, programme_id=programme_id)
    ]


@router.get(
    "/winback-programmes/{programme_id}/enrolments",
    response={200: WinbackEnrolmentPageOut, **ERRORS},
    summary="The programme's entries, newest first, with the offer chosen and why",
)
def list_winback_enrolments(
    request: HttpRequest, programme_id: int, params: Query[WinbackEnrolmentParams]
) -> dict[str, Any]:
    page = selectors.winback_enrolments(
        user=request.user,
        programme_id=programme_id,
        group=params.group,
        outcome=params.outcome,
        page=params.page,
        page_size=params.page_size,
    )
    return {
        "count": page.count,
        "page": page.page,
        "page_size": page.page_size,
        "num_pages": page.num_pages,
        "items": [_enrolment_out(e) for e in page.items],
    }


@router.get(
    "/winback-programmes/{programme_id}/evaluation",
    response={200: WinbackEvaluationOut, **ERRORS},
    summary="Reactivation within the window, treatment against holdout, with the uplift's 95 % "
    "interval (entries whose window has closed)",
)
def winback_evaluation(request: HttpRequest, programme_id: int) -> dict[str, Any]:
    return _winback_evaluation_out(
        selectors.winback_evaluation(user=request.user, programme_id=programme_id)
    )
