"""Delivery adapters: how a rendered message leaves Patron, one adapter per channel.

``settings.PATRON_OUTBOX_ADAPTERS`` maps a channel to an adapter name (``email``, ``file``,
``webhook``) or to the dotted path of a class with the same ``send`` method; channels it does
not name use ``DEFAULT_ADAPTERS``. An adapter returns the provider's message id, or raises
``TransientError`` (the message is tried again later) or ``PermanentError`` (it fails at once).
See docs/outbox.md for the settings of each.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.mail import EmailMessage
from django.core.mail.message import make_msgid
from django.utils.module_loading import import_string

from patron.paths import patron_home

WEBHOOK_TIMEOUT_SECONDS = 10
SIGNATURE_HEADER = "X-Patron-Signature"
#: The only headers a caller may set on an e-mail.
THREADING_HEADERS = ("Message-ID", "In-Reply-To", "References")
TIMESTAMP_HEADER = "X-Patron-Timestamp"


class DeliveryError(Exception):
    """Delivery did not happen; the message says why (it is recorded on the message)."""


class TransientError(DeliveryError):
    """Try again later: the provider is down, slow, throttling, or not configured yet."""


class PermanentError(DeliveryError):
    """Trying again cannot help: the address is refused, the request is invalid."""


@dataclass(frozen=True)
class Outgoing:
    """What an adapter sends. ``recipient`` is the address on ``channel``: an e-mail address,
    a phone number, or for wechat and app the shop's customer reference (source:external id),
    which the shop's own system maps to a WeChat openid or a device."""

    message_id: int
    key: str
    channel: str
    purpose: str
    template: str
    language: str
    recipient: str
    subject: str
    body: str
    unsubscribe_url: str = ""
    #: E-mail threading headers set by the caller (a ticket reply answers the customer's mail).
    headers: Mapping[str, str] = field(default_factory=dict)


class Adapter(Protocol):
    def send(self, outgoing: Outgoing) -> str: ...


# ---------------------------------------------------------------------- e-mail


class EmailAdapter:
    """Through Django's configured mailer (``settings.MAILERS["default"]``): SMTP, a file
    folder in PATRON_HOME/outbox/mail by default, or the in-memory outbox in tests."""

    def send(self, outgoing: Outgoing) -> str:
        given = {k: v for k, v in outgoing.headers.items() if k in THREADING_HEADERS}
        message_id = given.pop("Message-ID", "") or make_msgid(domain=_mail_domain())
        headers = {
            "Message-ID": message_id,
            "X-Patron-Message": str(outgoing.message_id),
            **given,
        }
        if outgoing.unsubscribe_url:
            # RFC 2369 and RFC 8058: mail programs show an unsubscribe button that POSTs here.
            headers["List-Unsubscribe"] = f"<{outgoing.unsubscribe_url}>"
            headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        email = EmailMessage(
            subject=outgoing.subject,
            body=outgoing.body,
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[outgoing.recipient],
            headers=headers,
        )
        try:
            email.send()
        except smtplib.SMTPRecipientsRefused as error:
            codes = sorted(code for code, _ in error.recipients.values())
            text = f"the mail server refused {outgoing.recipient} ({codes})"
            if codes and all(500 <= code < 600 for code in codes):
                raise PermanentError(text) from error
            raise TransientError(text) from error  # 4xx: greylisting, a full mailbox
        except smtplib.SMTPResponseException as error:
            text = f"mail server answered {error.smtp_code}: {_decode(error.smtp_error)}"
            if 500 <= error.smtp_code < 600:
                raise PermanentError(text) from error
            raise TransientError(text) from error
        except (smtplib.SMTPException, OSError) as error:
            raise TransientError(f"mail server: {error}") from error
        return message_id


def _mail_domain() -> str:
    _, _, domain = settings.DEFAULT_FROM_EMAIL.rpartition("@")
    return domain.strip(" >") or "localhost"


def _decode(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


# ---------------------------------------------------------------------- file


_file_lock = threading.Lock()


class FileAdapter:
    """Appends one JSON line per message to ``<PATRON_OUTBOX_DIR>/<channel>.jsonl``: the default
    for channels without a provider, so that nothing is lost and a person or a script can pick
    the messages up (the demo, a shop that sends SMS from its own system)."""

    def send(self, outgoing: Outgoing) -> str:
        folder = outbox_dir()
        try:
            folder.mkdir(parents=True, exist_ok=True)
            line = json.dumps(
                {**asdict(outgoing), "written_at": time.time()}, ensure_ascii=False, sort_keys=True
            )
            with _file_lock, open(folder / f"{outgoing.channel}.jsonl", "a", encoding="utf-8") as f:
                f.write(line + "\n")
        except OSError as error:
            raise TransientError(
                f"could not write the {outgoing.channel} outbox file: {error}"
            ) from error
        return f"file:{outgoing.channel}:{outgoing.message_id}"


def outbox_dir() -> Path:
    configured = getattr(settings, "PATRON_OUTBOX_DIR", None)
    return Path(configured) if configured else patron_home() / "outbox"


# ---------------------------------------------------------------------- webhook


def webhook_signature(secret: str, timestamp: str, payload: bytes) -> str:
    """``sha256=<hex>`` of HMAC-SHA256(secret, timestamp + "." + payload): the receiver checks
    it, and that the timestamp is recent, before trusting the request."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + payload, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class WebhookAdapter:
    """POSTs the message as JSON to ``settings.PATRON_OUTBOX_WEBHOOK_URL`` (an SMS gateway, the
    shop's app backend, a WeChat bridge), signed with ``PATRON_OUTBOX_WEBHOOK_SECRET``.

    2xx: sent (the JSON answer's ``id``, if any, is the provider's message id). 408, 429, 5xx,
    timeouts and connection errors: try again. Any other answer: the message fails.
    """

    def send(self, outgoing: Outgoing) -> str:
        url = getattr(settings, "PATRON_OUTBOX_WEBHOOK_URL", "")
        secret = getattr(settings, "PATRON_OUTBOX_WEBHOOK_SECRET", "")
        if not url or not secret:
            # Transient on purpose: an operator who forgot the setting fixes it and the messages
            # still go out, instead of all failing at once.
            raise TransientError(
                "webhook adapter: set PATRON_OUTBOX_WEBHOOK_URL and PATRON_OUTBOX_WEBHOOK_SECRET"
            )
        payload = json.dumps(asdict(outgoing), ensure_ascii=False, sort_keys=True).encode()
        timestamp = str(int(time.time()))
        request = urllib.request.Request(
            url,
            data=payload,
            method="POST",
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": "Patron-Outbox/1",
                "Idempotency-Key": outgoing.key,
                TIMESTAMP_HEADER: timestamp,
                SIGNATURE_HEADER: webhook_signature(secret, timestamp, payload),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_SECONDS) as response:
                answer = response.read(65536)
        except urllib.error.HTTPError as error:
            text = f"webhook answered {error.code} {error.reason}"
            if error.code in (408, 429) or error.code >= 500:
                raise TransientError(text) from error
            raise PermanentError(text) from error
        except (urllib.error.URLError, TimeoutError, OSError) as error:
            raise TransientError(f"webhook unreachable: {error}") from error
        return _provider_id(answer) or f"webhook:{outgoing.message_id}"


def _provider_id(answer: bytes) -> str:
    try:
        data = json.loads(answer or b"null")
    except ValueError:
        return ""
    if isinstance(data, dict) and data.get("id") not in (None, ""):
        return str(data["id"])[:200]
    return ""


# ---------------------------------------------------------------------- choosing one

ADAPTERS: dict[str, type[Any]] = {
    "email": EmailAdapter,
    "file": FileAdapter,
    "webhook": WebhookAdapter,
}

DEFAULT_ADAPTERS: dict[str, str] = {
    "email": "email",
    "sms": "file",
    "wechat": "file",
    "app": "file",
    "phone": "file",
}


def adapter_name(channel: str) -> str:
    configured = getattr(settings, "PATRON_OUTBOX_ADAPTERS", None) or {}
    return str(configured.get(channel) or DEFAULT_ADAPTERS.get(channel, "file"))


def adapter_for(channel: str) -> Adapter:
    """The adapter that delivers ``channel``; an unknown name is a configuration error."""
    name = adapter_name(channel)
    if name in ADAPTERS:
        adapter: Adapter = ADAPTERS[name]()
        return adapter
    if "." in name:
        try:
            found = import_string(name)
        except ImportError as error:
            raise ImproperlyConfigured(
                f"PATRON_OUTBOX_ADAPTERS[{channel!r}] = {name!r}: {error}"
            ) from error
        instance: Adapter = found()
        return instance
    raise ImproperlyConfigured(
        f"PATRON_OUTBOX_ADAPTERS[{channel!r}] = {name!r}: use one of {', '.join(ADAPTERS)} "
        "or the dotted path of an adapter class"
    )
