"""What every channel does once it has read a customer's message: file it with
``services.inbound_receive`` and say what happened.

The e-mail reader (``patron.service.mail``), the signed webhook and the token endpoint
(``patron.service.channels_api``), the web form and the chat widget all end here, so a message
is filed the same way whichever door it came through: idempotent on the channel's message id,
threaded onto the ticket it continues, a new contact when no identity matches (a same-name
customer is flagged as a possible duplicate, never merged).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from django.db import IntegrityError, transaction

from patron.errors import ValidationFailed
from patron.service import services
from patron.service.models import TicketMessage

MAX_ORDER_NUMBER = 64


@dataclass(frozen=True)
class Received:
    """A filed message: the ticket it is on, whether that ticket is new, and whether the
    channel had posted this message before (then nothing was filed again)."""

    message: TicketMessage
    new_ticket: bool
    duplicate: bool

    @property
    def ticket_id(self) -> int:
        return self.message.ticket_id

    def as_dict(self) -> dict[str, object]:
        return {
            "ticket_id": self.message.ticket_id,
            "message_id": self.message.pk,
            "new_ticket": self.new_ticket,
            "duplicate": self.duplicate,
        }


def _seen(channel: str, external_id: str) -> TicketMessage | None:
    if not external_id:
        return None
    return TicketMessage.objects.filter(channel=channel, external_id=external_id[:200]).first()


def order_of_customer(customer_id: int, number: str, *, field: str = "order") -> int:
    """The id of the customer's order with the shop's order number ``number`` (its external
    id): a customer can only name their own orders."""
    from patron.commerce.models import Order

    number = (number or "").strip()
    if len(number) > MAX_ORDER_NUMBER:
        raise ValidationFailed(f"{field}: longer than {MAX_ORDER_NUMBER} characters")
    found = (
        Order.objects.filter(customer_id=customer_id, external_id=number)
        .order_by("-placed_at")
        .values_list("pk", flat=True)
        .first()
    )
    if found is None:
        raise ValidationFailed(
            f"{field}: no order {number!r} was found for this e-mail address or phone number"
        )
    return int(found)


def receive(
    inbound: services.Inbound, *, order_number: str = "", actor_label: str = ""
) -> Received:
    """File ``inbound`` (see ``services.inbound_receive``) in one transaction.

    ``order_number`` is the shop's order number as the customer or the connector gives it; it
    must name one of the customer's own orders (422 otherwise, and nothing is filed: not even
    the new contact). A message the channel already posted (same ``external_id``) is not filed
    again: the first filing is returned with ``duplicate`` set, also when two posts race.
    """
    seen = _seen(inbound.channel, inbound.external_id)
    if seen is not None:
        return Received(message=seen, new_ticket=False, duplicate=True)
    try:
        with transaction.atomic():
            if order_number.strip():
                customer = services.contact_resolve(
                    kind=inbound.identity_kind, value=inbound.identity_value, name=inbound.name
                )
                inbound = replace(
                    inbound, order_id=order_of_customer(customer.pk, order_number, field="order")
                )
            message = services.inbound_receive(inbound, actor_label=actor_label)
    except IntegrityError:
        # Two posts of the same message at once: the other one filed it.
        seen = _seen(inbound.channel, inbound.external_id)
        if seen is None:
            raise
        return Received(message=seen, new_ticket=False, duplicate=True)
    is_first = not TicketMessage.objects.filter(
        ticket_id=message.ticket_id, pk__lt=message.pk
    ).exists()
    return Received(message=message, new_ticket=is_first, duplicate=False)
