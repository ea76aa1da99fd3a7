"""Who holds the loyalty permissions, written out (not derived from ``ROLE_PERMISSIONS``) so
that a change of rights shows up as a failing line here."""

from __future__ import annotations

import pytest

from patron.account.roles import (
    CHANGE_LOYALTY_POLICY,
    CHANGE_POINTS,
    ROLE_PERMISSIONS,
    VIEW_LOYALTY,
    Role,
)
from patron.account.services import roles_sync

EXPECTED: dict[Role, set[str]] = {
    Role.ADMINISTRATOR: {VIEW_LOYALTY, CHANGE_POINTS, CHANGE_LOYALTY_POLICY},
    Role.OPERATIONS_MANAGER: {VIEW_LOYALTY, CHANGE_POINTS, CHANGE_LOYALTY_POLICY},
    Role.SERVICE_AGENT: {VIEW_LOYALTY, CHANGE_POINTS},
    Role.RISK_ANALYST: set(),
    Role.MARKETER: {VIEW_LOYALTY, CHANGE_LOYALTY_POLICY},
    Role.AUDITOR: {VIEW_LOYALTY},
    Role.ANALYST: {VIEW_LOYALTY},
    Role.INTEGRATION: set(),
}
LOYALTY = {VIEW_LOYALTY, CHANGE_POINTS, CHANGE_LOYALTY_POLICY}


def test_the_permission_names_are_django_s_model_permissions() -> None:
    assert (VIEW_LOYALTY, CHANGE_POINTS, CHANGE_LOYALTY_POLICY) == (
        "loyalty.view_pointsaccount",
        "loyalty.change_pointsaccount",
        "loyalty.change_loyaltypolicy",
    )


@pytest.mark.parametrize("role", list(Role))
def test_each_role_holds_exactly_its_loyalty_rights(role: Role) -> None:
    assert ROLE_PERMISSIONS[role] & LOYALTY == EXPECTED[role]


@pytest.mark.django_db
def test_the_groups_get_them_from_the_database() -> None:
    from django.contrib.auth.models import Group

    roles_sync()
    marketer = Group.objects.get(name=Role.MARKETER.value)
    codenames = set(
        marketer.permissions.filter(content_type__app_label="loyalty").values_list(
            "codename", flat=True
        )
    )
    assert codenames == {"view_pointsaccount", "change_loyaltypolicy"}
