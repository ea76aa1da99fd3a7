"""REST endpoints about the caller: ``GET /api/me``."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Router, Schema
from pydantic import Field

from patron.account.roles import ROLE_LABELS, ROLE_PERMISSIONS, Role
from patron.account.services import may_see_pii, user_roles

router = Router(tags=["account"])

# The permissions Patron's roles are made of: what a client needs to know to show or hide things.
_KNOWN_PERMISSIONS = sorted(set().union(*ROLE_PERMISSIONS.values()))


class RoleOut(Schema):
    name: str
    label: str


class MeOut(Schema):
    id: int
    username: str
    first_name: str
    last_name: str
    email: str
    is_superuser: bool
    roles: list[RoleOut]
    permissions: list[str] = Field(description="The Patron permissions the user holds, sorted")
    may_see_pii: bool = Field(description="Whether personal data is shown unmasked to this user")


def _role_label(name: str) -> str:
    try:
        return ROLE_LABELS[Role(name)]
    except (ValueError, KeyError):
        return name


@router.get("/me", response=MeOut, summary="The current user and their roles")
def me(request: HttpRequest) -> dict[str, Any]:
    user: Any = request.user
    roles = [{"name": name, "label": _role_label(name)} for name in user_roles(user)]
    return {
        "id": user.pk,
        "username": user.get_username(),
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "is_superuser": user.is_superuser,
        "roles": roles,
        "permissions": [perm for perm in _KNOWN_PERMISSIONS if user.has_perm(perm)],
        "may_see_pii": may_see_pii(user),
    }
