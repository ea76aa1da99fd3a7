"""Delivery as a background job. The lead wires it into ``patron.jobs.schedule`` (every minute
or so); it is safe to run twice and in two workers at once (``outbox_deliver`` claims each
message for one run only)."""

from __future__ import annotations

from django.tasks import task

TASK_PATH = "patron.outbox.tasks.deliver_outbox"


@task()
def deliver_outbox(limit: int = 200) -> dict[str, int]:
    """Send up to ``limit`` due messages; returns how many were sent, retried, failed, …"""
    from patron.outbox.services import outbox_deliver

    return outbox_deliver(limit=limit).as_dict()
