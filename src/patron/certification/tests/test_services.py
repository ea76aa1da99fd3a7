"""Certification workflows through the services: apply, pre-check, review, grant, re-verify,
change requests — with the refusals that must leave nothing changed."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from patron.account.roles import Role
from patron.audit.models import AuditEvent
from patron.certification import selectors, services
from patron.certification.models import (
    Application,
    BusinessCategory,
    Certification,
    CertificationLevel,
    ChangeRequest,
    Document,
)
from patron.conftest import make_customer, make_order, make_user
from patron.customer.models import Customer
from patron.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from patron.outbox.models import Message
from patron.privacy.crypto import lookup_hash
from patron.scoring.models import CustomerScore, ScoreRun

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + b"0" * 64
PDF = b"%PDF-1.4\n%%EOF\n"
PERSON = services.ApplicationData(
    real_name="张三", id_number="11010519491231002X", phone="13800138000"
)


@pytest.fixture
def agent() -> Any:
    return make_user(Role.SERVICE_AGENT, username="agent-wang")


@pytest.fixture
def reviewer() -> Any:
    return make_user(Role.OPERATIONS_MANAGER, username="manager-li")


@pytest.fixture
def customer() -> Customer:
    return make_customer(name="张三", email="zhang@example.com")


def _documents(
    user: Any, application: Application, kinds: tuple[str, ...] = ("id_front", "id_back")
) -> None:
    for kind in kinds:
        services.document_add(
            user=user, application_id=application.pk, kind=kind, filename=f"{kind}.png", content=PNG
        )


def _submitted(
    user: Any, customer: Customer, data: services.ApplicationData = PERSON, level: str = "identity"
) -> Application:
    application = services.application_create(
        user=user, customer_id=customer.pk, level_code=level, data=data
    )
    _documents(user, application)
    return services.application_submit(user=user, application_id=application.pk)


def test_the_default_levels_are_installed() -> None:
    assert list(CertificationLevel.objects.values_list("code", flat=True).order_by("rank")) == [
        "identity",
        "trusted",
        "business",
    ]
    assert services.levels_seed() == 0  # already there


def test_a_complete_application_goes_to_the_reviewer_with_its_prechecks(
    agent: Any, customer: Customer
) -> None:
    # when
    application = _submitted(agent, customer)
    # then
    application.refresh_from_db()
    assert application.status == "pending"
    assert application.submitted_at is not None
    codes = {c["code"]: c["passed"] for c in application.prechecks}
    assert codes["id_number_valid"] and codes["phone_valid"] and codes["no_duplicate"]
    assert [e.action for e in application.events.all()] == ["create", "upload", "upload", "submit"]
    row = selectors.application_queue(user=agent)[1][0]
    assert (row.id, row.is_ready, row.hard_failures) == (application.pk, True, 0)


def test_a_failed_hard_check_returns_the_application_to_the_applicant_at_once(
    agent: Any, customer: Customer
) -> None:
    # given a mistyped ID number
    data = services.ApplicationData(
        real_name="张三", id_number="11010519491231002Y", phone="13800138000"
    )
    # when
    application = _submitted(agent, customer, data)
    # then nobody reviews it: it is back with the applicant, who is told exactly what to fix
    assert application.status == "needs_info"
    assert application.submitted_at is None
    assert application.info_requested == (
        "The resident ID number is mistyped: its last character should be X, not Y."
    )
    message = Message.objects.get(template="certification.info_requested")
    assert message.customer_id == customer.pk
    assert "should be X, not Y" in message.body
    assert "/apply/" in message.body
    # when the applicant corrects it and submits again
    services.application_update(user=agent, application_id=application.pk, data=PERSON)
    application = services.application_submit(user=agent, application_id=application.pk)
    assert application.status == "pending"
    assert application.round_trips == 0  # an automatic return is not a reviewer's round trip


def test_approval_grants_the_level_and_the_verified_facts_reach_the_customer_file(
    agent: Any, reviewer: Any, customer: Customer
) -> None:
    application = _submitted(agent, customer)
    # when
    certification = services.application_approve(
        user=reviewer, application_id=application.pk, reason="ID card photos match"
    )
    # then
    assert certification.level.code == "identity"
    assert certification.expires_at - certification.granted_at == timedelta(days=730)
    customer.refresh_from_db()
    assert customer.id_number == "11010519491231002X"
    assert customer.id_number_hash == lookup_hash("11010519491231002X", kind="id_number")
    view = selectors.certification_of(customer.pk)
    assert view is not None and (view.level_code, view.level_name) == ("identity", "实名认证")
    assert Message.objects.filter(template="certification.approved", customer=customer).count() == 1
    application.refresh_from_db()
    assert (application.status, application.decided_by, application.granted_level_id) == (
        "approved",
        reviewer,
        certification.level_id,
    )


def test_whoever_filed_cannot_decide_and_nothing_changes(customer: Customer) -> None:
    manager = make_user(Role.OPERATIONS_MANAGER, username="manager-zhou")
    application = _submitted(manager, customer)
    with pytest.raises(PermissionDenied, match="another reviewer must decide"):
        services.application_approve(user=manager, application_id=application.pk, reason="ok")
    application.refresh_from_db()
    assert application.status == "pending"
    assert not Certification.objects.exists()


def test_an_agent_cannot_review(agent: Any, customer: Customer) -> None:
    application = _submitted(agent, customer)
    other_agent = make_user(Role.SERVICE_AGENT, username="agent-zhao")
    with pytest.raises(PermissionDenied):
        services.application_approve(user=other_agent, application_id=application.pk, reason="ok")
    assert Application.objects.get(pk=application.pk).status == "pending"


def test_a_level_whose_criteria_are_unmet_is_refused_and_a_lower_one_can_be_granted(
    agent: Any, reviewer: Any, customer: Customer
) -> None:
    run = ScoreRun.objects.create(
        as_of=date(2026, 11, 1), status="completed", started_at=timezone.now()
    )
    CustomerScore.objects.create(
        customer=customer, run=run, as_of=run.as_of, credit_score=580, grade="ordinary"
    )
    application = _submitted(agent, customer, level="trusted")
    assert application.status == "pending"  # soft checks never stop a submission
    failed = [c["code"] for c in application.prechecks if not c["passed"]]
    assert failed == ["credit_score", "paid_orders", "tenure"]
    with pytest.raises(
        Conflict,
        match=r"does not meet level trusted: Credit score 580 \(this level needs at least 650\)",
    ):
        services.application_approve(user=reviewer, application_id=application.pk, reason="ok")
    assert Application.objects.get(pk=application.pk).status == "pending"
    certification = services.application_approve(
        user=reviewer, application_id=application.pk, reason="identity only", level_code="identity"
    )
    assert certification.level.code == "identity"
    with pytest.raises(Conflict, match="is for business customers"):
        services.application_approve(
            user=reviewer,
            application_id=_submitted(agent, make_customer(name="李四")).pk,
            reason="x",
            level_code="business",
        )


def test_a_reviewer_asks_for_more_information_a_round_trip(
    agent: Any, reviewer: Any, customer: Customer
) -> None:
    application = _submitted(agent, customer)
    services.application_start_review(user=reviewer, application_id=application.pk)
    application = services.application_request_info(
        user=reviewer,
        application_id=application.pk,
        missing="The ID photo is blurred: upload a sharper one.",
    )
    assert (application.status, application.round_trips, application.reviewer) == (
        "needs_info",
        1,
        None,
    )
    assert Message.objects.filter(template="certification.info_requested").count() == 1
    _documents(agent, application, ("id_front",))
    application = services.application_submit(user=agent, application_id=application.pk)
    assert application.status == "pending"
    services.application_approve(user=reviewer, application_id=application.pk, reason="sharp now")
    stats = selectors.process_stats(user=reviewer)
    assert (stats.decided, stats.approved, stats.mean_round_trips, stats.one_step_share) == (
        1,
        1,
        1.0,
        0.0,
    )


def test_someone_else_cannot_decide_an_application_under_review(
    agent: Any, reviewer: Any, customer: Customer
) -> None:
    application = _submitted(agent, customer)
    services.application_start_review(user=reviewer, application_id=application.pk)
    other = make_user(Role.RISK_ANALYST, username="analyst-sun")
    with pytest.raises(Conflict, match="being reviewed by someone else"):
        services.application_reject(user=other, application_id=application.pk, reason="no")
    services.application_release(user=reviewer, application_id=application.pk)
    assert (
        services.application_reject(
            user=other, application_id=application.pk, reason="photos fake"
        ).status
        == "rejected"
    )


def test_one_live_application_per_customer(agent: Any, customer: Customer) -> None:
    services.application_create(
        user=agent, customer_id=customer.pk, level_code="identity", data=PERSON
    )
    with pytest.raises(Conflict, match="already has an application in progress"):
        services.application_create(
            user=agent, customer_id=customer.pk, level_code="identity", data=PERSON
        )
    assert Application.objects.count() == 1


def test_illegal_transitions_are_refused(agent: Any, reviewer: Any, customer: Customer) -> None:
    application = services.application_create(
        user=agent, customer_id=customer.pk, level_code="identity", data=PERSON
    )
    with pytest.raises(Conflict, match="the application is draft: cannot approve"):
        services.application_approve(user=reviewer, application_id=application.pk, reason="x")
    with pytest.raises(ValidationFailed, match="a reason is required"):
        services.application_reject(user=reviewer, application_id=application.pk, reason="  ")


def test_the_applicant_reaches_only_their_own_application(customer: Customer) -> None:
    # given an application filed through the public link
    application = services.application_create(
        user=None,
        customer_id=customer.pk,
        level_code="identity",
        data=PERSON,
        channel="public",
        applicant_customer_id=customer.pk,
    )
    stranger = make_customer(name="王五")
    # then another customer's link cannot create for, read or touch it
    with pytest.raises(PermissionDenied):
        services.application_create(
            user=None,
            customer_id=customer.pk,
            level_code="identity",
            data=PERSON,
            applicant_customer_id=stranger.pk,
        )
    with pytest.raises(NotFound):
        services.document_add(
            user=None,
            application_id=application.pk,
            kind="id_front",
            filename="a.png",
            content=PNG,
            applicant_customer_id=stranger.pk,
        )
    with pytest.raises(NotFound):
        services.application_submit(
            user=None, application_id=application.pk, applicant_customer_id=stranger.pk
        )
    assert Document.objects.count() == 0
    assert [a.id for a in selectors.applicant_view(customer_id=stranger.pk).applications] == []


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"hello", "only PDF, JPEG and PNG"),
        (b"", "the file is empty"),
        (b"MZ\x90\x00", "only PDF, JPEG and PNG"),
    ],
)
def test_documents_are_checked_by_their_bytes(
    agent: Any, customer: Customer, content: bytes, words: str
) -> None:
    application = services.application_create(
        user=agent, customer_id=customer.pk, level_code="identity", data=PERSON
    )
    with pytest.raises(ValidationFailed, match=words):
        services.document_add(
            user=agent,
            application_id=application.pk,
            kind="id_front",
            filename="x.pdf",
            content=content,
        )
    assert Document.objects.count() == 0


def test_a_document_over_the_size_limit_is_refused(
    agent: Any, customer: Customer, settings: Any
) -> None:
    settings.PATRON_CERT_MAX_DOCUMENT_BYTES = 100
    application = services.application_create(
        user=agent, customer_id=customer.pk, level_code="identity", data=PERSON
    )
    with pytest.raises(ValidationFailed, match="200 bytes is over the limit of 100"):
        services.document_add(
            user=agent,
            application_id=application.pk,
            kind="id_front",
            filename="big.pdf",
            content=PDF + b"0" * (200 - len(PDF)),
        )


def test_documents_are_encrypted_at_rest_and_reads_are_audited(
    agent: Any, reviewer: Any, customer: Customer
) -> None:
    application = services.application_create(
        user=agent, customer_id=customer.pk, level_code="identity", data=PERSON
    )
    document = services.document_add(
        user=agent,
        application_id=application.pk,
        kind="id_front",
        filename="../../etc/id.pdf",
        content=PDF,
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT content FROM certification_document WHERE id = %s", [document.pk])
        raw = bytes(cursor.fetchone()[0])
    assert PDF not in raw and raw.startswith(b"v1:")
    assert (document.filename, document.content_type) == ("id.pdf", "application/pdf")
    with pytest.raises(PermissionDenied):
        selectors.document_read(user=agent, document_id=document.pk)
    read = selectors.document_read(user=reviewer, document_id=document.pk)
    assert read.content == PDF
    assert (
        AuditEvent.objects.filter(entity_type="certification.document", action="access").count()
        == 1
    )
    assert (
        selectors.document_read(
            user=None, document_id=document.pk, applicant_customer_id=customer.pk
        ).content
        == PDF
    )
    with pytest.raises(NotFound):
        selectors.document_read(
            user=None, document_id=document.pk, applicant_customer_id=customer.pk + 1
        )


def test_personal_data_in_applications_is_encrypted_at_rest(agent: Any, customer: Customer) -> None:
    application = services.application_create(
        user=agent, customer_id=customer.pk, level_code="identity", data=PERSON
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT real_name, id_number, phone FROM certification_application WHERE id = %s",
            [application.pk],
        )
        row = cursor.fetchone()
    assert all(str(v).startswith("v1:") for v in row)


def test_a_certified_business_is_checked_on_its_code_and_representative(
    agent: Any, reviewer: Any
) -> None:
    company = make_customer(name="某某科技")
    data = services.ApplicationData(
        company_name="北京某某科技有限公司",
        credit_code="91110000802100433B",
        legal_rep_name="李四",
        legal_rep_id_number="360426199101010071",
        phone="13800138000",
        qualifications=({"name": "食品经营许可证", "number": "JY1", "valid_until": "2030-01-01"},),
    )
    application = services.application_create(
        user=agent, customer_id=company.pk, level_code="business", data=data
    )
    _documents(agent, application, ("business_licence", "legal_rep_id"))
    application = services.application_submit(user=agent, application_id=application.pk)
    assert application.status == "pending", application.prechecks
    services.application_approve(
        user=reviewer, application_id=application.pk, reason="licence checked"
    )
    company.refresh_from_db()
    assert (company.kind, company.company_name) == ("business", "北京某某科技有限公司")


SHOP = services.ApplicationData(
    company_name="北京某某食品有限公司",
    credit_code="91110000802100433B",
    legal_rep_name="李四",
    legal_rep_id_number="360426199101010071",
    phone="13800138000",
    business_category="food",
)


def test_a_food_shop_is_sent_back_for_its_permit_then_passes_with_it(agent: Any) -> None:
    # given: a food shop that names its trade but lists no permit
    company = make_customer(name="某某食品")
    application = services.application_create(
        user=agent, customer_id=company.pk, level_code="business", data=SHOP
    )
    _documents(agent, application, ("business_licence", "legal_rep_id"))
    # when
    application = services.application_submit(user=agent, application_id=application.pk)
    # then: straight back to the applicant, told which permit and that a copy is needed
    assert application.status == "needs_info"
    failed = [c["code"] for c in application.prechecks if c["hard"] and not c["passed"]]
    assert failed == ["permit_missing", "permit_copy_missing"]
    # when: they list it and upload it
    services.application_update(
        user=agent,
        application_id=application.pk,
        data=dataclasses.replace(
            SHOP, qualifications=({"name": "食品经营许可证", "number": "JY1", "valid_until": None},)
        ),
    )
    _documents(agent, application, ("qualification",))
    application = services.application_submit(user=agent, application_id=application.pk)
    # then
    assert application.status == "pending", application.prechecks
    assert application.business_category is not None
    assert application.business_category.code == "food"
    detail = selectors.application_detail(user=agent, application_id=application.pk)
    assert detail.business_category is not None
    assert detail.business_category.required_permits == ["食品经营许可证"]


def test_an_unknown_trade_is_refused_naming_the_field(agent: Any) -> None:
    company = make_customer(name="某某食品")
    with pytest.raises(ValidationFailed, match="business_category: no trade 'bakery'"):
        services.application_create(
            user=agent,
            customer_id=company.pk,
            level_code="business",
            data=dataclasses.replace(SHOP, business_category="bakery"),
        )
    assert not Application.objects.filter(customer=company).exists()


def test_a_permit_added_to_the_trade_later_is_asked_for_at_reverification(
    agent: Any, reviewer: Any
) -> None:
    # given: a certified general-merchandise business whose level falls back to a lower one
    CertificationLevel.objects.create(
        code="business_listed",
        name="企业登记",
        name_en="Registered business",
        applicant_kind="business",
        rank=2,
        required_documents=["business_licence"],
        validity_days=730,
        requires_no_restrictions=False,
    )
    services.level_update(user=reviewer, code="business", changes={"fallback": "business_listed"})
    company = make_customer(name="某某百货")
    data = dataclasses.replace(SHOP, business_category="general")
    application = services.application_create(
        user=agent, customer_id=company.pk, level_code="business", data=data
    )
    _documents(agent, application, ("business_licence", "legal_rep_id"))
    application = services.application_submit(user=agent, application_id=application.pk)
    assert application.status == "pending", application.prechecks
    services.application_approve(user=reviewer, application_id=application.pk, reason="ok")
    certification = Certification.objects.get(customer=company, status="active")
    assert services.certification_profile(certification)["business_category"] == "general"
    at_expiry = certification.expires_at + timedelta(minutes=1)
    assert services._expiry_outcome(certification, now=at_expiry).action == "downgrade"
    # when: the trade needs a permit from now on
    general = BusinessCategory.objects.get(code="general")
    general.required_permits = ["食品经营许可证"]
    services.category_save(user=reviewer, category=general)
    outcome = services._expiry_outcome(certification, now=at_expiry)
    # then: the fallback is not granted, and the permit is why
    assert outcome.action == "expire"
    assert [c["code"] for c in outcome.failed] == ["permit_missing", "permit_copy_missing"]


def test_trades_are_data_that_managers_edit_and_the_audit_keeps(reviewer: Any, agent: Any) -> None:
    bakery = BusinessCategory(code="bakery", name="烘焙", name_en="Bakery")
    bakery.required_permits = [" 食品经营许可证 ", "食品经营许可证", ""]
    with pytest.raises(PermissionDenied):
        services.category_save(user=agent, category=bakery)
    services.category_save(user=reviewer, category=bakery)
    bakery.refresh_from_db()
    assert bakery.required_permits == ["食品经营许可证"]
    event = AuditEvent.objects.get(entity_type="certification.business_category")
    assert (event.action, event.entity_id) == ("create", "bakery")
    bakery.required_permits = "食品经营许可证"  # not a list
    with pytest.raises(ValidationFailed, match=r"bakery.required_permits: a list"):
        services.category_save(user=reviewer, category=bakery)


def test_the_same_id_on_another_customer_is_shown_to_the_reviewer(
    agent: Any, customer: Customer
) -> None:
    other = make_customer(name="张三 (2)")
    other.id_number = "11010519491231002X"
    other.id_number_hash = lookup_hash("11010519491231002X", kind="id_number")
    other.save()
    application = _submitted(agent, customer)
    duplicate = next(c for c in application.prechecks if c["code"] == "duplicate")
    assert duplicate["reason"]["params"]["ids"] == f"#{other.pk}"
    assert application.status == "pending"


# ---------------------------------------------------------------------- re-verification


def _certified(agent: Any, reviewer: Any, customer: Customer) -> Certification:
    return services.application_approve(
        user=reviewer, application_id=_submitted(agent, customer).pk, reason="ok"
    )


def test_reverification_reminds_once_then_expires(
    agent: Any, reviewer: Any, customer: Customer
) -> None:
    certification = _certified(agent, reviewer, customer)
    expires = certification.expires_at
    # far from expiry: nothing
    assert services.certifications_reverify(
        now=expires - timedelta(days=31)
    ) == services.ExpiryResult(0, 0)
    # within the reminder window: one reminder, and a re-run does not remind again
    assert services.certifications_reverify(
        now=expires - timedelta(days=20)
    ) == services.ExpiryResult(1, 0)
    assert services.certifications_reverify(
        now=expires - timedelta(days=19)
    ) == services.ExpiryResult(0, 0)
    assert Message.objects.filter(template="certification.expiring").count() == 1
    # at expiry: downgraded, the customer is told, and a re-run changes nothing
    assert services.certifications_reverify(now=expires) == services.ExpiryResult(0, 1)
    assert services.certifications_reverify(
        now=expires + timedelta(days=1)
    ) == services.ExpiryResult(0, 0)
    certification.refresh_from_db()
    assert certification.status == "expired"
    assert selectors.certification_of(customer.pk) is None
    assert Message.objects.filter(template="certification.expired").count() == 1


def test_a_new_approval_supersedes_the_active_certification(
    agent: Any, reviewer: Any, customer: Customer
) -> None:
    first = _certified(agent, reviewer, customer)
    second = _certified(agent, reviewer, customer)
    first.refresh_from_db()
    assert (first.status, second.status) == ("superseded", "active")


# ---------------------------------------------------------------------- change requests


def test_a_change_to_a_certified_field_waits_for_another_reviewer(
    agent: Any, reviewer: Any, customer: Customer
) -> None:
    _certified(agent, reviewer, customer)
    # when the agent files a change of phone
    request = services.change_request_file(
        user=agent, customer_id=customer.pk, changes={"phone": "13900139000"}, reason="new number"
    )
    # then nothing changes until it is approved
    customer.refresh_from_db()
    assert customer.phone == "13800138000"
    assert services.change_request_values(request) == {
        "phone": {"old": "13800138000", "new": "13900139000"}
    }
    with pytest.raises(Conflict, match="already has a change request waiting"):
        services.change_request_file(
            user=agent, customer_id=customer.pk, changes={"phone": "13700137000"}, reason="x"
        )
    services.change_request_approve(
        user=reviewer, request_id=request.pk, reason="called the customer"
    )
    customer.refresh_from_db()
    assert customer.phone == "13900139000"
    assert (
        services.certification_profile(customer.certifications.get(status="active"))["phone"]
        == "13900139000"
    )
    assert Message.objects.filter(template="change_request.decided").count() == 1


def test_the_requester_cannot_approve_their_own_change(reviewer: Any, customer: Customer) -> None:
    agent = make_user(Role.SERVICE_AGENT, username="agent-qian")
    _certified(agent, reviewer, customer)
    request = services.change_request_file(
        user=reviewer, customer_id=customer.pk, changes={"phone": "13900139000"}, reason="x"
    )
    with pytest.raises(PermissionDenied, match="you filed this change request"):
        services.change_request_approve(user=reviewer, request_id=request.pk, reason="ok")
    assert ChangeRequest.objects.get(pk=request.pk).status == "pending"


def test_a_malformed_new_value_is_refused_naming_the_field(
    agent: Any, reviewer: Any, customer: Customer
) -> None:
    _certified(agent, reviewer, customer)
    with pytest.raises(ValidationFailed, match="resident ID number is mistyped"):
        services.change_request_file(
            user=agent,
            customer_id=customer.pk,
            changes={"id_number": "110105194912310021"},
            reason="x",
        )
    with pytest.raises(ValidationFailed, match="'company_name' is not a certified field"):
        services.change_request_file(
            user=agent, customer_id=customer.pk, changes={"company_name": "x"}, reason="x"
        )
    assert not ChangeRequest.objects.exists()


def test_the_requester_withdraws_a_mistyped_change_and_files_the_right_one(
    agent: Any, reviewer: Any, customer: Customer
) -> None:
    _certified(agent, reviewer, customer)
    mistyped = services.change_request_file(
        user=agent, customer_id=customer.pk, changes={"phone": "13900139001"}, reason="new number"
    )
    # when
    withdrawn = services.change_request_withdraw(
        user=agent, request_id=mistyped.pk, reason="mistyped the number"
    )
    # then: nothing changed, and the right one can be filed
    assert (withdrawn.status, withdrawn.decision_reason, withdrawn.decided_by) == (
        "withdrawn",
        "mistyped the number",
        None,
    )
    customer.refresh_from_db()
    assert customer.phone == "13800138000"
    services.change_request_file(
        user=agent, customer_id=customer.pk, changes={"phone": "13900139000"}, reason="new number"
    )
    with pytest.raises(Conflict, match="the change request is withdrawn: cannot withdraw"):
        services.change_request_withdraw(user=agent, request_id=mistyped.pk, reason="again")
    assert not Message.objects.filter(template="change_request.decided").exists()


def test_only_those_who_may_file_withdraw_a_change(
    agent: Any, reviewer: Any, customer: Customer
) -> None:
    _certified(agent, reviewer, customer)
    request = services.change_request_file(
        user=None,
        customer_id=customer.pk,
        changes={"phone": "13900139000"},
        reason="new number",
        applicant_customer_id=customer.pk,
    )
    stranger = make_customer(name="王五")
    with pytest.raises(NotFound):
        services.change_request_withdraw(
            user=None, request_id=request.pk, reason="x", applicant_customer_id=stranger.pk
        )
    with pytest.raises(PermissionDenied):
        services.change_request_withdraw(
            user=make_user(Role.AUDITOR), request_id=request.pk, reason="x"
        )
    assert ChangeRequest.objects.get(pk=request.pk).status == "pending"
    services.change_request_withdraw(
        user=None, request_id=request.pk, reason="not needed", applicant_customer_id=customer.pk
    )
    assert ChangeRequest.objects.get(pk=request.pk).status == "withdrawn"


def test_an_uncertified_customer_has_nothing_to_request(agent: Any, customer: Customer) -> None:
    with pytest.raises(Conflict, match="has no active certification"):
        services.change_request_file(
            user=agent, customer_id=customer.pk, changes={"phone": "13900139000"}, reason="x"
        )


# ---------------------------------------------------------------------- levels


def test_level_criteria_are_data_and_edits_are_audited(reviewer: Any, agent: Any) -> None:
    services.level_update(
        user=reviewer, code="trusted", changes={"min_credit_score": 600, "min_paid_orders": 2}
    )
    level = CertificationLevel.objects.get(code="trusted")
    assert (level.min_credit_score, level.min_paid_orders) == (600, 2)
    event = AuditEvent.objects.get(entity_type="certification.level")
    assert event.changes == {
        "old": {"min_credit_score": 650, "min_paid_orders": 3},
        "new": {"min_credit_score": 600, "min_paid_orders": 2},
    }
    with pytest.raises(PermissionDenied):
        services.level_update(user=agent, code="trusted", changes={"min_credit_score": 1})
    with pytest.raises(ValidationFailed, match="cannot change code"):
        services.level_update(user=reviewer, code="trusted", changes={"code": "x"})
    with pytest.raises(ValidationFailed, match="required_documents must be a list"):
        services.level_update(
            user=reviewer, code="trusted", changes={"required_documents": ["selfie"]}
        )


def test_history_criteria_count_paid_orders_and_spend(agent: Any, customer: Customer) -> None:
    now = timezone.now()
    for days in (10, 100, 500):
        make_order(
            customer,
            external_id=f"O{days}",
            placed_at=now - timedelta(days=days),
            paid_at=now - timedelta(days=days),
            total="100.00",
        )
    facts = services.customer_facts(customer, hashes={}, now=now)
    assert (facts.paid_orders, facts.spend_12m) == (3, Decimal("200.00"))


def test_the_checkout_policy_names_the_active_certification(
    agent: Any, reviewer: Any, customer: Customer
) -> None:
    from patron.risk.selectors import checkout_policy_of

    shop = make_user(Role.INTEGRATION, username="shop")
    assert checkout_policy_of(user=shop, customer_id=customer.pk).certification is None
    certification = _certified(agent, reviewer, customer)
    assert checkout_policy_of(user=shop, customer_id=customer.pk).certification == "identity"
    # an expired certification no longer counts, even before the job marks it
    Certification.objects.filter(pk=certification.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert checkout_policy_of(user=shop, customer_id=customer.pk).certification is None


@pytest.mark.django_db(transaction=True)  # the extract reads through ADBC, its own connection
def test_the_scoring_extract_carries_certifications(
    agent: Any, reviewer: Any, customer: Customer
) -> None:
    import numpy as np
    import pyarrow as pa

    from patron.intelligence.pipeline import certification_rank
    from patron.scoring.sources import read_tables

    def _certifications() -> pa.Table:
        return read_tables("certifications")["certifications"]

    assert _certifications().num_rows == 0
    _certified(agent, reviewer, customer)
    table = _certifications()
    assert table.column("granted_at").type == pa.timestamp("us", tz="UTC")
    ranks = certification_rank(table, np.array([customer.pk]), timezone.now())
    assert ranks.to_pylist() == [1]


def _import_customer(tmp_path: Any, customer: Customer, **columns: str) -> None:
    from patron.ingest.services import import_file

    path = tmp_path / "customers.csv"
    header = ["external_id", "name", *columns]
    row = [customer.external_id, customer.name, *columns.values()]
    path.write_text(",".join(header) + "\n" + ",".join(row) + "\n", encoding="utf-8")
    assert import_file(kind="customers", path=path, source=customer.source).ok


@pytest.mark.django_db(transaction=True)  # the import signals after its own commit
def test_an_import_that_changes_a_certified_fact_files_a_change_request(
    agent: Any, reviewer: Any, customer: Customer, tmp_path: Any, settings: Any
) -> None:
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}
    _certified(agent, reviewer, customer)
    # when a later import brings another phone for the certified customer
    _import_customer(tmp_path, customer, phone="13900139000", id_number="11010519491231002X")
    # then the file has it, the certified profile does not, and a reviewer is asked
    request = ChangeRequest.objects.get(customer=customer)
    assert (request.source, request.status, request.fields) == ("import", "pending", ["phone"])
    assert services.change_request_values(request) == {
        "phone": {"old": "13800138000", "new": "13900139000"}
    }
    assert services.certified_changes_detect() == 0  # one waiting request is enough
    # when the reviewer rejects it, the file gets the certified phone back
    services.change_request_reject(
        user=reviewer, request_id=request.pk, reason="not the customer's"
    )
    customer.refresh_from_db()
    assert customer.phone == "13800138000"
    assert services.certified_changes_detect() == 0


def test_an_imported_malformed_fact_cannot_be_approved(
    agent: Any, reviewer: Any, customer: Customer
) -> None:
    _certified(agent, reviewer, customer)
    Customer.objects.filter(pk=customer.pk).update(
        id_number_hash=lookup_hash("110105194912310021", kind="id_number")
    )
    customer.refresh_from_db()
    customer.id_number = "110105194912310021"
    customer.save(update_fields=["id_number"])
    assert services.certified_changes_detect() == 1
    request = ChangeRequest.objects.get(customer=customer)
    with pytest.raises(Conflict, match="fail the pre-checks: The resident ID number is mistyped"):
        services.change_request_approve(user=reviewer, request_id=request.pk, reason="ok")
    services.change_request_reject(user=reviewer, request_id=request.pk, reason="typo in import")
    customer.refresh_from_db()
    assert customer.id_number == "11010519491231002X"
