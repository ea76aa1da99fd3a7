"""What the certification pages share: the application form as the user typed it (so an error
keeps their input), its uploads checked before anything is written, the page's steps (start or
correct, attach, submit: one transaction), and the answer that streams a document.

Staff (``patron.certification.views``) and the applicant on the public page
(``patron.certification.public_views``) fill the same form; the services decide who may.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.http import HttpResponse, QueryDict
from django.utils import translation
from django.utils.http import content_disposition_header
from django.utils.translation import gettext_lazy as _

from patron.certification import rules, selectors, services
from patron.certification.models import Application
from patron.errors import PatronError, ValidationFailed

#: Fields of each kind of applicant, in the order the form asks for them.
KIND_FIELDS: dict[str, tuple[str, ...]] = {
    "individual": ("real_name", "id_number", "phone", "birth_date", "id_region"),
    "business": ("company_name", "credit_code", "legal_rep_name", "legal_rep_id_number", "phone"),
}
TEXT_FIELDS = tuple(dict.fromkeys(KIND_FIELDS["individual"] + KIND_FIELDS["business"]))
QUALIFICATION_ROWS = 3
DOCUMENT_ROWS = 4
#: Shown in the browser; anything else (none today: the services accept only these) downloads.
INLINE_TYPES = frozenset({"application/pdf", "image/png", "image/jpeg"})

FIELD_LABELS: dict[str, Any] = {
    "real_name": _("Real name"),
    "id_number": _("Resident ID number"),
    "phone": _("Mobile phone"),
    "birth_date": _("Birth date"),
    "id_region": _("Province of household registration"),
    "company_name": _("Company name"),
    "credit_code": _("Unified social credit code"),
    "legal_rep_name": _("Legal representative"),
    "legal_rep_id_number": _("Legal representative's ID number"),
    "qualifications": _("Qualifications and permits"),
}
EVENT_LABELS: dict[str, Any] = {
    "create": _("Application started"),
    "update": _("Details corrected"),
    "upload": _("Document uploaded"),
    "submit": _("Submitted for review"),
    "return": _("Returned at once: pre-checks failed"),
    "start_review": _("Taken for review"),
    "release": _("Released to the queue"),
    "approve": _("Approved"),
    "reject": _("Rejected"),
    "request_info": _("More information requested"),
    "withdraw": _("Withdrawn"),
}


def is_chinese() -> bool:
    return (translation.get_language() or "").startswith("zh")


def document_kinds() -> list[tuple[str, str]]:
    """Every kind of document with its label in the page's language (the upload rows)."""
    return [(kind, document_label(kind)) for kind in rules.DOCUMENT_LABELS]


def change_documents() -> dict[str, str]:
    """Each certified field with the document a change of it needs, as labels."""
    return {name: document_label(kind) for name, kind in rules.CHANGE_DOCUMENTS.items()}


def document_label(kind: str) -> str:
    labels = rules.DOCUMENT_LABELS.get(kind)
    if labels is None:
        return kind
    label = labels["zh-hans"] if is_chinese() else labels["en"]
    return label[:1].upper() + label[1:]


def level_label(level: Any) -> str:
    """A level's name in the page's language (``LevelView`` or ``CertificationView``)."""
    zh = getattr(level, "name", None) or getattr(level, "level_name", "")
    en = getattr(level, "name_en", None) or getattr(level, "level_name_en", "")
    return str(zh if is_chinese() else en or zh)


@dataclass(frozen=True)
class CategoryChoice:
    code: str
    label: str
    permits: str  # the permits it needs, for the form's hint


def category_choices() -> list[CategoryChoice]:
    """The trades on offer, in the page's language, each with the permits it needs."""
    return [
        CategoryChoice(c.code, level_label(c), "、".join(c.required_permits))
        for c in selectors.category_list(active_only=True)
    ]


@dataclass(frozen=True)
class LevelChoice:
    code: str
    label: str
    kind: str
    documents: list[str]  # required kinds


def level_choices(levels: Sequence[selectors.LevelView]) -> list[LevelChoice]:
    """The levels on offer, individuals' first (most applicants), each kind by rank."""
    offered = sorted(
        (lv for lv in levels if lv.is_active),
        key=lambda lv: (lv.applicant_kind != "individual", lv.rank, lv.code),
    )
    return [
        LevelChoice(lv.code, level_label(lv), lv.applicant_kind, list(lv.required_documents))
        for lv in offered
    ]


def document_defaults(form: ApplicationForm, levels: Sequence[LevelChoice]) -> list[str]:
    """The kind preselected in each upload row: the chosen level's required documents not yet
    uploaded, then "other"."""
    required = next((lv.documents for lv in levels if lv.code == form.level), [])
    uploaded = {doc.kind for doc in form.documents}
    kinds = [kind for kind in required if kind not in uploaded]
    return (kinds + ["other"] * DOCUMENT_ROWS)[:DOCUMENT_ROWS]


def failed_hard_checks(checks: Sequence[Mapping[str, Any]]) -> list[selectors.CheckView]:
    return [c for c in selectors.checks_view(checks) if c.hard and not c.passed]


# ---------------------------------------------------------------------- the form


def _whole(text: str, name: str) -> int:
    try:
        return int(text.strip())
    except (AttributeError, ValueError):
        raise ValidationFailed(f"{name}: expected a whole number, got '{text}'") from None


def _day(text: str, name: str) -> date | None:
    text = text.strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValidationFailed(f"{name}: expected a date (YYYY-MM-DD), got '{text}'") from None


def _empty_qualifications() -> list[dict[str, str]]:
    return [{"name": "", "number": "", "valid_until": ""} for _ in range(QUALIFICATION_ROWS)]


@dataclass
class ApplicationForm:
    """The application form as typed; ``masked`` holds values shown masked that the user must
    type again (their role may not see them in full)."""

    level: str = ""
    values: dict[str, str] = field(default_factory=dict)
    masked: dict[str, str] = field(default_factory=dict)
    qualifications: list[dict[str, str]] = field(default_factory=_empty_qualifications)
    business_category: str = ""  # a trade's code
    application_id: int | None = None
    status: str = ""
    documents: list[selectors.DocumentView] = field(default_factory=list)
    failed_checks: list[selectors.CheckView] = field(default_factory=list)
    info_requested: str = ""
    error: str = ""
    invalid: set[str] = field(default_factory=set)

    @classmethod
    def from_post(cls, data: QueryDict) -> ApplicationForm:
        rows = [
            {
                "name": data.get(f"qualification_name_{i}", "").strip(),
                "number": data.get(f"qualification_number_{i}", "").strip(),
                "valid_until": data.get(f"qualification_until_{i}", "").strip(),
            }
            for i in range(QUALIFICATION_ROWS)
        ]
        application = data.get("application", "").strip()
        return cls(
            level=data.get("level", "").strip(),
            values={name: data.get(name, "").strip() for name in TEXT_FIELDS},
            qualifications=rows,
            business_category=data.get("business_category", "").strip(),
            application_id=_whole(application, "application") if application else None,
        )

    @classmethod
    def from_application(
        cls,
        *,
        application_id: int,
        status: str,
        level: str,
        fields: Mapping[str, str],
        birth_date: str,
        id_region: str,
        qualifications: Sequence[Mapping[str, Any]],
        business_category: str,
        documents: Sequence[selectors.DocumentView],
        checks: Sequence[selectors.CheckView],
        info_requested: str,
    ) -> ApplicationForm:
        values = {name: str(value) for name, value in fields.items()}
        values.update(birth_date=birth_date, id_region=id_region)
        masked = {name: value for name, value in values.items() if "*" in value}
        for name in masked:
            values[name] = ""
        rows = [
            {
                "name": str(item.get("name") or ""),
                "number": str(item.get("number") or ""),
                "valid_until": str(item.get("valid_until") or ""),
            }
            for item in qualifications
        ]
        rows += _empty_qualifications()[: max(0, QUALIFICATION_ROWS - len(rows))]
        return cls(
            level=level,
            values=values,
            masked=masked,
            qualifications=rows,
            business_category=business_category,
            application_id=application_id,
            status=status,
            documents=list(documents),
            failed_checks=[c for c in checks if c.hard and not c.passed],
            info_requested=info_requested,
        )

    def kind(self, levels: Sequence[LevelChoice]) -> str:
        for level in levels:
            if level.code == self.level:
                return level.kind
        codes = ", ".join(level.code for level in levels)
        raise ValidationFailed(f"level: choose one of {codes}; got '{self.level}'")

    def application_data(self, kind: str) -> services.ApplicationData:
        """What the services take: only the fields of the chosen kind of applicant (the form
        holds both, one of them hidden)."""
        wanted = KIND_FIELDS[kind]
        text = {name: self.values.get(name, "") for name in wanted if name != "birth_date"}
        birth_date = None
        if "birth_date" in wanted:
            birth_date = _day(self.values.get("birth_date", ""), "birth_date")
        qualifications: tuple[Mapping[str, Any], ...] = ()
        if kind == "business":
            rows = []
            for number, row in enumerate(self.qualifications, start=1):
                if not any(row.values()):
                    continue
                _day(row["valid_until"], f"qualification {number}: valid until")
                rows.append({**row, "valid_until": row["valid_until"] or None})
            qualifications = tuple(rows)
        return services.ApplicationData(
            birth_date=birth_date,
            qualifications=qualifications,
            business_category=self.business_category if kind == "business" else "",
            **text,
        )

    def fail(self, error: PatronError) -> None:
        self.error = error.message
        head = error.message.split(":", 1)[0].strip()
        if head in TEXT_FIELDS or head in {"level", "business_category"}:
            self.invalid.add(head)
        elif head.startswith("qualification"):
            self.invalid.add("qualifications")
        elif head.startswith("document") or "'" in head:
            self.invalid.add("documents")


@dataclass(frozen=True)
class Upload:
    kind: str
    filename: str
    content: bytes


def uploads_from(data: QueryDict, files: Mapping[str, UploadedFile]) -> list[Upload]:
    """The files chosen, each checked (type by content, size) before anything is written."""
    limit = services.max_document_bytes()
    uploads = []
    for i in range(DOCUMENT_ROWS):
        upload = files.get(f"document_file_{i}")
        if upload is None:
            continue
        name = upload.name or "document"
        kind = data.get(f"document_kind_{i}", "")
        if upload.size is not None and upload.size > limit:
            raise ValidationFailed(
                f"document {name!r}: {upload.size:,} bytes is over the limit of {limit:,}"
            )
        content = upload.read()
        services.document_validate(filename=name, content=content, kind=kind)
        uploads.append(Upload(kind=kind, filename=name, content=content))
    return uploads


@transaction.atomic
def application_save(
    *,
    user: Any,
    customer_id: int,
    form: ApplicationForm,
    kind: str,
    uploads: Sequence[Upload],
    submit: bool,
    channel: str,
    applicant_customer_id: int | None = None,
) -> Application:
    """The page's steps as one transaction: start the application (or correct the one the
    form names), attach the uploads, and submit it if asked. Any refusal undoes them all."""
    data = form.application_data(kind)
    if form.application_id is None:
        application = services.application_create(
            user=user,
            customer_id=customer_id,
            level_code=form.level,
            data=data,
            channel=channel,
            applicant_customer_id=applicant_customer_id,
        )
    else:
        application = services.application_update(
            user=user,
            application_id=form.application_id,
            data=data,
            level_code=form.level,
            applicant_customer_id=applicant_customer_id,
        )
        if application.customer_id != customer_id:
            # The form named another customer's application: refuse as if it did not exist.
            raise ValidationFailed(
                f"application {form.application_id} is not an application of this customer"
            )
    for upload in uploads:
        services.document_add(
            user=user,
            application_id=application.pk,
            kind=upload.kind,
            filename=upload.filename,
            content=upload.content,
            applicant_customer_id=applicant_customer_id,
        )
    if submit:
        application = services.application_submit(
            user=user, application_id=application.pk, applicant_customer_id=applicant_customer_id
        )
    return application


@transaction.atomic
def change_save(
    *,
    user: Any,
    customer_id: int,
    changes: Mapping[str, str],
    reason: str,
    uploads: Sequence[Upload],
    source: str,
    applicant_customer_id: int | None = None,
) -> Any:
    """File a change with its evidence as one transaction: a refused upload files nothing."""
    request = services.change_request_file(
        user=user,
        customer_id=customer_id,
        changes=changes,
        reason=reason,
        source=source,
        applicant_customer_id=applicant_customer_id,
    )
    for upload in uploads:
        services.change_document_add(
            user=user,
            request_id=request.pk,
            kind=upload.kind,
            filename=upload.filename,
            content=upload.content,
            applicant_customer_id=applicant_customer_id,
        )
    return request


def document_response(document: selectors.DocumentContent) -> HttpResponse:
    """The bytes as the browser should handle an identity document: shown (images, PDF) but
    never sniffed into something else, and never kept in a cache."""
    response = HttpResponse(document.content, content_type=document.content_type)
    response["Content-Disposition"] = (
        content_disposition_header(document.content_type not in INLINE_TYPES, document.filename)
        or "inline"
    )
    response["Content-Length"] = str(len(document.content))
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "no-store"
    return response
