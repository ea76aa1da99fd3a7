"""Complaints on the demo merchant: the most recent complaint tickets of the imported history
taken through the complaint workflow (R-E5) to different stages — recorded, with a department,
a resolution proposed (one of them after the customer rejected a first one), accepted, a
follow-up visit scheduled or done, closed, one withdrawn — all through the services as staff
would, with the steps dated after each ticket opened, so the list, the stage durations and the
timeline have something real to show. Then the complaint-risk scores are computed as of the end
of the history, for the at-risk page.

A demo agent (no password: nobody logs in as them) takes the steps; the departments are the
service desk's default teams.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction

from patron.account.models import User
from patron.account.services import user_create
from patron.complaints import rules, services
from patron.complaints.models import Complaint
from patron.errors import PatronError
from patron.service.models import Team, Ticket

AGENT = "demo-complaints"
#: The stage each chosen complaint is taken to, most recent ticket first.
PLAN: tuple[str, ...] = (
    "recorded",
    "recorded",
    "investigating",
    "investigating_again",  # proposed, rejected: back with the department
    "resolution_proposed",
    "resolution_proposed_again",  # rejected once, proposed again
    "accepted",
    "follow_up_scheduled",
    "follow_up_scheduled",
    "follow_up_done",
    "closed",
    "closed",
    "withdrawn",
)
#: Subject keywords -> (department, findings, resolution).
CASES: tuple[tuple[tuple[str, ...], str, str, str], ...] = (
    (
        ("快递", "物流", "签收"),
        "logistics",
        "核实物流记录：承运商在派送环节延误，且未按约定联系客户。",
        "向客户致歉，补偿20元无门槛优惠券，并对该快递网点进行考核。",
    ),
    (
        ("描述", "不符", "坏", "赔偿", "质量"),
        "quality",
        "抽检同批次商品，确认部分商品在出库前质检遗漏。",
        "为客户办理全额退款或免费换新（客户任选），运费由本店承担。",
    ),
    (
        ("退款", "退货"),
        "aftersales",
        "退款单在财务审核环节积压，超出承诺时限。",
        "立即完成退款，另补偿10元现金红包，并优化退款审核流程。",
    ),
    (
        ("客服", "回复", "态度"),
        "quality",
        "调取会话记录，客服在高峰期未及时回复，且答复不够耐心。",
        "由客服主管致电道歉，赠送会员积分500分，并对相关客服进行培训。",
    ),
)
DEFAULT_CASE = (
    "quality",
    "核实订单与沟通记录，确认本店处理存在不足。",
    "向客户致歉并补偿30元优惠券，后续订单优先处理。",
)
REJECTIONS = (
    "补偿太少，我要求全额退款。",
    "只道歉没有用，请给出明确的赔偿方案。",
)
#: How old a ticket must be for the steps up to each stage to fit before the end of the history.
MIN_AGE_DAYS: dict[str, int] = {
    "recorded": 0,
    "investigating": 1,
    "withdrawn": 3,
    "resolution_proposed": 4,
    "investigating_again": 7,
    "resolution_proposed_again": 8,
    "accepted": 6,
    "follow_up_scheduled": 7,
    "follow_up_done": 14,
    "closed": 16,
}
TEAMS = (
    ("logistics", "物流组 Logistics"),
    ("aftersales", "售后组 After-sales"),
    ("quality", "质量与投诉 Quality and complaints"),
)


@dataclass(frozen=True)
class DemoComplaints:
    recorded: int
    by_stage: dict[str, int]


def _agent() -> User:
    found = User.objects.filter(username=AGENT).first()
    return found or user_create(username=AGENT, role="service_agent")


def _teams() -> dict[str, Team]:
    from patron.complaints.services import desk_service

    desk_seed = desk_service("desk_seed")  # the desk's default teams, when it offers them
    if desk_seed is not None:
        desk_seed()
    found = {}
    for slug, name in TEAMS:
        team, _ = Team.objects.get_or_create(
            slug=slug, defaults={"name": name, "is_escalation_target": True}
        )
        found[slug] = team
    return found


def _case(subject: str) -> tuple[str, str, str]:
    for words, team, findings, resolution in CASES:
        if any(word in subject for word in words):
            return team, findings, resolution
    return DEFAULT_CASE


def _walk(
    complaint: Complaint,
    target: str,
    *,
    agent: User,
    teams: dict[str, Team],
    rng: random.Random,
    end: datetime,
) -> None:
    """Take one complaint to ``target``, each step a few hours to days after the previous."""
    team, findings, resolution = _case(complaint.ticket.subject)
    moment = complaint.recorded_at

    def later(low: float, high: float) -> datetime:
        nonlocal moment
        moment = min(moment + timedelta(hours=rng.uniform(low, high)), end)
        return moment

    if target == "recorded":
        return
    if target == "withdrawn":
        services.complaint_assign(
            user=agent, complaint_id=complaint.pk, team_id=teams[team].pk, now=later(1, 5)
        )
        services.complaint_withdraw(
            user=agent,
            complaint_id=complaint.pk,
            reason="客户表示问题已自行解决，撤回投诉。",
            now=later(6, 30),
        )
        return
    services.complaint_assign(
        user=agent, complaint_id=complaint.pk, team_id=teams[team].pk, now=later(1, 6)
    )
    if target == "investigating":
        return
    rounds = 2 if target in ("investigating_again", "resolution_proposed_again") else 1
    for number in range(rounds):
        services.complaint_propose(
            user=agent,
            complaint_id=complaint.pk,
            findings=findings,
            resolution=resolution if number == 0 else resolution + "另加赠100元无门槛优惠券。",
            now=later(12, 60),
        )
        if number < rounds - 1 or target == "investigating_again":
            services.complaint_reject(
                user=agent,
                complaint_id=complaint.pk,
                reason=rng.choice(REJECTIONS),
                now=later(4, 30),
            )
    if target in ("investigating_again", "resolution_proposed", "resolution_proposed_again"):
        return
    services.complaint_accept(
        user=agent, complaint_id=complaint.pk, note="客户电话确认接受。", now=later(2, 24)
    )
    if target == "accepted":
        return
    visit = later(4, 20) + timedelta(days=rng.randint(2, 5))
    services.complaint_schedule_follow_up(
        user=agent,
        complaint_id=complaint.pk,
        follow_up_at=visit,
        note="电话回访",
        now=moment,
    )
    if target == "follow_up_scheduled":
        return
    moment = min(visit, end)
    services.complaint_complete_follow_up(
        user=agent,
        complaint_id=complaint.pk,
        notes="客户对处理结果满意，表示会继续在本店购物。",
        now=later(0.5, 3),
    )
    if target == "follow_up_done":
        return
    services.complaint_close(
        user=agent,
        complaint_id=complaint.pk,
        outcome="已按方案处理完毕，客户满意。",
        now=later(2, 20),
    )


def demo_complaints(*, seed: int, as_of: datetime, plan: tuple[str, ...] = PLAN) -> DemoComplaints:
    """Record the complaints of the most recent complaint tickets (one per customer) and take
    each to its stage in ``plan``; steps are dated before ``as_of`` (the end of the history).
    Idempotent: tickets that already have a complaint are skipped."""
    rng = random.Random(seed)
    agent = _agent()
    teams = _teams()
    candidates = list(
        Ticket.objects.filter(is_complaint=True, opened_at__lt=as_of, complaint__isnull=True)
        .order_by("-opened_at", "-id")
        .values_list("pk", "customer_id", "opened_at")[:2000]
    )
    chosen: list[tuple[int, str]] = []
    used: set[int] = set()
    for target in plan:
        # The most recent ticket old enough for its steps to fit before the end of the history.
        oldest = as_of - timedelta(days=MIN_AGE_DAYS.get(target, 0))
        for ticket_id, customer_id, opened_at in candidates:
            if customer_id in used or opened_at > oldest:
                continue
            used.add(customer_id)
            chosen.append((ticket_id, target))
            break
    by_stage: dict[str, int] = {}
    for ticket_id, target in chosen:
        try:
            with transaction.atomic():
                complaint = services.complaint_record_from_ticket(ticket_id=ticket_id)
                if complaint is None:
                    continue
                _walk(complaint, target, agent=agent, teams=teams, rng=rng, end=as_of)
        except PatronError:  # a step the data does not allow: leave this one out
            continue
        stage = Complaint.objects.get(ticket_id=ticket_id).stage
        by_stage[stage] = by_stage.get(stage, 0) + 1
    ordered = {s: by_stage[s] for s in rules.STAGES if s in by_stage}
    return DemoComplaints(recorded=sum(ordered.values()), by_stage=ordered)
