"""Who may see and cancel messages, written out: a change must show up as a failing line."""

from __future__ import annotations

from patron.account.roles import CANCEL_MESSAGES, ROLE_PERMISSIONS, VIEW_MESSAGES, Role


def test_the_roles_that_see_messages() -> None:
    assert {role.value for role, perms in ROLE_PERMISSIONS.items() if VIEW_MESSAGES in perms} == {
        "administrator",
        "operations_manager",
        "service_agent",
        "marketer",
        "auditor",
    }


def test_the_roles_that_cancel_messages() -> None:
    assert {role.value for role, perms in ROLE_PERMISSIONS.items() if CANCEL_MESSAGES in perms} == {
        "administrator",
        "operations_manager",
        "marketer",
    }


def test_the_permission_names() -> None:
    assert (VIEW_MESSAGES, CANCEL_MESSAGES) == ("outbox.view_message", "outbox.change_message")
    assert Role.INTEGRATION not in {r for r, p in ROLE_PERMISSIONS.items() if VIEW_MESSAGES in p}
