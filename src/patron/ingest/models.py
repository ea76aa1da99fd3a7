from __future__ import annotations

from django.conf import settings
from django.db import models


class ImportBatch(models.Model):
    """One import run: a file (or an export folder) loaded all-or-nothing.

    The row is written in its own transaction before the data and updated after, so a batch
    that was refused or killed still leaves a trace of what was tried.
    """

    class Status(models.TextChoices):
        RUNNING = "running", "进行中 Running"
        COMMITTED = "committed", "已导入 Committed"
        REJECTED = "rejected", "已拒绝 Rejected"
        FAILED = "failed", "失败 Failed"
        DRY_RUN = "dry_run", "试运行 Dry run"

    kind = models.CharField(max_length=20)
    source = models.CharField(max_length=40)
    path = models.CharField(max_length=500)
    file_digest = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    read = models.PositiveIntegerField(default=0)
    inserted = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    errors = models.JSONField(
        default=list, blank=True, help_text="The first rejected records with reasons"
    )
    rejects_path = models.CharField(max_length=500, blank=True)
    counts_by_kind = models.JSONField(default=dict, blank=True)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-started_at"]
        verbose_name_plural = "import batches"

    def __str__(self) -> str:
        return f"#{self.pk} {self.kind} {self.path} ({self.status})"
