"""Olist (Brazilian marketplace) export: customers, orders, items, payments, reviews, products.

Accepts the Kaggle file names (``olist_orders_dataset.csv`` …) and the short ones
(``orders.csv`` …), CSV or Parquet. Quirks of the real data handled here:
- ``customer_id`` is per order; the person is ``customer_unique_id`` (our external id). A person
  with several rows keeps the last row's address.
- ``review_id`` is not unique (one review can cover several orders): the key is review:order.
- Orders carry no total: it is the sum of item prices plus freight.
- Times are local to São Paulo; money is BRL.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from patron.errors import ValidationFailed
from patron.ingest.mapping import Mapping
from patron.ingest.readers import read_records
from patron.ingest.services import Part

SOURCE = "olist"
MAPPING = Mapping(source=SOURCE, timezone="America/Sao_Paulo")
ORDER_STATUS = {
    "delivered": "delivered",
    "shipped": "shipped",
    "canceled": "cancelled",
    "unavailable": "cancelled",
    "invoiced": "paid",
    "processing": "paid",
    "approved": "paid",
    "created": "created",
}
PAYMENT_METHOD = {
    "credit_card": "card",
    "debit_card": "card",
    "boleto": "bank_transfer",
    "voucher": "voucher",
    "not_defined": "other",
}


ORDER_COLUMNS = {
    "external_id": "order_id",
    "customer_external_id": "customer_id",
    "status": "order_status",
    "placed_at": "order_purchase_timestamp",
    "paid_at": "order_approved_at",
    "shipped_at": "order_delivered_carrier_date",
    "delivered_at": "order_delivered_customer_date",
    "estimated_delivery_at": "order_estimated_delivery_date",
}


def _find(folder: Path, name: str, *, required: bool) -> Path | None:
    for stem in (name, f"olist_{name}_dataset"):
        for suffix in (".csv", ".parquet"):
            path = folder / f"{stem}{suffix}"
            if path.is_file():
                return path
    if required:
        raise ValidationFailed(
            f"{folder}: no {name}.csv (or olist_{name}_dataset.csv) in the Olist export"
        )
    return None


def _money(text: Any) -> Decimal:
    try:
        return Decimal(str(text))
    except InvalidOperation:
        return Decimal(0)


def olist_parts(folder: Path) -> list[Part]:
    """Read an Olist export folder into import parts (all validated and written as one batch)."""
    if not folder.is_dir():
        raise ValidationFailed(
            f"{folder}: not a folder (give the folder holding the Olist CSV files)"
        )
    paths = {
        name: _find(folder, name, required=name in {"customers", "orders"})
        for name in (
            "customers",
            "orders",
            "order_items",
            "order_payments",
            "order_reviews",
            "products",
        )
    }
    customers_path, orders_path = paths["customers"], paths["orders"]
    assert customers_path is not None and orders_path is not None

    people: dict[str, tuple[int, dict[str, Any]]] = {}
    person_of: dict[str, str] = {}
    for line, rec in read_records(customers_path):
        unique = rec.get("customer_unique_id") or ""
        person_of[rec.get("customer_id") or ""] = unique
        people[unique] = (line, rec)

    items = list(read_records(paths["order_items"])) if paths["order_items"] else []
    totals: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
    for _, rec in items:
        total = totals[rec.get("order_id") or ""]
        total[0] += _money(rec.get("price"))
        total[1] += _money(rec.get("freight_value"))

    orders = list(read_records(orders_path))
    first_order: dict[str, str] = {}
    for _, rec in orders:
        unique = person_of.get(rec.get("customer_id") or "")
        stamp = rec.get("order_purchase_timestamp") or ""
        if unique and (unique not in first_order or stamp < first_order[unique]):
            first_order[unique] = stamp

    parts = [
        Part.from_records(
            "customers", customers_path.name, _customers(people, first_order), MAPPING
        ),
        Part.from_records(
            "orders", orders_path.name, _orders(orders, person_of, totals), MAPPING, ORDER_COLUMNS
        ),
        Part.from_records(
            "shipments", orders_path.name + " (deliveries)", _shipments(orders), MAPPING
        ),
    ]
    if paths["order_items"]:
        parts.append(
            Part.from_records("order-lines", paths["order_items"].name, _lines(items), MAPPING)
        )
    if paths["order_payments"]:
        parts.append(
            Part.from_records(
                "payments",
                paths["order_payments"].name,
                _payments(paths["order_payments"]),
                MAPPING,
            )
        )
    if paths["order_reviews"]:
        parts.append(
            Part.from_records(
                "reviews", paths["order_reviews"].name, _reviews(paths["order_reviews"]), MAPPING
            )
        )
    if paths["products"]:
        parts.extend(_catalogue(paths["products"], folder))
    return parts


def _customers(
    people: dict[str, tuple[int, dict[str, Any]]], first_order: dict[str, str]
) -> Iterator[tuple[int, dict[str, Any]]]:
    for unique, (line, rec) in people.items():
        yield (
            line,
            {
                "external_id": unique,
                "name": f"Olist {unique[:8]}" if unique else "",
                "kind": "individual",
                "province": rec.get("customer_state"),
                "city": rec.get("customer_city"),
                "postal_code": rec.get("customer_zip_code_prefix"),
                "source_channel": "third_party",
                "registration_channel": "olist",
                "registered_at": first_order.get(unique),
            },
        )


def _orders(
    orders: list[tuple[int, dict[str, Any]]],
    person_of: dict[str, str],
    totals: dict[str, list[Decimal]],
) -> Iterator[tuple[int, dict[str, Any]]]:
    for line, rec in orders:
        order_id = rec.get("order_id") or ""
        status = rec.get("order_status") or ""
        price, freight = totals.get(order_id, [Decimal(0), Decimal(0)])
        yield (
            line,
            {
                "external_id": order_id,
                # An unknown customer_id stays as it is and is refused with a reason.
                "customer_external_id": person_of.get(
                    rec.get("customer_id") or "", rec.get("customer_id")
                ),
                "status": ORDER_STATUS.get(status, status),
                "placed_at": rec.get("order_purchase_timestamp"),
                "paid_at": rec.get("order_approved_at"),
                "shipped_at": rec.get("order_delivered_carrier_date"),
                "delivered_at": rec.get("order_delivered_customer_date"),
                "estimated_delivery_at": rec.get("order_estimated_delivery_date"),
                "total_amount": str(price + freight),
                "shipping_fee": str(freight),
                "currency": "BRL",
                "channel": "third_party",
                "store": "olist",
            },
        )


def _shipments(orders: list[tuple[int, dict[str, Any]]]) -> Iterator[tuple[int, dict[str, Any]]]:
    for line, rec in orders:
        shipped, delivered = (
            rec.get("order_delivered_carrier_date"),
            rec.get("order_delivered_customer_date"),
        )
        if not shipped and not delivered:
            continue
        yield (
            line,
            {
                "external_id": rec.get("order_id"),
                "order_external_id": rec.get("order_id"),
                "status": "delivered" if delivered else "in_transit",
                "shipped_at": shipped,
                "estimated_delivery_at": rec.get("order_estimated_delivery_date"),
                "delivered_at": delivered,
            },
        )


def _lines(items: list[tuple[int, dict[str, Any]]]) -> Iterator[tuple[int, dict[str, Any]]]:
    for line, rec in items:
        yield (
            line,
            {
                "order_external_id": rec.get("order_id"),
                "line_no": rec.get("order_item_id"),
                "product_external_id": rec.get("product_id"),
                "quantity": 1,
                "unit_price": rec.get("price"),
                "amount": rec.get("price"),
                "currency": "BRL",
            },
        )


def _payments(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    for line, rec in read_records(path):
        method = rec.get("payment_type") or ""
        yield (
            line,
            {
                "order_external_id": rec.get("order_id"),
                "external_id": f"{rec.get('order_id')}:{rec.get('payment_sequential')}",
                "method": PAYMENT_METHOD.get(method, method),
                "status": "succeeded",
                "amount": rec.get("payment_value"),
                "currency": "BRL",
                "installments": rec.get("payment_installments"),
            },
        )


def _reviews(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    for line, rec in read_records(path):
        yield (
            line,
            {
                "external_id": f"{rec.get('review_id')}:{rec.get('order_id')}",
                "order_external_id": rec.get("order_id"),
                "rating": rec.get("review_score"),
                "title": rec.get("review_comment_title"),
                "text": rec.get("review_comment_message"),
                "created_at": rec.get("review_creation_date"),
                "answered_at": rec.get("review_answer_timestamp"),
            },
        )


def _catalogue(products_path: Path, folder: Path) -> list[Part]:
    english: dict[str, str] = {}
    for candidate in (
        folder / "product_category_name_translation.csv",
        folder.parent / "product_category_name_translation.csv",
    ):
        if candidate.is_file():
            english = {
                r.get("product_category_name") or "": r.get("product_category_name_english") or ""
                for _, r in read_records(candidate)
            }
            break
    products = list(read_records(products_path))
    categories: dict[str, int] = {}
    for line, rec in products:
        name = rec.get("product_category_name") or ""
        if name and name not in categories:
            categories[name] = line

    def category_rows() -> Iterator[tuple[int, dict[str, Any]]]:
        for name, line in categories.items():
            yield line, {"external_id": name, "name": name, "name_en": english.get(name)}

    def product_rows() -> Iterator[tuple[int, dict[str, Any]]]:
        for line, rec in products:
            category = rec.get("product_category_name") or ""
            yield (
                line,
                {
                    "external_id": rec.get("product_id"),
                    "name": f"{english.get(category) or category or 'product'} {(rec.get('product_id') or '')[:8]}",
                    "category_external_id": category or None,
                    "currency": "BRL",
                },
            )

    return [
        Part.from_records(
            "categories", products_path.name + " (categories)", category_rows(), MAPPING
        ),
        Part.from_records("products", products_path.name, product_rows(), MAPPING),
    ]
