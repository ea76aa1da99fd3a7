"""Segments: a rule compiled to one queryset over every kind of field, previews, saving new
versions (audited), members, refresh and snapshots."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from patron.account.roles import Role
from patron.audit.models import AuditEvent
from patron.commerce.models import Order
from patron.conftest import make_customer, make_order, make_user
from patron.customer.models import Customer
from patron.errors import Conflict, PermissionDenied, ValidationFailed
from patron.marketing import rules, selectors, services
from patron.marketing.models import Segment, SegmentMembership, SegmentVersion
from patron.marketing.tests.factories import certify, consent, score, tier

pytestmark = pytest.mark.django_db


def _ids(rule: dict[str, Any]) -> list[str]:
    queryset = selectors.segment_queryset(rule)
    return sorted(queryset.values_list("name", flat=True))


def _when(days_ago: int) -> Any:
    return timezone.now() - timedelta(days=days_ago)


@pytest.fixture
def shop() -> dict[str, Customer]:
    """Four customers: 甲 core in 浙江 with two recent orders, SMS consent, gold, silver tier;
    乙 potential in 江苏, one old order, consent withdrawn; 丙 business, no score; 丁 erased."""
    jia = make_customer(name="甲", province="浙江", city="杭州", registered_at=_when(400))
    yi = make_customer(name="乙", province="江苏", city="南京", registered_at=_when(30))
    bing = make_customer(name="丙", kind="business", province="", registered_at=None)
    make_customer(name="丁", province="浙江", status=Customer.Status.ERASED)
    score(
        jia,
        grade="core",
        rfm_segment="important_value",
        churn_probability=0.1,
        clv_12m=Decimal("3200.00"),
        credit_score=820,
        p_alive=0.95,
        expected_orders_90d=2.5,
        cluster_name="高价值",
    )
    score(
        yi,
        grade="potential",
        rfm_segment="general_win_back",
        churn_probability=0.7,
        clv_12m=Decimal("150.00"),
        credit_score=610,
        p_alive=0.3,
        expected_orders_90d=0.2,
    )
    make_order(jia, external_id="O1", placed_at=_when(10), paid_at=_when(10), total="800.00")
    make_order(jia, external_id="O2", placed_at=_when(100), paid_at=_when(100), total="450.50")
    make_order(
        jia,
        external_id="O3",
        placed_at=_when(5),
        total="999.00",
        status=Order.Status.CANCELLED,
        paid_at=_when(5),
    )
    make_order(yi, external_id="O4", placed_at=_when(500), paid_at=_when(500), total="120.00")
    consent(jia, "marketing", "sms", True, days_ago=50)
    consent(yi, "marketing", "sms", True, days_ago=50)
    consent(yi, "marketing", "sms", False, days_ago=5)  # the latest row is in force
    certify(jia, "gold")
    tier(jia, "silver")
    return {"甲": jia, "乙": yi, "丙": bing}


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"field": "kind", "op": "eq", "value": "business"}, ["丙"]),
        ({"field": "province", "op": "in", "value": ["浙江", "江苏"]}, ["乙", "甲"]),
        ({"field": "province", "op": "is_null"}, ["丙"]),
        ({"field": "city", "op": "ne", "value": "杭州"}, ["丙", "乙"]),
        ({"field": "grade", "op": "eq", "value": "core"}, ["甲"]),
        ({"field": "grade", "op": "ne", "value": "core"}, ["丙", "乙"]),
        ({"field": "grade", "op": "is_null"}, ["丙"]),
        ({"field": "rfm_segment", "op": "not_in", "value": ["important_value"]}, ["丙", "乙"]),
        ({"field": "churn_probability", "op": "gte", "value": 0.5}, ["乙"]),
        ({"field": "clv_12m", "op": "between", "value": [100, 3200]}, ["乙", "甲"]),
        ({"field": "credit_score", "op": "lt", "value": 700}, ["乙"]),
        ({"field": "p_alive", "op": "gt", "value": 0.9}, ["甲"]),
        ({"field": "expected_orders_90d", "op": "lte", "value": 0.2}, ["乙"]),
        ({"field": "cluster_name", "op": "eq", "value": "高价值"}, ["甲"]),
        ({"field": "orders_count", "op": "eq", "value": 2}, ["甲"]),
        ({"field": "orders_count", "op": "eq", "value": 0}, ["丙"]),
        ({"field": "spend_365d", "op": "eq", "value": 1250.5}, ["甲"]),
        ({"field": "spend_365d", "op": "lt", "value": 1}, ["丙", "乙"]),
        ({"field": "days_since_last_order", "op": "lte", "value": 10}, ["甲"]),
        ({"field": "days_since_last_order", "op": "gt", "value": 365}, ["乙"]),
        ({"field": "days_since_last_order", "op": "is_null"}, ["丙"]),
        ({"field": "days_since_registration", "op": "between", "value": [0, 31]}, ["乙"]),
        ({"field": "days_since_registration", "op": "gte", "value": 400}, ["甲"]),
        ({"field": "certification_level", "op": "eq", "value": "gold"}, ["甲"]),
        ({"field": "certification_level", "op": "is_null"}, ["丙", "乙"]),
        ({"field": "loyalty_tier", "op": "in", "value": ["silver", "gold"]}, ["甲"]),
        ({"field": "consent", "op": "granted", "value": "marketing:sms"}, ["甲"]),
        ({"field": "consent", "op": "not_granted", "value": "marketing:sms"}, ["丙", "乙"]),
        ({"field": "registered_at", "op": "not_null"}, ["乙", "甲"]),
    ],
)
def test_each_field_compiles(
    shop: dict[str, Customer], condition: dict[str, Any], expected: list[str]
) -> None:
    assert _ids({"all": [condition]}) == sorted(expected)


def test_last_order_date_compares_calendar_days(shop: dict[str, Customer]) -> None:
    day = timezone.localdate(_when(10)).isoformat()
    assert _ids({"all": [{"field": "last_order_date", "op": "eq", "value": day}]}) == ["甲"]
    assert _ids({"all": [{"field": "last_order_date", "op": "lt", "value": day}]}) == ["乙"]


def test_all_and_any_combine_in_one_query(shop: dict[str, Customer]) -> None:
    # given
    rule = {
        "all": [
            {"field": "consent", "op": "not_granted", "value": "marketing:email"},
            {"any": [
                {"field": "spend_365d", "op": "gte", "value": 1000},
                {"field": "kind", "op": "eq", "value": "business"},
            ]},
        ]
    }  # fmt: skip

    # when
    with CaptureQueriesContext(connection) as queries:
        names = _ids(rule)

    # then
    assert names == ["丙", "甲"]
    assert len(queries) == 1


def test_preview_counts_and_samples(shop: dict[str, Customer]) -> None:
    # given
    marketer = make_user(Role.MARKETER)

    # when
    preview = selectors.segment_preview(
        user=marketer, rule={"any": [{"field": "grade", "op": "not_null"}]}
    )

    # then
    assert preview.count == 2
    assert [m.name for m in preview.sample] == ["甲", "乙"]
    assert preview.sample[0].grade == "core"
    assert preview.description == "Grade is not empty"


def test_preview_refuses_a_bad_rule_naming_the_path(db: None) -> None:
    marketer = make_user(Role.MARKETER)
    with pytest.raises(ValidationFailed) as error:
        selectors.segment_preview(
            user=marketer,
            rule={"all": [{"field": "grade", "op": "eq", "value": "core"},
                          {"any": [{"field": "clv_12m", "op": "gt", "value": "x"}]}]},
        )  # fmt: skip
    assert error.value.message == "rule.all[1].any[0].value: expected a number, got 'x'"


def test_saving_keeps_every_version_and_audits(shop: dict[str, Customer]) -> None:
    # given
    marketer = make_user(Role.MARKETER)
    first = {"all": [{"field": "grade", "op": "eq", "value": "core"}]}
    segment = services.segment_save(user=marketer, name="核心客户", description="", rule=first)

    # when
    second = {"any": [{"field": "grade", "op": "in", "value": ["core", "potential"]}]}
    services.segment_save(
        user=marketer, segment_id=segment.pk, name="核心与潜力", description="扩大", rule=second
    )

    # then
    segment.refresh_from_db()
    assert (segment.name, segment.version, segment.rule) == ("核心与潜力", 2, second)
    assert list(SegmentVersion.objects.filter(segment=segment).values_list("version", "rule")) == [
        (2, second),
        (1, first),
    ]
    events = AuditEvent.objects.filter(entity_type="marketing.segment").order_by("id")
    assert [e.action for e in events] == ["create", "update"]
    assert events.last().summary == (  # type: ignore[union-attr]
        "segment '核心与潜力' v2: Grade is one of core, potential"
    )


def test_a_taken_name_is_a_conflict_and_nothing_changes(db: None) -> None:
    marketer = make_user(Role.MARKETER)
    rule = {"all": [{"field": "grade", "op": "eq", "value": "core"}]}
    services.segment_save(user=marketer, name="A", rule=rule)
    with pytest.raises(Conflict, match="a segment named 'A' exists already"):
        services.segment_save(user=marketer, name="A", rule=rule)
    assert Segment.objects.count() == 1


@pytest.mark.parametrize("role", [Role.ANALYST, Role.AUDITOR, Role.SERVICE_AGENT])
def test_only_marketing_roles_save(db: None, role: Role) -> None:
    with pytest.raises(PermissionDenied):
        services.segment_save(
            user=make_user(role), name="x", rule={"all": [{"field": "city", "op": "not_null"}]}
        )
    assert not Segment.objects.exists()


def test_refresh_stores_sizes_and_members_page(shop: dict[str, Customer]) -> None:
    # given
    marketer = make_user(Role.MARKETER)
    segment = services.segment_save(
        user=marketer, name="有省份", rule={"all": [{"field": "province", "op": "not_null"}]}
    )
    broken = Segment.objects.create(name="旧规则", rule={"all": [{"field": "gone", "op": "eq"}]})

    # when
    result = services.segments_refresh()

    # then
    assert (result.segments, result.failed) == (2, 1)
    segment.refresh_from_db()
    broken.refresh_from_db()
    assert (segment.member_count, segment.evaluated_at) == (2, result.evaluated_at)
    assert broken.member_count is None and "unknown field 'gone'" in broken.evaluation_error
    page = selectors.segment_members(user=marketer, segment_id=segment.pk, page=2, page_size=1)
    assert (page.count, [m.name for m in page.items]) == (2, ["乙"])


def test_a_snapshot_freezes_the_members(shop: dict[str, Customer]) -> None:
    # given
    marketer = make_user(Role.MARKETER)
    segment = services.segment_save(
        user=marketer,
        name="浙江",
        rule={"all": [{"field": "province", "op": "eq", "value": "浙江"}]},
    )

    # when
    snapshot_id = services.segment_snapshot(segment_id=segment.pk, user=marketer)
    make_customer(name="戊", province="浙江")

    # then: 丁 is erased; 戊 came later
    members = SegmentMembership.objects.filter(snapshot_id=snapshot_id)
    assert list(members.values_list("customer__name", flat=True)) == ["甲"]
    assert selectors.segment_queryset(segment.rule).count() == 2


def test_every_registered_field_has_a_compiler() -> None:
    assert set(rules.SEGMENT_FIELDS) == selectors.compiled_fields()
