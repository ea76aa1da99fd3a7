"""Writing validated rows into the OLTP database, keyed by (source, external_id).

For each kind: resolve references to earlier records (customer, order, product …) within the
same source, compare each row's keyed fingerprint with the stored one, insert new rows in bulk,
update changed rows (recording the change in the audit log) and leave equal rows alone. Runs
inside the caller's transaction: the caller decides whether the batch commits.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from django.db import models
from django.utils import timezone

from patron.audit.services import AuditEntry
from patron.commerce.models import (
    Category,
    Order,
    OrderLine,
    Payment,
    Product,
    ReturnRequest,
    Review,
    Shipment,
)
from patron.customer.models import Address, Consent, Customer, CustomerDevice
from patron.ingest.bulk import bulk_insert
from patron.ingest.columns import ParsedTable, RowError, scalar_of
from patron.privacy import crypto
from patron.service.models import Ticket

CHUNK = 5000


@dataclass(frozen=True)
class Ref:
    """A reference from a row to an earlier record of the same source."""

    column: str
    model: type[models.Model]
    attname: str
    required: bool = False
    unknown_ok: bool = False  # a given but unknown id is kept as text and not linked


@dataclass(frozen=True)
class Binding:
    model: type[models.Model]
    fields: tuple[str, ...]  # canonical columns copied to model fields of the same name
    refs: tuple[Ref, ...] = ()
    pii: tuple[tuple[str, str], ...] = ()  # (field, lookup kind): encrypted field + its *_hash
    renames: tuple[tuple[str, str], ...] = ()  # (canonical column, model field)
    audit_creates: bool = False


@dataclass
class KindResult:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)
    audit: list[AuditEntry] = field(default_factory=list)


BINDINGS: dict[str, Binding] = {
    "categories": Binding(Category, ("name", "name_en", "is_no_reason_return_exempt")),
    "products": Binding(
        Product,
        ("name", "price", "currency"),
        refs=(Ref("category_external_id", Category, "category_id"),),
    ),
    "customers": Binding(
        Customer,
        (
            "name",
            "kind",
            "gender",
            "birthday",
            "province",
            "city",
            "source_channel",
            "registration_channel",
            "registered_at",
            "company_name",
            "company_size",
            "industry",
        ),
        pii=(("phone", "phone"), ("email", "email"), ("id_number", "id_number")),
        audit_creates=True,
    ),
    "consents": Binding(
        Consent,
        ("purpose", "channel", "is_granted", "recorded_at", "evidence"),
        refs=(Ref("customer_external_id", Customer, "customer_id", required=True),),
    ),
    "orders": Binding(
        Order,
        (
            "status",
            "placed_at",
            "paid_at",
            "shipped_at",
            "delivered_at",
            "estimated_delivery_at",
            "cancelled_at",
            "total_amount",
            "discount_amount",
            "shipping_fee",
            "currency",
            "coupon_code",
            "channel",
            "store",
            "ship_province",
            "ship_city",
        ),
        refs=(Ref("customer_external_id", Customer, "customer_id", required=True),),
    ),
    "order-lines": Binding(
        OrderLine,
        ("line_no", "product_name", "quantity", "unit_price", "amount", "currency"),
        refs=(
            Ref("order_external_id", Order, "order_id", required=True),
            Ref("product_external_id", Product, "product_id", unknown_ok=True),
        ),
        renames=(("product_external_id", "product_ref"),),
    ),
    "payments": Binding(
        Payment,
        ("method", "status", "amount", "currency", "installments", "paid_at"),
        refs=(Ref("order_external_id", Order, "order_id", required=True),),
    ),
    "returns": Binding(
        ReturnRequest,
        ("kind", "status", "reason", "requested_at", "resolved_at", "refund_amount", "currency"),
        refs=(Ref("order_external_id", Order, "order_id", required=True),),
    ),
    "reviews": Binding(
        Review,
        ("rating", "title", "text", "created_at", "answered_at", "helpful_votes"),
        refs=(
            Ref("customer_external_id", Customer, "customer_id"),
            Ref("order_external_id", Order, "order_id"),
            Ref("product_external_id", Product, "product_id", unknown_ok=True),
        ),
    ),
    "shipments": Binding(
        Shipment,
        (
            "carrier",
            "tracking_number",
            "status",
            "shipped_at",
            "estimated_delivery_at",
            "delivered_at",
        ),
        refs=(Ref("order_external_id", Order, "order_id", required=True),),
    ),
    "tickets": Binding(
        Ticket,
        (
            "channel",
            "category",
            "subject",
            "status",
            "priority",
            "is_complaint",
            "opened_at",
            "first_response_at",
            "resolved_at",
            "satisfaction",
        ),
        refs=(
            Ref("customer_external_id", Customer, "customer_id", required=True),
            Ref("order_external_id", Order, "order_id"),
        ),
    ),
}


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


WHOLE_SOURCE_AT = 20_000  # beyond this many keys, one pass over the source beats IN-lists


def _lookup(
    model: type[models.Model], source: str, keys: Iterable[str | None], fields: tuple[str, ...]
) -> dict[str, tuple[Any, ...]]:
    """external_id -> (values of ``fields``) for the given keys that exist in ``source``."""
    wanted = {k for k in keys if k}
    queryset = model._default_manager.filter(source=source)
    if not wanted or not queryset.exists():
        return {}
    found: dict[str, tuple[Any, ...]] = {}
    if len(wanted) > WHOLE_SOURCE_AT:
        rows = queryset.values_list("external_id", *fields).iterator(chunk_size=50_000)
        for ext, *values in rows:
            if ext in wanted:
                found[ext] = tuple(values)
        return found
    ordered = sorted(wanted)
    for chunk in _chunks(ordered):
        for ext, *values in queryset.filter(external_id__in=chunk).values_list(
            "external_id", *fields
        ):
            found[ext] = tuple(values)
    return found


def id_map(
    model: type[models.Model], source: str, external_ids: Iterable[str | None]
) -> dict[str, int]:
    """external_id -> primary key for the given ids that exist in ``source``."""
    return {ext: values[0] for ext, values in _lookup(model, source, external_ids, ("pk",)).items()}


def _existing(
    model: type[models.Model], source: str, keys: list[str]
) -> dict[str, tuple[int, str]]:
    """external_id -> (primary key, stored fingerprint)."""
    return {
        ext: (v[0], v[1]) for ext, v in _lookup(model, source, keys, ("pk", "row_hash")).items()
    }


def _field_values(
    binding: Binding, row: dict[str, Any], resolved: dict[str, int | None]
) -> dict[str, Any]:
    """Model field values for one row (the update path; inserts build whole columns)."""
    model = binding.model
    values: dict[str, Any] = {}
    for name in binding.fields:
        value = row.get(name)
        if value is None:
            fld = model._meta.get_field(name)
            assert isinstance(fld, models.Field)
            value = fld.get_default() if not fld.null else None
        values[name] = value
    for column, target in binding.renames:
        values[target] = row.get(column) or ""
    for fld_name, kind in binding.pii:
        plain = row.get(fld_name) or ""
        values[fld_name] = plain
        values[f"{fld_name}_hash"] = crypto.lookup_hash(plain, kind=kind) if plain else ""
    values.update(resolved)
    return values


def _masked(binding: Binding, name: str, value: Any) -> Any:
    for fld_name, kind in binding.pii:
        if name == fld_name:
            return crypto.mask(value, kind=kind)
    if isinstance(value, models.Model):
        return value.pk
    return value if isinstance(value, str | int | bool | float) or value is None else str(value)


@dataclass
class _Resolution:
    keep: list[int]
    resolved: dict[str, list[int | None]]


def _resolve(
    kind: str, binding: Binding, table: pa.Table, source: str, file_label: str, result: KindResult
) -> _Resolution:
    """Look up every reference; rows with an unknown one become errors."""
    count = table.num_rows
    lines = table.column("_line").to_pylist()
    keys = table.column("external_id").to_pylist()
    resolved: dict[str, list[int | None]] = {}
    failed: dict[int, RowError] = {}
    for ref in binding.refs:
        values = table.column(ref.column).to_pylist()
        found = id_map(ref.model, source, values)
        pks: list[int | None] = [found.get(v) if v else None for v in values]
        for index, (value, pk) in enumerate(zip(values, pks, strict=True)):
            if index in failed:
                continue
            if value and pk is None and not ref.unknown_ok:
                what = ref.model._meta.verbose_name
                failed[index] = RowError(
                    file_label,
                    lines[index],
                    ref.column,
                    value,
                    f"unknown {what} '{value}' in source '{source}'",
                    keys[index] or "",
                )
            elif ref.required and pk is None:
                failed[index] = RowError(
                    file_label,
                    lines[index],
                    ref.column,
                    "",
                    "required value is missing",
                    keys[index] or "",
                )
        resolved[ref.attname] = pks
    if kind == "reviews":
        _review_customers(table, resolved, failed, file_label, lines, keys)
    if kind == "returns":
        _return_lines(table, resolved, failed, file_label, lines, keys)
    result.errors.extend(failed[i] for i in sorted(failed))
    return _Resolution([i for i in range(count) if i not in failed], resolved)


def _review_customers(
    table: pa.Table,
    resolved: dict[str, list[int | None]],
    failed: dict[int, RowError],
    file_label: str,
    lines: list[int],
    keys: list[str],
) -> None:
    """A review without a customer column belongs to its order's customer."""
    orders = [pk for pk in resolved["order_id"] if pk is not None]
    owner: dict[int, int] = {}
    for chunk in _chunks(orders):
        owner.update(Order.objects.filter(pk__in=chunk).values_list("pk", "customer_id"))
    customers = resolved["customer_id"]
    for index, order_pk in enumerate(resolved["order_id"]):
        if customers[index] is None and index not in failed:
            if order_pk is None:
                failed[index] = RowError(
                    file_label,
                    lines[index],
                    "customer_external_id",
                    "",
                    "a review needs a customer or an order",
                    keys[index] or "",
                )
            else:
                customers[index] = owner[order_pk]


def _return_lines(
    table: pa.Table,
    resolved: dict[str, list[int | None]],
    failed: dict[int, RowError],
    file_label: str,
    lines: list[int],
    keys: list[str],
) -> None:
    """Link a return to its order line when the file names the line number."""
    orders = [pk for pk in resolved["order_id"] if pk is not None]
    line_ids: dict[tuple[int, int], int] = {}
    for chunk in _chunks(orders):
        rows = OrderLine.objects.filter(order_id__in=chunk).values_list("pk", "order_id", "line_no")
        for line_pk, order_id, line_no in rows:
            line_ids[(order_id, line_no)] = line_pk
    numbers = table.column("line_no").to_pylist()
    order_refs = table.column("order_external_id").to_pylist()
    linked: list[int | None] = []
    for index, (order_pk, number) in enumerate(zip(resolved["order_id"], numbers, strict=True)):
        match = (
            line_ids.get((order_pk, number))
            if order_pk is not None and number is not None
            else None
        )
        if number is not None and order_pk is not None and match is None and index not in failed:
            failed[index] = RowError(
                file_label,
                lines[index],
                "line_no",
                str(number),
                f"order '{order_refs[index]}' has no line {number}",
                keys[index] or "",
            )
        linked.append(match)
    resolved["order_line_id"] = linked


def _constant(value: Any, count: int, kind: pa.DataType | None = None) -> pa.Array:
    return pa.array([value] * count, kind) if kind is not None else pa.array([value] * count)


def _insert_columns(
    binding: Binding,
    table: pa.Table,
    indices: list[int],
    resolved: dict[str, list[int | None]],
    source: str,
) -> pa.Table:
    """The rows to insert as columns named after the database columns, defaults filled in."""
    model = binding.model
    count = len(indices)
    picked = table.take(pa.array(indices, pa.int64()))
    now = timezone.now()
    supplied: dict[str, pa.Array] = {
        "source": _constant(source, count, pa.string()),
        "external_id": picked.column("external_id"),
        "row_hash": picked.column("_fp"),
    }
    for name in binding.fields:
        supplied[name] = picked.column(name)
    for column, target in binding.renames:
        supplied[target] = pc_fill(picked.column(column), "")
    for attname, pks in resolved.items():
        supplied[attname] = pa.array([pks[i] for i in indices], pa.int64())
    for fld_name, kind in binding.pii:
        plain = picked.column(fld_name).to_pylist()
        fld = model._meta.get_field(fld_name)
        assert isinstance(fld, models.Field)
        supplied[fld_name] = pa.array(
            [fld.get_prep_value(v) if v else "" for v in plain], pa.string()
        )
        supplied[f"{fld_name}_hash"] = pa.array(
            [crypto.lookup_hash(v, kind=kind) if v else "" for v in plain], pa.string()
        )
    columns: dict[str, pa.Array] = {}
    for fld in model._meta.concrete_fields:
        if fld.primary_key or fld.column is None:
            continue
        if getattr(fld, "auto_now", False) or getattr(fld, "auto_now_add", False):
            columns[fld.column] = _constant(now, count, pa.timestamp("us", tz="UTC"))
            continue
        default = fld.get_default() if (fld.has_default() or not fld.null) else None
        if fld.attname in supplied:
            column = supplied[fld.attname]
            if default is not None and column.null_count:
                column = pc_fill(column, default)
            columns[fld.column] = column
        else:
            if isinstance(fld, models.JSONField) and default is not None:
                # A JSON default ([] or {}) goes in as its text: neither SQLite's executemany
                # nor PostgreSQL's CSV COPY takes a list or a dict.
                default = json.dumps(default)
            columns[fld.column] = _constant(default, count)
    return pa.table(columns)


def pc_fill(column: pa.Array | pa.ChunkedArray, value: Any) -> pa.Array:
    kind = column.type
    if pa.types.is_null(kind):
        return pa.array([value] * len(column))
    return pc.fill_null(column, scalar_of(value, kind))


def write_table(
    kind: str,
    parsed: ParsedTable,
    *,
    source: str,
    on_progress: Callable[[int], None] | None = None,
) -> KindResult:
    """Upsert the parsed rows of ``kind``. Rows with unresolved references become errors and are
    not written; the caller rolls the batch back when it must be all-or-nothing."""
    binding = BINDINGS[kind]
    model = binding.model
    result = KindResult()
    table = parsed.table
    resolution = _resolve(kind, binding, table, source, parsed.file, result)
    keys = table.column("external_id").to_pylist()
    prints = table.column("_fp").to_pylist()
    existing = _existing(model, source, [keys[i] for i in resolution.keep])
    to_insert: list[int] = []
    changed: dict[int, int] = {}
    for index in resolution.keep:
        stored = existing.get(keys[index])
        if stored is None:
            to_insert.append(index)
        elif stored[1] == prints[index]:
            result.unchanged += 1
        else:
            changed[stored[0]] = index
    for chunk in _chunks(to_insert, 200_000):
        rows = _insert_columns(binding, table, list(chunk), resolution.resolved, source)
        result.inserted += bulk_insert(model._meta.db_table, rows)
        if on_progress:
            on_progress(len(chunk))
    if binding.audit_creates and to_insert:
        created = id_map(model, source, (keys[i] for i in to_insert))
        result.audit.extend(
            AuditEntry(
                "create",
                model._meta.label,
                str(pk),
                pk if model is Customer else None,
                f"imported from {source}:{ext}",
            )
            for ext, pk in sorted(created.items(), key=lambda item: item[1])
        )
    if changed:
        rows = table.take(pa.array(list(changed.values()), pa.int64())).to_pylist()
        updates = {}
        for (pk, index), row in zip(changed.items(), rows, strict=True):
            resolved = {att: pks[index] for att, pks in resolution.resolved.items()}
            updates[pk] = (_field_values(binding, row, resolved), row["_fp"])
        _apply_updates(binding, updates, result, source)
    return result


def _apply_updates(
    binding: Binding,
    changed: dict[int, tuple[dict[str, Any], str]],
    result: KindResult,
    source: str,
) -> None:
    model = binding.model
    objects = model._default_manager.in_bulk(list(changed))
    update_fields: set[str] = {"row_hash"}
    for pk, (values, fingerprint) in changed.items():
        obj = objects[pk]
        diff: dict[str, list[Any]] = {}
        for name, new in values.items():
            old = getattr(obj, name)
            if old != new:
                if not name.endswith("_hash"):
                    diff[name] = [_masked(binding, name, old), _masked(binding, name, new)]
                setattr(obj, name, new)
                update_fields.add(name)
        obj.row_hash = fingerprint  # type: ignore[attr-defined]
        result.updated += 1
        result.audit.append(
            AuditEntry(
                "update",
                model._meta.label,
                str(pk),
                pk if model is Customer else values.get("customer_id"),
                f"re-imported from {source}:{getattr(obj, 'external_id', '')}",
                diff,
            )
        )
    if any(f.name == "updated_at" for f in model._meta.concrete_fields):
        update_fields.add("updated_at")
        for obj in objects.values():
            obj.updated_at = timezone.now()  # type: ignore[attr-defined]
    model._default_manager.bulk_update(
        list(objects.values()), sorted(update_fields), batch_size=1000
    )


def addresses_sync(customers: pa.Table, *, source: str, skip: set[str]) -> None:
    """Keep each imported customer's default address equal to the imported one."""
    has_address = pc.fill_null(
        pc.or_kleene(
            pc.or_kleene(
                pc.is_valid(customers.column("address")), pc.is_valid(customers.column("district"))
            ),
            pc.is_valid(customers.column("postal_code")),
        ),
        False,
    )
    rows = [r for r in customers.filter(has_address).to_pylist() if r["external_id"] not in skip]
    if not rows:
        return
    ids = id_map(Customer, source, (r["external_id"] for r in rows))
    current = {
        a.customer_id: a
        for a in Address.objects.filter(customer_id__in=list(ids.values()), is_default=True)
    }
    to_create: list[Address] = []
    to_update: list[Address] = []
    for row in rows:
        customer_id = ids[row["external_id"]]
        values = address_values(row)
        address = current.get(customer_id)
        if address is None:
            to_create.append(
                Address(customer_id=customer_id, label="default", is_default=True, **values)
            )
        elif any(getattr(address, k) != v for k, v in values.items()):
            for k, v in values.items():
                setattr(address, k, v)
            to_update.append(address)
    Address.objects.bulk_create(to_create, batch_size=2000)
    if to_update:
        Address.objects.bulk_update(to_update, list(ADDRESS_FIELDS), batch_size=1000)


def devices_sync(events: pa.Table, *, customer_ids: dict[str, int]) -> int:
    """Record the devices imported events were seen on (``device_id``), as keyed hashes, with the
    first and last time each customer was seen on each; returns how many devices were new.

    Re-importing the same events changes nothing: the seen times only ever widen."""
    if "device_id" not in events.column_names:
        return 0
    devices = pc.utf8_trim_whitespace(events.column("device_id"))
    has_device = pc.fill_null(pc.not_equal(devices, ""), False)
    pairs = (
        pa.table(
            {
                "customer": events.column("customer_external_id"),
                "device": devices,
                "at": events.column("occurred_at"),
            }
        )
        .filter(has_device)
        .group_by(["customer", "device"])
        .aggregate([("at", "min"), ("at", "max")])
    )
    hashes = {
        device: crypto.lookup_hash(device, kind="device")
        for device in pc.unique(pairs.column("device")).to_pylist()
    }
    seen: dict[tuple[int, str], tuple[datetime, datetime]] = {}
    for external_id, device, first, last in zip(
        pairs.column("customer").to_pylist(),
        pairs.column("device").to_pylist(),
        pairs.column("at_min").to_pylist(),
        pairs.column("at_max").to_pylist(),
        strict=True,
    ):
        if external_id not in customer_ids:
            continue
        key = (customer_ids[external_id], hashes[device])
        before = seen.get(key, (first, last))  # two spellings of one device: one hash
        seen[key] = (min(before[0], first), max(before[1], last))
    if not seen:
        return 0
    customers = sorted({customer for customer, _ in seen})
    stored = {
        (row.customer_id, row.device_hash): row
        for start in range(0, len(customers), 5000)  # SQLite's limit on query parameters
        for row in CustomerDevice.objects.filter(customer_id__in=customers[start : start + 5000])
    }
    fresh, widened = [], []
    for (customer_id, device_hash), (first, last) in seen.items():
        row = stored.get((customer_id, device_hash))
        if row is None:
            fresh.append(
                CustomerDevice(
                    customer_id=customer_id,
                    device_hash=device_hash,
                    first_seen_at=first,
                    last_seen_at=last,
                )
            )
        elif first < row.first_seen_at or last > row.last_seen_at:
            row.first_seen_at = min(first, row.first_seen_at)
            row.last_seen_at = max(last, row.last_seen_at)
            widened.append(row)
    CustomerDevice.objects.bulk_create(fresh, batch_size=2000)
    CustomerDevice.objects.bulk_update(widened, ["first_seen_at", "last_seen_at"], batch_size=1000)
    return len(fresh)


ADDRESS_FIELDS = ("province", "city", "district", "detail", "detail_hash", "postal_code")


def address_values(row: dict[str, Any]) -> dict[str, Any]:
    """Address fields from an imported customer row; the hash covers the whole address."""
    parts = [row.get(k) or "" for k in ("province", "city", "district")]
    detail = row.get("address") or ""
    return {
        "province": parts[0],
        "city": parts[1],
        "district": parts[2],
        "detail": detail,
        "detail_hash": crypto.lookup_hash("".join(parts) + detail, kind="address")
        if detail
        else "",
        "postal_code": row.get("postal_code") or "",
    }
