"""The care policy table: seeded with R-G2's defaults, changed through one service (validated
as a whole, versioned, audited) from the admin and the API alike."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from patron.account.models import User
from patron.account.roles import Role
from patron.audit.models import AuditEvent
from patron.care import services
from patron.care.models import GradeMeasure
from patron.care.tests import factories
from patron.conftest import make_user
from patron.errors import PermissionDenied, ValidationFailed

pytestmark = pytest.mark.django_db


def test_the_policy_starts_with_one_row_per_grade() -> None:
    # when
    policy = services.care_policy()
    # then
    assert list(policy) == ["core", "potential", "ordinary"]
    core = policy["core"]
    assert (core.exclusive_discount_percent, core.visit_interval_days, core.version) == (
        Decimal("5.00"),
        90,
        1,
    )
    assert core.holidays[:2] == ["new_year", "spring_festival"]
    assert services.care_policy_seed() == 0  # never twice


def test_a_change_is_versioned_and_audited_with_old_and_new_values() -> None:
    # given
    marketer = factories.marketer("marketer-li")
    template = factories.coupon_template(name="生日券")

    # when
    row = services.care_measures_save(
        user=marketer,
        grade="potential",
        data={"birthday_coupon_template_id": template.pk, "holiday_days_ahead": 5},
        note="Q3 push",
    )

    # then
    assert (row.version, row.updated_by, row.note, row.holiday_days_ahead) == (
        2,
        marketer,
        "Q3 push",
        5,
    )
    assert row.birthday_coupon_template == template
    event = AuditEvent.objects.get(entity_type="care.measures")
    assert (event.entity_id, event.actor_id, event.action) == ("potential", marketer.pk, "update")
    assert event.summary == (
        "care policy for potential customers v2: changed birthday_coupon_template_id, "
        "holiday_days_ahead"
    )
    assert event.changes == {
        "old": {"birthday_coupon_template_id": None, "holiday_days_ahead": 2},
        "new": {"birthday_coupon_template_id": template.pk, "holiday_days_ahead": 5},
        "note": "Q3 push",
    }


def test_saving_the_same_values_changes_nothing() -> None:
    services.care_measures_save(
        user=factories.marketer(), grade="core", data={"holiday_days_ahead": 3}
    )
    assert GradeMeasure.objects.get(grade="core").version == 1
    assert not AuditEvent.objects.filter(entity_type="care.measures").exists()


@pytest.mark.parametrize(
    ("data", "message", "field"),
    [
        (
            {"holidays": ["spring_festival", "halloween"]},
            "core.holidays: 'halloween' is unknown",
            "holidays",
        ),
        (
            {"birthday_coupon_template_id": 999999},
            "core.birthday_coupon_template_id: coupon template 999999 not found",
            "birthday_coupon_template_id",
        ),
        (
            {"visit_interval_days": 0},
            "core.visit_interval_days: expected a whole number 7–3650, got 0",
            "visit_interval_days",
        ),
    ],
)
def test_a_refusal_names_the_grade_and_the_field_and_changes_nothing(
    data: dict[str, object], message: str, field: str
) -> None:
    # given
    services.care_policy_seed()
    # when
    with pytest.raises(ValidationFailed) as refused:
        services.care_measures_save(user=factories.marketer(), grade="core", data=data)
    # then
    assert refused.value.message.startswith(message)
    assert refused.value.details == {"grade": "core", "field": field}
    assert GradeMeasure.objects.get(grade="core").version == 1
    assert not AuditEvent.objects.filter(entity_type="care.measures").exists()


def test_a_coupon_template_that_cannot_issue_is_refused() -> None:
    template = factories.coupon_template(name="停用券", is_active=False)
    with pytest.raises(ValidationFailed, match="cannot issue codes"):
        services.care_measures_save(
            user=factories.marketer(),
            grade="ordinary",
            data={"holiday_coupon_template_id": template.pk},
        )


@pytest.mark.parametrize(
    "role", [Role.SERVICE_AGENT, Role.AUDITOR, Role.ANALYST, Role.RISK_ANALYST]
)
def test_only_who_may_change_campaigns_changes_the_policy(role: Role) -> None:
    with pytest.raises(PermissionDenied):
        services.care_measures_save(user=make_user(role), grade="core", data={})


def _campaigner_without_coupons() -> User:
    user = User.objects.create_user(username="campaigns-only", is_staff=True)
    user.user_permissions.add(
        Permission.objects.get(codename="change_campaign", content_type__app_label="marketing")
    )
    return User.objects.get(pk=user.pk)


def test_a_row_with_coupons_needs_the_right_to_issue_them() -> None:
    # given: someone who may change campaigns but not issue coupons
    user = _campaigner_without_coupons()
    template = factories.coupon_template()
    # when / then: coupons are issued as the person who saved the row
    services.care_measures_save(user=user, grade="core", data={"visit_interval_days": 60})
    with pytest.raises(PermissionDenied, match=r"marketing\.change_coupon"):
        services.care_measures_save(
            user=user, grade="core", data={"birthday_coupon_template_id": template.pk}
        )
    assert GradeMeasure.objects.get(grade="core").birthday_coupon_template is None


# ---------------------------------------------------------------------- the admin


def _admin_client(role: str) -> Client:
    client = Client()
    client.force_login(make_user(role))
    return client


def _form(**changes: object) -> dict[str, object]:
    data: dict[str, object] = {
        "exclusive_discount_percent": "5.00",
        "has_priority_handling": "on",
        "has_dedicated_line": "on",
        "visit_interval_days": "90",
        "sends_birthday_greeting": "on",
        "birthday_coupon_template": "",
        "holidays": ["spring_festival", "mid_autumn"],
        "holiday_days_ahead": "3",
        "holiday_coupon_template": "",
        "note": "",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


@pytest.mark.parametrize(
    ("role", "status"),
    [
        (Role.MARKETER, 200),
        (Role.OPERATIONS_MANAGER, 200),
        (Role.AUDITOR, 200),  # may look, not change
        (Role.SERVICE_AGENT, 403),
    ],
)
def test_who_sees_the_policy_in_the_admin(role: str, status: int) -> None:
    assert _admin_client(role).get("/admin/care/grademeasure/").status_code == status


def test_editing_a_row_in_the_admin_goes_through_the_service() -> None:
    # given
    client = _admin_client(Role.MARKETER)
    row = services.care_policy()["core"]

    # when
    response = client.post(
        f"/admin/care/grademeasure/{row.pk}/change/",
        _form(visit_interval_days="60", note="more often"),
    )

    # then
    assert response.status_code == 302, response.content.decode()[:2000]
    row.refresh_from_db()
    assert (row.visit_interval_days, row.version, row.note) == (60, 2, "more often")
    assert row.holidays == ["spring_festival", "mid_autumn"]
    event = AuditEvent.objects.get(entity_type="care.measures")
    assert event.changes["new"] == {
        "visit_interval_days": 60,
        "holidays": ["spring_festival", "mid_autumn"],
    }


def test_the_admin_shows_the_refusal_on_the_field() -> None:
    # given
    client = _admin_client(Role.MARKETER)
    row = services.care_policy()["ordinary"]
    template = factories.coupon_template()

    # when: a holiday coupon with no holiday to send it with
    response = client.post(
        f"/admin/care/grademeasure/{row.pk}/change/",
        _form(holidays=[], holiday_coupon_template=str(template.pk)),
    )

    # then
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors["holiday_coupon_template"] == [
        "ordinary.holiday_coupon_template_id: a holiday coupon needs at least one holiday to "
        "greet (list some, or clear it)"
    ]
    assert GradeMeasure.objects.get(pk=row.pk).version == 1


def test_an_auditor_cannot_change_a_row_in_the_admin() -> None:
    row = services.care_policy()["core"]
    response = _admin_client(Role.AUDITOR).post(
        f"/admin/care/grademeasure/{row.pk}/change/", _form(visit_interval_days="30")
    )
    assert response.status_code == 403
    assert GradeMeasure.objects.get(pk=row.pk).visit_interval_days == 90
