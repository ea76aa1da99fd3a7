"""Campaigns: the state machine, launching (holdout, consent, frequency cap, budget,
idempotency, offers), cancelling, the job, the evaluation on a hand-made dataset, the API
(permissions, 409, 422), the pages and the CLI."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from django.test import Client
from django.utils import timezone
from scipy import stats
from typer.testing import CliRunner

from patron.account.roles import Role
from patron.commerce.models import Order
from patron.conftest import ALL_ROLES, make_customer, make_order, make_user
from patron.customer.models import Customer
from patron.errors import Conflict, PermissionDenied, ValidationFailed
from patron.loyalty.models import PointsAccount
from patron.marketing import rules, selectors, services, uplift
from patron.marketing.cli import marketing_app
from patron.marketing.models import Campaign, CampaignMember, Coupon, Segment
from patron.marketing.tests.factories import consent, template
from patron.outbox.models import Message
from patron.statemachine import TransitionRefused

pytestmark = pytest.mark.django_db

PROVINCE = "浙江省"
VIEW_ROLES = {"administrator", "operations_manager", "marketer", "analyst", "auditor"}
CHANGE_ROLES = {"administrator", "operations_manager", "marketer"}


# ---------------------------------------------------------------------- the state machine

TABLE = [
    ("draft", "schedule", "scheduled"),
    ("draft", "launch", "running"),
    ("draft", "cancel", "cancelled"),
    ("draft", "resume", None),
    ("draft", "finish", None),
    ("scheduled", "launch", "running"),
    ("scheduled", "cancel", "cancelled"),
    ("scheduled", "schedule", None),
    ("scheduled", "finish", None),
    ("running", "resume", "running"),
    ("running", "finish", "finished"),
    ("running", "cancel", "cancelled"),
    ("running", "launch", None),
    ("running", "schedule", None),
    ("finished", "cancel", None),
    ("finished", "launch", None),
    ("finished", "finish", None),
    ("cancelled", "launch", None),
    ("cancelled", "cancel", None),
]


@pytest.mark.parametrize(("state", "action", "expected"), TABLE)
def test_state_machine_table(state: str, action: str, expected: str | None) -> None:
    if expected is None:
        with pytest.raises(TransitionRefused):
            rules.campaign_next(state, action)
    else:
        assert rules.campaign_next(state, action) == expected


def test_every_state_and_action_is_in_the_table() -> None:
    actions = {a for moves in rules.CAMPAIGN_MACHINE.values() for a in moves}
    assert set(rules.CAMPAIGN_MACHINE) == set(rules.CampaignStatus)
    assert actions == {"schedule", "launch", "resume", "finish", "cancel"}


def test_channel_choice() -> None:
    reachable = {"sms", "wechat"}
    assert rules.choose_channel(
        ["sms", "wechat"], granted={"wechat": True}, reachable=reachable
    ) == ("wechat", "")
    assert rules.choose_channel(["sms"], granted={"sms": False}, reachable=reachable) == (
        "",
        "no_consent",
    )
    assert rules.choose_channel(["email"], granted={"email": True}, reachable=reachable) == (
        "",
        "no_address",
    )
    assert rules.choose_channel(["sms"], granted={}, reachable=reachable) == ("", "no_consent")  # fmt: skip


def test_budget_rule() -> None:
    assert rules.budget_allows(spent=Decimal("40"), next_cost=Decimal("20"), budget=Decimal("60"))
    assert not rules.budget_allows(
        spent=Decimal("41"), next_cost=Decimal("20"), budget=Decimal("60")
    )
    assert rules.budget_allows(spent=Decimal("1e9"), next_cost=Decimal("20"), budget=None)


# ---------------------------------------------------------------------- helpers


def _segment(user: Any, name: str = "浙江客户") -> Segment:
    return services.segment_save(
        user=user, name=name, rule={"all": [{"field": "province", "op": "eq", "value": PROVINCE}]}
    )


def _customers(n: int, *, consenting: int | None = None) -> list[Customer]:
    people = [
        make_customer(province=PROVINCE, phone=f"1380000{i:04d}", email=f"c{i}@example.cn")
        for i in range(n)
    ]
    for person in people[: n if consenting is None else consenting]:
        consent(person, "marketing", "sms", True, 30)
    return people


def _plan(segment: Segment, **fields: Any) -> dict[str, Any]:
    now = timezone.now()
    values: dict[str, Any] = {
        "name": "双十一回购",
        "goal_metric": "repurchase_rate",
        "target_value": Decimal("0.03"),
        "period_start": now - timedelta(days=10),
        "period_end": now + timedelta(days=20),
        "segment_id": segment.pk,
        "holdout_share": Decimal("0.1"),
        "seed": 42,
        "offer_kind": "message",
        "channels": ["sms"],
        "message_title": "双十一",
        "message_text": "好久不见，来看看新品吧",
        "frequency_cap_messages": None,
        "frequency_cap_days": None,
    }
    values.update(fields)
    return values


def _outcomes(campaign: Campaign) -> dict[str, int]:
    counts: dict[str, int] = {}
    for outcome in CampaignMember.objects.filter(campaign=campaign).values_list(
        "outcome", flat=True
    ):
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts


# ---------------------------------------------------------------------- launching


def test_launch_freezes_the_audience_and_holds_out_the_share_reproducibly() -> None:
    # given
    marketer = make_user(Role.MARKETER)
    segment = _segment(marketer)
    _customers(50)
    first = services.campaign_create(user=marketer, data=_plan(segment))
    again = services.campaign_create(user=marketer, data=_plan(segment, name="同一种子"))
    other = services.campaign_create(user=marketer, data=_plan(segment, name="另一种子", seed=7))

    # when
    for campaign in (first, again, other):
        services.campaign_launch(user=marketer, campaign_id=campaign.pk)

    # then
    def held(campaign: Campaign) -> set[int]:
        return set(
            CampaignMember.objects.filter(campaign=campaign, group="holdout").values_list(
                "customer_id", flat=True
            )
        )

    assert CampaignMember.objects.filter(campaign=first).count() == 50
    assert len(held(first)) == 5
    assert held(first) == held(again)
    assert held(first) != held(other)
    ids = list(CampaignMember.objects.filter(campaign=first).values_list("customer_id", flat=True))
    assert held(first) == rules.holdout_assign(ids, Decimal("0.1"), 42)
    assert Campaign.objects.get(pk=first.pk).snapshot_id is not None
    assert _outcomes(first) == {"messaged": 45, "holdout": 5}
    sent_by_first = Message.objects.filter(source=f"marketing.campaign:{first.pk}")
    assert sent_by_first.count() == 45
    assert not sent_by_first.filter(customer_id__in=held(first)).exists()


def test_a_customer_joining_the_segment_after_launch_is_not_a_member() -> None:
    marketer = make_user(Role.MARKETER)
    campaign = services.campaign_create(user=marketer, data=_plan(_segment(marketer)))
    _customers(5)
    services.campaign_launch(user=marketer, campaign_id=campaign.pk)
    make_customer(province=PROVINCE)
    services.campaign_launch(user=marketer, campaign_id=campaign.pk)  # resume: nothing to do
    assert CampaignMember.objects.filter(campaign=campaign).count() == 5


def test_launch_respects_consent_per_channel() -> None:
    # given: 0 no consent, 1 withdrew SMS, 2 WeChat only, 3 e-mail consent without address
    marketer = make_user(Role.MARKETER)
    segment = _segment(marketer)
    people = _customers(4, consenting=0)
    consent(people[1], "marketing", "sms", True, 60)
    consent(people[1], "marketing", "sms", False, 5)
    consent(people[2], "marketing", "wechat", True, 10)
    people[3].email, people[3].email_hash = "", ""
    people[3].save()
    consent(people[3], "marketing", "email", True, 10)
    campaign = services.campaign_create(
        user=marketer,
        data=_plan(segment, holdout_share=Decimal("0"), channels=["sms", "email", "wechat"]),
    )

    # when
    services.campaign_launch(user=marketer, campaign_id=campaign.pk)

    # then
    members = {m.customer_id: m for m in CampaignMember.objects.filter(campaign=campaign)}
    assert [(members[p.pk].outcome, members[p.pk].channel) for p in people] == [
        ("no_consent", ""),
        ("no_consent", ""),
        ("messaged", "wechat"),
        ("no_address", ""),
    ]
    assert members[people[0].pk].reason == "no marketing consent on sms, email, wechat"
    message = Message.objects.get(customer=people[2])
    assert (message.channel, message.purpose, message.status) == ("wechat", "marketing", "queued")


def test_launch_respects_the_frequency_cap_across_campaigns() -> None:
    # given: a customer who got two marketing messages this week, one who got one
    marketer = make_user(Role.MARKETER)
    segment = _segment(marketer)
    busy, quiet, fresh = _customers(3)
    now = timezone.now()
    for customer, count in ((busy, 2), (quiet, 1)):
        for i in range(count):
            Message.objects.create(
                customer=customer, channel="sms", purpose="marketing", template="x",
                language="zh-hans", subject="s", body="b", recipient="r", key=f"k{customer.pk}{i}",
                created_at=now - timedelta(days=2),
            )  # fmt: skip
    Message.objects.create(
        customer=quiet, channel="sms", purpose="marketing", template="x", language="zh-hans",
        subject="s", body="b", recipient="r", key="old", created_at=now - timedelta(days=9),
    )  # fmt: skip
    campaign = services.campaign_create(
        user=marketer,
        data=_plan(
            segment, holdout_share=Decimal("0"), frequency_cap_messages=2, frequency_cap_days=7
        ),
    )

    # when
    services.campaign_launch(user=marketer, campaign_id=campaign.pk)

    # then
    outcome = dict(
        CampaignMember.objects.filter(campaign=campaign).values_list("customer_id", "outcome")
    )
    assert outcome == {busy.pk: "capped", quiet.pk: "messaged", fresh.pk: "messaged"}
    member = CampaignMember.objects.get(campaign=campaign, customer=busy)
    assert member.reason == "2 marketing message(s) in the last 7 days (the cap is 2)"


def test_launch_stops_issuing_coupons_at_the_budget() -> None:
    # given: 20 CNY coupons and a budget of 50: two fit
    marketer = make_user(Role.MARKETER)
    segment = _segment(marketer)
    people = _customers(5)
    coupons = template(value=Decimal("20.00"), stock=100)
    campaign = services.campaign_create(
        user=marketer,
        data=_plan(
            segment,
            holdout_share=Decimal("0"),
            offer_kind="coupon",
            coupon_template_id=coupons.pk,
            budget=Decimal("50"),
            message_text="送您一张券：{coupon_code}",
        ),
    )

    # when
    launched = services.campaign_launch(user=marketer, campaign_id=campaign.pk)

    # then
    assert launched.spent == Decimal("40.00")
    assert _outcomes(campaign) == {"messaged": 2, "over_budget": 3}
    issued = list(Coupon.objects.filter(template=coupons).order_by("customer_id"))
    assert [c.customer_id for c in issued] == [people[0].pk, people[1].pk]
    member = CampaignMember.objects.get(campaign=campaign, customer=people[0])
    assert (member.coupon_id, member.cost) == (issued[0].pk, Decimal("20.00"))
    message = Message.objects.get(customer=people[0])
    assert f"送您一张券：{issued[0].code}" in message.body
    assert CampaignMember.objects.get(campaign=campaign, customer=people[4]).reason == (
        "40.00 of the budget 50.00 spent; an offer costs 20.00"
    )


def test_messages_name_the_products_suggested_for_each_customer() -> None:
    # given: suggestions for the first customer; the shop's best sellers for everyone else
    from patron.recommend.models import Recommendation, RecommendationRun

    marketer = make_user(Role.MARKETER)
    segment = _segment(marketer)
    people = _customers(2)
    now = timezone.now()
    run = RecommendationRun.objects.create(as_of=now, computed_at=now)
    for customer, rank, name in [
        (people[0], 1, "龙井茶"),
        (people[0], 2, "茶杯"),
        (None, 1, "红茶"),
    ]:
        Recommendation.objects.create(
            run=run,
            customer=customer,
            rank=rank,
            product_source="shop",
            product_ref=name,
            product_name=name,
            score=1.0,
            basis="together" if customer else "popular",
            reason={},
            computed_at=now,
        )
    campaign = services.campaign_create(
        user=marketer,
        data=_plan(segment, holdout_share=Decimal("0"), message_text="为您推荐：{recommended}"),
    )

    # when
    services.campaign_launch(user=marketer, campaign_id=campaign.pk)

    # then
    assert "为您推荐：龙井茶、茶杯" in Message.objects.get(customer=people[0]).body
    assert "为您推荐：红茶" in Message.objects.get(customer=people[1]).body


def test_launching_twice_sends_nobody_twice() -> None:
    # given
    marketer = make_user(Role.MARKETER)
    segment = _segment(marketer)
    _customers(12)
    coupons = template(stock=100)
    campaign = services.campaign_create(
        user=marketer, data=_plan(segment, offer_kind="coupon", coupon_template_id=coupons.pk)
    )
    services.campaign_launch(user=marketer, campaign_id=campaign.pk)
    before = (Message.objects.count(), Coupon.objects.count(), _outcomes(campaign))

    # when
    again = services.campaign_launch(user=marketer, campaign_id=campaign.pk)

    # then
    assert again.status == "running"
    assert (Message.objects.count(), Coupon.objects.count(), _outcomes(campaign)) == before
    assert before[0] == before[1] == 11  # 12 members, 1 held out


def test_a_stopped_launch_resumes_with_the_members_not_reached(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given: chunks of 4, and a launch that dies in its second chunk
    monkeypatch.setattr(services, "CAMPAIGN_CHUNK", 4)
    marketer = make_user(Role.MARKETER)
    segment = _segment(marketer)
    _customers(10)
    campaign = services.campaign_create(
        user=marketer, data=_plan(segment, holdout_share=Decimal("0"))
    )
    real = services.message_queue
    calls = {"n": 0}

    def flaky(**kwargs: Any) -> Message:
        calls["n"] += 1
        if calls["n"] == 6:
            raise ValidationFailed("provider down")
        return real(**kwargs)

    monkeypatch.setattr(services, "message_queue", flaky)
    with pytest.raises(ValidationFailed):
        services.campaign_launch(user=marketer, campaign_id=campaign.pk)
    assert _outcomes(campaign) == {"messaged": 4, "pending": 6}

    # when
    services.campaign_launch(user=marketer, campaign_id=campaign.pk)

    # then
    assert _outcomes(campaign) == {"messaged": 10}
    assert Message.objects.count() == 10


def test_a_points_offer_credits_the_ledger_once() -> None:
    marketer = make_user(Role.MARKETER)
    segment = _segment(marketer)
    people = _customers(3)
    campaign = services.campaign_create(
        user=marketer,
        data=_plan(
            segment, holdout_share=Decimal("0"), offer_kind="points", points=200,
            message_text="送您{points}积分",
        ),
    )  # fmt: skip
    services.campaign_launch(user=marketer, campaign_id=campaign.pk)
    services.campaign_launch(user=marketer, campaign_id=campaign.pk)
    balances = dict(PointsAccount.objects.values_list("customer_id", "balance"))
    assert balances == {p.pk: 200 for p in people}
    assert "送您200积分" in Message.objects.filter(customer=people[0]).get().body


def test_cancelling_a_running_campaign_stops_what_was_not_sent() -> None:
    marketer = make_user(Role.MARKETER)
    campaign = services.campaign_create(user=marketer, data=_plan(_segment(marketer)))
    _customers(3)
    services.campaign_launch(user=marketer, campaign_id=campaign.pk)
    CampaignMember.objects.filter(campaign=campaign, group="treatment").update(outcome="pending")

    cancelled = services.campaign_cancel(user=marketer, campaign_id=campaign.pk, reason="库存不足")

    assert (cancelled.status, cancelled.cancel_reason) == ("cancelled", "库存不足")
    assert _outcomes(campaign) == {"not_sent": 3}
    with pytest.raises(Conflict) as refused:
        services.campaign_launch(user=marketer, campaign_id=campaign.pk)
    assert (
        refused.value.message == "the campaign is cancelled: cannot launch; allowed: none (final)"
    )


def test_only_a_draft_is_changed() -> None:
    marketer = make_user(Role.MARKETER)
    campaign = services.campaign_create(user=marketer, data=_plan(_segment(marketer)))
    changed = services.campaign_update(
        user=marketer, campaign_id=campaign.pk, changes={"name": "改名", "seed": 9}
    )
    assert (changed.name, changed.seed) == ("改名", 9)
    services.campaign_cancel(user=marketer, campaign_id=campaign.pk, reason="不做了")
    with pytest.raises(Conflict) as refused:
        services.campaign_update(user=marketer, campaign_id=campaign.pk, changes={"name": "x"})
    assert (
        refused.value.message == f"campaign {campaign.pk} is cancelled: only a draft can be changed"
    )
    assert Campaign.objects.get(pk=campaign.pk).name == "改名"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"holdout_share": Decimal("0.6")}, "campaign.holdout_share: expected 0 to 0.5"),
        ({"offer_kind": "coupon"}, "campaign.coupon_template_id: a coupon offer needs a coupon template"),
        ({"channels": []}, "campaign.channels: at least one channel"),
        ({"period_end": timezone.now() - timedelta(days=30)}, "campaign.period_end: must be after period_start"),
        ({"budget": Decimal("100")}, "campaign.unit_cost: give the cost of one offer (CNY) so the budget can be kept"),
        ({"frequency_cap_messages": 2}, "campaign.frequency_cap_days: give both the number of messages and the days"),
        ({"message_template": "loyalty.tier_up"}, "campaign.message_template: use a marketing.* message template"),
    ],
)  # fmt: skip
def test_a_bad_plan_is_refused_naming_the_field(fields: dict[str, Any], message: str) -> None:
    marketer = make_user(Role.MARKETER)
    segment = _segment(marketer)
    with pytest.raises(ValidationFailed) as refused:
        services.campaign_create(user=marketer, data=_plan(segment, **fields))
    assert refused.value.message == message
    assert Campaign.objects.count() == 0


def test_an_analyst_may_not_launch() -> None:
    marketer = make_user(Role.MARKETER)
    campaign = services.campaign_create(user=marketer, data=_plan(_segment(marketer)))
    with pytest.raises(PermissionDenied):
        services.campaign_launch(user=make_user(Role.ANALYST), campaign_id=campaign.pk)
    assert Campaign.objects.get(pk=campaign.pk).status == "draft"


# ---------------------------------------------------------------------- the job


def test_the_job_launches_due_campaigns_and_finishes_ended_ones() -> None:
    # given
    marketer = make_user(Role.MARKETER)
    segment = _segment(marketer)
    _customers(4)
    now = timezone.now()
    due = services.campaign_create(
        user=marketer, data=_plan(segment, send_at=now - timedelta(minutes=1))
    )
    later = services.campaign_create(
        user=marketer, data=_plan(segment, name="以后", send_at=now + timedelta(days=1))
    )
    ending = services.campaign_create(
        user=marketer, data=_plan(segment, name="结束", period_end=now + timedelta(hours=1))
    )
    for campaign in (due, later):
        services.campaign_schedule(user=marketer, campaign_id=campaign.pk)
    services.campaign_launch(user=marketer, campaign_id=ending.pk)

    # when
    first = services.campaigns_run_due(now=now)
    second = services.campaigns_run_due(now=now + timedelta(hours=2))

    # then
    assert (first.launched, first.finished, first.failed) == ([due.pk], [], {})
    assert (second.launched, second.finished, second.resumed) == ([], [ending.pk], [])
    statuses = dict(Campaign.objects.values_list("pk", "status"))
    assert statuses == {due.pk: "running", later.pk: "scheduled", ending.pk: "finished"}
    assert Campaign.objects.get(pk=due.pk).launched_by == f"job (as {marketer.username})"


# ---------------------------------------------------------------------- evaluation


def _hand_made(goal: str) -> tuple[Campaign, dict[str, list[Customer]], datetime]:
    """Ten customers, two held out (seed 5); orders placed by hand in and around the period.

    Treatment (8): t0 two orders 100 + 50 and one 200 days before the period; t1 200; t2 300;
    t3 a cancelled order; t4 an order 30 days before the period (so not lapsed); t5–t7 none.
    Holdout (2): h0 100; h1 none."""
    marketer = make_user(Role.MARKETER)
    segment = Segment.objects.first() or _segment(marketer)
    if not Customer.objects.exists():
        _customers(10, consenting=0)
    campaign = services.campaign_create(
        user=marketer,
        data=_plan(segment, name=goal, goal_metric=goal, holdout_share=Decimal("0.2"), seed=5),
    )
    services.campaign_launch(user=marketer, campaign_id=campaign.pk)
    groups: dict[str, list[Customer]] = {"treatment": [], "holdout": []}
    for member in CampaignMember.objects.filter(campaign=campaign).select_related("customer"):
        groups[member.group].append(member.customer)
    start = campaign.period_start
    if not Order.objects.exists():
        t, h = groups["treatment"], groups["holdout"]
        in_period = start + timedelta(days=3)
        for n, (customer, total, at, status) in enumerate(
            [
                (t[0], "100", in_period, "completed"),
                (t[0], "50", in_period + timedelta(days=1), "completed"),
                (t[0], "999", start - timedelta(days=200), "completed"),
                (t[1], "200", in_period, "paid"),
                (t[2], "300", in_period, "shipped"),
                (t[3], "500", in_period, "cancelled"),
                (t[4], "80", start - timedelta(days=30), "completed"),
                (h[0], "100", in_period, "completed"),
            ]
        ):
            make_order(
                customer, external_id=f"O{n}", placed_at=at, paid_at=at, total=total,
                status=status,
            )  # fmt: skip
    return campaign, groups, start


def test_evaluation_of_the_repurchase_rate_equals_the_hand_count() -> None:
    # given
    campaign, _groups, _start = _hand_made("repurchase_rate")
    viewer = make_user(Role.ANALYST)

    # when
    evaluation = selectors.campaign_evaluation(user=viewer, campaign_id=campaign.pk)

    # then
    t, h = evaluation.treatment, evaluation.holdout
    assert (t.members, t.buyers, t.orders, t.revenue) == (8, 3, 4, Decimal("650.00"))
    assert (h.members, h.buyers, h.orders, h.revenue) == (2, 1, 1, Decimal("100.00"))
    assert (t.metric, h.metric) == (3 / 8, 1 / 2)
    assert evaluation.uplift == uplift.newcombe_difference(3, 8, 1, 2)
    assert evaluation.uplift is not None and evaluation.uplift.estimate == pytest.approx(-0.125)
    assert evaluation.is_significant is False
    assert evaluation.target == 0.03
    assert evaluation.progress == pytest.approx(-0.125 / 0.03)
    assert evaluation.is_target_reached is False
    assert t.outcomes == {"no_consent": 8} and h.outcomes == {"holdout": 2}
    assert evaluation.contact_rate == 0.0 and evaluation.effect_on_contacted is None
    assert evaluation.reach == ()
    assert any(n.startswith("Small groups (8 treated, 2 held out)") for n in evaluation.notes)
    assert any(
        n.startswith("Intention to treat: all 8 treatment members") for n in evaluation.notes
    )


def test_evaluation_of_reactivation_counts_only_the_lapsed_who_came_back() -> None:
    campaign, _groups, _start = _hand_made("reactivation_rate")
    evaluation = selectors.campaign_evaluation(
        user=make_user(Role.MARKETER), campaign_id=campaign.pk
    )
    t, h = evaluation.treatment, evaluation.holdout
    # t4 ordered 30 days before the period: not lapsed; t0's older order is 200 days before.
    assert (t.lapsed, t.reactivated, h.lapsed, h.reactivated) == (7, 3, 2, 1)
    assert (t.metric, h.metric) == (3 / 8, 1 / 2)


def test_evaluation_of_revenue_per_customer_is_welch_on_zero_padded_revenue() -> None:
    campaign, _groups, _start = _hand_made("revenue_per_customer")
    evaluation = selectors.campaign_evaluation(
        user=make_user(Role.MARKETER), campaign_id=campaign.pk
    )
    treated = np.array([150, 200, 300, 0, 0, 0, 0, 0], dtype=float)
    held = np.array([100, 0], dtype=float)
    expected = stats.ttest_ind(treated, held, equal_var=False).confidence_interval(0.95)
    assert (evaluation.treatment.metric, evaluation.holdout.metric) == (81.25, 50.0)
    assert evaluation.uplift is not None
    assert evaluation.uplift.estimate == pytest.approx(31.25)
    assert (evaluation.uplift.low, evaluation.uplift.high) == (
        pytest.approx(expected.low),
        pytest.approx(expected.high),
    )
    assert evaluation.unit == "CNY"


def test_evaluation_reports_reach_and_says_what_the_channel_does_not_report() -> None:
    marketer = make_user(Role.MARKETER)
    _customers(4)
    campaign = services.campaign_create(
        user=marketer, data=_plan(_segment(marketer), holdout_share=Decimal("0.25"))
    )
    services.campaign_launch(user=marketer, campaign_id=campaign.pk)
    evaluation = selectors.campaign_evaluation(user=marketer, campaign_id=campaign.pk)
    assert evaluation.reach == (
        selectors.CampaignChannelReach(
            channel="sms", messages=3, pending=3, sent=0, failed=0, suppressed=0, cancelled=0
        ),
    )
    assert evaluation.contact_rate == 1.0
    assert any(n.startswith("The period runs until") for n in evaluation.notes)


def test_a_draft_has_nothing_to_evaluate() -> None:
    marketer = make_user(Role.MARKETER)
    campaign = services.campaign_create(user=marketer, data=_plan(_segment(marketer)))
    evaluation = selectors.campaign_evaluation(user=marketer, campaign_id=campaign.pk)
    assert evaluation.uplift is None
    assert evaluation.notes == (
        "The campaign has not been launched: there is nothing to evaluate yet.",
    )


def test_a_placebo_evaluates_a_past_period_without_sending() -> None:
    marketer = make_user(Role.MARKETER)
    _customers(6)
    now = timezone.now()
    campaign = services.campaign_create(
        user=marketer,
        data=_plan(
            _segment(marketer),
            period_start=now - timedelta(days=60),
            period_end=now - timedelta(days=30),
        ),
    )
    done = services.campaign_placebo(user=marketer, campaign_id=campaign.pk)
    assert done.status == "finished"
    assert _outcomes(campaign) == {"not_sent": 5, "holdout": 1}
    assert Message.objects.count() == 0
    evaluation = selectors.campaign_evaluation(user=marketer, campaign_id=campaign.pk)
    assert evaluation.notes[-1] == services.PLACEBO_NOTE


# ---------------------------------------------------------------------- API


def _client(role: str) -> Client:
    client = Client()
    client.force_login(make_user(role))
    return client


def _body(segment: Segment, **fields: Any) -> dict[str, Any]:
    now = timezone.now()
    body: dict[str, Any] = {
        "name": "API 活动",
        "goal_metric": "repurchase_rate",
        "period_start": (now - timedelta(days=1)).isoformat(),
        "period_end": (now + timedelta(days=30)).isoformat(),
        "segment_id": segment.pk,
        "offer_kind": "message",
        "channels": ["sms"],
        "message_title": "上新",
        "message_text": "新品上市",
    }
    body.update(fields)
    return body


def test_the_api_end_to_end() -> None:
    # given
    marketer = _client(Role.MARKETER)
    segment = _segment(make_user(Role.MARKETER))
    _customers(10)

    # when
    created = marketer.post("/api/marketing/campaigns", _body(segment), "application/json")
    campaign_id = created.json()["id"]
    patched = marketer.patch(
        f"/api/marketing/campaigns/{campaign_id}", {"holdout_share": 0.2}, "application/json"
    )
    launched = marketer.post(f"/api/marketing/campaigns/{campaign_id}/launch")
    listed = marketer.get("/api/marketing/campaigns?status=running")
    evaluation = marketer.get(f"/api/marketing/campaigns/{campaign_id}/evaluation")
    cancelled = marketer.post(
        f"/api/marketing/campaigns/{campaign_id}/cancel", {"reason": "提前结束"}, "application/json"
    )
    again = marketer.post(
        f"/api/marketing/campaigns/{campaign_id}/cancel", {"reason": "再来"}, "application/json"
    )

    # then
    assert created.status_code == 201
    assert (created.json()["status"], created.json()["holdout_share"]) == ("draft", 0.1)
    assert patched.json()["holdout_share"] == 0.2
    assert launched.status_code == 200
    assert {k: launched.json()[k] for k in ("status", "treatment", "holdout", "messaged")} == {
        "status": "running", "treatment": 8, "holdout": 2, "messaged": 8,
    }  # fmt: skip
    assert [c["id"] for c in listed.json()] == [campaign_id]
    body = evaluation.json()
    assert evaluation.status_code == 200
    assert body["treatment"]["members"] == 8 and body["holdout"]["members"] == 2
    assert body["reach"][0]["opened"] == "not reported by this channel"
    assert body["uplift"]["method"] == uplift.NEWCOMBE
    assert cancelled.json()["status"] == "cancelled"
    assert again.status_code == 409
    assert (
        again.json()["message"] == "the campaign is cancelled: cannot cancel; allowed: none (final)"
    )


def test_the_api_refuses_a_patch_once_launched_with_409() -> None:
    marketer = _client(Role.MARKETER)
    segment = _segment(make_user(Role.MARKETER))
    campaign_id = marketer.post(
        "/api/marketing/campaigns", _body(segment), "application/json"
    ).json()["id"]
    marketer.post(f"/api/marketing/campaigns/{campaign_id}/launch")
    response = marketer.patch(
        f"/api/marketing/campaigns/{campaign_id}", {"name": "改"}, "application/json"
    )
    assert response.status_code == 409
    assert response.json()["message"] == (
        f"campaign {campaign_id} is running: only a draft can be changed"
    )


def test_the_api_422_names_the_field() -> None:
    marketer = _client(Role.MARKETER)
    segment = _segment(make_user(Role.MARKETER))
    too_big = marketer.post(
        "/api/marketing/campaigns", _body(segment, holdout_share=0.7), "application/json"
    )
    backwards = marketer.post(
        "/api/marketing/campaigns",
        _body(segment, period_end=(timezone.now() - timedelta(days=5)).isoformat()),
        "application/json",
    )
    assert too_big.status_code == 422
    assert "holdout_share" in too_big.json()["message"]
    assert backwards.status_code == 422
    assert backwards.json()["message"] == "campaign.period_end: must be after period_start"


def test_the_openapi_paths_name_campaigns() -> None:
    paths = Client().get("/api/openapi.json").json()["paths"]
    assert {
        "/api/marketing/campaigns",
        "/api/marketing/campaigns/{campaign_id}",
        "/api/marketing/campaigns/{campaign_id}/launch",
        "/api/marketing/campaigns/{campaign_id}/cancel",
        "/api/marketing/campaigns/{campaign_id}/evaluation",
    } <= set(paths)


@pytest.mark.parametrize("role", [*ALL_ROLES, "no_role"])
@pytest.mark.parametrize("action", ["list", "get", "evaluation", "create", "launch", "cancel"])
def test_api_role_matrix(role: str, action: str) -> None:
    # given
    owner = make_user(Role.MARKETER)
    segment = _segment(owner)
    campaign = services.campaign_create(user=owner, data=_plan(segment))
    client = _client(role)
    base = f"/api/marketing/campaigns/{campaign.pk}"

    # when
    response = {
        "list": lambda: client.get("/api/marketing/campaigns"),
        "get": lambda: client.get(base),
        "evaluation": lambda: client.get(f"{base}/evaluation"),
        "create": lambda: client.post(
            "/api/marketing/campaigns", _body(segment), "application/json"
        ),
        "launch": lambda: client.post(f"{base}/launch"),
        "cancel": lambda: client.post(f"{base}/cancel", {"reason": "测试"}, "application/json"),
    }[action]()

    # then
    allowed = CHANGE_ROLES if action in ("create", "launch", "cancel") else VIEW_ROLES
    expected = {"create": 201}.get(action, 200) if role in allowed else 403
    assert response.status_code == expected, (role, action, response.content[:200])
    if expected == 403:
        assert Campaign.objects.get(pk=campaign.pk).status == "draft"
        assert Campaign.objects.count() == 1


# ---------------------------------------------------------------------- pages


@pytest.mark.parametrize("role", [*ALL_ROLES, "no_role"])
def test_page_role_matrix(role: str) -> None:
    owner = make_user(Role.MARKETER)
    campaign = services.campaign_create(user=owner, data=_plan(_segment(owner)))
    client = _client(role)
    listed = client.get("/marketing/campaigns/")
    shown = client.get(f"/marketing/campaigns/{campaign.pk}/")
    expected = 200 if role in VIEW_ROLES else 403
    assert (listed.status_code, shown.status_code) == (expected, expected), role


def test_the_pages_plan_launch_and_show_the_evaluation() -> None:
    # given
    client = _client(Role.MARKETER)
    segment = _segment(make_user(Role.MARKETER))
    _customers(10)
    now = timezone.localtime()

    # when
    created = client.post(
        "/marketing/campaigns/",
        {
            "name": "页面活动", "goal_metric": "repurchase_rate", "target_value": "2",
            "segment_id": segment.pk,
            "period_start": (now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"),
            "period_end": (now + timedelta(days=9)).strftime("%Y-%m-%dT%H:%M"),
            "holdout_percent": "20", "offer_kind": "message", "channels": ["sms", "wechat"],
            "message_title": "上新", "message_text": "新品", "frequency_cap_messages": "2",
            "frequency_cap_days": "7",
        },
    )  # fmt: skip
    campaign = Campaign.objects.get()
    launched = client.post(f"/marketing/campaigns/{campaign.pk}/", {"action": "launch"})
    page = client.get(f"/marketing/campaigns/{campaign.pk}/")
    listing = client.get("/marketing/campaigns/")

    # then
    assert created.status_code == 302
    assert (campaign.holdout_share, campaign.target_value) == (Decimal("0.200"), Decimal("0.0200"))
    assert campaign.channels == ["sms", "wechat"]
    assert launched.status_code == 302
    html = page.content.decode()
    assert page.status_code == 200
    assert 'data-testid="campaign-chart"' in html
    assert "campaign-chart-data" in html
    assert 'data-testid="uplift"' in html and "Newcombe" in html
    assert "not reported by this channel" in html
    chart = page.context["chart"]
    assert [s["type"] for s in chart["series"]] == ["bar", "boxplot"]
    assert len(chart["series"][0]["data"]) == 3
    assert "页面活动" in listing.content.decode()
    assert 'href="/marketing/campaigns/"' in listing.content.decode()


def test_the_form_shows_the_refusal_next_to_it() -> None:
    client = _client(Role.MARKETER)
    segment = _segment(make_user(Role.MARKETER))
    response = client.post(
        "/marketing/campaigns/",
        {"name": "x", "goal_metric": "repurchase_rate", "segment_id": segment.pk,
         "period_start": "2026-01-10T00:00", "period_end": "2026-01-01T00:00",
         "offer_kind": "message", "channels": ["sms"], "message_title": "t",
         "message_text": "t"},
    )  # fmt: skip
    assert response.status_code == 422
    assert "campaign.period_end: must be after period_start" in response.content.decode()
    assert Campaign.objects.count() == 0


def test_the_cancel_button_needs_a_reason() -> None:
    client = _client(Role.MARKETER)
    owner = make_user(Role.MARKETER)
    campaign = services.campaign_create(user=owner, data=_plan(_segment(owner)))
    response = client.post(f"/marketing/campaigns/{campaign.pk}/", {"action": "cancel"})
    assert response.status_code == 422
    assert Campaign.objects.get().status == "draft"


# ---------------------------------------------------------------------- CLI


@pytest.mark.django_db(transaction=True)
def test_the_cli_lists_launches_and_evaluates() -> None:
    # given
    marketer = make_user(Role.MARKETER)
    _customers(10)
    campaign = services.campaign_create(user=marketer, data=_plan(_segment(marketer)))
    runner = CliRunner()

    # when
    launched = runner.invoke(marketing_app, ["campaigns", "launch", str(campaign.pk)])
    listed = runner.invoke(marketing_app, ["campaigns", "list", "--json"])
    evaluated = runner.invoke(marketing_app, ["campaigns", "evaluate", str(campaign.pk), "--json"])
    table = runner.invoke(marketing_app, ["campaigns", "evaluate", str(campaign.pk)])
    missing = runner.invoke(marketing_app, ["campaigns", "launch", "999999"])

    # then
    assert launched.exit_code == 0, launched.output
    assert json.loads(launched.stdout.strip().splitlines()[-1])["messaged"] == 9
    rows = json.loads(listed.stdout.strip().splitlines()[-1])
    assert [(r["id"], r["status"], r["treatment"], r["holdout"]) for r in rows] == [
        (campaign.pk, "running", 9, 1)
    ]
    result = json.loads(evaluated.stdout.strip().splitlines()[-1])
    assert result["groups"]["treatment"]["members"] == 9
    assert result["method"] == uplift.NEWCOMBE
    assert table.exit_code == 0 and "uplift" in table.stderr
    assert missing.exit_code == 2
