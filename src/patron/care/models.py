"""Care: the measures each grade gets (R-G2) and what the care automation did (R-G5).

``GradeMeasure`` is the policy table, one row per grade, edited by staff in the admin, on the
API or the CLI through ``patron.care.services.care_measures_save`` (validated, versioned,
audited). The automation reads it on every run: changing a row changes what it does.

``CareTouch`` is one thing the automation did for one customer on one occasion: a birthday
greeting (one per year), a holiday greeting (one per festival and year) or a follow-up visit
(one per due date). The unique constraint on (customer, kind, occasion) is what makes a second
run of the same day — or two runs at once — do nothing twice. See docs/care.md.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from patron.care import rules
from patron.customer.models import Customer
from patron.scoring.models import Grade


class GradeMeasure(models.Model):
    """What one grade gets. ``updated_by`` is also who the automation issues this row's
    coupons as: their permission to issue coupons is checked again on every run."""

    grade = models.CharField(max_length=10, choices=Grade.choices, unique=True)
    exclusive_discount_percent = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        default=0,
        help_text="Member-only discount (percent off) checkout applies to this grade",
    )
    has_priority_handling = models.BooleanField(
        default=False, help_text="Orders and service requests are handled first"
    )
    has_dedicated_line = models.BooleanField(
        default=False, help_text="A dedicated agent and line (follow-up visits go to them)"
    )
    visit_interval_days = models.PositiveIntegerField(
        null=True, blank=True, help_text="A follow-up visit every this many days; empty: none"
    )
    visits_from = models.DateField(
        null=True,
        blank=True,
        help_text="The day visits for this grade began: first visits are spread over one "
        "interval from it (or from when the customer entered the grade, if later)",
    )
    sends_birthday_greeting = models.BooleanField(default=True)
    birthday_coupon_template = models.ForeignKey(
        "marketing.CouponTemplate",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Coupon sent with the birthday greeting; empty: a greeting only",
    )
    holidays = models.JSONField(
        default=list, blank=True, help_text="Holiday codes greeted (see patron.care.rules)"
    )
    holiday_days_ahead = models.PositiveSmallIntegerField(
        default=1, help_text="Greet this many days before the festival (0: on the day)"
    )
    holiday_coupon_template = models.ForeignKey(
        "marketing.CouponTemplate",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Coupon sent with holiday greetings; empty: a greeting only",
    )
    version = models.PositiveIntegerField(default=1, help_text="Bumped by every change")
    note = models.CharField(max_length=200, blank=True, help_text="Why it was last changed")
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        verbose_name = "measures of a grade"
        verbose_name_plural = "measures by grade (care policy)"

    def __str__(self) -> str:
        return f"{self.get_grade_display()} v{self.version}"

    def measures(self) -> rules.Measures:
        return rules.Measures(
            grade=self.grade,
            exclusive_discount_percent=self.exclusive_discount_percent,
            has_priority_handling=self.has_priority_handling,
            has_dedicated_line=self.has_dedicated_line,
            visit_interval_days=self.visit_interval_days,
            sends_birthday_greeting=self.sends_birthday_greeting,
            birthday_coupon_template_id=self.birthday_coupon_template_id,
            holidays=tuple(self.holidays or ()),
            holiday_days_ahead=self.holiday_days_ahead,
            holiday_coupon_template_id=self.holiday_coupon_template_id,
        )


class CareTouch(models.Model):
    """One greeting or visit for one customer on one occasion, and how it went."""

    class Kind(models.TextChoices):
        BIRTHDAY = rules.BIRTHDAY, "生日祝福 Birthday greeting"
        HOLIDAY = rules.HOLIDAY, "节日祝福 Holiday greeting"
        VISIT = rules.VISIT, "定期回访 Follow-up visit"

    class Outcome(models.TextChoices):
        MESSAGED = "messaged", "已发送 Queued in the outbox"
        SUPPRESSED = "suppressed", "未发送 Not sent (consent or address)"
        VISIT_OPENED = "visit_opened", "已建回访工单 Visit ticket opened"

    class Offer(models.TextChoices):
        NONE = "", "无 No offer in the policy"
        ISSUED = "issued", "已发券 Coupon issued"
        OUT_OF_STOCK = "out_of_stock", "券已发完 Out of stock"
        OVER_BUDGET = "over_budget", "超出预算 Over budget"
        COUPON_LIMIT = "coupon_limit", "已达领券上限 Coupon limit"
        TEMPLATE_OFF = "template_off", "券模板停用 Template not active"
        NO_ISSUER = "no_issuer", "无发券人 Nobody may issue it"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="care_touches")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    occasion = models.CharField(
        max_length=40, help_text="birthday: year; holiday: code:year; visit: due date"
    )
    occasion_on = models.DateField(help_text="The birthday, festival or visit due date")
    run_on = models.DateField(help_text="The day of the run that did it")
    grade = models.CharField(max_length=10, choices=Grade.choices)
    outcome = models.CharField(max_length=14, choices=Outcome.choices)
    reason = models.CharField(max_length=500, blank=True)
    offer = models.CharField(max_length=14, choices=Offer.choices, blank=True, default="")
    message = models.ForeignKey(
        "outbox.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    coupon = models.ForeignKey(
        "marketing.Coupon", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    ticket = models.ForeignKey(
        "service.Ticket", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "kind", "occasion"], name="care_touch_once_per_occasion"
            )
        ]
        indexes = [
            models.Index(fields=["kind", "run_on"], name="care_touch_run"),
            models.Index(fields=["kind", "occasion"], name="care_touch_occasion"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.occasion} for {self.customer_id} ({self.outcome})"
