"""Template context shared by every page: the navigation of all areas."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest


def navigation(request: HttpRequest) -> dict[str, Any]:
    from patron.web.navigation import nav_items

    return {"nav_items": nav_items(request)}
