"""The desk as the customer sees it, without an account: the help form, a ticket's page
(``/help/t/<token>/``) and the chat widget. The pages (``public_views``) and the chat endpoints
(``channels_api``) only parse and call these, so they behave the same.

What the customer sees of a ticket is ``customer_ticket``: their messages and the replies,
never an internal note (only inbound and outbound messages are read at all), the status in
plain words, and what they may do now: write again (while the ticket is live, or solved less
than ``rules.REOPEN_DAYS`` ago, which reopens it), or say an automatic answer did not help.

Tokens: the ticket link is ``links.ticket_token``; a chat session gets its own token (a
different salt, so one cannot be used as the other) that expires after
``PATRON_CHAT_TOKEN_DAYS`` (7 by default). Both name one ticket and nothing else.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.utils import timezone
from django.utils.translation import gettext as _

from patron.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from patron.service import links, rules, services
from patron.service.channels import Received, receive
from patron.service.models import PATRON_SOURCE, ChannelIdentity, Ticket, TicketMessage

PHONE = re.compile(r"^\+?[0-9][0-9 \-]{4,24}$")
MAX_NAME = 100
MAX_CLIENT_ID = 64


# ---------------------------------------------------------------------- who is writing


def contact_identity(*, email: str, phone: str) -> tuple[str, str]:
    """The identity a customer without an account writes as: the e-mail address when given
    (replies go there), else the phone number. At least one is required."""
    email = (email or "").strip()
    phone = (phone or "").strip()
    if email:
        try:
            validate_email(email)
        except DjangoValidationError as error:
            raise ValidationFailed(f"email: {email!r} is not a valid e-mail address") from error
    if phone and not PHONE.match(phone):
        raise ValidationFailed(f"phone: {phone!r} is not a phone number (digits, spaces, -, +)")
    if email:
        return "email", email
    if phone:
        return "phone", phone
    raise ValidationFailed("email: give an e-mail address or a phone number so we can answer you")


def _identity_of(ticket: Ticket) -> tuple[str, str]:
    """An identity that names the ticket's customer: the one the ticket came in on when it is
    on file, else any of theirs, else their e-mail or phone."""
    contact = (ticket.contact or "").strip()
    identities = list(ChannelIdentity.objects.filter(customer_id=ticket.customer_id).order_by("id"))
    for identity in identities:
        value = identity.value or ""
        if value == contact or (identity.kind == "email" and value.lower() == contact.lower()):
            return identity.kind, value
    if identities:
        return identities[0].kind, identities[0].value
    customer = ticket.customer
    if customer.email:
        return "email", customer.email
    if customer.phone:
        return "phone", customer.phone
    raise Conflict(
        f"ticket {ticket.pk}: the customer has no e-mail address, phone or channel identity, "
        "so a message cannot be filed as theirs"
    )


# ---------------------------------------------------------------------- the ticket, as they see it


@dataclass(frozen=True)
class CustomerMessage:
    id: int
    is_customer: bool
    author: str
    body: str
    created_at: datetime
    is_automatic: bool


@dataclass(frozen=True)
class CustomerTicket:
    id: int
    subject: str
    status: str
    status_label: str
    status_text: str
    channel: str
    opened_at: datetime
    messages: tuple[CustomerMessage, ...]
    may_write: bool
    may_say_not_helped: bool
    reopen_until: datetime | None


def status_text(status: str, *, reopen_until: datetime | None = None) -> str:
    """The status in plain words, for the customer."""
    if status == Ticket.Status.NEW:
        return _("We have your request. Someone from the service team will answer you soon.")
    if status == Ticket.Status.OPEN:
        return _("We are working on your request.")
    if status == Ticket.Status.PENDING:
        return _("We have answered you and are waiting for your reply.")
    if status == Ticket.Status.ON_HOLD:
        return _(
            "We are waiting for a colleague or a partner (such as the carrier) and will come "
            "back to you."
        )
    if status == Ticket.Status.SOLVED:
        if reopen_until is not None and reopen_until > timezone.now():
            local = timezone.localtime(reopen_until)
            return _(
                "Solved. If it is not solved for you, write to us here until %(date)s and we "
                "will pick it up again."
            ) % {"date": local.strftime("%Y-%m-%d %H:%M")}
        return _("Solved. To ask something new, please open a new request.")
    return _("Closed. To ask something new, please open a new request.")


def status_label(status: str) -> str:
    labels: dict[str, str] = {
        Ticket.Status.NEW: _("Received"),
        Ticket.Status.OPEN: _("In progress"),
        Ticket.Status.PENDING: _("Waiting for your reply"),
        Ticket.Status.ON_HOLD: _("Waiting for a partner"),
        Ticket.Status.SOLVED: _("Solved"),
        Ticket.Status.CLOSED: _("Closed"),
    }
    return labels.get(status, status)


def _desk_ticket(ticket_id: int) -> Ticket:
    ticket = (
        Ticket.objects.select_related("customer").filter(pk=ticket_id, source=PATRON_SOURCE).first()
    )
    if ticket is None:
        raise NotFound(links.INVALID)
    return ticket


def _reopen_until(ticket: Ticket) -> datetime | None:
    if ticket.status == Ticket.Status.SOLVED and ticket.solved_at is not None:
        return rules.reopen_deadline(ticket.solved_at)
    return None


def _may_write(ticket: Ticket, now: datetime) -> bool:
    if ticket.status in services.LIVE:
        return True
    until = _reopen_until(ticket)
    return until is not None and now < until


def _author(message: TicketMessage) -> str:
    if message.direction == TicketMessage.Direction.INBOUND:
        return _("You")
    if message.faq_article_id:
        return _("Automatic answer")
    first_name = getattr(message.author, "first_name", "") if message.author_id else ""
    return first_name or _("Service team")


def customer_ticket(
    ticket_id: int, *, after: int | None = None, now: datetime | None = None
) -> CustomerTicket:
    """The ticket as its customer may see it (see the module docstring); ``after`` keeps
    only the messages after that message id (the chat widget's polling)."""
    now = now or timezone.now()
    ticket = _desk_ticket(ticket_id)
    visible = (
        TicketMessage.objects.filter(
            ticket_id=ticket.pk,
            direction__in=[TicketMessage.Direction.INBOUND, TicketMessage.Direction.OUTBOUND],
        )
        .select_related("author")
        .order_by("created_at", "id")
    )
    rows = list(visible)
    replies = [m for m in rows if m.direction == TicketMessage.Direction.OUTBOUND]
    last_reply = replies[-1] if replies else None
    shown = [m for m in rows if after is None or m.pk > after]
    until = _reopen_until(ticket)
    return CustomerTicket(
        id=ticket.pk,
        subject=ticket.subject,
        status=ticket.status,
        status_label=status_label(ticket.status),
        status_text=status_text(ticket.status, reopen_until=until),
        channel=ticket.channel,
        opened_at=ticket.opened_at,
        messages=tuple(
            CustomerMessage(
                id=m.pk,
                is_customer=m.direction == TicketMessage.Direction.INBOUND,
                author=_author(m),
                body=m.body,
                created_at=m.created_at,
                is_automatic=bool(m.faq_article_id),
            )
            for m in shown
        ),
        may_write=_may_write(ticket, now),
        may_say_not_helped=(
            ticket.status == Ticket.Status.PENDING
            and last_reply is not None
            and bool(last_reply.faq_article_id)
        ),
        reopen_until=until,
    )


# ---------------------------------------------------------------------- what they may do


def customer_write(
    ticket_id: int,
    *,
    body: str,
    channel: str = Ticket.Channel.WEB,
    external_id: str = "",
    now: datetime | None = None,
) -> Received:
    """The customer writes on their ticket again: it reopens a pending, on-hold or recently
    solved ticket to a person. A closed one (or one solved too long ago) is refused (409):
    they open a new request instead."""
    now = now or timezone.now()
    ticket = _desk_ticket(ticket_id)
    if not _may_write(ticket, now):
        raise Conflict(
            f"ticket {ticket.pk} is {ticket.status}: it can no longer be answered; "
            "please open a new request"
        )
    kind, value = _identity_of(ticket)
    return receive(
        services.Inbound(
            channel=channel,
            identity_kind=kind,
            identity_value=value,
            body=body,
            ticket_id=ticket.pk,
            external_id=external_id,
        ),
        actor_label=ticket.customer.name or "customer",
    )


def customer_not_helped(ticket_id: int, *, now: datetime | None = None) -> Ticket:
    """The customer says the automatic answer did not help: the ticket goes back to a person
    (``services.customer_says_not_helped``). Only while the automatic answer is the last one
    and the ticket waits on them (409 otherwise: pressing twice does nothing twice)."""
    view = customer_ticket(ticket_id, now=now)
    if not view.may_say_not_helped:
        raise Conflict(f"ticket {ticket_id}: there is no automatic answer waiting for your opinion")
    return services.customer_says_not_helped(ticket_id, now=now)


def help_request(
    *,
    name: str,
    email: str,
    phone: str,
    subject: str,
    message: str,
    order_number: str = "",
) -> Received:
    """A new request through the web form. The customer is found by their e-mail address
    (else phone); a phone given next to an e-mail address is added to the message for the
    agent. ``order_number`` must be one of that customer's orders (422 ``order``)."""
    kind, value = contact_identity(email=email, phone=phone)
    name = (name or "").strip()[:MAX_NAME]
    body = (message or "").strip()
    if kind == "email" and phone.strip():
        body = f"{body}\n\n电话 Phone: {phone.strip()}"
    return receive(
        services.Inbound(
            channel=Ticket.Channel.WEB,
            identity_kind=kind,
            identity_value=value,
            name=name,
            subject=(subject or "").strip(),
            body=body,
        ),
        order_number=order_number,
        actor_label=name or "web form",
    )


# ---------------------------------------------------------------------- chat


CHAT_SALT = "patron.service.chat"


def chat_days() -> int:
    return int(getattr(settings, "PATRON_CHAT_TOKEN_DAYS", 7))


def chat_token(ticket_id: int) -> str:
    return signing.dumps({"chat": ticket_id}, salt=CHAT_SALT, compress=True)


def ticket_of_chat_token(token: str) -> int:
    """The ticket a chat token names; 404 for a bad one, 403 for an expired one."""
    try:
        data = signing.loads(token, salt=CHAT_SALT, max_age=chat_days() * 86400)
    except signing.SignatureExpired as exc:
        raise PermissionDenied("this chat has expired: please start a new one") from exc
    except signing.BadSignature as exc:
        raise NotFound("this chat token is not valid") from exc
    ticket = data.get("chat") if isinstance(data, dict) else None
    if not isinstance(ticket, int):
        raise NotFound("this chat token is not valid")
    return ticket


def _client_id(value: str) -> str:
    value = (value or "").strip()
    if len(value) > MAX_CLIENT_ID or not re.fullmatch(r"[A-Za-z0-9._:-]*", value):
        raise ValidationFailed(
            f"client_id: at most {MAX_CLIENT_ID} letters, digits, '.', '_', ':' or '-'"
        )
    return value


def chat_start(
    *, name: str, email: str, phone: str, text: str, subject: str = ""
) -> tuple[Received, str]:
    """A chat: a new ticket on channel ``chat`` with its own conversation key; returns the
    first message and the chat token for the widget."""
    kind, value = contact_identity(email=email, phone=phone)
    name = (name or "").strip()[:MAX_NAME]
    received = receive(
        services.Inbound(
            channel=Ticket.Channel.CHAT,
            identity_kind=kind,
            identity_value=value,
            name=name,
            subject=(subject or "").strip(),
            body=text,
            thread_key=f"chat-{uuid.uuid4().hex}",
        ),
        actor_label=name or "chat",
    )
    return received, chat_token(received.ticket_id)


def chat_write(ticket_id: int, *, text: str, client_id: str = "") -> Received:
    """A further chat message; ``client_id`` (the widget's id for the message) makes a retry
    file it once."""
    client_id = _client_id(client_id)
    ticket = _desk_ticket(ticket_id)
    thread = ticket.thread_key or f"ticket-{ticket.pk}"
    return customer_write(
        ticket.pk,
        body=text,
        channel=Ticket.Channel.CHAT,
        external_id=f"{thread}:{client_id}" if client_id else "",
    )
