"""Writing to customers: queue a message (idempotent, consent checked), deliver the due ones,
cancel one, and withdraw consent from an unsubscribe link.

Delivery is at least once, never twice on purpose: a run *claims* due messages in a short
transaction (a conditional update from queued to sending; ``SELECT … FOR UPDATE SKIP LOCKED``
on PostgreSQL so two workers take different messages), sends each outside any transaction (an
SMTP server or a webhook must not hold the database's write lock), then records the answer in
another short transaction. A run that dies while sending leaves messages in ``sending``; a later
run takes them back after ``SENDING_LEASE`` and counts that as a failed attempt.

Consent and the address are checked twice: when a message is queued (it is recorded as
suppressed at once) and again just before it is sent (an unsubscribe in between wins).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from patron.account.roles import CANCEL_MESSAGES
from patron.account.services import require_permission
from patron.audit.services import AuditEntry, audit_record
from patron.customer.models import Consent, Customer
from patron.errors import Conflict, NotFound, ValidationFailed
from patron.outbox import adapters, links, rules, templates
from patron.outbox.models import Message

logger = logging.getLogger(__name__)

MAX_KEY = 200
MAX_REASON = 2000
#: A message claimed longer ago than this is taken back (its run stopped while sending).
#: Runs claim ``CLAIM_CHUNK`` at a time, so a live run never holds a claim this long: twenty
#: webhook calls that each time out after 10 s take under four minutes.
SENDING_LEASE = timedelta(minutes=15)
CLAIM_CHUNK = 20


# ---------------------------------------------------------------------- reading the customer


def customer_addresses(customer: Customer) -> dict[str, str]:
    """The customer's address on each channel ('' when none). WeChat and app messages are
    addressed by the shop's own customer reference: the shop's system knows the openid or the
    device behind it, Patron does not."""
    reference = f"{customer.source}:{customer.external_id}"
    return {
        rules.EMAIL: (customer.email or "").strip(),
        rules.SMS: (customer.phone or "").strip(),
        rules.PHONE: (customer.phone or "").strip(),
        rules.WECHAT: reference,
        rules.APP: reference,
    }


def latest_consents(customer_id: int, purpose: str) -> dict[str, bool | None]:
    """Channel -> ``is_granted`` of the newest consent row for (customer, purpose, channel)."""
    latest: dict[str, bool | None] = {}
    rows = (
        Consent.objects.filter(customer_id=customer_id, purpose=purpose)
        .order_by("-recorded_at", "-id")
        .values_list("channel", "is_granted")
    )
    for channel, is_granted in rows:
        latest.setdefault(channel, is_granted)
    return latest


def customer_language(customer: Customer) -> str:
    """The customer's language when we know it, else the site's (zh-Hans)."""
    return templates.language_for(getattr(customer, "language", ""), settings.LANGUAGE_CODE)


def _route(customer: Customer, *, purpose: str, channel: str | None) -> rules.Route:
    return rules.route(
        purpose=purpose,
        channel=channel,
        addresses=customer_addresses(customer),
        latest=latest_consents(customer.pk, purpose),
        is_erased=customer.status == Customer.Status.ERASED,
    )


# ---------------------------------------------------------------------- queueing


def _validate_request(*, template: str, purpose: str, channel: str | None, key: str) -> str:
    if purpose not in rules.PURPOSES:
        raise ValidationFailed(
            f"message purpose {purpose!r} is unknown; use one of {', '.join(rules.PURPOSES)}"
        )
    if channel is not None and channel not in rules.CHANNELS:
        raise ValidationFailed(
            f"message channel {channel!r} is unknown; use one of {', '.join(rules.CHANNELS)}"
        )
    key = (key or "").strip()
    if not key:
        raise ValidationFailed("message key: required (it makes queueing idempotent)")
    if len(key) > MAX_KEY:
        raise ValidationFailed(f"message key: longer than {MAX_KEY} characters")
    try:
        templates.template_get(template)
    except templates.TemplateError as error:
        raise ValidationFailed(str(error)) from error
    return key


def _same_request(message: Message, *, customer_id: int, template: str, key: str) -> Message:
    if message.customer_id != customer_id or message.template != template:
        raise Conflict(
            f"message key {key!r} was already used for message {message.pk} "
            f"(customer {message.customer_id}, template {message.template}): "
            "a key names one message to one customer"
        )
    return message


def message_queue(
    *,
    customer_id: int,
    template: str,
    purpose: str,
    context: dict[str, Any] | None = None,
    channel: str | None = None,
    key: str,
    source: str = "",
    headers: dict[str, str] | None = None,
) -> Message:
    """Queue one message to a customer, inside the caller's transaction. `key` makes it idempotent:
    queueing the same key twice returns the first message (a job re-run never sends twice).
    `purpose` is a patron.customer.models.Consent.Purpose value ("marketing", "service", "profiling").
    `channel` None = the customer's preferred reachable channel (e-mail if they have one, else sms if phone).
    If consent forbids it or the customer has no address for the channel, the message is recorded with
    status "suppressed" and the reason, never sent.

    The message is rendered now, in the customer's language, with ``$name`` the customer's
    name; marketing messages get the unsubscribe link appended. Errors: 404 unknown customer,
    422 unknown template, purpose or channel, or a context missing a key the template needs,
    409 a key already used for another customer or template.
    """
    key = _validate_request(template=template, purpose=purpose, channel=channel, key=key)
    existing = Message.objects.filter(key=key).first()
    if existing is not None:
        return _same_request(existing, customer_id=customer_id, template=template, key=key)
    customer = Customer.objects.filter(pk=customer_id).first()
    if customer is None:
        raise NotFound(f"customer {customer_id} not found")
    language = customer_language(customer)
    decided = _route(customer, purpose=purpose, channel=channel)
    link = (
        links.unsubscribe_url(customer_id=customer.pk, purpose=purpose, channel=decided.channel)
        if purpose == rules.MARKETING
        else ""
    )
    try:
        rendered = templates.render(
            template,
            language=language,
            customer_name=customer.name,
            context=context,
            unsubscribe_link=link,
        )
    except templates.TemplateError as error:
        raise ValidationFailed(str(error)) from error
    now = timezone.now()
    message = Message(
        customer=customer,
        channel=decided.channel,
        purpose=purpose,
        template=template,
        language=rendered.language,
        subject=rendered.subject,
        body=rendered.body,
        recipient=decided.recipient,
        key=key,
        source=source[:200],
        headers=dict(headers or {}),
        created_at=now,
    )
    if decided.is_allowed:
        message.status = Message.Status.QUEUED
        message.next_attempt_at = now
    else:
        message.status = Message.Status.SUPPRESSED
        message.reason = decided.reason
    try:
        with transaction.atomic():  # a savepoint: a lost race on the key leaves the caller's
            message.save()  # transaction usable
    except IntegrityError:
        winner = Message.objects.filter(key=key).first()
        if winner is None:
            raise
        return _same_request(winner, customer_id=customer_id, template=template, key=key)
    return message


# ---------------------------------------------------------------------- delivery


@dataclass(frozen=True)
class DeliveryResult:
    """What one delivery run did. ``recovered``: messages a stopped run left in sending."""

    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    suppressed: int = 0
    recovered: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "claimed": self.claimed,
            "sent": self.sent,
            "retried": self.retried,
            "failed": self.failed,
            "suppressed": self.suppressed,
            "recovered": self.recovered,
        }


def service_message(
    customer_id: int, template: str, *, key: str, source: str, **context: Any
) -> Message:
    """A service message to the customer (purpose "service"), queued in the caller's transaction
    and sent after it; every context value is rendered as text. See ``message_queue``."""
    return message_queue(
        customer_id=customer_id,
        template=template,
        purpose=rules.SERVICE,
        context={name: str(value) for name, value in context.items()},
        key=key,
        source=source,
    )


def _lockable(queryset: Any) -> Any:
    """Rows other workers hold are skipped, not waited for (PostgreSQL). SQLite's write
    transactions are serial, so the conditional update alone decides there."""
    if connection.features.has_select_for_update_skip_locked:
        return queryset.select_for_update(skip_locked=True)
    return queryset


def _after_failed_attempt(attempts: int, error: str, now: datetime) -> dict[str, Any]:
    """The fields of a message whose ``attempts``-th attempt failed with a transient error."""
    delay = rules.retry_delay(attempts)
    if delay is None:
        return {
            "status": rules.next_state(rules.SENDING, "fail"),
            "reason": f"gave up after {attempts} attempts: {error}"[:MAX_REASON],
            "next_attempt_at": None,
        }
    return {
        "status": rules.next_state(rules.SENDING, "retry"),
        "next_attempt_at": now + delay,
    }


def _recover_stale(now: datetime) -> int:
    """Take back messages claimed longer than ``SENDING_LEASE`` ago."""
    recovered = 0
    with transaction.atomic():
        stale = _lockable(
            Message.objects.filter(status=rules.SENDING, claimed_at__lt=now - SENDING_LEASE)
        ).values_list("pk", "attempts")
        for pk, attempts in list(stale[:500]):
            error = "the delivery run stopped while sending (it may have gone out once)"
            fields = _after_failed_attempt(attempts + 1, error, now)
            if fields["status"] == rules.QUEUED:
                fields["status"] = rules.next_state(rules.SENDING, "recover")
            recovered += Message.objects.filter(pk=pk, status=rules.SENDING).update(
                attempts=attempts + 1, last_error=error, claimed_at=None, updated_at=now, **fields
            )
    return recovered


def _claim(now: datetime, limit: int) -> list[int]:
    with transaction.atomic():
        due = _lockable(
            Message.objects.filter(status=rules.QUEUED, next_attempt_at__lte=now).order_by(
                "next_attempt_at", "id"
            )
        )
        ids = list(due.values_list("pk", flat=True)[:limit])
        if not ids:
            return []
        claimed = rules.next_state(rules.QUEUED, "claim")
        Message.objects.filter(pk__in=ids, status=rules.QUEUED).update(
            status=claimed, claimed_at=now, updated_at=now
        )
        return list(
            Message.objects.filter(pk__in=ids, status=claimed, claimed_at=now)
            .order_by("next_attempt_at", "id")
            .values_list("pk", flat=True)
        )


def _record(pk: int, now: datetime, **fields: Any) -> bool:
    """Write a delivery outcome, only if the message is still ours (sending)."""
    with transaction.atomic():
        return bool(
            Message.objects.filter(pk=pk, status=rules.SENDING).update(
                claimed_at=None, updated_at=now, **fields
            )
        )


def _deliver_one(pk: int, now: datetime) -> str:
    """Send one claimed message; returns sent, retried, failed, suppressed, or skipped when it
    is no longer ours (deleted with its customer meanwhile)."""
    message = Message.objects.select_related("customer").filter(pk=pk).first()
    if message is None or message.status != rules.SENDING:
        return "skipped"
    decided = _route(message.customer, purpose=message.purpose, channel=message.channel)
    if not decided.is_allowed:
        _record(
            pk,
            now,
            status=rules.next_state(rules.SENDING, "suppress"),
            reason=f"at delivery: {decided.reason}",
            next_attempt_at=None,
        )
        return "suppressed"
    outgoing = adapters.Outgoing(
        message_id=message.pk,
        key=message.key,
        channel=message.channel,
        purpose=message.purpose,
        template=message.template,
        language=message.language,
        recipient=decided.recipient,
        subject=message.subject,
        body=message.body,
        headers=dict(message.headers or {}),
        unsubscribe_url=links.unsubscribe_url(
            customer_id=message.customer_id, purpose=message.purpose, channel=message.channel
        )
        if message.purpose == rules.MARKETING
        else "",
    )
    attempts = message.attempts + 1
    try:
        provider_id = adapters.adapter_for(message.channel).send(outgoing)
    except adapters.PermanentError as error:
        _record(
            pk,
            now,
            status=rules.next_state(rules.SENDING, "fail"),
            attempts=attempts,
            reason=str(error)[:MAX_REASON],
            last_error=str(error)[:MAX_REASON],
            next_attempt_at=None,
            recipient=decided.recipient,
        )
        return "failed"
    except (adapters.TransientError, ImproperlyConfigured) as error:
        problem = str(error)
    except Exception as error:  # an adapter's bug must not leave the message in sending
        logger.exception("outbox: adapter for %s failed on message %s", message.channel, pk)
        problem = f"{type(error).__name__}: {error}"
    else:
        _record(
            pk,
            now,
            status=rules.next_state(rules.SENDING, "sent"),
            attempts=attempts,
            sent_at=now,
            next_attempt_at=None,
            provider_message_id=str(provider_id or "")[:200],
            recipient=decided.recipient,
        )
        return "sent"
    fields = _after_failed_attempt(attempts, problem, now)
    _record(pk, now, attempts=attempts, last_error=problem[:MAX_REASON], **fields)
    return "retried" if fields["status"] == rules.QUEUED else "failed"


def outbox_deliver(*, limit: int = 200, now: datetime | None = None) -> DeliveryResult:
    """Send up to ``limit`` due messages and record each outcome: sent; queued again after the
    backoff of ``rules.BACKOFF_MINUTES`` on a transient error; failed on a permanent error or
    after the last attempt; suppressed when consent or the address went away meanwhile.

    Safe to run twice, and in two workers at once: a message is claimed by one run only.
    ``now`` fixes the run's clock (tests); by default every claim and outcome reads the real
    clock, so that a long run's late claims are not mistaken for a stopped run's.
    """
    if limit < 1:
        raise ValidationFailed(f"limit must be 1 or more, got {limit}")

    def clock() -> datetime:
        return now if now is not None else timezone.now()

    counts = {"sent": 0, "retried": 0, "failed": 0, "suppressed": 0, "skipped": 0}
    recovered = _recover_stale(clock())
    claimed = 0
    while claimed < limit:
        ids = _claim(clock(), min(CLAIM_CHUNK, limit - claimed))
        if not ids:
            break
        claimed += len(ids)
        for pk in ids:
            counts[_deliver_one(pk, clock())] += 1
    counts.pop("skipped")
    return DeliveryResult(claimed=claimed, recovered=recovered, **counts)


# ---------------------------------------------------------------------- cancelling


def _reason_text(reason: str, what: str) -> str:
    text = (reason or "").strip()
    if not text:
        raise ValidationFailed(f"{what}: a reason is required and is recorded")
    if len(text) > MAX_REASON:
        raise ValidationFailed(f"{what}: the reason is longer than {MAX_REASON} characters")
    return text


def message_cancel(*, user: Any, message_id: int, reason: str) -> Message:
    """Stop a queued message before it is sent (409 once it is sending or final)."""
    require_permission(user, CANCEL_MESSAGES)
    reason = _reason_text(reason, "cancelling a message")
    with transaction.atomic():
        message = Message.objects.select_for_update().filter(pk=message_id).first()
        if message is None:
            raise NotFound(f"message {message_id} not found")
        try:
            status = rules.next_state(message.status, "cancel")
        except rules.TransitionRefused as error:
            raise Conflict(f"message {message_id}: {error}") from error
        previous = message.status
        message.status = status
        message.reason = reason
        message.next_attempt_at = None
        message.cancelled_by = user
        message.save(update_fields=["status", "reason", "next_attempt_at", "cancelled_by"])
        audit_record(
            AuditEntry(
                action="update",
                entity_type="outbox.message",
                entity_id=str(message.pk),
                customer_id=message.customer_id,
                summary=f"message {message.template} cancelled ({previous} -> {status})",
                changes={"status": status, "reason": reason},
            ),
            actor=user,
        )
    return message


# ---------------------------------------------------------------------- unsubscribe


UNSUBSCRIBE_EVIDENCE = "unsubscribe link"


def consent_withdraw_by_link(token: str) -> Consent:
    """Record that the customer withdrew consent through the link in a message (no login:
    the signed token is the authority). Returns the consent row in force afterwards; when
    consent was already withdrawn nothing new is recorded. 404 for a bad or tampered token.
    """
    request = links.unsubscribe_read(token)
    with transaction.atomic():
        customer = Customer.objects.filter(pk=request.customer_id).first()
        if customer is None:
            raise NotFound(links.INVALID)
        latest = (
            Consent.objects.filter(
                customer=customer, purpose=request.purpose, channel=request.channel
            )
            .order_by("-recorded_at", "-id")
            .first()
        )
        if latest is not None and not latest.is_granted:
            return latest
        consent = Consent.objects.create(
            source="patron",
            external_id=f"unsubscribe-{uuid.uuid4().hex}",
            customer=customer,
            purpose=request.purpose,
            channel=request.channel,
            is_granted=False,
            recorded_at=timezone.now(),
            evidence=UNSUBSCRIBE_EVIDENCE,
        )
        audit_record(
            AuditEntry(
                action="update",
                entity_type="customer.consent",
                entity_id=str(consent.pk),
                customer_id=customer.pk,
                summary=(
                    f"{request.purpose} consent for {request.channel} withdrawn "
                    "through the unsubscribe link"
                ),
                changes={
                    "purpose": request.purpose,
                    "channel": request.channel,
                    "is_granted": False,
                    "evidence": UNSUBSCRIBE_EVIDENCE,
                },
            ),
            actor_label="customer (unsubscribe link)",
        )
    return consent
