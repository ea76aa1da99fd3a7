"""Patterns the API's schemas use for free text, so every app says the same thing in its
OpenAPI spec and means the same thing when it validates.

"Whitespace" differs between the three readers of a pattern: the spec's readers (ECMAScript:
no U+0085, no U+001C–U+001F), pydantic's Rust regex (Unicode White_Space: U+0085 but not
U+001C–U+001F) and the services' ``str.strip`` (both). ``TEXT`` asks for one character that
is whitespace to none of them, so a reason the spec calls valid is never blank to a service.
"""

from __future__ import annotations

#: Any text without NUL (PostgreSQL cannot store it).
NO_NUL = r"^[^\x00]*$"
#: Non-blank text without NUL: at least one character that is not whitespace to anyone.
TEXT = r"^[^\x00]*[^\s\x00\x1c-\x1f\x85][^\x00]*$"
#: A code: letters, digits, dash and underscore.
SLUG = r"^[-a-zA-Z0-9_]+$"
