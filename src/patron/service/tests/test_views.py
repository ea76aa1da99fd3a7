"""The desk's pages: the queue (whole page and htmx table), a ticket, its steps."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from patron.account.roles import Role
from patron.conftest import make_customer, make_user
from patron.service import services
from patron.service.models import Ticket

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent(settings: Any) -> tuple[Client, Any]:
    settings.TIME_ZONE = "Asia/Shanghai"
    services.desk_seed(years=[2026])
    user = make_user(Role.SERVICE_AGENT.value)
    client = Client()
    client.force_login(user)
    return client, user


def _ticket() -> Ticket:
    return services.ticket_open(
        customer_id=make_customer(email="p@example.com", name="李四").pk,
        channel="web",
        subject="尺码不合适",
        body="衣服太小了，能换大一号吗",
        category="return",
        actor_label="test",
        auto_reply=False,
    )


def test_queue_page_and_htmx_table(agent: tuple[Client, Any]) -> None:
    client, _ = agent
    ticket = _ticket()
    page = client.get("/service/")
    assert page.status_code == 200
    html = page.content.decode()
    assert f'data-testid="ticket-row-{ticket.pk}"' in html and "queue-filters" in html
    partial = client.get("/service/?priority=low", HTTP_HX_REQUEST="true")
    assert "<html" not in partial.content.decode()
    assert f"ticket-row-{ticket.pk}" not in partial.content.decode()


def test_ticket_page_shows_notes_profile_and_clocks(agent: tuple[Client, Any]) -> None:
    client, user = agent
    ticket = _ticket()
    services.ticket_note(ticket.pk, user=user, body="内部：客户是回头客")
    html = client.get(f"/service/tickets/{ticket.pk}/").content.decode()
    assert "内部：客户是回头客" in html and 'data-testid="message-note"' in html
    assert 'data-testid="clock-first_reply"' in html and "李四" in html


def test_reply_step_and_refusal_shown(agent: tuple[Client, Any]) -> None:
    client, _ = agent
    ticket = _ticket()
    url = f"/service/tickets/{ticket.pk}/step/"
    done = client.post(url, {"step": "reply", "body": "可以换，请在订单页申请"})
    assert done.status_code == 302
    ticket.refresh_from_db()
    assert ticket.status == "pending"
    refused = client.post(url, {"step": "resume"}, HTTP_HX_REQUEST="true")
    assert refused.status_code == 200
    assert 'data-testid="form-error"' in refused.content.decode()


def test_auditor_reads_but_cannot_act(agent: tuple[Client, Any]) -> None:
    ticket = _ticket()
    auditor = Client()
    auditor.force_login(make_user(Role.AUDITOR.value))
    page = auditor.get(f"/service/tickets/{ticket.pk}/").content.decode()
    assert 'data-testid="reply-form"' not in page
    assert auditor.post(f"/service/tickets/{ticket.pk}/step/", {"step": "solve"}).status_code == 403
    marketer = Client()
    marketer.force_login(make_user(Role.MARKETER.value))
    assert marketer.get("/service/").status_code == 403


def test_queue_and_ticket_pages_speak_chinese(agent: tuple[Client, Any]) -> None:
    # given: an agent whose browser asks for Simplified Chinese
    _, user = agent
    ticket = _ticket()
    client = Client(headers={"accept-language": "zh-hans"})
    client.force_login(user)

    # when
    queue = client.get("/service/").content.decode()
    page = client.get(f"/service/tickets/{ticket.pk}/").content.decode()

    # then: headings, filters and buttons are in Chinese, not in English
    assert "<title>工单队列" in queue and ">客服工作台</h1>" in queue
    assert ">未解决</option>" in queue and ">未分配</option>" in queue
    assert "SLA 超时" in queue and "1 个工单" in queue
    assert "Service desk" not in queue and "Not solved" not in queue
    assert "返回工单队列" in page and ">首次响应</strong>" in page and ">解决时限</strong>" in page
    assert "回复客户" in page and ">发送回复</button>" in page and ">添加备注</button>" in page
    assert ">升级</button>" in page and ">操作记录</h2>" in page and ">历史工单</h2>" in page
    assert "Send reply" not in page and "Back to the queue" not in page
