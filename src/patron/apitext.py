"""Patterns the API's schemas use for free text, so every app says the same thing in its
OpenAPI spec and means the same thing when it validates.

"Whitespace" differs between the three readers of a pattern: the spec's readers (ECMAScript:
no U+0085, no U+001C–U+001F), pydantic's Rust regex (Unicode White_Space: U+0085 but not
U+001C–U+001F) and the services' ``str.strip`` (both). ``TEXT`` asks for one character that
is whitespace to none of them, so a reason the spec calls valid is never blank to a service.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated

from pydantic import AwareDatetime, BeforeValidator

#: Any text without NUL (PostgreSQL cannot store it).
NO_NUL = r"^[^\x00]*$"
#: Non-blank text without NUL: at least one character that is not whitespace to anyone.
TEXT = r"^[^\x00]*[^\s\x00\x1c-\x1f\x85][^\x00]*$"
#: One word, possibly empty: no NUL and nothing that is whitespace to any of the readers
#: (a bare ``\s`` would let U+0085 through the spec's check and not pydantic's).
WORD = r"^[^\s\x00\x1c-\x1f\x85]*$"
#: A code: letters, digits, dash and underscore.
SLUG = r"^[-a-zA-Z0-9_]+$"
#: The largest id a database row can have (BIGINT): an integer query or path value must say
#: its bounds, or the fuzzer's 1.5e+167 (an integer to JSON Schema) is "valid" and refused.
MAX_ID = 2**63 - 1


# ---------------------------------------------------------------------- dates as text

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _date_text(value: object, *, what: str, example: str, whole: bool) -> object:
    """Pydantic's lax mode also reads a number (or a text of digits) as seconds since 1970;
    the spec says ISO 8601 text, so anything else is refused as the spec would."""
    if value is None or isinstance(value, date):  # Python callers pass the objects themselves
        return value
    if not isinstance(value, str) or not (
        _ISO_DATE.fullmatch(value) if whole else _ISO_DATE.match(value)
    ):
        raise ValueError(f"must be an ISO 8601 {what} text, e.g. {example}")
    return value


def _date_time(value: object) -> object:
    return _date_text(value, what="date-time", example="2026-05-01T10:00:00+08:00", whole=False)


def _date_only(value: object) -> object:
    return _date_text(value, what="date", example="2026-05-01", whole=True)


#: The readers above, so a test can tell a field read through them from a lax one.
DATE_READERS = (_date_time, _date_only)

#: A date-time the API reads: ISO 8601 text only (a ``datetime`` is a ``date`` subclass).
DateTimeText = Annotated[datetime, BeforeValidator(_date_time)]
#: A calendar day the API reads: ``YYYY-MM-DD`` text only.
DateText = Annotated[date, BeforeValidator(_date_only)]
#: A date-time that must carry its UTC offset.
AwareDateTimeText = Annotated[AwareDatetime, BeforeValidator(_date_time)]


# ---------------------------------------------------------------------- numbers as numbers


def json_number(value: object) -> object:
    """JSON types as the schema says: no ``true`` for 1, no ``"5"`` for 5 (2.0 is the
    integer 2). Put it last in an ``Annotated`` so the spec still shows the field's bounds."""
    if isinstance(value, bool | str):
        raise ValueError("expected a JSON number")
    return value


WholeNumber = Annotated[int, BeforeValidator(json_number)]
Number = Annotated[float, BeforeValidator(json_number)]
