"""Adapters against real counterparts: the webhook against a local HTTP server, the file
adapter on disk, and the choice of adapter per channel."""

from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, cast

import pytest
from django.core.exceptions import ImproperlyConfigured

from patron.outbox import adapters
from patron.outbox.tests.fakes import MAIL_PATH, RefusingMailBackend, ScriptedAdapter
from patron.outbox.tests.fakes import PATH as SCRIPTED

SECRET = "s3cret"
OUTGOING = adapters.Outgoing(
    message_id=7,
    key="loyalty.tier_up:7",
    channel="sms",
    purpose="service",
    template="loyalty.tier_up",
    language="zh-hans",
    recipient="13812341234",
    subject="会员等级提升",
    body="王小明，您好：恭喜您升级为黄金会员",
)


class RecordingServer(HTTPServer):
    """Answers with ``answer`` (status, body) and keeps what it received."""

    received: list[tuple[dict[str, str], bytes]]
    answer: tuple[int, bytes]


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        server = cast(RecordingServer, self.server)
        length = int(self.headers["Content-Length"])
        server.received.append((dict(self.headers), self.rfile.read(length)))
        status, body = server.answer
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver(settings: Any) -> Iterator[RecordingServer]:
    server = RecordingServer(("127.0.0.1", 0), Receiver)
    server.received = []
    server.answer = (200, b'{"id": "gw-42"}')
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.PATRON_OUTBOX_WEBHOOK_URL = f"http://127.0.0.1:{server.server_port}/sms"
    settings.PATRON_OUTBOX_WEBHOOK_SECRET = SECRET
    yield server
    server.shutdown()
    server.server_close()


def test_the_webhook_posts_signed_json_and_returns_the_provider_id(
    receiver: RecordingServer,
) -> None:
    # when
    provider_id = adapters.WebhookAdapter().send(OUTGOING)

    # then
    assert provider_id == "gw-42"
    [(headers, body)] = receiver.received
    payload = json.loads(body)
    assert payload["recipient"] == "13812341234"
    assert payload["body"] == "王小明，您好：恭喜您升级为黄金会员"
    assert payload["key"] == "loyalty.tier_up:7"
    assert headers["Idempotency-Key"] == "loyalty.tier_up:7"
    timestamp = headers["X-Patron-Timestamp"]
    expected = hmac.new(SECRET.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    assert headers["X-Patron-Signature"] == "sha256=" + expected.hexdigest()


def test_the_webhook_without_an_id_in_the_answer_names_the_message(
    receiver: RecordingServer,
) -> None:
    # given
    receiver.answer = (202, b"accepted")

    # when / then
    assert adapters.WebhookAdapter().send(OUTGOING) == "webhook:7"


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (500, adapters.TransientError),
        (503, adapters.TransientError),
        (429, adapters.TransientError),
        (408, adapters.TransientError),
        (400, adapters.PermanentError),
        (404, adapters.PermanentError),
        (422, adapters.PermanentError),
    ],
)
def test_webhook_answers_become_transient_or_permanent_errors(
    receiver: RecordingServer, status: int, error: type[Exception]
) -> None:
    # given
    receiver.answer = (status, b"{}")

    # when / then
    with pytest.raises(error, match=f"webhook answered {status}"):
        adapters.WebhookAdapter().send(OUTGOING)


def test_an_unreachable_webhook_is_transient(settings: Any) -> None:
    # given: a port nobody listens on
    settings.PATRON_OUTBOX_WEBHOOK_URL = "http://127.0.0.1:9/"
    settings.PATRON_OUTBOX_WEBHOOK_SECRET = SECRET

    # when / then
    with pytest.raises(adapters.TransientError, match="webhook unreachable"):
        adapters.WebhookAdapter().send(OUTGOING)


def test_a_webhook_without_settings_is_transient() -> None:
    with pytest.raises(
        adapters.TransientError,
        match="set PATRON_OUTBOX_WEBHOOK_URL and PATRON_OUTBOX_WEBHOOK_SECRET",
    ):
        adapters.WebhookAdapter().send(OUTGOING)


def test_the_file_adapter_appends_one_line_per_message(outbox_settings: Path) -> None:
    # when
    adapters.FileAdapter().send(OUTGOING)
    adapters.FileAdapter().send(OUTGOING)

    # then
    lines = (outbox_settings / "sms.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2
    assert json.loads(lines[0])["subject"] == "会员等级提升"


def test_the_default_adapters(settings: Any) -> None:
    # given
    del settings.PATRON_OUTBOX_ADAPTERS

    # when / then
    assert {c: adapters.adapter_name(c) for c in ("email", "sms", "wechat", "app", "phone")} == {
        "email": "email",
        "sms": "file",
        "wechat": "file",
        "app": "file",
        "phone": "file",
    }
    assert isinstance(adapters.adapter_for("email"), adapters.EmailAdapter)
    assert isinstance(adapters.adapter_for("sms"), adapters.FileAdapter)


def test_adapters_are_chosen_per_channel_by_name_or_path(settings: Any) -> None:
    # given
    settings.PATRON_OUTBOX_ADAPTERS = {"sms": "webhook", "app": SCRIPTED}

    # when / then
    assert isinstance(adapters.adapter_for("sms"), adapters.WebhookAdapter)
    assert isinstance(adapters.adapter_for("app"), ScriptedAdapter)
    assert isinstance(adapters.adapter_for("wechat"), adapters.FileAdapter)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("pigeon", "PATRON_OUTBOX_ADAPTERS['sms'] = 'pigeon': use one of email, file, webhook"),
        ("patron.nowhere.Adapter", "PATRON_OUTBOX_ADAPTERS['sms'] = 'patron.nowhere.Adapter': "),
    ],
)
def test_an_unknown_adapter_is_a_configuration_error(
    settings: Any, name: str, message: str
) -> None:
    # given
    settings.PATRON_OUTBOX_ADAPTERS = {"sms": name}

    # when / then
    with pytest.raises(ImproperlyConfigured) as error:
        adapters.adapter_for("sms")
    assert str(error.value).startswith(message)


@pytest.mark.parametrize(
    ("error", "expected", "text"),
    [
        (
            smtplib.SMTPRecipientsRefused({"a@b.cn": (550, b"no such user")}),
            adapters.PermanentError,
            "the mail server refused 13812341234 ([550])",
        ),
        (
            smtplib.SMTPRecipientsRefused({"a@b.cn": (450, b"greylisted")}),
            adapters.TransientError,
            "the mail server refused 13812341234 ([450])",
        ),
        (
            smtplib.SMTPDataError(554, b"spam"),
            adapters.PermanentError,
            "mail server answered 554: spam",
        ),
        (
            smtplib.SMTPSenderRefused(421, b"try later", "noreply@localhost"),
            adapters.TransientError,
            "mail server answered 421: try later",
        ),
        (
            smtplib.SMTPServerDisconnected("gone"),
            adapters.TransientError,
            "mail server: gone",
        ),
        (ConnectionRefusedError(111, "refused"), adapters.TransientError, "mail server: "),
    ],
)
def test_mail_server_answers_become_transient_or_permanent_errors(
    settings: Any, error: Exception, expected: type[Exception], text: str
) -> None:
    # given
    settings.MAILERS = {"default": {"BACKEND": MAIL_PATH}}
    RefusingMailBackend.error = error

    # when / then
    with pytest.raises(expected) as raised:
        adapters.EmailAdapter().send(OUTGOING)
    assert str(raised.value).startswith(text)
