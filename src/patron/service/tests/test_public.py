"""The customer's pages: ask for help at /help/, follow a ticket at /help/t/<token>/."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from patron.account.models import User
from patron.account.roles import Role
from patron.conftest import at, make_customer, make_order
from patron.customer.models import Customer
from patron.service import links, public, services
from patron.service.models import Ticket, TicketMessage
from patron.service.tests.channel_fixtures import URLS, channel_settings

__all__ = ["channel_settings"]

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.urls(URLS),
    pytest.mark.usefixtures("channel_settings"),
]

FORM = {
    "name": "周杰",
    "email": "zhou.jie@example.cn",
    "phone": "",
    "order": "",
    "subject": "发票开错了",
    "message": "抬头应为上海某某公司。",
}


def _text(response: Any) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def _errors(response: Any) -> dict[str, str]:
    found = re.findall(r'data-testid="error-(\w+)">([^<]*)<', response.content.decode())
    return {name: html.unescape(text) for name, text in found}


def _ticket(**form: str) -> Ticket:
    received = public.help_request(
        **{k: v for k, v in {**FORM, **form}.items() if k != "order"},
        order_number=form.get("order", ""),
    )
    return Ticket.objects.get(pk=received.ticket_id)


@pytest.fixture
def agent(user_factory: Callable[..., User]) -> User:
    return user_factory(Role.SERVICE_AGENT)


# ---------------------------------------------------------------------- /help/


def test_the_form_has_its_fields_and_a_csrf_token() -> None:
    # when
    response = Client().get("/help/")

    # then
    assert response.status_code == 200
    html = response.content.decode()
    for name in ("name", "email", "phone", "order", "subject", "message", "csrfmiddlewaretoken"):
        assert f'name="{name}"' in html
    assert response["X-Robots-Tag"] == "noindex"


def test_sending_the_form_opens_a_ticket_and_shows_its_link() -> None:
    # given
    client = Client()

    # when
    sent = client.post("/help/", {**FORM, "phone": "138 0000 1111"})
    thanks = client.get(sent["Location"])

    # then
    assert (sent.status_code, sent["Location"]) == (302, "/help/thanks/")
    ticket = Ticket.objects.select_related("customer").get()
    assert (ticket.channel, ticket.subject, ticket.customer.email) == (
        "web",
        "发票开错了",
        "zhou.jie@example.cn",
    )
    assert ticket.messages.get().body == "抬头应为上海某某公司。\n\n电话 Phone: 138 0000 1111"
    assert thanks.status_code == 200
    link = re.search(r'data-testid="ticket-link">[^<]*(/help/t/[^/<]+/)<', thanks.content.decode())
    assert link is not None
    assert links.ticket_of_token(link.group(1).split("/")[3]) == ticket.pk


def test_the_thanks_page_without_a_request_goes_back_to_the_form() -> None:
    response = Client().get("/help/thanks/")
    assert (response.status_code, response["Location"]) == (302, "/help/")


@pytest.mark.parametrize(
    ("changes", "errors"),
    [
        (
            {"email": "", "phone": ""},
            {"email": "Give an e-mail address or a phone number so that we can answer you."},
        ),
        ({"email": "not-an-address"}, {"email": "Enter a valid email address."}),
        (
            {"email": "", "phone": "call me"},
            {"phone": "Enter a phone number: digits, spaces, - or +."},
        ),
        (
            {"subject": "", "message": ""},
            {"subject": "This field is required.", "message": "This field is required."},
        ),
        (
            {"order": "SO-404"},
            {"order": "no order 'SO-404' was found for this e-mail address or phone number"},
        ),
    ],
)
def test_form_errors_name_the_field_and_file_nothing(
    changes: dict[str, str], errors: dict[str, str], settings: Any
) -> None:
    # given
    settings.LANGUAGE_CODE = "en"

    # when
    response = Client(headers={"Accept-Language": "en"}).post("/help/", {**FORM, **changes})

    # then
    assert response.status_code == 422
    assert _errors(response) == errors
    assert (Ticket.objects.count(), Customer.objects.count()) == (0, 0)


def test_the_order_number_links_the_customers_order() -> None:
    # given: a known customer with an order
    customer = make_customer(name="周杰", email="zhou.jie@example.cn")
    order = make_order(
        customer, external_id="SO-2026-1", placed_at=at("2026-11-01 10:00"), total="88.00"
    )

    # when
    response = Client().post("/help/", {**FORM, "order": "SO-2026-1"})

    # then
    assert response.status_code == 302
    ticket = Ticket.objects.get()
    assert (ticket.customer_id, ticket.order_id) == (customer.pk, order.pk)


def test_the_form_is_limited_per_address(settings: Any) -> None:
    # given
    settings.PATRON_SERVICE_RATE_LIMITS = {"help": 2}
    client = Client(headers={"Accept-Language": "en"})
    for number in range(2):
        assert client.post("/help/", {**FORM, "subject": f"问题 {number}"}).status_code == 302

    # when
    third = client.post("/help/", FORM)

    # then
    assert third.status_code == 429
    assert "too many requests from your address (2 an hour)" in _text(third)
    assert Ticket.objects.count() == 2


def test_a_post_without_csrf_token_is_refused() -> None:
    response = Client(enforce_csrf_checks=True).post("/help/", FORM)
    assert response.status_code == 403
    assert Ticket.objects.count() == 0


# ---------------------------------------------------------------------- /help/t/<token>/


def test_the_ticket_page_shows_the_conversation_but_never_an_internal_note(agent: User) -> None:
    # given
    ticket = _ticket()
    services.ticket_note(ticket.pk, user=agent, body="内部备注：客户上次也开错过")
    services.ticket_reply(ticket.pk, user=agent, body="已为您重开发票。")

    # when
    response = Client(headers={"Accept-Language": "en"}).get(links.ticket_path(ticket.pk))

    # then
    assert response.status_code == 200
    html = _text(response)
    assert "抬头应为上海某某公司。" in html and "已为您重开发票。" in html
    assert "内部备注" not in html
    assert html.count('data-testid="message"') == 2
    assert "We have answered you and are waiting for your reply." in html
    assert 'data-testid="write-form"' in html
    assert 'data-testid="not-helped"' not in html
    assert response["X-Robots-Tag"] == "noindex"


def test_writing_again_reopens_a_pending_ticket(agent: User) -> None:
    # given
    ticket = _ticket()
    services.ticket_reply(ticket.pk, user=agent, body="请提供公司税号。")
    path = links.ticket_path(ticket.pk)

    # when
    response = Client().post(path, {"action": "write", "message": "税号 91310000XXXX"})

    # then
    assert (response.status_code, response["Location"]) == (302, path)
    ticket.refresh_from_db()
    assert ticket.status == "open"
    last = ticket.messages.order_by("id").last()
    assert last is not None
    assert (last.direction, last.channel, last.body) == ("in", "web", "税号 91310000XXXX")


def test_an_empty_message_names_the_field(agent: User) -> None:
    # given
    ticket = _ticket()
    before = TicketMessage.objects.count()

    # when
    response = Client(headers={"Accept-Language": "en"}).post(
        links.ticket_path(ticket.pk), {"action": "write", "message": ""}
    )

    # then
    assert response.status_code == 422
    assert _errors(response) == {"message": "This field is required."}
    assert TicketMessage.objects.count() == before


def _auto_answered(agent: User) -> Ticket:
    """A ticket whose last answer came from the FAQ and waits on the customer."""
    ticket = _ticket()
    reply = services.ticket_reply(ticket.pk, user=agent, body="发票可在订单页自助重开。")
    TicketMessage.objects.filter(pk=reply.pk).update(
        author=None, author_label="FAQ", faq_article_id=7
    )
    ticket.refresh_from_db()
    assert ticket.status == "pending"
    return ticket


def test_this_did_not_help_sends_the_ticket_back_to_a_person(agent: User) -> None:
    # given
    ticket = _auto_answered(agent)
    path = links.ticket_path(ticket.pk)
    client = Client(headers={"Accept-Language": "en"})
    shown = client.get(path)

    # when
    pressed = client.post(path, {"action": "not_helped"})
    again = client.post(path, {"action": "not_helped"})

    # then
    assert 'data-testid="not-helped"' in _text(shown)
    assert "Automatic answer" in _text(shown)
    assert pressed.status_code == 302
    ticket.refresh_from_db()
    assert ticket.status == "open"
    assert ticket.messages.order_by("id").last().body == "(the automatic answer did not help)"  # type: ignore[union-attr]
    assert again.status_code == 409
    assert ticket.messages.filter(direction="in").count() == 2


def test_a_solved_ticket_can_be_written_to_and_reopens(agent: User) -> None:
    # given
    ticket = _ticket()
    services.ticket_reply(ticket.pk, user=agent, body="已重开。")
    services.ticket_act(ticket.pk, "solve", user=agent)
    path = links.ticket_path(ticket.pk)
    shown = Client(headers={"Accept-Language": "en"}).get(path)

    # when
    response = Client().post(path, {"action": "write", "message": "还是不对，抬头少了一个字"})

    # then
    assert "Solved. If it is not solved for you, write to us here until" in _text(shown)
    assert response.status_code == 302
    ticket.refresh_from_db()
    assert ticket.status == "open"


def test_a_closed_ticket_asks_for_a_new_request(agent: User) -> None:
    # given
    ticket = _ticket()
    services.ticket_act(ticket.pk, "solve", user=agent)
    services.ticket_act(ticket.pk, "close", user=agent)
    path = links.ticket_path(ticket.pk)
    before = TicketMessage.objects.count()
    client = Client(headers={"Accept-Language": "en"})

    # when
    shown = client.get(path)
    written = client.post(path, {"action": "write", "message": "再问一下"})

    # then
    assert "Closed. To ask something new, please open a new request." in _text(shown)
    assert 'data-testid="write-form"' not in _text(shown)
    assert 'data-testid="closed-note"' in _text(shown)
    assert written.status_code == 409
    assert TicketMessage.objects.count() == before
    assert Ticket.objects.count() == 1


def test_a_bad_link_is_a_404_page_and_an_expired_one_a_403_page(settings: Any) -> None:
    # given
    ticket = _ticket()
    path = links.ticket_path(ticket.pk)
    client = Client(headers={"Accept-Language": "en"})

    # when
    bad = client.get(path[:-5] + "xxxx/")
    settings.PATRON_TICKET_LINK_DAYS = -1
    expired = client.get(path)

    # then
    assert bad.status_code == 404
    assert "This link does not work" in _text(bad)
    assert expired.status_code == 403
    assert "This link has expired" in _text(expired)


def test_an_imported_ticket_has_no_page(customer_file: Any) -> None:
    # given: the imported history ticket of the customer file
    imported = Ticket.objects.get(source="shop")

    # when
    response = Client().get(links.ticket_path(imported.pk))

    # then
    assert response.status_code == 404
