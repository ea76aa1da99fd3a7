"""Pure rules of after-sales and logistics: the state machines, the policy check, how much can
still be refunded, what a carrier's scan does to a shipment, the signature of the carrier
webhook, and when a shipment is in trouble. Nothing here touches the database;
``patron.aftersales.services`` gathers the facts and applies these rules in transactions, so the
API, the pages, the CLI and the jobs agree.

The policy windows follow the Chinese rules on online sales (网络购买商品七日无理由退货暂行办法,
Art. 7): the period starts on the day after the customer signed for the goods and each day is a
calendar day in the merchant's time zone, so a 7-day window of goods delivered on 26 October
(any time that day) runs to the end of 2 November and is over at 00:00 on 3 November.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from patron.intelligence.explain import N_
from patron.statemachine import SeparationOfDuties, TransitionRefused, next_state

CENT = Decimal("0.01")

# ---------------------------------------------------------------------- state machines

KINDS = ("return", "exchange", "repair", "compensation")
#: The kinds whose goods come back to the shop before the request is resolved.
GOODS_KINDS = frozenset({"return", "exchange", "repair"})
#: The kinds that pay money back.
REFUND_KINDS = frozenset({"return", "compensation"})

_DECISIONS: dict[str, dict[str, str]] = {
    "requested": {"approve": "approved", "reject": "rejected", "cancel": "cancelled"},
    "rejected": {"appeal": "appealed"},
    "appealed": {
        "approve_appeal": "approved",
        "reject_appeal": "rejected",
        "cancel": "cancelled",
    },
    "closed": {},
    "cancelled": {},
}
_GOODS_BACK: dict[str, dict[str, str]] = {
    "approved": {"await_goods": "awaiting_goods", "cancel": "cancelled"},
    "awaiting_goods": {"receive": "received", "cancel": "cancelled"},
}

#: Kind -> status -> {action: next status}. ``await_goods`` follows an approval at once for
#: the kinds whose goods come back (the customer is told to send them); a refund may be paid in
#: parts, so ``refunded`` takes further refunds until it is closed. Cancelling is the
#: customer's, before the goods are received.
TRANSITIONS: dict[str, dict[str, dict[str, str]]] = {
    "return": {
        **_DECISIONS,
        **_GOODS_BACK,
        "received": {"refund": "refunded"},
        "refunded": {"refund": "refunded", "close": "closed"},
    },
    "exchange": {
        **_DECISIONS,
        **_GOODS_BACK,
        "received": {"replace": "replaced"},
        "replaced": {"close": "closed"},
    },
    "repair": {
        **_DECISIONS,
        **_GOODS_BACK,
        "received": {"repair": "repaired"},
        "repaired": {"close": "closed"},
    },
    "compensation": {
        **_DECISIONS,
        "approved": {"refund": "refunded", "cancel": "cancelled"},
        "refunded": {"refund": "refunded", "close": "closed"},
    },
}

STATUSES = (
    "requested",
    "approved",
    "rejected",
    "appealed",
    "awaiting_goods",
    "received",
    "refunded",
    "replaced",
    "repaired",
    "closed",
    "cancelled",
)
ACTIONS = (
    "approve",
    "reject",
    "cancel",
    "appeal",
    "approve_appeal",
    "reject_appeal",
    "await_goods",
    "receive",
    "refund",
    "replace",
    "repair",
    "close",
)
#: Waiting for a decision of the shop.
TO_DECIDE = frozenset({"requested", "appealed"})
#: Finished: nothing more happens (a rejected request may still be appealed once).
FINISHED = frozenset({"closed", "cancelled"})
OPEN = frozenset(STATUSES) - FINISHED - {"rejected"}
#: Reached when the request was carried out: written to ``commerce.ReturnRequest``.
RESOLVED = frozenset({"refunded", "replaced", "repaired"})
#: ``commerce.ReturnRequest.status`` for a resolved request.
RETURN_RECORD_STATUS = {"refunded": "refunded", "replaced": "completed", "repaired": "completed"}
#: Units of these states are no longer the customer's to ask about again (see
#: ``units_taken``): returns not withdrawn or rejected, and exchanges and repairs under way.
_RETURN_HOLDS = frozenset(STATUSES) - {"rejected", "cancelled"}
_UNDER_WAY = frozenset({"requested", "appealed", "approved", "awaiting_goods", "received"})


def request_next(kind: str, state: str, action: str, *, has_appealed: bool = False) -> str:
    """The status after ``action``; ``TransitionRefused`` when the status does not allow it.
    A customer appeals a rejection once: the decision on the appeal is final."""
    machine = TRANSITIONS.get(kind)
    if machine is None:
        raise TransitionRefused(f"unknown after-sales kind {kind!r}")
    if action == "appeal" and state == "rejected" and has_appealed:
        raise TransitionRefused(
            "the after-sales request was already appealed once: the decision on the appeal is final"
        )
    return next_state(machine, f"the {kind} request", state, action)


def allowed_actions(kind: str, state: str, *, has_appealed: bool = False) -> tuple[str, ...]:
    """The actions the status allows (without the automatic ``await_goods``)."""
    actions = TRANSITIONS.get(kind, {}).get(state, {})
    return tuple(
        action
        for action in actions
        if action != "await_goods" and not (action == "appeal" and has_appealed)
    )


def check_appeal_decider(user_id: int, *, first_decider_id: int | None) -> None:
    """Four eyes on appeals: whoever made the decision appealed against does not decide the
    appeal."""
    if first_decider_id is not None and user_id == first_decider_id:
        raise SeparationOfDuties(
            "you made the decision this appeal is against: another person must decide the appeal"
        )


def units_taken(kind: str, status: str) -> bool:
    """Whether the units of a request count against what can still be asked about: a return
    holds its units unless rejected or cancelled; an exchange or repair holds them while under
    way (the customer has the goods back afterwards); a compensation never does."""
    if kind == "return":
        return status in _RETURN_HOLDS
    if kind in ("exchange", "repair"):
        return status in _UNDER_WAY
    return False


# ---------------------------------------------------------------------- the policy

#: The policy Patron ships with (editable data, seeded once): 7-day no-reason returns,
#: 30-day exchanges, a year of repairs under warranty, compensation within 30 days.
DEFAULT_POLICIES: tuple[dict[str, Any], ...] = (
    {
        "kind": "return",
        "category_code": "",
        "days_after_delivery": 7,
        "requires_reason": False,
        "max_compensation": None,
        "description": "7-day no-reason return (七天无理由退货)",
    },
    {
        "kind": "exchange",
        "category_code": "",
        "days_after_delivery": 30,
        "requires_reason": False,
        "max_compensation": None,
        "description": "30-day exchange guarantee (30天换货保障)",
    },
    {
        "kind": "repair",
        "category_code": "",
        "days_after_delivery": 365,
        "requires_reason": True,
        "max_compensation": None,
        "description": "Repair under the one-year warranty (一年保修)",
    },
    {
        "kind": "compensation",
        "category_code": "",
        "days_after_delivery": 30,
        "requires_reason": True,
        "max_compensation": Decimal("300.00"),
        "description": "Compensation for a fault or a late delivery, up to 300 yuan",
    },
)

#: The window's name in sentences, per kind (a return without a reason is the statutory
#: no-reason return).
_WINDOW_NAMES: dict[str, dict[str, str]] = {
    "no_reason_return": {"en": "no-reason return", "zh-hans": "无理由退货"},
    "return": {"en": "return", "zh-hans": "退货"},
    "exchange": {"en": "exchange", "zh-hans": "换货"},
    "repair": {"en": "repair", "zh-hans": "维修"},
    "compensation": {"en": "compensation", "zh-hans": "补偿"},
}


@dataclass(frozen=True)
class PolicyRule:
    kind: str
    category_code: str
    days_after_delivery: int
    requires_reason: bool
    max_compensation: Decimal | None = None


@dataclass(frozen=True)
class LineFacts:
    """What the policy needs to know of one line: its category's codes, the most specific
    first (the category, then its parents), its name, and whether the category is exempt from
    the no-reason return (made to order, fresh food, digital goods …)."""

    category_codes: tuple[str, ...] = ()
    category_name: Any = ""  # text, or {"en": …, "zh-hans": …}
    is_no_reason_exempt: bool = False


@dataclass(frozen=True)
class Verdict:
    """``is_allowed`` with the stored reasons of a refusal (``{"template", "params"}``, read in
    the reader's language) and the end of the window (None when delivery is still pending)."""

    is_allowed: bool
    reasons: tuple[dict[str, Any], ...] = ()
    deadline: datetime | None = None


def _reason(template: str, **params: Any) -> dict[str, Any]:
    return {"template": template, "params": params}


def policy_for(
    policies: Iterable[PolicyRule], *, kind: str, category_codes: Sequence[str]
) -> PolicyRule | None:
    """The most specific rule: the line's category, then its parents, then every category."""
    rules = {(p.kind, p.category_code): p for p in policies}
    for code in (*category_codes, ""):
        found = rules.get((kind, code))
        if found is not None:
            return found
    return None


def window_deadline(delivered_at: datetime, days: int, zone: ZoneInfo) -> datetime:
    """The first instant outside the window: midnight in ``zone`` after the last day, the days
    counted from the day after delivery."""
    delivered_day = delivered_at.astimezone(zone).date()
    last_day = delivered_day + timedelta(days=days)
    return datetime.combine(last_day + timedelta(days=1), time(0, 0), tzinfo=zone)


def window_name(kind: str, reason_code: str) -> dict[str, str]:
    key = "no_reason_return" if kind == "return" and reason_code == "no_reason" else kind
    return _WINDOW_NAMES[key]


def policy_check(
    *,
    kind: str,
    reason_code: str,
    lines: Sequence[LineFacts],
    delivered_at: datetime | None,
    now: datetime,
    policies: Iterable[PolicyRule],
    zone: ZoneInfo,
    requested_amount: Decimal | None = None,
) -> Verdict:
    """Whether a request filed at ``now`` is within the policy, and if not, exactly why.

    ``delivered_at`` None means the goods are not delivered yet: the window has not started,
    so time cannot put the request outside it. Every line is checked against its own
    category's rule; the request is within policy when every line is.
    """
    rules = list(policies)
    reasons: list[dict[str, Any]] = []
    deadline: datetime | None = None
    name = window_name(kind, reason_code)
    seen: set[str] = set()

    def add(reason: dict[str, Any]) -> None:
        key = repr(reason)
        if key not in seen:
            seen.add(key)
            reasons.append(reason)

    for line in lines or (LineFacts(),):
        rule = policy_for(rules, kind=kind, category_codes=line.category_codes)
        if rule is None:
            add(
                _reason(N_("No after-sales policy allows a {kind} here."), kind=_WINDOW_NAMES[kind])
            )
            continue
        if kind == "return" and reason_code == "no_reason" and line.is_no_reason_exempt:
            add(
                _reason(
                    N_("{category} is excluded from the no-reason return: a reason is needed."),
                    category=line.category_name or {"en": "This category", "zh-hans": "该类目"},
                )
            )
        if rule.requires_reason and reason_code == "no_reason":
            add(
                _reason(
                    N_("A {kind} needs a reason other than 'no reason'."),
                    kind=_WINDOW_NAMES[kind],
                )
            )
        if delivered_at is not None:
            end = window_deadline(delivered_at, rule.days_after_delivery, zone)
            deadline = end if deadline is None else min(deadline, end)
            if now >= end:
                last_day = (end - timedelta(days=1)).date().isoformat()
                add(
                    _reason(
                        N_("The {days}-day {window} window ended on {day}."),
                        days=rule.days_after_delivery,
                        window=name,
                        day=last_day,
                    )
                )
        if (
            kind == "compensation"
            and requested_amount is not None
            and rule.max_compensation is not None
            and requested_amount > rule.max_compensation
        ):
            add(
                _reason(
                    N_("The compensation asked, {amount}, is above the policy's maximum {limit}."),
                    amount=f"{requested_amount:.2f}",
                    limit=f"{rule.max_compensation:.2f}",
                )
            )
    return Verdict(is_allowed=not reasons, reasons=tuple(reasons), deadline=deadline)


# ---------------------------------------------------------------------- money


def paid_share(line_amount: Decimal, line_quantity: int, quantity: int) -> Decimal:
    """What ``quantity`` of the line's units were paid (the line's amount pro rata, to the
    cent; all units: the whole amount, never a cent more)."""
    if line_quantity <= 0 or quantity >= line_quantity:
        return line_amount.quantize(CENT)
    share = line_amount * Decimal(quantity) / Decimal(line_quantity)
    return share.quantize(CENT, rounding=ROUND_HALF_UP)


def refundable(
    *, paid: Decimal, refunded_here: Decimal, lines_paid: Decimal, refunded_on_lines: Decimal
) -> Decimal:
    """What may still be refunded on a request: its own paid share less its refunds, and never
    more than what was paid for its lines less every refund already made on them (by this or
    any other request, imported ones included). Never negative."""
    remaining = min(paid - refunded_here, lines_paid - refunded_on_lines)
    return max(remaining, Decimal("0")).quantize(CENT)


# ---------------------------------------------------------------------- logistics

#: Scan status -> the shipment's status.
SHIPMENT_STATUS = {
    "picked_up": "in_transit",
    "in_transit": "in_transit",
    "out_for_delivery": "in_transit",
    "delivered": "delivered",
    "failed_delivery": "exception",
    "exception": "exception",
    "returned": "returned",
}
#: Scans that say the delivery failed.
FAILED_SCANS = frozenset({"failed_delivery", "exception"})
#: Shipments the monitor watches: on their way.
WATCHED = frozenset({"pending", "in_transit", "exception"})

SIGNATURE_PREFIX = "sha256="


def webhook_signature(secret: str, timestamp: str, payload: bytes) -> str:
    """``sha256=<hex>`` of HMAC-SHA256(secret, timestamp + "." + payload): the same scheme as
    the outbox's own webhook (``patron.outbox.adapters.webhook_signature``)."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + payload, hashlib.sha256)
    return SIGNATURE_PREFIX + mac.hexdigest()


def signature_problem(
    *, secret: str, timestamp: str, signature: str, payload: bytes, now: float, tolerance: int
) -> str:
    """Why a signed request is not trusted, or "" when it is: a secret must be configured, the
    timestamp must be within ``tolerance`` seconds of ``now`` (an old request replayed later is
    refused), and the signature must match (compared in constant time)."""
    if not secret:
        return "the carrier webhook is not configured (PATRON_CARRIER_WEBHOOK_SECRET)"
    if not timestamp or not signature:
        return "the X-Patron-Timestamp and X-Patron-Signature headers are required"
    try:
        sent = int(timestamp)
    except ValueError:
        return "X-Patron-Timestamp must be whole seconds since 1970"
    if abs(now - sent) > tolerance:
        return f"X-Patron-Timestamp is more than {tolerance} seconds away from now"
    if not hmac.compare_digest(webhook_signature(secret, timestamp, payload), signature):
        return "the signature does not match the request"
    return ""


@dataclass(frozen=True)
class ScanFacts:
    at: datetime
    status: str


def shipment_after_scans(scans: Sequence[ScanFacts]) -> tuple[str, datetime | None]:
    """The shipment's status after its scans (the latest scan decides: a late-arriving older
    scan changes nothing), and when it was delivered (the latest delivery scan)."""
    latest = max(scans, key=lambda scan: scan.at)
    delivered = [scan.at for scan in scans if scan.status == "delivered"]
    status = SHIPMENT_STATUS[latest.status]
    return status, (max(delivered) if status == "delivered" and delivered else None)


@dataclass(frozen=True)
class ShipmentFacts:
    status: str
    shipped_at: datetime | None
    estimated_delivery_at: datetime | None
    delivered_at: datetime | None
    last_scan_at: datetime | None
    last_scan_status: str = ""


@dataclass(frozen=True)
class Finding:
    kind: str
    detail: str


def _local(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def logistics_findings(
    facts: ShipmentFacts, *, now: datetime, no_scan_hours: float, zone: ZoneInfo
) -> list[Finding]:
    """What is wrong with a shipment on its way at ``now``: a failed delivery (its latest scan
    says so), no scan for ``no_scan_hours`` while in transit (counted from shipping when there
    is none yet), late against the promised date. A delivered or returned shipment is fine."""
    if facts.delivered_at is not None or facts.status not in WATCHED:
        return []
    found: list[Finding] = []
    if facts.last_scan_status in FAILED_SCANS or facts.status == "exception":
        when = f" at {_local(facts.last_scan_at, zone)}" if facts.last_scan_at else ""
        found.append(Finding("failed_delivery", f"the carrier reported a failed delivery{when}"))
    last = facts.last_scan_at or facts.shipped_at
    if facts.status == "in_transit" and last is not None:
        silent_hours = (now - last).total_seconds() / 3600
        if silent_hours >= no_scan_hours:
            found.append(
                Finding(
                    "no_scan",
                    f"no scan for {int(silent_hours)} hours (since {_local(last, zone)}; "
                    f"the limit is {no_scan_hours:g})",
                )
            )
    if facts.estimated_delivery_at is not None and now > facts.estimated_delivery_at:
        found.append(
            Finding(
                "late",
                f"promised for {_local(facts.estimated_delivery_at, zone)}, not delivered yet",
            )
        )
    return found


def resolved_kinds(
    facts: ShipmentFacts, open_kinds: Iterable[str], *, now: datetime, no_scan_hours: float,
    zone: ZoneInfo,
) -> list[str]:  # fmt: skip
    """The open exceptions whose cause has gone (delivered, scanned again, …)."""
    still = {
        f.kind for f in logistics_findings(facts, now=now, no_scan_hours=no_scan_hours, zone=zone)
    }
    return [kind for kind in open_kinds if kind not in still]


def english(reason: Mapping[str, Any]) -> str:
    """A stored reason in English (for the audit log, the ticket and error messages)."""
    from patron.intelligence.explain import render

    return render(reason, language="en")
