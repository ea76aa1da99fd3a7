"""The complaint pages render for those who may see them: the list with its figures, one
complaint with its timeline, durations and step forms (and a refused step shown next to its
form), the at-risk page before and after a refresh, and the customer's public page."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from patron.account.models import User
from patron.account.roles import Role
from patron.complaints import tokens
from patron.complaints.models import Complaint
from patron.complaints.tests.conftest import walk
from patron.conftest import make_user
from patron.service.models import Team

pytestmark = pytest.mark.django_db


def _browser(user: User) -> Client:
    client = Client(headers={"Accept-Language": "en"})
    client.force_login(user)
    return client


def test_the_list_shows_each_complaint_with_its_stage_age_and_overdue_step(
    agent: User, complaint: Complaint, team: Team
) -> None:
    # given: investigating since 2026-11-02: its proposal is overdue
    walk(complaint, agent, team, to="investigating")
    # when
    response = _browser(agent).get("/service/complaints/")
    # then
    assert response.status_code == 200
    html = response.content.decode()
    assert f'data-testid="complaint-{complaint.pk}"' in html
    assert f'data-testid="overdue-{complaint.pk}">propose a resolution<' in html
    assert 'data-testid="file-complaint"' in html
    assert 'data-testid="overdue">1<' in html


def test_readers_see_the_list_without_the_form_and_others_get_403(complaint: Complaint) -> None:
    # when
    auditor = _browser(make_user(Role.AUDITOR)).get("/service/complaints/")
    marketer = _browser(make_user(Role.MARKETER)).get("/service/complaints/")
    # then
    assert auditor.status_code == 200
    assert 'data-testid="file-complaint"' not in auditor.content.decode()
    assert marketer.status_code == 403


def test_recording_a_complaint_from_the_list(agent: User, customer: Any) -> None:
    # when
    response = _browser(agent).post(
        "/service/complaints/",
        {
            "customer_id": str(customer.pk),
            "channel": "phone",
            "subject": "投诉：客服不回复消息",
            "matter": "三天没人回复",
            "severity": "",
        },
    )
    # then
    complaint = Complaint.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/service/complaints/{complaint.pk}/"


def test_a_refused_recording_keeps_the_input_and_names_the_field(
    agent: User, customer: Any
) -> None:
    # when
    response = _browser(agent).post(
        "/service/complaints/",
        {"customer_id": str(customer.pk), "channel": "phone", "subject": "投诉", "matter": " "},
    )
    # then
    assert response.status_code == 422
    html = response.content.decode()
    assert "matter: required, and must not be blank" in html
    assert 'value="投诉"' in html
    assert Complaint.objects.count() == 0


def test_the_detail_page_shows_the_timeline_durations_and_the_next_steps(
    agent: User, complaint: Complaint, team: Team
) -> None:
    # given
    walk(complaint, agent, team, to="resolution_proposed")
    # when
    response = _browser(agent).get(f"/service/complaints/{complaint.pk}/")
    # then
    assert response.status_code == 200
    html = response.content.decode()
    for testid in (
        "complaint-timeline",
        "durations",
        "form-accept",
        "form-reject",
        "form-withdraw",
    ):
        assert f'data-testid="{testid}"' in html
    assert 'data-testid="form-propose"' not in html
    assert "全额退款并补发新品" in html


def test_a_step_from_the_page_and_a_refused_one_shown_by_its_form(
    agent: User, complaint: Complaint, team: Team
) -> None:
    # given
    browser = _browser(agent)
    url = f"/service/complaints/{complaint.pk}/"
    # when
    assigned = browser.post(url, {"action": "assign", "team_id": str(team.pk)})
    refused = browser.post(url, {"action": "propose", "findings": "漏检", "resolution": ""})
    # then
    assert assigned.status_code == 302
    assert refused.status_code == 422
    assert "resolution: required, and must not be blank" in refused.content.decode()
    complaint.refresh_from_db()
    assert (complaint.stage, complaint.team_id) == ("investigating", team.pk)


def test_the_at_risk_page_before_and_after_a_refresh(agent: User) -> None:
    # given
    browser = _browser(agent)
    # when
    before = browser.get("/service/complaints/at-risk/")
    refreshed = browser.post("/service/complaints/at-risk/")
    after = browser.get("/service/complaints/at-risk/")
    # then
    assert before.status_code == 200
    assert 'data-testid="never-scored"' in before.content.decode()
    assert refreshed.status_code == 302
    assert after.status_code == 200
    assert 'data-testid="risk-model"' in after.content.decode()
    assert "Hand-weighted score" in after.content.decode()


def test_readers_cannot_refresh_the_scores(complaint: Complaint) -> None:
    # when
    response = _browser(make_user(Role.ANALYST)).post("/service/complaints/at-risk/")
    # then
    assert response.status_code == 403


def test_the_customer_page_answers_once(agent: User, complaint: Complaint, team: Team) -> None:
    # given
    walk(complaint, agent, team, to="resolution_proposed")
    path = tokens.answer_path(complaint.pk, 1)
    customer = Client(headers={"Accept-Language": "en"})
    # when
    page = customer.get(path)
    answered = customer.post(path, {"answer": "reject", "reason": "补偿太少"})
    later = customer.get(path)
    # then
    assert page.status_code == 200
    assert 'data-testid="reject-form"' in page.content.decode()
    assert page["X-Robots-Tag"] == "noindex"
    assert answered.status_code == 302
    assert 'data-testid="answered"' in later.content.decode()
    complaint.refresh_from_db()
    assert (complaint.stage, complaint.rejections) == ("investigating", 1)


def test_the_customer_page_for_a_bad_link_is_a_404_page() -> None:
    # when
    response = Client().get("/complaint/not-a-token/")
    # then
    assert response.status_code == 404
    assert 'data-testid="link-error"' in response.content.decode()
