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
from collections.abc import Iterable, Mapping
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
    BusinessCategory,
    Certification,
    CertificationLevel,
    ChangeRequest,
    Document,
)
from patron.commerce.models import Order
from patron.customer.models import Customer
from patron.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from patron.outbox.services import service_message as _tell
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


#: Who acted when no staff member did (``user`` is None).
APPLICANT = "applicant (signed link)"
REVERIFICATION_JOB = "re-verification job"
IMPORT_CHECK = "import check"


def _audit(
    user: Any,
    *,
    entity: str,
    pk: int,
    customer_id: int,
    summary: str,
    system: str = APPLICANT,
    **changes: Any,
) -> None:
    audit_update(
        user,
        entity_type=f"certification.{entity}",
        pk=pk,
        customer_id=customer_id,
        summary=summary,
        system_label=system,
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
        validity_days=level.validity_days,
        is_active=level.is_active,
    )


def _level(code: str) -> CertificationLevel:
    level = CertificationLevel.objects.filter(code=code).first()
    if level is None:
        raise NotFound(f"certification level {code!r} not found")
    return level


# ---------------------------------------------------------------------- levels


@transaction.atomic
def levels_seed() -> int:
    """Create the default levels that do not exist yet, with their default fallbacks; returns
    how many were created (levels already there keep what staff made of them)."""
    made: set[str] = set()
    for spec in rules.DEFAULT_LEVELS:
        _, created = CertificationLevel.objects.get_or_create(code=spec["code"], defaults=spec)
        if created:
            made.add(spec["code"])
    for code, fallback in rules.DEFAULT_FALLBACKS.items():
        if code in made:
            CertificationLevel.objects.filter(code=code, fallback__isnull=True).update(
                fallback=CertificationLevel.objects.filter(code=fallback).first()
            )
    return len(made)


def categories_seed() -> int:
    """Create the default trades that do not exist yet; returns how many were created."""
    made = 0
    for spec in rules.DEFAULT_CATEGORIES:
        _, created = BusinessCategory.objects.get_or_create(code=spec["code"], defaults=spec)
        made += created
    return made


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
    "fallback",
    "is_active",
)


def _links(levels: Any, level: CertificationLevel, fallback: str | None) -> list[rules.LevelLink]:
    """Every level's place, with ``level`` as it would be after the edit."""
    code_of = {other.pk: other.code for other in levels}
    links = []
    if level.pk is None:  # a level being created
        links.append(rules.LevelLink(level.code, level.applicant_kind, level.rank, fallback))
    for other in levels:
        if other.pk == level.pk:
            links.append(rules.LevelLink(level.code, level.applicant_kind, level.rank, fallback))
        else:
            code = code_of.get(other.fallback_id) if other.fallback_id else None
            links.append(rules.LevelLink(other.code, other.applicant_kind, other.rank, code))
    return links


@dataclass(frozen=True)
class _LevelEdit:
    old: dict[str, Any]
    new: dict[str, Any]


def _level_edit(level: CertificationLevel, changes: Mapping[str, Any], *, lock: bool) -> _LevelEdit:
    """Check ``changes`` and set them on ``level`` (unsaved); ``ValidationFailed`` names the
    level and the field. A fallback is given by its level's code (None: none)."""
    code = level.code
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
    current_fallback = (
        CertificationLevel.objects.filter(pk=level.fallback_id)
        .values_list("code", flat=True)
        .first()
        if level.fallback_id
        else None
    )
    fallback_code = current_fallback
    if "fallback" in changes:
        fallback_code = changes["fallback"] or None
    old: dict[str, Any] = {}
    new: dict[str, Any] = {}
    for name, value in changes.items():
        if name == "fallback":
            if current_fallback != fallback_code:
                old[name], new[name] = current_fallback, fallback_code
            continue
        before = getattr(level, name)
        if before != value:
            old[name], new[name] = _plain(before), _plain(value)
            setattr(level, name, value)
    if {"fallback", "rank"} & set(new):
        # Locked: two edits at once cannot make a loop that neither would make alone.
        rows = (
            CertificationLevel.objects.select_for_update() if lock else CertificationLevel.objects
        )
        levels = list(rows.all())
        faults = rules.fallback_faults(_links(levels, level, fallback_code), edited=code)
        if faults:
            raise ValidationFailed("; ".join(faults))
        if "fallback" in new:
            level.fallback = next((lv for lv in levels if lv.code == fallback_code), None)
    return _LevelEdit(old=old, new=new)


def _new_level(code: str, applicant_kind: str, changes: Mapping[str, Any], *, lock: bool) -> Any:
    """A level not saved yet, checked like an edit; ``ValidationFailed`` names the field."""
    if not re.fullmatch(r"[-a-z0-9_]{1,40}", code or ""):
        raise ValidationFailed(
            f"level {code!r}.code: lower-case letters, digits, - and _ (at most 40)"
        )
    if applicant_kind not in rules.PROFILE_FIELDS:
        raise ValidationFailed(
            f"level {code}.applicant_kind: one of {', '.join(rules.PROFILE_FIELDS)}; "
            f"got {applicant_kind!r}"
        )
    for name in ("name", "name_en", "rank"):
        if changes.get(name) in (None, ""):
            raise ValidationFailed(f"level {code}.{name}: required for a new level")
    if CertificationLevel.objects.filter(code=code).exists():
        raise Conflict(f"level {code!r} exists already: edit it instead")
    level = CertificationLevel(code=code, applicant_kind=applicant_kind, name="", name_en="")
    edit = _level_edit(level, {"fallback": None, **changes}, lock=lock)
    return level, edit


def level_create_check(
    *, user: Any, code: str, applicant_kind: str, changes: Mapping[str, Any]
) -> None:
    """What ``level_create`` would refuse, without saving (the admin shows it on its form)."""
    require_permission(user, CHANGE_CERTIFICATION_LEVELS)
    _new_level(code, applicant_kind, changes, lock=False)


@transaction.atomic
def level_create(
    *, user: Any, code: str, applicant_kind: str, changes: Mapping[str, Any]
) -> CertificationLevel:
    """Add a level (R-H2: levels are data). Checked like an edit — a fallback of the same kind
    with a lower rank, documents among the known kinds — and audited. New levels are offered at
    once unless ``is_active`` is false; they are switched off, never deleted."""
    require_permission(user, CHANGE_CERTIFICATION_LEVELS)
    level, edit = _new_level(code, applicant_kind, changes, lock=True)
    try:
        with transaction.atomic():
            level.save()
    except IntegrityError as exc:  # the same code created at the same moment
        raise Conflict(f"level {code!r} exists already: edit it instead") from exc
    audit_record(
        AuditEntry(
            action="create",
            entity_type="certification.level",
            entity_id=level.code,
            summary=f"level {level.code} ({applicant_kind}) added",
            changes={"new": {"applicant_kind": applicant_kind, **edit.new}},
        ),
        actor=user,
    )
    return level


def level_update_check(*, user: Any, code: str, changes: Mapping[str, Any]) -> None:
    """Refuse what ``level_update`` would refuse, saving nothing (the admin's form asks first,
    to show the refusal next to the field)."""
    require_permission(user, CHANGE_CERTIFICATION_LEVELS)
    level = CertificationLevel.objects.filter(code=code).first()
    if level is None:
        raise NotFound(f"certification level {code!r} not found")
    _level_edit(level, changes, lock=False)


@transaction.atomic
def level_update(*, user: Any, code: str, changes: Mapping[str, Any]) -> CertificationLevel:
    """Edit a level's criteria, validity or fallback; the audit log keeps old and new values.
    Takes effect for the next decision and the next expiry (certifications already granted
    keep their expiry). A fallback is another level of the same kind with a lower rank, so
    that fallbacks never loop (``rules.fallback_faults``)."""
    require_permission(user, CHANGE_CERTIFICATION_LEVELS)
    level = CertificationLevel.objects.select_for_update().filter(code=code).first()
    if level is None:
        raise NotFound(f"certification level {code!r} not found")
    edit = _level_edit(level, changes, lock=True)
    if edit.new:
        level.save()
        audit_record(
            AuditEntry(
                action="update",
                entity_type="certification.level",
                entity_id=level.code,
                summary=f"level {level.code} criteria changed: {', '.join(sorted(edit.new))}",
                changes={"old": edit.old, "new": edit.new},
            ),
            actor=user,
        )
    return level


# ---------------------------------------------------------------------- trades

MAX_PERMITS = 10


def category_permits(value: Any, *, code: str) -> list[str]:
    """A trade's permits as stored: names without blanks or repeats, at most ``MAX_PERMITS``."""
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValidationFailed(
            f"business category {code}.required_permits: a list of permit names, "
            f'e.g. ["食品经营许可证"]'
        )
    names = list(dict.fromkeys(item.strip() for item in value if item.strip()))
    if len(names) > MAX_PERMITS or any(len(name) > 100 for name in names):
        raise ValidationFailed(
            f"business category {code}.required_permits: at most {MAX_PERMITS} names of at "
            "most 100 characters"
        )
    return names


@transaction.atomic
def category_save(*, user: Any, category: BusinessCategory) -> BusinessCategory:
    """Add or edit a trade (the admin's form, validated); the audit log keeps old and new
    values. Applications decided already keep their pre-checks; the next submission and the
    next re-verification ask for the trade's permits as they are now."""
    require_permission(user, CHANGE_CERTIFICATION_LEVELS)
    category.required_permits = category_permits(category.required_permits, code=category.code)
    fields = ("name", "name_en", "required_permits", "is_active")
    before = (
        BusinessCategory.objects.select_for_update().filter(pk=category.pk).first()
        if category.pk
        else None
    )
    old = {name: getattr(before, name) for name in fields} if before else {}
    new = {
        name: getattr(category, name) for name in fields if old.get(name) != getattr(category, name)
    }
    category.save()
    if new:
        audit_record(
            AuditEntry(
                action="update" if before else "create",
                entity_type="certification.business_category",
                entity_id=category.code,
                summary=f"trade {category.code} {'changed' if before else 'added'}: "
                + ", ".join(sorted(new)),
                changes={"old": {k: old[k] for k in new if k in old}, "new": new},
            ),
            actor=user,
        )
    return category


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
    business_category: str = ""  # a BusinessCategory code; empty: not named


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


def _category(code: str) -> BusinessCategory | None:
    """The trade named by its code (empty: none named)."""
    code = code.strip()
    if not code:
        return None
    category = BusinessCategory.objects.filter(code=code, is_active=True).first()
    if category is None:
        known = ", ".join(
            BusinessCategory.objects.filter(is_active=True).values_list("code", flat=True)
        )
        raise ValidationFailed(
            f"business_category: no trade {code!r}; choose one of {known} (or leave it empty)"
        )
    return category


def _store(application: Application, data: ApplicationData) -> None:
    for name in _DATA_FIELDS:
        value = getattr(data, name)
        if name == "business_category":
            current = application.business_category
            if current is None or current.code != value:  # a retired trade already named stays
                application.business_category = _category(str(value))
            continue
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
    values: dict[str, Any] = {
        name: getattr(application, name) for name in _DATA_FIELDS if name != "business_category"
    }
    values["qualifications"] = tuple(application.qualifications or ())
    category = application.business_category
    values["business_category"] = category.code if category is not None else ""
    return ApplicationData(**values)


def _entered(kind: str, data: ApplicationData, documents: frozenset[str]) -> rules.ApplicationInput:
    """What the pre-checks read: the statements, the documents on file and, for a business
    that named its trade, the trade's permits as they are now (staff may have added one)."""
    values = {name: getattr(data, name) for name in _DATA_FIELDS if name != "business_category"}
    category = (
        BusinessCategory.objects.filter(code=data.business_category).first()
        if kind == "business" and data.business_category
        else None
    )
    return rules.ApplicationInput(
        kind=kind,
        documents=documents,
        trade={"en": category.name_en, "zh-hans": category.name} if category else None,
        required_permits=tuple(category.required_permits or ()) if category else (),
        **values,
    )


def _may_file(user: Any, customer_id: int, applicant_customer_id: int | None) -> None:
    """Staff with the permission file for any customer; an applicant only for themself."""
    if user is None:
        if applicant_customer_id != customer_id:
            raise PermissionDenied("this link does not belong to that customer")
        return
    require_permission(user, APPLY_FOR_CERTIFICATION)


def _for_applicant(
    model: Any, pk: int, what: str, user: Any, applicant_customer_id: int | None
) -> Any:
    """An application or a change request, locked, for staff who may file them or for the
    applicant it belongs to."""
    row = locked(model, pk, what)
    if user is None:
        if row.customer_id != applicant_customer_id:
            # The same answer as a missing one: an applicant learns nothing of others.
            raise NotFound(f"{what} {pk} not found")
    else:
        require_permission(user, APPLY_FOR_CERTIFICATION)
    return row


def _application_for(
    user: Any, application_id: int, applicant_customer_id: int | None
) -> Application:
    return _for_applicant(Application, application_id, "application", user, applicant_customer_id)


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
    document = _document_store(
        Document(application=application),
        application.documents,
        owner=f"application {application_id}",
        user=user,
        kind=kind,
        filename=filename,
        content=content,
    )
    name = document.filename
    _event(
        application,
        user=user,
        action="upload",
        before=application.status,
        note=f"{kind}: {name}",
        at=timezone.now(),
    )
    return document


def _document_store(
    document: Document,
    held: Any,
    *,
    owner: str,
    user: Any,
    kind: str,
    filename: str,
    content: bytes,
) -> Document:
    """Check a file (type sniffed from its bytes, size) and save it encrypted on ``document``,
    an unsaved row that names its owner (an application or a change request, whose documents
    so far are ``held``: at most ``MAX_DOCUMENTS``)."""
    if held.count() >= MAX_DOCUMENTS:
        raise Conflict(f"{owner} already has {MAX_DOCUMENTS} documents")
    name, content_type = document_validate(filename=filename, content=content, kind=kind)
    digest = hashlib.sha256(content).hexdigest()
    document.kind = kind
    document.filename = name
    document.content_type = content_type
    document.size = len(content)
    document.sha256 = digest
    document.content = crypto.encrypt_bytes(content, context=_document_context(digest))
    document.uploaded_by = user if user else None
    document.save()
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
    entered = _entered(application.level.applicant_kind, data, kinds)
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
        profile["business_category"] = data.business_category
    return profile


def _grant(
    application: Application, *, level: CertificationLevel, user: Any, now: datetime
) -> Certification:
    profile = _profile(application)
    for attempt in (1, 2):
        for current in Certification.objects.select_for_update().filter(
            customer=application.customer, status=Certification.Status.ACTIVE
        ):
            current.status = transition(rules.certification_next, current.status, "supersede")
            current.ended_at = now
            current.end_reason = f"superseded by application {application.pk}"
            current.save(update_fields=["status", "ended_at", "end_reason"])
            _withdraw_pending_changes(
                current, why=f"certification {current.pk} was superseded", now=now, user=user
            )
        try:
            with transaction.atomic():
                certification = Certification.objects.create(
                    customer=application.customer,
                    level=level,
                    application=application,
                    profile=json.dumps(profile, ensure_ascii=False, default=str),
                    granted_by=user,
                    granted_at=now,
                    expires_at=now + timedelta(days=level.validity_days),
                )
            break
        except IntegrityError as exc:
            # The re-verification job granted a fallback after this transaction's first look
            # (it committed while we waited for its lock): supersede that one too, once.
            if attempt == 2:
                raise Conflict(
                    f"customer {application.customer_id}'s certification changed meanwhile: "
                    "try again"
                ) from exc
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
    if certification.status == Certification.Status.DOWNGRADED:
        # The re-verification job got there first: say where the customer's level is now.
        replacement = Certification.objects.filter(replaces=certification).first()
        raise Conflict(
            f"certification {certification_id} expired and was downgraded to certification "
            f"{replacement.pk if replacement else '?'} "
            f"({replacement.level.code if replacement else 'unknown level'}): "
            "revoke that one if the customer must lose it"
        )
    now = timezone.now()
    certification.status = transition(rules.certification_next, certification.status, "revoke")
    certification.ended_at = now
    certification.end_reason = reason
    certification.save(update_fields=["status", "ended_at", "end_reason"])
    _withdraw_pending_changes(
        certification, why=f"certification {certification.pk} was revoked", now=now, user=user
    )
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
    downgraded: int = 0


def _original_decision(certification: Certification) -> datetime:
    """When the reviewer decided: the grant at the head of a chain of downgrades."""
    current = certification
    seen = {current.pk}
    while current.replaces_id is not None and current.replaces_id not in seen:
        seen.add(current.replaces_id)
        current = Certification.objects.only("id", "replaces_id", "granted_at").get(
            pk=current.replaces_id
        )
    return current.granted_at


def _expiry_outcome(certification: Certification, *, now: datetime) -> rules.ExpiryOutcome:
    """What becomes of an expired certification: the checks approval runs, for the level's
    fallback, on the certified facts, the documents on file and the customer as they are now."""
    level = certification.level
    fallback = (
        CertificationLevel.objects.filter(pk=level.fallback_id).first()
        if level.fallback_id
        else None
    )
    profile = certification_profile(certification)
    kind = str(profile.get("kind") or level.applicant_kind)
    # the documents of the application, and those of the changes approved since
    on_file = Q(
        change_request__certification__customer_id=certification.customer_id,
        change_request__status=ChangeRequest.Status.APPROVED,
        change_request__decided_at__gte=_original_decision(certification),
    )
    if certification.application_id is not None:
        on_file |= Q(application_id=certification.application_id)
    documents = frozenset(Document.objects.filter(on_file).values_list("kind", flat=True))
    certified: dict[str, Any] = {
        name: str(profile.get(name) or "") for name in rules.PROFILE_FIELDS[kind]
    }
    entered = _entered(
        kind,
        ApplicationData(
            qualifications=tuple(profile.get("qualifications") or ()),
            business_category=str(profile.get("business_category") or ""),
            **certified,
        ),
        documents,
    )
    facts = customer_facts(
        certification.customer,
        hashes={
            "id_number": _hash(entered.id_number, "id_number"),
            "credit_code": _hash(entered.credit_code, "credit_code"),
        },
        now=now,
    )
    return rules.expiry_outcome(
        level=level_criteria(level),
        fallback=level_criteria(fallback) if fallback is not None else None,
        entered=entered,
        facts=facts,
        decided_at=timezone.localtime(_original_decision(certification)),
        now=timezone.localtime(now),
    )


def _outcome_text(outcome: rules.ExpiryOutcome) -> str:
    return " ".join([_english(outcome.reason), *(_english(f["reason"]) for f in outcome.failed)])


def _withdraw_pending_changes(
    certification: Certification, *, why: str, now: datetime, user: Any = None
) -> None:
    """Change requests waiting on a certification that ends have nothing left to change
    (``user``: who ended it; None: the re-verification job)."""
    waiting = ChangeRequest.objects.select_for_update().filter(
        certification=certification, status=ChangeRequest.Status.PENDING
    )
    for request in waiting:
        request.status = transition(rules.change_next, request.status, "withdraw")
        request.decided_at = now
        request.decision_reason = why
        request.save(update_fields=["status", "decided_at", "decision_reason"])
        _audit(
            user,
            entity="change_request",
            pk=request.pk,
            customer_id=request.customer_id,
            summary=f"change of {', '.join(request.fields)} withdrawn: {why}",
            system=REVERIFICATION_JOB,
        )


def _expire(certification: Certification, outcome: rules.ExpiryOutcome, *, now: datetime) -> None:
    certification.status = transition(rules.certification_next, certification.status, "expire")
    certification.ended_at = now
    certification.end_reason = f"expired: not re-verified in time. {_outcome_text(outcome)}"
    certification.save(update_fields=["status", "ended_at", "end_reason"])
    _withdraw_pending_changes(
        certification, why=f"certification {certification.pk} expired", now=now
    )
    _audit(
        None,
        entity="certification",
        pk=certification.pk,
        customer_id=certification.customer_id,
        summary=f"certification {certification.level.code} expired",
        reason=_outcome_text(outcome),
        system=REVERIFICATION_JOB,
    )
    _tell(
        certification.customer_id,
        "certification.expired",
        key=f"certification.expired:{certification.pk}",
        source=f"certification.certification:{certification.pk}",
        level=_level_name(certification.level),
    )


def _downgrade(
    certification: Certification, outcome: rules.ExpiryOutcome, *, now: datetime
) -> Certification:
    """End the expired certification and grant its fallback level in one that replaces it:
    the same application and verified facts, valid until the original decision plus the
    fallback's validity. Waiting change requests move to it."""
    fallback = CertificationLevel.objects.get(code=outcome.fallback)
    assert outcome.expires_at is not None  # a downgrade always has its end
    reason = _outcome_text(outcome)
    certification.status = transition(rules.certification_next, certification.status, "downgrade")
    certification.ended_at = now
    certification.end_reason = f"downgraded to {fallback.code}: {reason}"
    certification.save(update_fields=["status", "ended_at", "end_reason"])
    replacement = Certification.objects.create(
        customer_id=certification.customer_id,
        level=fallback,
        application_id=certification.application_id,
        profile=certification.profile,
        granted_by=None,
        granted_at=now,
        expires_at=outcome.expires_at,
        replaces=certification,
    )
    ChangeRequest.objects.filter(
        certification=certification, status=ChangeRequest.Status.PENDING
    ).update(certification=replacement)
    until = timezone.localdate(replacement.expires_at).isoformat()
    _audit(
        None,
        entity="certification",
        pk=certification.pk,
        customer_id=certification.customer_id,
        summary=(
            f"certification {certification.level.code} expired: downgraded to {fallback.code} "
            f"(certification {replacement.pk}) until {until}"
        ),
        reason=reason,
        system=REVERIFICATION_JOB,
    )
    _audit(
        None,
        entity="certification",
        pk=replacement.pk,
        customer_id=certification.customer_id,
        summary=(
            f"level {fallback.code} granted until {until}: fallback of expired certification "
            f"{certification.pk} ({certification.level.code})"
        ),
        reason=reason,
        system=REVERIFICATION_JOB,
    )
    _tell(
        certification.customer_id,
        "certification.downgraded",
        key=f"certification.downgraded:{certification.pk}",
        source=f"certification.certification:{certification.pk}",
        level=_level_name(certification.level),
        new_level=_level_name(fallback),
        expires_on=until,
        link=_applicant_link(certification.customer_id),
    )
    return replacement


@transaction.atomic
def certifications_reverify(*, now: datetime | None = None) -> ExpiryResult:
    """The re-verification job (R-H3): remind customers ahead of expiry, once; at expiry,
    downgrade to the level's fallback when the customer still meets it and its validity from
    the original decision has not run out (``rules.expiry_outcome``), else end the
    certification (the customer applies again).

    Safe to run twice and beside staff: the active certifications are locked, so a revocation
    waits for the job (and then finds the certification ended), and a certification the job
    reaches after a revocation is no longer active."""
    now = now or timezone.now()
    reminded = expired = downgraded = 0
    live = (
        Certification.objects.select_for_update(of=("self",))
        .select_related("level", "customer")
        .filter(status=Certification.Status.ACTIVE)
        .filter(
            Q(expires_at__lte=now)
            | Q(reminded_at__isnull=True, expires_at__lte=now + timedelta(days=400))
        )
        .order_by("expires_at", "id")
    )
    for certification in live:
        stage = rules.expiry_stage(
            expires_at=certification.expires_at,
            now=now,
            remind_days=certification.level.remind_days,
            reminded=certification.reminded_at is not None,
        )
        if stage == "remind":
            certification.reminded_at = now
            certification.save(update_fields=["reminded_at"])
            _tell(
                certification.customer_id,
                "certification.expiring",
                key=f"certification.expiring:{certification.pk}",
                source=f"certification.certification:{certification.pk}",
                level=_level_name(certification.level),
                expires_on=timezone.localdate(certification.expires_at).isoformat(),
                link=_applicant_link(certification.customer_id),
            )
            reminded += 1
        elif stage == "expire":
            outcome = _expiry_outcome(certification, now=now)
            if outcome.is_downgrade:
                _downgrade(certification, outcome, now=now)
                downgraded += 1
            else:
                _expire(certification, outcome, now=now)
                expired += 1
    return ExpiryResult(reminded=reminded, expired=expired, downgraded=downgraded)


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
            system=IMPORT_CHECK,
        )
        filed += 1
    return filed


def _change_for(user: Any, request_id: int, applicant_customer_id: int | None) -> ChangeRequest:
    return _for_applicant(ChangeRequest, request_id, "change request", user, applicant_customer_id)


@transaction.atomic
def change_document_add(
    *,
    user: Any,
    request_id: int,
    kind: str,
    filename: str,
    content: bytes,
    applicant_customer_id: int | None = None,
) -> Document:
    """Attach the evidence of a change (the reissued licence, the new ID card) while it waits
    for review: checked and stored like an application's documents."""
    request = _change_for(user, request_id, applicant_customer_id)
    if request.status != ChangeRequest.Status.PENDING:
        raise Conflict(
            f"change request {request_id} is {request.status}: documents can be added only "
            "while it waits for review"
        )
    document = _document_store(
        Document(change_request=request),
        request.documents,
        owner=f"change request {request_id}",
        user=user,
        kind=kind,
        filename=filename,
        content=content,
    )
    _audit(
        user,
        entity="change_request",
        pk=request.pk,
        customer_id=request.customer_id,
        summary=f"{kind} document {document.filename} added to the change request",
    )
    return document


def change_missing_documents(
    request: ChangeRequest, supplied: Iterable[str] | None = None
) -> list[dict[str, Any]]:
    """The documents the change still needs (``rules.CHANGE_DOCUMENTS``), as stored checks.
    A change an import found needs none: the shop's system is its evidence, and the reviewer
    accepts it or puts the certified value back. ``supplied``: the kinds of the request's
    documents when the caller has them (a list reads them once for every request)."""
    if request.source == "import":
        return []
    if supplied is None:
        supplied = request.documents.values_list("kind", flat=True)
    return [c.to_json() for c in rules.change_document_checks(request.fields, supplied)]


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
    missing = change_missing_documents(request)
    if missing:
        raise Conflict(
            f"change request {request_id}: "
            + "; ".join(_english(f["reason"]) for f in missing)
            + " — ask the applicant for it, or reject the change"
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


@transaction.atomic
def change_request_withdraw(
    *, user: Any, request_id: int, reason: str, applicant_customer_id: int | None = None
) -> ChangeRequest:
    """Take back a change still waiting for review (a mistyped value, a change no longer
    wanted), so that a corrected one can be filed: staff who may file changes, or the applicant
    through their link for their own. Nothing of the certified profile changes."""
    request = _change_for(user, request_id, applicant_customer_id)
    reason = reason_text(reason, f"change request {request_id}")
    request.status = transition(rules.change_next, request.status, "withdraw")
    request.decided_at = timezone.now()
    request.decision_reason = reason
    request.save(update_fields=["status", "decided_at", "decision_reason"])
    _audit(
        user,
        entity="change_request",
        pk=request.pk,
        customer_id=request.customer_id,
        summary=f"change of {', '.join(request.fields)} withdrawn",
        reason=reason,
    )
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
