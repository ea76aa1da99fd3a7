"""Pure helpers for showing scores (no database). The reasons themselves are written by
``patron.intelligence.purchases`` and ``patron.intelligence.pipeline``."""

from __future__ import annotations

from patron.intelligence.models.rfm import LABELS


def segment_label(code: str) -> str:
    """The class as the trade names it, Chinese then English: 重要价值客户 Important value."""
    zh, en = LABELS[code]
    return f"{zh} {en}"
