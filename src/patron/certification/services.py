"""Certification workflows: apply, pre-check, review, grant a level, re-verify, and approve
changes to a certified profile. Each public function is one transaction; each state change is
checked against ``patron.certification.rules``, recorded as an ``ApplicationEvent`` where it
concerns an application, written to the audit log, and told to the customer through the outbox.

``user`` is a staff member, or ``None`` for the applicant on the public page (whose identity
the signed link established: ``patron.certification.tokens``).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import PurePath
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q, Sum
from django.utils import timezone

from patron.account.roles import (
    APPLY_FOR_CERTIFICATION,
    CHANGE_CERTIFICATION_LEVELS,
    REVIEW_CERTIFICATION,
)
from patron.account.services import require_permission
from patron.audit.services import AuditEntry, audit_record
from patron.certification import rules
from patron.certification.models import (
    Application,
    ApplicationEvent,
    Certification,
    CertificationLevel,
    ChangeRequest,
    Document,
)
from patron.commerce.models import Order
from patron.customer.models import Customer
from patron.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from patron.privacy import crypto
from patron.workflow import audit_update, locked, reason_text, separate, transition

MAX_DOCUMENTS = 20
#: File types accepted, by their first bytes (the declared type is not trusted).
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "application/pdf"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
)


def max_document_bytes() -> int:
    return int(getattr(settings, "PATRON_CERT_MAX_DOCUMENT_BYTES", 5 * 1024 * 1024))


# ---------------------------------------------------------------------- small helpers


def _decider(user: Any, *, filed_by: int | None, what: str) -> None:
    separate(rules.check_decider, user.pk, filed_by=filed_by, what=what)


def _audit(
    user: Any, *, entity: str, pk: int, customer_id: int, summary: str, **changes: Any
) -> None:
    audit_update(
        user,
        entity_type=f"certification.{entity}",
        pk=pk,
        customer_id=customer_id,
        summary=summary,
        system_label="applicant (signed link)",
        **changes,
    )


def _event(
    application: Application, *, user: Any, action: str, before: str, note: str = "", at: datetime
) -> None:
    ApplicationEvent.objects.create(
        application=application,
        at=at,
        actor=user if user is not None else None,
        actor_label=user.get_username() if user is not None else "applicant",
        action=action,
        from_status=before,
        to_status=application.status,
        note=note,
    )


def _tell(customer_id: int, template: str, *, key: str, source: str, **context: Any) -> None:
    """A service message to the customer, sent after commit by the outbox."""
    from patron.outbox.services import message_queue

    message_queue(
        customer_id=customer_id,
        template=template,
        purpose="service",
        context=context,
        key=key,
        source=source,
    )


def _level_name(level: CertificationLevel) -> str:
    return f"{level.name} ({level.name_en})"


def _customer(customer_id: int) -> Customer:
    customer = Customer.objects.filter(pk=customer_id).first()
    if customer is None:
        raise NotFound(f"customer {customer_id} not found")
    if customer.status == Customer.Status.ERASED:
        raise Conflict(f"customer {customer_id} was erased: nothing can be certified")
    return customer


def level_criteria(level: CertificationLevel) -> rules.LevelCriteria:
    return rules.LevelCriteria(
        code=level.code,
        applicant_kind=level.applicant_kind,
        min_credit_score=level.min_credit_score,
        min_paid_orders=level.min_paid_orders,
        min_spend_12m=level.min_spend_12m,
        min_tenure_days=level.min_tenure_days,
        requires_no_restrictions=level.requires_no_restrictions,
        required_documents=tuple(level.required_documents or ()),
    )


def _level(code: str) -> CertificationLevel:
    level = CertificationLevel.objects.filter(code=code).first()
    if level is None:
        raise NotFound(f"certification level {code!r} not found")
    return level


# ---------------------------------------------------------------------- levels


@transaction.atomic
def levels_seed() -> int:
    """Create the default levels that do not exist yet; returns how many were created."""
    created = 0
    for spec in rules.DEFAULT_LEVELS:
        _, made = CertificationLevel.objects.get_or_create(code=spec["code"], defaults=spec)
        created += int(made)
    return created


def _plain(value: Any) -> Any:
    """A value the audit log's JSON can hold (amounts as text, exact)."""
    return str(value) if isinstance(value, Decimal) else value


LEVEL_EDITABLE = (
    "name",
    "name_en",
    "rank",
    "min_credit_score",
    "min_paid_orders",
    "min_spend_12m",
    "min_tenure_days",
    "requires_no_restrictions",
    "required_documents",
    "validity_days",
    "remind_days",
    "is_active",
)


@transaction.atomic
def level_update(*, user: Any, code: str, changes: Mapping[str, Any]) -> CertificationLevel:
    """Edit a level's criteria; the audit log keeps old and new values. Takes effect for the
    next decision (certifications already granted keep their expiry)."""
    require_permission(user, CHANGE_CERTIFICATION_LEVELS)
    level = CertificationLevel.objects.select_for_update().filter(code=code).first()
    if level is None:
        raise NotFound(f"certification level {code!r} not found")
    unknown = set(changes) - set(LEVEL_EDITABLE)
    if unknown:
        raise ValidationFailed(f"level {code}: cannot change {', '.join(sorted(unknown))}")
    kinds = set(rules.DOCUMENT_LABELS)
    docs = changes.get("required_documents")
    if docs is not None and (not isinstance(docs, list) or not set(docs) <= kinds):
        raise ValidationFailed(
            f"level {code}: required_documents must be a list of {', '.join(sorted(kinds))}"
        )
    if changes.get("validity_days") is not None and int(changes["validity_days"]) < 1:
        raise ValidationFailed(f"level {code}: validity_days must be at least 1")
    old: dict[str, Any] = {}
    new: dict[str, Any] = {}
    for name, value in changes.items():
        before = getattr(level, name)
        if before != value:
            old[name], new[name] = _plain(before), _plain(value)
            setattr(level, name, value)
    if new:
        level.save()
        audit_record(
            AuditEntry(
                action="update",
                entity_type="certification.level",
                entity_id=level.code,
                summary=f"level {level.code} criteria changed: {', '.join(sorted(new))}",
                changes={"old": old, "new": new},
            ),
            actor=user,
        )
    return level


# ---------------------------------------------------------------------- applications


@dataclass(frozen=True)
class ApplicationData:
    """The applicant's statements. Empty strings mean "not given"."""

    real_name: str = ""
    id_number: str = ""
    phone: str = ""
    birth_date: date | None = None
    id_region: str = ""
    company_name: str = ""
    credit_code: str = ""
    legal_rep_name: str = ""
    legal_rep_id_number: str = ""
    qualifications: tuple[Mapping[str, Any], ...] = ()


_DATA_FIELDS = tuple(f.name for f in fields(ApplicationData))


def _hash(value: str, kind: str) -> str:
    return crypto.lookup_hash(value, kind=kind) if value.strip() else ""


def _valid_until(item: Mapping[str, Any], number: int) -> str | None:
    value = item.get("valid_until")
    if value in (None, ""):
        return None
    if isinstance(value, date):
        return value.isoformat()
    try:
        return date.fromisoformat(str(value)).isoformat()
    except ValueError as exc:
        raise ValidationFailed(
            f"qualifications[{number}].valid_until: expected a date YYYY-MM-DD, got {value!r}"
        ) from exc


def _store(application: Application, data: ApplicationData) -> None:
    for name in _DATA_FIELDS:
        value = getattr(data, name)
        if name == "qualifications":
            value = [
                {
                    "name": str(item.get("name", "")).strip(),
                    "number": str(item.get("number", "")).strip(),
                    "valid_until": _valid_until(item, number),
                }
                for number, item in enumerate(value)
            ]
        elif isinstance(value, str):
            value = value.strip()
        setattr(application, name, value)
    application.id_number_hash = _hash(data.id_number, "id_number")
    application.credit_code_hash = _hash(data.credit_code, "credit_code")
    application.legal_rep_id_hash = _hash(data.legal_rep_id_number, "id_number")


def application_data(application: Application) -> ApplicationData:
    values: dict[str, Any] = {name: getattr(application, name) for name in _DATA_FIELDS}
    values["qualifications"] = tuple(application.qualifications or ())
    return ApplicationData(**values)


def _may_file(user: Any, customer_id: int, applicant_customer_id: int | None) -> None:
    """Staff with the permission file for any customer; an applicant only for themself."""
    if user is None:
        if applicant_customer_id != customer_id:
            raise PermissionDenied("this link does not belong to that customer")
        return
    require_permission(user, APPLY_FOR_CERTIFICATION)


def _application_for(
    user: Any, application_id: int, applicant_customer_id: int | None
) -> Application:
    application = locked(Application, application_id, "application")
    if user is None:
        if application.customer_id != applicant_customer_id:
            # The same answer as a missing one: an applicant learns nothing of others.
            raise NotFound(f"application {application_id} not found")
    else:
        require_permission(user, APPLY_FOR_CERTIFICATION)
    return application


@transaction.atomic
def application_create(
    *,
    user: Any,
    customer_id: int,
    level_code: str,
    data: ApplicationData,
    channel: str = Application.Channel.STAFF,
    applicant_customer_id: int | None = None,
) -> Application:
    """Start an application (a draft, until submitted). One live application per customer."""
    _may_file(user, customer_id, applicant_customer_id)
    if channel not in Application.Channel.values:
        raise ValidationFailed(
            f"channel: one of {', '.join(Application.Channel.values)}; got {channel!r}"
        )
    customer = _customer(customer_id)
    level = _level(level_code)
    if not level.is_active:
        raise Conflict(f"certification level {level.code} is not offered at the moment")
    if Application.objects.filter(customer=customer, status__in=rules.LIVE_APPLICATION).exists():
        raise Conflict(
            f"customer {customer_id} already has an application in progress: "
            "continue that one or withdraw it first"
        )
    now = timezone.now()
    application = Application(
        customer=customer, level=level, channel=channel, created_by=user if user else None
    )
    _store(application, data)
    try:
        with transaction.atomic():
            application.save()
    except IntegrityError as exc:  # a concurrent request won the one-live-application race
        raise Conflict(f"customer {customer_id} already has an application in progress") from exc
    _event(application, user=user, action="create", before="", at=now)
    _audit(
        user,
        entity="application",
        pk=application.pk,
        customer_id=customer_id,
        summary=f"certification application for level {level.code} started ({channel})",
    )
    return application


@transaction.atomic
def application_update(
    *,
    user: Any,
    application_id: int,
    data: ApplicationData,
    level_code: str | None = None,
    applicant_customer_id: int | None = None,
) -> Application:
    """Correct an application while it is with the applicant (draft or more info needed)."""
    application = _application_for(user, application_id, applicant_customer_id)
    if application.status not in rules.EDITABLE_APPLICATION:
        raise Conflict(
            f"application {application_id} is {application.status.replace('_', ' ')}: "
            "it can be changed only while it is a draft or more information is needed"
        )
    if level_code is not None and level_code != application.level.code:
        application.level = _level(level_code)
    _store(application, data)
    application.save()
    _event(application, user=user, action="update", before=application.status, at=timezone.now())
    return application


def _sniff(content: bytes) -> str:
    for signature, content_type in _SIGNATURES:
        if content.startswith(signature):
            return content_type
    raise ValidationFailed(
        "document: only PDF, JPEG and PNG files are accepted (the file's content is none of them)"
    )


def _filename(name: str) -> str:
    base = PurePath((name or "").replace("\\", "/")).name.strip()
    base = re.sub(r"[\x00-\x1f]", "", base)
    return (base or "document")[:200]


def _document_context(sha256: str) -> str:
    return f"certification.document:{sha256}"


def document_size_check(*, filename: str, size: int) -> None:
    """Refuse an empty or too large file; callers holding an upload check before reading it."""
    limit = max_document_bytes()
    if size <= 0:
        raise ValidationFailed(f"document {filename!r}: the file is empty")
    if size > limit:
        raise ValidationFailed(
            f"document {filename!r}: {size:,} bytes is over the limit of {limit:,}"
        )


def document_validate(*, filename: str, content: bytes, kind: str) -> tuple[str, str]:
    """The stored name and the sniffed content type, or ``ValidationFailed`` naming the fault."""
    if kind not in rules.DOCUMENT_LABELS:
        raise ValidationFailed(
            f"document {filename!r}: kind must be one of {', '.join(rules.DOCUMENT_LABELS)}"
        )
    document_size_check(filename=filename, size=len(content))
    try:
        content_type = _sniff(content)
    except ValidationFailed as exc:
        raise ValidationFailed(f"{filename!r}: {exc.message}") from exc
    return _filename(filename), content_type


@transaction.atomic
def document_add(
    *,
    user: Any,
    application_id: int,
    kind: str,
    filename: str,
    content: bytes,
    applicant_customer_id: int | None = None,
) -> Document:
    """Attach a document (type sniffed from its bytes, size-checked, stored encrypted)."""
    application = _application_for(user, application_id, applicant_customer_id)
    if application.status not in rules.EDITABLE_APPLICATION:
        raise Conflict(
            f"application {application_id} is {application.status.replace('_', ' ')}: "
            "documents can be added only while it is a draft or more information is needed"
        )
    if application.documents.count() >= MAX_DOCUMENTS:
        raise Conflict(f"application {application_id} already has {MAX_DOCUMENTS} documents")
    name, content_type = document_validate(filename=filename, content=content, kind=kind)
    digest = hashlib.sha256(content).hexdigest()
    document = Document.objects.create(
        application=application,
        kind=kind,
        filename=name,
        content_type=content_type,
        size=len(content),
        sha256=digest,
        content=crypto.encrypt_bytes(content, context=_document_context(digest)),
        uploaded_by=user if user else None,
    )
    _event(
        application,
        user=user,
        action="upload",
        before=application.status,
        note=f"{kind}: {name}",
        at=timezone.now(),
    )
    return document


def document_content(document: Document) -> bytes:
    """The decrypted bytes (callers check permission first: ``selectors.document_read``)."""
    return crypto.decrypt_bytes(bytes(document.content), context=_document_context(document.sha256))


# ---------------------------------------------------------------------- facts and pre-checks


def customer_facts(
    customer: Customer, *, hashes: Mapping[str, str], now: datetime
) -> rules.CustomerFacts:
    """What the level criteria and the reviewer need to know about the customer, now."""
    from patron.risk.models import BlacklistEntry, Restriction
    from patron.scoring.models import CustomerScore

    credit = (
        CustomerScore.objects.filter(customer=customer)
        .values_list("credit_score", flat=True)
        .first()
    )
    paid = Order.objects.filter(customer=customer, paid_at__isnull=False, paid_at__lt=now).exclude(
        status__in=[Order.Status.CANCELLED, Order.Status.RETURNED]
    )
    spend = paid.filter(paid_at__gte=now - timedelta(days=365)).aggregate(s=Sum("total_amount"))[
        "s"
    ]
    first_order = paid.order_by("paid_at").values_list("paid_at", flat=True).first()
    since = customer.registered_at or first_order or customer.created_at
    restrictions = tuple(
        sorted(
            set(
                Restriction.objects.filter(
                    customer=customer, lifted_at__isnull=True, starts_at__lte=now
                )
                .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
                .values_list("kind", flat=True)
            )
        )
    )
    blacklisted = BlacklistEntry.objects.filter(customer=customer, status="active").exists()
    return rules.CustomerFacts(
        credit_score=credit,
        paid_orders=paid.count(),
        spend_12m=Decimal(spend or 0),
        tenure_days=max((now - since).days, 0) if since else 0,
        restrictions=restrictions,
        is_blacklisted=blacklisted,
        duplicates=_duplicates(customer.pk, hashes),
    )


def _duplicates(customer_id: int, hashes: Mapping[str, str]) -> tuple[int, ...]:
    """Other customers holding the same ID number or credit code (on file or applied with)."""
    code_hash = hashes.get("credit_code", "")
    found: set[int] = set()
    id_hash = hashes.get("id_number", "")
    if id_hash:
        found |= set(
            Customer.objects.filter(id_number_hash=id_hash)
            .exclude(pk=customer_id)
            .values_list("pk", flat=True)
        )
        found |= set(
            Application.objects.filter(id_number_hash=id_hash)
            .exclude(customer_id=customer_id)
            .exclude(status__in=["rejected", "withdrawn"])
            .values_list("customer_id", flat=True)
        )
    if code_hash:
        found |= set(
            Application.objects.filter(credit_code_hash=code_hash)
            .exclude(customer_id=customer_id)
            .exclude(status__in=["rejected", "withdrawn"])
            .values_list("customer_id", flat=True)
        )
    return tuple(sorted(found))


def _file_checks(customer: Customer, data: ApplicationData) -> list[rules.Check]:
    """The entered facts against the customer's file: differences are for the reviewer."""
    checks: list[rules.Check] = []
    if data.id_number and customer.id_number_hash:
        same = customer.id_number_hash == _hash(data.id_number, "id_number")
        checks.append(
            rules.Check(
                "file_id_number" if same else "file_id_number_differs",
                same,
                False,
                {
                    "template": "The ID number matches the one on the customer's file."
                    if same
                    else "The ID number differs from the one on the customer's file.",
                    "params": {},
                },
                "id_number",
            )
        )
    return checks


def application_prechecks(
    application: Application, *, now: datetime, level: CertificationLevel | None = None
) -> list[dict[str, Any]]:
    """Every pre-check of an application, as stored JSON: hard checks of what was entered,
    then the soft ones (file, duplicates, the criteria of ``level``, by default the one
    applied for)."""
    data = application_data(application)
    kinds = frozenset(application.documents.values_list("kind", flat=True))
    entered = rules.ApplicationInput(
        kind=application.level.applicant_kind, documents=kinds, **data.__dict__
    )
    criteria = level_criteria(level or application.level)
    checks = rules.application_checks(
        entered,
        required_documents=criteria.required_documents,
        today=timezone.localdate(now),
    )
    facts = customer_facts(
        application.customer,
        hashes={
            "id_number": application.id_number_hash,
            "credit_code": application.credit_code_hash,
        },
        now=now,
    )
    checks += _file_checks(application.customer, data)
    checks.append(rules.duplicate_check(facts))
    checks += rules.criteria_checks(criteria, facts)
    return [check.to_json() for check in checks]


def _applicant_link(customer_id: int) -> str:
    from patron.certification.tokens import applicant_url

    return applicant_url(customer_id)


@transaction.atomic
def applicant_link_issue(*, user: Any, customer_id: int, absolute: bool = True) -> str:
    """The customer's signed link to the public page, for staff to send them. The link acts
    as the customer for certification, so handing it out is audited."""
    from patron.certification.tokens import applicant_path, link_days

    if user is not None:
        require_permission(user, APPLY_FOR_CERTIFICATION)
    _customer(customer_id)
    audit_record(
        AuditEntry(
            action="access",
            entity_type="certification.applicant_link",
            entity_id=str(customer_id),
            customer_id=customer_id,
            summary=f"certification link issued (valid {link_days()} days)",
        ),
        actor=user,
        actor_label="" if user is not None else "command line",
    )
    return _applicant_link(customer_id) if absolute else applicant_path(customer_id)


@transaction.atomic
def application_submit(
    *, user: Any, application_id: int, applicant_customer_id: int | None = None
) -> Application:
    """Submit (or resubmit) for review. The pre-checks run at once: a failed hard check returns
    the application to the applicant with the precise faults, without a reviewer's time."""
    application = _application_for(user, application_id, applicant_customer_id)
    now = timezone.now()
    checks = application_prechecks(application, now=now)
    failures = rules.hard_failures(checks)
    before = application.status
    action = "return" if failures else "submit"
    application.status = transition(rules.application_next, before, action)
    application.prechecks = checks
    application.prechecked_at = now
    if application.submitted_at is None and not failures:
        application.submitted_at = now
    if failures:
        application.info_requested = "\n".join(_english(f["reason"]) for f in failures)
    else:
        application.info_requested = ""
    application.save()
    _event(
        application,
        user=user,
        action=action,
        before=before,
        note=application.info_requested,
        at=now,
    )
    if failures:
        _tell(
            application.customer_id,
            "certification.info_requested",
            key=f"certification.returned:{application.pk}:{now.isoformat()}",
            source=f"certification.application:{application.pk}",
            missing=application.info_requested,
            link=_applicant_link(application.customer_id),
        )
    _audit(
        user,
        entity="application",
        pk=application.pk,
        customer_id=application.customer_id,
        summary=(
            f"application returned to the applicant: {len(failures)} pre-check(s) failed"
            if failures
            else "application submitted for review"
        ),
    )
    return application


def _english(reason: Mapping[str, Any]) -> str:
    from patron.intelligence.explain import render

    return render(reason, language="en")


def _review_permission(user: Any) -> None:
    require_permission(user, REVIEW_CERTIFICATION)


@transaction.atomic
def application_start_review(*, user: Any, application_id: int) -> Application:
    """A reviewer takes the application (others see who has it)."""
    _review_permission(user)
    application = locked(Application, application_id, "application")
    _decider(user, filed_by=application.created_by_id, what="application")
    before = application.status
    application.status = transition(rules.application_next, before, "start_review")
    application.reviewer = user
    application.save(update_fields=["status", "reviewer"])
    _event(application, user=user, action="start_review", before=before, at=timezone.now())
    return application


def _decidable(user: Any, application_id: int) -> Application:
    _review_permission(user)
    application = locked(Application, application_id, "application")
    _decider(user, filed_by=application.created_by_id, what="application")
    if application.status == "in_review" and application.reviewer_id not in (None, user.pk):
        raise Conflict(
            f"application {application_id} is being reviewed by someone else; "
            "they must release it first"
        )
    return application


@transaction.atomic
def application_approve(
    *, user: Any, application_id: int, reason: str, level_code: str | None = None
) -> Certification:
    """Approve and grant a level (the one applied for, or another of the same kind whose
    criteria the customer meets). The checks are run again: data may have changed."""
    application = _decidable(user, application_id)
    before = application.status
    status = transition(rules.application_next, before, "approve")
    reason = reason_text(reason, f"application {application_id}")
    level = _level(level_code) if level_code else application.level
    if level.applicant_kind != application.level.applicant_kind:
        raise Conflict(
            f"level {level.code} is for {level.applicant_kind} customers; "
            f"application {application_id} is a {application.level.applicant_kind} application"
        )
    if not level.is_active:
        raise Conflict(f"certification level {level.code} is not offered at the moment")
    now = timezone.now()
    checks = application_prechecks(application, now=now, level=level)
    failures = rules.hard_failures(checks)
    if failures:
        raise Conflict(
            f"application {application_id} fails pre-checks: "
            + "; ".join(_english(f["reason"]) for f in failures)
        )
    facts = customer_facts(
        application.customer,
        hashes={
            "id_number": application.id_number_hash,
            "credit_code": application.credit_code_hash,
        },
        now=now,
    )
    unmet = rules.unmet_criteria(level_criteria(level), facts)
    if unmet:
        raise Conflict(
            f"customer {application.customer_id} does not meet level {level.code}: "
            + "; ".join(_english(c["reason"]) for c in unmet)
        )
    application.status = status
    application.prechecks = checks
    application.prechecked_at = now
    application.decided_by = user
    application.decided_at = now
    application.decision_reason = reason
    application.granted_level = level
    application.save()
    certification = _grant(application, level=level, user=user, now=now)
    _event(application, user=user, action="approve", before=before, note=reason, at=now)
    _audit(
        user,
        entity="application",
        pk=application.pk,
        customer_id=application.customer_id,
        summary=f"application approved: level {level.code} granted until {certification.expires_at:%Y-%m-%d}",
        reason=reason,
    )
    _tell(
        application.customer_id,
        "certification.approved",
        key=f"certification.approved:{application.pk}",
        source=f"certification.application:{application.pk}",
        level=_level_name(level),
    )
    return certification


def _profile(application: Application) -> dict[str, Any]:
    data = application_data(application)
    kind = application.level.applicant_kind
    profile: dict[str, Any] = {name: getattr(data, name) for name in rules.PROFILE_FIELDS[kind]}
    profile["kind"] = kind
    if kind == "business":
        profile["qualifications"] = list(application.qualifications or [])
    return profile


def _grant(
    application: Application, *, level: CertificationLevel, user: Any, now: datetime
) -> Certification:
    for current in Certification.objects.select_for_update().filter(
        customer=application.customer, status=Certification.Status.ACTIVE
    ):
        current.status = transition(rules.certification_next, current.status, "supersede")
        current.ended_at = now
        current.end_reason = f"superseded by application {application.pk}"
        current.save(update_fields=["status", "ended_at", "end_reason"])
    profile = _profile(application)
    certification = Certification.objects.create(
        customer=application.customer,
        level=level,
        application=application,
        profile=json.dumps(profile, ensure_ascii=False, default=str),
        granted_by=user,
        granted_at=now,
        expires_at=now + timedelta(days=level.validity_days),
    )
    _apply_to_customer(application.customer, profile)
    return certification


def _apply_to_customer(customer: Customer, profile: Mapping[str, Any]) -> None:
    """Verified facts become the customer's file: the ID number, phone and company name."""
    updates: list[str] = []
    if profile.get("id_number"):
        customer.id_number = profile["id_number"]
        customer.id_number_hash = crypto.lookup_hash(profile["id_number"], kind="id_number")
        updates += ["id_number", "id_number_hash"]
    if profile.get("phone"):
        customer.phone = profile["phone"]
        customer.phone_hash = crypto.lookup_hash(profile["phone"], kind="phone")
        updates += ["phone", "phone_hash"]
    if profile.get("kind") == "business" and profile.get("company_name"):
        customer.company_name = profile["company_name"]
        customer.kind = Customer.Kind.BUSINESS
        updates += ["company_name", "kind"]
    if updates:
        customer.save(update_fields=[*updates, "updated_at"])


@transaction.atomic
def application_reject(*, user: Any, application_id: int, reason: str) -> Application:
    application = _decidable(user, application_id)
    reason = reason_text(reason, f"application {application_id}")
    now = timezone.now()
    before = application.status
    application.status = transition(rules.application_next, before, "reject")
    application.decided_by = user
    application.decided_at = now
    application.decision_reason = reason
    application.save()
    _event(application, user=user, action="reject", before=before, note=reason, at=now)
    _audit(
        user,
        entity="application",
        pk=application.pk,
        customer_id=application.customer_id,
        summary="application rejected",
        reason=reason,
    )
    _tell(
        application.customer_id,
        "certification.rejected",
        key=f"certification.rejected:{application.pk}",
        source=f"certification.application:{application.pk}",
        reason=reason,
    )
    return application


@transaction.atomic
def application_request_info(*, user: Any, application_id: int, missing: str) -> Application:
    """Send the application back, saying exactly what is missing (a round trip)."""
    application = _decidable(user, application_id)
    missing = reason_text(missing, f"application {application_id}: what is missing")
    now = timezone.now()
    before = application.status
    application.status = transition(rules.application_next, before, "request_info")
    application.info_requested = missing
    application.round_trips += 1
    application.reviewer = None
    application.save()
    _event(application, user=user, action="request_info", before=before, note=missing, at=now)
    _audit(
        user,
        entity="application",
        pk=application.pk,
        customer_id=application.customer_id,
        summary="more information requested from the applicant",
        missing=missing,
    )
    _tell(
        application.customer_id,
        "certification.info_requested",
        key=f"certification.info:{application.pk}:{application.round_trips}",
        source=f"certification.application:{application.pk}",
        missing=missing,
        link=_applicant_link(application.customer_id),
    )
    return application


@transaction.atomic
def application_release(*, user: Any, application_id: int) -> Application:
    """Give a claimed application back to the queue."""
    _review_permission(user)
    application = locked(Application, application_id, "application")
    if application.reviewer_id not in (None, user.pk):
        raise Conflict(f"application {application_id} is being reviewed by someone else")
    before = application.status
    application.status = transition(rules.application_next, before, "release")
    application.reviewer = None
    application.save(update_fields=["status", "reviewer"])
    _event(application, user=user, action="release", before=before, at=timezone.now())
    return application


@transaction.atomic
def application_withdraw(
    *, user: Any, application_id: int, reason: str, applicant_customer_id: int | None = None
) -> Application:
    application = _application_for(user, application_id, applicant_customer_id)
    reason = reason_text(reason, f"application {application_id}")
    now = timezone.now()
    before = application.status
    application.status = transition(rules.application_next, before, "withdraw")
    application.decision_reason = reason
    application.decided_at = now
    application.save()
    _event(application, user=user, action="withdraw", before=before, note=reason, at=now)
    _audit(
        user,
        entity="application",
        pk=application.pk,
        customer_id=application.customer_id,
        summary="application withdrawn",
        reason=reason,
    )
    return application


# ---------------------------------------------------------------------- certifications


@transaction.atomic
def certification_revoke(*, user: Any, certification_id: int, reason: str) -> Certification:
    _review_permission(user)
    certification = locked(Certification, certification_id, "certification")
    reason = reason_text(reason, f"certification {certification_id}")
    certification.status = transition(rules.certification_next, certification.status, "revoke")
    certification.ended_at = timezone.now()
    certification.end_reason = reason
    certification.save(update_fields=["status", "ended_at", "end_reason"])
    _audit(
        user,
        entity="certification",
        pk=certification.pk,
        customer_id=certification.customer_id,
        summary=f"certification {certification.level_id} revoked",
        reason=reason,
    )
    return certification


@dataclass(frozen=True)
class ExpiryResult:
    reminded: int
    expired: int


@transaction.atomic
def certifications_reverify(*, now: datetime | None = None) -> ExpiryResult:
    """The re-verification job (R-H3): remind customers ahead of expiry, once, and downgrade
    at expiry (the certification ends; the customer applies again). Safe to run twice."""
    now = now or timezone.now()
    reminded = expired = 0
    live = (
        Certification.objects.select_for_update()
        .select_related("level")
        .filter(status=Certification.Status.ACTIVE)
        .filter(
            Q(expires_at__lte=now)
            | Q(reminded_at__isnull=True, expires_at__lte=now + timedelta(days=400))
        )
    )
    for certification in live:
        stage = rules.expiry_stage(
            expires_at=certification.expires_at,
            now=now,
            remind_days=certification.level.remind_days,
            reminded=certification.reminded_at is not None,
        )
        source = f"certification.certification:{certification.pk}"
        if stage == "remind":
            certification.reminded_at = now
            certification.save(update_fields=["reminded_at"])
            _tell(
                certification.customer_id,
                "certification.expiring",
                key=f"certification.expiring:{certification.pk}",
                source=source,
                level=_level_name(certification.level),
                expires_on=timezone.localdate(certification.expires_at).isoformat(),
                link=_applicant_link(certification.customer_id),
            )
            reminded += 1
        elif stage == "expire":
            certification.status = transition(
                rules.certification_next, certification.status, "expire"
            )
            certification.ended_at = now
            certification.end_reason = "expired: not re-verified in time"
            certification.save(update_fields=["status", "ended_at", "end_reason"])
            _audit(
                None,
                entity="certification",
                pk=certification.pk,
                customer_id=certification.customer_id,
                summary=f"certification {certification.level.code} expired",
            )
            _tell(
                certification.customer_id,
                "certification.expired",
                key=f"certification.expired:{certification.pk}",
                source=source,
                level=_level_name(certification.level),
            )
            expired += 1
    return ExpiryResult(reminded=reminded, expired=expired)


# ---------------------------------------------------------------------- change requests


def certification_profile(certification: Certification) -> dict[str, Any]:
    return dict(json.loads(certification.profile or "{}"))


def _change_checks(changes: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [c.to_json() for c in rules.field_checks({k: v["new"] for k, v in changes.items()})]


@transaction.atomic
def change_request_file(
    *,
    user: Any,
    customer_id: int,
    changes: Mapping[str, str],
    reason: str,
    source: str = "staff",
    applicant_customer_id: int | None = None,
) -> ChangeRequest:
    """Ask to change important fields of a certified customer. Nothing changes until a
    reviewer other than the requester approves; a malformed new value is refused at once."""
    if user is None:
        if applicant_customer_id != customer_id:
            raise PermissionDenied("this link does not belong to that customer")
    else:
        require_permission(user, APPLY_FOR_CERTIFICATION)
    reason = reason_text(reason, f"change request for customer {customer_id}")
    certification = (
        Certification.objects.select_for_update()
        .filter(customer_id=customer_id, status=Certification.Status.ACTIVE)
        .first()
    )
    if certification is None:
        _customer(customer_id)
        raise Conflict(
            f"customer {customer_id} has no active certification: change the file directly"
        )
    profile = certification_profile(certification)
    kind = str(profile.get("kind", certification.level.applicant_kind))
    try:
        diff = rules.changed_fields(profile, changes, kind=kind)
    except KeyError as exc:
        allowed = ", ".join(rules.PROFILE_FIELDS[kind])
        raise ValidationFailed(
            f"change request: {exc.args[0]!r} is not a certified field of this {kind} customer "
            f"(certified fields: {allowed})"
        ) from exc
    if not diff:
        raise ValidationFailed("change request: nothing would change (the values are the same)")
    checks = _change_checks(diff)
    failures = rules.hard_failures(checks)
    if failures:
        raise ValidationFailed(
            "change request: " + "; ".join(_english(f["reason"]) for f in failures),
            details={"prechecks": failures},
        )
    if ChangeRequest.objects.filter(certification=certification, status="pending").exists():
        raise Conflict(f"customer {customer_id} already has a change request waiting for review")
    request = ChangeRequest.objects.create(
        certification=certification,
        customer_id=customer_id,
        fields=sorted(diff),
        changes=json.dumps(diff, ensure_ascii=False),
        reason=reason,
        source=source,
        prechecks=checks,
        requested_by=user if user else None,
        requested_at=timezone.now(),
    )
    _audit(
        user,
        entity="change_request",
        pk=request.pk,
        customer_id=customer_id,
        summary=f"change of {', '.join(sorted(diff))} requested (waits for review)",
        reason=reason,
    )
    return request


#: Facts of a certified profile that the customer's file mirrors (``_apply_to_customer``).
_MIRRORED_BY_HASH = ("id_number", "phone")


def _file_drift(certification: Certification) -> dict[str, dict[str, Any]]:
    """Where the customer's file no longer says what was certified."""
    profile = certification_profile(certification)
    customer = certification.customer
    drift: dict[str, dict[str, Any]] = {}
    for name in _MIRRORED_BY_HASH:
        certified = str(profile.get(name) or "")
        on_file = getattr(customer, f"{name}_hash")
        if certified and on_file and on_file != crypto.lookup_hash(certified, kind=name):
            drift[name] = {"old": certified, "new": str(getattr(customer, name) or "")}
    certified_name = str(profile.get("company_name") or "")
    if (
        profile.get("kind") == "business"
        and certified_name
        and customer.company_name
        and customer.company_name != certified_name
    ):
        drift["company_name"] = {"old": certified_name, "new": customer.company_name}
    return drift


@transaction.atomic
def certified_changes_detect() -> int:
    """An import that changes a certified customer's ID number, phone or company name does not
    change what was certified: each such change becomes a change request from the import, for
    a reviewer to accept (the certified profile takes the new value) or reject (the file gets
    the certified value back). Runs after each import of customers; safe to run twice (a
    customer with a change request waiting is left alone). Returns how many were filed."""
    filed = 0
    live = (
        Certification.objects.select_for_update()
        .select_related("customer")
        .filter(status=Certification.Status.ACTIVE)
        .exclude(change_requests__status=ChangeRequest.Status.PENDING)
    )
    for certification in live:
        drift = _file_drift(certification)
        if not drift:
            continue
        request = ChangeRequest.objects.create(
            certification=certification,
            customer_id=certification.customer_id,
            fields=sorted(drift),
            changes=json.dumps(drift, ensure_ascii=False),
            reason="an import changed these certified facts on the customer's file",
            source="import",
            prechecks=_change_checks(drift),
            requested_at=timezone.now(),
        )
        _audit(
            None,
            entity="change_request",
            pk=request.pk,
            customer_id=certification.customer_id,
            summary=f"an import changed certified {', '.join(sorted(drift))}: waits for review",
        )
        filed += 1
    return filed


def change_request_values(request: ChangeRequest) -> dict[str, dict[str, Any]]:
    return dict(json.loads(request.changes or "{}"))


def _change_decision(user: Any, request_id: int, action: str, reason: str) -> ChangeRequest:
    """The request locked and moved by ``action``, with its decider recorded (unsaved)."""
    _review_permission(user)
    request = locked(ChangeRequest, request_id, "change request")
    _decider(user, filed_by=request.requested_by_id, what="change request")
    request.decision_reason = reason_text(reason, f"change request {request_id}")
    request.status = transition(rules.change_next, request.status, action)
    request.decided_by = user
    request.decided_at = timezone.now()
    return request


@transaction.atomic
def change_request_approve(*, user: Any, request_id: int, reason: str) -> ChangeRequest:
    """Apply the change to the certified profile and the customer's file, keeping both values."""
    request = _change_decision(user, request_id, "approve", reason)
    failures = rules.hard_failures(request.prechecks or [])
    if failures:
        raise Conflict(
            f"change request {request_id}: the new values fail the pre-checks: "
            + "; ".join(_english(f["reason"]) for f in failures)
            + " — reject it instead"
        )
    certification = locked(Certification, request.certification_id, "certification")
    if certification.status != Certification.Status.ACTIVE:
        raise Conflict(
            f"change request {request_id}: certification {certification.pk} is "
            f"{certification.status}; nothing to change"
        )
    changes = change_request_values(request)
    profile = certification_profile(certification)
    profile.update({name: change["new"] for name, change in changes.items()})
    certification.profile = json.dumps(profile, ensure_ascii=False, default=str)
    certification.save(update_fields=["profile"])
    _apply_to_customer(certification.customer, profile)
    request.save()
    _decided(request, user=user, outcome="approved")
    return request


@transaction.atomic
def change_request_reject(*, user: Any, request_id: int, reason: str) -> ChangeRequest:
    request = _change_decision(user, request_id, "reject", reason)
    request.save()
    if request.source == "import":  # the file gets back what was certified
        certification = locked(Certification, request.certification_id, "certification")
        _apply_to_customer(certification.customer, certification_profile(certification))
    _decided(request, user=user, outcome="rejected")
    return request


def _decided(request: ChangeRequest, *, user: Any, outcome: str) -> None:
    reason = request.decision_reason
    _audit(
        user,
        entity="change_request",
        pk=request.pk,
        customer_id=request.customer_id,
        summary=f"change of {', '.join(request.fields)} {outcome}",
        reason=reason,
    )
    _tell(
        request.customer_id,
        "change_request.decided",
        key=f"certification.change:{request.pk}",
        source=f"certification.change_request:{request.pk}",
        outcome=("已通过 approved" if outcome == "approved" else "未通过 rejected"),
        reason=reason,
    )
