"""The audit log is append-only and tamper-evident."""

from __future__ import annotations

import pytest
from django.db import connection

from patron.audit.models import AuditEvent
from patron.audit.services import (
    GENESIS,
    AuditEntry,
    audit_record,
    audit_record_many,
    audit_verify_chain,
)
from patron.errors import Conflict

pytestmark = pytest.mark.django_db


def test_entries_chain_from_genesis() -> None:
    # when
    audit_record_many(
        [
            AuditEntry("create", "customer.Customer", "1", 1, "a"),
            AuditEntry("update", "customer.Customer", "1", 1, "b", {"city": ["深圳", "广州"]}),
        ],
        actor_label="test",
    )
    audit_record(AuditEntry("delete", "customer.Tag", "9"), actor_label="test")
    # then
    first, second, third = AuditEvent.objects.order_by("id")
    assert first.previous_hash == GENESIS
    assert second.previous_hash == first.entry_hash
    assert third.previous_hash == second.entry_hash
    assert audit_verify_chain() is None


def test_entries_cannot_be_changed_or_deleted_through_the_model() -> None:
    audit_record(AuditEntry("create", "customer.Customer", "1"), actor_label="test")
    event = AuditEvent.objects.get()
    event.summary = "rewritten"
    with pytest.raises(Conflict):
        event.save()
    with pytest.raises(Conflict):
        event.delete()
    assert AuditEvent.objects.get().summary == ""


def test_an_edit_behind_the_models_back_is_detected() -> None:
    # given
    audit_record_many(
        [AuditEntry("update", "customer.Customer", str(i), i, f"change {i}") for i in range(5)],
        actor_label="test",
    )
    target = AuditEvent.objects.order_by("id")[2]
    # when: someone edits the table directly
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE audit_auditevent SET summary = %s WHERE id = %s",
            ["nothing happened", target.pk],
        )
    # then
    assert audit_verify_chain() == target.pk
