"""The agent's workflow in a real browser (Debian's Chromium through Playwright): a customer's
e-mail is in the queue; the agent opens the queue, takes the ticket, writes an internal note,
replies, and solves it; the customer then answers the satisfaction survey from the link they
were sent, and the agent sees the score on the customer's past tickets.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import override_settings

from patron.account.roles import Role
from patron.conftest import PASSWORD, make_customer, make_user
from patron.outbox.models import Message
from patron.service import services
from patron.service.models import AgentProfile, Ticket
from patron.web.tests.browsing import BROWSER_MARKS, browser, new_context, open_as

__all__ = ["browser", "open_as"]  # shared fixtures (patron.web.tests.browsing)

pytestmark = BROWSER_MARKS


@pytest.fixture
def ticket(transactional_db: None, settings: Any) -> Ticket:
    settings.TIME_ZONE = "Asia/Shanghai"
    services.desk_seed(years=[2026])
    make_user(Role.SERVICE_AGENT, username="agent-wang", password=PASSWORD)
    AgentProfile.objects.all().delete()  # nobody routed: the agent takes it from the queue
    customer = make_customer(name="周八", email="zhouba@example.com")
    return services.ticket_open(
        customer_id=customer.pk,
        channel="email",
        subject="订单还没发货",
        body="我周一下的订单还没有发货，能帮忙催一下吗？",
        category="shipping",
        actor_label="周八",
        auto_reply=False,
    )


@override_settings(
    MAILERS={"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
)
def test_agent_takes_replies_solves_and_the_customer_rates(
    ticket: Ticket, open_as: Any, browser: Any, live_server: Any
) -> None:
    page = open_as("agent-wang")
    page.goto(f"{live_server.url}/service/")
    row = page.locator(f"[data-testid=ticket-row-{ticket.pk}]")
    row.get_by_role("link", name="订单还没发货").click()
    page.wait_for_url(f"**/service/tickets/{ticket.pk}/")
    assert "我周一下的订单还没有发货" in page.locator("[data-testid=conversation]").inner_text()
    assert page.locator("[data-testid=clock-first_reply]").is_visible()

    page.click("[data-testid=claim]")
    page.wait_for_selector("[data-testid=assignee]:has-text('agent-wang')")

    page.fill("#note-body", "仓库说今天下午发")
    page.locator("[data-testid=note-form] button").click()
    page.wait_for_selector("[data-testid=message-note]:has-text('仓库说今天下午发')")

    page.fill("#reply-body", "您好，已经催促仓库，今天下午发货。")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("[data-testid=message-out]:has-text('今天下午发货')")
    ticket.refresh_from_db()
    assert ticket.status == "pending" and ticket.first_response_at is not None
    reply = Message.objects.get(template="service.reply", customer=ticket.customer)
    assert "仓库说今天下午发" not in reply.body  # the note never goes out

    page.click("[data-testid=step-solve]")
    page.wait_for_selector("[data-testid=status]:has-text('Solved')")
    ticket.refresh_from_db()
    assert ticket.status == "solved"

    _customer_rates(ticket, browser, live_server)
    ticket.refresh_from_db()
    assert ticket.satisfaction == 5


def _customer_rates(ticket: Ticket, browser: Any, live_server: Any) -> None:
    """The customer follows the satisfaction link from their message and gives 5 stars."""
    from patron.satisfaction.models import CsatRequest

    request = CsatRequest.objects.get(ticket=ticket)
    context = new_context(browser)
    page = context.new_page()
    page.goto(f"{live_server.url}/csat/{request.token}/", timeout=60_000)
    page.click("label[for=score-5]")
    page.fill("textarea[name=comment]", "很快，谢谢")
    page.locator("main form button[type=submit]").click()
    page.wait_for_load_state()
    context.close()
