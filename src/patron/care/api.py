"""REST endpoints of care under ``/api/care``: the policy table (measures by grade), the care
calendar of the coming days, what the runs did, and what one customer gets.

Thin: each endpoint calls one selector or one service. 403 permission (reading needs
``marketing.view_campaign``, changing the policy ``marketing.change_campaign`` — and
``marketing.change_coupon`` for a row with coupons; a customer's care needs
``customer.view_customer``), 404 unknown customer, 422 invalid input: the message names the
grade and the field (``core.holiday_coupon_template_id: …``).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, get_args

from django.http import HttpRequest
from ninja import Query, Router, Schema
from pydantic import BeforeValidator, ConfigDict, Field, StrictBool, field_validator

from patron.apitext import NO_NUL, DateText, Number, WholeNumber, json_number
from patron.care import rules, selectors, services
from patron.customer.api import ErrorOut

router = Router(tags=["care"])

ERRORS: dict[int, Any] = {403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut}
BODY = ConfigDict(extra="forbid")

GradeCode = Literal["core", "potential", "ordinary"]
HolidayCode = Literal[
    "new_year",
    "spring_festival",
    "lantern",
    "labour_day",
    "dragon_boat",
    "mid_autumn",
    "double_ninth",
    "national_day",
]
KindCode = Literal["birthday", "holiday", "visit"]
assert set(get_args(HolidayCode)) == set(rules.HOLIDAYS), "HolidayCode must list rules.HOLIDAYS"
assert set(get_args(GradeCode)) == set(rules.GRADES)


Day = DateText
TemplateId = Annotated[int, Field(ge=1, le=rules.MAX_ID), BeforeValidator(json_number)]


# ---------------------------------------------------------------------- the policy


class CareMeasuresOut(Schema):
    grade: GradeCode
    grade_label: str
    exclusive_discount_percent: Decimal = Field(description="Member-only discount, percent off")
    has_priority_handling: bool
    has_dedicated_line: bool
    visit_interval_days: int | None = Field(
        description="A follow-up visit every N days; null: none"
    )
    visits_from: date | None = Field(
        description="When visits for the grade began: first visits are spread from it"
    )
    sends_birthday_greeting: bool
    birthday_coupon_template_id: int | None
    birthday_coupon_template_name: str
    holidays: list[HolidayCode]
    holiday_names: list[str]
    holiday_days_ahead: int = Field(description="Greetings go out this many days before")
    holiday_coupon_template_id: int | None
    holiday_coupon_template_name: str
    version: int
    note: str
    updated_by: str = Field(description="Who last saved it; coupons are issued as them")
    updated_at: datetime


class CareMeasuresIn(Schema):
    """The whole row of one grade (PUT replaces it)."""

    model_config = BODY

    exclusive_discount_percent: Number = Field(
        ge=0, le=float(rules.MAX_DISCOUNT_PERCENT), description="Percent off, 2 decimals"
    )
    has_priority_handling: StrictBool
    has_dedicated_line: StrictBool
    visit_interval_days: (
        Annotated[
            int,
            Field(ge=rules.MIN_VISIT_INTERVAL, le=rules.MAX_VISIT_INTERVAL),
            BeforeValidator(json_number),
        ]
        | None
    ) = Field(description="Days between follow-up visits; null: no visits")
    sends_birthday_greeting: StrictBool
    birthday_coupon_template_id: TemplateId | None = Field(
        description="A marketing coupon template; null: the greeting only"
    )
    holidays: list[HolidayCode] = Field(
        max_length=len(rules.HOLIDAYS),
        json_schema_extra={"uniqueItems": True},
        description="Festivals greeted, each once",
    )
    holiday_days_ahead: WholeNumber = Field(ge=0, le=rules.MAX_DAYS_AHEAD)
    holiday_coupon_template_id: TemplateId | None = Field(
        description="A marketing coupon template; null: the greeting only"
    )
    note: str = Field("", max_length=services.MAX_NOTE, pattern=NO_NUL, description="Why")

    @field_validator("holidays")
    @classmethod
    def _each_once(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("each holiday at most once")
        return value


@router.get(
    "/policy",
    response={200: list[CareMeasuresOut], **ERRORS},
    summary="The care policy: what each grade gets (R-G2)",
)
def get_policy(request: HttpRequest) -> list[selectors.MeasuresView]:
    return selectors.care_policy_list(user=request.user)


@router.put(
    "/policy/{grade}",
    response={200: CareMeasuresOut, **ERRORS},
    summary="Change what one grade gets (validated as a whole, versioned, audited)",
)
def put_policy(
    request: HttpRequest, grade: GradeCode, body: CareMeasuresIn
) -> selectors.MeasuresView:
    data = body.model_dump(exclude={"note"})
    data["exclusive_discount_percent"] = Decimal(str(body.exclusive_discount_percent))
    row = services.care_measures_save(user=request.user, grade=grade, data=data, note=body.note)
    return selectors.measures_view(row)


# ---------------------------------------------------------------------- the calendar


class CareCalendarEntryOut(Schema):
    on: date = Field(description="The day the automation acts (a greeting's first day)")
    kind: KindCode
    grade: GradeCode
    grade_label: str
    customers: int
    holiday: str = Field(description="Holiday code; empty for birthdays and visits")
    holiday_name: str
    holiday_on: date | None = Field(description="The festival's own day")


class CareCalendarOut(Schema):
    start: date
    days: int
    entries: list[CareCalendarEntryOut]


class CareCalendarParams(Schema):
    start: Day | None = Field(None, description="First day (default: today)")
    days: int = Field(30, ge=1, le=selectors.MAX_CALENDAR_DAYS)


@router.get(
    "/upcoming",
    response={200: CareCalendarOut, **ERRORS},
    summary="Birthdays, holidays and visits of the coming days, per grade (by today's policy)",
)
def upcoming(request: HttpRequest, params: Query[CareCalendarParams]) -> dict[str, Any]:
    entries = selectors.care_calendar(user=request.user, start=params.start, days=params.days)
    return {
        "start": params.start or selectors.today(),
        "days": params.days,
        "entries": entries,
    }


class CareRunDayOut(Schema):
    run_on: date
    birthday_greetings: int
    holiday_greetings: int
    not_sent: int = Field(description="No marketing consent, or no address")
    coupons: int
    offers_skipped: int = Field(description="Sent without their coupon (stock, budget, limit)")
    visits: int


class CareRunsParams(Schema):
    days: int = Field(14, ge=1, le=366)


@router.get(
    "/runs",
    response={200: list[CareRunDayOut], **ERRORS},
    summary="What the care runs of the last days did, newest first",
)
def runs(request: HttpRequest, params: Query[CareRunsParams]) -> list[selectors.RunDay]:
    return selectors.care_recent_runs(user=request.user, days=params.days)


# ---------------------------------------------------------------------- one customer


class CareTouchOut(Schema):
    kind: KindCode
    occasion: str
    occasion_on: date
    run_on: date
    outcome: Literal["messaged", "suppressed", "visit_opened"]
    offer: str = Field(description="Empty: no offer in the policy; issued; or why not")
    reason: str
    message_id: int | None
    coupon_code: str
    ticket_id: int | None


class CustomerCareOut(Schema):
    customer_id: int
    grade: GradeCode
    measures: CareMeasuresOut
    dedicated_agent: str | None
    next_birthday_greeting: date | None
    next_visit_on: date | None
    touches: list[CareTouchOut]


@router.get(
    "/customers/{customer_id}",
    response={200: CustomerCareOut, **ERRORS},
    summary="What one customer gets: their grade's measures, dedicated agent, next greeting "
    "and visit, latest care",
)
def customer_care(request: HttpRequest, customer_id: int) -> selectors.CustomerCareView:
    return selectors.customer_care(user=request.user, customer_id=customer_id)
