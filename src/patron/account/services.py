"""Users, roles and API tokens. Permission checks for every surface live here (deny by default)."""

from __future__ import annotations

import hashlib
import secrets
import time
from typing import Any

from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.utils import timezone

from patron.account.models import ApiToken, User
from patron.account.roles import ROLE_PERMISSIONS, Role
from patron.errors import PermissionDenied, ValidationFailed


def roles_sync() -> None:
    """Create one group per role holding exactly the permissions in ``ROLE_PERMISSIONS``."""
    for role, perms in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role.value)
        wanted = []
        for dotted in sorted(perms):
            app_label, codename = dotted.split(".", 1)
            wanted.append(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )
        group.permissions.set(wanted)


def user_roles(user: Any) -> list[str]:
    if not getattr(user, "is_authenticated", False):
        return []
    return sorted(user.groups.values_list("name", flat=True))


def require_permission(user: Any, perm: str) -> None:
    """Raise ``PermissionDenied`` unless the user holds ``perm`` (through a role)."""
    if (
        not getattr(user, "is_authenticated", False)
        or not user.is_active
        or not user.has_perm(perm)
    ):
        raise PermissionDenied(f"you do not have the permission '{perm}'")


def may_see_pii(user: Any) -> bool:
    return bool(getattr(user, "is_authenticated", False) and user.has_perm("account.view_pii"))


@transaction.atomic
def user_create(*, username: str, role: str, password: str | None = None, email: str = "") -> User:
    """Create a staff user with one role. Administrators also get Django admin access."""
    try:
        role_enum = Role(role)
    except ValueError as exc:
        choices = ", ".join(r.value for r in Role)
        raise ValidationFailed(f"unknown role '{role}': choose one of {choices}") from exc
    if User.objects.filter(username=username).exists():
        raise ValidationFailed(f"user '{username}' already exists")
    roles_sync()
    user = User(username=username, email=email, is_staff=True)
    user.is_superuser = role_enum is Role.ADMINISTRATOR
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.save()
    user.groups.add(Group.objects.get(name=role_enum.value))
    return user


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_create(*, user: User, name: str = "cli") -> str:
    """Create an API token for ``user`` and return it; only its digest is stored."""
    token = "ptn_" + secrets.token_urlsafe(32)
    ApiToken.objects.create(user=user, name=name, prefix=token[:12], digest=_digest(token))
    return token


#: How long a process keeps a token's user (and the permissions Django caches on it) before
#: reading them again: API clients such as a shop's checkout call many times a second, and
#: reading the token, the user and two permission tables each time cost more than the answer.
#: A token revoked or a user deactivated is refused by every process within this time.
TOKEN_CACHE_SECONDS = 5.0
_TOKEN_CACHE_MAX = 10_000
_token_cache: dict[str, tuple[float, User]] = {}


def token_cache_clear() -> None:
    _token_cache.clear()


def token_authenticate(token: str) -> User | None:
    """Return the active user owning ``token``, or None."""
    if not token:
        return None
    digest = _digest(token)
    cached = _token_cache.get(digest)
    now_monotonic = time.monotonic()
    if cached is not None and cached[0] > now_monotonic:
        return cached[1]
    user = _token_user(digest)
    if user is not None:
        if len(_token_cache) >= _TOKEN_CACHE_MAX:
            _token_cache.clear()
        _token_cache[digest] = (now_monotonic + TOKEN_CACHE_SECONDS, user)
    else:
        _token_cache.pop(digest, None)
    return user


def _token_user(digest: str) -> User | None:
    row = ApiToken.objects.select_related("user").filter(digest=digest, is_active=True).first()
    if row is None or not row.user.is_active:
        return None
    now = timezone.now()
    if row.last_used_at is None or (now - row.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=row.pk).update(last_used_at=now)
    return row.user
