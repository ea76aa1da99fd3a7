"""Satisfaction workflows: ask for CSAT after a solved ticket and record the answer, run the
surveys (create, schedule, open, invite, answer, close), the suggestion box, and the
improvement plans with what prompted them. Each public function is one transaction (the survey
job: one per survey), checks permissions, applies ``patron.satisfaction.rules`` and audits.

``user`` is a staff member, or ``None`` for a customer acting through a signed link
(``patron.satisfaction.tokens``) or the public suggestion box, or for a job.

The service desk owns tickets: this module only writes ``Ticket.satisfaction`` (a queryset
update, the one field the CSAT answer owns) and never calls the desk's services.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from patron.account.models import User
from patron.account.roles import MANAGE_PLANS, MANAGE_SURVEYS, VIEW_SATISFACTION
from patron.account.services import require_permission
from patron.audit.services import AuditEntry, audit_record
from patron.customer.models import Customer
from patron.errors import Conflict, NotFound, PatronError, ValidationFailed
from patron.satisfaction import rules, tokens
from patron.satisfaction.models import (
    CsatRequest,
    ImprovementPlan,
    PlanLink,
    Suggestion,
    Survey,
    SurveyAnswer,
    SurveyInvitation,
    SurveyQuestion,
    SurveyRun,
)
from patron.service.models import Ticket
from patron.workflow import audit_update, locked, reason_text, transition

log = logging.getLogger(__name__)

MAX_COMMENT = 2000
MAX_SUGGESTION = 2000
MAX_TITLE = 120
MAX_PLAN_TITLE = 160
MAX_TEXT = 4000
SOLVED_STATUSES = (Ticket.Status.SOLVED, Ticket.Status.CLOSED)
EARLIEST = date(2000, 1, 1)
LATEST = date(2100, 12, 31)


class TooManyRequests(PatronError):
    """Too many suggestions from one address in the last hour (the public box)."""

    status = 429
    code = "rate_limited"


def _audit(user: Any, *, entity: str, pk: int, summary: str, customer_id: int | None = None,
           label: str = "satisfaction job", **changes: Any) -> None:  # fmt: skip
    audit_update(
        user,
        entity_type=f"satisfaction.{entity}",
        pk=pk,
        customer_id=customer_id,
        summary=summary,
        system_label=label,
        **changes,
    )


def _text(value: str | None, what: str, *, limit: int, required: bool = True) -> str:
    """Free text stripped; a blank required one, an over-long one or one with NUL is refused
    naming the field."""
    text = (value or "").strip()
    if required and not text:
        raise ValidationFailed(f"{what}: required", details={"field": what})
    if len(text) > limit:
        raise ValidationFailed(
            f"{what}: at most {limit} characters, got {len(text)}", details={"field": what}
        )
    if "\x00" in text:
        raise ValidationFailed(f"{what}: must not contain NUL characters", details={"field": what})
    return text


def _queue_message(*, customer_id: int, template: str, context: dict[str, Any], key: str,
                   source: str) -> Any:  # fmt: skip
    from patron.outbox.services import message_queue

    return message_queue(
        customer_id=customer_id,
        template=template,
        purpose="service",
        context=context,
        key=key,
        source=source,
    )


# ---------------------------------------------------------------------- CSAT


@transaction.atomic
def csat_request_for_ticket(*, ticket_id: int, now: datetime | None = None) -> CsatRequest | None:
    """Ask the customer how satisfied they are with a solved ticket.

    Idempotent: one request per ticket, however often the ticket is solved (a reopened and
    solved again ticket is not asked twice) and however often the signal is delivered. Nothing
    is asked for a ticket that is missing, not solved, already rated, or whose customer was
    erased (``None``). The question goes out through the outbox with purpose "service": a
    customer who refused service messages is not written to (the request is kept, marked
    suppressed, and counts in no response rate).
    """
    existing = CsatRequest.objects.filter(ticket_id=ticket_id).first()
    if existing is not None:
        return existing
    ticket = Ticket.objects.select_related("customer").filter(pk=ticket_id).first()
    if (
        ticket is None
        or ticket.status not in SOLVED_STATUSES
        or ticket.satisfaction is not None
        or ticket.customer.status == Customer.Status.ERASED
    ):
        return None
    token = tokens.csat_token(ticket.pk)
    request = CsatRequest(
        ticket=ticket, customer_id=ticket.customer_id, token=token, sent_at=now or timezone.now()
    )
    try:
        with transaction.atomic():
            request.save()
    except IntegrityError:  # another delivery of the signal got there first
        return CsatRequest.objects.get(ticket_id=ticket_id)
    message = _queue_message(
        customer_id=ticket.customer_id,
        template="service.csat",
        context={"title": ticket.subject, "link": tokens.public_link(tokens.csat_path(token))},
        key=f"satisfaction.csat:{ticket.pk}",
        source=f"service.ticket:{ticket.pk}",
    )
    request.message = message
    request.is_suppressed = message.status == "suppressed"
    request.save(update_fields=["message", "is_suppressed"])
    return request


def _score(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValidationFailed("score: a whole number 1–5", details={"field": "score"})
    try:
        score = int(str(value).strip())
    except ValueError:
        raise ValidationFailed(
            f"score: a whole number 1–5, got {value!r}", details={"field": "score"}
        ) from None
    if score not in rules.RATING_VALUES:
        raise ValidationFailed(
            f"score: a whole number 1–5, got {score}", details={"field": "score"}
        )
    return score


@transaction.atomic
def csat_answer(
    *, token: str, score: Any, comment: str = "", channel: str = CsatRequest.Channel.PAGE
) -> CsatRequest:
    """The customer's answer through their link: once (a second answer is refused, 409), while
    the link is valid (an expired one is refused, 403; a forged one names nothing, 404). The
    score is written to ``Ticket.satisfaction`` and the answer to the audit log."""
    ticket_id = tokens.csat_ticket(token)
    request = CsatRequest.objects.select_for_update().filter(ticket_id=ticket_id).first()
    if request is None or request.token != token:
        raise NotFound("this link is not valid: check that it was copied whole")
    if request.answered_at is not None:
        raise Conflict(
            f"this question was already answered on {timezone.localdate(request.answered_at)}: "
            "thank you"
        )
    value = _score(score)
    text = _text(comment, "comment", limit=MAX_COMMENT, required=False)
    now = timezone.now()
    request.score = value
    request.comment = text
    request.answered_at = now
    request.answer_channel = channel
    request.save(update_fields=["score", "comment", "answered_at", "answer_channel"])
    Ticket.objects.filter(pk=ticket_id).update(satisfaction=value)
    audit_record(
        AuditEntry(
            action="update",
            entity_type="satisfaction.csat",
            entity_id=str(request.pk),
            customer_id=request.customer_id,
            summary=f"CSAT {value}/5 for ticket {ticket_id}"
            + (" (needs follow-up)" if rules.is_low_score(value) else ""),
            changes={"score": value, "channel": channel, "has_comment": bool(text)},
        ),
        actor=None,
        actor_label="customer (signed link)",
    )
    return request


# ---------------------------------------------------------------------- surveys


@dataclass(frozen=True)
class SurveyData:
    """A survey as staff write it; ``questions`` are dicts {kind, text, choices, is_required}."""

    title: str
    opens_on: date
    questions: Sequence[Mapping[str, Any]]
    intro: str = ""
    audience: str = Survey.Audience.ALL
    audience_grade: str = ""
    audience_segment_id: int | None = None
    schedule: str = Survey.Schedule.ONCE
    open_days: int = 14


def _survey_values(data: SurveyData) -> tuple[dict[str, Any], list[rules.QuestionSpec]]:
    from patron.marketing.models import Segment
    from patron.scoring.models import Grade

    if not EARLIEST <= data.opens_on <= LATEST:
        raise ValidationFailed(
            f"opens_on: a day between {EARLIEST} and {LATEST}, got {data.opens_on}",
            details={"field": "opens_on"},
        )
    values: dict[str, Any] = {
        "title": _text(data.title, "title", limit=MAX_TITLE),
        "intro": _text(data.intro, "intro", limit=MAX_TEXT, required=False),
        "opens_on": data.opens_on,
        "audience_grade": "",
        "audience_segment": None,
    }
    if data.audience not in Survey.Audience.values:
        raise ValidationFailed(
            f"audience: one of {', '.join(Survey.Audience.values)}; got {data.audience!r}",
            details={"field": "audience"},
        )
    values["audience"] = data.audience
    if data.audience == Survey.Audience.GRADE:
        if data.audience_grade not in Grade.values:
            raise ValidationFailed(
                f"audience_grade: one of {', '.join(Grade.values)}; got {data.audience_grade!r}",
                details={"field": "audience_grade"},
            )
        values["audience_grade"] = data.audience_grade
    if data.audience == Survey.Audience.SEGMENT:
        segment = (
            Segment.objects.filter(pk=data.audience_segment_id).first()
            if data.audience_segment_id is not None
            else None
        )
        if segment is None:
            raise ValidationFailed(
                f"audience_segment_id: segment {data.audience_segment_id} not found",
                details={"field": "audience_segment_id"},
            )
        values["audience_segment"] = segment
    if data.schedule not in Survey.Schedule.values:
        raise ValidationFailed(
            f"schedule: one of {', '.join(Survey.Schedule.values)}; got {data.schedule!r}",
            details={"field": "schedule"},
        )
    values["schedule"] = data.schedule
    if not 1 <= int(data.open_days) <= 90:
        raise ValidationFailed(
            f"open_days: between 1 and 90, got {data.open_days}", details={"field": "open_days"}
        )
    values["open_days"] = int(data.open_days)
    try:
        questions = rules.validate_questions(data.questions)
    except rules.QuestionError as error:
        name = str(error).split(":", 1)[0]
        raise ValidationFailed(str(error), details={"field": name}) from None
    return values, questions


def _store_questions(survey: Survey, questions: Sequence[rules.QuestionSpec]) -> None:
    survey.questions.all().delete()
    SurveyQuestion.objects.bulk_create(
        SurveyQuestion(
            survey=survey,
            position=position,
            kind=spec.kind,
            text=spec.text,
            choices=list(spec.choices),
            is_required=spec.is_required,
        )
        for position, spec in enumerate(questions, start=1)
    )


@transaction.atomic
def survey_create(*, user: Any, data: SurveyData) -> Survey:
    """A new survey, a draft until scheduled."""
    require_permission(user, MANAGE_SURVEYS)
    values, questions = _survey_values(data)
    survey = Survey.objects.create(created_by=user, **values)
    _store_questions(survey, questions)
    _audit(user, entity="survey", pk=survey.pk, summary=f"survey {survey.title!r} created")
    return survey


@transaction.atomic
def survey_update(*, user: Any, survey_id: int, data: SurveyData) -> Survey:
    """Edit a draft that has never opened (the questions of a survey that has answers are
    frozen, so its runs stay comparable: copy it instead)."""
    require_permission(user, MANAGE_SURVEYS)
    survey = locked(Survey, survey_id, "survey")
    if survey.status != Survey.Status.DRAFT:
        raise Conflict(
            f"survey {survey_id} is {survey.status}: only a draft is edited (unschedule it first)"
        )
    if survey.runs.exists():
        raise Conflict(f"survey {survey_id} has already run: its questions are frozen")
    values, questions = _survey_values(data)
    for name, value in values.items():
        setattr(survey, name, value)
    survey.save()
    _store_questions(survey, questions)
    _audit(user, entity="survey", pk=survey.pk, summary=f"survey {survey.title!r} edited")
    return survey


@transaction.atomic
def survey_schedule(*, user: Any, survey_id: int, today: date | None = None) -> Survey:
    """Draft -> scheduled: the daily job opens it on its next day (``next_run_on``)."""
    require_permission(user, MANAGE_SURVEYS)
    survey = locked(Survey, survey_id, "survey")
    status = transition(rules.survey_next, survey.status, "schedule")
    today = today or timezone.localdate()
    last = survey.runs.order_by("-run_on").values_list("run_on", flat=True).first()
    if survey.schedule == Survey.Schedule.ONCE and last is None and survey.opens_on < today:
        raise ValidationFailed(
            f"opens_on: {survey.opens_on} has passed; choose today or a later day",
            details={"field": "opens_on"},
        )
    next_day = rules.next_run_on(schedule=survey.schedule, opens_on=survey.opens_on, after=last)
    if next_day is None:
        raise Conflict(f"survey {survey_id} ran once already: a one-off survey does not reopen")
    survey.status = status
    survey.next_run_on = max(next_day, today) if survey.schedule == "once" else next_day
    survey.save(update_fields=["status", "next_run_on", "updated_at"])
    _audit(
        user,
        entity="survey",
        pk=survey.pk,
        summary=f"survey scheduled: opens on {survey.next_run_on}",
        status=status,
    )
    return survey


@transaction.atomic
def survey_unschedule(*, user: Any, survey_id: int) -> Survey:
    """Scheduled -> draft (to edit it before it opens)."""
    require_permission(user, MANAGE_SURVEYS)
    survey = locked(Survey, survey_id, "survey")
    survey.status = transition(rules.survey_next, survey.status, "unschedule")
    survey.next_run_on = None
    survey.save(update_fields=["status", "next_run_on", "updated_at"])
    _audit(user, entity="survey", pk=survey.pk, summary="survey unscheduled", status=survey.status)
    return survey


def _close_runs(survey: Survey, now: datetime) -> int:
    return SurveyRun.objects.filter(survey=survey, closed_at__isnull=True).update(closed_at=now)


@transaction.atomic
def survey_close(*, user: Any, survey_id: int, now: datetime | None = None) -> Survey:
    """Scheduled or open -> closed for good: the open run stops taking answers now."""
    require_permission(user, MANAGE_SURVEYS)
    survey = locked(Survey, survey_id, "survey")
    survey.status = transition(rules.survey_next, survey.status, "close")
    survey.next_run_on = None
    survey.save(update_fields=["status", "next_run_on", "updated_at"])
    _close_runs(survey, now or timezone.now())
    _audit(user, entity="survey", pk=survey.pk, summary="survey closed", status=survey.status)
    return survey


def audience_customers(survey: Survey) -> QuerySet[Customer]:
    """Who a survey is sent to: active customers, all of them, those of a grade (their latest
    grade, ``CustomerScore.grade``), or a marketing segment's members now. Consent is the
    outbox's to check, per message."""
    if survey.audience == Survey.Audience.SEGMENT:
        from patron.marketing.selectors import segment_queryset, segment_rule

        if survey.audience_segment is None:
            raise Conflict(f"survey {survey.pk}: its segment no longer exists")
        members = segment_queryset(segment_rule(survey.audience_segment.rule))
        return members.filter(status=Customer.Status.ACTIVE)
    customers = Customer.objects.filter(status=Customer.Status.ACTIVE)
    if survey.audience == Survey.Audience.GRADE:
        return customers.filter(score__grade=survey.audience_grade)
    return customers


@dataclass
class SurveySendResult:
    opened: list[int] = field(default_factory=list)  # run ids
    closed_runs: int = 0
    invited: int = 0
    suppressed: int = 0
    failed: dict[int, str] = field(default_factory=dict)  # survey id -> why

    def as_dict(self) -> dict[str, Any]:
        return {
            "opened_runs": self.opened,
            "closed_runs": self.closed_runs,
            "invited": self.invited,
            "suppressed": self.suppressed,
            "failed": {str(k): v for k, v in self.failed.items()},
        }


def _invite(survey: Survey, run: SurveyRun, now: datetime) -> tuple[int, int]:
    """Invite the audience to ``run``: one invitation per (run, customer), one message per
    invitation (the outbox's key makes a repeat a no-op). Returns (invited, suppressed)."""
    already = set(SurveyInvitation.objects.filter(run=run).values_list("customer_id", flat=True))
    invited = suppressed = 0
    ids = audience_customers(survey).order_by("pk").values_list("pk", flat=True)
    for customer_id in ids.iterator(chunk_size=2000):
        if customer_id in already:
            continue
        token = tokens.survey_token(run.pk, customer_id)
        invitation = SurveyInvitation.objects.create(
            run=run, customer_id=customer_id, token=token, created_at=now
        )
        message = _queue_message(
            customer_id=customer_id,
            template="survey.invitation",
            context={
                "title": survey.title,
                "link": tokens.public_link(tokens.survey_path(token)),
            },
            key=f"satisfaction.survey:{run.pk}:{customer_id}",
            source=f"satisfaction.survey:{survey.pk}",
        )
        invitation.message = message
        invitation.is_suppressed = message.status == "suppressed"
        invitation.save(update_fields=["message", "is_suppressed"])
        invited += 1
        suppressed += int(invitation.is_suppressed)
    return invited, suppressed


def _end_run(survey_id: int, now: datetime) -> int:
    """Close the survey's runs whose time is up; a quarterly survey waits for its next
    quarter, a one-off one closes. Returns the runs closed."""
    survey = locked(Survey, survey_id, "survey")
    due = list(SurveyRun.objects.filter(survey=survey, closed_at__isnull=True, closes_at__lte=now))
    for run in due:
        run.closed_at = now
        run.save(update_fields=["closed_at"])
    if due and survey.status == Survey.Status.OPEN:
        last = max(run.run_on for run in due)
        if survey.schedule == Survey.Schedule.QUARTERLY:
            survey.status = transition(rules.survey_next, survey.status, "end_run")
            survey.next_run_on = rules.next_run_on(
                schedule=survey.schedule, opens_on=survey.opens_on, after=last
            )
        else:
            survey.status = transition(rules.survey_next, survey.status, "close")
            survey.next_run_on = None
        survey.save(update_fields=["status", "next_run_on", "updated_at"])
        _audit(
            None,
            entity="survey",
            pk=survey.pk,
            summary=f"survey run ended; survey {survey.status}",
            status=survey.status,
        )
    return len(due)


def _open_run(survey_id: int, now: datetime, today: date) -> tuple[SurveyRun | None, int, int]:
    survey = locked(Survey, survey_id, "survey")
    if survey.status != Survey.Status.SCHEDULED or not survey.next_run_on:
        return None, 0, 0
    if survey.next_run_on > today:
        return None, 0, 0
    run, _ = SurveyRun.objects.get_or_create(
        survey=survey,
        run_on=survey.next_run_on,
        defaults={
            "label": rules.run_label(schedule=survey.schedule, run_on=survey.next_run_on),
            "opened_at": now,
            "closes_at": now + timedelta(days=survey.open_days),
        },
    )
    survey.status = transition(rules.survey_next, survey.status, "open")
    survey.next_run_on = None
    survey.save(update_fields=["status", "next_run_on", "updated_at"])
    invited, suppressed = _invite(survey, run, now)
    _audit(
        None,
        entity="survey",
        pk=survey.pk,
        summary=f"survey run {run.label} opened: {invited} invited, {suppressed} not sent",
        status=survey.status,
    )
    return run, invited, suppressed


def surveys_send(*, now: datetime | None = None) -> SurveySendResult:
    """The daily job: end the runs whose time is up, then open the surveys that are due and
    invite their audience. Safe to run twice: a run is one per (survey, day), an invitation one
    per (run, customer), a message one per invitation. Each survey is its own transaction, so
    one survey's failure (a segment whose rule no longer validates) leaves the others done."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    result = SurveySendResult()
    ending = (
        SurveyRun.objects.filter(closed_at__isnull=True, closes_at__lte=now)
        .values_list("survey_id", flat=True)
        .distinct()
    )
    for survey_id in sorted(set(ending)):
        with transaction.atomic():
            result.closed_runs += _end_run(survey_id, now)
    due = Survey.objects.filter(status=Survey.Status.SCHEDULED, next_run_on__lte=today)
    for survey_id in due.order_by("pk").values_list("pk", flat=True):
        try:
            with transaction.atomic():
                run, invited, suppressed = _open_run(survey_id, now, today)
        except PatronError as error:
            log.warning("survey %s was not opened: %s", survey_id, error.message)
            result.failed[survey_id] = error.message
            continue
        if run is not None:
            result.opened.append(run.pk)
            result.invited += invited
            result.suppressed += suppressed
    return result


@transaction.atomic
def survey_answer(
    *, token: str, answers: Mapping[str, Any], now: datetime | None = None
) -> SurveyInvitation:
    """The customer's answers through their link, keyed ``q<question id>``: once, while the
    run is open; a required question left blank or a value outside its kind is refused naming
    the question (422) and nothing is stored."""
    run_id, customer_id = tokens.survey_invitation_key(token)
    invitation = (
        SurveyInvitation.objects.select_for_update()
        .select_related("run")
        .filter(run_id=run_id, customer_id=customer_id)
        .first()
    )
    if invitation is None or invitation.token != token:
        raise NotFound("this link is not valid: check that it was copied whole")
    now = now or timezone.now()
    run = invitation.run
    if invitation.answered_at is not None:
        raise Conflict("you have already answered this survey: thank you")
    if run.closed_at is not None or run.closes_at <= now:
        raise Conflict(
            f"this survey closed on {timezone.localdate(run.closed_at or run.closes_at)}"
        )
    questions = [
        rules.QuestionView(q.pk, q.kind, tuple(q.choices or ()), q.is_required)
        for q in SurveyQuestion.objects.filter(survey_id=run.survey_id).order_by("position")
    ]
    try:
        cleaned = rules.clean_answers(questions, answers)
    except rules.QuestionError as error:
        name = str(error).split(":", 1)[0]
        raise ValidationFailed(str(error), details={"field": name}) from None
    SurveyAnswer.objects.bulk_create(
        SurveyAnswer(
            invitation=invitation,
            question_id=answer.question_id,
            rating=answer.rating,
            choice=answer.choice,
            text=answer.text,
        )
        for answer in cleaned
    )
    invitation.answered_at = now
    invitation.save(update_fields=["answered_at"])
    return invitation


# ---------------------------------------------------------------------- suggestions


def suggestions_per_hour() -> int:
    return int(getattr(settings, "PATRON_SUGGESTIONS_PER_HOUR", 5))


def _rate_limit(client: str) -> None:
    """At most ``suggestions_per_hour()`` suggestions per client address and clock hour (the
    cache counts; the address is hashed, never stored)."""
    digest = hashlib.sha256(f"{settings.SECRET_KEY}:{client}".encode()).hexdigest()[:32]
    key = f"satisfaction:suggest:{digest}:{int(time.time() // 3600)}"
    cache.add(key, 0, timeout=3600)
    try:
        count = cache.incr(key)
    except ValueError:  # evicted between add and incr
        cache.set(key, 1, timeout=3600)
        count = 1
    if count > suggestions_per_hour():
        raise TooManyRequests(
            "too many suggestions from this address: please try again in an hour",
            details={"limit_per_hour": suggestions_per_hour()},
        )


@transaction.atomic
def suggestion_submit(
    *,
    text: str,
    channel: str,
    user: Any = None,
    customer_id: int | None = None,
    client: str = "",
) -> Suggestion:
    """Put a suggestion in the box: staff record one from any channel (``user``, who needs
    ``VIEW_SATISFACTION``), anyone drops one on the public page (``user`` None, rate limited
    per ``client`` address, anonymous allowed)."""
    if user is not None:
        require_permission(user, VIEW_SATISFACTION)
    if channel not in Suggestion.Channel.values:
        raise ValidationFailed(
            f"channel: one of {', '.join(Suggestion.Channel.values)}; got {channel!r}",
            details={"field": "channel"},
        )
    body = _text(text, "text", limit=MAX_SUGGESTION)
    if customer_id is not None and not Customer.objects.filter(pk=customer_id).exists():
        raise NotFound(f"customer {customer_id} not found", details={"field": "customer_id"})
    if user is None:
        _rate_limit(client)
    suggestion = Suggestion.objects.create(
        customer_id=customer_id,
        channel=channel,
        text=body,
        created_at=timezone.now(),
        recorded_by=user,
    )
    _audit(
        user,
        entity="suggestion",
        pk=suggestion.pk,
        customer_id=customer_id,
        summary=f"suggestion received ({channel})",
        label="suggestion box",
    )
    return suggestion


@transaction.atomic
def suggestion_update(
    *, user: Any, suggestion_id: int, action: str | None = None, note: str | None = None
) -> Suggestion:
    """Review a suggestion: move it (review, plan, decline) and/or write the staff note."""
    require_permission(user, MANAGE_PLANS)
    suggestion = locked(Suggestion, suggestion_id, "suggestion")
    before = suggestion.status
    if action:
        suggestion.status = transition(rules.suggestion_next, before, action)
        suggestion.reviewed_by = user
        suggestion.reviewed_at = timezone.now()
    if note is not None:
        suggestion.staff_note = _text(note, "staff_note", limit=MAX_TEXT, required=False)
    suggestion.save()
    _audit(
        user,
        entity="suggestion",
        pk=suggestion.pk,
        customer_id=suggestion.customer_id,
        summary=f"suggestion {before} -> {suggestion.status}" if action else "suggestion noted",
        status=suggestion.status,
    )
    return suggestion


# ---------------------------------------------------------------------- improvement plans


def _owner(owner_id: Any) -> User:
    owner = User.objects.filter(pk=owner_id, is_active=True).first() if owner_id else None
    if owner is None:
        raise ValidationFailed(
            f"owner_id: user {owner_id} is not an active user", details={"field": "owner_id"}
        )
    return owner


@dataclass(frozen=True)
class LinkTarget:
    kind: str
    target_id: int
    note: str = ""


_LINK_MODELS: dict[str, tuple[str, Any]] = {
    PlanLink.Kind.TICKET: ("ticket", Ticket),
    PlanLink.Kind.CSAT: ("csat_request", CsatRequest),
    PlanLink.Kind.SURVEY_ANSWER: ("survey_answer", SurveyAnswer),
    PlanLink.Kind.SUGGESTION: ("suggestion", Suggestion),
}


def _add_link(user: Any, plan: ImprovementPlan, target: LinkTarget) -> PlanLink:
    if target.kind not in _LINK_MODELS:
        raise ValidationFailed(
            f"kind: one of {', '.join(_LINK_MODELS)}; got {target.kind!r}",
            details={"field": "kind"},
        )
    name, model = _LINK_MODELS[target.kind]
    found = model.objects.filter(pk=target.target_id).first()
    if found is None:
        raise NotFound(
            f"{target.kind.replace('_', ' ')} {target.target_id} not found",
            details={"field": "target_id"},
        )
    if PlanLink.objects.filter(plan=plan, kind=target.kind, **{name: found}).exists():
        raise Conflict(f"plan {plan.pk} is already linked to {target.kind} {target.target_id}")
    note = _text(target.note, "note", limit=300, required=False)
    link = PlanLink.objects.create(
        plan=plan, kind=target.kind, note=note, created_by=user, **{name: found}
    )
    if target.kind == PlanLink.Kind.SUGGESTION and found.status in ("new", "reviewed"):
        found.status = transition(rules.suggestion_next, found.status, "plan")
        found.reviewed_by = user
        found.reviewed_at = timezone.now()
        found.save(update_fields=["status", "reviewed_by", "reviewed_at"])
    return link


@dataclass(frozen=True)
class PlanData:
    title: str
    problem: str
    owner_id: int
    deadline: date


@transaction.atomic
def plan_create(*, user: Any, data: PlanData, links: Sequence[LinkTarget] = ()) -> ImprovementPlan:
    """A new improvement plan (proposed), with what prompted it."""
    require_permission(user, MANAGE_PLANS)
    plan = ImprovementPlan.objects.create(
        title=_text(data.title, "title", limit=MAX_PLAN_TITLE),
        problem=_text(data.problem, "problem", limit=MAX_TEXT),
        owner=_owner(data.owner_id),
        deadline=data.deadline,
        created_by=user,
    )
    for target in links:
        _add_link(user, plan, target)
    _audit(
        user,
        entity="plan",
        pk=plan.pk,
        summary=f"improvement plan {plan.title!r} proposed, due {plan.deadline}",
        owner=plan.owner.get_username(),
    )
    return plan


PLAN_EDITABLE = ("title", "problem", "owner_id", "deadline", "outcome")


@transaction.atomic
def plan_update(*, user: Any, plan_id: int, changes: Mapping[str, Any]) -> ImprovementPlan:
    """Edit a plan: title, problem, owner and deadline while it is live; the outcome note at
    any time. The audit log keeps which fields changed."""
    require_permission(user, MANAGE_PLANS)
    plan = locked(ImprovementPlan, plan_id, "improvement plan")
    unknown = set(changes) - set(PLAN_EDITABLE)
    if unknown:
        raise ValidationFailed(
            f"plan {plan_id}: cannot change {', '.join(sorted(unknown))}",
            details={"field": sorted(unknown)[0]},
        )
    if set(changes) - {"outcome"} and plan.status not in rules.LIVE_PLAN:
        raise Conflict(f"plan {plan_id} is {plan.status}: only its outcome note can change")
    changed = []
    if "title" in changes:
        plan.title = _text(changes["title"], "title", limit=MAX_PLAN_TITLE)
        changed.append("title")
    if "problem" in changes:
        plan.problem = _text(changes["problem"], "problem", limit=MAX_TEXT)
        changed.append("problem")
    if "owner_id" in changes:
        plan.owner = _owner(changes["owner_id"])
        changed.append("owner")
    if "deadline" in changes:
        if not isinstance(changes["deadline"], date):
            raise ValidationFailed("deadline: a date", details={"field": "deadline"})
        plan.deadline = changes["deadline"]
        changed.append("deadline")
    if "outcome" in changes:
        plan.outcome = _text(changes["outcome"], "outcome", limit=MAX_TEXT, required=False)
        changed.append("outcome")
    plan.save()
    _audit(
        user,
        entity="plan",
        pk=plan.pk,
        summary=f"improvement plan edited: {', '.join(changed) or 'nothing'}",
    )
    return plan


@transaction.atomic
def plan_transition(*, user: Any, plan_id: int, action: str, outcome: str = "") -> ImprovementPlan:
    """Start, finish or drop a plan; finishing or dropping records what came of it."""
    require_permission(user, MANAGE_PLANS)
    plan = locked(ImprovementPlan, plan_id, "improvement plan")
    before = plan.status
    plan.status = transition(rules.plan_next, before, action)
    now = timezone.now()
    if action == "start":
        plan.started_at = now
    if action in ("finish", "drop"):
        plan.outcome = reason_text(outcome, f"plan {plan_id}: outcome", limit=MAX_TEXT)
        plan.finished_at = now
    plan.save()
    _audit(
        user,
        entity="plan",
        pk=plan.pk,
        summary=f"improvement plan {before} -> {plan.status}",
        status=plan.status,
    )
    return plan


@transaction.atomic
def plan_link_add(*, user: Any, plan_id: int, target: LinkTarget) -> PlanLink:
    """Link a plan to a ticket, a CSAT answer, a survey answer or a suggestion that prompted
    it (a suggestion becomes planned; a low CSAT answer no longer needs a follow-up)."""
    require_permission(user, MANAGE_PLANS)
    plan = locked(ImprovementPlan, plan_id, "improvement plan")
    link = _add_link(user, plan, target)
    _audit(
        user,
        entity="plan",
        pk=plan.pk,
        summary=f"improvement plan linked to {target.kind} {target.target_id}",
    )
    return link


@transaction.atomic
def plan_link_remove(*, user: Any, plan_id: int, link_id: int) -> None:
    require_permission(user, MANAGE_PLANS)
    plan = locked(ImprovementPlan, plan_id, "improvement plan")
    link = PlanLink.objects.filter(pk=link_id, plan=plan).first()
    if link is None:
        raise NotFound(f"link {link_id} of plan {plan_id} not found")
    kind, target = link.kind, link.target_id
    link.delete()
    _audit(
        user, entity="plan", pk=plan.pk, summary=f"improvement plan unlinked from {kind} {target}"
    )
