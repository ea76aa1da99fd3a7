"""A delivery adapter for tests: the edge of the system (an SMS gateway) is the one thing
tests fake. Each instance reads what to do from ``ScriptedAdapter.script`` (a class attribute
the test sets): "ok", "transient" or "permanent", one per call; the last entry repeats."""

from __future__ import annotations

import smtplib
from collections.abc import Sequence
from typing import ClassVar

from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend

from patron.outbox.adapters import Outgoing, PermanentError, TransientError

PATH = "patron.outbox.tests.fakes.ScriptedAdapter"


class ScriptedAdapter:
    script: ClassVar[list[str]] = ["ok"]
    calls: ClassVar[list[Outgoing]] = []

    def send(self, outgoing: Outgoing) -> str:
        type(self).calls.append(outgoing)
        step = self.script[min(len(self.calls), len(self.script)) - 1]
        if step == "transient":
            raise TransientError(f"gateway busy (call {len(self.calls)})")
        if step == "permanent":
            raise PermanentError("gateway: number does not exist")
        if step == "crash":
            raise RuntimeError("adapter bug")
        return f"gw-{len(self.calls)}"

    @classmethod
    def reset(cls, *script: str) -> None:
        cls.script = list(script) or ["ok"]
        cls.calls = []


class RefusingMailBackend(BaseEmailBackend):
    """A mail server that answers every message with ``error`` (the SMTP edge, faked)."""

    error: ClassVar[Exception] = smtplib.SMTPServerDisconnected("gone")

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        raise type(self).error


MAIL_PATH = "patron.outbox.tests.fakes.RefusingMailBackend"
