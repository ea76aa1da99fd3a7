"""Taobao UserBehavior (Tianchi) events: ``user_id,item_id,category_id,behavior_type,timestamp``,
no header. Each user becomes a customer of source ``taobao``; behaviours map to Patron's event
types (pv → browse, fav → favourite, cart → add_to_cart, buy → purchase)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from patron.errors import ValidationFailed
from patron.ingest.mapping import Mapping
from patron.ingest.readers import read_records
from patron.ingest.services import Part

SOURCE = "taobao"
COLUMNS = ["user_id", "item_id", "category_id", "behavior_type", "timestamp"]
BEHAVIOUR = {"pv": "browse", "fav": "favourite", "cart": "add_to_cart", "buy": "purchase"}
MAPPING = Mapping(source=SOURCE, timezone="Asia/Shanghai")


def taobao_parts(path: Path) -> list[Part]:
    if not path.is_file():
        raise ValidationFailed(f"{path}: no such file")
    records = list(read_records(path, header=COLUMNS))
    first_seen: dict[str, tuple[int, int]] = {}
    for line, rec in records:
        user = rec["user_id"]
        stamp = int(rec["timestamp"]) if rec["timestamp"].isdigit() else 0
        if user not in first_seen or (stamp and stamp < first_seen[user][1]):
            first_seen[user] = (line, stamp)

    def customers() -> Iterator[tuple[int, dict[str, Any]]]:
        for user, (line, stamp) in first_seen.items():
            yield (
                line,
                {
                    "external_id": user,
                    "name": f"淘宝用户 {user}",
                    "source_channel": "third_party",
                    "registration_channel": "taobao",
                    "registered_at": datetime.fromtimestamp(stamp, tz=UTC) if stamp else None,
                },
            )

    def events() -> Iterator[tuple[int, dict[str, Any]]]:
        for line, rec in records:
            behaviour = rec["behavior_type"]
            yield (
                line,
                {
                    "customer_external_id": rec["user_id"],
                    "event_type": BEHAVIOUR.get(behaviour, behaviour),
                    "occurred_at": rec["timestamp"],
                    "item_external_id": rec["item_id"],
                    "category_external_id": rec["category_id"],
                },
            )

    return [
        Part.from_records("customers", path.name + " (users)", customers(), MAPPING),
        Part.from_records("events", path.name, events(), MAPPING),
    ]
