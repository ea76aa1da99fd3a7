"""Reads of certification: the review queue, one application as a reviewer sees it, what an
applicant sees of their own, a customer's level, documents (permission-checked and audited),
change requests, and the process figures that keep certification short (R-H4)."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, F, Prefetch, Q
from django.utils import timezone, translation

from patron.account.roles import (
    REVIEW_CERTIFICATION,
    VIEW_CERTIFICATION,
    VIEW_CERTIFICATION_DOCUMENTS,
)
from patron.account.services import may_see_pii, require_permission
from patron.audit.services import AuditEntry, audit_record
from patron.certification import rules, services
from patron.certification.models import (
    Application,
    ApplicationEvent,
    BusinessCategory,
    Certification,
    CertificationLevel,
    ChangeRequest,
    Document,
)
from patron.errors import NotFound, ValidationFailed
from patron.intelligence.explain import render
from patron.privacy.crypto import mask

STATUSES = tuple(Application.Status.values)
QUEUE_DEFAULT = ("pending", "in_review")


def reason_text(reason: Any) -> str:
    language = translation.get_language() or "en"
    return render(reason, language=language, translate=translation.gettext)


@dataclass(frozen=True)
class CheckView:
    code: str
    passed: bool
    hard: bool
    field: str
    text: str


def checks_view(checks: Sequence[Mapping[str, Any]]) -> list[CheckView]:
    """Failed hard checks first, then failed soft ones, then what passed."""
    views = [
        CheckView(
            code=str(c["code"]),
            passed=bool(c["passed"]),
            hard=bool(c["hard"]),
            field=str(c.get("field", "")),
            text=reason_text(c["reason"]),
        )
        for c in checks
    ]
    return sorted(views, key=lambda v: (v.passed, not v.hard))


@dataclass(frozen=True)
class LevelView:
    code: str
    name: str
    name_en: str
    applicant_kind: str
    rank: int
    min_credit_score: int | None
    min_paid_orders: int
    min_spend_12m: str
    min_tenure_days: int
    requires_no_restrictions: bool
    required_documents: list[str]
    validity_days: int
    remind_days: int
    fallback: str | None  # the code of the level kept at expiry if the customer still meets it
    is_active: bool


def _level_view(level: CertificationLevel, codes: Mapping[int, str] | None = None) -> LevelView:
    return LevelView(
        code=level.code,
        name=level.name,
        name_en=level.name_en,
        applicant_kind=level.applicant_kind,
        rank=level.rank,
        min_credit_score=level.min_credit_score,
        min_paid_orders=level.min_paid_orders,
        min_spend_12m=f"{level.min_spend_12m:.2f}",
        min_tenure_days=level.min_tenure_days,
        requires_no_restrictions=level.requires_no_restrictions,
        required_documents=list(level.required_documents or []),
        validity_days=level.validity_days,
        remind_days=level.remind_days,
        fallback=_fallback_code(level, codes),
        is_active=level.is_active,
    )


def _fallback_code(level: CertificationLevel, codes: Mapping[int, str] | None) -> str | None:
    if level.fallback_id is None:
        return None
    if codes is not None and level.fallback_id in codes:
        return codes[level.fallback_id]
    return str(
        CertificationLevel.objects.filter(pk=level.fallback_id)
        .values_list("code", flat=True)
        .first()
    )


def level_list(*, active_only: bool = False) -> list[LevelView]:
    """The levels (public: the applicant's page lists them too)."""
    codes = dict(CertificationLevel.objects.values_list("pk", "code"))
    qs = CertificationLevel.objects.all()
    if active_only:
        qs = qs.filter(is_active=True)
    return [_level_view(level, codes) for level in qs.order_by("applicant_kind", "rank")]


@dataclass(frozen=True)
class CategoryView:
    """A trade and the permits a business selling in it must list."""

    code: str
    name: str
    name_en: str
    required_permits: list[str]
    is_active: bool


def _category_view(category: BusinessCategory) -> CategoryView:
    return CategoryView(
        code=category.code,
        name=category.name,
        name_en=category.name_en,
        required_permits=list(category.required_permits or []),
        is_active=category.is_active,
    )


def category_list(*, active_only: bool = False) -> list[CategoryView]:
    """The trades (public: the applicant's form offers them), general merchandise first."""
    qs = BusinessCategory.objects.all()
    if active_only:
        qs = qs.filter(is_active=True)
    return sorted(
        (_category_view(category) for category in qs),
        key=lambda c: (c.code != "general", c.code),
    )


# ---------------------------------------------------------------------- the queue


@dataclass(frozen=True)
class QueueRow:
    id: int
    customer_id: int
    customer_name: str
    level_code: str
    level_name: str
    level_name_en: str
    status: str
    status_label: str
    channel: str
    submitted_at: datetime | None
    waiting_hours: float | None
    hard_failures: int
    soft_failures: int
    round_trips: int
    reviewer: str
    is_ready: bool  # every check passed: one review step should decide it


def _failures(checks: Sequence[Mapping[str, Any]]) -> tuple[int, int]:
    hard = sum(1 for c in checks if c.get("hard") and not c.get("passed"))
    soft = sum(1 for c in checks if not c.get("hard") and not c.get("passed"))
    return hard, soft


def application_queue(
    *,
    user: Any,
    statuses: Sequence[str] = QUEUE_DEFAULT,
    level: str = "",
    customer_id: int | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[int, list[QueueRow]]:
    """Applications, the longest-waiting first."""
    require_permission(user, VIEW_CERTIFICATION)
    unknown = set(statuses) - set(STATUSES)
    if unknown:
        raise ValidationFailed(
            f"status: one of {', '.join(STATUSES)}; got {', '.join(sorted(unknown))}"
        )
    qs = Application.objects.select_related("customer", "level", "reviewer").filter(
        status__in=list(statuses)
    )
    if level:
        qs = qs.filter(level__code=level)
    if customer_id is not None:
        qs = qs.filter(customer_id=customer_id)
    qs = qs.order_by(F("submitted_at").asc(nulls_last=True), "id")
    total = qs.count()
    now = timezone.now()
    rows = []
    for a in qs[offset : offset + limit]:
        hard, soft = _failures(a.prechecks or [])
        waiting = (
            (now - a.submitted_at).total_seconds() / 3600
            if a.submitted_at and a.status in rules.AWAITING_REVIEW
            else None
        )
        rows.append(
            QueueRow(
                id=a.pk,
                customer_id=a.customer_id,
                customer_name=a.customer.name,
                level_code=a.level.code,
                level_name=a.level.name,
                level_name_en=a.level.name_en,
                status=a.status,
                status_label=str(a.get_status_display()),
                channel=a.channel,
                submitted_at=a.submitted_at,
                waiting_hours=round(waiting, 1) if waiting is not None else None,
                hard_failures=hard,
                soft_failures=soft,
                round_trips=a.round_trips,
                reviewer=a.reviewer.get_username() if a.reviewer else "",
                is_ready=bool(a.prechecks) and hard == 0 and soft == 0,
            )
        )
    return total, rows


# ---------------------------------------------------------------------- one application


@dataclass(frozen=True)
class DocumentView:
    id: int
    kind: str
    kind_label: str
    filename: str
    content_type: str
    size: int
    uploaded_at: datetime


@dataclass(frozen=True)
class EventView:
    at: datetime
    actor: str
    action: str
    from_status: str
    to_status: str
    note: str


@dataclass(frozen=True)
class ApplicationView:
    id: int
    customer_id: int
    customer_name: str
    level: LevelView
    granted_level: str
    status: str
    status_label: str
    channel: str
    fields: dict[str, str]  # masked unless the reader may see them
    birth_date: str
    id_region: str
    qualifications: list[dict[str, Any]]
    business_category: CategoryView | None  # the trade a business named
    checks: list[CheckView]
    prechecked_at: datetime | None
    info_requested: str
    round_trips: int
    created_by: str
    created_at: datetime
    submitted_at: datetime | None
    reviewer: str
    decided_by: str
    decided_at: datetime | None
    decision_reason: str
    documents: list[DocumentView]
    events: list[EventView]
    may_review: bool  # holds the permission
    filed_by_me: bool
    may_take: bool  # may take it for review now
    may_release: bool
    may_decide: bool  # may approve, reject or ask for information now (four eyes, claims)
    may_open_documents: bool
    alternative_levels: list[LevelView]


_MASK_KIND = {
    "id_number": "id_number",
    "legal_rep_id_number": "id_number",
    "phone": "phone",
    "credit_code": "id_number",
}


def _fields(application: Application, *, full: bool) -> dict[str, str]:
    out = {}
    for name in rules.PROFILE_FIELDS[application.level.applicant_kind]:
        value = str(getattr(application, name) or "")
        if not full and name in _MASK_KIND:
            value = mask(value, kind=_MASK_KIND[name])
        elif not full and name in {"real_name", "legal_rep_name"} and value:
            value = value[:1] + "*" * (len(value) - 1)
        out[name] = value
    return out


def _documents(documents: Any) -> list[DocumentView]:
    """The documents as shown (read without their content)."""
    return [
        DocumentView(
            id=d.pk,
            kind=d.kind,
            kind_label=str(d.get_kind_display()),
            filename=d.filename,
            content_type=d.content_type,
            size=d.size,
            uploaded_at=d.uploaded_at,
        )
        for d in documents
    ]


def _events(application: Application) -> list[EventView]:
    return [
        EventView(
            at=e.at,
            actor=e.actor_label,
            action=e.action,
            from_status=e.from_status,
            to_status=e.to_status,
            note=e.note,
        )
        for e in ApplicationEvent.objects.filter(application=application).order_by("at", "id")
    ]


def _get(application_id: int) -> Application:
    application = (
        Application.objects.select_related(
            "customer",
            "level",
            "granted_level",
            "reviewer",
            "decided_by",
            "created_by",
            "business_category",
        )
        .filter(pk=application_id)
        .first()
    )
    if application is None:
        raise NotFound(f"application {application_id} not found")
    return application


def application_detail(*, user: Any, application_id: int) -> ApplicationView:
    """One application as staff see it: reviewers see the stated numbers in full (they compare
    them with the documents); other staff see them masked unless they may see personal data."""
    require_permission(user, VIEW_CERTIFICATION)
    a = _get(application_id)
    may_review = user.has_perm(REVIEW_CERTIFICATION)
    filed_by_me = a.created_by_id is not None and a.created_by_id == user.pk
    free = a.reviewer_id in (None, user.pk)
    waiting = a.status in rules.AWAITING_REVIEW
    alternatives = [
        lv
        for lv in level_list(active_only=True)
        if lv.applicant_kind == a.level.applicant_kind and lv.code != a.level.code
    ]
    return ApplicationView(
        id=a.pk,
        customer_id=a.customer_id,
        customer_name=a.customer.name,
        level=_level_view(a.level),
        granted_level=a.granted_level.code if a.granted_level else "",
        status=a.status,
        status_label=str(a.get_status_display()),
        channel=a.channel,
        fields=_fields(a, full=may_review or may_see_pii(user)),
        birth_date=a.birth_date.isoformat() if a.birth_date else "",
        id_region=a.id_region,
        qualifications=list(a.qualifications or []),
        business_category=(
            _category_view(a.business_category) if a.business_category is not None else None
        ),
        checks=checks_view(a.prechecks or []),
        prechecked_at=a.prechecked_at,
        info_requested=a.info_requested,
        round_trips=a.round_trips,
        created_by=a.created_by.get_username() if a.created_by else "",
        created_at=a.created_at,
        submitted_at=a.submitted_at,
        reviewer=a.reviewer.get_username() if a.reviewer else "",
        decided_by=a.decided_by.get_username() if a.decided_by else "",
        decided_at=a.decided_at,
        decision_reason=a.decision_reason,
        documents=_documents(a.documents.defer("content")),
        events=_events(a),
        may_review=may_review,
        filed_by_me=filed_by_me,
        may_take=may_review and a.status == "pending" and not filed_by_me,
        may_release=may_review and a.status == "in_review" and free,
        may_decide=may_review and waiting and free and not filed_by_me,
        may_open_documents=user.has_perm(VIEW_CERTIFICATION_DOCUMENTS),
        alternative_levels=alternatives,
    )


@dataclass(frozen=True)
class DocumentContent:
    filename: str
    content_type: str
    content: bytes


def document_read(
    *, user: Any, document_id: int, applicant_customer_id: int | None = None
) -> DocumentContent:
    """A document's bytes: to reviewers with the permission, or to the applicant it belongs
    to. Every staff read is audited (who opened which identity document, when)."""
    document = (
        Document.objects.select_related("application", "change_request")
        .filter(pk=document_id)
        .first()
    )
    owner = None
    if document is not None:
        parent = document.application or document.change_request
        owner = parent.customer_id if parent is not None else None
    if user is None:
        if document is None or owner != applicant_customer_id:
            raise NotFound(f"document {document_id} not found")
    else:
        require_permission(user, VIEW_CERTIFICATION_DOCUMENTS)
        if document is None:
            raise NotFound(f"document {document_id} not found")
        audit_record(
            AuditEntry(
                action="access",
                entity_type="certification.document",
                entity_id=str(document.pk),
                customer_id=owner,
                summary=f"opened {document.kind} document {document.filename}",
            ),
            actor=user,
        )
    return DocumentContent(
        filename=document.filename,
        content_type=document.content_type,
        content=services.document_content(document),
    )


# ---------------------------------------------------------------------- the applicant


@dataclass(frozen=True)
class ApplicantApplication:
    id: int
    level_name: str
    level_name_en: str
    level_code: str
    status: str
    status_label: str
    info_requested: str
    failed_checks: list[CheckView]
    documents: list[DocumentView]
    events: list[EventView]
    fields: dict[str, str]
    birth_date: str
    id_region: str
    qualifications: list[dict[str, Any]]
    business_category: str  # the trade's code; empty: none named
    decision_reason: str
    is_editable: bool


@dataclass(frozen=True)
class LevelName:
    code: str
    name: str
    name_en: str


@dataclass(frozen=True)
class CertificationView:
    id: int
    level_code: str
    level_name: str
    level_name_en: str
    rank: int
    status: str
    granted_at: datetime
    expires_at: datetime
    fields: list[str]
    downgraded_from: LevelName | None = None  # the level that expired, when this is its fallback


@dataclass(frozen=True)
class PendingChange:
    """The applicant's change request waiting for review (at most one)."""

    id: int
    fields: list[str]
    requested_at: datetime
    missing: list[CheckView]  # the evidence it still needs


@dataclass(frozen=True)
class ApplicantView:
    customer_id: int
    customer_name: str
    applications: list[ApplicantApplication]
    certification: CertificationView | None
    levels: list[LevelView]
    has_live_application: bool
    pending_change: PendingChange | None = None


def applicant_view(*, customer_id: int) -> ApplicantView:
    """What the applicant sees through their link: their own applications only. They see what
    they entered in full (it is theirs), the faults found, and what the shop asked for."""
    from patron.customer.models import Customer

    customer = Customer.objects.filter(pk=customer_id).first()
    if customer is None:
        raise NotFound("this link names no customer")
    apps = []
    qs = Application.objects.select_related("level", "business_category").filter(
        customer_id=customer_id
    )
    for a in qs.order_by("-id")[:10]:
        apps.append(
            ApplicantApplication(
                id=a.pk,
                level_name=a.level.name,
                level_name_en=a.level.name_en,
                level_code=a.level.code,
                status=a.status,
                status_label=str(a.get_status_display()),
                info_requested=a.info_requested,
                failed_checks=[
                    c for c in checks_view(a.prechecks or []) if c.hard and not c.passed
                ],
                documents=_documents(a.documents.defer("content")),
                events=_events(a),
                fields=_fields(a, full=True),
                birth_date=a.birth_date.isoformat() if a.birth_date else "",
                id_region=a.id_region,
                qualifications=list(a.qualifications or []),
                business_category=a.business_category.code if a.business_category else "",
                decision_reason=a.decision_reason if a.status == "rejected" else "",
                is_editable=a.status in rules.EDITABLE_APPLICATION,
            )
        )
    return ApplicantView(
        customer_id=customer.pk,
        customer_name=customer.name,
        applications=apps,
        certification=certification_of(customer_id),
        levels=level_list(active_only=True),
        has_live_application=any(a.status in rules.LIVE_APPLICATION for a in apps),
        pending_change=_pending_change(customer_id),
    )


def _pending_change(customer_id: int) -> PendingChange | None:
    change = ChangeRequest.objects.filter(
        customer_id=customer_id, status=ChangeRequest.Status.PENDING
    ).first()
    if change is None:
        return None
    return PendingChange(
        id=change.pk,
        fields=list(change.fields),
        requested_at=change.requested_at,
        missing=checks_view(services.change_missing_documents(change)),
    )


def certification_of(customer_id: int) -> CertificationView | None:
    """The customer's active certification, if any (customer page, checkout policy)."""
    c = (
        Certification.objects.select_related("level", "replaces__level")
        .filter(customer_id=customer_id, status=Certification.Status.ACTIVE)
        .first()
    )
    if c is None:
        return None
    before = c.replaces.level if c.replaces is not None else None
    return CertificationView(
        id=c.pk,
        level_code=c.level.code,
        level_name=c.level.name,
        level_name_en=c.level.name_en,
        rank=c.level.rank,
        status=c.status,
        granted_at=c.granted_at,
        expires_at=c.expires_at,
        fields=[k for k in services.certification_profile(c) if k != "kind"],
        downgraded_from=LevelName(before.code, before.name, before.name_en) if before else None,
    )


def customer_certification(*, user: Any, customer_id: int) -> CertificationView | None:
    from patron.customer.models import Customer

    require_permission(user, VIEW_CERTIFICATION)
    if not Customer.objects.filter(pk=customer_id).exists():
        raise NotFound(f"customer {customer_id} not found")
    return certification_of(customer_id)


# ---------------------------------------------------------------------- change requests


@dataclass(frozen=True)
class ChangeView:
    id: int
    customer_id: int
    customer_name: str
    level_name: str
    fields: list[str]
    changes: dict[str, dict[str, str]]  # masked unless the reader may review
    reason: str
    source: str
    checks: list[CheckView]
    status: str
    status_label: str
    requested_by: str
    requested_at: datetime
    decided_by: str
    decided_at: datetime | None
    decision_reason: str
    documents: list[DocumentView]


def _change_view(r: ChangeRequest, *, full: bool) -> ChangeView:
    documents = list(r.documents.all())  # prefetched without their content (_CHANGES)
    changes = services.change_request_values(r)
    if not full:
        changes = {
            name: {
                k: mask(v, kind=_MASK_KIND[name]) if name in _MASK_KIND else v
                for k, v in change.items()
            }
            for name, change in changes.items()
        }
    return ChangeView(
        id=r.pk,
        customer_id=r.customer_id,
        customer_name=r.customer.name,
        level_name=r.certification.level.name,
        fields=list(r.fields),
        changes=changes,
        reason=r.reason,
        source=r.source,
        # the values' checks, then the documents it still needs (while it waits)
        checks=checks_view(
            [
                *(r.prechecks or []),
                *(
                    services.change_missing_documents(r, [d.kind for d in documents])
                    if r.status == "pending"
                    else []
                ),
            ]
        ),
        status=r.status,
        status_label=str(r.get_status_display()),
        requested_by=r.requested_by.get_username() if r.requested_by else "applicant",
        requested_at=r.requested_at,
        decided_by=r.decided_by.get_username() if r.decided_by else "",
        decided_at=r.decided_at,
        decision_reason=r.decision_reason,
        documents=_documents(documents),
    )


def _changes() -> Any:
    """Change requests with what their view shows, their documents read once for all."""
    return ChangeRequest.objects.select_related(
        "customer", "certification__level", "requested_by", "decided_by"
    ).prefetch_related(Prefetch("documents", queryset=Document.objects.defer("content")))


def change_request_list(
    *, user: Any, status: str = "pending", customer_id: int | None = None, limit: int = 50
) -> list[ChangeView]:
    require_permission(user, VIEW_CERTIFICATION)
    if status and status not in ChangeRequest.Status.values:
        raise ValidationFailed(
            f"status: one of {', '.join(ChangeRequest.Status.values)}; got {status!r}"
        )
    qs = _changes()
    if status:
        qs = qs.filter(status=status)
    if customer_id is not None:
        qs = qs.filter(customer_id=customer_id)
    full = user.has_perm(REVIEW_CERTIFICATION) or may_see_pii(user)
    return [_change_view(r, full=full) for r in qs.order_by("requested_at", "id")[:limit]]


def change_request_detail(*, user: Any, request_id: int) -> ChangeView:
    require_permission(user, VIEW_CERTIFICATION)
    r = _changes().filter(pk=request_id).first()
    if r is None:
        raise NotFound(f"change request {request_id} not found")
    return _change_view(r, full=user.has_perm(REVIEW_CERTIFICATION) or may_see_pii(user))


# ---------------------------------------------------------------------- process figures


@dataclass(frozen=True)
class ProcessStats:
    """How short the process is (R-H4), over the decisions of the last ``days`` days."""

    days: int
    decided: int
    approved: int
    rejected: int
    median_hours_to_decision: float | None
    p90_hours_to_decision: float | None
    mean_round_trips: float | None
    one_step_share: float | None  # decided without going back to the applicant
    automatic_returns: int  # returned at once by a failed hard pre-check
    backlog: int  # waiting for a reviewer
    with_applicant: int  # waiting for the applicant
    oldest_waiting_hours: float | None
    ready_to_decide: int  # waiting, and every check passed
    active_certifications: int
    expiring_30d: int
    pending_changes: int


def _quantile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return round(ordered[index], 1)


def process_stats(*, user: Any, days: int = 90, now: datetime | None = None) -> ProcessStats:
    require_permission(user, VIEW_CERTIFICATION)
    if days < 1 or days > 3660:
        raise ValidationFailed(f"days must be between 1 and 3660, got {days}")
    now = now or timezone.now()
    since = now - timedelta(days=days)
    decided = list(
        Application.objects.filter(
            status__in=["approved", "rejected"], decided_at__gte=since, submitted_at__isnull=False
        ).values("status", "submitted_at", "decided_at", "round_trips")
    )
    hours = [
        (d["decided_at"] - d["submitted_at"]).total_seconds() / 3600
        for d in decided
        if d["decided_at"] is not None and d["submitted_at"] is not None
    ]
    trips = [d["round_trips"] for d in decided]
    returns = ApplicationEvent.objects.filter(action="return", at__gte=since).count()
    waiting = Application.objects.filter(status__in=list(rules.AWAITING_REVIEW))
    oldest = waiting.order_by("submitted_at").values_list("submitted_at", flat=True).first()
    ready = sum(
        1
        for checks in waiting.values_list("prechecks", flat=True)
        if checks and not any(not c.get("passed") for c in checks)
    )
    active = Certification.objects.filter(status=Certification.Status.ACTIVE).aggregate(
        n=Count("id"), soon=Count("id", filter=Q(expires_at__lte=now + timedelta(days=30)))
    )
    return ProcessStats(
        days=days,
        decided=len(decided),
        approved=sum(1 for d in decided if d["status"] == "approved"),
        rejected=sum(1 for d in decided if d["status"] == "rejected"),
        median_hours_to_decision=round(statistics.median(hours), 1) if hours else None,
        p90_hours_to_decision=_quantile(hours, 0.9),
        mean_round_trips=round(sum(trips) / len(trips), 2) if trips else None,
        one_step_share=round(sum(1 for t in trips if t == 0) / len(trips), 3) if trips else None,
        automatic_returns=returns,
        backlog=waiting.count(),
        with_applicant=Application.objects.filter(status="needs_info").count(),
        oldest_waiting_hours=round((now - oldest).total_seconds() / 3600, 1) if oldest else None,
        ready_to_decide=ready,
        active_certifications=active["n"],
        expiring_30d=active["soon"],
        pending_changes=ChangeRequest.objects.filter(status="pending").count(),
    )
