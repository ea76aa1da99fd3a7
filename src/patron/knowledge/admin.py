"""Knowledge-base rows in the admin are read-only: every change goes through
``patron.knowledge.services`` (validation, audit)."""

from __future__ import annotations

from django.contrib import admin

from patron.knowledge.models import Article, Feedback
from patron.web.adminkit import ReadOnlyAdmin


@admin.register(Article)
class ArticleAdmin(ReadOnlyAdmin):
    list_display = ("id", "key", "question", "category", "language", "is_published", "updated_at")
    list_filter = ("is_published", "language", "category")
    search_fields = ("key", "question", "answer")


@admin.register(Feedback)
class FeedbackAdmin(ReadOnlyAdmin):
    list_display = ("id", "article", "ticket_id", "helped", "is_auto_reply", "recorded_by", "at")
    list_filter = ("helped", "is_auto_reply")
