"""Complaint-risk early warning (R-D6): which open tickets, and which customers, are likely to
escalate to a complaint — before they do.

This module is the Django side: it reads tickets, their messages and events, the customers'
complaints and grades, turns them into one row of features per ticket (as of a moment,
``as_of``), hands them to the pure model (``patron.complaints.risk_model``), and stores the
scores of the open tickets and customers with their reasons (``ComplaintRiskScore``, replaced at
each refresh; ``ComplaintRiskRun`` keeps how well the model ranked).

The features of a ticket opened at ``t`` (see ``docs/complaints.md``):

- ``contacts_7d``, ``contacts_30d``: the customer's other tickets opened in the 7 / 30 days
  before ``t``;
- ``inbound_messages_30d``: the customer's messages (any ticket) from 30 days before ``t`` to
  one day after it;
- ``negative_sentiment``: ``max(0, −s)`` for the tone ``s`` of the customer's words on the
  ticket — the desk's ``Ticket.sentiment`` or, when it has none, the lowest
  ``patron.intelligence.text.sentiment_of`` of the ticket's messages from the customer in its
  first day;
- ``sla_breaches``: the ticket's breached clocks (first reply, resolution) for desk tickets;
  for imported history, which has no clocks, a first reply later than 30 minutes (R-E3);
- ``past_complaints``: the customer's complaints opened before ``t``;
- ``reopens``: how often the ticket was reopened;
- ``priority`` (0 low … 3 urgent) and ``grade`` (0 ordinary, 1 potential, 2 core; the grade the
  customer holds now).

The label of a past ticket is ``Ticket.is_complaint``. Training uses the tickets opened in the
last ``TRAINING_DAYS`` that are decided — complaints, and tickets that are solved or closed; the
open ones that are not complaints yet are what is scored.
"""

from __future__ import annotations

import bisect
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from patron.complaints import risk_model
from patron.complaints.models import ComplaintRiskRun, ComplaintRiskScore
from patron.service.models import PATRON_SOURCE, Ticket, TicketEvent, TicketMessage

TRAINING_DAYS = 365
OPEN_STATUSES = ("new", "open", "pending", "on_hold")
FIRST_REPLY_TARGET = timedelta(minutes=30)
FIRST_DAY = timedelta(days=1)
KEEP_RUNS = 200


@dataclass(frozen=True)
class TicketRow:
    id: int
    customer_id: int
    opened_at: datetime
    is_complaint: bool
    is_open: bool
    features: dict[str, float]


@dataclass(frozen=True)
class Dataset:
    """Features of the decided tickets (with their label) and of the open ones (to score)."""

    as_of: datetime
    labelled: list[TicketRow]
    open: list[TicketRow]


def _counts_between(times: list[float], start: float, end: float) -> int:
    """How many of the sorted ``times`` fall in ``[start, end)``."""
    return bisect.bisect_left(times, end) - bisect.bisect_left(times, start)


def _epoch(moment: datetime) -> float:
    return moment.timestamp()


def _grades(customer_ids: Iterable[int]) -> dict[int, float]:
    from patron.scoring.models import CustomerScore

    ids = list(set(customer_ids))
    found: dict[int, float] = {}
    for start in range(0, len(ids), 5000):
        for customer_id, grade in CustomerScore.objects.filter(
            customer_id__in=ids[start : start + 5000]
        ).values_list("customer_id", "grade"):
            found[customer_id] = risk_model.GRADE_VALUE.get(grade or "", 0.0)
    return found


def _sentiments(ticket_windows: dict[int, tuple[datetime, datetime]]) -> dict[int, float]:
    """The lowest tone of the customer's messages on each ticket, within its window (only the
    tickets given: those the desk did not score itself)."""
    from patron.intelligence.text import sentiment_of

    lowest: dict[int, float] = {}
    ids = list(ticket_windows)
    for start in range(0, len(ids), 2000):
        rows = TicketMessage.objects.filter(
            ticket_id__in=ids[start : start + 2000], direction=TicketMessage.Direction.INBOUND
        ).values_list("ticket_id", "created_at", "body")
        for ticket_id, created_at, body in rows:
            begin, end = ticket_windows[ticket_id]
            if not begin <= created_at < end:
                continue
            score = sentiment_of(body)
            lowest[ticket_id] = min(score, lowest.get(ticket_id, 0.0))
    return lowest


def dataset(*, as_of: datetime) -> Dataset:
    """Every ticket's features as of ``as_of`` (see the module docstring)."""
    since = as_of - timedelta(days=TRAINING_DAYS)
    history_since = since - timedelta(days=30)
    tickets = list(
        Ticket.objects.filter(opened_at__lt=as_of)
        .filter(Q(opened_at__gte=history_since) | Q(status__in=OPEN_STATUSES))
        .values(
            "id",
            "customer_id",
            "opened_at",
            "is_complaint",
            "status",
            "priority",
            "source",
            "first_response_at",
            "first_reply_breached_at",
            "resolution_breached_at",
            "sentiment",
        )
    )
    customers = {t["customer_id"] for t in tickets}
    by_customer: dict[int, list[float]] = defaultdict(list)
    for t in tickets:
        by_customer[t["customer_id"]].append(_epoch(t["opened_at"]))
    complaints_by_customer: dict[int, list[float]] = defaultdict(list)
    for customer_id, opened_at in Ticket.objects.filter(
        is_complaint=True, opened_at__lt=as_of, customer_id__in=customers
    ).values_list("customer_id", "opened_at"):
        complaints_by_customer[customer_id].append(_epoch(opened_at))
    messages_by_customer: dict[int, list[float]] = defaultdict(list)
    for customer_id, created_at in TicketMessage.objects.filter(
        direction=TicketMessage.Direction.INBOUND,
        created_at__lt=as_of,
        created_at__gte=history_since,
        ticket__customer_id__in=customers,
    ).values_list("ticket__customer_id", "created_at"):
        messages_by_customer[customer_id].append(_epoch(created_at))
    for times in (*by_customer.values(), *complaints_by_customer.values()):
        times.sort()
    for times in messages_by_customer.values():
        times.sort()
    reopens = dict(
        TicketEvent.objects.filter(
            action="reopen", at__lt=as_of, ticket_id__in=[t["id"] for t in tickets]
        )
        .values("ticket_id")
        .annotate(n=Count("id"))
        .values_list("ticket_id", "n")
    )
    unscored = {
        t["id"]: (t["opened_at"], min(t["opened_at"] + FIRST_DAY, as_of))
        for t in tickets
        if t["sentiment"] is None and t["source"] == PATRON_SOURCE
    }
    tones = _sentiments(unscored)
    grades = _grades(customers)
    end = _epoch(as_of)
    labelled: list[TicketRow] = []
    to_score: list[TicketRow] = []
    for t in tickets:
        opened = _epoch(t["opened_at"])
        own = by_customer[t["customer_id"]]
        tone = t["sentiment"] if t["sentiment"] is not None else tones.get(t["id"], 0.0)
        features = {
            # other tickets: the window ends just before this one was opened
            "contacts_7d": _counts_between(own, opened - 7 * 86400, opened),
            "contacts_30d": _counts_between(own, opened - 30 * 86400, opened),
            "inbound_messages_30d": _counts_between(
                messages_by_customer.get(t["customer_id"], []),
                opened - 30 * 86400,
                min(opened + 86400, end),
            ),
            "negative_sentiment": max(0.0, -float(tone)),
            "sla_breaches": _breaches(t, as_of),
            "past_complaints": _counts_between(
                complaints_by_customer.get(t["customer_id"], []), 0.0, opened
            ),
            "reopens": reopens.get(t["id"], 0),
            "priority": risk_model.PRIORITY_VALUE.get(t["priority"], 1.0),
            "grade": grades.get(t["customer_id"], 0.0),
        }
        row = TicketRow(
            id=t["id"],
            customer_id=t["customer_id"],
            opened_at=t["opened_at"],
            is_complaint=bool(t["is_complaint"]),
            is_open=t["status"] in OPEN_STATUSES,
            features={k: float(v) for k, v in features.items()},
        )
        if row.is_open and not row.is_complaint:
            to_score.append(row)
        elif t["opened_at"] >= since:
            labelled.append(row)
    labelled.sort(key=lambda r: (r.opened_at, r.id))
    return Dataset(as_of=as_of, labelled=labelled, open=to_score)


def _breaches(ticket: Mapping[str, Any], as_of: datetime) -> int:
    if ticket["source"] == PATRON_SOURCE:
        return sum(
            1
            for moment in (ticket["first_reply_breached_at"], ticket["resolution_breached_at"])
            if moment is not None and moment < as_of
        )
    first = ticket["first_response_at"]
    if first is not None:
        return int(first - ticket["opened_at"] > FIRST_REPLY_TARGET)
    is_waiting = ticket["status"] in OPEN_STATUSES
    return int(is_waiting and as_of - ticket["opened_at"] > FIRST_REPLY_TARGET)


def _arrays(rows: list[TicketRow]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = risk_model.feature_matrix([r.features for r in rows])
    y = np.array([int(r.is_complaint) for r in rows], dtype=np.int_)
    times = np.array([_epoch(r.opened_at) for r in rows], dtype=np.float64)
    return x, y, times


# ---------------------------------------------------------------------- the report


@dataclass(frozen=True)
class RiskReport:
    as_of: datetime
    labelled: int
    complaints: int
    open_tickets: int
    holdout: risk_model.HoldoutReport
    seconds: float

    def to_json(self) -> dict[str, Any]:
        holdout = self.holdout.to_json()
        cut = holdout.pop("cut")
        return {
            "as_of": self.as_of.isoformat(),
            "labelled_tickets": self.labelled,
            "complaints": self.complaints,
            "open_tickets": self.open_tickets,
            "holdout_from": (
                datetime.fromtimestamp(cut, tz=timezone.get_current_timezone()).isoformat()
                if cut is not None
                else None
            ),
            **holdout,
            "seconds": round(self.seconds, 2),
        }


def complaint_risk_report(*, as_of: datetime | None = None) -> RiskReport:
    """How well the model ranks: fitted on the earlier 80 % of the decided tickets, measured
    on the later 20 % (AUC, precision@10/20/50, each feature's own AUC). Reads only."""
    started = time.perf_counter()
    moment = as_of or timezone.now()
    data = dataset(as_of=moment)
    x, y, times = _arrays(data.labelled)
    holdout = risk_model.holdout_report(x, y, times)
    return RiskReport(
        as_of=moment,
        labelled=len(data.labelled),
        complaints=int(y.sum()),
        open_tickets=len(data.open),
        holdout=holdout,
        seconds=time.perf_counter() - started,
    )


# ---------------------------------------------------------------------- the refresh


@transaction.atomic
def complaint_risk_refresh(*, as_of: datetime | None = None) -> ComplaintRiskRun:
    """Fit on every decided ticket, score the open ones and their customers, and replace the
    stored scores (one transaction: readers see the old scores or the new, never a mix).
    Safe to run twice."""
    started = time.perf_counter()
    moment = as_of or timezone.now()
    data = dataset(as_of=moment)
    x, y, times = _arrays(data.labelled)
    holdout = risk_model.holdout_report(x, y, times)
    model = risk_model.fit_model(x, y)
    x_open = risk_model.feature_matrix([r.features for r in data.open])
    probabilities = model.predict(x_open) if data.open else np.zeros(0)
    contributions = model.contributions(x_open) if data.open else np.zeros((0, 0))
    now = timezone.now()
    run = ComplaintRiskRun.objects.create(
        scored_at=now,
        as_of=moment,
        method=model.method,
        tickets_scored=len(data.open),
        metrics={
            **holdout.to_json(),
            "labelled_tickets": len(data.labelled),
            "complaints": int(y.sum()),
        },
        weights=model.weights(),
        note=(
            ""
            if model.method == "logistic"
            else f"fewer than {risk_model.MIN_POSITIVES} complaints or "
            f"{risk_model.MIN_NEGATIVES} other decided tickets: hand-weighted score"
        ),
    )
    ComplaintRiskScore.objects.all().delete()
    order = np.argsort(-probabilities, kind="stable")
    ticket_rows = []
    best: dict[int, tuple[float, int, list[dict[str, Any]], dict[str, float]]] = {}
    for rank, index in enumerate(order.tolist(), start=1):
        row = data.open[index]
        why = risk_model.reasons(contributions[index], x_open[index])
        probability = float(probabilities[index])
        ticket_rows.append(
            ComplaintRiskScore(
                run=run,
                kind=ComplaintRiskScore.Kind.TICKET,
                ticket_id=row.id,
                customer_id=row.customer_id,
                probability=probability,
                rank=rank,
                features=row.features,
                reasons=why,
                scored_at=now,
            )
        )
        if row.customer_id not in best:  # ranked: the first seen is the customer's riskiest
            best[row.customer_id] = (probability, row.id, why, row.features)
    customer_rows = [
        ComplaintRiskScore(
            run=run,
            kind=ComplaintRiskScore.Kind.CUSTOMER,
            ticket_id=ticket_id,
            customer_id=customer_id,
            probability=probability,
            rank=rank,
            features=features,
            reasons=why,
            scored_at=now,
        )
        for rank, (customer_id, (probability, ticket_id, why, features)) in enumerate(
            best.items(), start=1
        )
    ]
    ComplaintRiskScore.objects.bulk_create(ticket_rows + customer_rows, batch_size=1000)
    run.customers_scored = len(customer_rows)
    run.seconds = round(time.perf_counter() - started, 3)
    run.save(update_fields=["customers_scored", "seconds"])
    stale = ComplaintRiskRun.objects.order_by("-scored_at", "-id").values_list("pk", flat=True)[
        KEEP_RUNS:
    ]
    ComplaintRiskRun.objects.filter(pk__in=list(stale)).delete()
    return run
