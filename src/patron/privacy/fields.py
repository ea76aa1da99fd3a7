"""A Django model field that stores text encrypted (AES-GCM) and gives it back as plain text."""

from __future__ import annotations

from typing import Any

from django.db import models

from patron.privacy import crypto


class EncryptedTextField(models.TextField):
    """Text encrypted at rest. Not searchable: pair it with a ``*_hash`` column for lookups.

    The model field name is bound into the ciphertext as associated data, so a value copied
    from one column into another fails to decrypt instead of being silently misread.
    """

    description = "Text encrypted at rest with AES-GCM"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("blank", True)
        kwargs.setdefault("default", "")
        super().__init__(*args, **kwargs)

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return crypto.encrypt(str(value), context=self.name)

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if value is None or value == "":
            return value
        return crypto.decrypt(value, context=self.name)
