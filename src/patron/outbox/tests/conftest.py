"""Outbox test settings: files go to the test's own folder, links to a known address."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from patron.customer.models import Consent, Customer
from patron.outbox.tests.fakes import ScriptedAdapter

PUBLIC_URL = "https://patron.example"


@pytest.fixture(autouse=True)
def outbox_settings(settings: Any, tmp_path: Path) -> Path:
    folder = tmp_path / "outbox"
    settings.PATRON_OUTBOX_DIR = folder
    settings.PATRON_PUBLIC_URL = PUBLIC_URL
    settings.PATRON_OUTBOX_WEBHOOK_URL = ""
    settings.PATRON_OUTBOX_WEBHOOK_SECRET = ""
    ScriptedAdapter.reset()
    return folder


_consents = iter(range(1, 1_000_000))


def consent(
    customer: Customer, *, purpose: str, channel: str, granted: bool, at: datetime
) -> Consent:
    return Consent.objects.create(
        source="shop",
        external_id=f"consent-{next(_consents)}",
        customer=customer,
        purpose=purpose,
        channel=channel,
        is_granted=granted,
        recorded_at=at,
    )
