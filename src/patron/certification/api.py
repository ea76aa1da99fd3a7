"""REST endpoints of certification.

Under ``/api/certification``: the levels (read; edit their criteria), applications (the review
queue, one application, filing and correcting one, its documents, and each step of the
workflow), documents (the file itself, to those allowed to open it), change requests to a
certified profile, revoking a certification, and the process figures. Under
``/api/customers/{id}``: the customer's certification and the applicant's signed link.

Thin: each endpoint calls one selector (``patron.certification.selectors``) or one service
(``patron.certification.services``), which check permissions; 403 permission or separation of
duties, 404 unknown record, 409 a step the record's state does not allow, 422 invalid input.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.utils.http import content_disposition_header
from ninja import File, Form, Query, Router, Schema, UploadedFile
from pydantic import AfterValidator, Field, field_validator

from patron.apitext import MAX_ID, NO_NUL, SLUG, TEXT, DateText
from patron.certification import selectors, services, tokens
from patron.certification.models import Application, Certification, Document, DocumentKind
from patron.customer.api import ErrorOut
from patron.errors import NotFound
from patron.workflow import MAX_REASON

router = Router(tags=["certification"])
customer_router = Router(tags=["certification"])

ERRORS: dict[int, Any] = {403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut}
#: PostgreSQL text (and JSON) cannot hold NUL: free text says so in the schema.
#: A reason or statement: words, not only spaces, and no NUL (``\S`` alone would let a NUL
#: stand for the word).


def _words(value: str) -> str:
    # The services strip with Python's idea of a space, which the regex engine may not share.
    if not value.strip():
        raise ValueError("must not be blank")
    return value


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


#: A reason: words, at most ``MAX_REASON`` characters (the services strip it).
Reason = Annotated[
    str,
    Field(min_length=1, max_length=MAX_REASON, pattern=TEXT),
    AfterValidator(_no_nul),
    AfterValidator(_words),
]


def _free(max_length: int, description: str = "") -> Any:
    """A free-text field the applicant may leave empty ("not given")."""
    return Field("", max_length=max_length, pattern=NO_NUL, description=description)


class ApplicationStatus(StrEnum):
    """``patron.certification.models.Application.Status`` (a test keeps the two the same)."""

    DRAFT = "draft"
    PENDING = "pending"
    IN_REVIEW = "in_review"
    NEEDS_INFO = "needs_info"
    APPROVED = "approved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


class ChangeRequestStatus(StrEnum):
    """``patron.certification.models.ChangeRequest.Status``, and ``all``."""

    ALL = "all"
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


class CertifiedProfileField(StrEnum):
    """The fields of a certified profile (``rules.PROFILE_FIELDS``; a test keeps them the same):
    which belong to the customer's kind (individual or business) the service checks."""

    REAL_NAME = "real_name"
    ID_NUMBER = "id_number"
    PHONE = "phone"
    COMPANY_NAME = "company_name"
    CREDIT_CODE = "credit_code"
    LEGAL_REP_NAME = "legal_rep_name"
    LEGAL_REP_ID_NUMBER = "legal_rep_id_number"


# ---------------------------------------------------------------------- levels


class BusinessCategoryOut(Schema):
    code: str
    name: str = Field(description="Chinese name shown to applicants")
    name_en: str
    required_permits: list[str] = Field(description="Permits a shop in this trade must list")
    is_active: bool


class CertificationLevelOut(Schema):
    code: str
    name: str = Field(description="Chinese name shown to customers")
    name_en: str
    applicant_kind: str = Field(description="individual or business")
    rank: int = Field(description="Higher means more trust")
    min_credit_score: int | None
    min_paid_orders: int
    min_spend_12m: str = Field(description="Yuan, a decimal string")
    min_tenure_days: int
    requires_no_restrictions: bool
    required_documents: list[str]
    validity_days: int
    remind_days: int = Field(description="The customer is reminded this many days before expiry")
    fallback: str | None = Field(
        description="The code of the lower level the customer keeps at expiry if they still "
        "meet it and its validity, counted from the original decision, has not run out "
        "(null: the certification ends)"
    )
    is_active: bool


class CertificationLevelIn(Schema):
    """Only the fields given change (null or absent: unchanged, except ``min_credit_score``
    and ``fallback``, whose null removes the minimum or the fallback); the audit log keeps old
    and new values."""

    name: str | None = Field(None, min_length=1, max_length=80, pattern=TEXT)
    name_en: str | None = Field(None, min_length=1, max_length=80, pattern=TEXT)
    rank: int | None = Field(None, ge=0, le=32767)
    min_credit_score: int | None = Field(None, ge=350, le=950, description="null: no minimum")
    min_paid_orders: int | None = Field(None, ge=0, le=1_000_000)
    min_spend_12m: float | None = Field(None, ge=0, le=999_999_999_999, description="Yuan")
    min_tenure_days: int | None = Field(None, ge=0, le=36_500)
    requires_no_restrictions: bool | None = Field(None)
    required_documents: list[DocumentKind] | None = Field(None, max_length=len(DocumentKind.values))
    validity_days: int | None = Field(None, ge=1, le=3650)
    remind_days: int | None = Field(None, ge=0, le=365)
    fallback: str | None = Field(
        None,
        min_length=1,
        max_length=40,
        pattern=SLUG,
        description="A level of the same kind with a lower rank (null: none; no loops)",
    )
    is_active: bool | None = Field(None)

    @field_validator("name", "name_en")
    @classmethod
    def _refuse_blank(cls, value: str | None) -> str | None:
        return None if value is None else _words(_no_nul(value))

    def changes(self) -> dict[str, Any]:
        changes = {
            name: value
            for name, value in self.model_dump(exclude_unset=True).items()
            if value is not None or name in ("min_credit_score", "fallback")
        }
        if changes.get("min_spend_12m") is not None:
            changes["min_spend_12m"] = Decimal(str(changes["min_spend_12m"])).quantize(
                Decimal("0.01")
            )
        if changes.get("required_documents") is not None:
            changes["required_documents"] = list(
                dict.fromkeys(str(kind) for kind in changes["required_documents"])
            )
        return changes


class CertificationLevelNewIn(CertificationLevelIn):
    """A new level: its code and kind (fixed once created), its names and rank; any other
    criterion as for an edit (absent: the default — no minimum, 365 days' validity)."""

    code: str = Field(min_length=1, max_length=40, pattern=r"^[-a-z0-9_]+$")
    applicant_kind: Literal["individual", "business"]

    def changes(self) -> dict[str, Any]:
        changes = super().changes()
        changes.pop("code", None)
        changes.pop("applicant_kind", None)
        return changes


def _level_out(code: str) -> selectors.LevelView:
    return next(level for level in selectors.level_list() if level.code == code)


@router.get(
    "/levels", response={200: list[CertificationLevelOut], **ERRORS}, summary="Certification levels"
)
def list_levels(request: HttpRequest) -> list[selectors.LevelView]:
    return selectors.level_list()


@router.post(
    "/levels",
    response={201: CertificationLevelOut, **ERRORS},
    summary="Add a level (name, name_en and rank required; a fallback of the same kind with a "
    "lower rank; audited)",
)
def create_level(
    request: HttpRequest, body: CertificationLevelNewIn
) -> tuple[int, selectors.LevelView]:
    level = services.level_create(
        user=request.user,
        code=body.code,
        applicant_kind=body.applicant_kind,
        changes=body.changes(),
    )
    return 201, _level_out(level.code)


@router.patch(
    "/levels/{code}",
    response={200: CertificationLevelOut, **ERRORS},
    summary="Edit a level's criteria (takes effect for the next decision; audited)",
)
def update_level(
    request: HttpRequest, code: str, body: CertificationLevelIn
) -> selectors.LevelView:
    level = services.level_update(user=request.user, code=code, changes=body.changes())
    return _level_out(level.code)


@router.get(
    "/business-categories",
    response={200: list[BusinessCategoryOut], **ERRORS},
    summary="Trades a business applicant names, with the permits each needs",
)
def list_business_categories(request: HttpRequest) -> list[selectors.CategoryView]:
    return selectors.category_list()


# ---------------------------------------------------------------------- applications


class PrecheckOut(Schema):
    code: str
    passed: bool
    hard: bool = Field(description="Hard: about the application; failed, it goes back at once")
    field: str
    text: str = Field(description="In the request's language")


class CertificationDocumentOut(Schema):
    id: int
    kind: str
    kind_label: str
    filename: str
    content_type: str
    size: int
    uploaded_at: datetime


class ApplicationEventOut(Schema):
    at: datetime
    actor: str
    action: str
    from_status: str
    to_status: str
    note: str


class ApplicationOut(Schema):
    id: int
    customer_id: int
    customer_name: str
    level: CertificationLevelOut
    granted_level: str
    status: str
    status_label: str
    channel: str
    fields: dict[str, str] = Field(
        description="What the applicant stated; masked unless you review or may see personal data"
    )
    birth_date: str
    id_region: str
    qualifications: list[dict[str, Any]]
    business_category: BusinessCategoryOut | None = Field(description="The trade a business named")
    checks: list[PrecheckOut] = Field(description="Failed hard checks first, then failed soft ones")
    prechecked_at: datetime | None
    info_requested: str = Field(description="What the applicant must supply")
    round_trips: int
    created_by: str
    created_at: datetime
    submitted_at: datetime | None
    reviewer: str
    decided_by: str
    decided_at: datetime | None
    decision_reason: str
    documents: list[CertificationDocumentOut]
    events: list[ApplicationEventOut]
    may_review: bool
    may_open_documents: bool
    alternative_levels: list[CertificationLevelOut]


class ApplicationQueueRowOut(Schema):
    id: int
    customer_id: int
    customer_name: str
    level_code: str
    level_name: str
    status: str
    status_label: str
    channel: str
    submitted_at: datetime | None
    waiting_hours: float | None
    hard_failures: int
    soft_failures: int
    round_trips: int
    reviewer: str
    is_ready: bool = Field(description="Every check passed: one review step should decide it")


class ApplicationQueuePageOut(Schema):
    count: int
    items: list[ApplicationQueueRowOut]


class ApplicationQueueParams(Schema):
    status: list[ApplicationStatus] = Field(
        [ApplicationStatus.PENDING, ApplicationStatus.IN_REVIEW],
        max_length=len(ApplicationStatus),
        description="Any of the statuses (default: waiting for review)",
    )
    level: str = Field("", max_length=40, pattern=r"^[-a-zA-Z0-9_]*$", description="Level code")
    customer_id: int | None = Field(None, ge=1, le=MAX_ID)
    limit: int = Field(50, ge=1, le=200)
    offset: int = Field(0, ge=0, le=1_000_000)


class QualificationIn(Schema):
    name: str = Field(min_length=1, max_length=200, pattern=TEXT)
    number: str = Field(min_length=1, max_length=100, pattern=TEXT)
    valid_until: DateText | None = None

    @field_validator("name", "number")
    @classmethod
    def _refuse_blank(cls, value: str | None) -> str | None:
        return None if value is None else _words(_no_nul(value))


class ApplicantIn(Schema):
    """What the applicant states. Individuals: real_name, id_number, phone; businesses:
    company_name, credit_code, legal_rep_name, legal_rep_id_number, phone, qualifications.
    Whatever is missing or malformed, the pre-checks name when the application is submitted."""

    real_name: str = _free(100)
    id_number: str = _free(40, "Resident ID number (18 characters)")
    phone: str = _free(40)
    birth_date: DateText | None = Field(None, description="Checked against the ID number")
    id_region: str = _free(40, "Province of household registration, checked against the ID")
    company_name: str = _free(200)
    credit_code: str = _free(40, "Unified social credit code (18 characters)")
    legal_rep_name: str = _free(100)
    legal_rep_id_number: str = _free(40)
    qualifications: list[QualificationIn] = Field(default_factory=list, max_length=20)
    business_category: str = Field(
        "",
        max_length=40,
        pattern=r"^[-a-zA-Z0-9_]*$",
        description="Businesses: the trade's code (GET /business-categories); its permits must "
        "be listed under qualifications, with a copy uploaded. Empty: not stated",
    )

    @field_validator(
        "real_name",
        "id_number",
        "phone",
        "id_region",
        "company_name",
        "credit_code",
        "legal_rep_name",
        "legal_rep_id_number",
    )
    @classmethod
    def _refuse_nul(cls, value: str | None) -> str | None:
        # PostgreSQL text cannot hold NUL: refuse it here (422) rather than fail in the query.
        return None if value is None else _no_nul(value)

    def data(self) -> services.ApplicationData:
        values = self.model_dump(exclude={"customer_id", "level", "submit"})
        values["qualifications"] = tuple(values["qualifications"])
        return services.ApplicationData(**values)


class ApplicationIn(ApplicantIn):
    customer_id: int = Field(ge=1, le=MAX_ID)
    level: str = Field(min_length=1, max_length=40, pattern=SLUG, description="Level code")
    submit: bool = Field(
        False,
        description="Submit at once (for a level that needs no documents; otherwise upload "
        "them, then POST .../submit). Failed hard pre-checks send it back: needs_info",
    )


class ApplicationPatchIn(Schema):
    """Only the fields given change (null or absent: unchanged, except ``birth_date``, whose null
    removes it; an empty string means "not given"), while the application is a draft or needs
    information."""

    level: str | None = Field(None, min_length=1, max_length=40, pattern=SLUG)
    real_name: str | None = Field(None, max_length=100, pattern=NO_NUL)
    id_number: str | None = Field(None, max_length=40, pattern=NO_NUL)
    phone: str | None = Field(None, max_length=40, pattern=NO_NUL)
    birth_date: DateText | None = None
    id_region: str | None = Field(None, max_length=40, pattern=NO_NUL)
    company_name: str | None = Field(None, max_length=200, pattern=NO_NUL)
    credit_code: str | None = Field(None, max_length=40, pattern=NO_NUL)
    legal_rep_name: str | None = Field(None, max_length=100, pattern=NO_NUL)
    legal_rep_id_number: str | None = Field(None, max_length=40, pattern=NO_NUL)
    qualifications: list[QualificationIn] | None = Field(None, max_length=20)
    business_category: str | None = Field(None, max_length=40, pattern=r"^[-a-zA-Z0-9_]*$")

    @field_validator(
        "real_name",
        "id_number",
        "phone",
        "id_region",
        "company_name",
        "credit_code",
        "legal_rep_name",
        "legal_rep_id_number",
    )
    @classmethod
    def _refuse_nul(cls, value: str | None) -> str | None:
        # PostgreSQL text cannot hold NUL: refuse it here (422) rather than fail in the query.
        return None if value is None else _no_nul(value)

    def changes(self) -> dict[str, Any]:
        changes = {
            name: value
            for name, value in self.model_dump(exclude_unset=True, exclude={"level"}).items()
            if value is not None or name == "birth_date"
        }
        if "qualifications" in changes:
            changes["qualifications"] = tuple(changes["qualifications"])
        return changes


class ApplicationApproveIn(Schema):
    reason: Reason
    level: str | None = Field(
        None,
        min_length=1,
        max_length=40,
        pattern=SLUG,
        description="Grant another level of the same kind (default: the one applied for)",
    )


class CertificationReasonIn(Schema):
    reason: Reason


class ApplicationRequestInfoIn(Schema):
    missing: Reason = Field(description="What the applicant must supply (they are told)")


def _application(request: HttpRequest, application_id: int) -> selectors.ApplicationView:
    return selectors.application_detail(user=request.user, application_id=application_id)


@router.get(
    "/applications",
    response={200: ApplicationQueuePageOut, **ERRORS},
    summary="Applications, the longest-waiting first",
)
def list_applications(
    request: HttpRequest, params: Query[ApplicationQueueParams]
) -> dict[str, Any]:
    count, items = selectors.application_queue(
        user=request.user,
        statuses=[str(status) for status in params.status],
        level=params.level,
        customer_id=params.customer_id,
        limit=params.limit,
        offset=params.offset,
    )
    return {"count": count, "items": items}


@router.post(
    "/applications",
    response={201: ApplicationOut, **ERRORS},
    summary="File an application for a customer (a draft, unless submit is true)",
)
def create_application(
    request: HttpRequest, body: ApplicationIn
) -> tuple[int, selectors.ApplicationView]:
    # Filing and submitting at once is one request, so one transaction.
    with transaction.atomic():
        application = services.application_create(
            user=request.user,
            customer_id=body.customer_id,
            level_code=body.level,
            data=body.data(),
            channel=Application.Channel.API,
        )
        if body.submit:
            services.application_submit(user=request.user, application_id=application.pk)
    return 201, _application(request, application.pk)


@router.get(
    "/applications/{application_id}",
    response={200: ApplicationOut, **ERRORS},
    summary="One application with its pre-checks, documents and timeline",
)
def get_application(request: HttpRequest, application_id: int) -> selectors.ApplicationView:
    return _application(request, application_id)


@router.patch(
    "/applications/{application_id}",
    response={200: ApplicationOut, **ERRORS},
    summary="Correct an application while it is a draft or more information is needed",
)
def update_application(
    request: HttpRequest, application_id: int, body: ApplicationPatchIn
) -> selectors.ApplicationView:
    # application_update replaces every statement; a PATCH changes only those given, so the
    # others are read back under the same lock the service takes.
    with transaction.atomic():
        current = Application.objects.select_for_update().filter(pk=application_id).first()
        stated = services.application_data(current) if current else services.ApplicationData()
        services.application_update(
            user=request.user,
            application_id=application_id,
            data=dataclasses.replace(stated, **body.changes()),
            level_code=body.level,
        )
    return _application(request, application_id)


def _document_out(document: Document) -> dict[str, Any]:
    return {
        "id": document.pk,
        "kind": document.kind,
        "kind_label": str(document.get_kind_display()),
        "filename": document.filename,
        "content_type": document.content_type,
        "size": document.size,
        "uploaded_at": document.uploaded_at,
    }


def _upload(file: UploadedFile) -> dict[str, Any]:
    """An uploaded file's name and bytes, its size checked before it is read into memory."""
    if file.size is not None:
        services.document_size_check(filename=file.name or "", size=file.size)
    return {"filename": file.name or "", "content": file.read()}


@router.post(
    "/applications/{application_id}/documents",
    response={201: CertificationDocumentOut, **ERRORS},
    summary="Upload a document (PDF, JPEG or PNG, judged by its content; stored encrypted)",
)
def upload_document(
    request: HttpRequest,
    application_id: int,
    kind: Form[DocumentKind],
    file: File[UploadedFile],
) -> tuple[int, dict[str, Any]]:
    document = services.document_add(
        user=request.user, application_id=application_id, kind=str(kind), **_upload(file)
    )
    return 201, _document_out(document)


@router.post(
    "/applications/{application_id}/submit",
    response={200: ApplicationOut, **ERRORS},
    summary="Submit for review; the pre-checks run at once and a failed hard check sends it "
    "back to the applicant (status needs_info, the faults in info_requested)",
)
def submit_application(request: HttpRequest, application_id: int) -> selectors.ApplicationView:
    services.application_submit(user=request.user, application_id=application_id)
    return _application(request, application_id)


@router.post(
    "/applications/{application_id}/start-review",
    response={200: ApplicationOut, **ERRORS},
    summary="Take an application into review (not one you filed)",
)
def start_review(request: HttpRequest, application_id: int) -> selectors.ApplicationView:
    services.application_start_review(user=request.user, application_id=application_id)
    return _application(request, application_id)


@router.post(
    "/applications/{application_id}/release",
    response={200: ApplicationOut, **ERRORS},
    summary="Give an application in review back to the queue",
)
def release_application(request: HttpRequest, application_id: int) -> selectors.ApplicationView:
    services.application_release(user=request.user, application_id=application_id)
    return _application(request, application_id)


@router.post(
    "/applications/{application_id}/approve",
    response={200: ApplicationOut, **ERRORS},
    summary="Approve and grant the level (not one you filed; the checks are run again)",
)
def approve_application(
    request: HttpRequest, application_id: int, body: ApplicationApproveIn
) -> selectors.ApplicationView:
    services.application_approve(
        user=request.user, application_id=application_id, reason=body.reason, level_code=body.level
    )
    return _application(request, application_id)


@router.post(
    "/applications/{application_id}/reject",
    response={200: ApplicationOut, **ERRORS},
    summary="Reject (the applicant is told the reason)",
)
def reject_application(
    request: HttpRequest, application_id: int, body: CertificationReasonIn
) -> selectors.ApplicationView:
    services.application_reject(
        user=request.user, application_id=application_id, reason=body.reason
    )
    return _application(request, application_id)


@router.post(
    "/applications/{application_id}/request-info",
    response={200: ApplicationOut, **ERRORS},
    summary="Send back to the applicant, saying what is missing (a round trip)",
)
def request_info(
    request: HttpRequest, application_id: int, body: ApplicationRequestInfoIn
) -> selectors.ApplicationView:
    services.application_request_info(
        user=request.user, application_id=application_id, missing=body.missing
    )
    return _application(request, application_id)


@router.post(
    "/applications/{application_id}/withdraw",
    response={200: ApplicationOut, **ERRORS},
    summary="Withdraw an application that is not decided yet",
)
def withdraw_application(
    request: HttpRequest, application_id: int, body: CertificationReasonIn
) -> selectors.ApplicationView:
    services.application_withdraw(
        user=request.user, application_id=application_id, reason=body.reason
    )
    return _application(request, application_id)


# ---------------------------------------------------------------------- documents


@router.get(
    "/documents/{document_id}",
    response={200: None, **ERRORS},
    summary="A document's file (reviewers with the permission; every read is audited)",
    openapi_extra={
        "responses": {
            200: {
                "description": "The file",
                "content": {
                    "application/pdf": {},
                    "image/jpeg": {},
                    "image/png": {},
                },
            }
        }
    },
)
def download_document(request: HttpRequest, document_id: int) -> HttpResponse:
    document = selectors.document_read(user=request.user, document_id=document_id)
    response = HttpResponse(document.content, content_type=document.content_type)
    response["Content-Disposition"] = content_disposition_header(True, document.filename)
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "no-store"
    return response


# ---------------------------------------------------------------------- a customer's certification


class CertificationOut(Schema):
    id: int
    level_code: str
    level_name: str
    level_name_en: str
    rank: int
    status: str
    granted_at: datetime
    expires_at: datetime
    fields: list[str] = Field(description="The verified fields (their values are not shown)")
    downgraded_from: str | None = Field(
        None,
        description="The code of the level that expired, when this certification is its "
        "fallback (a downgrade at expiry); null otherwise",
    )

    @staticmethod
    def resolve_downgraded_from(obj: selectors.CertificationView) -> str | None:
        return obj.downgraded_from.code if obj.downgraded_from is not None else None


class ApplicantLinkOut(Schema):
    url: str = Field(description="The applicant's page; whoever holds it acts as the customer")
    expires_in_days: int


@customer_router.get(
    "/{customer_id}/certification",
    response={200: CertificationOut | None, **ERRORS},
    summary="The customer's active certification (null: not certified)",
)
def customer_certification(
    request: HttpRequest, customer_id: int
) -> selectors.CertificationView | None:
    return selectors.customer_certification(user=request.user, customer_id=customer_id)


@customer_router.post(
    "/{customer_id}/certification/link",
    response={200: ApplicantLinkOut, **ERRORS},
    summary="The applicant's signed link, for staff to send through the customer's own channel",
)
def applicant_link(request: HttpRequest, customer_id: int) -> dict[str, Any]:
    if not 0 < customer_id <= MAX_ID:
        raise NotFound(f"customer {customer_id} not found")
    url = services.applicant_link_issue(user=request.user, customer_id=customer_id)
    return {"url": url, "expires_in_days": tokens.link_days()}


# ---------------------------------------------------------------------- change requests


class ChangeRequestOut(Schema):
    id: int
    customer_id: int
    customer_name: str
    level_name: str
    fields: list[str]
    changes: dict[str, dict[str, str]] = Field(
        description="{field: {old, new}}; masked unless you review or may see personal data"
    )
    reason: str
    source: str
    checks: list[PrecheckOut]
    status: str
    status_label: str
    requested_by: str
    requested_at: datetime
    decided_by: str
    decided_at: datetime | None
    decision_reason: str
    documents: list[CertificationDocumentOut] = Field(
        description="Evidence of the change (the reissued licence, the new ID card)"
    )


class ChangeRequestParams(Schema):
    status: ChangeRequestStatus = Field(
        ChangeRequestStatus.PENDING, description="One status, or all"
    )
    customer_id: int | None = Field(None, ge=1, le=MAX_ID)
    limit: int = Field(50, ge=1, le=200)


NewValue = Annotated[
    str,
    Field(min_length=1, max_length=200, pattern=TEXT),
    AfterValidator(_no_nul),
    AfterValidator(_words),
]


class ChangeRequestIn(Schema):
    customer_id: int = Field(ge=1, le=MAX_ID)
    changes: dict[CertifiedProfileField, NewValue] = Field(
        min_length=1,
        description="{field: new value}: fields of the customer's certified profile "
        "(individual: real_name, id_number, phone; business: company_name, credit_code, "
        "legal_rep_name, legal_rep_id_number, phone)",
    )
    reason: Reason


@router.get(
    "/changes",
    response={200: list[ChangeRequestOut], **ERRORS},
    summary="Change requests to certified profiles, the oldest first",
)
def list_changes(
    request: HttpRequest, params: Query[ChangeRequestParams]
) -> list[selectors.ChangeView]:
    return selectors.change_request_list(
        user=request.user,
        status="" if params.status == ChangeRequestStatus.ALL else str(params.status),
        customer_id=params.customer_id,
        limit=params.limit,
    )


@router.post(
    "/changes",
    response={201: ChangeRequestOut, **ERRORS},
    summary="Ask to change a certified customer's profile (takes effect when another reviewer "
    "approves; a malformed new value is refused at once)",
)
def file_change(request: HttpRequest, body: ChangeRequestIn) -> tuple[int, selectors.ChangeView]:
    change = services.change_request_file(
        user=request.user,
        customer_id=body.customer_id,
        changes={str(name): value for name, value in body.changes.items()},
        reason=body.reason,
        source="api",
    )
    return 201, selectors.change_request_detail(user=request.user, request_id=change.pk)


@router.get(
    "/changes/{request_id}", response={200: ChangeRequestOut, **ERRORS}, summary="One change"
)
def get_change(request: HttpRequest, request_id: int) -> selectors.ChangeView:
    return selectors.change_request_detail(user=request.user, request_id=request_id)


@router.post(
    "/changes/{request_id}/approve",
    response={200: ChangeRequestOut, **ERRORS},
    summary="Approve a change (never one's own): the profile and the customer's file change",
)
def approve_change(
    request: HttpRequest, request_id: int, body: CertificationReasonIn
) -> selectors.ChangeView:
    services.change_request_approve(user=request.user, request_id=request_id, reason=body.reason)
    return selectors.change_request_detail(user=request.user, request_id=request_id)


@router.post(
    "/changes/{request_id}/reject",
    response={200: ChangeRequestOut, **ERRORS},
    summary="Reject a change (never one's own)",
)
def reject_change(
    request: HttpRequest, request_id: int, body: CertificationReasonIn
) -> selectors.ChangeView:
    services.change_request_reject(user=request.user, request_id=request_id, reason=body.reason)
    return selectors.change_request_detail(user=request.user, request_id=request_id)


@router.post(
    "/changes/{request_id}/withdraw",
    response={200: ChangeRequestOut, **ERRORS},
    summary="Withdraw a change still waiting for review (then a corrected one can be filed)",
)
def withdraw_change(
    request: HttpRequest, request_id: int, body: CertificationReasonIn
) -> selectors.ChangeView:
    services.change_request_withdraw(user=request.user, request_id=request_id, reason=body.reason)
    return selectors.change_request_detail(user=request.user, request_id=request_id)


@router.post(
    "/changes/{request_id}/documents",
    response={201: CertificationDocumentOut, **ERRORS},
    summary="Attach the evidence a change needs while it waits (e.g. the reissued business "
    "licence for a new company name); approval waits for it",
)
def upload_change_document(
    request: HttpRequest,
    request_id: int,
    kind: Form[DocumentKind],
    file: File[UploadedFile],
) -> tuple[int, dict[str, Any]]:
    document = services.change_document_add(
        user=request.user, request_id=request_id, kind=str(kind), **_upload(file)
    )
    return 201, _document_out(document)


# ---------------------------------------------------------------------- certifications


class CertificationEndOut(Schema):
    id: int
    customer_id: int
    level_code: str
    status: str
    granted_at: datetime
    expires_at: datetime
    ended_at: datetime | None
    end_reason: str


def _ended(certification: Certification) -> dict[str, Any]:
    return {
        "id": certification.pk,
        "customer_id": certification.customer_id,
        "level_code": certification.level.code,
        "status": certification.status,
        "granted_at": certification.granted_at,
        "expires_at": certification.expires_at,
        "ended_at": certification.ended_at,
        "end_reason": certification.end_reason,
    }


@router.post(
    "/certifications/{certification_id}/revoke",
    response={200: CertificationEndOut, **ERRORS},
    summary="Revoke an active certification (the reason is recorded)",
)
def revoke_certification(
    request: HttpRequest, certification_id: int, body: CertificationReasonIn
) -> dict[str, Any]:
    certification = services.certification_revoke(
        user=request.user, certification_id=certification_id, reason=body.reason
    )
    return _ended(certification)


# ---------------------------------------------------------------------- process figures


class CertificationStatsOut(Schema):
    days: int
    decided: int
    approved: int
    rejected: int
    median_hours_to_decision: float | None = Field(description="From submission to decision")
    p90_hours_to_decision: float | None
    mean_round_trips: float | None
    one_step_share: float | None = Field(description="Decided without going back to applicant")
    automatic_returns: int = Field(description="Returned at once by a failed hard pre-check")
    backlog: int = Field(description="Waiting for a reviewer")
    with_applicant: int = Field(description="Waiting for the applicant")
    oldest_waiting_hours: float | None
    ready_to_decide: int = Field(description="Waiting, and every check passed")
    active_certifications: int
    expiring_30d: int
    pending_changes: int


class CertificationStatsParams(Schema):
    days: int = Field(90, ge=1, le=3660, description="Decisions of the last N days")


@router.get(
    "/stats",
    response={200: CertificationStatsOut, **ERRORS},
    summary="How short the process is: time to decision, round trips, backlog",
)
def process_stats(
    request: HttpRequest, params: Query[CertificationStatsParams]
) -> selectors.ProcessStats:
    return selectors.process_stats(user=request.user, days=params.days)
