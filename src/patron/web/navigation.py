"""The top navigation. One line per area: add an entry to ``NAV_ENTRIES`` and it appears for
the users who hold its permission (entries a user may not open are hidden, deny by default)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest
from django.urls import reverse
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from patron.account.roles import (
    VIEW_AUDIT,
    VIEW_CERTIFICATION,
    VIEW_CUSTOMERS,
    VIEW_IMPORTS,
    VIEW_INSIGHTS,
    VIEW_MODELS,
    VIEW_RISK,
    VIEW_SATISFACTION,
    VIEW_SEGMENTS,
    VIEW_TICKETS,
)


@dataclass(frozen=True)
class NavEntry:
    label: str | Promise
    url_name: str
    permission: str | None = None
    is_superuser_only: bool = False

    def is_visible_to(self, user: Any) -> bool:
        if not getattr(user, "is_authenticated", False) or not user.is_active:
            return False
        if self.is_superuser_only:
            return bool(user.is_superuser)
        return self.permission is None or bool(user.has_perm(self.permission))


NAV_ENTRIES: list[NavEntry] = [
    NavEntry(_("Customers"), "web:customer-list", VIEW_CUSTOMERS),
    NavEntry(_("Imports"), "web:import-list", VIEW_IMPORTS),
    NavEntry(_("Models"), "web:models", VIEW_MODELS),
    NavEntry(_("Service"), "web:service-queue", VIEW_TICKETS),
    NavEntry(_("Satisfaction"), "web:satisfaction-csat", VIEW_SATISFACTION),
    NavEntry(_("Risk"), "web:risk-alerts", VIEW_RISK),
    NavEntry(_("Certification"), "web:certification-queue", VIEW_CERTIFICATION),
    NavEntry(_("Insights"), "web:insights", VIEW_INSIGHTS),
    NavEntry(_("Marketing"), "web:marketing-segments", VIEW_SEGMENTS),
    NavEntry(_("Audit log"), "web:audit-list", VIEW_AUDIT),
    NavEntry(_("Admin"), "admin:index", is_superuser_only=True),
]


def nav_items(request: HttpRequest) -> list[dict[str, Any]]:
    """The entries the current user may open, each with its URL and whether it is current."""
    user = getattr(request, "user", None)
    items = []
    for entry in NAV_ENTRIES:
        if not entry.is_visible_to(user):
            continue
        url = reverse(entry.url_name)
        items.append(
            {
                "label": entry.label,
                "url": url,
                "is_active": request.path.startswith(url) and url != "/",
                "is_external": entry.url_name.startswith("admin:"),
            }
        )
    return items
