"""Customer satisfaction (R-E6, R-E7): the CSAT question after every solved ticket, the
periodic surveys, the suggestion box, and the improvement plans that answer what they reveal.

- A ``CsatRequest`` is asked once per solved ticket (the service desk's ``ticket_solved``
  signal); the customer answers through a signed link (``/csat/<token>/``) or the API, once.
  The score is written to ``Ticket.satisfaction``, which the scores and the KPIs read.
- A ``Survey`` has questions, an audience and a schedule (one date or every quarter); each time
  it opens is a ``SurveyRun`` that invites the audience (``SurveyInvitation``, one per customer
  and run) and collects ``SurveyAnswer`` rows, one per question.
- A ``Suggestion`` is what anyone puts in the suggestion box (anonymous allowed).
- An ``ImprovementPlan`` has an owner and a deadline and is linked (``PlanLink``) to the
  tickets, CSAT answers, survey answers and suggestions that prompted it.

Every state change goes through ``patron.satisfaction.services`` (the transition tables are in
``patron.satisfaction.rules``) and is audited. See docs/satisfaction.md.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from patron.customer.models import Customer
from patron.service.models import Ticket


class CsatRequest(models.Model):
    """The satisfaction question about one solved ticket: asked once, answered at most once."""

    class Channel(models.TextChoices):
        PAGE = "page", "网页 Page"
        API = "api", "API"

    ticket = models.OneToOneField(Ticket, on_delete=models.CASCADE, related_name="csat_request")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    token = models.CharField(max_length=200, unique=True, help_text="The signed link's token")
    sent_at = models.DateTimeField(help_text="When the question was queued to the customer")
    message = models.ForeignKey(
        "outbox.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    is_suppressed = models.BooleanField(
        default=False, help_text="The outbox did not send it (consent or no address)"
    )
    answered_at = models.DateTimeField(null=True, blank=True)
    score = models.PositiveSmallIntegerField(null=True, blank=True, help_text="1–5")
    comment = models.TextField(blank=True)
    answer_channel = models.CharField(max_length=8, choices=Channel.choices, blank=True)

    class Meta:
        ordering = ["-sent_at", "-id"]
        indexes = [
            models.Index(fields=["sent_at"], name="csat_sent"),
            models.Index(fields=["answered_at", "score"], name="csat_answered"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(score__isnull=True) | Q(score__gte=1, score__lte=5),
                name="csat_score_range",
            ),
            models.CheckConstraint(
                condition=Q(answered_at__isnull=True, score__isnull=True)
                | Q(answered_at__isnull=False, score__isnull=False),
                name="csat_answer_whole",
            ),
        ]

    def __str__(self) -> str:
        return f"CSAT for ticket {self.ticket_id}"


class Survey(models.Model):
    """A questionnaire with its audience and schedule. The questions are frozen once it has
    opened: the answers of earlier runs stay comparable."""

    class Status(models.TextChoices):
        DRAFT = "draft", "草稿 Draft"
        SCHEDULED = "scheduled", "已排期 Scheduled"
        OPEN = "open", "进行中 Open"
        CLOSED = "closed", "已结束 Closed"

    class Audience(models.TextChoices):
        ALL = "all", "全部客户 All customers"
        GRADE = "grade", "按客户等级 A grade"
        SEGMENT = "segment", "客户分群 A segment"

    class Schedule(models.TextChoices):
        ONCE = "once", "一次 Once"
        QUARTERLY = "quarterly", "每季度 Quarterly (first Monday)"

    title = models.CharField(max_length=120)
    intro = models.TextField(blank=True, help_text="Shown above the questions")
    audience = models.CharField(max_length=10, choices=Audience.choices, default=Audience.ALL)
    audience_grade = models.CharField(max_length=12, blank=True)
    audience_segment = models.ForeignKey(
        "marketing.Segment", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    schedule = models.CharField(max_length=10, choices=Schedule.choices, default=Schedule.ONCE)
    opens_on = models.DateField(
        help_text="Once: the day it opens. Quarterly: the first run is the first Monday of a "
        "quarter on or after this day"
    )
    open_days = models.PositiveSmallIntegerField(
        default=14, help_text="How long each run takes answers"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    next_run_on = models.DateField(
        null=True, blank=True, help_text="When the daily job opens it next (scheduled only)"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["status", "next_run_on"], name="survey_due")]

    def __str__(self) -> str:
        return f"survey {self.pk} {self.title} ({self.status})"


class SurveyQuestion(models.Model):
    class Kind(models.TextChoices):
        RATING = "rating", "评分 1–5 Rating 1–5"
        CHOICE = "choice", "选择 Choice"
        TEXT = "text", "文字 Text"

    survey = models.ForeignKey(Survey, on_delete=models.CASCADE, related_name="questions")
    position = models.PositiveSmallIntegerField()
    kind = models.CharField(max_length=8, choices=Kind.choices)
    text = models.CharField(max_length=300)
    choices = models.JSONField(default=list, blank=True, help_text="Choice questions: options")
    is_required = models.BooleanField(default=True)

    class Meta:
        ordering = ["survey_id", "position"]
        constraints = [
            models.UniqueConstraint(fields=["survey", "position"], name="survey_question_position")
        ]

    def __str__(self) -> str:
        return f"Q{self.position} {self.text[:40]}"


class SurveyRun(models.Model):
    """One opening of a survey (a one-off survey has one; a quarterly one, one a quarter)."""

    survey = models.ForeignKey(Survey, on_delete=models.CASCADE, related_name="runs")
    label = models.CharField(max_length=20, help_text="The run's day, e.g. 2026-10-05")
    run_on = models.DateField()
    opened_at = models.DateTimeField()
    closes_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["survey_id", "-run_on"]
        constraints = [
            models.UniqueConstraint(fields=["survey", "run_on"], name="survey_run_once_a_day")
        ]

    def __str__(self) -> str:
        return f"{self.survey_id} run {self.label}"


class SurveyInvitation(models.Model):
    """One customer invited to one run: the signed link they answer through (once)."""

    run = models.ForeignKey(SurveyRun, on_delete=models.CASCADE, related_name="invitations")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    token = models.CharField(max_length=200, unique=True)
    created_at = models.DateTimeField()
    message = models.ForeignKey(
        "outbox.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    is_suppressed = models.BooleanField(
        default=False, help_text="The outbox did not send it (consent or no address)"
    )
    answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run_id", "id"]
        constraints = [
            models.UniqueConstraint(fields=["run", "customer"], name="survey_invitation_once")
        ]

    def __str__(self) -> str:
        return f"invitation {self.pk} (run {self.run_id}, customer {self.customer_id})"


class SurveyAnswer(models.Model):
    """One question answered: ``rating`` (1–5), ``choice`` (one of the options) or ``text``."""

    invitation = models.ForeignKey(
        SurveyInvitation, on_delete=models.CASCADE, related_name="answers"
    )
    question = models.ForeignKey(SurveyQuestion, on_delete=models.CASCADE, related_name="answers")
    rating = models.PositiveSmallIntegerField(null=True, blank=True)
    choice = models.CharField(max_length=200, blank=True)
    text = models.TextField(blank=True)

    class Meta:
        ordering = ["invitation_id", "question_id"]
        constraints = [
            models.UniqueConstraint(fields=["invitation", "question"], name="survey_answer_once"),
            models.CheckConstraint(
                condition=Q(rating__isnull=True) | Q(rating__gte=1, rating__lte=5),
                name="survey_answer_rating_range",
            ),
        ]

    def __str__(self) -> str:
        return f"answer to {self.question_id} (invitation {self.invitation_id})"


class Suggestion(models.Model):
    class Status(models.TextChoices):
        NEW = "new", "新建 New"
        REVIEWED = "reviewed", "已查看 Reviewed"
        PLANNED = "planned", "已纳入计划 Planned"
        DECLINED = "declined", "不采纳 Declined"

    class Channel(models.TextChoices):
        WEB = "web", "网页意见箱 Web form"
        API = "api", "API"
        PHONE = "phone", "电话 Phone"
        WECHAT = "wechat", "微信 WeChat"
        EMAIL = "email", "邮件 E-mail"
        STORE = "store", "门店 In store"
        OTHER = "other", "其他 Other"

    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    channel = models.CharField(max_length=8, choices=Channel.choices)
    text = models.TextField()
    created_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.NEW)
    staff_note = models.TextField(blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "created_at"], name="suggestion_queue")]

    def __str__(self) -> str:
        return f"suggestion {self.pk} ({self.status})"


class ImprovementPlan(models.Model):
    """What the shop will change, who owns it and by when (R-E6); overdue once the deadline
    has passed while it is still proposed or in progress."""

    class Status(models.TextChoices):
        PROPOSED = "proposed", "已提出 Proposed"
        IN_PROGRESS = "in_progress", "进行中 In progress"
        DONE = "done", "已完成 Done"
        DROPPED = "dropped", "已放弃 Dropped"

    title = models.CharField(max_length=160)
    problem = models.TextField()
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    deadline = models.DateField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PROPOSED)
    outcome = models.TextField(blank=True, help_text="What was done and what it changed")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["deadline", "id"]
        indexes = [models.Index(fields=["status", "deadline"], name="plan_due")]

    def __str__(self) -> str:
        return f"plan {self.pk} {self.title} ({self.status})"


class PlanLink(models.Model):
    """What prompted a plan: exactly one ticket, CSAT answer, survey answer or suggestion."""

    class Kind(models.TextChoices):
        TICKET = "ticket", "工单 Ticket"
        CSAT = "csat", "满意度评价 CSAT answer"
        SURVEY_ANSWER = "survey_answer", "问卷回答 Survey answer"
        SUGGESTION = "suggestion", "建议 Suggestion"

    plan = models.ForeignKey(ImprovementPlan, on_delete=models.CASCADE, related_name="links")
    kind = models.CharField(max_length=14, choices=Kind.choices)
    ticket = models.ForeignKey(
        Ticket, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    csat_request = models.ForeignKey(
        CsatRequest, null=True, blank=True, on_delete=models.CASCADE, related_name="plan_links"
    )
    survey_answer = models.ForeignKey(
        SurveyAnswer, null=True, blank=True, on_delete=models.CASCADE, related_name="plan_links"
    )
    suggestion = models.ForeignKey(
        Suggestion, null=True, blank=True, on_delete=models.CASCADE, related_name="plan_links"
    )
    note = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["plan_id", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    kind="ticket",
                    ticket__isnull=False,
                    csat_request__isnull=True,
                    survey_answer__isnull=True,
                    suggestion__isnull=True,
                )
                | Q(
                    kind="csat",
                    ticket__isnull=True,
                    csat_request__isnull=False,
                    survey_answer__isnull=True,
                    suggestion__isnull=True,
                )
                | Q(
                    kind="survey_answer",
                    ticket__isnull=True,
                    csat_request__isnull=True,
                    survey_answer__isnull=False,
                    suggestion__isnull=True,
                )
                | Q(
                    kind="suggestion",
                    ticket__isnull=True,
                    csat_request__isnull=True,
                    survey_answer__isnull=True,
                    suggestion__isnull=False,
                ),
                name="plan_link_one_target",
            ),
            models.UniqueConstraint(
                fields=["plan", "ticket"], condition=Q(kind="ticket"), name="plan_link_ticket"
            ),
            models.UniqueConstraint(
                fields=["plan", "csat_request"], condition=Q(kind="csat"), name="plan_link_csat"
            ),
            models.UniqueConstraint(
                fields=["plan", "survey_answer"],
                condition=Q(kind="survey_answer"),
                name="plan_link_survey_answer",
            ),
            models.UniqueConstraint(
                fields=["plan", "suggestion"],
                condition=Q(kind="suggestion"),
                name="plan_link_suggestion",
            ),
        ]

    def __str__(self) -> str:
        return f"plan {self.plan_id} <- {self.kind}"

    @property
    def target_id(self) -> int | None:
        return {
            "ticket": self.ticket_id,
            "csat": self.csat_request_id,
            "survey_answer": self.survey_answer_id,
            "suggestion": self.suggestion_id,
        }.get(self.kind)
