"""What the service desk tells other apps, so they react without the desk importing them.

Every signal is sent after the transaction that caused it commits (``transaction.on_commit``),
with ``ticket_id`` (and what else is named). Receivers must be idempotent.

- ``ticket_opened(ticket_id)``: a ticket was opened here (any channel, or proactively).
- ``ticket_status_changed(ticket_id, from_status, to_status, action)``: every state change.
- ``ticket_solved(ticket_id)``: a ticket reached solved (CSAT is asked for then).
"""

from __future__ import annotations

from django.dispatch import Signal

ticket_opened = Signal()
ticket_status_changed = Signal()
ticket_solved = Signal()
