"""The daily care run: birthday and holiday greetings through the outbox with the grade's
coupon (consent first, never beyond stock, limits or budget), follow-up visits as tickets for
the dedicated agent, and a second run of a day doing nothing."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from patron.care import services
from patron.care.models import CareTouch
from patron.care.tests import factories
from patron.conftest import make_user
from patron.customer.models import Customer
from patron.marketing.models import Coupon
from patron.outbox.models import Message
from patron.service.models import DedicatedAgent, Ticket

pytestmark = pytest.mark.django_db

BIRTHDAY = date(1990, 3, 7)
DAY = date(2026, 3, 7)


def _touch(customer: Customer, kind: str = "birthday") -> CareTouch:
    return CareTouch.objects.get(customer=customer, kind=kind)


# ---------------------------------------------------------------------- birthdays


def test_a_birthday_greeting_goes_out_with_the_grade_s_coupon() -> None:
    # given
    marketer = factories.marketer("marketer-li")
    template = factories.coupon_template(name="生日券 满200减20")
    factories.policy("core", user=marketer, birthday_coupon_template_id=template.pk)
    wang = factories.customer("王小明", grade="core", birthday=BIRTHDAY)
    factories.customer("李四", grade="core", birthday=date(1990, 3, 8))  # not today

    # when
    result = services.care_run(day=DAY)

    # then
    touch = _touch(wang)
    coupon = Coupon.objects.get()
    assert (touch.outcome, touch.offer, touch.coupon, touch.grade) == (
        "messaged",
        "issued",
        coupon,
        "core",
    )
    assert (touch.occasion, touch.occasion_on, touch.run_on) == ("2026", DAY, DAY)
    assert (coupon.customer, coupon.template, coupon.issued_by) == (wang, template, marketer)
    message = touch.message
    assert message is not None
    assert (message.template, message.purpose, message.channel, message.status) == (
        "care.birthday",
        "marketing",
        "email",
        "queued",
    )
    assert message.key == f"care.birthday:{wang.pk}:2026"
    assert message.subject == "祝您生日快乐"
    assert message.body.startswith("王小明，您好：\n\n今天是您的生日，祝您生日快乐，万事如意！\n")
    until = timezone.localdate(coupon.expires_at).isoformat()
    assert (
        f"特为您送上一张满200元减20元优惠券，券码：{coupon.code}，有效期至{until}。" in message.body
    )
    assert "退订请点击" in message.body  # a marketing message carries the unsubscribe link
    assert (result.birthday.due, result.birthday.messaged, result.birthday.coupons) == (1, 1, 1)
    assert result.done == 1


def test_a_greeting_in_english_with_a_percent_off_coupon(settings: object) -> None:
    # given: the site speaks English (the customer file has no language of its own)
    settings.LANGUAGE_CODE = "en"  # type: ignore[attr-defined]
    template = factories.coupon_template(kind="percent_off", value=Decimal("15"))
    factories.policy("potential", birthday_coupon_template_id=template.pk)
    customer = factories.customer("Li Hua", grade="potential", birthday=BIRTHDAY)

    # when
    services.care_run(day=DAY)

    # then
    message = _touch(customer).message
    code = Coupon.objects.get().code
    assert message is not None and message.subject == "Happy birthday!"
    assert "Hello Li Hua,\n\nHappy birthday from all of us" in message.body
    assert f"A coupon for you, 15% off orders of ¥200 or more: code {code}, valid until" in (
        message.body
    )


def test_without_a_coupon_in_the_policy_the_greeting_goes_out_alone() -> None:
    # given: the default policy has no coupons
    customer = factories.customer("王小明", grade="ordinary", birthday=BIRTHDAY)

    # when
    services.care_run(day=DAY)

    # then
    touch = _touch(customer)
    assert (touch.outcome, touch.offer, touch.coupon) == ("messaged", "", None)
    assert touch.message is not None and "感谢您一直以来的支持！" in touch.message.body
    assert not Coupon.objects.exists()


def test_a_customer_not_graded_yet_is_cared_for_as_ordinary() -> None:
    customer = factories.customer("新客", grade=None, birthday=BIRTHDAY)
    services.care_run(day=DAY)
    assert _touch(customer).grade == "ordinary"


@pytest.mark.parametrize(
    ("day", "greeted"),
    [
        (date(2026, 2, 28), True),  # no 29 February in 2026: greeted the day before March
        (date(2026, 3, 1), False),
        (date(2028, 2, 28), False),  # a leap year: on their own day
        (date(2028, 2, 29), True),
    ],
)
def test_a_leapling_is_greeted_on_28_february_in_common_years(day: date, greeted: bool) -> None:
    # given
    customer = factories.customer("闰日", grade="core", birthday=date(1996, 2, 29))
    # when
    services.care_run(day=day)
    # then
    assert CareTouch.objects.filter(customer=customer, kind="birthday").exists() is greeted


def test_turning_the_birthday_greeting_off_stops_it() -> None:
    # given: changing the policy changes what the automation does
    customer = factories.customer("王小明", grade="core", birthday=BIRTHDAY)
    factories.policy("core", sends_birthday_greeting=False)
    # when
    result = services.care_run(day=DAY)
    # then
    assert result.birthday.due == 0
    assert not CareTouch.objects.filter(customer=customer).exists()


def test_erased_and_inactive_customers_are_not_greeted() -> None:
    factories.customer("已匿名", grade="core", birthday=BIRTHDAY, status=Customer.Status.ERASED)
    factories.customer("停用", grade="core", birthday=BIRTHDAY, status=Customer.Status.INACTIVE)
    assert services.care_run(day=DAY).birthday.due == 0
    assert not Message.objects.exists()


# ---------------------------------------------------------------------- consent


@pytest.mark.parametrize(
    ("marketing", "reason"),
    [
        (False, "the customer withdrew marketing consent for email"),
        (None, "no marketing consent for email on record"),
    ],
)
def test_without_marketing_consent_nothing_is_sent_and_no_coupon_spent(
    marketing: bool | None, reason: str
) -> None:
    # given
    template = factories.coupon_template(stock=10)
    factories.policy("core", birthday_coupon_template_id=template.pk)
    customer = factories.customer("王小明", grade="core", birthday=BIRTHDAY, marketing=marketing)

    # when
    result = services.care_run(day=DAY)

    # then
    touch = _touch(customer)
    assert (touch.outcome, touch.reason, touch.message, touch.coupon) == (
        "suppressed",
        reason,
        None,
        None,
    )
    assert not Message.objects.exists()
    assert not Coupon.objects.exists()
    assert (result.birthday.suppressed, result.birthday.messaged) == (1, 0)


def test_a_customer_with_no_address_is_not_reached() -> None:
    customer = factories.customer("无联系方式", grade="core", birthday=BIRTHDAY, email="")
    services.care_run(day=DAY)
    touch = _touch(customer)
    assert (touch.outcome, touch.reason) == (
        "suppressed",
        "the customer has neither an e-mail address nor a phone",
    )


# ---------------------------------------------------------------------- stock, limits, budget


def test_the_budget_is_never_exceeded_the_greeting_goes_without_the_coupon() -> None:
    # given: a budget of 50 for coupons of 20 off; 20 already given and 20 promised (an open
    # code): one more would promise 60
    template = factories.coupon_template(budget=Decimal("50.00"))
    marketer = factories.marketer()
    factories.policy("core", user=marketer, birthday_coupon_template_id=template.pk)
    other = factories.customer("老客", grade="potential")
    Coupon.objects.create(
        code="USED000001",
        template=template,
        customer=other,
        status=Coupon.Status.REDEEMED,
        issued_at=timezone.now(),
        discount_amount=Decimal("20.00"),
        order_total=Decimal("300.00"),
    )
    Coupon.objects.create(
        code="OPEN000001", template=template, customer=other, issued_at=timezone.now()
    )
    customer = factories.customer("王小明", grade="core", birthday=BIRTHDAY)

    # when
    result = services.care_run(day=DAY)

    # then
    touch = _touch(customer)
    assert (touch.outcome, touch.offer, touch.coupon) == ("messaged", "over_budget", None)
    assert (
        touch.reason
        == f"coupon template {template.name!r}: 40.00 of its budget 50.00 given or promised"
    )
    assert Coupon.objects.count() == 2
    assert touch.message is not None and "感谢您一直以来的支持！" in touch.message.body
    assert (result.birthday.coupons, result.birthday.offers_skipped) == (0, 1)


def test_an_expired_open_code_no_longer_counts_against_the_budget() -> None:
    template = factories.coupon_template(budget=Decimal("20.00"))
    factories.policy("core", birthday_coupon_template_id=template.pk)
    other = factories.customer("老客", grade="potential")
    Coupon.objects.create(
        code="GONE000001",
        template=template,
        customer=other,
        issued_at=timezone.now() - timedelta(days=40),
        expires_at=timezone.now() - timedelta(days=10),
    )
    customer = factories.customer("王小明", grade="core", birthday=BIRTHDAY)
    services.care_run(day=DAY)
    assert _touch(customer).offer == "issued"


def test_the_stock_runs_out_in_id_order() -> None:
    # given: one code left for two birthdays
    template = factories.coupon_template(stock=1)
    factories.policy("core", birthday_coupon_template_id=template.pk)
    first = factories.customer("甲", grade="core", birthday=BIRTHDAY)
    second = factories.customer("乙", grade="core", birthday=BIRTHDAY)

    # when
    services.care_run(day=DAY)

    # then
    assert _touch(first).offer == "issued"
    assert (_touch(second).offer, _touch(second).outcome) == ("out_of_stock", "messaged")
    assert Coupon.objects.count() == 1


def test_a_customer_at_the_template_s_limit_gets_no_second_coupon() -> None:
    template = factories.coupon_template(per_customer_limit=1)
    factories.policy("core", birthday_coupon_template_id=template.pk)
    customer = factories.customer("王小明", grade="core", birthday=BIRTHDAY)
    Coupon.objects.create(
        code="HELD000001", template=template, customer=customer, issued_at=timezone.now()
    )
    services.care_run(day=DAY)
    touch = _touch(customer)
    assert (touch.offer, touch.reason) == (
        "coupon_limit",
        f"holds 1 coupon(s) of {template.name!r} (the limit is 1)",
    )


def test_coupons_are_issued_only_while_whoever_set_them_may_issue_coupons() -> None:
    # given: the marketer who chose the coupon has left
    marketer = factories.marketer("marketer-gone")
    template = factories.coupon_template()
    factories.policy("core", user=marketer, birthday_coupon_template_id=template.pk)
    marketer.is_active = False
    marketer.save()
    customer = factories.customer("王小明", grade="core", birthday=BIRTHDAY)

    # when
    services.care_run(day=DAY)

    # then
    touch = _touch(customer)
    assert (touch.outcome, touch.offer) == ("messaged", "no_issuer")
    assert "marketer-gone, who may not issue coupons" in touch.reason
    assert not Coupon.objects.exists()


def test_a_template_switched_off_gives_no_coupon() -> None:
    template = factories.coupon_template()
    factories.policy("core", birthday_coupon_template_id=template.pk)
    template.is_active = False
    template.save()
    customer = factories.customer("王小明", grade="core", birthday=BIRTHDAY)
    services.care_run(day=DAY)
    assert _touch(customer).offer == "template_off"


# ---------------------------------------------------------------------- holidays


def test_mid_autumn_is_greeted_on_its_real_date_minus_the_days_ahead() -> None:
    # given: core greets Mid-Autumn (25 September 2026) three days ahead with a coupon;
    # potential two days ahead without; ordinary not at all
    template = factories.coupon_template(name="中秋券")
    factories.policy("core", holiday_coupon_template_id=template.pk)
    core = factories.customer("王核心", grade="core")
    potential = factories.customer("李潜力", grade="potential")
    factories.customer("赵普通", grade="ordinary")

    # when
    before = services.care_run(day=date(2026, 9, 21))
    on_the_day = services.care_run(day=date(2026, 9, 22))
    next_day = services.care_run(day=date(2026, 9, 23))

    # then
    assert before.holiday.due == 0
    assert (on_the_day.holiday.messaged, on_the_day.holiday.coupons) == (1, 1)
    assert (next_day.holiday.messaged, next_day.holiday.already) == (1, 1)  # potential's day
    touch = _touch(core, "holiday")
    assert (touch.occasion, touch.occasion_on, touch.run_on, touch.offer) == (
        "mid_autumn:2026",
        date(2026, 9, 25),
        date(2026, 9, 22),
        "issued",
    )
    assert touch.message is not None
    assert touch.message.subject == "中秋快乐，阖家团圆"
    assert "值此中秋节之际，祝您和家人中秋快乐，阖家团圆！" in touch.message.body
    assert touch.message.key == f"care.holiday:mid_autumn:2026:{core.pk}"
    later = _touch(potential, "holiday")
    assert (later.run_on, later.offer, later.coupon) == (date(2026, 9, 23), "", None)
    assert CareTouch.objects.filter(kind="holiday").count() == 2


def test_spring_festival_2026_for_the_ordinary_grade() -> None:
    customer = factories.customer("赵普通", grade="ordinary")
    assert services.care_run(day=date(2026, 2, 15)).holiday.due == 0
    services.care_run(day=date(2026, 2, 16))  # the default: one day ahead of 17 February
    touch = _touch(customer, "holiday")
    assert (touch.occasion, touch.occasion_on) == ("spring_festival:2026", date(2026, 2, 17))
    assert touch.message is not None and touch.message.subject == "春节快乐"


def test_removing_a_holiday_from_the_policy_stops_its_greetings() -> None:
    factories.customer("赵普通", grade="ordinary")
    factories.policy("ordinary", holidays=[])
    assert services.care_run(day=date(2026, 2, 16)).holiday.due == 0
    assert not Message.objects.exists()


# ---------------------------------------------------------------------- visits

JOINED = date(2025, 11, 1)


@pytest.fixture
def core_customer() -> Customer:
    """A core customer since 1 November 2025 (the grade's visits began before)."""
    return factories.customer("王核心", grade="core", grade_since=JOINED)


def _first_visit(customer: Customer, interval: int = 90) -> date:
    """The first visit falls within the first interval, on a day set by the customer's id."""
    return JOINED + timedelta(days=customer.pk % interval)


def test_a_due_visit_becomes_a_ticket_for_the_dedicated_agent(core_customer: Customer) -> None:
    # given
    agent = make_user("service_agent", username="agent-wang")
    DedicatedAgent.objects.create(customer=core_customer, user=agent)
    due = _first_visit(core_customer)

    # when
    early = services.care_run(day=due - timedelta(days=1))
    result = services.care_run(day=due)

    # then
    assert early.visit.due == 0
    ticket = Ticket.objects.get()
    assert (ticket.customer, ticket.assignee, ticket.category, ticket.channel) == (
        core_customer,
        agent,
        "follow-up-visit",
        "phone",
    )
    assert ticket.subject == "定期回访 Follow-up visit (核心客户 Core)"
    assert f"核心客户每 90 天回访一次（本次应于 {due} 回访；上次回访：无 none）" in (
        ticket.messages.get().body
    )
    touch = _touch(core_customer, "visit")
    assert (touch.occasion, touch.outcome, touch.ticket, touch.reason) == (
        due.isoformat(),
        "visit_opened",
        ticket,
        "to the dedicated agent",
    )
    assert (result.visit.visits, result.visit.to_dedicated_agent) == (1, 1)


def test_without_a_dedicated_agent_the_desk_routes_the_visit(core_customer: Customer) -> None:
    # when: overdue visits are opened
    result = services.care_run(day=date(2026, 2, 10))
    # then: nobody is on duty, so it waits in the queue
    ticket = Ticket.objects.get()
    assert ticket.assignee is None
    touch = _touch(core_customer, "visit")
    assert touch.reason == "routed by the desk (no dedicated agent for this customer)"
    assert (result.visit.visits, result.visit.to_dedicated_agent) == (1, 0)


def test_the_next_visit_waits_for_the_last_one_then_the_interval(core_customer: Customer) -> None:
    # given: the first visit, opened on 10 February 2026
    services.care_run(day=date(2026, 2, 10))
    ticket = Ticket.objects.get()

    # when: still open three months on, nothing new; solved, the next is due 90 days after
    # the last one was opened
    assert services.care_run(day=date(2026, 5, 20)).visit.due == 0
    Ticket.objects.filter(pk=ticket.pk).update(status=Ticket.Status.SOLVED)
    assert services.care_run(day=date(2026, 5, 10)).visit.due == 0
    again = services.care_run(day=date(2026, 5, 11))

    # then
    assert again.visit.visits == 1
    assert list(
        CareTouch.objects.filter(kind="visit").order_by("run_on").values_list("occasion", flat=True)
    ) == [_first_visit(core_customer).isoformat(), "2026-05-11"]


def test_visits_follow_the_policy_s_interval(core_customer: Customer) -> None:
    factories.policy("core", visit_interval_days=30)  # the first within 30 days of joining
    first = _first_visit(core_customer, 30)
    assert services.care_run(day=first).visit.visits == 1
    Ticket.objects.update(status=Ticket.Status.SOLVED)  # the agent called and noted it
    assert services.care_run(day=first + timedelta(days=29)).visit.due == 0
    assert services.care_run(day=first + timedelta(days=30)).visit.visits == 1
    factories.policy("core", visit_interval_days=None)
    assert services.care_run(day=date(2026, 6, 1)).visit.due == 0


def test_switching_visits_on_spreads_the_first_ones_from_that_day() -> None:
    # given: a potential customer for months; visits for potential customers switched on today
    customer = factories.customer("李潜力", grade="potential", grade_since=date(2025, 1, 1))
    today = timezone.localdate()
    assert services.care_run(day=today).visit.due == 0
    row = factories.policy("potential", visit_interval_days=180)
    assert row.visits_from == today
    # when
    due = today + timedelta(days=customer.pk % 180)
    result = services.care_run(day=due)
    # then: not all at once on the first run, but within one interval of it
    assert result.visit.visits == 1
    assert _touch(customer, "visit").grade == "potential"


# ---------------------------------------------------------------------- idempotency


def test_running_a_day_twice_sends_nothing_twice(core_customer: Customer) -> None:
    # given: a birthday, a holiday and a visit on the same day
    template = factories.coupon_template()
    factories.policy(
        "core", birthday_coupon_template_id=template.pk, holiday_coupon_template_id=template.pk
    )
    Customer.objects.filter(pk=core_customer.pk).update(birthday=date(1988, 9, 22))
    first = services.care_run(day=date(2026, 9, 22))
    counts = (
        Message.objects.count(),
        Coupon.objects.count(),
        Ticket.objects.count(),
        CareTouch.objects.count(),
    )

    # when
    second = services.care_run(day=date(2026, 9, 22))

    # then
    assert first.done == 3 and counts == (2, 2, 1, 3)
    assert second.done == 0
    assert (second.birthday.already, second.holiday.already, second.visit.due) == (1, 1, 0)
    assert (
        Message.objects.count(),
        Coupon.objects.count(),
        Ticket.objects.count(),
        CareTouch.objects.count(),
    ) == counts


def test_a_run_that_did_something_is_audited() -> None:
    from patron.audit.models import AuditEvent

    factories.customer("王小明", grade="core", birthday=BIRTHDAY)
    services.care_run(day=DAY)
    services.care_run(day=DAY)
    events = AuditEvent.objects.filter(entity_type="care.run")
    assert [(e.entity_id, e.actor_label) for e in events] == [("2026-03-07", "care automation")]
    assert events[0].summary == (
        "care for 2026-03-07: 1 birthday and 0 holiday greetings queued, 0 coupons, 0 visits opened"
    )


def test_a_day_beyond_the_holiday_calendar_is_refused() -> None:
    from patron.errors import ValidationFailed

    with pytest.raises(ValidationFailed, match="care day 2100-01-01: the holiday calendar"):
        services.care_run(day=date(2100, 1, 1))
