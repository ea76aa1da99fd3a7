"""The customer file: one profile per customer, whatever channel the data came from."""

from __future__ import annotations

from django.db import models

from patron.privacy.fields import EncryptedTextField


class SourceChannel(models.TextChoices):
    ONLINE = "online", "线上 Online"
    OFFLINE = "offline", "线下 Offline"
    THIRD_PARTY = "third_party", "第三方 Third party"


class Imported(models.Model):
    """A record loaded from a source system, keyed by (source, external_id) for idempotent
    re-imports; ``row_hash`` is the keyed fingerprint of what was last imported."""

    source = models.CharField(max_length=40)
    external_id = models.CharField(max_length=100)
    row_hash = models.CharField(max_length=32, blank=True)

    class Meta:
        abstract = True


class Customer(models.Model):
    """A customer: an individual or a business. Keyed by (source, external_id) for imports.

    Phone, e-mail and ID number are encrypted at rest; ``*_hash`` columns hold keyed hashes of
    the normalised values for exact-match search (see ``patron.privacy.crypto``).
    """

    class Kind(models.TextChoices):
        INDIVIDUAL = "individual", "个人 Individual"
        BUSINESS = "business", "企业 Business"

    class Gender(models.TextChoices):
        FEMALE = "female", "女 Female"
        MALE = "male", "男 Male"
        UNKNOWN = "", "未知 Unknown"

    class CompanySize(models.TextChoices):
        MICRO = "micro", "微型 Micro (<10)"
        SMALL = "small", "小型 Small (10–99)"
        MEDIUM = "medium", "中型 Medium (100–999)"
        LARGE = "large", "大型 Large (1000+)"
        UNKNOWN = "", "未知 Unknown"

    class Status(models.TextChoices):
        ACTIVE = "active", "正常 Active"
        INACTIVE = "inactive", "停用 Inactive"
        ERASED = "erased", "已匿名 Erased"

    source = models.CharField(max_length=40)
    external_id = models.CharField(max_length=100)
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.INDIVIDUAL)
    name = models.CharField(max_length=200, db_index=True)
    gender = models.CharField(max_length=8, choices=Gender.choices, blank=True, default="")
    birthday = models.DateField(null=True, blank=True)
    phone = EncryptedTextField()
    phone_hash = models.CharField(max_length=64, blank=True, db_index=True)
    email = EncryptedTextField()
    email_hash = models.CharField(max_length=64, blank=True, db_index=True)
    id_number = EncryptedTextField(help_text="Resident ID or other personal document number")
    id_number_hash = models.CharField(max_length=64, blank=True, db_index=True)
    province = models.CharField(max_length=40, blank=True, db_index=True)
    city = models.CharField(max_length=60, blank=True)
    source_channel = models.CharField(
        max_length=12, choices=SourceChannel.choices, default=SourceChannel.ONLINE, db_index=True
    )
    registration_channel = models.CharField(
        max_length=40,
        blank=True,
        help_text="Where the customer signed up: app, WeChat mini program, Tmall store, …",
    )
    registered_at = models.DateTimeField(null=True, blank=True)
    company_name = models.CharField(max_length=200, blank=True)
    company_size = models.CharField(
        max_length=8, choices=CompanySize.choices, blank=True, default=""
    )
    industry = models.CharField(max_length=60, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    row_hash = models.CharField(
        max_length=32, blank=True, help_text="Fingerprint of the last imported content"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["source", "external_id"], name="customer_source_external_id"
            ),
        ]
        indexes = [models.Index(fields=["registered_at"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.source}:{self.external_id})"


class Address(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="addresses")
    label = models.CharField(max_length=40, blank=True)
    province = models.CharField(max_length=40, blank=True)
    city = models.CharField(max_length=60, blank=True)
    district = models.CharField(max_length=60, blank=True)
    detail = EncryptedTextField(help_text="Street, building and room")
    detail_hash = models.CharField(max_length=64, blank=True, db_index=True)
    postal_code = models.CharField(max_length=12, blank=True)
    is_default = models.BooleanField(default=False)

    class Meta:
        verbose_name_plural = "addresses"

    def __str__(self) -> str:
        return f"{self.province}{self.city}{self.district}"


class CustomerDevice(models.Model):
    """A device a customer was seen on, as a keyed hash (``crypto.lookup_hash(kind="device")``)
    of the device id a shop's events carry: the raw id is never stored. Risk detection counts the
    other accounts seen on the same device (rule ID-SHARED)."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="devices")
    device_hash = models.CharField(max_length=64, db_index=True)
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["customer", "device_hash"], name="one_row_per_device")
        ]

    def __str__(self) -> str:
        return f"device {self.device_hash[:8]}… of customer {self.customer_id}"


class Tag(models.Model):
    name = models.CharField(max_length=60, unique=True)
    description = models.CharField(max_length=200, blank=True)

    def __str__(self) -> str:
        return self.name


class CustomerTag(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="customer_tags")
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="customer_tags")
    added_at = models.DateTimeField(auto_now_add=True)
    added_by = models.CharField(max_length=150, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["customer", "tag"], name="customer_tag_unique")
        ]

    def __str__(self) -> str:
        return f"{self.customer_id}:{self.tag_id}"


class Consent(Imported):
    """The customer's consent for one purpose over one channel (PIPL Art. 14, GDPR Art. 7).

    The latest row per (customer, purpose, channel) is in force; rows are never edited. Rows
    recorded here rather than imported get source ``patron``.
    """

    class Purpose(models.TextChoices):
        MARKETING = "marketing", "营销 Marketing"
        PROFILING = "profiling", "画像分析 Profiling"
        SERVICE = "service", "服务通知 Service messages"

    class Channel(models.TextChoices):
        SMS = "sms", "短信 SMS"
        EMAIL = "email", "邮件 E-mail"
        WECHAT = "wechat", "微信 WeChat"
        PHONE = "phone", "电话 Phone"
        APP = "app", "App push"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="consents")
    purpose = models.CharField(max_length=20, choices=Purpose.choices)
    channel = models.CharField(max_length=20, choices=Channel.choices)
    is_granted = models.BooleanField()
    recorded_at = models.DateTimeField()
    evidence = models.CharField(max_length=200, blank=True, help_text="Where and how it was given")

    class Meta:
        indexes = [models.Index(fields=["customer", "purpose", "channel", "-recorded_at"])]
        constraints = [
            models.UniqueConstraint(fields=["source", "external_id"], name="consent_source_ext")
        ]

    def __str__(self) -> str:
        return f"{self.purpose}/{self.channel} {'granted' if self.is_granted else 'refused'}"
