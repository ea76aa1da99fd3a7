"""Fixtures and builders shared by the channel tests (test_mail, test_webhook, test_public,
test_chat): import the fixtures by name into a test module to use them."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client

from patron.account.roles import Role
from patron.account.services import token_create
from patron.conftest import make_user
from patron.service.webhook import webhook_sign

PUBLIC_URL = "https://shop.example"
SECRET = "connector-secret-for-tests"
URLS = "patron.service.tests.urls"


@pytest.fixture
def channel_settings(settings: Any, tmp_path: Path) -> Iterator[Path]:
    """Outbox files, the inbox and links in this test's own folder; an empty rate-limit
    cache; the webhook configured."""
    settings.PATRON_OUTBOX_DIR = tmp_path / "outbox"
    settings.PATRON_PUBLIC_URL = PUBLIC_URL
    settings.PATRON_MAIL_INBOX = tmp_path / "inbox"
    settings.PATRON_SERVICE_WEBHOOK_SECRET = SECRET
    settings.DEFAULT_FROM_EMAIL = "Shop service <service@shop.example>"
    cache.clear()
    yield tmp_path
    cache.clear()


def encoded_word(text: str, charset: str = "gb2312") -> str:
    """``text`` as one RFC 2047 base64 encoded word."""
    return f"=?{charset.upper()}?B?{base64.b64encode(text.encode(charset)).decode()}?="


def eml(
    *,
    sender: str = "李雷 <li.lei@example.cn>",
    subject: str = "订单没有收到",
    body: str = "我的订单还没有收到，请帮忙查一下。",
    message_id: str = "<c1@mail.example.cn>",
    charset: str = "gb2312",
    headers: dict[str, str] | None = None,
) -> bytes:
    """A plain-text mail as a Chinese mail program writes it: name and subject as GB2312
    base64 encoded words, the body GB2312 in base64."""
    name, _, address = sender.rpartition(" ")
    from_header = f"{encoded_word(name, charset)} {address}" if name else address
    lines = [
        f"From: {from_header}",
        "To: service@shop.example",
        f"Subject: {encoded_word(subject, charset)}",
        "Date: Fri, 20 Nov 2026 10:00:00 +0800",
        "MIME-Version: 1.0",
        f"Content-Type: text/plain; charset={charset.upper()}",
        "Content-Transfer-Encoding: base64",
    ]
    if message_id:
        lines.append(f"Message-ID: {message_id}")
    for key, value in (headers or {}).items():
        lines.append(f"{key}: {value}")
    payload = base64.encodebytes(body.encode(charset)).decode()
    return ("\r\n".join(lines) + "\r\n\r\n" + payload).encode("ascii")


def signed(
    payload: dict[str, Any], *, secret: str = SECRET, timestamp: int | None = None
) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload, ensure_ascii=False).encode()
    return body, webhook_sign(secret, body, timestamp=timestamp)


def token_client(role: str | None) -> Client:
    user = make_user(role)
    return Client(headers={"Authorization": f"Bearer {token_create(user=user)}"})


def integration_client() -> Client:
    return token_client(Role.INTEGRATION)
