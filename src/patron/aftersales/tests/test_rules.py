"""The pure rules: the policy windows to the minute in the merchant's time zone, every (status,
action) pair of each kind's state machine, the appeal's once-only and four-eyes rules, money,
the webhook signature, what scans do to a shipment, and when a shipment is in trouble."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from patron.aftersales import rules
from patron.aftersales.models import AfterSalesRequest, Kind, ReasonCode
from patron.commerce.models import ReturnRequest
from patron.statemachine import SeparationOfDuties, TransitionRefused

SHANGHAI = ZoneInfo("Asia/Shanghai")
POLICIES = [
    rules.PolicyRule("return", "", 7, False),
    rules.PolicyRule("exchange", "", 30, False),
    rules.PolicyRule("repair", "", 365, True),
    rules.PolicyRule("compensation", "", 30, True, Decimal("300.00")),
    rules.PolicyRule("return", "CAT05", 15, False),  # a category's own, longer window
]
CLOTHES = rules.LineFacts(category_codes=("CAT01",), category_name={"en": "Clothes"})
FRESH = rules.LineFacts(
    category_codes=("CAT09",),
    category_name={"en": "Fresh food", "zh-hans": "生鲜"},
    is_no_reason_exempt=True,
)
LAPTOP = rules.LineFacts(category_codes=("CAT05-NB", "CAT05"), category_name={"en": "Laptops"})


def local(text: str, zone: ZoneInfo = SHANGHAI) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=zone)


def verdict(
    kind: str,
    reason: str,
    delivered: datetime | None,
    now: datetime,
    *,
    lines: tuple[rules.LineFacts, ...] = (CLOTHES,),
    amount: Decimal | None = None,
    zone: ZoneInfo = SHANGHAI,
) -> tuple[bool, list[str]]:
    found = rules.policy_check(
        kind=kind,
        reason_code=reason,
        lines=lines,
        delivered_at=delivered,
        now=now,
        policies=POLICIES,
        zone=zone,
        requested_amount=amount,
    )
    return found.is_allowed, [rules.english(r) for r in found.reasons]


ENDED_7 = "The 7-day no-reason return window ended on 2026-11-02."


@pytest.mark.parametrize(
    ("kind", "reason", "delivered", "now", "expected"),
    [
        # delivered in the afternoon of 26 October: days count from the 27th, the 7th is 2 Nov
        ("return", "no_reason", "2026-10-26 15:30", "2026-11-02 23:59", (True, [])),
        ("return", "no_reason", "2026-10-26 15:30", "2026-11-03 00:00", (False, [ENDED_7])),
        # any time on the 26th gives the same window, up to the last minute of the day
        ("return", "no_reason", "2026-10-26 00:00", "2026-11-03 00:00", (False, [ENDED_7])),
        ("return", "no_reason", "2026-10-26 23:59", "2026-11-02 23:59", (True, [])),
        ("return", "no_reason", "2026-10-26 23:59", "2026-11-03 00:00", (False, [ENDED_7])),
        # a minute after midnight is the next day: the window is a day longer
        ("return", "no_reason", "2026-10-27 00:00", "2026-11-03 23:59", (True, [])),
        (
            "return",
            "no_reason",
            "2026-10-27 00:00",
            "2026-11-04 00:00",
            (False, ["The 7-day no-reason return window ended on 2026-11-03."]),
        ),
        # with a reason it is a plain return window, same length
        (
            "return",
            "defective",
            "2026-10-26 15:30",
            "2026-11-03 00:00",
            (False, ["The 7-day return window ended on 2026-11-02."]),
        ),
        ("exchange", "size_or_fit", "2026-10-26 15:30", "2026-11-25 23:59", (True, [])),
        (
            "exchange",
            "size_or_fit",
            "2026-10-26 15:30",
            "2026-11-26 00:00",
            (False, ["The 30-day exchange window ended on 2026-11-25."]),
        ),
        ("repair", "defective", "2026-10-26 15:30", "2027-10-26 23:59", (True, [])),
        (
            "repair",
            "defective",
            "2026-10-26 15:30",
            "2027-10-27 00:00",
            (False, ["The 365-day repair window ended on 2027-10-26."]),
        ),
        (
            "repair",
            "no_reason",
            "2026-10-26 15:30",
            "2026-10-28 10:00",
            (False, ["A repair needs a reason other than 'no reason'."]),
        ),
        ("compensation", "late_delivery", "2026-10-26 15:30", "2026-11-25 23:59", (True, [])),
        # the day of delivery itself is inside the window
        ("return", "no_reason", "2026-10-26 15:30", "2026-10-26 15:31", (True, [])),
    ],
)
def test_policy_windows_to_the_minute_in_the_merchants_zone(
    kind: str, reason: str, delivered: str, now: str, expected: tuple[bool, list[str]]
) -> None:
    # when
    found = verdict(kind, reason, local(delivered), local(now))
    # then
    assert found == expected


def test_the_window_is_counted_in_the_merchants_zone_not_in_utc() -> None:
    # given: 16:30 UTC on 26 October is 00:30 on the 27th in Shanghai
    delivered = datetime(2026, 10, 26, 16, 30, tzinfo=UTC)
    # when
    last_minute = verdict("return", "no_reason", delivered, local("2026-11-03 23:59"))
    over = verdict("return", "no_reason", delivered, local("2026-11-04 00:00"))
    # then
    assert last_minute == (True, [])
    assert over == (False, ["The 7-day no-reason return window ended on 2026-11-03."])


def test_the_window_ends_at_local_midnight_across_a_daylight_saving_change() -> None:
    # given: Berlin leaves summer time in the night of 24 to 25 October 2026
    berlin = ZoneInfo("Europe/Berlin")
    delivered = local("2026-10-20 10:00", berlin)
    # when
    deadline = rules.window_deadline(delivered, 7, berlin)
    # then: midnight local after the 27th, which is 23:00 UTC in winter time
    assert deadline == local("2026-10-28 00:00", berlin)
    assert deadline.astimezone(UTC) == datetime(2026, 10, 27, 23, 0, tzinfo=UTC)
    assert verdict(
        "return", "no_reason", delivered, local("2026-10-27 23:59", berlin), zone=berlin
    )[0]


def test_a_category_rule_comes_before_the_rule_for_every_category() -> None:
    # given: laptops (CAT05-NB under CAT05) have a 15-day return window
    delivered = local("2026-10-26 15:30")
    # when
    found = verdict("return", "no_reason", delivered, local("2026-11-10 23:59"), lines=(LAPTOP,))
    over = verdict("return", "no_reason", delivered, local("2026-11-11 00:00"), lines=(LAPTOP,))
    # then
    assert found == (True, [])
    assert over == (False, ["The 15-day no-reason return window ended on 2026-11-10."])


def test_an_exempt_category_has_no_no_reason_return_but_a_reason_opens_a_return() -> None:
    # given
    delivered = local("2026-10-26 15:30")
    now = local("2026-10-27 10:00")
    # when
    no_reason = verdict("return", "no_reason", delivered, now, lines=(FRESH,))
    defective = verdict("return", "defective", delivered, now, lines=(FRESH,))
    # then
    assert no_reason == (
        False,
        ["Fresh food is excluded from the no-reason return: a reason is needed."],
    )
    assert defective == (True, [])


def test_each_line_is_judged_and_the_earliest_window_ends_the_request() -> None:
    # given
    delivered = local("2026-10-26 15:30")
    # when
    found = rules.policy_check(
        kind="return",
        reason_code="defective",
        lines=(CLOTHES, LAPTOP),
        delivered_at=delivered,
        now=local("2026-11-05 10:00"),
        policies=POLICIES,
        zone=SHANGHAI,
    )
    # then: the laptop's 15 days would allow it, the dress's 7 do not
    assert found.deadline == local("2026-11-03 00:00")
    assert [rules.english(r) for r in found.reasons] == [
        "The 7-day return window ended on 2026-11-02."
    ]


def test_compensation_above_the_policys_maximum_is_outside_it() -> None:
    # when
    found = verdict(
        "compensation",
        "late_delivery",
        local("2026-10-26 15:30"),
        local("2026-10-27 10:00"),
        amount=Decimal("300.01"),
    )
    at_limit = verdict(
        "compensation",
        "late_delivery",
        local("2026-10-26 15:30"),
        local("2026-10-27 10:00"),
        amount=Decimal("300.00"),
    )
    # then
    assert found == (
        False,
        ["The compensation asked, 300.01, is above the policy's maximum 300.00."],
    )
    assert at_limit == (True, [])


def test_goods_not_delivered_yet_are_within_the_window() -> None:
    # when
    found = rules.policy_check(
        kind="return",
        reason_code="no_reason",
        lines=(CLOTHES,),
        delivered_at=None,
        now=local("2030-01-01 00:00"),
        policies=POLICIES,
        zone=SHANGHAI,
    )
    # then
    assert found == rules.Verdict(is_allowed=True, reasons=(), deadline=None)


def test_a_kind_no_rule_covers_is_outside_the_policy() -> None:
    # when
    found = rules.policy_check(
        kind="repair",
        reason_code="defective",
        lines=(CLOTHES,),
        delivered_at=local("2026-10-26 15:30"),
        now=local("2026-10-27 10:00"),
        policies=[rules.PolicyRule("return", "", 7, False)],
        zone=SHANGHAI,
    )
    # then
    assert [rules.english(r) for r in found.reasons] == [
        "No after-sales policy allows a repair here."
    ]
    assert not found.is_allowed


def test_the_verdict_reads_in_chinese_too() -> None:
    # given
    found = rules.policy_check(
        kind="return",
        reason_code="no_reason",
        lines=(CLOTHES,),
        delivered_at=local("2026-10-26 15:30"),
        now=local("2026-11-03 00:00"),
        policies=POLICIES,
        zone=SHANGHAI,
    )
    # when
    from patron.intelligence.explain import render

    text = render(found.reasons[0], language="zh-hans")
    # then: without a catalogue the template stays English, the window's name is Chinese
    assert "无理由退货" in text and "2026-11-02" in text


# ---------------------------------------------------------------------- state machines

#: Written out by hand, independently of ``rules.TRANSITIONS``: every allowed step of each kind.
_COMMON = {
    ("requested", "approve"): "approved",
    ("requested", "reject"): "rejected",
    ("requested", "cancel"): "cancelled",
    ("rejected", "appeal"): "appealed",
    ("appealed", "approve_appeal"): "approved",
    ("appealed", "reject_appeal"): "rejected",
    ("appealed", "cancel"): "cancelled",
}
_GOODS = {
    ("approved", "await_goods"): "awaiting_goods",
    ("approved", "cancel"): "cancelled",
    ("awaiting_goods", "receive"): "received",
    ("awaiting_goods", "cancel"): "cancelled",
}
ALLOWED: dict[str, dict[tuple[str, str], str]] = {
    "return": {
        **_COMMON,
        **_GOODS,
        ("received", "refund"): "refunded",
        ("refunded", "refund"): "refunded",
        ("refunded", "close"): "closed",
    },
    "exchange": {
        **_COMMON,
        **_GOODS,
        ("received", "replace"): "replaced",
        ("replaced", "close"): "closed",
    },
    "repair": {
        **_COMMON,
        **_GOODS,
        ("received", "repair"): "repaired",
        ("repaired", "close"): "closed",
    },
    "compensation": {
        **_COMMON,
        ("approved", "refund"): "refunded",
        ("approved", "cancel"): "cancelled",
        ("refunded", "refund"): "refunded",
        ("refunded", "close"): "closed",
    },
}
PAIRS = [
    (kind, state, action)
    for kind in rules.KINDS
    for state in rules.STATUSES
    for action in rules.ACTIONS
]


@pytest.mark.parametrize(("kind", "state", "action"), PAIRS)
def test_every_status_and_action_of_every_kind(kind: str, state: str, action: str) -> None:
    expected = ALLOWED[kind].get((state, action))
    if expected is not None:
        # when / then
        assert rules.request_next(kind, state, action) == expected
    else:
        with pytest.raises(TransitionRefused) as refused:
            rules.request_next(kind, state, action)
        assert str(refused.value).startswith(
            f"the {kind} request is {state.replace('_', ' ')}: cannot {action.replace('_', ' ')}"
        )


def test_the_machines_know_every_status_and_action_and_nothing_else() -> None:
    # then
    assert set(rules.STATUSES) == set(AfterSalesRequest.Status.values)
    for machine in rules.TRANSITIONS.values():
        assert set(machine) <= set(rules.STATUSES)
        for steps in machine.values():
            assert set(steps) <= set(rules.ACTIONS)
            assert set(steps.values()) <= set(rules.STATUSES)


def test_the_kinds_are_the_returns_historys_kinds() -> None:
    assert rules.KINDS == tuple(Kind.values) == tuple(ReturnRequest.Kind.values)
    assert set(rules.RETURN_RECORD_STATUS.values()) <= set(ReturnRequest.Status.values)


def test_a_rejection_can_be_appealed_only_once() -> None:
    # when
    first = rules.request_next("return", "rejected", "appeal", has_appealed=False)
    with pytest.raises(TransitionRefused) as refused:
        rules.request_next("return", "rejected", "appeal", has_appealed=True)
    # then
    assert first == "appealed"
    assert str(refused.value) == (
        "the after-sales request was already appealed once: the decision on the appeal is final"
    )
    assert rules.allowed_actions("return", "rejected", has_appealed=True) == ()


def test_the_allowed_actions_leave_out_the_automatic_step() -> None:
    assert rules.allowed_actions("exchange", "approved") == ("cancel",)
    assert rules.allowed_actions("compensation", "approved") == ("refund", "cancel")


def test_whoever_decided_does_not_decide_the_appeal() -> None:
    # when
    rules.check_appeal_decider(2, first_decider_id=1)
    with pytest.raises(SeparationOfDuties) as refused:
        rules.check_appeal_decider(1, first_decider_id=1)
    # then
    assert "another person must decide the appeal" in str(refused.value)


@pytest.mark.parametrize(
    ("kind", "status", "taken"),
    [
        ("return", "requested", True),
        ("return", "refunded", True),
        ("return", "closed", True),
        ("return", "rejected", False),
        ("return", "cancelled", False),
        ("exchange", "received", True),
        ("exchange", "replaced", False),
        ("repair", "awaiting_goods", True),
        ("repair", "closed", False),
        ("compensation", "requested", False),
    ],
)
def test_which_requests_hold_their_units(kind: str, status: str, taken: bool) -> None:
    assert rules.units_taken(kind, status) is taken


# ---------------------------------------------------------------------- money


@pytest.mark.parametrize(
    ("amount", "bought", "asked", "share"),
    [
        ("300.00", 2, 1, "150.00"),
        ("300.00", 2, 2, "300.00"),
        ("100.00", 3, 1, "33.33"),
        ("100.00", 3, 2, "66.67"),
        ("100.00", 3, 3, "100.00"),
    ],
)
def test_the_paid_share_of_some_units(amount: str, bought: int, asked: int, share: str) -> None:
    assert rules.paid_share(Decimal(amount), bought, asked) == Decimal(share)


def test_what_can_still_be_refunded() -> None:
    # given: 150 paid for this request's unit; the line (300) already had 200 refunded elsewhere
    remaining = rules.refundable(
        paid=Decimal("150"),
        refunded_here=Decimal("0"),
        lines_paid=Decimal("300"),
        refunded_on_lines=Decimal("200"),
    )
    # then
    assert remaining == Decimal("100.00")
    assert rules.refundable(
        paid=Decimal("150"),
        refunded_here=Decimal("150"),
        lines_paid=Decimal("300"),
        refunded_on_lines=Decimal("150"),
    ) == Decimal("0.00")


# ---------------------------------------------------------------------- the carrier webhook


def test_the_signature_is_the_outbox_webhooks_scheme() -> None:
    from patron.outbox.adapters import webhook_signature

    assert rules.webhook_signature("s3cret", "1700000000", b'{"a":1}') == webhook_signature(
        "s3cret", "1700000000", b'{"a":1}'
    )


@pytest.mark.parametrize(
    ("secret", "timestamp", "signature", "now", "problem"),
    [
        ("s3cret", "1700000000", "good", 1700000100.0, ""),
        ("", "1700000000", "good", 1700000000.0, "not configured"),
        ("s3cret", "", "good", 1700000000.0, "headers are required"),
        ("s3cret", "soon", "good", 1700000000.0, "whole seconds"),
        ("s3cret", "1700000000", "good", 1700000301.0, "more than 300 seconds"),
        ("s3cret", "1700000000", "sha256=00", 1700000000.0, "does not match"),
    ],
)
def test_a_signed_request_is_trusted_only_when_everything_checks_out(
    secret: str, timestamp: str, signature: str, now: float, problem: str
) -> None:
    # given
    payload = b'{"tracking_number":"SF1"}'
    if signature == "good":
        signature = rules.webhook_signature("s3cret", timestamp, payload)
    # when
    found = rules.signature_problem(
        secret=secret,
        timestamp=timestamp,
        signature=signature,
        payload=payload,
        now=now,
        tolerance=300,
    )
    # then
    assert (found == "") if not problem else (problem in found)


def test_the_latest_scan_decides_and_an_older_one_arriving_late_changes_nothing() -> None:
    # given
    scans = [
        rules.ScanFacts(datetime(2026, 11, 1, 8, tzinfo=UTC), "picked_up"),
        rules.ScanFacts(datetime(2026, 11, 2, 9, tzinfo=UTC), "delivered"),
        rules.ScanFacts(datetime(2026, 11, 1, 20, tzinfo=UTC), "in_transit"),  # late arrival
    ]
    # when
    status, delivered = rules.shipment_after_scans(scans)
    # then
    assert (status, delivered) == ("delivered", datetime(2026, 11, 2, 9, tzinfo=UTC))
    assert rules.shipment_after_scans([scans[0], scans[2]]) == ("in_transit", None)
    assert rules.shipment_after_scans(
        [rules.ScanFacts(datetime(2026, 11, 3, tzinfo=UTC), "failed_delivery")]
    ) == ("exception", None)


# ---------------------------------------------------------------------- logistics exceptions

NOW = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)


def facts(**changes: object) -> rules.ShipmentFacts:
    values: dict[str, object] = {
        "status": "in_transit",
        "shipped_at": datetime(2026, 11, 18, 2, 0, tzinfo=UTC),
        "estimated_delivery_at": datetime(2026, 11, 21, 2, 0, tzinfo=UTC),
        "delivered_at": None,
        "last_scan_at": datetime(2026, 11, 19, 2, 0, tzinfo=UTC),
        "last_scan_status": "in_transit",
    }
    values.update(changes)
    return rules.ShipmentFacts(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("shipment", "kinds"),
    [
        (facts(), []),
        # exactly 48 hours since the last scan
        (facts(last_scan_at=datetime(2026, 11, 18, 2, 0, tzinfo=UTC)), ["no_scan"]),
        (facts(last_scan_at=datetime(2026, 11, 18, 2, 1, tzinfo=UTC)), []),
        # no scan at all: counted from shipping
        (
            facts(last_scan_at=None, shipped_at=datetime(2026, 11, 17, 0, 0, tzinfo=UTC)),
            ["no_scan"],
        ),
        (facts(estimated_delivery_at=datetime(2026, 11, 20, 1, 59, tzinfo=UTC)), ["late"]),
        (facts(estimated_delivery_at=NOW), []),
        (facts(status="exception", last_scan_status="failed_delivery"), ["failed_delivery"]),
        (
            facts(
                status="exception",
                last_scan_status="failed_delivery",
                estimated_delivery_at=datetime(2026, 11, 19, tzinfo=UTC),
            ),
            ["failed_delivery", "late"],
        ),
        (facts(delivered_at=NOW, status="delivered"), []),
        (facts(status="returned", estimated_delivery_at=datetime(2026, 11, 1, tzinfo=UTC)), []),
    ],
)
def test_when_a_shipment_is_in_trouble(shipment: rules.ShipmentFacts, kinds: list[str]) -> None:
    # when
    found = rules.logistics_findings(shipment, now=NOW, no_scan_hours=48, zone=SHANGHAI)
    # then
    assert [f.kind for f in found] == kinds


def test_a_finding_says_what_and_since_when_in_the_merchants_time() -> None:
    # when
    found = rules.logistics_findings(
        facts(last_scan_at=datetime(2026, 11, 17, 2, 0, tzinfo=UTC)),
        now=NOW,
        no_scan_hours=48,
        zone=SHANGHAI,
    )
    # then
    assert found == [
        rules.Finding("no_scan", "no scan for 72 hours (since 2026-11-17 10:00; the limit is 48)")
    ]


def test_an_exception_resolves_when_its_cause_is_gone() -> None:
    assert rules.resolved_kinds(
        facts(), ["no_scan", "late"], now=NOW, no_scan_hours=48, zone=SHANGHAI
    ) == ["no_scan", "late"]
    assert rules.resolved_kinds(
        facts(estimated_delivery_at=datetime(2026, 11, 19, tzinfo=UTC)),
        ["no_scan", "late"],
        now=NOW,
        no_scan_hours=48,
        zone=SHANGHAI,
    ) == ["no_scan"]


def test_reason_codes_are_the_apis() -> None:
    from patron.aftersales import api

    assert [c.value for c in api.AfterSalesReasonCode] == ReasonCode.values
    assert [c.value for c in api.AfterSalesKind] == Kind.values
    assert [c.value for c in api.AfterSalesStatus] == AfterSalesRequest.Status.values
