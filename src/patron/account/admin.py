from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.http import HttpRequest

from patron.account.models import ApiToken, User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = (
        "username",
        "email",
        "first_name",
        "last_name",
        "roles",
        "is_active",
        "is_superuser",
        "last_login",
    )
    list_filter = ("groups", "is_active", "is_staff", "is_superuser")

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).prefetch_related("groups")

    @admin.display(description="roles")
    def roles(self, obj: User) -> str:
        return ", ".join(sorted(group.name for group in obj.groups.all()))


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are created by ``patron createuser --token`` (shown once); here they can be
    renamed or deactivated. Only the digest is stored, so nothing secret is shown."""

    list_display = ("prefix", "user", "name", "created_at", "last_used_at", "is_active")
    list_filter = ("is_active",)
    search_fields = ("prefix", "name", "user__username")
    readonly_fields = ("user", "prefix", "digest", "created_at", "last_used_at")
    list_select_related = ("user",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
