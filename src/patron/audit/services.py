"""Writing and checking the audit log. Every change to customer data goes through here."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from patron.audit.models import AuditEvent

GENESIS = "0" * 64


@dataclass(frozen=True)
class AuditEntry:
    action: str
    entity_type: str
    entity_id: str = ""
    customer_id: int | None = None
    summary: str = ""
    changes: dict[str, Any] | None = None


def _canonical(event: AuditEvent) -> bytes:
    payload = {
        "at": event.occurred_at.isoformat(),
        "actor": event.actor_id,
        "actor_label": event.actor_label,
        "action": event.action,
        "entity": [event.entity_type, event.entity_id],
        "customer": event.customer_id,
        "summary": event.summary,
        "changes": event.changes,
    }
    return json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str).encode()


def _lock_chain() -> None:
    # PostgreSQL: serialise appenders so two transactions never extend the same tail.
    # SQLite needs nothing: its write transactions are already serial.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(7431001)")


def audit_record_many(
    entries: Iterable[AuditEntry],
    *,
    actor: Any = None,
    actor_label: str = "",
    at: datetime | None = None,
) -> int:
    """Append entries to the chain inside the caller's transaction; returns how many."""
    entries = list(entries)
    if not entries:
        return 0
    when = at or timezone.now()
    label = actor_label or (
        str(actor) if actor is not None and actor.is_authenticated else "system"
    )
    actor_id = actor.pk if actor is not None and getattr(actor, "is_authenticated", False) else None
    with transaction.atomic():
        _lock_chain()
        tail = AuditEvent.objects.order_by("-id").values_list("entry_hash", flat=True).first()
        previous = tail or GENESIS
        rows = []
        for entry in entries:
            event = AuditEvent(
                occurred_at=when,
                actor_id=actor_id,
                actor_label=label[:200],
                action=entry.action,
                entity_type=entry.entity_type,
                entity_id=str(entry.entity_id),
                customer_id=entry.customer_id,
                summary=entry.summary[:300],
                changes=entry.changes or {},
                previous_hash=previous,
            )
            event.entry_hash = hashlib.sha256(previous.encode() + _canonical(event)).hexdigest()
            previous = event.entry_hash
            rows.append(event)
        AuditEvent.objects.bulk_create(rows, batch_size=2000)
    return len(rows)


def audit_record(entry: AuditEntry, *, actor: Any = None, actor_label: str = "") -> None:
    audit_record_many([entry], actor=actor, actor_label=actor_label)


def audit_verify_chain() -> int | None:
    """Return the id of the first entry whose hash does not match, or None when intact."""
    previous = GENESIS
    for event in AuditEvent.objects.order_by("id").iterator(chunk_size=5000):
        expected = hashlib.sha256(previous.encode() + _canonical(event)).hexdigest()
        if event.previous_hash != previous or event.entry_hash != expected:
            return event.pk
        previous = event.entry_hash
    return None
