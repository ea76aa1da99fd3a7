from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from patron.account.roles import Role
from patron.audit.models import AuditEvent
from patron.conftest import NO_ROLE, CustomerFile, at, make_customer, make_user, write_events
from patron.customer import selectors
from patron.customer.selectors import (
    BehaviourEvent,
    ConsentView,
    OrderLineView,
    PaymentView,
    TimelineEntry,
)
from patron.errors import NotFound, PermissionDenied, ValidationFailed

pytestmark = pytest.mark.django_db


def names(page: selectors.Page[selectors.CustomerSummary]) -> list[str]:
    return [item.name for item in page.items]


# --- customer_list ------------------------------------------------------------------------------


def test_list_returns_newest_first_with_counts(customer_file: CustomerFile) -> None:
    # given
    user = make_user(Role.ADMINISTRATOR)

    # when
    page = selectors.customer_list(user=user)

    # then
    assert names(page) == ["王芳", "李华", "王小明"]
    assert page.count == 3
    assert page.num_pages == 1
    wang = page.items[2]
    assert wang.order_count == 3
    assert wang.total_spent == Decimal(
        "299.00"
    )  # the returned and the cancelled orders do not count
    assert page.items[0].order_count == 0
    assert page.items[0].total_spent == Decimal("0.00")


def test_list_searches_name_substring(customer_file: CustomerFile) -> None:
    # given
    user = make_user(Role.SERVICE_AGENT)

    # when
    page = selectors.customer_list(user=user, query=" 王 ")

    # then
    assert names(page) == ["王芳", "王小明"]


@pytest.mark.parametrize(
    "query",
    [
        "13812341234",
        "+86 138-1234-1234",
        "xiaoming.wang@example.com",
        "XiaoMing.Wang@Example.com",
        "C1001",
    ],
)
def test_list_finds_exact_phone_email_or_external_id(
    customer_file: CustomerFile, query: str
) -> None:
    # given
    user = make_user(Role.MARKETER)

    # when
    page = selectors.customer_list(user=user, query=query)

    # then
    assert names(page) == ["王小明"]


@pytest.mark.parametrize("query", ["1381234", "xiaoming", "C100"])
def test_list_does_not_match_partial_phone_email_or_id(
    customer_file: CustomerFile, query: str
) -> None:
    # given
    user = make_user(Role.ADMINISTRATOR)

    # when
    page = selectors.customer_list(user=user, query=query)

    # then
    assert page.count == 0
    assert page.items == ()


def test_list_filters_by_province_kind_and_channel(customer_file: CustomerFile) -> None:
    # given
    user = make_user(Role.ANALYST)

    # when
    by_province = selectors.customer_list(user=user, province="广东")
    by_kind = selectors.customer_list(user=user, kind="individual")
    by_channel = selectors.customer_list(user=user, source_channel="third_party")
    combined = selectors.customer_list(
        user=user, query="王", province="上海", kind="individual", source_channel="online"
    )

    # then
    assert names(by_province) == ["李华"]
    assert names(by_kind) == ["王芳", "王小明"]
    assert names(by_channel) == ["王芳"]
    assert names(combined) == ["王小明"]


def test_list_pages(db: None) -> None:
    # given
    user = make_user(Role.ADMINISTRATOR)
    for number in range(5):
        make_customer(name=f"Customer {number}")

    # when
    first = selectors.customer_list(user=user, page=1, page_size=2)
    last = selectors.customer_list(user=user, page=3, page_size=2)
    beyond = selectors.customer_list(user=user, page=4, page_size=2)

    # then
    assert names(first) == ["Customer 4", "Customer 3"]
    assert (first.count, first.num_pages, first.has_previous, first.has_next) == (5, 3, False, True)
    assert (first.start_index, first.end_index) == (1, 2)
    assert names(last) == ["Customer 0"]
    assert (last.has_previous, last.has_next, last.start_index, last.end_index) == (
        True,
        False,
        5,
        5,
    )
    assert beyond.items == ()
    assert beyond.count == 5


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"kind": "robot"}, "unknown customer kind 'robot'"),
        ({"source_channel": "fax"}, "unknown source channel 'fax'"),
        ({"page": 0}, "page must be between 1 and 100000, got 0"),
        ({"page": 100_001}, "page must be between 1 and 100000, got 100001"),
        ({"page_size": 201}, "page_size must be between 1 and 200, got 201"),
    ],
)
def test_list_refuses_bad_parameters(db: None, arguments: dict[str, object], message: str) -> None:
    # given
    user = make_user(Role.ADMINISTRATOR)

    # when
    with pytest.raises(ValidationFailed) as caught:
        selectors.customer_list(user=user, **arguments)  # type: ignore[arg-type]

    # then
    assert caught.value.message == message


def test_list_masks_contact_data_without_pii_permission(customer_file: CustomerFile) -> None:
    # given
    agent = make_user(Role.SERVICE_AGENT)
    manager = make_user(Role.OPERATIONS_MANAGER)

    # when
    masked = selectors.customer_list(user=agent, query="C1001").items[0]
    clear = selectors.customer_list(user=manager, query="C1001").items[0]

    # then
    assert (masked.phone, masked.email) == ("138****1234", "x***@example.com")
    assert (clear.phone, clear.email) == ("13812341234", "xiaoming.wang@example.com")


def test_list_is_denied_without_a_role(customer_file: CustomerFile) -> None:
    # given
    user = make_user(NO_ROLE)

    # when
    with pytest.raises(PermissionDenied) as caught:
        selectors.customer_list(user=user)

    # then
    assert caught.value.message == "you do not have the permission 'customer.view_customer'"


def test_provinces_are_distinct_and_sorted(customer_file: CustomerFile) -> None:
    # given
    user = make_user(Role.MARKETER)

    # when
    provinces = selectors.customer_provinces(user=user)

    # then
    assert provinces == sorted(["上海", "广东", "浙江"])


# --- customer_profile ---------------------------------------------------------------------------


def test_profile_of_a_missing_customer_is_not_found(db: None) -> None:
    # given
    user = make_user(Role.ADMINISTRATOR)

    # when
    with pytest.raises(NotFound) as caught:
        selectors.customer_profile(user=user, customer_id=424242)

    # then
    assert caught.value.message == "customer 424242 does not exist"
    assert caught.value.status == 404


def test_profile_is_denied_without_a_role(customer_file: CustomerFile) -> None:
    # given
    user = make_user(NO_ROLE)

    # when / then
    with pytest.raises(PermissionDenied):
        selectors.customer_profile(user=user, customer_id=customer_file.customer.pk)


def test_profile_shows_pii_in_full_to_a_manager(customer_file: CustomerFile, lake: Path) -> None:
    # given
    user = make_user(Role.OPERATIONS_MANAGER)

    # when
    profile = selectors.customer_profile(user=user, customer_id=customer_file.customer.pk)

    # then
    customer = profile.customer
    assert profile.is_pii_visible is True
    assert (customer.phone, customer.email, customer.id_number) == (
        "13812341234",
        "xiaoming.wang@example.com",
        "110101199003074514",
    )
    assert profile.addresses[0].detail == "世纪大道100号1号楼101室"
    assert (customer.name, customer.kind, customer.gender, customer.birthday) == (
        "王小明",
        "individual",
        "male",
        date(1990, 3, 7),
    )


def test_profile_masks_pii_for_an_agent(customer_file: CustomerFile, lake: Path) -> None:
    # given
    user = make_user(Role.SERVICE_AGENT)

    # when
    profile = selectors.customer_profile(user=user, customer_id=customer_file.customer.pk)

    # then
    customer = profile.customer
    assert profile.is_pii_visible is False
    assert (customer.phone, customer.email, customer.id_number) == (
        "138****1234",
        "x***@example.com",
        "110***********4514",
    )
    assert profile.addresses[0].detail == "世纪大道10****"


def test_profile_lists_tags_and_the_consents_in_force(
    customer_file: CustomerFile, lake: Path
) -> None:
    # given
    user = make_user(Role.MARKETER)

    # when
    profile = selectors.customer_profile(user=user, customer_id=customer_file.customer.pk)

    # then
    assert [tag.name for tag in profile.tags] == ["Frequent buyer", "VIP"]
    assert profile.consents == (
        ConsentView(
            purpose="marketing",
            purpose_label="营销 Marketing",
            channel="sms",
            channel_label="短信 SMS",
            is_granted=False,
            recorded_at=at("2024-06-01 02:00"),
            evidence="",
        ),
        ConsentView(
            purpose="service",
            purpose_label="服务通知 Service messages",
            channel="app",
            channel_label="App push",
            is_granted=True,
            recorded_at=at("2024-01-05 02:00"),
            evidence="",
        ),
    )


def test_profile_orders_are_newest_first_with_lines_and_payments(
    customer_file: CustomerFile, lake: Path
) -> None:
    # given
    user = make_user(Role.RISK_ANALYST)

    # when
    profile = selectors.customer_profile(user=user, customer_id=customer_file.customer.pk)

    # then
    assert [o.external_id for o in profile.orders] == ["SO-0003", "SO-0002", "SO-0001"]
    first = profile.orders[2]
    assert first.total_amount == Decimal("299.00")
    assert first.discount_amount == Decimal("20.00")
    assert first.lines == (
        OrderLineView(
            line_no=1,
            product_external_id="SKU-1",
            product_name="Silk scarf",
            quantity=1,
            unit_price=Decimal("199.00"),
            amount=Decimal("199.00"),
            currency="CNY",
        ),
        OrderLineView(
            line_no=2,
            product_external_id="",
            product_name="Tea set",
            quantity=2,
            unit_price=Decimal("50.00"),
            amount=Decimal("100.00"),
            currency="CNY",
        ),
    )
    payment = first.payments[0]
    assert len(first.payments) == 1
    assert isinstance(payment, PaymentView)
    assert (payment.method, payment.status, payment.amount, payment.paid_at) == (
        "alipay",
        "succeeded",
        Decimal("299.00"),
        at("2024-02-01 04:31"),
    )
    assert profile.orders[0].payments == ()


def test_profile_stats_returns_reviews_shipments_and_tickets(
    customer_file: CustomerFile, lake: Path
) -> None:
    # given
    user = make_user(Role.ADMINISTRATOR)

    # when
    profile = selectors.customer_profile(user=user, customer_id=customer_file.customer.pk)

    # then
    stats = profile.stats
    assert (stats.order_count, stats.total_spent, stats.currency) == (3, Decimal("299.00"), "CNY")
    assert (stats.return_count, stats.review_count, stats.average_rating) == (1, 1, 4.0)
    assert (stats.ticket_count, stats.complaint_count) == (1, 1)
    (returned,) = profile.returns
    assert (
        returned.order_external_id,
        returned.product_name,
        returned.reason,
        returned.refund_amount,
    ) == (
        "SO-0002",
        "Rice cooker",
        "Damaged on arrival",
        Decimal("1288.50"),
    )
    (review,) = profile.reviews
    assert (review.rating, review.title, review.product_name, review.order_external_id) == (
        4,
        "Nice scarf",
        "Silk scarf",
        "SO-0001",
    )
    (shipment,) = profile.shipments
    assert (shipment.carrier, shipment.delay_days, shipment.is_late) == ("SF Express", 2, True)
    (ticket,) = profile.tickets
    assert (ticket.subject, ticket.is_complaint, ticket.order_external_id, ticket.priority) == (
        "Rice cooker arrived broken",
        True,
        "SO-0002",
        "high",
    )


def test_profile_timeline_merges_everything_newest_first(
    customer_file: CustomerFile, lake: Path
) -> None:
    # given
    user = make_user(Role.ADMINISTRATOR)

    # when
    profile = selectors.customer_profile(user=user, customer_id=customer_file.customer.pk)

    # then
    audit = AuditEvent.objects.get(customer_id=customer_file.customer.pk)
    assert [(e.kind, e.reference) for e in profile.timeline] == [
        ("audit", f"customer:{customer_file.customer.pk}"),
        ("order", "SO-0003"),
        ("return", "SO-0002"),
        ("ticket", "TK-0001"),
        ("payment", "SO-0002"),
        ("order", "SO-0002"),
        ("review", "RV-0001"),
        ("payment", "SO-0001"),
        ("order", "SO-0001"),
        ("registration", "C1001"),
    ]
    assert profile.timeline[0] == TimelineEntry(
        at=audit.occurred_at,
        kind="audit",
        reference=f"customer:{customer_file.customer.pk}",
        labels=("update",),
        summary="ops-lead · tags changed",
    )
    assert profile.timeline[2] == TimelineEntry(
        at=at("2024-03-15 02:00"),
        kind="return",
        reference="SO-0002",
        labels=("退货 Return", "已退款 Refunded"),
        summary="Damaged on arrival",
        amount=Decimal("1288.50"),
        currency="CNY",
    )


def test_profile_hides_sections_the_role_may_not_see(
    customer_file: CustomerFile, lake: Path
) -> None:
    # given: auditors see customers, tickets (read only) and the audit log, not orders
    user = make_user(Role.AUDITOR)

    # when
    profile = selectors.customer_profile(user=user, customer_id=customer_file.customer.pk)

    # then
    assert (profile.may_view_commerce, profile.may_view_tickets, profile.may_view_audit) == (
        False,
        True,
        True,
    )
    assert profile.orders == profile.returns == profile.reviews == profile.shipments == ()
    assert profile.events == ()
    assert profile.stats.order_count == 0
    assert {e.kind for e in profile.timeline} <= {"audit", "ticket", "registration"}


def test_profile_reads_recent_events_from_the_lake(
    customer_file: CustomerFile, lake_with_events: Path
) -> None:
    # given
    user = make_user(Role.MARKETER)

    # when
    profile = selectors.customer_profile(user=user, customer_id=customer_file.customer.pk)

    # then: only shop:C1001's events, newest first
    assert profile.events == (
        BehaviourEvent(
            occurred_at=at("2024-05-02 09:00"),
            event_type="add_to_cart",
            item_external_id="SKU-1",
            category_external_id="CAT-1",
            query="",
            session_id="s2",
        ),
        BehaviourEvent(
            occurred_at=at("2024-05-01 01:05"),
            event_type="search",
            item_external_id="",
            category_external_id="",
            query="围巾",
            session_id="s1",
        ),
        BehaviourEvent(
            occurred_at=at("2024-05-01 01:00"),
            event_type="browse",
            item_external_id="SKU-1",
            category_external_id="CAT-1",
            query="",
            session_id="s1",
        ),
    )


def test_events_are_empty_when_the_lake_has_no_events_folder(
    customer_file: CustomerFile, lake: Path
) -> None:
    # given: an empty lake
    user = make_user(Role.ANALYST)

    # when
    events = selectors.customer_recent_events(user=user, customer_id=customer_file.customer.pk)

    # then
    assert events == ()


def test_events_are_limited_to_the_newest(lake: Path) -> None:
    # given
    user = make_user(Role.ANALYST)
    customer = make_customer(source="shop", external_id="C1")
    rows = [
        {
            "source": "shop",
            "customer_external_id": "C1",
            "event_type": "browse",
            "occurred_at": at(f"2024-05-{day:02d} 08:00"),
            "item_external_id": f"SKU-{day}",
            "category_external_id": None,
            "query": None,
            "session_id": None,
        }
        for day in range(1, 11)
    ]
    write_events(lake, rows)

    # when
    events = selectors.customer_recent_events(user=user, customer_id=customer.pk, limit=3)

    # then
    assert [e.item_external_id for e in events] == ["SKU-10", "SKU-9", "SKU-8"]


def test_events_survive_an_unreadable_lake(customer_file: CustomerFile, lake: Path) -> None:
    # given: a file that is not Parquet where the events should be
    broken = lake / "events" / "date=2024-05-01"
    broken.mkdir(parents=True)
    (broken / "part-0.parquet").write_bytes(b"not parquet")
    user = make_user(Role.ANALYST)

    # when
    events = selectors.customer_recent_events(user=user, customer_id=customer_file.customer.pk)

    # then
    assert events == ()


def test_events_are_denied_without_commerce_permission(
    customer_file: CustomerFile, lake: Path
) -> None:
    # given
    user = make_user(Role.AUDITOR)

    # when / then
    with pytest.raises(PermissionDenied):
        selectors.customer_recent_events(user=user, customer_id=customer_file.customer.pk)


# --- customer_orders and customer_timeline -------------------------------------------------------


def test_orders_are_paged_newest_first(customer_file: CustomerFile) -> None:
    # given
    user = make_user(Role.ANALYST)

    # when
    result = selectors.customer_orders(
        user=user, customer_id=customer_file.customer.pk, page=2, page_size=2
    )

    # then
    assert result.customer_name == "王小明"
    assert [o.external_id for o in result.orders.items] == ["SO-0001"]
    assert (result.orders.count, result.orders.num_pages) == (3, 2)


def test_orders_are_denied_without_commerce_permission(customer_file: CustomerFile) -> None:
    # given
    user = make_user(Role.AUDITOR)

    # when
    with pytest.raises(PermissionDenied) as caught:
        selectors.customer_orders(user=user, customer_id=customer_file.customer.pk)

    # then
    assert caught.value.message == "you do not have the permission 'commerce.view_order'"


def test_timeline_is_limited(customer_file: CustomerFile) -> None:
    # given
    user = make_user(Role.SERVICE_AGENT)

    # when
    timeline = selectors.customer_timeline(
        user=user, customer_id=customer_file.customer.pk, limit=2
    )

    # then: agents see no audit entries
    assert [(e.kind, e.reference) for e in timeline] == [
        ("order", "SO-0003"),
        ("return", "SO-0002"),
    ]
