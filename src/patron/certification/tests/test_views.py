"""The certification pages: who may open what, what each form does, how refusals are shown, and
the applicant's page behind the signed link."""

from __future__ import annotations

import json
import re
import time
from datetime import date, timedelta
from unittest import mock

import pytest
from django.test import Client

from patron.account.models import User
from patron.account.roles import Role
from patron.audit.models import AuditEvent
from patron.certification import services, tokens
from patron.certification.models import (
    Application,
    BusinessCategory,
    Certification,
    CertificationLevel,
    ChangeRequest,
    Document,
)
from patron.conftest import ALL_ROLES, NO_ROLE, make_customer, make_user
from patron.customer.models import Customer

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + b"0" * 100
PDF = b"%PDF-1.4\n%%EOF\n"
VALID = services.ApplicationData(
    real_name="张三",
    id_number="11010519491231002X",
    phone="13800138000",
    birth_date=date(1949, 12, 31),
)
MISTYPED = "11010519491231002Y"


def client_for(user: User | None) -> Client:
    client = Client(headers={"accept-language": "en"})
    if user is not None:
        client.force_login(user)
    return client


def text_of(html: str) -> str:
    without_tags = re.sub(r"<script.*?</script>|<[^>]+>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", without_tags).strip()


@pytest.fixture(autouse=True)
def levels() -> None:
    """The default levels: a migration creates them, but a transactional test run before this
    one (the browser tests) flushes the tables."""
    services.levels_seed()


@pytest.fixture
def agent() -> User:
    return make_user(Role.SERVICE_AGENT, username="agent-zhang")


@pytest.fixture
def reviewer() -> User:
    return make_user(Role.OPERATIONS_MANAGER, username="manager-chen")


@pytest.fixture
def analyst() -> User:
    return make_user(Role.RISK_ANALYST, username="analyst-li")


@pytest.fixture
def marketer() -> User:
    return make_user(Role.MARKETER, username="marketer-wu")


@pytest.fixture
def customer() -> Customer:
    return make_customer(name="张三")


@pytest.fixture
def other() -> Customer:
    return make_customer(name="李四")


def _apply(
    user: User | None,
    customer: Customer,
    data: services.ApplicationData = VALID,
    *,
    submit: bool = True,
) -> Application:
    """An identity application with both sides of the ID card, submitted unless told not to."""
    applicant = None if user is not None else customer.pk
    application = services.application_create(
        user=user,
        customer_id=customer.pk,
        level_code="identity",
        data=data,
        channel="staff" if user else "public",
        applicant_customer_id=applicant,
    )
    for kind in ("id_front", "id_back"):
        services.document_add(
            user=user,
            application_id=application.pk,
            kind=kind,
            filename=f"{kind}.png",
            content=PNG,
            applicant_customer_id=applicant,
        )
    if submit:
        application = services.application_submit(
            user=user, application_id=application.pk, applicant_customer_id=applicant
        )
    return application


def _certify(agent: User, reviewer: User, customer: Customer) -> Certification:
    application = _apply(agent, customer)
    return services.application_approve(
        user=reviewer, application_id=application.pk, reason="证件与本人一致"
    )


def _post_forms_have_csrf(html: str) -> bool:
    forms = re.findall(r"<form\b[^>]*method=\"post\"[^>]*>(.*?)</form>", html, flags=re.S)
    return all("csrfmiddlewaretoken" in body for body in forms)


# --- the staff pages render --------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "/certification/",
        "/certification/?status=all&level=identity",
        "/certification/?status=needs_info",
        "/certification/applications/{application}/",
        "/certification/apply/?customer={customer}",
        "/certification/apply/?customer={other}",
        "/certification/changes/",
        "/certification/changes/?status=",
        "/certification/changes/new/?customer={customer}",
        "/certification/levels/",
        "/customers/{customer}/",
    ],
)
def test_each_page_renders_for_a_reviewer(
    agent: User, reviewer: User, customer: Customer, other: Customer, url: str
) -> None:
    # given
    application = _apply(agent, customer)
    page = url.format(application=application.pk, customer=customer.pk, other=other.pk)

    # when
    response = client_for(reviewer).get(page)

    # then
    assert response.status_code == 200
    html = response.content.decode()
    assert _post_forms_have_csrf(html)


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("/certification/", 403),
        ("/certification/levels/", 403),
        ("/certification/changes/", 403),
        ("/certification/apply/?customer={customer}", 403),
    ],
)
def test_a_marketer_may_not_open_the_pages(
    marketer: User, customer: Customer, url: str, status: int
) -> None:
    # when
    response = client_for(marketer).get(url.format(customer=customer.pk))

    # then
    assert response.status_code == status
    assert "You do not have permission to see this page" in response.content.decode()


def test_the_navigation_offers_certification_to_those_who_may_see_it(
    agent: User, marketer: User
) -> None:
    # when
    agent_html = client_for(agent).get("/customers/").content.decode()
    marketer_html = client_for(marketer).get("/customers/").content.decode()

    # then
    assert 'href="/certification/"' in agent_html
    assert 'href="/certification/"' not in marketer_html


# --- the queue ---------------------------------------------------------------------------------


def test_the_queue_shows_what_waits_for_a_reviewer_with_the_process_figures(
    agent: User, reviewer: User, analyst: User, customer: Customer, other: Customer
) -> None:
    # given: one ready to decide, one taken for review, one returned by the pre-checks
    ready = _apply(agent, customer)
    taken = _apply(agent, other)
    services.application_start_review(user=analyst, application_id=taken.pk)
    third = make_customer(name="王五")
    returned = _apply(
        agent, third, services.ApplicationData(**{**VALID.__dict__, "id_number": MISTYPED})
    )
    assert returned.status == "needs_info"

    # when
    html = client_for(reviewer).get("/certification/").content.decode()

    # then: the waiting ones, longest waiting first, with their customer, level and reviewer
    text = text_of(html)
    assert f'data-testid="application-{ready.pk}"' in html
    assert f'data-testid="application-{taken.pk}"' in html
    assert f'data-testid="application-{returned.pk}"' not in html
    assert html.index(f"application-{ready.pk}") < html.index(f"application-{taken.pk}")
    assert f'href="/customers/{customer.pk}/"' in html
    assert (
        f"{ready.pk} 张三 Identity verified identity Waiting for review 0.0 h 0 0 — Ready to decide"
        in text
    )
    # the same ID number as 张三's: a soft failure (a duplicate) for the reviewer to look at
    assert f"{taken.pk} 李四 Identity verified identity In review 0.0 h 1 0 analyst-li" in text
    assert f'data-testid="ready-{ready.pk}"' in html
    assert re.search(r'data-testid="backlog">2 ', html)
    assert re.search(r'data-testid="with-applicant">1<', html)
    assert re.search(r'data-testid="automatic-returns">1<', html)

    # and the returned one under its own tab, with its failed hard check counted
    html = client_for(reviewer).get("/certification/?status=needs_info").content.decode()
    assert f'data-testid="application-{returned.pk}"' in html
    assert f'data-testid="application-{ready.pk}"' not in html
    failures = re.search(rf'data-testid="failures-{returned.pk}">(.*?)</td>', html, flags=re.S)
    assert failures is not None
    assert text_of(failures.group(1)) == "1"


def test_an_unknown_queue_tab_is_a_422_page(reviewer: User) -> None:
    # when
    response = client_for(reviewer).get("/certification/?status=lost")

    # then
    assert response.status_code == 422
    assert "status: one of waiting" in response.content.decode()


# --- one application ---------------------------------------------------------------------------


def test_a_reviewer_approves_from_the_page(agent: User, reviewer: User, customer: Customer) -> None:
    # given
    application = _apply(agent, customer)
    client = client_for(reviewer)
    html = client.get(f"/certification/applications/{application.pk}/").content.decode()
    assert 'data-testid="approve"' in html
    assert "The resident ID number is well formed and its check digit is right." in html

    # when
    response = client.post(
        f"/certification/applications/{application.pk}/",
        {"action": "approve", "reason": "证件与本人一致", "level": "identity"},
    )

    # then
    assert response.status_code == 302
    assert response["Location"] == f"/certification/applications/{application.pk}/"
    application.refresh_from_db()
    assert application.status == "approved"
    assert application.decision_reason == "证件与本人一致"
    certification = Certification.objects.get(customer=customer)
    assert (certification.status, certification.level.code) == ("active", "identity")
    page = client.get(response["Location"]).content.decode()
    assert f"Application #{application.pk} approved: Identity verified until" in page


def test_an_agent_sees_no_decision_and_a_posted_approval_is_refused(
    agent: User, customer: Customer
) -> None:
    # given
    application = _apply(agent, customer)
    client = client_for(agent)

    # when
    html = client.get(f"/certification/applications/{application.pk}/").content.decode()
    response = client.post(
        f"/certification/applications/{application.pk}/",
        {"action": "approve", "reason": "自己批准"},
    )

    # then
    assert 'data-testid="approve"' not in html
    assert 'data-testid="decide-form"' not in html
    assert response.status_code == 403
    assert "You do not have permission to see this page" in response.content.decode()
    application.refresh_from_db()
    assert application.status == "pending"
    assert application.decided_by is None
    assert not Certification.objects.exists()


def test_the_reviewer_who_filed_an_application_may_not_decide_it(
    reviewer: User, customer: Customer
) -> None:
    # given: the manager filed it themself
    application = _apply(reviewer, customer)
    client = client_for(reviewer)

    # when
    html = client.get(f"/certification/applications/{application.pk}/").content.decode()
    response = client.post(
        f"/certification/applications/{application.pk}/",
        {"action": "approve", "reason": "ok"},
    )

    # then
    assert 'data-testid="approve"' not in html
    assert 'data-testid="filed-by-me"' in html
    assert response.status_code == 403
    body = response.content.decode()
    assert "You cannot decide this application." in body
    assert "you filed this application: another reviewer must decide it" in body
    application.refresh_from_db()
    assert application.status == "pending"


def test_a_decision_without_a_reason_is_shown_next_to_the_form(
    agent: User, reviewer: User, customer: Customer
) -> None:
    # given
    application = _apply(agent, customer)

    # when
    response = client_for(reviewer).post(
        f"/certification/applications/{application.pk}/", {"action": "reject", "reason": " "}
    )

    # then
    assert response.status_code == 422
    assert "a reason is required and is recorded" in response.content.decode()
    application.refresh_from_db()
    assert application.status == "pending"


def test_take_release_and_ask_for_more_information(
    agent: User, reviewer: User, customer: Customer
) -> None:
    # given
    application = _apply(agent, customer)
    client = client_for(reviewer)
    url = f"/certification/applications/{application.pk}/"

    # when / then
    assert client.post(url, {"action": "start_review"}).status_code == 302
    application.refresh_from_db()
    assert (application.status, application.reviewer) == ("in_review", reviewer)
    assert 'data-testid="release"' in client.get(url).content.decode()
    assert client.post(url, {"action": "release"}).status_code == 302
    application.refresh_from_db()
    assert (application.status, application.reviewer) == ("pending", None)
    response = client.post(url, {"action": "request_info", "reason": "请上传清晰的身份证背面"})
    assert response.status_code == 302
    application.refresh_from_db()
    assert (application.status, application.round_trips) == ("needs_info", 1)
    assert application.info_requested == "请上传清晰的身份证背面"


def test_the_stated_numbers_are_masked_for_an_agent_and_whole_for_a_reviewer(
    agent: User, reviewer: User, customer: Customer
) -> None:
    # given
    application = _apply(agent, customer)
    url = f"/certification/applications/{application.pk}/"

    # when
    agent_html = client_for(agent).get(url).content.decode()
    reviewer_html = client_for(reviewer).get(url).content.decode()

    # then
    assert "11010519491231002X" not in agent_html
    assert "11010519491231002X" in reviewer_html
    assert 'data-testid="document-' not in agent_html  # no links to documents
    assert "Your role may not open identity documents." in agent_html
    document = Document.objects.filter(application=application).first()
    assert document is not None
    assert f'href="/certification/documents/{document.pk}/"' in reviewer_html


# --- documents ---------------------------------------------------------------------------------


def test_a_reviewer_opens_a_document_inline_and_uncached(
    agent: User, reviewer: User, customer: Customer
) -> None:
    # given
    application = _apply(agent, customer)
    document = Document.objects.get(application=application, kind="id_front")

    # when
    response = client_for(reviewer).get(f"/certification/documents/{document.pk}/")

    # then
    assert response.status_code == 200
    assert response.content == PNG
    assert response["Content-Type"] == "image/png"
    assert response["Content-Disposition"] == 'inline; filename="id_front.png"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cache-Control"] == "no-store"


DOCUMENT_READERS = {Role.ADMINISTRATOR, Role.OPERATIONS_MANAGER, Role.RISK_ANALYST}


@pytest.mark.parametrize("role", [*ALL_ROLES, NO_ROLE])
def test_a_document_opens_for_reviewers_and_is_refused_to_other_roles(
    agent: User, customer: Customer, role: str
) -> None:
    # given
    document = Document.objects.get(application=_apply(agent, customer), kind="id_front")

    # when
    response = client_for(make_user(role)).get(f"/certification/documents/{document.pk}/")

    # then
    if role in DOCUMENT_READERS:
        assert (response.status_code, response.content) == (200, PNG)
    else:
        assert response.status_code == 403
        assert PNG not in response.content


def test_a_document_sends_an_anonymous_visitor_to_log_in(agent: User, customer: Customer) -> None:
    # given
    document = Document.objects.get(application=_apply(agent, customer), kind="id_front")

    # when
    response = client_for(None).get(f"/certification/documents/{document.pk}/")

    # then
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=/certification/documents/")


# --- filing for a customer ---------------------------------------------------------------------


def _form(**fields: str) -> dict[str, object]:
    data: dict[str, object] = {
        "level": "identity",
        "real_name": "张三",
        "id_number": "11010519491231002X",
        "phone": "13800138000",
        "birth_date": "1949-12-31",
        "id_region": "",
        "document_kind_0": "id_front",
        "document_kind_1": "id_back",
        "action": "submit",
    }
    data.update(fields)
    return data


def _files() -> dict[str, object]:
    from django.core.files.uploadedfile import SimpleUploadedFile

    return {
        "document_file_0": SimpleUploadedFile("front.png", PNG, content_type="image/png"),
        "document_file_1": SimpleUploadedFile("back.png", PNG, content_type="image/png"),
    }


def test_an_agent_files_a_complete_application_and_sees_its_prechecks(
    agent: User, customer: Customer
) -> None:
    # given
    client = client_for(agent)

    # when
    response = client.post(f"/certification/apply/?customer={customer.pk}", {**_form(), **_files()})

    # then
    application = Application.objects.get(customer=customer)
    assert response.status_code == 302
    assert response["Location"] == f"/certification/applications/{application.pk}/"
    assert (application.status, application.channel, application.created_by) == (
        "pending",
        "staff",
        agent,
    )
    assert sorted(
        Document.objects.filter(application=application).values_list("kind", flat=True)
    ) == [
        "id_back",
        "id_front",
    ]
    html = client.get(response["Location"]).content.decode()
    assert f"Application #{application.pk} submitted" in html
    assert "The birth date entered (1949-12-31) matches the ID number." in html


def test_a_food_shop_picks_its_trade_and_is_told_the_permit_it_lacks(
    agent: User, reviewer: User
) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    # given: the business form offers the trades with their permits
    company = make_customer(name="某某食品")
    client = client_for(agent)
    page = client.get(f"/certification/apply/?customer={company.pk}").content.decode()
    assert (
        '<option value="food" data-permits="食品经营许可证">Food — 食品经营许可证</option>' in page
    )
    shop = {
        "level": "business",
        "company_name": "北京某某食品有限公司",
        "credit_code": "91110000802100433B",
        "legal_rep_name": "李四",
        "legal_rep_id_number": "360426199101010071",
        "phone": "13800138000",
        "business_category": "food",
        "document_kind_0": "business_licence",
        "document_kind_1": "legal_rep_id",
        "action": "submit",
    }
    files = {
        f"document_file_{i}": SimpleUploadedFile(f"{i}.png", PNG, content_type="image/png")
        for i in (0, 1)
    }
    # when: filed without the permit
    response = client.post(f"/certification/apply/?customer={company.pk}", {**shop, **files})
    # then: back at once, the trade kept selected, the permit named
    html = response.content.decode()
    assert response.status_code == 200
    assert "A shop selling Food needs the 食品经营许可证" in html
    assert '<option value="food" data-permits="食品经营许可证" selected>' in html
    # when: corrected with the permit and its copy
    application = Application.objects.get(customer=company)
    response = client.post(
        f"/certification/apply/?customer={company.pk}",
        {
            **shop,
            "application": str(application.pk),
            "qualification_name_0": "食品经营许可证",
            "qualification_number_0": "JY11105000000001",
            "document_kind_0": "qualification",
            "document_file_0": SimpleUploadedFile(
                "permit.pdf", PDF, content_type="application/pdf"
            ),
            "document_kind_1": "",
        },
    )
    # then: waiting for review; the reviewer reads the trade and what it needs
    assert response.status_code == 302, response.content.decode()[:2000]
    html = client_for(reviewer).get(response["Location"]).content.decode()
    assert "Every permit a shop selling Food needs is listed: 食品经营许可证." in html
    assert re.search(r'data-testid="trade">Food <span[^>]*>\(needs 食品经营许可证\)', html)


def test_a_mistyped_id_number_comes_back_at_once_with_the_fault_and_the_form_kept(
    agent: User, customer: Customer
) -> None:
    # given
    client = client_for(agent)

    # when
    response = client.post(
        f"/certification/apply/?customer={customer.pk}", {**_form(id_number=MISTYPED), **_files()}
    )

    # then
    assert response.status_code == 200
    html = response.content.decode()
    assert "The resident ID number is mistyped: its last character should be X, not Y." in html
    assert f'value="{MISTYPED}"' in html
    application = Application.objects.get(customer=customer)
    assert application.status == "needs_info"
    assert f'name="application" value="{application.pk}"' in html

    # and the corrected form resubmits the same application, documents kept
    response = client.post(
        f"/certification/apply/?customer={customer.pk}",
        _form(application=str(application.pk)),
    )
    assert response.status_code == 302
    application.refresh_from_db()
    assert application.status == "pending"
    assert Application.objects.filter(customer=customer).count() == 1
    assert Document.objects.filter(application=application).count() == 2


def test_a_file_that_is_not_an_image_or_pdf_is_refused_and_nothing_is_written(
    agent: User, customer: Customer
) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    # when
    response = client_for(agent).post(
        f"/certification/apply/?customer={customer.pk}",
        {
            **_form(),
            "document_file_0": SimpleUploadedFile("id.png", b"<html>", content_type="image/png"),
        },
    )

    # then
    assert response.status_code == 422
    assert "only PDF, JPEG and PNG files are accepted" in response.content.decode()
    assert not Application.objects.exists()


def test_save_a_draft_then_continue_it(agent: User, customer: Customer) -> None:
    # given
    client = client_for(agent)

    # when
    response = client.post(
        f"/certification/apply/?customer={customer.pk}", _form(action="draft", id_number="")
    )

    # then
    application = Application.objects.get(customer=customer)
    assert application.status == "draft"
    assert response["Location"] == f"/certification/applications/{application.pk}/"
    html = client.get(f"/certification/apply/?customer={customer.pk}").content.decode()
    assert f'name="application" value="{application.pk}"' in html
    assert 'value="张三"' not in html  # masked for an agent: typed again
    assert 'placeholder="张*"' in html


def test_the_apply_page_offers_the_customers_own_link(agent: User, customer: Customer) -> None:
    # when
    html = client_for(agent).get(f"/certification/apply/?customer={customer.pk}").content.decode()

    # then
    link = re.search(r'id="id_applicant_link" value="([^"]+)"', html)
    assert link is not None
    assert link.group(1).startswith("http://testserver/apply/")
    token = link.group(1).removeprefix("http://testserver/apply/").rstrip("/")
    assert tokens.applicant_customer(token) == customer.pk


# --- change requests and levels ----------------------------------------------------------------


def test_an_agent_files_a_change_and_a_reviewer_approves_it(
    agent: User, reviewer: User, analyst: User, customer: Customer
) -> None:
    # given
    _certify(agent, reviewer, customer)

    # when: the agent files the change on the customer's behalf
    response = client_for(agent).post(
        f"/certification/changes/new/?customer={customer.pk}",
        {"phone": "13900139000", "real_name": "", "id_number": "", "reason": "换了手机号"},
    )

    # then
    assert response.status_code == 302
    request = ChangeRequest.objects.get()
    assert (request.status, request.fields) == ("pending", ["phone"])
    html = client_for(analyst).get("/certification/changes/").content.decode()
    assert "13800138000" in html
    assert "13900139000" in html
    response = client_for(analyst).post(
        "/certification/changes/?status=pending",
        {"request": request.pk, "action": "approve", "reason": "已电话核实"},
    )
    assert response.status_code == 302
    request.refresh_from_db()
    assert request.status == "approved"


def test_a_change_of_name_is_filed_with_its_evidence_and_the_reviewer_opens_it(
    agent: User, reviewer: User, analyst: User, customer: Customer
) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    # given
    _certify(agent, reviewer, customer)
    page = client_for(agent).get(f"/certification/changes/new/?customer={customer.pk}")
    assert "Real name → ID card (photo side)" in page.content.decode()
    # when: a file that is not an image is refused and nothing is filed
    form = {"real_name": "张叁", "phone": "", "id_number": "", "reason": "改名"}
    bad = client_for(agent).post(
        f"/certification/changes/new/?customer={customer.pk}",
        {
            **form,
            "document_kind_0": "id_front",
            "document_file_0": SimpleUploadedFile("id.png", b"MZ\x90\x00", "image/png"),
        },
    )
    assert bad.status_code == 422
    assert not ChangeRequest.objects.exists()
    # when: filed with the new ID card
    response = client_for(agent).post(
        f"/certification/changes/new/?customer={customer.pk}",
        {
            **form,
            "document_kind_0": "id_front",
            "document_file_0": SimpleUploadedFile("new-id.png", PNG, "image/png"),
        },
    )
    # then: one change, its evidence attached, shown to the reviewer with a link
    assert response.status_code == 302
    request = ChangeRequest.objects.get()
    document = Document.objects.get(change_request=request)
    html = client_for(analyst).get("/certification/changes/").content.decode()
    assert f'href="/certification/documents/{document.pk}/"' in html
    assert "Upload the new" not in html  # nothing missing
    response = client_for(analyst).post(
        "/certification/changes/?status=pending",
        {"request": request.pk, "action": "approve", "reason": "证件一致"},
    )
    assert response.status_code == 302
    request.refresh_from_db()
    assert request.status == "approved"


def test_a_malformed_change_is_refused_with_the_fault(
    agent: User, reviewer: User, customer: Customer
) -> None:
    # given
    _certify(agent, reviewer, customer)

    # when
    response = client_for(agent).post(
        f"/certification/changes/new/?customer={customer.pk}",
        {"id_number": MISTYPED, "reason": "更正"},
    )

    # then
    assert response.status_code == 422
    assert "its last character should be X, not Y." in response.content.decode()
    assert not ChangeRequest.objects.exists()


def test_the_agent_who_filed_a_change_withdraws_it_from_the_page(
    agent: User, reviewer: User, analyst: User, customer: Customer
) -> None:
    # given
    _certify(agent, reviewer, customer)
    request = services.change_request_file(
        user=agent, customer_id=customer.pk, changes={"phone": "13900139001"}, reason="换号"
    )
    client = client_for(agent)

    # when
    html = client.get("/certification/changes/").content.decode()
    analyst_html = client_for(analyst).get("/certification/changes/").content.decode()
    blank = client.post(
        "/certification/changes/", {"request": request.pk, "action": "withdraw", "reason": ""}
    )
    done = client.post(
        "/certification/changes/", {"request": request.pk, "action": "withdraw", "reason": "输错"}
    )

    # then: only the requester is offered it; a reason is required
    assert f'data-testid="withdraw-change-{request.pk}"' in html
    assert f'data-testid="withdraw-change-{request.pk}"' not in analyst_html
    assert blank.status_code == 422
    assert "a reason is required" in blank.content.decode()
    assert done.status_code == 302
    request.refresh_from_db()
    assert (request.status, request.decision_reason) == ("withdrawn", "输错")


def test_the_requester_may_not_decide_their_own_change(
    agent: User, reviewer: User, customer: Customer
) -> None:
    # given
    _certify(agent, reviewer, customer)
    request = services.change_request_file(
        user=reviewer, customer_id=customer.pk, changes={"phone": "13900139000"}, reason="换号"
    )
    client = client_for(reviewer)

    # when
    html = client.get("/certification/changes/").content.decode()
    response = client.post(
        "/certification/changes/", {"request": request.pk, "action": "approve", "reason": "ok"}
    )

    # then
    assert f'data-testid="own-request-{request.pk}"' in html
    assert f'data-testid="approve-change-{request.pk}"' not in html
    assert response.status_code == 403
    request.refresh_from_db()
    assert request.status == "pending"


def test_levels_are_edited_by_those_who_may_and_read_by_others(
    reviewer: User, analyst: User
) -> None:
    # given
    form = {
        "code": "identity",
        "name": "实名认证",
        "name_en": "Identity verified",
        "rank": "1",
        "min_credit_score": "",
        "min_paid_orders": "0",
        "min_spend_12m": "0",
        "min_tenure_days": "0",
        "documents": ["id_front", "id_back"],
        "validity_days": "400",
        "remind_days": "30",
        "is_active": "on",
    }

    # when
    analyst_html = client_for(analyst).get("/certification/levels/").content.decode()
    refused = client_for(analyst).post("/certification/levels/", form)
    saved = client_for(reviewer).post("/certification/levels/", form)
    invalid = client_for(reviewer).post("/certification/levels/", {**form, "validity_days": "x"})

    # then
    assert 'data-testid="edit-identity"' not in analyst_html
    assert refused.status_code == 403
    assert saved.status_code == 302
    assert CertificationLevel.objects.get(code="identity").validity_days == 400
    assert invalid.status_code == 422
    assert "level identity.validity_days: expected a whole number" in invalid.content.decode()


def test_a_levels_fallback_is_shown_and_edited_on_the_levels_page(reviewer: User) -> None:
    # given the trusted level's form as the page fills it
    form = {
        "code": "trusted",
        "name": "信用认证",
        "name_en": "Verified, good credit and history",
        "rank": "2",
        "min_credit_score": "650",
        "min_paid_orders": "3",
        "min_spend_12m": "0",
        "min_tenure_days": "180",
        "documents": ["id_front", "id_back"],
        "validity_days": "365",
        "remind_days": "30",
        "requires_no_restrictions": "on",
        "fallback": "identity",
        "is_active": "on",
    }
    client = client_for(reviewer)
    html = client.get("/certification/levels/").content.decode()
    fallback = re.search(r'data-testid="fallback-trusted">([^<]+)<', html)
    assert fallback is not None and fallback.group(1) == "Identity verified"
    select = re.search(r'<select id="id_fallback_trusted".*?</select>', html, flags=re.S)
    assert select is not None
    assert re.findall(r'<option value="([^"]*)"', select.group(0)) == ["", "identity"]
    assert '<option value="identity" selected>' in select.group(0)

    # when: a business level is chosen, then none
    refused = client.post("/certification/levels/", {**form, "fallback": "business"})
    removed = client.post("/certification/levels/", {**form, "fallback": ""})

    # then
    assert refused.status_code == 422
    refused_html = refused.content.decode()
    assert "level trusted.fallback: business is a level for business customers" in refused_html
    assert re.search(r'<select id="id_fallback_trusted"[^>]*is-invalid', refused_html)
    assert removed.status_code == 302
    assert CertificationLevel.objects.get(code="trusted").fallback_id is None


def test_a_level_form_without_the_fallback_leaves_it(reviewer: User) -> None:
    form = {
        "code": "trusted",
        "name": "信用认证",
        "name_en": "Verified, good credit and history",
        "rank": "2",
        "min_credit_score": "650",
        "min_paid_orders": "3",
        "min_spend_12m": "0",
        "min_tenure_days": "180",
        "documents": ["id_front", "id_back"],
        "validity_days": "300",
        "remind_days": "30",
        "requires_no_restrictions": "on",
        "is_active": "on",
    }
    assert client_for(reviewer).post("/certification/levels/", form).status_code == 302
    level = CertificationLevel.objects.get(code="trusted")
    assert (level.validity_days, level.fallback.code) == (300, "identity")  # type: ignore[union-attr]


# --- the admin ---------------------------------------------------------------------------------


def _admin_form(level: CertificationLevel, **changes: str) -> dict[str, str]:
    form = {
        "name": level.name,
        "name_en": level.name_en,
        "rank": str(level.rank),
        "min_credit_score": "" if level.min_credit_score is None else str(level.min_credit_score),
        "min_paid_orders": str(level.min_paid_orders),
        "min_spend_12m": str(level.min_spend_12m),
        "min_tenure_days": str(level.min_tenure_days),
        "requires_no_restrictions": "on" if level.requires_no_restrictions else "",
        "required_documents": json.dumps(level.required_documents),
        "validity_days": str(level.validity_days),
        "remind_days": str(level.remind_days),
        "fallback": str(level.fallback_id or ""),
        "is_active": "on" if level.is_active else "",
    }
    form.update(changes)
    return {name: value for name, value in form.items() if value != "" or name == "fallback"}


def test_the_admin_edits_a_fallback_through_the_service(reviewer: User, agent: User) -> None:
    # given
    trusted = CertificationLevel.objects.get(code="trusted")
    business = CertificationLevel.objects.get(code="business")
    url = f"/admin/certification/certificationlevel/{trusted.pk}/change/"
    client = client_for(reviewer)

    # when: another kind's level, then none
    refused = client.post(url, _admin_form(trusted, fallback=str(business.pk)))
    saved = client.post(url, _admin_form(trusted, fallback=""))

    # then: the choice of another kind is not even offered; none is saved and audited
    assert refused.status_code == 200
    assert "Select a valid choice" in refused.content.decode()
    assert saved.status_code == 302, saved.content.decode()[:2000]
    trusted.refresh_from_db()
    assert trusted.fallback_id is None
    audit = AuditEvent.objects.get(entity_type="certification.level")
    assert audit.changes == {"old": {"fallback": "identity"}, "new": {"fallback": None}}
    # and those who may not change levels cannot; nobody deletes one (managers add them:
    # test_a_manager_adds_a_level_in_the_admin_through_the_service)
    assert client_for(agent).get(url).status_code == 403
    assert client_for(agent).get("/admin/certification/certificationlevel/add/").status_code == 403
    assert (
        client.post(f"/admin/certification/certificationlevel/{trusted.pk}/delete/").status_code
        == 403
    )


def test_the_admin_shows_the_services_refusal_next_to_the_field(reviewer: User) -> None:
    # given identity falling back to nothing; trusted (rank 2) falls back to identity
    identity = CertificationLevel.objects.get(code="identity")
    url = f"/admin/certification/certificationlevel/{identity.pk}/change/"
    # when identity's rank is raised above trusted's
    refused = client_for(reviewer).post(url, _admin_form(identity, rank="3"))
    # then
    assert refused.status_code == 200
    html = refused.content.decode()
    assert "level identity.rank: 3 must stay below the rank of trusted (2)" in html
    assert 'id="id_rank_error"' in html  # next to the rank, not above the form
    identity.refresh_from_db()
    assert identity.rank == 1
    assert not AuditEvent.objects.filter(entity_type="certification.level").exists()


# --- the customer page -------------------------------------------------------------------------


def test_the_customer_page_shows_the_level_to_those_who_may_see_it(
    agent: User, reviewer: User, marketer: User, customer: Customer
) -> None:
    # given
    _certify(agent, reviewer, customer)

    # when
    agent_html = client_for(agent).get(f"/customers/{customer.pk}/").content.decode()
    marketer_html = client_for(marketer).get(f"/customers/{customer.pk}/").content.decode()

    # then
    badge = re.search(r'data-testid="level-badge"[^>]*>([^<]+)<', agent_html)
    assert badge is not None
    assert badge.group(1) == "Identity verified"
    assert f'href="/certification/apply/?customer={customer.pk}"' in agent_html
    assert 'data-testid="certification"' not in marketer_html


def test_the_customer_page_and_the_applicants_page_say_a_level_was_downgraded(
    agent: User, reviewer: User, customer: Customer
) -> None:
    # given an identity certification kept when trusted expired
    certification = _certify(agent, reviewer, customer)
    expiry = certification.granted_at + timedelta(days=365)
    Certification.objects.filter(pk=certification.pk).update(
        level=CertificationLevel.objects.get(code="trusted"), expires_at=expiry
    )
    assert services.certifications_reverify(now=expiry).downgraded == 1

    # when
    staff_html = client_for(agent).get(f"/customers/{customer.pk}/").content.decode()
    link = f"/apply/{tokens.applicant_token(customer.pk)}/"
    applicant_html = client_for(None).get(link).content.decode()

    # then
    assert "Downgraded from Verified, good credit and history when it expired" in text_of(
        staff_html
    )
    assert re.search(r'data-testid="level-badge"[^>]*>Identity verified<', staff_html)
    assert (
        "Your Verified, good credit and history certification expired; you keep this level"
        in text_of(applicant_html)
    )


def test_the_customer_page_says_not_certified(agent: User, customer: Customer) -> None:
    # when
    html = client_for(agent).get(f"/customers/{customer.pk}/").content.decode()

    # then
    assert 'data-testid="not-certified"' in html
    assert "Apply for certification" in html


# --- the applicant's page ----------------------------------------------------------------------


def test_the_link_shows_only_that_customers_applications(
    agent: User, customer: Customer, other: Customer
) -> None:
    # given
    mine = _apply(agent, customer)
    theirs = _apply(agent, other)

    # when
    response = client_for(None).get(tokens.applicant_path(customer.pk))

    # then
    assert response.status_code == 200
    html = response.content.decode()
    assert f'data-testid="applicant-application-{mine.pk}"' in html
    assert f'data-testid="applicant-application-{theirs.pk}"' not in html
    assert "李四" not in html
    assert response["Cache-Control"].startswith("max-age=0")
    assert _post_forms_have_csrf(html)


def test_the_applicant_downloads_their_document_but_not_anothers(
    agent: User, customer: Customer, other: Customer
) -> None:
    # given
    mine = Document.objects.get(application=_apply(agent, customer), kind="id_front")
    theirs = Document.objects.get(application=_apply(agent, other), kind="id_front")
    path = tokens.applicant_path(customer.pk)
    client = client_for(None)

    # when
    own = client.get(f"{path}documents/{mine.pk}/")
    foreign = client.get(f"{path}documents/{theirs.pk}/")

    # then
    assert own.status_code == 200
    assert own.content == PNG
    assert own["X-Content-Type-Options"] == "nosniff"
    assert foreign.status_code == 404
    assert PNG not in foreign.content


def test_a_tampered_link_is_a_404_page(customer: Customer) -> None:
    # given
    token = tokens.applicant_token(customer.pk)
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")

    # when
    response = client_for(None).get(f"/apply/{tampered}/")
    document = client_for(None).get(f"/apply/{tampered}/documents/1/")

    # then
    assert response.status_code == 404
    assert "This link does not work" in response.content.decode()
    assert "Check that the link was copied whole" in response.content.decode()
    assert document.status_code == 404


def test_an_expired_link_is_a_403_page(customer: Customer) -> None:
    # given: a link issued 31 days ago (links last 30)
    with mock.patch("django.core.signing.time.time", return_value=time.time() - 31 * 86400):
        token = tokens.applicant_token(customer.pk)

    # when
    response = client_for(None).get(f"/apply/{token}/")

    # then
    assert response.status_code == 403
    assert "This link has expired" in response.content.decode()
    assert "Links to your application last 30 days." in response.content.decode()


def test_the_applicant_starts_is_told_the_fault_corrects_and_resubmits(customer: Customer) -> None:
    # given
    path = tokens.applicant_path(customer.pk)
    client = client_for(None)

    # when: the ID number is mistyped
    response = client.post(path, {**_form(id_number=MISTYPED), **_files()})

    # then: the application is returned at once, with the fault in the applicant's words
    assert response.status_code == 302
    application = Application.objects.get(customer=customer)
    assert (application.status, application.channel, application.created_by) == (
        "needs_info",
        "public",
        None,
    )
    html = client.get(path).content.decode()
    assert "its last character should be X, not Y." in html
    assert f'value="{MISTYPED}"' in html  # their own details, in full

    # when: corrected and resubmitted
    response = client.post(path, _form(application=str(application.pk)))

    # then
    assert response.status_code == 302
    application.refresh_from_db()
    assert application.status == "pending"
    html = client.get(path).content.decode()
    assert "Thank you: your application is with the shop for review." in html
    assert 'data-testid="in-review"' in html


def test_the_applicant_cannot_touch_another_customers_application(
    agent: User, customer: Customer, other: Customer
) -> None:
    # given
    theirs = _apply(agent, other, submit=False)

    # when
    response = client_for(None).post(
        tokens.applicant_path(customer.pk),
        {"action": "withdraw", "application": theirs.pk, "reason": "不要了"},
    )

    # then
    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == "draft"


def test_the_applicant_withdraws(agent: User, customer: Customer) -> None:
    # given
    application = _apply(agent, customer)

    # when
    response = client_for(None).post(
        tokens.applicant_path(customer.pk),
        {"action": "withdraw", "application": application.pk, "reason": "暂时不需要"},
    )

    # then
    assert response.status_code == 302
    application.refresh_from_db()
    assert application.status == "withdrawn"


def test_a_certified_applicant_asks_for_a_change(
    agent: User, reviewer: User, customer: Customer
) -> None:
    # given
    _certify(agent, reviewer, customer)
    path = tokens.applicant_path(customer.pk)
    html = client_for(None).get(path).content.decode()
    assert 'data-testid="change-form"' in html

    # when
    response = client_for(None).post(
        path, {"action": "change", "phone": "13900139000", "reason": "换了手机号"}
    )

    # then
    assert response.status_code == 302
    request = ChangeRequest.objects.get()
    assert (request.source, request.requested_by, request.fields) == ("public", None, ["phone"])


def test_a_certified_applicant_changes_their_name_with_the_new_id_card(
    agent: User, reviewer: User, customer: Customer
) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    # given
    _certify(agent, reviewer, customer)
    path = tokens.applicant_path(customer.pk)
    html = client_for(None).get(path).content.decode()
    assert "Real name → ID card (photo side)" in html
    # when
    response = client_for(None).post(
        path,
        {
            "action": "change",
            "real_name": "张叁",
            "reason": "改名",
            "document_kind_0": "id_front",
            "document_file_0": SimpleUploadedFile("id.jpg", PNG, "image/png"),
        },
    )
    # then: filed with its evidence, ready for a reviewer
    assert response.status_code == 302
    request = ChangeRequest.objects.get()
    assert list(request.documents.values_list("kind", flat=True)) == ["id_front"]
    assert services.change_missing_documents(request) == []


def test_the_applicant_sees_their_waiting_change_and_withdraws_it(
    agent: User, reviewer: User, customer: Customer
) -> None:
    # given: a change of name filed without its evidence
    _certify(agent, reviewer, customer)
    path = tokens.applicant_path(customer.pk)
    client_for(None).post(path, {"action": "change", "real_name": "张叁", "reason": "改名"})
    request = ChangeRequest.objects.get()
    # when
    html = client_for(None).get(path).content.decode()
    # then: shown with what it still needs
    assert 'data-testid="pending-change"' in html
    assert "Upload the new ID card (photo side): a change of the real name needs it." in html
    # when: withdrawn without a reason, then with one
    blank = client_for(None).post(
        path, {"action": "withdraw_change", "request": str(request.pk), "reason": " "}
    )
    assert blank.status_code == 422
    request.refresh_from_db()
    assert request.status == "pending"
    done = client_for(None).post(
        path, {"action": "withdraw_change", "request": str(request.pk), "reason": "输错了"}
    )
    # then
    assert done.status_code == 302
    request.refresh_from_db()
    assert (request.status, request.decision_reason) == ("withdrawn", "输错了")
    assert 'data-testid="pending-change"' not in client_for(None).get(path).content.decode()


def test_an_applicant_cannot_withdraw_another_customers_change(
    agent: User, reviewer: User, customer: Customer
) -> None:
    _certify(agent, reviewer, customer)
    request = services.change_request_file(
        user=agent, customer_id=customer.pk, changes={"phone": "13900139001"}, reason="换号"
    )
    other = make_customer(name="李四")
    response = client_for(None).post(
        tokens.applicant_path(other.pk),
        {"action": "withdraw_change", "request": str(request.pk), "reason": "不是我的"},
    )
    assert response.status_code == 404
    request.refresh_from_db()
    assert request.status == "pending"


def test_a_manager_adds_a_trade_in_the_admin_and_an_agent_may_not(
    reviewer: User, agent: User
) -> None:
    # given
    url = "/admin/certification/businesscategory/add/"
    form = {
        "code": "bakery",
        "name": "烘焙",
        "name_en": "Bakery",
        "required_permits": json.dumps(["食品经营许可证", " 食品经营许可证 "]),
        "is_active": "on",
    }
    # when: not a list
    refused = client_for(reviewer).post(url, {**form, "required_permits": '"食品经营许可证"'})
    # then
    assert refused.status_code == 200
    assert "required_permits: a list of permit names" in refused.content.decode()
    assert not BusinessCategory.objects.filter(code="bakery").exists()
    # when
    assert client_for(agent).post(url, form).status_code == 403
    saved = client_for(reviewer).post(url, form)
    # then: saved through the service, repeats dropped, audited
    assert saved.status_code == 302
    assert BusinessCategory.objects.get(code="bakery").required_permits == ["食品经营许可证"]
    assert AuditEvent.objects.filter(
        entity_type="certification.business_category", entity_id="bakery"
    ).exists()


def test_a_manager_adds_a_level_in_the_admin_through_the_service(
    reviewer: User, agent: User
) -> None:
    # given
    url = "/admin/certification/certificationlevel/add/"
    trusted = CertificationLevel.objects.get(code="trusted")
    business = CertificationLevel.objects.get(code="business")
    form = {
        **_admin_form(trusted, name="金牌认证", name_en="Gold", rank="3"),
        "code": "gold",
        "applicant_kind": "individual",
        "fallback": str(trusted.pk),
    }
    # when: an agent, then a fallback of the other kind
    assert client_for(agent).post(url, form).status_code == 403
    refused = client_for(reviewer).post(url, {**form, "fallback": str(business.pk)})
    # then: the service's refusal next to the field, nothing saved
    assert refused.status_code == 200
    assert "business is a level for business customers" in refused.content.decode()
    assert not CertificationLevel.objects.filter(code="gold").exists()
    # when
    saved = client_for(reviewer).post(url, form)
    # then
    assert saved.status_code == 302
    gold = CertificationLevel.objects.get(code="gold")
    assert (gold.applicant_kind, gold.rank, gold.fallback) == ("individual", 3, trusted)
    assert AuditEvent.objects.filter(
        entity_type="certification.level", action="create", entity_id="gold"
    ).exists()
