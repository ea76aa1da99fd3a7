"""Reads behind the import and audit pages.

They live here until the ingest and audit apps grow selectors of their own; the permission
checks are the same ones the API would apply (``ingest.view_importbatch``,
``audit.view_auditevent``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePath
from typing import Any

from patron.account.roles import VIEW_AUDIT, VIEW_IMPORTS
from patron.account.services import require_permission
from patron.audit.models import AuditEvent
from patron.customer.selectors import Page, page_bounds
from patron.errors import ValidationFailed
from patron.ingest.models import ImportBatch


@dataclass(frozen=True)
class ImportBatchRow:
    id: int
    kind: str
    source: str
    path: str
    file_name: str
    status: str
    status_label: str
    started_at: datetime
    finished_at: datetime | None
    read: int
    inserted: int
    updated: int
    unchanged: int
    rejected: int
    error_count: int
    started_by: str


def import_batch_list(
    *, user: Any, status: str = "", page: int = 1, page_size: int = 50
) -> Page[ImportBatchRow]:
    """Import runs, newest first, with their counts."""
    require_permission(user, VIEW_IMPORTS)
    page, page_size = page_bounds(page, page_size)
    if status and status not in ImportBatch.Status.values:
        raise ValidationFailed(f"unknown import status '{status}'", details={"field": "status"})
    queryset = ImportBatch.objects.select_related("started_by").order_by("-started_at", "-id")
    if status:
        queryset = queryset.filter(status=status)
    offset = (page - 1) * page_size
    labels = dict(ImportBatch.Status.choices)
    items = tuple(
        ImportBatchRow(
            id=b.pk,
            kind=b.kind,
            source=b.source,
            path=b.path,
            file_name=PurePath(b.path).name or b.path,
            status=b.status,
            status_label=str(labels.get(b.status, b.status)),
            started_at=b.started_at,
            finished_at=b.finished_at,
            read=b.read,
            inserted=b.inserted,
            updated=b.updated,
            unchanged=b.unchanged,
            rejected=b.rejected,
            error_count=len(b.errors) if isinstance(b.errors, list) else 0,
            started_by=b.started_by.get_username() if b.started_by else "",
        )
        for b in queryset[offset : offset + page_size]
    )
    return Page(items=items, count=queryset.count(), page=page, page_size=page_size)


@dataclass(frozen=True)
class AuditEventRow:
    id: int
    occurred_at: datetime
    actor_label: str
    action: str
    entity_type: str
    entity_id: str
    customer_id: int | None
    summary: str
    changed_fields: tuple[str, ...]


def audit_event_list(
    *,
    user: Any,
    action: str = "",
    customer_id: int | None = None,
    page: int = 1,
    page_size: int = 50,
) -> Page[AuditEventRow]:
    """Audit log entries, newest first. ``changes`` hold no personal data (masked on write)."""
    require_permission(user, VIEW_AUDIT)
    page, page_size = page_bounds(page, page_size)
    if action and action not in AuditEvent.Action.values:
        raise ValidationFailed(f"unknown audit action '{action}'", details={"field": "action"})
    queryset = AuditEvent.objects.order_by("-id")
    if action:
        queryset = queryset.filter(action=action)
    if customer_id is not None:
        queryset = queryset.filter(customer_id=customer_id)
    offset = (page - 1) * page_size
    items = tuple(
        AuditEventRow(
            id=e.pk,
            occurred_at=e.occurred_at,
            actor_label=e.actor_label,
            action=e.action,
            entity_type=e.entity_type,
            entity_id=e.entity_id,
            customer_id=e.customer_id,
            summary=e.summary,
            changed_fields=tuple(sorted(e.changes)) if isinstance(e.changes, dict) else (),
        )
        for e in queryset[offset : offset + page_size]
    )
    return Page(items=items, count=queryset.count(), page=page, page_size=page_size)
