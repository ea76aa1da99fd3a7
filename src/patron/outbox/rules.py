"""Pure rules of the outbox: whether consent lets a message go out, which channel a message
takes when the caller names none, how long to wait before trying again, and the states a
message goes through.

Nothing here touches the database; ``patron.outbox.services`` reads the consent rows and the
customer's addresses, asks these functions, and writes the answer down.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

# ---------------------------------------------------------------------- state machine

QUEUED = "queued"
SENDING = "sending"
SENT = "sent"
FAILED = "failed"
SUPPRESSED = "suppressed"
CANCELLED = "cancelled"

#: Message status -> {action: next status}.
#:
#: ``claim``: a delivery run takes a due message (one run only: the claim is a conditional
#: update). ``sent``, ``retry``, ``fail``: what the adapter answered. ``suppress``: consent or
#: the address was gone by the time of delivery. ``recover``: a run stopped while sending (the
#: claim is older than the lease), so the message is due again — it may have gone out once.
#: ``cancel``: a person stopped it before it was sent. Sent, failed, suppressed and cancelled are
#: final: a message is never sent twice, and never revived (queue a new one with a new key).
TRANSITIONS: dict[str, dict[str, str]] = {
    QUEUED: {"claim": SENDING, "cancel": CANCELLED, "suppress": SUPPRESSED},
    SENDING: {
        "sent": SENT,
        "retry": QUEUED,
        "fail": FAILED,
        "suppress": SUPPRESSED,
        "recover": QUEUED,
    },
    SENT: {},
    FAILED: {},
    SUPPRESSED: {},
    CANCELLED: {},
}

FINAL = frozenset(state for state, actions in TRANSITIONS.items() if not actions)


class TransitionRefused(Exception):
    """An action the message's state does not allow (the services turn it into 409)."""


def next_state(state: str, action: str) -> str:
    """The status after ``action``; raises ``TransitionRefused`` when it is not allowed."""
    if state not in TRANSITIONS:
        raise TransitionRefused(f"message status {state!r} is unknown")
    allowed = TRANSITIONS[state]
    if action not in allowed:
        choices = ", ".join(sorted(allowed)) or "none (final)"
        raise TransitionRefused(f"message is {state}: cannot {action}; allowed: {choices}")
    return allowed[action]


# ---------------------------------------------------------------------- consent

MARKETING = "marketing"
SERVICE = "service"
PROFILING = "profiling"
PURPOSES = (MARKETING, SERVICE, PROFILING)

EMAIL = "email"
SMS = "sms"
WECHAT = "wechat"
PHONE = "phone"
APP = "app"
CHANNELS = (SMS, EMAIL, WECHAT, PHONE, APP)

#: The channels tried, in order, when the caller names none.
PREFERRED_CHANNELS = (EMAIL, SMS)


@dataclass(frozen=True)
class Decision:
    """Whether a message may go out; ``reason`` says why not (empty when it may)."""

    is_allowed: bool
    reason: str = ""


def consent_decision(*, purpose: str, channel: str, latest: bool | None) -> Decision:
    """Whether consent lets a message for ``purpose`` go out over ``channel``.

    ``latest`` is ``is_granted`` of the newest consent row for (customer, purpose, channel), or
    None when there is none. Marketing (and profiling, which is never a reason to write to
    someone by itself) needs an explicit grant (opt-in, PIPL Art. 14); service messages go out
    unless the customer refused them on that channel.
    """
    if purpose not in PURPOSES:
        raise ValueError(f"purpose {purpose!r} is unknown; use one of {', '.join(PURPOSES)}")
    if purpose == SERVICE:
        if latest is False:
            return Decision(False, f"the customer refused service messages by {channel}")
        return Decision(True)
    if latest is True:
        return Decision(True)
    if latest is False:
        return Decision(False, f"the customer withdrew {purpose} consent for {channel}")
    return Decision(False, f"no {purpose} consent for {channel} on record")


@dataclass(frozen=True)
class Route:
    """Where a message goes: the channel, the address, and whether it may go out at all."""

    channel: str
    recipient: str
    is_allowed: bool
    reason: str = ""


def route(
    *,
    purpose: str,
    channel: str | None,
    addresses: Mapping[str, str],
    latest: Mapping[str, bool | None],
    is_erased: bool = False,
) -> Route:
    """The channel, address and verdict for one message.

    ``addresses`` maps channel -> the customer's address on it ('' when none); ``latest`` maps
    channel -> the newest consent for the purpose (None when none). With ``channel`` None the
    customer's preferred reachable channel is taken: e-mail if they have an address, else SMS if
    they have a phone — and of those, the first that consent allows, so that a customer who
    refused e-mail but accepts SMS still hears from us. An erased customer is never written to.
    """
    if channel is not None and channel not in CHANNELS:
        raise ValueError(f"channel {channel!r} is unknown; use one of {', '.join(CHANNELS)}")
    if is_erased:
        return Route(channel or EMAIL, "", False, "the customer's data was erased")
    candidates: Sequence[str] = (channel,) if channel is not None else PREFERRED_CHANNELS
    reachable = [c for c in candidates if addresses.get(c, "")]
    if not reachable:
        if channel is not None:
            return Route(channel, "", False, f"the customer has no address for {channel}")
        return Route(EMAIL, "", False, "the customer has neither an e-mail address nor a phone")
    verdicts = [
        (c, consent_decision(purpose=purpose, channel=c, latest=latest.get(c))) for c in reachable
    ]
    for name, verdict in verdicts:
        if verdict.is_allowed:
            return Route(name, addresses[name], True)
    name, verdict = verdicts[0]
    return Route(name, addresses[name], False, verdict.reason)


# ---------------------------------------------------------------------- retries

#: Minutes to wait after the 1st, 2nd, … failed attempt. After the last one the message fails:
#: one first try and five retries spread over about twelve hours.
BACKOFF_MINUTES: tuple[int, ...] = (1, 5, 25, 120, 600)
MAX_ATTEMPTS = len(BACKOFF_MINUTES) + 1


def retry_delay(attempts: int, schedule: Sequence[int] = BACKOFF_MINUTES) -> timedelta | None:
    """How long to wait after ``attempts`` failed tries, or None: give up, the message fails."""
    if attempts < 1:
        raise ValueError(f"attempts must be 1 or more, got {attempts}")
    if attempts > len(schedule):
        return None
    return timedelta(minutes=schedule[attempts - 1])
