"""The certification API as staff use it: filing an application with its documents, the
pre-checks, review and approval, the documents' access rules, change requests to a certified
profile, the applicant's link — and the errors (403, 404, 409, 422) with nothing changed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from patron.account.models import User
from patron.account.roles import Role
from patron.account.services import token_create
from patron.audit.models import AuditEvent
from patron.certification import api, rules, services
from patron.certification.models import (
    Application,
    Certification,
    CertificationLevel,
    ChangeRequest,
    Document,
)
from patron.conftest import ALL_ROLES, NO_ROLE, make_customer, make_user
from patron.customer.models import Customer

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.4\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"0" * 64
#: Published examples of resident ID numbers: born 1949-12-31 in Beijing, 1991-01-01 in Jiangxi.
ID_BEIJING = "11010519491231002X"
ID_JIANGXI = "360426199101010071"
ID_BAD_CHECK_DIGIT = "110105194912310021"  # should end in X
PERSON: dict[str, Any] = {
    "real_name": "张三",
    "id_number": ID_BEIJING,
    "phone": "13800138000",
    "birth_date": "1949-12-31",
    "id_region": "北京",
}
EVERY_ROLE = [*ALL_ROLES, NO_ROLE]


def _client(user: User) -> Client:
    return Client(
        headers={"Authorization": f"Bearer {token_create(user=user)}", "Accept-Language": "en"}
    )


def _post(client: Client, url: str, body: dict[str, Any] | None = None) -> Any:
    return client.post(url, body or {}, content_type="application/json")


def _upload(client: Client, application_id: int, kind: str, name: str, content: bytes) -> Any:
    return client.post(
        f"/api/certification/applications/{application_id}/documents",
        {"kind": kind, "file": SimpleUploadedFile(name, content, content_type="image/png")},
    )


@pytest.fixture
def agent_user() -> User:
    return make_user(Role.SERVICE_AGENT, username="agent-wang")


@pytest.fixture
def agent(agent_user: User) -> Client:
    return _client(agent_user)


@pytest.fixture
def reviewer() -> Client:
    return _client(make_user(Role.RISK_ANALYST, username="analyst-li"))


@pytest.fixture
def customer() -> Customer:
    return make_customer(name="张三")


def _file(client: Client, customer: Customer, **fields: Any) -> dict[str, Any]:
    """An individual application for the identity level, with both sides of the ID card."""
    created = _post(
        client,
        "/api/certification/applications",
        {"customer_id": customer.pk, "level": "identity", **PERSON, **fields},
    )
    assert created.status_code == 201, created.json()
    application: dict[str, Any] = created.json()
    for kind in ("id_front", "id_back"):
        uploaded = _upload(client, application["id"], kind, f"{kind}.png", PNG)
        assert uploaded.status_code == 201, uploaded.json()
    return application


def _pending(user: User, customer: Customer, id_number: str = ID_BEIJING) -> Application:
    """A complete application waiting for review, filed by ``user`` through the services."""
    application = services.application_create(
        user=user,
        customer_id=customer.pk,
        level_code="identity",
        data=services.ApplicationData(real_name="张三", id_number=id_number, phone="13800138000"),
    )
    for kind in ("id_front", "id_back"):
        services.document_add(
            user=user, application_id=application.pk, kind=kind, filename=f"{kind}.png", content=PNG
        )
    return services.application_submit(user=user, application_id=application.pk)


def _certified(customer: Customer) -> Certification:
    application = _pending(make_user(Role.SERVICE_AGENT), customer)
    return services.application_approve(
        user=make_user(Role.RISK_ANALYST), application_id=application.pk, reason="证件一致"
    )


# ---------------------------------------------------------------------- the workflow


def test_an_agent_files_and_another_reviewer_approves_and_the_level_shows(
    agent: Client, reviewer: Client, customer: Customer
) -> None:
    # given
    application = _file(agent, customer)
    assert application["status"] == "draft" and application["channel"] == "api"
    # when
    submitted = _post(agent, f"/api/certification/applications/{application['id']}/submit")
    # then
    assert submitted.status_code == 200
    body = submitted.json()
    assert body["status"] == "pending"
    assert [(c["code"], c["passed"], c["hard"]) for c in body["checks"]] == [
        ("id_number_valid", True, True),
        ("birth_date_matches_id", True, True),
        ("region_matches_id", True, True),
        ("phone_valid", True, True),
        ("no_duplicate", True, False),
    ]
    assert body["checks"][1]["text"] == "The birth date entered (1949-12-31) matches the ID number."
    assert [d["kind"] for d in body["documents"]] == ["id_front", "id_back"]
    assert body["fields"] == {
        "real_name": "张*",
        "id_number": "110***********002X",
        "phone": "138****8000",
    }  # an agent sees what they filed masked
    queue = reviewer.get("/api/certification/applications").json()
    assert queue["count"] == 1
    assert queue["items"][0]["id"] == application["id"] and queue["items"][0]["is_ready"]
    # when
    approved = _post(
        reviewer,
        f"/api/certification/applications/{application['id']}/approve",
        {"reason": "证件与填写一致"},
    )
    # then
    assert approved.status_code == 200, approved.json()
    decided = approved.json()
    assert decided["status"] == "approved" and decided["granted_level"] == "identity"
    assert decided["decided_by"] == "analyst-li" and decided["decision_reason"] == "证件与填写一致"
    assert decided["fields"]["id_number"] == ID_BEIJING  # a reviewer compares the documents
    shown = agent.get(f"/api/customers/{customer.pk}/certification")
    assert shown.status_code == 200
    certification = shown.json()
    assert (certification["level_code"], certification["level_name_en"]) == (
        "identity",
        "Identity verified",
    )
    assert certification["status"] == "active"
    assert certification["fields"] == ["real_name", "id_number", "phone"]


def test_filing_with_submit_true_submits_at_once(agent: Client, customer: Customer) -> None:
    # given: a level that needs no documents
    CertificationLevel.objects.filter(code="identity").update(required_documents=[])
    # when
    created = _post(
        agent,
        "/api/certification/applications",
        {"customer_id": customer.pk, "level": "identity", "submit": True, **PERSON},
    )
    # then
    assert created.status_code == 201
    assert created.json()["status"] == "pending"
    assert [e["action"] for e in created.json()["events"]] == ["create", "submit"]


def test_a_mistyped_id_number_sends_the_application_back_naming_the_check_digit(
    agent: Client, customer: Customer
) -> None:
    # given
    application = _file(agent, customer, id_number=ID_BAD_CHECK_DIGIT)
    # when
    submitted = _post(agent, f"/api/certification/applications/{application['id']}/submit")
    # then
    assert submitted.status_code == 200
    body = submitted.json()
    assert body["status"] == "needs_info"
    failed = [c for c in body["checks"] if not c["passed"]]
    assert failed == [
        {
            "code": "id_number_checksum",
            "passed": False,
            "hard": True,
            "field": "id_number",
            "text": "The resident ID number is mistyped: its last character should be X, not 1.",
        }
    ]
    assert body["info_requested"] == (
        "The resident ID number is mistyped: its last character should be X, not 1."
    )
    assert body["submitted_at"] is None and body["round_trips"] == 0


def test_the_applicant_corrects_the_number_with_a_patch_and_resubmits(
    agent: Client, customer: Customer
) -> None:
    # given
    application = _file(agent, customer, id_number=ID_BAD_CHECK_DIGIT)
    url = f"/api/certification/applications/{application['id']}"
    _post(agent, f"{url}/submit")
    # when: only the number changes; what else was stated is kept
    corrected = agent.patch(url, {"id_number": ID_BEIJING}, content_type="application/json")
    # then
    assert corrected.status_code == 200
    stored = Application.objects.get(pk=application["id"])
    assert (stored.id_number, stored.real_name, stored.phone) == (ID_BEIJING, "张三", "13800138000")
    assert str(stored.birth_date) == "1949-12-31" and stored.id_region == "北京"
    assert _post(agent, f"{url}/submit").json()["status"] == "pending"


def test_a_reviewer_cannot_approve_an_application_they_filed(customer: Customer) -> None:
    # given: an operations manager may both file and review, but not the same application
    manager = _client(make_user(Role.OPERATIONS_MANAGER))
    application = _file(manager, customer)
    _post(manager, f"/api/certification/applications/{application['id']}/submit")
    # when
    refused = _post(
        manager,
        f"/api/certification/applications/{application['id']}/approve",
        {"reason": "自己批准"},
    )
    # then
    assert refused.status_code == 403
    assert refused.json() == {
        "code": "permission_denied",
        "message": "you filed this application: another reviewer must decide it",
        "details": None,
    }
    stored = Application.objects.get(pk=application["id"])
    assert (stored.status, stored.decided_by_id, stored.decision_reason) == ("pending", None, "")
    assert not Certification.objects.exists()


def test_approving_a_draft_is_a_conflict(
    agent: Client, reviewer: Client, customer: Customer
) -> None:
    # given: complete, but never submitted
    application = _file(agent, customer)
    # when
    refused = _post(
        reviewer,
        f"/api/certification/applications/{application['id']}/approve",
        {"reason": "ok"},
    )
    # then
    assert refused.status_code == 409
    assert refused.json()["message"] == (
        "the application is draft: cannot approve; allowed: return, submit, withdraw"
    )
    assert Application.objects.get(pk=application["id"]).status == "draft"
    assert not Certification.objects.exists()


def test_a_reviewer_asks_for_more_information_and_the_applicant_is_told(
    agent_user: User, reviewer: Client, customer: Customer
) -> None:
    # given
    application = _pending(agent_user, customer)
    url = f"/api/certification/applications/{application.pk}"
    assert _post(reviewer, f"{url}/start-review").json()["reviewer"] == "analyst-li"
    # when
    asked = _post(reviewer, f"{url}/request-info", {"missing": "身份证照片模糊，请重新上传"})
    # then
    assert asked.status_code == 200
    body = asked.json()
    assert (body["status"], body["round_trips"], body["reviewer"]) == ("needs_info", 1, "")
    assert body["info_requested"] == "身份证照片模糊，请重新上传"
    # and a decision on it now is a conflict
    assert _post(reviewer, f"{url}/reject", {"reason": "x"}).status_code == 409


def test_reject_release_and_withdraw(
    agent: Client, agent_user: User, reviewer: Client, customer: Customer
) -> None:
    application = _pending(agent_user, customer)
    url = f"/api/certification/applications/{application.pk}"
    _post(reviewer, f"{url}/start-review")
    released = _post(reviewer, f"{url}/release")
    assert (released.json()["status"], released.json()["reviewer"]) == ("pending", "")
    rejected = _post(reviewer, f"{url}/reject", {"reason": "证件与本人不符"})
    assert (rejected.json()["status"], rejected.json()["decision_reason"]) == (
        "rejected",
        "证件与本人不符",
    )
    again = _post(agent, f"{url}/withdraw", {"reason": "客户撤回"})
    assert again.status_code == 409
    assert again.json()["message"] == (
        "the application is rejected: cannot withdraw; allowed: none (final)"
    )
    # a new application is possible once the last one is decided
    other = _file(agent, customer)
    withdrawn = _post(
        agent, f"/api/certification/applications/{other['id']}/withdraw", {"reason": "客户撤回"}
    )
    assert withdrawn.json()["status"] == "withdrawn"


def test_one_live_application_per_customer(agent: Client, customer: Customer) -> None:
    _file(agent, customer)
    second = _post(
        agent,
        "/api/certification/applications",
        {"customer_id": customer.pk, "level": "identity", **PERSON},
    )
    assert second.status_code == 409
    assert second.json()["message"] == (
        f"customer {customer.pk} already has an application in progress: "
        "continue that one or withdraw it first"
    )
    assert Application.objects.count() == 1


def test_unknown_records_are_404(agent: Client, reviewer: Client, customer: Customer) -> None:
    unknown_level = _post(
        agent,
        "/api/certification/applications",
        {"customer_id": customer.pk, "level": "platinum", **PERSON},
    )
    assert unknown_level.status_code == 404
    assert unknown_level.json()["message"] == "certification level 'platinum' not found"
    unknown_customer = _post(
        agent, "/api/certification/applications", {"customer_id": 999999, "level": "identity"}
    )
    assert unknown_customer.json()["message"] == "customer 999999 not found"
    assert agent.get("/api/certification/applications/999999").status_code == 404
    assert reviewer.get("/api/certification/documents/999999").status_code == 404
    assert agent.get("/api/certification/changes/999999").status_code == 404
    assert (
        _post(reviewer, "/api/certification/certifications/999999/revoke", {"reason": "x"})
    ).status_code == 404
    assert not Application.objects.exists()


# ---------------------------------------------------------------------- input validation


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"customer_id": 0}, "body.body.customer_id"),
        ({"level": "id entity"}, "body.body.level"),
        ({"real_name": "张\x00三"}, "body.body.real_name"),
        ({"birth_date": "1949-13-31"}, "body.body.birth_date"),
        ({"qualifications": [{"name": " ", "number": "A1"}]}, "body.body.qualifications.0.name"),
        ({"id_region": "北" * 41}, "body.body.id_region"),
    ],
)
def test_a_malformed_application_is_422_naming_the_field(
    agent: Client, customer: Customer, body: dict[str, Any], field: str
) -> None:
    # when
    response = _post(
        agent,
        "/api/certification/applications",
        {"customer_id": customer.pk, "level": "identity", **PERSON, **body},
    )
    # then
    assert response.status_code == 422
    assert response.json()["message"] == f"invalid request: {field}"
    assert not Application.objects.exists()


@pytest.mark.parametrize("reason", ["", "   ", "\u3000", "原因\x00", "x" * 2001])
def test_a_decision_needs_a_real_reason(
    agent_user: User, reviewer: Client, customer: Customer, reason: str
) -> None:
    # given
    application = _pending(agent_user, customer)
    # when
    response = _post(
        reviewer,
        f"/api/certification/applications/{application.pk}/reject",
        {"reason": reason},
    )
    # then
    assert response.status_code == 422
    assert response.json()["message"] == "invalid request: body.body.reason"
    assert Application.objects.get(pk=application.pk).status == "pending"


def test_queue_filters_are_enums(agent: Client) -> None:
    response = agent.get("/api/certification/applications?status=pending&status=lost")
    assert response.status_code == 422
    assert response.json()["message"] == "invalid request: query.params.status.1"
    assert agent.get("/api/certification/changes?status=open").status_code == 422


def test_the_api_enums_are_the_models_choices() -> None:
    assert [s.value for s in api.ApplicationStatus] == Application.Status.values
    assert [s.value for s in api.ChangeRequestStatus] == ["all", *ChangeRequest.Status.values]
    assert {f.value for f in api.CertifiedProfileField} == {
        name for names in rules.PROFILE_FIELDS.values() for name in names
    }


# ---------------------------------------------------------------------- documents


def test_a_file_that_is_not_pdf_jpeg_or_png_is_refused(agent: Client, customer: Customer) -> None:
    # given
    application = _file(agent, customer)
    # when: it says it is a PNG, its bytes say otherwise
    response = _upload(agent, application["id"], "other", "notes.png", b"just some text\n")
    # then
    assert response.status_code == 422
    assert response.json()["message"] == (
        "'notes.png': document: only PDF, JPEG and PNG files are accepted "
        "(the file's content is none of them)"
    )
    assert Document.objects.count() == 2


def test_a_file_over_the_size_limit_is_refused(
    agent: Client, customer: Customer, settings: Any
) -> None:
    # given
    application = _file(agent, customer)
    settings.PATRON_CERT_MAX_DOCUMENT_BYTES = 10
    # when
    response = _upload(agent, application["id"], "other", "licence.pdf", PDF)
    # then
    assert response.status_code == 422
    assert response.json()["message"] == (
        "document 'licence.pdf': 15 bytes is over the limit of 10"
    )
    assert Document.objects.count() == 2


def test_an_unknown_document_kind_is_422(agent: Client, customer: Customer) -> None:
    application = _file(agent, customer)
    response = _upload(agent, application["id"], "passport", "p.png", PNG)
    assert response.status_code == 422
    assert response.json()["message"] == "invalid request: form.kind"
    assert Document.objects.count() == 2


@pytest.mark.parametrize("role", EVERY_ROLE)
def test_a_document_opens_only_for_those_who_review_documents(
    agent_user: User, customer: Customer, role: str
) -> None:
    # given
    application = _pending(agent_user, customer)
    document = application.documents.get(kind="id_front")
    reader = _client(make_user(role))
    # when
    response = reader.get(f"/api/certification/documents/{document.pk}")
    # then
    reads = AuditEvent.objects.filter(entity_type="certification.document")
    if role in {Role.ADMINISTRATOR, Role.OPERATIONS_MANAGER, Role.RISK_ANALYST}:
        assert response.status_code == 200
        assert response.content == PNG
        assert response["Content-Type"] == "image/png"
        assert response["Content-Disposition"] == 'attachment; filename="id_front.png"'
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["Cache-Control"] == "no-store"
        assert reads.count() == 1
    else:
        assert response.status_code == 403
        assert response.json()["message"] == (
            "you do not have the permission 'certification.view_document'"
        )
        assert reads.count() == 0


def test_a_document_is_refused_to_anonymous_callers(agent_user: User, customer: Customer) -> None:
    # given
    document = _pending(agent_user, customer).documents.first()
    assert document is not None
    # when
    anonymous = Client().get(f"/api/certification/documents/{document.pk}")
    forged = Client(headers={"Authorization": "Bearer not-a-token"}).get(
        f"/api/certification/documents/{document.pk}"
    )
    # then
    assert (anonymous.status_code, forged.status_code) == (401, 401)
    assert PNG not in anonymous.content and PNG not in forged.content


# ---------------------------------------------------------------------- permissions


def _create(client: Client, customer: Customer) -> Any:
    return _post(
        client,
        "/api/certification/applications",
        {"customer_id": customer.pk, "level": "identity", **PERSON},
    )


def _approve(client: Client, customer: Customer) -> Any:
    application = _pending(make_user(Role.SERVICE_AGENT), customer)
    return _post(
        client, f"/api/certification/applications/{application.pk}/approve", {"reason": "一致"}
    )


def _edit_level(client: Client, customer: Customer) -> Any:
    return client.patch(
        "/api/certification/levels/trusted",
        {"min_credit_score": 700},
        content_type="application/json",
    )


def _stats(client: Client, customer: Customer) -> Any:
    return client.get("/api/certification/stats?days=30")


def _revoke(client: Client, customer: Customer) -> Any:
    certification = _certified(customer)
    return _post(
        client, f"/api/certification/certifications/{certification.pk}/revoke", {"reason": "伪造"}
    )


def _file_change(client: Client, customer: Customer) -> Any:
    _certified(customer)
    return _post(
        client,
        "/api/certification/changes",
        {"customer_id": customer.pk, "changes": {"phone": "13900139000"}, "reason": "换号"},
    )


def _waiting_change(customer: Customer) -> ChangeRequest:
    _certified(customer)
    return services.change_request_file(
        user=make_user(Role.SERVICE_AGENT),
        customer_id=customer.pk,
        changes={"phone": "13900139000"},
        reason="换号",
    )


def _approve_change(client: Client, customer: Customer) -> Any:
    request = _waiting_change(customer)
    return _post(client, f"/api/certification/changes/{request.pk}/approve", {"reason": "核实"})


def _withdraw_change(client: Client, customer: Customer) -> Any:
    request = _waiting_change(customer)
    return _post(client, f"/api/certification/changes/{request.pk}/withdraw", {"reason": "不需要"})


def _unchanged(action: str, customer: Customer) -> bool:
    if action == "create":
        return not Application.objects.exists()
    if action == "approve":
        return Application.objects.get().status == "pending" and not Certification.objects.exists()
    if action == "edit_level":
        return CertificationLevel.objects.get(code="trusted").min_credit_score == 650
    if action == "revoke":
        return Certification.objects.get().status == "active"
    if action == "file_change":
        return not ChangeRequest.objects.exists()
    if action in ("approve_change", "withdraw_change"):
        return ChangeRequest.objects.get().status == "pending"
    return True


ACTIONS: dict[str, tuple[Callable[[Client, Customer], Any], int, set[str]]] = {
    "create": (_create, 201, {"administrator", "operations_manager", "service_agent"}),
    "approve": (_approve, 200, {"administrator", "operations_manager", "risk_analyst"}),
    "edit_level": (_edit_level, 200, {"administrator", "operations_manager"}),
    "revoke": (_revoke, 200, {"administrator", "operations_manager", "risk_analyst"}),
    "file_change": (
        _file_change,
        201,
        {"administrator", "operations_manager", "service_agent"},
    ),
    "approve_change": (
        _approve_change,
        200,
        {"administrator", "operations_manager", "risk_analyst"},
    ),
    "withdraw_change": (
        _withdraw_change,
        200,
        {"administrator", "operations_manager", "service_agent"},
    ),
    "stats": (
        _stats,
        200,
        {"administrator", "operations_manager", "service_agent", "risk_analyst", "auditor"},
    ),
}


@pytest.mark.parametrize("role", EVERY_ROLE)
@pytest.mark.parametrize("action", list(ACTIONS))
def test_permission_matrix(customer: Customer, action: str, role: str) -> None:
    # given
    call, success, allowed = ACTIONS[action]
    client = _client(make_user(role))
    # when
    response = call(client, customer)
    # then
    if role in allowed:
        assert response.status_code == success, response.json()
    else:
        assert response.status_code == 403
        assert response.json()["code"] == "permission_denied"
        assert _unchanged(action, customer)


# ---------------------------------------------------------------------- levels and figures


def test_trades_are_listed_and_a_business_names_one_by_its_code(agent: Client) -> None:
    # given
    listed = agent.get("/api/certification/business-categories")
    assert listed.status_code == 200
    trades = {t["code"]: t["required_permits"] for t in listed.json()}
    assert trades["food"] == ["食品经营许可证"] and trades["general"] == []
    company = make_customer(name="某某食品")
    shop = {
        "customer_id": company.pk,
        "level": "business",
        "company_name": "北京某某食品有限公司",
        "credit_code": "91110000802100433B",
        "legal_rep_name": "李四",
        "legal_rep_id_number": ID_JIANGXI,
        "phone": "13800138000",
    }
    # when: an unknown trade
    refused = _post(agent, "/api/certification/applications", {**shop, "business_category": "x"})
    # then
    assert refused.status_code == 422
    assert refused.json()["message"].startswith("business_category: no trade 'x'")
    assert not Application.objects.filter(customer=company).exists()
    # when: the food trade, without its permit
    created = _post(agent, "/api/certification/applications", {**shop, "business_category": "food"})
    assert created.status_code == 201, created.json()
    application = created.json()
    assert application["business_category"]["code"] == "food"
    for kind in ("business_licence", "legal_rep_id"):
        assert _upload(agent, application["id"], kind, f"{kind}.png", PNG).status_code == 201
    submitted = _post(agent, f"/api/certification/applications/{application['id']}/submit")
    # then: sent back, saying which permit
    body = submitted.json()
    assert body["status"] == "needs_info"
    assert [c["text"] for c in body["checks"] if c["code"] == "permit_missing"] == [
        "A shop selling Food needs the 食品经营许可证: list it under qualifications with its "
        "number and validity, and upload a copy."
    ]
    # when: a PATCH names another trade, one that needs nothing
    patched = agent.patch(
        f"/api/certification/applications/{application['id']}",
        {"business_category": "general"},
        content_type="application/json",
    )
    assert patched.status_code == 200, patched.json()
    assert patched.json()["business_category"]["code"] == "general"


def test_a_manager_adds_a_level_checked_like_an_edit(agent: Client) -> None:
    # given
    manager = _client(make_user(Role.OPERATIONS_MANAGER))
    gold = {
        "code": "gold",
        "applicant_kind": "individual",
        "name": "金牌认证",
        "name_en": "Gold",
        "rank": 3,
        "min_credit_score": 750,
        "required_documents": ["id_front", "id_back"],
        "fallback": "trusted",
    }
    # when: an agent tries, then a fallback of the other kind, then a well-formed one
    assert _post(agent, "/api/certification/levels", gold).status_code == 403
    wrong = _post(manager, "/api/certification/levels", {**gold, "fallback": "business"})
    created = _post(manager, "/api/certification/levels", gold)
    again = _post(manager, "/api/certification/levels", gold)
    # then
    assert wrong.status_code == 422
    assert (
        "level gold.fallback: business is a level for business customers"
        in (wrong.json()["message"])
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert (body["fallback"], body["min_credit_score"], body["validity_days"]) == (
        "trusted",
        750,
        365,
    )
    assert again.status_code == 409
    assert CertificationLevel.objects.filter(code="gold").count() == 1
    audit = AuditEvent.objects.get(entity_type="certification.level", action="create")
    assert audit.entity_id == "gold" and audit.changes["new"]["fallback"] == "trusted"
    # and a level without its names is refused naming the field
    nameless = _post(
        manager,
        "/api/certification/levels",
        {"code": "silver", "applicant_kind": "individual", "rank": 2},
    )
    assert nameless.status_code == 422
    assert nameless.json()["message"] == "level silver.name: required for a new level"


def test_levels_are_listed_and_their_criteria_edited(customer: Customer) -> None:
    # given
    manager = _client(make_user(Role.OPERATIONS_MANAGER))
    assert [level["code"] for level in manager.get("/api/certification/levels").json()] == [
        "business",
        "identity",
        "trusted",
    ]
    # when
    edited = manager.patch(
        "/api/certification/levels/trusted",
        {
            "min_credit_score": None,
            "required_documents": ["id_back", "id_front", "id_back"],
            "rank": None,
        },
        content_type="application/json",
    )
    # then: null removes the minimum score, and leaves the rank as it was
    assert edited.status_code == 200
    body = edited.json()
    assert body["min_credit_score"] is None and body["rank"] == 2
    assert body["required_documents"] == ["id_back", "id_front"]
    audit = AuditEvent.objects.get(entity_type="certification.level")
    assert audit.summary == "level trusted criteria changed: min_credit_score, required_documents"
    assert audit.changes == {
        "old": {"min_credit_score": 650, "required_documents": ["id_front", "id_back"]},
        "new": {"min_credit_score": None, "required_documents": ["id_back", "id_front"]},
    }
    refused = manager.patch(
        "/api/certification/levels/trusted",
        {"required_documents": ["passport"], "validity_days": 0},
        content_type="application/json",
    )
    assert refused.status_code == 422
    assert refused.json()["message"] == (
        "invalid request: body.body.required_documents.0, body.body.validity_days"
    )
    assert (
        manager.patch(
            "/api/certification/levels/gold", {"rank": 5}, content_type="application/json"
        ).status_code
        == 404
    )


def test_a_levels_fallback_is_shown_set_removed_and_validated() -> None:
    # given
    manager = _client(make_user(Role.OPERATIONS_MANAGER))
    levels = {level["code"]: level for level in manager.get("/api/certification/levels").json()}
    assert {code: level["fallback"] for code, level in levels.items()} == {
        "business": None,
        "identity": None,
        "trusted": "identity",
    }
    # when: null removes it, a code sets it, absent leaves it
    removed = manager.patch(
        "/api/certification/levels/trusted", {"fallback": None}, content_type="application/json"
    )
    restored = manager.patch(
        "/api/certification/levels/trusted",
        {"fallback": "identity"},
        content_type="application/json",
    )
    untouched = manager.patch(
        "/api/certification/levels/trusted", {"remind_days": 20}, content_type="application/json"
    )
    # then
    assert [r.json()["fallback"] for r in (removed, restored, untouched)] == [
        None,
        "identity",
        "identity",
    ]
    # and a loop, a higher or another kind's level is refused naming the level and the field
    refused = manager.patch(
        "/api/certification/levels/identity",
        {"fallback": "trusted"},
        content_type="application/json",
    )
    assert refused.status_code == 422
    assert refused.json()["message"].startswith(
        "level identity.fallback: the fallbacks would loop (identity → trusted → identity)"
    )
    assert CertificationLevel.objects.get(code="identity").fallback_id is None
    malformed = manager.patch(
        "/api/certification/levels/trusted", {"fallback": "a b"}, content_type="application/json"
    )
    assert malformed.status_code == 422


def test_a_downgraded_certification_names_the_level_it_replaced(
    reviewer: Client, customer: Customer
) -> None:
    # given an identity certification that replaced an expired trusted one
    trusted = _certified(customer)
    expiry = trusted.granted_at + timedelta(days=365)
    Certification.objects.filter(pk=trusted.pk).update(
        level=CertificationLevel.objects.get(code="trusted"), expires_at=expiry
    )
    assert services.certifications_reverify(now=expiry).downgraded == 1
    # when
    shown = reviewer.get(f"/api/customers/{customer.pk}/certification").json()
    # then
    assert (shown["level_code"], shown["downgraded_from"]) == ("identity", "trusted")
    revoked = _post(
        reviewer, f"/api/certification/certifications/{trusted.pk}/revoke", {"reason": "伪造"}
    )
    assert revoked.status_code == 409
    assert f"downgraded to certification {shown['id']} (identity)" in revoked.json()["message"]


def test_the_minimum_spend_is_edited_in_yuan() -> None:
    # given
    manager = _client(make_user(Role.OPERATIONS_MANAGER))
    # when
    edited = manager.patch(
        "/api/certification/levels/trusted",
        {"min_spend_12m": 1500.5},
        content_type="application/json",
    )
    # then
    assert edited.status_code == 200
    assert edited.json()["min_spend_12m"] == "1500.50"
    assert CertificationLevel.objects.get(code="trusted").min_spend_12m == Decimal("1500.50")
    audited = AuditEvent.objects.get(entity_type="certification.level")
    assert audited.changes == {
        "old": {"min_spend_12m": "0.00"},
        "new": {"min_spend_12m": "1500.50"},
    }


def test_the_process_figures(agent_user: User, reviewer: Client, customer: Customer) -> None:
    # given
    _certified(customer)
    _pending(agent_user, make_customer(name="李四"), id_number=ID_JIANGXI)
    # when
    response = reviewer.get("/api/certification/stats?days=30")
    # then
    assert response.status_code == 200
    stats = response.json()
    assert (stats["days"], stats["decided"], stats["approved"], stats["rejected"]) == (
        30,
        1,
        0 + 1,
        0,
    )
    assert (stats["backlog"], stats["ready_to_decide"], stats["active_certifications"]) == (1, 1, 1)
    assert (stats["mean_round_trips"], stats["one_step_share"]) == (0.0, 1.0)
    assert reviewer.get("/api/certification/stats?days=0").status_code == 422


# ---------------------------------------------------------------------- certifications


def test_a_reviewer_revokes_a_certification(reviewer: Client, customer: Customer) -> None:
    # given
    certification = _certified(customer)
    # when
    revoked = _post(
        reviewer,
        f"/api/certification/certifications/{certification.pk}/revoke",
        {"reason": "证件系伪造"},
    )
    # then
    assert revoked.status_code == 200
    body = revoked.json()
    assert (body["status"], body["end_reason"], body["level_code"]) == (
        "revoked",
        "证件系伪造",
        "identity",
    )
    assert reviewer.get(f"/api/customers/{customer.pk}/certification").json() is None
    fresh = _certified(make_customer(name="李四"))
    assert (
        reviewer.get(f"/api/customers/{fresh.customer_id}/certification").json()["downgraded_from"]
        is None
    )
    again = _post(
        reviewer, f"/api/certification/certifications/{certification.pk}/revoke", {"reason": "x"}
    )
    assert again.status_code == 409


def test_the_link_for_the_applicant(agent: Client, customer: Customer) -> None:
    # when
    response = _post(agent, f"/api/customers/{customer.pk}/certification/link")
    # then
    assert response.status_code == 200
    body = response.json()
    assert "/apply/" in body["url"] and body["expires_in_days"] == 30
    from patron.certification.tokens import applicant_customer

    token = body["url"].split("/apply/")[1].rstrip("/")
    assert applicant_customer(token) == customer.pk
    assert _post(agent, "/api/customers/999999/certification/link").status_code == 404
    auditor = _client(make_user(Role.AUDITOR))
    refused = _post(auditor, f"/api/customers/{customer.pk}/certification/link")
    assert refused.status_code == 403


# ---------------------------------------------------------------------- change requests


def test_a_change_of_phone_waits_for_another_reviewer(
    agent: Client, reviewer: Client, customer: Customer
) -> None:
    # given
    _certified(customer)
    # when
    filed = _post(
        agent,
        "/api/certification/changes",
        {"customer_id": customer.pk, "changes": {"phone": "13900001111"}, "reason": "换号"},
    )
    # then
    assert filed.status_code == 201, filed.json()
    change = filed.json()
    assert (change["status"], change["fields"], change["source"]) == (
        "pending",
        ["phone"],
        "api",
    )
    assert change["changes"] == {"phone": {"old": "138****8000", "new": "139****1111"}}
    assert Customer.objects.get(pk=customer.pk).phone == "13800138000"  # nothing yet
    listed = reviewer.get(f"/api/certification/changes?customer_id={customer.pk}").json()
    assert [c["id"] for c in listed] == [change["id"]]
    # when: the agent who filed it tries to approve
    own = _post(agent, f"/api/certification/changes/{change['id']}/approve", {"reason": "ok"})
    # then
    assert own.status_code == 403
    assert ChangeRequest.objects.get(pk=change["id"]).status == "pending"
    # when: another reviewer approves
    approved = _post(
        reviewer, f"/api/certification/changes/{change['id']}/approve", {"reason": "已核实"}
    )
    # then
    assert approved.status_code == 200
    assert (approved.json()["status"], approved.json()["decided_by"]) == ("approved", "analyst-li")
    assert approved.json()["changes"] == {"phone": {"old": "13800138000", "new": "13900001111"}}
    assert Customer.objects.get(pk=customer.pk).phone == "13900001111"
    assert (
        reviewer.get("/api/certification/changes?status=approved").json()[0]["id"] == (change["id"])
    )


def test_the_requester_withdraws_a_change_waiting_for_review(
    agent: Client, reviewer: Client, customer: Customer
) -> None:
    # given
    _certified(customer)
    filed = _post(
        agent,
        "/api/certification/changes",
        {"customer_id": customer.pk, "changes": {"phone": "13900139001"}, "reason": "新号码"},
    ).json()
    # when
    withdrawn = _post(
        agent, f"/api/certification/changes/{filed['id']}/withdraw", {"reason": "号码输错"}
    )
    # then
    assert withdrawn.status_code == 200
    assert (withdrawn.json()["status"], withdrawn.json()["decision_reason"]) == (
        "withdrawn",
        "号码输错",
    )
    again = _post(agent, f"/api/certification/changes/{filed['id']}/withdraw", {"reason": "x"})
    assert again.status_code == 409
    blank = _post(agent, f"/api/certification/changes/{filed['id']}/withdraw", {"reason": " "})
    assert blank.status_code == 422
    auditor = _client(make_user(Role.AUDITOR))
    assert _post(
        auditor, "/api/certification/changes/999999/withdraw", {"reason": "x"}
    ).status_code in (
        403,
        404,
    )
    assert (
        _post(agent, "/api/certification/changes/999999/withdraw", {"reason": "x"}).status_code
        == 404
    )


def test_a_reviewer_cannot_approve_the_change_they_filed(customer: Customer) -> None:
    # given
    _certified(customer)
    manager = _client(make_user(Role.OPERATIONS_MANAGER))
    change = _post(
        manager,
        "/api/certification/changes",
        {"customer_id": customer.pk, "changes": {"real_name": "张叁"}, "reason": "改名"},
    ).json()
    # when
    own = _post(manager, f"/api/certification/changes/{change['id']}/approve", {"reason": "ok"})
    # then
    assert own.status_code == 403
    assert own.json()["message"] == (
        "you filed this change request: another reviewer must decide it"
    )
    assert ChangeRequest.objects.get(pk=change["id"]).status == "pending"
    rejected = _post(
        _client(make_user(Role.RISK_ANALYST)),
        f"/api/certification/changes/{change['id']}/reject",
        {"reason": "无改名证明"},
    )
    assert rejected.json()["status"] == "rejected"


def test_a_malformed_new_id_number_is_refused_naming_the_field(
    agent: Client, customer: Customer
) -> None:
    # given
    _certified(customer)
    # when
    response = _post(
        agent,
        "/api/certification/changes",
        {"customer_id": customer.pk, "changes": {"id_number": ID_BAD_CHECK_DIGIT}, "reason": "x"},
    )
    # then
    assert response.status_code == 422
    body = response.json()
    assert body["message"] == (
        "change request: The resident ID number is mistyped: its last character should be X, not 1."
    )
    assert [(c["code"], c["field"]) for c in body["details"]["prechecks"]] == [
        ("id_number_checksum", "id_number")
    ]
    assert not ChangeRequest.objects.exists()
    assert Customer.objects.get(pk=customer.pk).id_number == ID_BEIJING


def test_a_change_outside_the_certified_profile_is_refused(
    agent: Client, customer: Customer
) -> None:
    # given
    _certified(customer)
    # when
    not_certified = _post(
        agent,
        "/api/certification/changes",
        {
            "customer_id": customer.pk,
            "changes": {"credit_code": "91110000802100433B"},
            "reason": "x",
        },
    )
    unknown_field = _post(
        agent,
        "/api/certification/changes",
        {"customer_id": customer.pk, "changes": {"email": "a@example.com"}, "reason": "x"},
    )
    other = _post(
        agent,
        "/api/certification/changes",
        {"customer_id": make_customer().pk, "changes": {"id_number": ID_JIANGXI}, "reason": "x"},
    )
    # then
    assert not_certified.status_code == 422
    assert not_certified.json()["message"] == (
        "change request: 'credit_code' is not a certified field of this individual customer "
        "(certified fields: real_name, id_number, phone)"
    )
    assert unknown_field.status_code == 422
    assert other.status_code == 409
    assert not ChangeRequest.objects.exists()


def test_a_change_of_name_waits_for_its_evidence_then_is_approved(
    agent: Client, reviewer: Client, customer: Customer
) -> None:
    # given: a change of the certified real name, filed without the new ID card
    _certified(customer)
    change = _post(
        agent,
        "/api/certification/changes",
        {"customer_id": customer.pk, "changes": {"real_name": "张叁"}, "reason": "改名"},
    ).json()
    missing = [c for c in change["checks"] if c["code"] == "document_missing"]
    assert [c["text"] for c in missing] == [
        "Upload the new ID card (photo side): a change of the real name needs it."
    ]
    # when: approved without it
    early = _post(reviewer, f"/api/certification/changes/{change['id']}/approve", {"reason": "ok"})
    # then: refused, nothing changed
    assert early.status_code == 409
    assert "Upload the new ID card (photo side)" in early.json()["message"]
    assert ChangeRequest.objects.get(pk=change["id"]).status == "pending"
    # when: the evidence is attached, then approved
    uploaded = agent.post(
        f"/api/certification/changes/{change['id']}/documents",
        {"kind": "id_front", "file": SimpleUploadedFile("new-id.png", PNG, "image/png")},
    )
    assert uploaded.status_code == 201, uploaded.json()
    approved = _post(
        reviewer, f"/api/certification/changes/{change['id']}/approve", {"reason": "ok"}
    )
    # then
    assert approved.status_code == 200, approved.json()
    body = approved.json()
    assert body["status"] == "approved"
    assert [(d["kind"], d["filename"]) for d in body["documents"]] == [("id_front", "new-id.png")]
    # and nothing more is attached once it is decided
    late = agent.post(
        f"/api/certification/changes/{change['id']}/documents",
        {"kind": "id_front", "file": SimpleUploadedFile("again.png", PNG, "image/png")},
    )
    assert late.status_code == 409
    assert Document.objects.filter(change_request_id=change["id"]).count() == 1


def test_evidence_is_checked_like_any_document_and_only_by_those_who_may_file(
    agent: Client, customer: Customer
) -> None:
    _certified(customer)
    change = _post(
        agent,
        "/api/certification/changes",
        {"customer_id": customer.pk, "changes": {"real_name": "张叁"}, "reason": "改名"},
    ).json()
    url = f"/api/certification/changes/{change['id']}/documents"
    not_an_image = agent.post(
        url, {"kind": "id_front", "file": SimpleUploadedFile("x.png", b"MZ\x90\x00", "image/png")}
    )
    assert not_an_image.status_code == 422
    marketer = _client(make_user(Role.MARKETER))
    assert (
        marketer.post(
            url, {"kind": "id_front", "file": SimpleUploadedFile("x.png", PNG, "image/png")}
        ).status_code
        == 403
    )
    assert not Document.objects.filter(change_request_id=change["id"]).exists()


def test_the_change_list_reads_the_same_number_of_queries_for_one_request_or_many() -> None:
    # given: one change request waiting, then three more
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from patron.certification.selectors import change_request_list

    reviewer = make_user(Role.RISK_ANALYST, username="analyst-zhou")

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            listed = change_request_list(user=reviewer)
        assert all(view.checks for view in listed)  # each names the document it still needs
        return len(captured)

    _waiting_change(make_customer(name="甲"))
    queries()  # the reviewer's permissions are read (and kept) on the first call
    one = queries()
    for name in ("乙", "丙", "丁"):
        _waiting_change(make_customer(name=name))
    # when
    four = queries()
    # then: no query per request (the documents are read once for all)
    assert len(change_request_list(user=reviewer)) == 4
    assert four == one
