"""Background jobs of the service desk (``patron.jobs.schedule``).

``sla_watch_task`` warns before SLA deadlines and escalates breaches, every minute
(``service-sla-watch``): each warning and breach fires once per clock, so a second run in
the same minute does nothing.

``mail_poll_task`` files the mail waiting in the inbox folder, every minute
(``service-mail-poll``). Safe to run twice and in two workers at once: a file is claimed by one
poll only (an atomic rename) and a mail filed before is not filed again (its Message-ID).
"""

from __future__ import annotations

from typing import Any

from django.tasks import task


@task()
def mail_poll_task(folder: str = "") -> dict[str, Any]:
    from pathlib import Path

    from patron.service.mail import mail_poll

    return mail_poll(Path(folder) if folder else None).as_dict()


@task()
def sla_watch_task() -> dict[str, Any]:
    from dataclasses import asdict

    from patron.service.services import sla_watch

    return asdict(sla_watch())
