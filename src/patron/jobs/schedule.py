"""The periodic jobs: ONE registry, read by ``patron scheduler`` and ``patron jobs``.

Adding a job is adding one ``PeriodicJob`` to ``SCHEDULE``: a name (kebab-case, never reused
for something else: it keys the record of what was enqueued), a cron expression in the merchant's
time zone (``settings.TIME_ZONE``), the dotted path of a ``django.tasks`` task, and a function
from the slot's local time to the task's keyword arguments (JSON values). The task must be safe
to run twice: a slot is enqueued once, but a job can also be run by hand (``patron jobs run``).

Tasks are named by path, not imported here, so that reading the schedule stays cheap and an app
can register a job without this module importing it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.tasks import Task
from django.utils.module_loading import import_string

from patron.errors import NotFound
from patron.jobs.rules import cron_validate

Arguments = Callable[[datetime], dict[str, Any]]


def merchant_zone() -> ZoneInfo:
    """The zone cron expressions are read in, and slots are handed to ``arguments`` in."""
    return ZoneInfo(settings.TIME_ZONE)


def as_of_slot_date(slot: datetime) -> dict[str, Any]:
    """``{"as_of": "YYYY-MM-DD"}``: the slot's date in the merchant's time zone, so that the run
    at 02:00 on 20 November uses the data before 20 November (all of the 19th)."""
    return {"as_of": slot.date().isoformat()}


def as_of_slot_time(slot: datetime) -> dict[str, Any]:
    """``{"as_of": ISO timestamp}``: the slot itself, for jobs that read data up to the minute."""
    return {"as_of": slot.isoformat()}


def no_arguments(slot: datetime) -> dict[str, Any]:
    """For jobs that act on whatever is due when they run."""
    return {}


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    cron: str  # five fields, in the merchant's local time
    task: str  # dotted path of a django.tasks Task
    arguments: Arguments
    description: str
    # After an outage, enqueue at most this many of the missed slots (the most recent ones).
    max_catch_up: int = 24

    def __post_init__(self) -> None:
        cron_validate(self.cron)

    def resolve_task(self) -> Task[..., Any]:
        """The task object, imported on first use."""
        found = import_string(self.task)
        if not isinstance(found, Task):
            raise TypeError(f"job {self.name!r}: {self.task} is not a django.tasks task")
        return found


SCHEDULE: tuple[PeriodicJob, ...] = (
    PeriodicJob(
        name="score-nightly",
        cron="0 2 * * *",
        task="patron.scoring.tasks.score_nightly",
        arguments=as_of_slot_date,
        description="Score every customer with the data up to midnight",
    ),
    PeriodicJob(
        name="regrade-quarterly",
        cron="0 3 1 1,4,7,10 *",
        task="patron.scoring.tasks.regrade_quarterly",
        arguments=as_of_slot_date,
        description="Re-decide every customer's grade at the start of each quarter",
    ),
    PeriodicJob(
        name="insights-fill",
        cron="30 3 * * *",
        task="patron.insight.tasks.fill_metrics",
        arguments=as_of_slot_date,
        description="Fill the KPI tables (dashboard, targets, cohorts) after the nightly scoring",
    ),
    PeriodicJob(
        name="value-report-monthly",
        cron="0 4 1 * *",
        task="patron.insight.report_tasks.generate_monthly_report",
        arguments=as_of_slot_date,
        description="Generate last month's customer-value report (after the nightly scoring)",
        max_catch_up=3,
    ),
    PeriodicJob(
        name="risk-detect",
        cron="30 * * * *",
        task="patron.risk.tasks.detect_risk",
        arguments=as_of_slot_time,
        description="Run the risk rules and the anomaly model (also after each import batch)",
        max_catch_up=1,
    ),
    PeriodicJob(
        name="outbox-deliver",
        cron="* * * * *",
        task="patron.outbox.tasks.deliver_outbox",
        arguments=no_arguments,
        description="Send the messages to customers that are due (retries back off)",
        max_catch_up=1,
    ),
    PeriodicJob(
        name="loyalty-accrue",
        cron="15 * * * *",
        task="patron.loyalty.tasks.accrue_points",
        arguments=as_of_slot_time,
        description="Credit points for paid orders and reviews, take back refunded ones",
        max_catch_up=1,
    ),
    PeriodicJob(
        name="loyalty-expire",
        cron="10 0 * * *",
        task="patron.loyalty.tasks.expire_points",
        arguments=as_of_slot_date,
        description="Expire the points lots past their date",
        max_catch_up=3,
    ),
    PeriodicJob(
        name="loyalty-tiers",
        cron="45 3 * * *",
        task="patron.loyalty.tasks.evaluate_tiers",
        arguments=as_of_slot_date,
        description="Move customers between membership tiers (after the nightly scoring)",
        max_catch_up=3,
    ),
    PeriodicJob(
        name="certification-reverify",
        cron="0 9 * * *",
        task="patron.certification.tasks.reverify_certifications",
        arguments=as_of_slot_time,
        description="Remind customers before their certification expires; at expiry downgrade "
        "to the fallback level or end it",
        max_catch_up=3,
    ),
    PeriodicJob(
        name="marketing-nightly",
        cron="50 3 * * *",
        task="patron.marketing.tasks.marketing_nightly",
        arguments=no_arguments,
        description="Segment sizes on the new scores, expired coupons, coupons used in imports",
        max_catch_up=1,
    ),
    PeriodicJob(
        name="service-sla-watch",
        cron="* * * * *",
        task="patron.service.tasks.sla_watch_task",
        arguments=no_arguments,
        description="Warn before SLA deadlines; on a breach raise the priority and escalate",
        max_catch_up=1,
    ),
    PeriodicJob(
        name="service-mail-poll",
        cron="* * * * *",
        task="patron.service.tasks.mail_poll_task",
        arguments=no_arguments,
        description="File the customers' e-mail waiting in the inbox folder as ticket messages",
        max_catch_up=1,
    ),
    PeriodicJob(
        name="logistics-exceptions",
        cron="*/30 * * * *",
        task="patron.aftersales.tasks.check_logistics",
        arguments=as_of_slot_time,
        description="Find shipments in trouble (no scan, late, failed delivery): ticket, message",
        max_catch_up=1,
    ),
    PeriodicJob(
        name="complaint-risk",
        cron="5 * * * *",
        task="patron.complaints.tasks.refresh_complaint_risk",
        arguments=as_of_slot_time,
        description="Score open tickets and customers for complaint risk; record missed complaints",
        max_catch_up=1,
    ),
    PeriodicJob(
        name="marketing-campaigns",
        cron="*/5 * * * *",
        task="patron.marketing.tasks.run_campaigns",
        arguments=no_arguments,
        description="Launch scheduled campaigns whose send time has come; finish ended ones",
        max_catch_up=1,
    ),
    PeriodicJob(
        name="surveys-send",
        cron="30 9 * * *",
        task="patron.satisfaction.tasks.send_surveys",
        arguments=as_of_slot_time,
        description="End survey runs whose time is up; open due surveys and invite their audience",
        max_catch_up=3,
    ),
    PeriodicJob(
        name="care-daily",
        cron="0 9 * * *",
        task="patron.care.tasks.care_daily",
        arguments=as_of_slot_date,
        description="Birthday and holiday greetings with the grade's coupons; follow-up visits due",
        max_catch_up=3,
    ),
    PeriodicJob(
        name="recommendations-refresh",
        cron="30 3 * * *",
        task="patron.recommend.tasks.refresh_recommendations",
        arguments=as_of_slot_date,
        description="Refresh every customer's suggested products from the orders and events",
        max_catch_up=1,
    ),
    PeriodicJob(
        name="marketing-winback",
        cron="0 10 * * *",
        task="patron.marketing.tasks.run_winback",
        arguments=as_of_slot_time,
        description="Win-back: enrol customers whose churn risk newly rose to a programme's "
        "threshold; send the treated their offer",
        max_catch_up=1,
    ),
)


def job_get(name: str, *, jobs: tuple[PeriodicJob, ...] = SCHEDULE) -> PeriodicJob:
    for job in jobs:
        if job.name == name:
            return job
    known = ", ".join(job.name for job in jobs)
    raise NotFound(f"no periodic job named {name!r}; the jobs are: {known}")
