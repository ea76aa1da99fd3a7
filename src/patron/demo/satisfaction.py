"""Satisfaction on the demo merchant: CSAT asked and (often) answered on the latest solved
tickets, one quarterly survey that ran at the start of the fourth quarter with answers, a few
suggestions in the box, and improvement plans linked to what prompted them (one overdue), all
made through the services as staff and customers would.

Deterministic for a seed; the answers are dated when it runs (the services stamp them).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db.models import Q
from django.utils import timezone

from patron.account.models import User
from patron.account.services import user_create
from patron.customer.models import Customer
from patron.satisfaction import services
from patron.satisfaction.models import CsatRequest, Survey, SurveyInvitation, SurveyQuestion
from patron.satisfaction.rules import quarterly_run_on_or_after
from patron.service.models import Ticket

MANAGER = "demo-service-manager"
#: How satisfied demo customers are: score -> weight (mostly content, a few unhappy).
SCORE_WEIGHTS = {5: 45, 4: 30, 3: 12, 2: 8, 1: 5}
COMMENTS = {
    5: ("客服很耐心，问题很快解决了。", "Very quick, thank you!", ""),
    4: ("整体不错，就是等待时间有点长。", ""),
    3: ("一般，问了两次才弄清楚。", ""),
    2: ("物流太慢了，客服也只能让我等。", "回复太慢，希望改进。"),
    1: ("问题没解决就把工单关了。", "非常失望，等了三天没人理。"),
}
SURVEY_QUESTIONS: list[dict[str, Any]] = [
    {"kind": "rating", "text": "您对我们的整体服务满意吗？"},
    {"kind": "rating", "text": "您对配送速度满意吗？"},
    {
        "kind": "choice",
        "text": "您最常通过哪个渠道联系客服？",
        "choices": ["App", "微信", "电话", "网页"],
    },
    {"kind": "text", "text": "您希望我们改进什么？", "is_required": False},
]
IMPROVEMENTS = ("希望增加晚间配送时段", "包装能不能更环保一些", "客服热线周末也开放就好了",
                "退货流程太复杂，希望简化", "会员积分规则说明不清楚", "希望有更多的自提点")  # fmt: skip
SUGGESTIONS = (
    ("web", "希望App里可以直接查看物流轨迹。"),
    ("phone", "建议周末也安排电话客服。"),
    ("wechat", "退货要填的信息太多了，能不能简化？"),
    ("web", "包装盒太大了，浪费材料。"),
    ("email", "发票开具能否在下单时直接选择？"),
    ("store", "门店自提的等候区可以加几把椅子。"),
)


@dataclass(frozen=True)
class DemoSatisfaction:
    asked: int
    answered: int
    invited: int
    survey_answers: int
    suggestions: int
    plans: int


def _manager() -> User:
    found = User.objects.filter(username=MANAGER).first()
    return found or user_create(username=MANAGER, role="operations_manager")


def _score(rng: random.Random) -> int:
    return rng.choices(list(SCORE_WEIGHTS), weights=list(SCORE_WEIGHTS.values()))[0]


def _csat(rng: random.Random, *, tickets: int, answer_share: float) -> tuple[int, int]:
    """Ask about the latest solved tickets not yet rated (imported history and the desk's
    live ones); answer a share of the questions."""
    solved = (
        Ticket.objects.filter(status__in=services.SOLVED_STATUSES, satisfaction__isnull=True)
        .filter(Q(solved_at__isnull=False) | Q(resolved_at__isnull=False))
        .exclude(csat_request__isnull=False)
        .order_by("-opened_at")
    )
    asked = 0
    for ticket in solved[:tickets]:
        done = ticket.solved_at or ticket.resolved_at
        if services.csat_request_for_ticket(
            ticket_id=ticket.pk, now=(done + timedelta(hours=1)) if done else None
        ):
            asked += 1
    answered = 0
    open_requests = CsatRequest.objects.filter(answered_at__isnull=True, is_suppressed=False)
    for request in open_requests.order_by("pk"):
        if rng.random() >= answer_share:
            continue
        score = _score(rng)
        services.csat_answer(token=request.token, score=score, comment=rng.choice(COMMENTS[score]))
        answered += 1
    return asked, answered


def _survey(rng: random.Random, manager: User, *, run_at: datetime) -> tuple[Survey, int, int]:
    """A quarterly survey of the core customers that opened on the first Monday of the
    quarter, with answers from about a third of them; its run ended two weeks later, and it
    waits for the next quarter."""
    survey = services.survey_create(
        user=manager,
        data=services.SurveyData(
            title="季度客户满意度调查",
            intro="感谢您一直以来的支持！占用您两分钟。",
            audience=Survey.Audience.GRADE,
            audience_grade="core",
            schedule=Survey.Schedule.QUARTERLY,
            opens_on=timezone.localdate(run_at) - timedelta(days=3),
            open_days=14,
            questions=SURVEY_QUESTIONS,
        ),
    )
    services.survey_schedule(user=manager, survey_id=survey.pk, today=timezone.localdate(run_at))
    invited = services.surveys_send(now=run_at).invited
    questions = list(SurveyQuestion.objects.filter(survey=survey).order_by("position"))
    answers = 0
    for invitation in SurveyInvitation.objects.filter(run__survey=survey, is_suppressed=False):
        if rng.random() >= 0.35:
            continue
        values: dict[str, str] = {}
        for question in questions:
            key = f"q{question.pk}"
            if question.kind == SurveyQuestion.Kind.RATING:
                values[key] = str(_score(rng))
            elif question.kind == SurveyQuestion.Kind.CHOICE:
                values[key] = rng.choice(question.choices)
            elif rng.random() < 0.4:
                values[key] = rng.choice(IMPROVEMENTS)
        services.survey_answer(
            token=invitation.token, answers=values, now=run_at + timedelta(days=rng.uniform(0, 10))
        )
        answers += 1
    services.surveys_send(now=run_at + timedelta(days=14, minutes=1))
    return survey, invited, answers


def _plans(manager: User, today: date) -> int:
    suggestions = [
        services.suggestion_submit(text=text, channel=channel, user=manager)
        for channel, text in SUGGESTIONS
    ]
    services.suggestion_update(user=manager, suggestion_id=suggestions[3].pk, action="review",
                               note="已转包装供应商评估")  # fmt: skip
    services.suggestion_update(user=manager, suggestion_id=suggestions[5].pk, action="decline",
                               note="门店空间有限，暂不考虑")  # fmt: skip
    low = list(
        CsatRequest.objects.filter(score__lte=2).order_by("pk").values_list("pk", flat=True)[:4]
    )
    shipping = services.plan_create(
        user=manager,
        data=services.PlanData(
            title="缩短物流查询的首次响应时间",
            problem="低分评价多与物流等待有关：客户等回复超过两小时。",
            owner_id=manager.pk,
            deadline=today + timedelta(days=30),
        ),
        links=[services.LinkTarget("csat", pk) for pk in low[:2]]
        + [services.LinkTarget("suggestion", suggestions[0].pk)],
    )
    services.plan_transition(user=manager, plan_id=shipping.pk, action="start")
    services.plan_create(
        user=manager,
        data=services.PlanData(
            title="周末电话客服排班",
            problem="周末无法电话联系客服，投诉集中在周一。",
            owner_id=manager.pk,
            deadline=today - timedelta(days=5),  # overdue: shown in red
        ),
        links=[services.LinkTarget("suggestion", suggestions[1].pk)]
        + [services.LinkTarget("csat", pk) for pk in low[2:3]],
    )
    simpler = services.plan_create(
        user=manager,
        data=services.PlanData(
            title="简化退货申请表",
            problem="退货需要填写的字段过多。",
            owner_id=manager.pk,
            deadline=today - timedelta(days=20),
        ),
        links=[services.LinkTarget("suggestion", suggestions[2].pk)],
    )
    services.plan_transition(user=manager, plan_id=simpler.pk, action="start")
    services.plan_transition(
        user=manager,
        plan_id=simpler.pk,
        action="finish",
        outcome="退货表单由 9 项减到 4 项；退货相关投诉下降。",
    )
    return 3


def _quarter_start(day: date) -> date:
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def _last_quarterly_run(today: date) -> datetime:
    """10:00 on the first Monday of this quarter, or of the last one when this quarter's run
    would not have ended yet (runs last two weeks)."""
    run_on = quarterly_run_on_or_after(_quarter_start(today))
    if run_on > today - timedelta(days=15):
        run_on = quarterly_run_on_or_after(
            _quarter_start(_quarter_start(today) - timedelta(days=1))
        )
    return timezone.make_aware(datetime.combine(run_on, time(10, 0)))


def demo_satisfaction(
    *, seed: int = 7, tickets: int = 300, answer_share: float = 0.55, now: datetime | None = None
) -> DemoSatisfaction:
    """CSAT, a quarterly survey with answers, suggestions and plans on the demo merchant."""
    rng = random.Random(seed)
    manager = _manager()
    asked, answered = _csat(rng, tickets=tickets, answer_share=answer_share)
    now = now or timezone.now()
    run_at = _last_quarterly_run(timezone.localdate(now))
    invited, survey_answers = 0, 0
    if Customer.objects.filter(score__grade="core").exists():
        _, invited, survey_answers = _survey(rng, manager, run_at=run_at)
    plans = _plans(manager, timezone.localdate(now))
    return DemoSatisfaction(
        asked=asked,
        answered=answered,
        invited=invited,
        survey_answers=survey_answers,
        suggestions=len(SUGGESTIONS),
        plans=plans,
    )
