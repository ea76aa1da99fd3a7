"""The outbox's pure rules: consent, routing, backoff and the message state machine."""

from __future__ import annotations

from datetime import timedelta

import pytest

from patron.outbox import rules
from patron.outbox.models import Message

# ---------------------------------------------------------------------- consent

CONSENT_TABLE = [
    # purpose, latest consent row, allowed, reason
    ("marketing", True, True, ""),
    ("marketing", False, False, "the customer withdrew marketing consent for email"),
    ("marketing", None, False, "no marketing consent for email on record"),
    ("profiling", True, True, ""),
    ("profiling", False, False, "the customer withdrew profiling consent for email"),
    ("profiling", None, False, "no profiling consent for email on record"),
    ("service", True, True, ""),
    ("service", None, True, ""),
    ("service", False, False, "the customer refused service messages by email"),
]


@pytest.mark.parametrize(("purpose", "latest", "allowed", "reason"), CONSENT_TABLE)
def test_consent_decision(purpose: str, latest: bool | None, allowed: bool, reason: str) -> None:
    # when
    decision = rules.consent_decision(purpose=purpose, channel="email", latest=latest)

    # then
    assert decision == rules.Decision(allowed, reason)


def test_an_unknown_purpose_is_refused() -> None:
    with pytest.raises(ValueError, match="purpose 'newsletter' is unknown"):
        rules.consent_decision(purpose="newsletter", channel="email", latest=True)


# ---------------------------------------------------------------------- routing

BOTH = {"email": "a@example.com", "sms": "13800000000", "phone": "13800000000"}
PHONE_ONLY = {"email": "", "sms": "13800000000", "phone": "13800000000"}
NOTHING = {"email": "", "sms": "", "phone": ""}


def test_the_preferred_channel_is_email_when_the_customer_has_one() -> None:
    # when
    found = rules.route(purpose="service", channel=None, addresses=BOTH, latest={})

    # then
    assert found == rules.Route("email", "a@example.com", True)


def test_without_email_the_preferred_channel_is_sms() -> None:
    # when
    found = rules.route(purpose="service", channel=None, addresses=PHONE_ONLY, latest={})

    # then
    assert found == rules.Route("sms", "13800000000", True)


def test_without_email_or_phone_the_message_is_suppressed_on_email() -> None:
    # when
    found = rules.route(purpose="service", channel=None, addresses=NOTHING, latest={})

    # then
    assert found == rules.Route(
        "email", "", False, "the customer has neither an e-mail address nor a phone"
    )


def test_the_preferred_channel_skips_one_consent_refuses() -> None:
    # when
    found = rules.route(
        purpose="marketing", channel=None, addresses=BOTH, latest={"email": False, "sms": True}
    )

    # then
    assert found == rules.Route("sms", "13800000000", True)


def test_when_consent_refuses_every_reachable_channel_the_first_is_named() -> None:
    # when
    found = rules.route(purpose="marketing", channel=None, addresses=BOTH, latest={"sms": True})

    # then
    assert found == rules.Route("sms", "13800000000", True)
    refused = rules.route(purpose="marketing", channel=None, addresses=BOTH, latest={})
    assert refused == rules.Route(
        "email", "a@example.com", False, "no marketing consent for email on record"
    )


def test_a_named_channel_without_an_address_is_suppressed() -> None:
    # when
    found = rules.route(purpose="service", channel="email", addresses=PHONE_ONLY, latest={})

    # then
    assert found == rules.Route("email", "", False, "the customer has no address for email")


def test_a_named_channel_is_never_swapped_for_another() -> None:
    # when
    found = rules.route(purpose="service", channel="email", addresses=BOTH, latest={"email": False})

    # then
    assert found == rules.Route(
        "email", "a@example.com", False, "the customer refused service messages by email"
    )


def test_an_erased_customer_is_never_written_to() -> None:
    # when
    found = rules.route(purpose="service", channel="sms", addresses=BOTH, latest={}, is_erased=True)

    # then
    assert found == rules.Route("sms", "", False, "the customer's data was erased")


def test_an_unknown_channel_is_refused() -> None:
    with pytest.raises(ValueError, match="channel 'fax' is unknown"):
        rules.route(purpose="service", channel="fax", addresses=BOTH, latest={})


# ---------------------------------------------------------------------- backoff


def test_the_backoff_schedule_then_giving_up() -> None:
    # when
    delays = [rules.retry_delay(attempts) for attempts in range(1, 8)]

    # then
    assert delays == [
        timedelta(minutes=1),
        timedelta(minutes=5),
        timedelta(minutes=25),
        timedelta(minutes=120),
        timedelta(minutes=600),
        None,
        None,
    ]
    assert rules.MAX_ATTEMPTS == 6


def test_a_custom_schedule() -> None:
    assert rules.retry_delay(2, schedule=(3, 7)) == timedelta(minutes=7)
    assert rules.retry_delay(3, schedule=(3, 7)) is None


def test_zero_attempts_has_no_delay() -> None:
    with pytest.raises(ValueError, match="attempts must be 1 or more, got 0"):
        rules.retry_delay(0)


# ---------------------------------------------------------------------- state machine

ACTIONS = ("claim", "sent", "retry", "fail", "suppress", "recover", "cancel")
ALLOWED = {
    ("queued", "claim"): "sending",
    ("queued", "cancel"): "cancelled",
    ("queued", "suppress"): "suppressed",
    ("sending", "sent"): "sent",
    ("sending", "retry"): "queued",
    ("sending", "fail"): "failed",
    ("sending", "suppress"): "suppressed",
    ("sending", "recover"): "queued",
}


@pytest.mark.parametrize("state", Message.Status.values)
@pytest.mark.parametrize("action", ACTIONS)
def test_every_transition(state: str, action: str) -> None:
    # when / then
    if (state, action) in ALLOWED:
        assert rules.next_state(state, action) == ALLOWED[state, action]
    else:
        with pytest.raises(rules.TransitionRefused, match=f"message is {state}: cannot {action}"):
            rules.next_state(state, action)


def test_the_machine_covers_exactly_the_model_states() -> None:
    assert set(rules.TRANSITIONS) == set(Message.Status.values)
    assert {"sent", "failed", "suppressed", "cancelled"} == rules.FINAL


def test_a_refusal_names_what_is_allowed() -> None:
    with pytest.raises(rules.TransitionRefused) as refused:
        rules.next_state("queued", "sent")
    assert str(refused.value) == "message is queued: cannot sent; allowed: cancel, claim, suppress"
    with pytest.raises(rules.TransitionRefused) as final:
        rules.next_state("sent", "cancel")
    assert str(final.value) == "message is sent: cannot cancel; allowed: none (final)"


def test_an_unknown_state_is_refused() -> None:
    with pytest.raises(rules.TransitionRefused, match="message status 'lost' is unknown"):
        rules.next_state("lost", "claim")
