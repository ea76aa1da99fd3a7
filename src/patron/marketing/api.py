"""REST endpoints of marketing under ``/api/marketing``: segments (list, save, preview, members,
the field registry) and coupons (templates, issue, list, redeem, void).

Thin: each endpoint calls one selector or one service. 403 permission, 404 unknown segment,
template, coupon or customer, 409 a coupon that cannot be issued or redeemed (the message names
why), 422 invalid input (a rule's mistake is named by its path: ``rule.all[1].value: …``).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from django.http import HttpRequest
from ninja import Query, Router, Schema
from pydantic import BeforeValidator, ConfigDict, Field

from patron.apitext import NO_NUL, TEXT
from patron.customer.api import ErrorOut
from patron.customer.selectors import MAX_PAGE, MAX_PAGE_SIZE
from patron.marketing import selectors, services
from patron.marketing.models import Coupon, Segment

router = Router(tags=["marketing"])

ERRORS: dict[int, Any] = {403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut}
BODY = ConfigDict(extra="forbid")
REQUEST_KEY = r"^[A-Za-z0-9._:-]+$"
CODE = r"^[A-Za-z0-9]{1,20}$"
MAX_ID = 2**63 - 1
RULE_DOC = (
    'A rule: {"all": [...]} or {"any": [...]} of conditions {"field", "op", "value"} and, at '
    "the top level, groups of conditions. Fields and their operators: GET "
    "/api/marketing/segment-fields."
)


def _json_number(value: Any) -> Any:
    if isinstance(value, bool | str):
        raise ValueError("expected a JSON number")
    return value


WholeNumber = Annotated[int, BeforeValidator(_json_number)]
Number = Annotated[float, BeforeValidator(_json_number)]
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
    return Annotated[int, Field(ge=low, le=high), BeforeValidator(_json_number)] | None


def _bounded_money(low: float, high: float) -> Any:
    return Annotated[float, Field(ge=low, le=high), BeforeValidator(_json_number)] | None


class CouponTemplateIn(Schema):
    model_config = BODY

    name: str = Field(min_length=1, max_length=services.MAX_NAME, pattern=TEXT)
    kind: CouponKindIn
    value: Number = Field(gt=0, le=1_000_000, description="CNY off, or percent off (≤ 100)")
    min_order_amount: Number = Field(0, ge=0, le=1_000_000_000, description="Threshold, CNY")
    category_ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(
        default_factory=list, max_length=200
    )
    valid_from: datetime | None = None
    valid_until: datetime | None = None
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
    valid_from: datetime | None = None
    valid_until: datetime | None = None
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
