"""Domain errors. Each carries the HTTP status that the API and the pages map it to, once."""

from __future__ import annotations

from typing import Any


class PatronError(Exception):
    status = 400
    code = "error"

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotFound(PatronError):
    status = 404
    code = "not_found"


class PermissionDenied(PatronError):
    status = 403
    code = "permission_denied"


class Conflict(PatronError):
    status = 409
    code = "conflict"


class ValidationFailed(PatronError):
    status = 422
    code = "validation_failed"
