"""The service desk of the demo merchant, alive: four agents in their teams, dedicated agents
for some core customers, and live tickets opened over the last two days through the real
services (channels, routing, FAQ answers, replies, solves), so the queue has SLA clocks
counting down, some deadlines missed and escalated by the SLA watch, and solved tickets for
satisfaction. The history's imported tickets stay history; these are today's work.

Deterministic for a seed, except that the tickets are dated from the moment it runs (the
clocks must count down when someone opens the demo).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.utils import timezone

from patron.account.services import user_create
from patron.customer.models import Customer
from patron.demo import texts
from patron.scoring.models import CustomerScore
from patron.service import services
from patron.service.models import AgentProfile, DedicatedAgent, Team, Ticket

AGENTS = (
    ("agent.wang", "frontline", ["order", "shipping", "payment", "product", "account"]),
    ("agent.li", "frontline", ["order", "product", "payment", "account"]),
    ("agent.zhao", "aftersales", ["return", "shipping"]),
    ("agent.chen", "quality", ["complaint"]),
)
#: Demo ticket category -> desk category.
CATEGORIES = {
    "物流查询": "shipping",
    "退换货": "return",
    "商品咨询": "product",
    "投诉": "complaint",
    "发票": "payment",
    "售后维修": "return",
    "账户与会员": "account",
    "支付问题": "payment",
}
BODIES = {
    "shipping": ("麻烦帮我查一下，挺着急的。", "已经等了好几天了，请尽快处理。"),
    "return": ("衣服尺码偏小，想换大一号。", "商品有破损，照片已经拍好了。"),
    "product": ("下单前想确认一下，谢谢。", "请问有没有别的颜色？"),
    "complaint": ("太失望了，希望给个说法。", "这是第二次了，非常不满意！"),
    "payment": ("公司报销要用，麻烦尽快。", "钱已经扣了但订单显示未付款。"),
    "account": ("试了好几次都不行。", "请帮忙看看怎么回事。"),
}
CHANNELS = ("web", "email", "wechat", "chat", "app", "phone")


@dataclass
class DeskDemo:
    opened: int = 0
    answered_by_faq: int = 0
    replied: int = 0
    solved: int = 0
    escalated: int = 0
    agents: list[str] = field(default_factory=list)


def _agent(username: str, team: Team, skills: list[str]) -> Any:
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        user = user_create(username=username, role="service_agent")
    AgentProfile.objects.update_or_create(
        user=user, defaults={"team": team, "skills": skills, "max_open": 25}
    )
    return user


def demo_desk(*, seed: int = 7, tickets: int = 80, now: datetime | None = None) -> DeskDemo:
    """Agents, dedicated agents and ``tickets`` live tickets. Idempotent: a desk that already
    has live tickets is left as it is."""
    now = now or timezone.now()
    result = DeskDemo()
    services.desk_seed(years=(now.year - 1, now.year, now.year + 1))
    teams = {t.slug: t for t in Team.objects.all()}
    agents = [_agent(name, teams[team], skills) for name, team, skills in AGENTS]
    result.agents = [a.username for a in agents]
    if Ticket.objects.filter(source="patron").exists():
        return result
    rng = random.Random(seed)
    core = list(
        CustomerScore.objects.filter(grade="core")
        .order_by("customer_id")
        .values_list("customer_id", flat=True)[:40]
    )
    for customer_id in core[:20]:
        DedicatedAgent.objects.get_or_create(
            customer_id=customer_id, defaults={"user": rng.choice(agents[:2])}
        )
    people = list(
        Customer.objects.exclude(email_hash="").order_by("id").values_list("id", flat=True)[:3000]
    )
    if not people:
        return result
    chosen = rng.sample(people, min(tickets - 10, len(people))) + core[:10]
    for index, customer_id in enumerate(chosen):
        label = rng.choice(list(CATEGORIES))
        category = CATEGORIES[label]
        subject = rng.choice(texts.TICKET_SUBJECTS[label]).format(order="")
        body = subject + rng.choice(BODIES[category])
        # Most tickets are from today; a few from yesterday (missed, escalated or solved).
        minutes_ago = int(rng.triangular(1, 2 * 24 * 60, 60))
        opened_at = now - timedelta(minutes=minutes_ago)
        ticket = services.ticket_open(
            customer_id=customer_id,
            channel=rng.choice(CHANNELS),
            subject=subject[:200],
            body=body,
            category=category,
            is_complaint=category == "complaint",
            actor_label="demo customer",
            now=opened_at,
        )
        result.opened += 1
        ticket.refresh_from_db()
        if ticket.auto_answered:
            result.answered_by_faq += 1
            continue
        fate = rng.random()
        agent = ticket.assignee or rng.choice(agents)
        if fate < 0.55 and minutes_ago > 20:
            reply_at = opened_at + timedelta(minutes=rng.randint(3, 40))
            if ticket.assignee is None:
                services.ticket_claim(ticket.pk, user=agent, now=reply_at)
            services.ticket_reply(
                ticket.pk,
                user=agent,
                body="您好，已经收到您的问题，我们正在处理，稍后给您答复。",
                now=reply_at,
            )
            result.replied += 1
            if fate < 0.3 and minutes_ago > 240:
                services.ticket_act(
                    ticket.pk, "solve", user=agent, note="已解决", now=reply_at + timedelta(hours=2)
                )
                result.solved += 1
        if index % 25 == 0:
            services.ticket_note(
                ticket.pk, user=agent, body="内部备注：客户此前有过类似问题，注意跟进。", now=now
            )
    watched = services.sla_watch(now=now, batch=10_000)
    result.escalated = watched.escalated
    return result
