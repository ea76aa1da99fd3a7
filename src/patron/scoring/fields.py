"""Model fields of the scoring app."""

from __future__ import annotations

import json
from typing import Any

from django.db import models


class JSONTextField(models.JSONField):
    """JSON kept as plain text on every database, for JSON written in bulk and read whole,
    never searched inside: a customer's score reasons.

    On PostgreSQL a ``JSONField`` is ``jsonb``, which parses and re-encodes every value on
    the way in: for a million customers' reasons (about 1 GB) COPY into ``jsonb`` took 2.4×
    as long as into ``text``. On SQLite a ``JSONField`` is text with a ``JSON_VALID`` check,
    which parses every value again: 6.4 of the 14.3 s that inserting a million score rows
    took (bench/README.md). So neither: the values are written by our own code, as JSON.
    Key lookups and containment queries are not available on this field.
    """

    description = "JSON stored as text"

    def get_internal_type(self) -> str:
        return "TextField"  # no JSON_VALID check on SQLite

    def db_type(self, connection: Any) -> str:
        return "text"

    def get_db_prep_value(self, value: Any, connection: Any, prepared: bool = False) -> Any:
        if not prepared:
            value = self.get_prep_value(value)
        if value is None or hasattr(value, "as_sql"):
            return value
        return json.dumps(value, cls=self.encoder, ensure_ascii=False)
