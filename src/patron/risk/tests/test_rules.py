"""The pure rules of risk control: every (state, action) pair of each state machine, separation
of duties, the risk policy's validation, and the checkout policy."""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from patron.intelligence.explain import render
from patron.risk import rules
from patron.risk.rules import (
    ActiveRestriction,
    RiskPolicyRules,
    checkout_policy,
)
from patron.statemachine import SeparationOfDuties, TransitionRefused

ALERT_ACTIONS = ("watch", "dismiss", "restrict", "propose_blacklist")
APPEAL_ACTIONS = ("start_review", "uphold", "overturn")
BLACKLIST_ACTIONS = ("approve", "reject", "lift")

ALERT_EXPECTED = {
    ("open", "watch"): "watching",
    ("open", "dismiss"): "dismissed",
    ("open", "restrict"): "restricted",
    ("open", "propose_blacklist"): "escalated",
    ("watching", "dismiss"): "dismissed",
    ("watching", "restrict"): "restricted",
    ("watching", "propose_blacklist"): "escalated",
}
APPEAL_EXPECTED = {
    ("open", "start_review"): "in_review",
    ("open", "uphold"): "upheld",
    ("open", "overturn"): "overturned",
    ("in_review", "uphold"): "upheld",
    ("in_review", "overturn"): "overturned",
}


@pytest.mark.parametrize(
    ("state", "action"), itertools.product(rules.ALERT_TRANSITIONS, ALERT_ACTIONS)
)
def test_alert_machine_allows_exactly_the_listed_transitions(state: str, action: str) -> None:
    expected = ALERT_EXPECTED.get((state, action))
    if expected is None:
        with pytest.raises(TransitionRefused, match=f"alert is {state.replace('_', ' ')}: cannot"):
            rules.alert_next(state, action)
    else:
        assert rules.alert_next(state, action) == expected


@pytest.mark.parametrize(
    ("state", "action"), itertools.product(rules.APPEAL_TRANSITIONS, APPEAL_ACTIONS)
)
def test_appeal_machine_allows_exactly_the_listed_transitions(state: str, action: str) -> None:
    expected = APPEAL_EXPECTED.get((state, action))
    if expected is None:
        with pytest.raises(TransitionRefused, match=f"appeal is {state.replace('_', ' ')}"):
            rules.appeal_next(state, action)
    else:
        assert rules.appeal_next(state, action) == expected


@pytest.mark.parametrize(
    ("state", "action", "after", "needed", "expected"),
    [
        ("proposed", "approve", 1, 1, "active"),
        ("proposed", "approve", 1, 2, "confirmed"),
        ("proposed", "approve", 2, 2, "active"),
        ("confirmed", "approve", 2, 2, "active"),
        ("confirmed", "approve", 2, 3, "confirmed"),
        ("proposed", "reject", 0, 2, "rejected"),
        ("confirmed", "reject", 0, 2, "rejected"),
        ("active", "lift", 0, 2, "lifted"),
    ],
)
def test_blacklist_machine_transitions(
    state: str, action: str, after: int, needed: int, expected: str
) -> None:
    assert rules.blacklist_next(state, action, approvals_after=after, needed=needed) == expected


@pytest.mark.parametrize(
    ("state", "action"),
    [
        ("proposed", "lift"),
        ("confirmed", "lift"),
        ("active", "approve"),
        ("active", "reject"),
        *[(final, a) for final in ("rejected", "lifted") for a in BLACKLIST_ACTIONS],
    ],
)
def test_blacklist_machine_refuses_the_rest(state: str, action: str) -> None:
    with pytest.raises(TransitionRefused, match=f"blacklist entry is {state.replace('_', ' ')}"):
        rules.blacklist_next(state, action, approvals_after=5, needed=1)


def test_every_state_of_each_machine_is_reachable_from_its_start() -> None:
    for machine, start in (
        (rules.ALERT_TRANSITIONS, "open"),
        (rules.APPEAL_TRANSITIONS, "open"),
    ):
        seen, frontier = {start}, [start]
        while frontier:
            for target in machine[frontier.pop()].values():
                if target not in seen:
                    seen.add(target)
                    frontier.append(target)
        assert seen == set(machine)


def test_a_proposer_cannot_approve_their_own_blacklisting_nor_approve_twice() -> None:
    with pytest.raises(SeparationOfDuties, match="you proposed"):
        rules.check_approver(7, proposer_id=7, approver_ids=[7])
    with pytest.raises(SeparationOfDuties, match="already approved"):
        rules.check_approver(8, proposer_id=None, approver_ids=[8])
    rules.check_approver(9, proposer_id=7, approver_ids=[7])  # a different analyst may


def test_no_one_reviews_an_appeal_against_their_own_decision() -> None:
    with pytest.raises(SeparationOfDuties, match="took part"):
        rules.check_reviewer(3, decider_ids=[None, 3])
    rules.check_reviewer(4, decider_ids=[None, 3])


def test_evidence_is_new_only_when_a_record_was_not_seen() -> None:
    seen = [{"type": "return", "id": 1}, {"type": "return", "id": 2}]
    assert not rules.evidence_is_new([{"type": "return", "id": 2}], seen)
    assert rules.evidence_is_new([{"type": "return", "id": 3}], seen)
    assert rules.evidence_is_new([{"type": "order", "id": 1}], seen)


# ---------------------------------------------------------------------- risk policy


def test_the_default_policy_reads_back() -> None:
    policy = RiskPolicyRules.from_dict({})
    assert policy.blacklist_approvals == 2
    assert [b.min_score for b in policy.credit_bands] == [750, 650, 550]
    assert policy.credit_bands[0].limit == Decimal("5000.00")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"colour": "red"}, "unknown field"),
        ({"deferred_methods": ["cheque"]}, "deferred_methods: cheque not in payment_methods"),
        ({"credit_bands": [{"min_score": 600}]}, r"credit_bands\[0\]: expected"),
        ({"credit_bands": [{"min_score": 600, "limit": "-1"}]}, r"credit_bands\[0\].limit"),
        ({"credit_bands": [{"min_score": "x", "limit": "1"}]}, r"credit_bands\[0\].min_score"),
        ({"blacklist_approvals": 0}, "blacklist_approvals"),
        ({"blacklist_approvals": True}, "blacklist_approvals"),
        ({"appeal_sla_hours": 0}, "appeal_sla_hours"),
        ({"grade_multiplier": {"core": -1}}, "grade_multiplier"),
        ({"certification_multiplier": {"trusted": -1}}, "certification_multiplier"),
        ({"certification_multiplier": ["trusted"]}, "certification_multiplier"),
        ({"currency": "RMBX"}, "currency"),
        ({"payment_methods": []}, None),
    ],
)
def test_an_invalid_policy_is_refused_naming_the_field(
    data: dict[str, Any], message: str | None
) -> None:
    if message is None:  # an empty list of methods is refused too: deferred ones are not in it
        with pytest.raises(ValueError, match="deferred_methods"):
            RiskPolicyRules.from_dict(data)
        return
    with pytest.raises(ValueError, match=message):
        RiskPolicyRules.from_dict(data)


# ---------------------------------------------------------------------- checkout policy

POLICY = RiskPolicyRules.from_dict({})
ALL = ("alipay", "wechat_pay", "card", "bank_transfer", "cod", "pay_later")


def _texts(reasons: tuple[dict[str, Any], ...]) -> list[str]:
    return [render(r) for r in reasons]


def test_good_credit_gets_every_method_and_a_limit_scaled_by_grade() -> None:
    # when
    core = checkout_policy(POLICY, credit_score=760.4, grade="core")
    ordinary = checkout_policy(POLICY, credit_score=760.4, grade="ordinary")
    # then
    assert core.payment_methods == ALL and core.may_order and core.coupons_allowed
    assert core.credit_limit == Decimal("7500.00")
    assert ordinary.credit_limit == Decimal("5000.00")
    assert not core.order_review
    assert _texts(core.reasons) == ["Credit score 760 gives a credit limit of 7,500.00 CNY."]


def test_a_certified_customer_gets_the_level_factor_on_the_limit() -> None:
    # when
    trusted = checkout_policy(POLICY, credit_score=700, grade="potential", certification="trusted")
    identity = checkout_policy(
        POLICY, credit_score=700, grade="potential", certification="identity"
    )
    # then
    assert trusted.credit_limit == Decimal("3000.00")
    assert identity.credit_limit == Decimal("2000.00")  # no factor for identity only
    assert _texts(trusted.reasons) == [
        "Credit score 700 gives a credit limit of 2,000.00 CNY.",
        "Certified customer (trusted): the credit limit is 3,000.00 CNY (1.5 times).",
    ]


def test_low_credit_loses_deferred_payment_and_very_low_credit_is_reviewed() -> None:
    # when
    low = checkout_policy(POLICY, credit_score=540, grade="ordinary")
    very_low = checkout_policy(POLICY, credit_score=470, grade="ordinary")
    # then
    assert low.payment_methods == ("alipay", "wechat_pay", "card", "bank_transfer")
    assert low.credit_limit == 0 and not low.order_review
    assert "Credit score 540 is below 550: cash on delivery and pay later are not offered." in (
        _texts(low.reasons)
    )
    assert very_low.order_review
    assert "Credit score 470 is below 480: orders are checked by staff." in _texts(very_low.reasons)


def test_a_customer_without_a_score_pays_up_front() -> None:
    policy = checkout_policy(POLICY, credit_score=None, grade="")
    assert policy.payment_methods == ("alipay", "wechat_pay", "card", "bank_transfer")
    assert policy.credit_limit == 0
    assert "No credit score yet" in _texts(policy.reasons)[0]


def _restriction(kind: str, scope: dict[str, Any] | None = None) -> ActiveRestriction:
    return ActiveRestriction(kind=kind, scope=scope or {}, reason="退货过多", restriction_id=1)


def test_each_restriction_kind_shapes_the_policy_and_says_why() -> None:
    def policy(*restrictions: ActiveRestriction) -> rules.CheckoutPolicy:
        return checkout_policy(
            POLICY, credit_score=700.0, grade="potential", restrictions=restrictions
        )

    methods = policy(_restriction("payment_method", {"methods": ["cod"]}))
    assert methods.payment_methods == ("alipay", "wechat_pay", "card", "bank_transfer", "pay_later")
    assert (
        _texts(methods.reasons)[-1] == "Payment methods cash on delivery are not offered: 退货过多"
    )
    capped = policy(_restriction("credit_limit", {"limit": "300"}))
    assert capped.credit_limit == Decimal("300.00")
    zero = policy(_restriction("credit_limit", {"limit": "0"}))
    assert "pay_later" not in zero.payment_methods and "cod" in zero.payment_methods
    review = policy(_restriction("order_review"))
    assert review.order_review and review.may_order
    coupons = policy(_restriction("coupon_ban"))
    assert not coupons.coupons_allowed and coupons.may_order
    frozen = policy(_restriction("account_freeze"))
    assert not frozen.may_order and frozen.payment_methods == () and frozen.credit_limit == 0
    assert _texts(frozen.reasons)[-1] == "The account is frozen: 退货过多"


def test_a_blacklisted_customer_may_not_order_whatever_the_score() -> None:
    policy = checkout_policy(POLICY, credit_score=900, grade="core", blacklisted=True)
    assert (policy.may_order, policy.payment_methods, policy.credit_limit) == (False, (), 0)
    assert not policy.coupons_allowed and policy.order_review


KINDS = ("payment_method", "credit_limit", "order_review", "coupon_ban", "account_freeze")


@given(
    score=st.one_of(st.none(), st.floats(min_value=350, max_value=950)),
    grade=st.sampled_from(["core", "potential", "ordinary", ""]),
    kinds=st.lists(st.sampled_from(KINDS), max_size=4),
)
def test_restrictions_only_ever_take_away(
    score: float | None, grade: str, kinds: list[str]
) -> None:
    """Adding a restriction never offers more: fewer or the same methods, no higher limit."""
    free = checkout_policy(POLICY, credit_score=score, grade=grade)
    limited = checkout_policy(
        POLICY,
        credit_score=score,
        grade=grade,
        restrictions=[
            _restriction(k, {"limit": "100"} if k == "credit_limit" else None) for k in kinds
        ],
    )
    assert set(limited.payment_methods) <= set(free.payment_methods)
    assert limited.credit_limit <= free.credit_limit
    assert limited.may_order <= free.may_order
    assert limited.coupons_allowed <= free.coupons_allowed
    assert limited.order_review >= free.order_review
    assert len(limited.reasons) >= len(free.reasons) + len(kinds)


def test_terms_a_person_granted_replace_what_the_score_decided_but_not_restrictions() -> None:
    granted = rules.Override(credit_limit=Decimal("800.00"), allow_deferred=True)
    # when
    policy = checkout_policy(POLICY, credit_score=470, grade="ordinary", override=granted)
    restricted = checkout_policy(
        POLICY,
        credit_score=470,
        grade="ordinary",
        override=granted,
        restrictions=[_restriction("payment_method", {"methods": ["cod"]})],
    )
    # then
    assert policy.payment_methods == ALL and policy.credit_limit == Decimal("800.00")
    assert not policy.order_review
    assert _texts(policy.reasons) == [
        "A person reviewed what the credit score decided and granted a credit limit of 800.00 CNY."
    ]
    assert "cod" not in restricted.payment_methods and "pay_later" in restricted.payment_methods
