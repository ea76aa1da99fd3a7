"""What the services of every workflow share: a required reason, the row locked for a
decision, a state machine's refusal as 409 and separation of duties as 403, and the audit entry
of a decision."""

from __future__ import annotations

from typing import Any

from django.db import models

from patron.audit.services import AuditEntry, audit_record
from patron.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from patron.statemachine import SeparationOfDuties, TransitionRefused

MAX_REASON = 2000


def reason_text(reason: str, what: str, *, limit: int = MAX_REASON) -> str:
    """The reason, stripped; a blank or over-long one is refused naming ``what``."""
    text = (reason or "").strip()
    if not text:
        raise ValidationFailed(f"{what}: a reason is required and is recorded")
    if len(text) > limit:
        raise ValidationFailed(f"{what}: the reason is longer than {limit} characters")
    return text


def locked[M: models.Model](model: type[M], pk: int, what: str) -> M:
    """The row, locked until the transaction ends (two deciders wait for each other)."""
    found = model._default_manager.select_for_update().filter(pk=pk).first()
    if found is None:
        raise NotFound(f"{what} {pk} not found")
    return found


def transition(machine_next: Any, state: str, action: str, **kwargs: Any) -> str:
    """``machine_next(state, action)``, its refusal as a 409."""
    try:
        return str(machine_next(state, action, **kwargs))
    except TransitionRefused as error:
        raise Conflict(str(error)) from error


def separate(check: Any, *args: Any, **kwargs: Any) -> None:
    """Run a separation-of-duties check, its refusal as a 403."""
    try:
        check(*args, **kwargs)
    except SeparationOfDuties as error:
        raise PermissionDenied(str(error)) from error


def audit_update(
    user: Any,
    *,
    entity_type: str,
    pk: int | str,
    customer_id: int | None,
    summary: str,
    system_label: str,
    **changes: Any,
) -> None:
    """One audit entry for a workflow step; ``system_label`` names the actor when no person
    acted (a job, a rule, the applicant through their link)."""
    audit_record(
        AuditEntry(
            action="update",
            entity_type=entity_type,
            entity_id=str(pk),
            customer_id=customer_id,
            summary=summary[:300],
            changes={k: v for k, v in changes.items() if v is not None},
        ),
        actor=user,
        actor_label="" if user is not None else system_label,
    )
