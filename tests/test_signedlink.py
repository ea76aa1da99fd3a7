"""The customers' signed links (``patron.signedlink``): what a token carries comes back; a
changed, foreign, malformed or expired token gives the page its 404 or 403."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from django.core import signing
from hypothesis import given
from hypothesis import strategies as st

from patron.errors import NotFound, PermissionDenied
from patron.signedlink import SignedLink

LINK = SignedLink(salt="test.link", days_setting="PATRON_TEST_LINK_DAYS", default_days=3)


@given(a=st.integers(min_value=0, max_value=2**63 - 1), b=st.integers(min_value=0))
def test_what_a_token_carries_comes_back(a: int, b: int) -> None:
    assert LINK.read(LINK.make(a=a, b=b), "a", "b") == (a, b)
    assert LINK.read(LINK.make(a=a, b=b), "b") == (b,)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "nonsense",
        LINK.make(a=1)[:-2],  # cut short
        LINK.make(a=1) + "x",
        SignedLink(salt="other", days_setting="X", default_days=3).make(a=1),  # another purpose
        signing.dumps({"a": "1"}, salt="test.link"),  # not a whole number
        signing.dumps({"a": True}, salt="test.link"),
        signing.dumps([1], salt="test.link"),
        LINK.make(b=1),  # lacks a
    ],
)
def test_a_token_that_is_not_valid_is_404(token: str) -> None:
    with pytest.raises(NotFound, match="not valid"):
        LINK.read(token, "a")


def test_an_expired_token_is_403_and_the_days_come_from_the_setting(settings: Any) -> None:
    token = LINK.make(a=1)
    assert LINK.days() == 3
    two_days_on = time.time() + timedelta(days=2).total_seconds()
    with mock.patch("time.time", return_value=two_days_on):
        assert LINK.read(token, "a") == (1,)
        settings.PATRON_TEST_LINK_DAYS = 1
        assert LINK.days() == 1
        with pytest.raises(PermissionDenied, match="expired"):
            LINK.read(token, "a")
