"""What each import kind holds: its columns, how each is parsed, and which are required.
The canonical column names are documented in docs/import-formats.md; keep the two in step."""

from __future__ import annotations

from dataclasses import dataclass

from patron.commerce.models import Order, Payment, ReturnRequest, Shipment
from patron.customer.models import Consent, Customer, SourceChannel
from patron.ingest.rules import FieldSpec, FieldType
from patron.service.models import Ticket


def _choices(choices: type) -> tuple[str, ...]:
    return tuple(str(value) for value in choices.values if value)  # type: ignore[attr-defined]


CHANNEL = _choices(SourceChannel)
EVENT_TYPES = ("browse", "search", "favourite", "add_to_cart", "purchase")


@dataclass(frozen=True)
class KindSpec:
    name: str
    fields: tuple[FieldSpec, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.required)


def F(
    name: str,
    type: FieldType = "text",
    *,
    required: bool = False,
    max_length: int | None = None,
    choices: tuple[str, ...] = (),
    low: int | None = None,
    high: int | None = None,
) -> FieldSpec:
    if choices:
        type = "choice"
    return FieldSpec(name, type, required, max_length, choices, low, high)


def MONEY(name: str, *, required: bool = False) -> FieldSpec:
    return F(name, "decimal", required=required, low=0)


EXT = F("external_id", required=True, max_length=100)

KINDS: dict[str, KindSpec] = {
    spec.name: spec
    for spec in [
        KindSpec(
            "categories",
            (
                EXT,
                F("name", required=True, max_length=120),
                F("name_en", max_length=120),
                F("parent_external_id", max_length=100),
                F("is_no_reason_return_exempt", "bool"),
            ),
        ),
        KindSpec(
            "products",
            (
                EXT,
                F("name", required=True, max_length=200),
                F("category_external_id", max_length=100),
                MONEY("price"),
                F("currency", max_length=3),
            ),
        ),
        KindSpec(
            "customers",
            (
                EXT,
                F("name", required=True, max_length=200),
                F("kind", choices=_choices(Customer.Kind)),
                F("gender", choices=_choices(Customer.Gender)),
                F("birthday", "date"),
                F("phone", max_length=40),
                F("email", max_length=254),
                F("id_number", max_length=40),
                F("province", max_length=40),
                F("city", max_length=60),
                F("district", max_length=60),
                F("address", max_length=300),
                F("postal_code", max_length=12),
                F("source_channel", choices=CHANNEL),
                F("registration_channel", max_length=40),
                F("registered_at", "datetime"),
                F("company_name", max_length=200),
                F("company_size", choices=_choices(Customer.CompanySize)),
                F("industry", max_length=60),
            ),
        ),
        KindSpec(
            "consents",
            (
                F("customer_external_id", required=True, max_length=100),
                F("purpose", choices=_choices(Consent.Purpose), required=True),
                F("channel", choices=_choices(Consent.Channel), required=True),
                F("is_granted", "bool", required=True),
                F("recorded_at", "datetime", required=True),
                F("evidence", max_length=200),
                F("external_id", max_length=100),
            ),
        ),
        KindSpec(
            "orders",
            (
                EXT,
                F("customer_external_id", required=True, max_length=100),
                F("status", choices=_choices(Order.Status), required=True),
                F("placed_at", "datetime", required=True),
                F("paid_at", "datetime"),
                F("shipped_at", "datetime"),
                F("delivered_at", "datetime"),
                F("estimated_delivery_at", "datetime"),
                F("cancelled_at", "datetime"),
                MONEY("total_amount", required=True),
                MONEY("discount_amount"),
                MONEY("shipping_fee"),
                F("currency", max_length=3),
                F("coupon_code", max_length=40),
                F("channel", choices=CHANNEL),
                F("store", max_length=60),
                F("ship_province", max_length=40),
                F("ship_city", max_length=60),
            ),
        ),
        KindSpec(
            "order-lines",
            (
                F("order_external_id", required=True, max_length=100),
                F("line_no", "int", low=0, required=True),
                F("external_id", max_length=100),
                F("product_external_id", max_length=100),
                F("product_name", max_length=200),
                F("quantity", "int", low=1, high=1_000_000),
                MONEY("unit_price", required=True),
                MONEY("amount"),
                F("currency", max_length=3),
            ),
        ),
        KindSpec(
            "payments",
            (
                F("order_external_id", required=True, max_length=100),
                EXT,
                F("method", choices=_choices(Payment.Method), required=True),
                F("status", choices=_choices(Payment.Status)),
                MONEY("amount", required=True),
                F("currency", max_length=3),
                F("installments", "int", low=0, high=120),
                F("paid_at", "datetime"),
            ),
        ),
        KindSpec(
            "returns",
            (
                EXT,
                F("order_external_id", required=True, max_length=100),
                F("line_no", "int", low=0),
                F("kind", choices=_choices(ReturnRequest.Kind)),
                F("status", choices=_choices(ReturnRequest.Status)),
                F("reason", max_length=200),
                F("requested_at", "datetime", required=True),
                F("resolved_at", "datetime"),
                MONEY("refund_amount"),
                F("currency", max_length=3),
            ),
        ),
        KindSpec(
            "reviews",
            (
                EXT,
                F("customer_external_id", max_length=100),
                F("order_external_id", max_length=100),
                F("product_external_id", max_length=100),
                F("rating", "int", low=1, high=5, required=True),
                F("title", max_length=200),
                F("text", max_length=10_000),
                F("created_at", "datetime", required=True),
                F("answered_at", "datetime"),
                F("helpful_votes", "int", low=0),
            ),
        ),
        KindSpec(
            "shipments",
            (
                EXT,
                F("order_external_id", required=True, max_length=100),
                F("carrier", max_length=40),
                F("tracking_number", max_length=60),
                F("status", choices=_choices(Shipment.Status)),
                F("shipped_at", "datetime"),
                F("estimated_delivery_at", "datetime"),
                F("delivered_at", "datetime"),
            ),
        ),
        KindSpec(
            "tickets",
            (
                EXT,
                F("customer_external_id", required=True, max_length=100),
                F("order_external_id", max_length=100),
                F("channel", choices=_choices(Ticket.Channel), required=True),
                F("category", max_length=40),
                F("subject", required=True, max_length=200),
                F("status", choices=_choices(Ticket.Status)),
                F("priority", choices=_choices(Ticket.Priority)),
                F("is_complaint", "bool"),
                F("opened_at", "datetime", required=True),
                F("first_response_at", "datetime"),
                F("resolved_at", "datetime"),
                F("satisfaction", "int", low=1, high=5),
            ),
        ),
        KindSpec(
            "events",
            (
                F("customer_external_id", required=True, max_length=100),
                F("event_type", choices=EVENT_TYPES, required=True),
                F("occurred_at", "datetime", required=True),
                F("item_external_id", max_length=100),
                F("category_external_id", max_length=100),
                F("query", max_length=200),
                F("session_id", max_length=100),
                F("device_id", max_length=200),
            ),
        ),
    ]
}

# Kinds in the order a multi-file batch must load them (references point backwards).
LOAD_ORDER = (
    "categories",
    "products",
    "customers",
    "consents",
    "orders",
    "order-lines",
    "payments",
    "returns",
    "reviews",
    "shipments",
    "tickets",
    "events",
)
