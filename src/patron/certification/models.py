"""Certified customers: applications with their pre-checks and documents, the levels staff
define, the certifications granted, and the change requests that guard a certified profile.

Every state change goes through ``patron.certification.services`` (transitions are tables in
``patron.certification.rules``) and leaves an ``ApplicationEvent`` — the timeline the applicant
and the reviewer read, and what the process figures (time to decision, round trips) come from.
Personal data (names, ID numbers, phones, document contents) is encrypted at rest.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from patron.customer.models import Customer
from patron.privacy.fields import EncryptedTextField


class ApplicantKind(models.TextChoices):
    INDIVIDUAL = "individual", "个人 Individual"
    BUSINESS = "business", "企业 Business"


class DocumentKind(models.TextChoices):
    ID_FRONT = "id_front", "身份证人像面 ID card (photo side)"
    ID_BACK = "id_back", "身份证国徽面 ID card (emblem side)"
    BUSINESS_LICENCE = "business_licence", "营业执照 Business licence"
    LEGAL_REP_ID = "legal_rep_id", "法定代表人身份证 Legal representative's ID"
    QUALIFICATION = "qualification", "资质许可证 Qualification or permit"
    OTHER = "other", "其他 Other"


class CertificationLevel(models.Model):
    """A level a certification grants, with its criteria as data staff edit (R-H2).

    The criteria are checked twice: as soft pre-checks shown to the reviewer when the
    application comes in, and again when the reviewer approves (data may have changed) — and a
    third time for the ``fallback`` level when a certification of this one expires (R-H3).
    """

    code = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=80, help_text="Chinese name shown to customers")
    name_en = models.CharField(max_length=80)
    applicant_kind = models.CharField(max_length=12, choices=ApplicantKind.choices)
    rank = models.PositiveSmallIntegerField(help_text="Higher means more trust")
    min_credit_score = models.PositiveSmallIntegerField(null=True, blank=True)
    min_paid_orders = models.PositiveIntegerField(default=0)
    min_spend_12m = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    min_tenure_days = models.PositiveIntegerField(default=0)
    requires_no_restrictions = models.BooleanField(default=True)
    required_documents = models.JSONField(default=list, help_text="Document kinds required")
    validity_days = models.PositiveIntegerField(default=365)
    remind_days = models.PositiveIntegerField(
        default=30, help_text="Remind the customer this many days before expiry"
    )
    fallback = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="At expiry the customer keeps this lower level (of the same kind) if they "
        "still meet it and its validity, counted from the original decision, has not run out",
    )
    is_active = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["applicant_kind", "rank"]

    def __str__(self) -> str:
        return f"{self.name} {self.name_en}"


class BusinessCategory(models.Model):
    """A trade a business sells in, with the permits the law asks of it (食品经营许可证 to sell
    food): data staff edit. A business application that names its trade must list each of
    these permits, with its number and validity, and upload a copy — a hard pre-check, run again
    when the certification is re-verified, so a permit added here later is asked for then."""

    code = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=80, help_text="Chinese name shown to applicants")
    name_en = models.CharField(max_length=80)
    required_permits = models.JSONField(
        default=list,
        blank=True,
        help_text='Names of the permits the trade needs, as on the permit, e.g. ["食品经营许可证"]',
    )
    is_active = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["code"]
        verbose_name_plural = "business categories"

    def __str__(self) -> str:
        return f"{self.name} {self.name_en}"


class Application(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "草稿 Draft"
        PENDING = "pending", "待审核 Waiting for review"
        IN_REVIEW = "in_review", "审核中 In review"
        NEEDS_INFO = "needs_info", "待补充 More information needed"
        APPROVED = "approved", "已通过 Approved"
        REJECTED = "rejected", "已拒绝 Rejected"
        WITHDRAWN = "withdrawn", "已撤回 Withdrawn"

    class Channel(models.TextChoices):
        STAFF = "staff", "客服代办 Staff"
        PUBLIC = "public", "客户自助 Public form"
        API = "api", "API"

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="certification_applications"
    )
    level = models.ForeignKey(CertificationLevel, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.DRAFT)
    channel = models.CharField(max_length=8, choices=Channel.choices, default=Channel.STAFF)
    # What the applicant states. Personal data is encrypted; *_hash finds duplicates.
    real_name = EncryptedTextField()
    id_number = EncryptedTextField()
    id_number_hash = models.CharField(max_length=64, blank=True, db_index=True)
    phone = EncryptedTextField()
    birth_date = models.DateField(null=True, blank=True, help_text="As entered, checked vs ID")
    id_region = models.CharField(
        max_length=40, blank=True, help_text="Province of household registration, checked vs ID"
    )
    company_name = models.CharField(max_length=200, blank=True)
    credit_code = EncryptedTextField(help_text="Unified social credit code (统一社会信用代码)")
    credit_code_hash = models.CharField(max_length=64, blank=True, db_index=True)
    legal_rep_name = EncryptedTextField()
    legal_rep_id_number = EncryptedTextField()
    legal_rep_id_hash = models.CharField(max_length=64, blank=True, db_index=True)
    business_category = models.ForeignKey(
        BusinessCategory,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The trade a business sells in: says which permits it must list",
    )
    qualifications = models.JSONField(
        default=list, blank=True, help_text="[{name, number, valid_until}] permits for the trade"
    )
    # What Patron found and decided.
    prechecks = models.JSONField(default=list, blank=True)
    prechecked_at = models.DateTimeField(null=True, blank=True)
    info_requested = models.TextField(blank=True, help_text="What the applicant must supply")
    round_trips = models.PositiveSmallIntegerField(
        default=0, help_text="Times the application went back to the applicant"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    submitted_at = models.DateTimeField(null=True, blank=True, help_text="First submission")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(blank=True)
    granted_level = models.ForeignKey(
        CertificationLevel, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["status", "submitted_at"])]
        constraints = [
            models.UniqueConstraint(
                fields=["customer"],
                condition=Q(status__in=["draft", "pending", "in_review", "needs_info"]),
                name="certification_one_live_application",
            )
        ]

    def __str__(self) -> str:
        return f"application {self.pk} ({self.status})"


class Certification(models.Model):
    """A level granted to a customer until it expires, is downgraded, revoked or superseded.
    One active certification per customer; ``profile`` holds the verified facts (encrypted
    JSON). A downgrade at expiry ends one certification and grants its level's fallback in a
    new one that ``replaces`` it (same application, same facts)."""

    class Status(models.TextChoices):
        ACTIVE = "active", "有效 Active"
        EXPIRED = "expired", "已过期 Expired"
        DOWNGRADED = "downgraded", "已降级 Downgraded"
        REVOKED = "revoked", "已撤销 Revoked"
        SUPERSEDED = "superseded", "已替换 Superseded"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="certifications")
    level = models.ForeignKey(CertificationLevel, on_delete=models.PROTECT, related_name="+")
    application = models.ForeignKey(
        Application, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.ACTIVE)
    profile = EncryptedTextField(help_text="JSON of the verified facts")
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    granted_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    reminded_at = models.DateTimeField(null=True, blank=True)
    replaces = models.OneToOneField(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="replaced_by",
        help_text="The certification this one replaced when it was downgraded at expiry",
    )
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["status", "expires_at"])]
        constraints = [
            models.UniqueConstraint(
                fields=["customer"],
                condition=Q(status="active"),
                name="certification_one_active_per_customer",
            )
        ]

    def __str__(self) -> str:
        return f"certification {self.pk} ({self.level_id}, {self.status})"


class ChangeRequest(models.Model):
    """A change to an important field of a certified customer, held until a reviewer other than
    the requester approves it (R-A4, R-H3). Old and new values are kept (encrypted)."""

    class Status(models.TextChoices):
        PENDING = "pending", "待审核 Waiting for review"
        APPROVED = "approved", "已通过 Approved"
        REJECTED = "rejected", "已拒绝 Rejected"
        WITHDRAWN = "withdrawn", "已撤回 Withdrawn"

    certification = models.ForeignKey(
        Certification, on_delete=models.PROTECT, related_name="change_requests"
    )
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="certification_changes"
    )
    fields = models.JSONField(help_text="Names of the fields changed (no personal data)")
    changes = EncryptedTextField(help_text="JSON {field: {old, new}}")
    reason = models.TextField()
    source = models.CharField(max_length=12, default="staff", help_text="staff, api, public")
    prechecks = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    requested_at = models.DateTimeField()
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["certification"],
                condition=Q(status="pending"),
                name="certification_one_pending_change",
            )
        ]

    def __str__(self) -> str:
        return f"change request {self.pk} ({self.status})"


class Document(models.Model):
    """An uploaded file, stored encrypted in the database (AES-GCM, bound to its row's
    checksum): a few megabytes per application, backed up and deleted with the rest."""

    application = models.ForeignKey(
        Application, null=True, blank=True, on_delete=models.CASCADE, related_name="documents"
    )
    change_request = models.ForeignKey(
        ChangeRequest, null=True, blank=True, on_delete=models.CASCADE, related_name="documents"
    )
    kind = models.CharField(max_length=20, choices=DocumentKind.choices)
    filename = models.CharField(max_length=200)
    content_type = models.CharField(max_length=40)
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    content = models.BinaryField(help_text="Encrypted bytes")
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    uploaded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(application__isnull=False, change_request__isnull=True)
                | Q(application__isnull=True, change_request__isnull=False),
                name="certification_document_one_owner",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind}: {self.filename}"


class ApplicationEvent(models.Model):
    """One step of an application: the timeline shown to applicant and reviewer."""

    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_label = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=20)
    from_status = models.CharField(max_length=12, blank=True)
    to_status = models.CharField(max_length=12)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.action}: {self.from_status} -> {self.to_status}"
