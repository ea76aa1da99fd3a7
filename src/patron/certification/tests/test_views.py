"""The certification pages: who may open what, what each form does, how refusals are shown, and
the applicant's page behind the signed link."""

from __future__ import annotations

import re
import time
from datetime import date
from unittest import mock

import pytest
from django.test import Client

from patron.account.models import User
from patron.account.roles import Role
from patron.certification import services, tokens
from patron.certification.models import (
    Application,
    Certification,
    CertificationLevel,
    ChangeRequest,
    Document,
)
from patron.conftest import make_customer, make_user
from patron.customer.models import Customer

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + b"0" * 100
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


@pytest.mark.parametrize("role", [Role.SERVICE_AGENT, Role.MARKETER, Role.AUDITOR])
def test_a_document_is_refused_to_other_roles(agent: User, customer: Customer, role: Role) -> None:
    # given
    document = Document.objects.get(application=_apply(agent, customer), kind="id_front")

    # when
    response = client_for(make_user(role)).get(f"/certification/documents/{document.pk}/")

    # then
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
