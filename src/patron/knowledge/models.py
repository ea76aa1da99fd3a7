"""The service desk's knowledge base: FAQ articles and whether their answers helped.

An ``Article`` is a question with its answer, the other ways customers ask it
(``alternatives``), a language and a category; only published articles are suggested to agents
or sent as automatic replies (``patron.knowledge.retrieval``). Edits are not versioned: each
one is written to the audit log with the fields it changed. ``Feedback`` says, for one
suggestion or automatic reply, whether it helped. Every write goes through
``patron.knowledge.services``. See docs/knowledge.md.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class Article(models.Model):
    class Language(models.TextChoices):
        ZH = "zh", "中文 Chinese"
        EN = "en", "English"

    key = models.SlugField(
        max_length=80, unique=True, help_text="A stable name (seed files and labels use it)"
    )
    question = models.CharField(max_length=300)
    alternatives = models.JSONField(
        default=list, blank=True, help_text="Other ways customers ask the question (texts)"
    )
    answer = models.TextField(max_length=4000)
    language = models.CharField(max_length=2, choices=Language.choices, default=Language.ZH)
    category = models.SlugField(max_length=50, help_text="e.g. shipping, returns, invoice")
    tags = models.JSONField(default=list, blank=True)
    is_published = models.BooleanField(
        default=False, help_text="Only published articles are suggested and sent automatically"
    )
    created_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_by = models.CharField(max_length=150, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["category", "key"]
        indexes = [models.Index(fields=["is_published", "language"])]

    def __str__(self) -> str:
        return f"{self.key}: {self.question}"


class Feedback(models.Model):
    """Whether an article suggested to an agent, or sent automatically, helped."""

    article = models.ForeignKey(Article, on_delete=models.PROTECT, related_name="feedback")
    ticket_id = models.PositiveBigIntegerField(
        null=True, blank=True, db_index=True, help_text="The ticket it was used on, if any"
    )
    helped = models.BooleanField()
    is_auto_reply = models.BooleanField(
        default=False, help_text="Sent automatically (not chosen by an agent)"
    )
    recorded_by = models.CharField(max_length=150, blank=True)
    at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name_plural = "feedback"

    def __str__(self) -> str:
        return f"article {self.article_id}: {'helped' if self.helped else 'did not help'}"
