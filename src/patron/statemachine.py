"""What every workflow's state machine shares (alerts, appeals, applications, …): a table of
state -> {action: next state}, the refusal of anything else, and separation of duties.

Pure: each app's ``rules.py`` declares its tables with these; its services turn the refusals
into 409 and 403 (``patron.workflow``)."""

from __future__ import annotations

from collections.abc import Mapping


class TransitionRefused(Exception):
    """An action the current state does not allow (the services turn it into 409)."""


class SeparationOfDuties(Exception):
    """The same person may not both decide and review (the services turn it into 403)."""


def next_state(machine: Mapping[str, Mapping[str, str]], name: str, state: str, action: str) -> str:
    allowed = machine.get(state, {})
    if action not in allowed:
        choices = ", ".join(sorted(allowed)) or "none (final)"
        raise TransitionRefused(
            f"{name} is {state.replace('_', ' ')}: cannot {action.replace('_', ' ')}; "
            f"allowed: {choices}"
        )
    return allowed[action]
