from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """A member of the merchant's staff. Roles are Django groups (see ``roles.py``)."""

    class Meta:
        permissions = [
            ("view_pii", "Can see personal data (phone, e-mail, address, ID) unmasked"),
        ]


class ApiToken(models.Model):
    """A per-user API token. Only a SHA-256 digest is stored; the token is shown once."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100, default="cli")
    prefix = models.CharField(max_length=12, db_index=True)
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    is_active = models.BooleanField(default=True)

    def __str__(self) -> str:
        return f"{self.user} / {self.name} ({self.prefix}…)"
