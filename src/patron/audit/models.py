from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models

from patron.errors import Conflict


class AuditEvent(models.Model):
    """One entry of the append-only, hash-chained audit log.

    ``entry_hash`` = SHA-256(previous entry's hash + this entry's canonical content), so
    editing or deleting any past entry breaks the chain (``audit_verify_chain`` finds where).
    Personal data never appears in ``changes``: encrypted fields are recorded as masked.
    """

    class Action(models.TextChoices):
        CREATE = "create"
        UPDATE = "update"
        DELETE = "delete"
        IMPORT = "import"
        LOGIN = "login"
        ACCESS = "access"

    occurred_at = models.DateTimeField(db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_label = models.CharField(max_length=200)
    action = models.CharField(max_length=20, choices=Action.choices)
    entity_type = models.CharField(max_length=60)
    entity_id = models.CharField(max_length=64, blank=True)
    customer_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    summary = models.CharField(max_length=300, blank=True)
    changes = models.JSONField(default=dict, blank=True)
    previous_hash = models.CharField(max_length=64)
    entry_hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["entity_type", "entity_id"])]

    def __str__(self) -> str:
        return f"{self.occurred_at:%Y-%m-%d %H:%M} {self.actor_label} {self.action} {self.entity_type}:{self.entity_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise Conflict("audit entries are append-only and cannot be changed")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise Conflict("audit entries are append-only and cannot be deleted")
