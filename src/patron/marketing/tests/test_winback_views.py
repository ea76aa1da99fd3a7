"""The win-back pages: who may see and change them, creating a programme from the form (and
its 422), running, pausing and editing from a programme's page, the evaluation and the
entries with their reasons; the admin's form, checked by the same service."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from patron.account.roles import Role
from patron.conftest import ALL_ROLES, make_customer, make_user
from patron.marketing import services
from patron.marketing.models import WinbackEnrolment, WinbackProgramme
from patron.marketing.tests.factories import consent, score, template

pytestmark = pytest.mark.django_db

VIEW_ROLES = {"administrator", "operations_manager", "marketer", "analyst", "auditor"}
CHANGE_ROLES = {"administrator", "operations_manager", "marketer"}
FORM: dict[str, Any] = {
    "name": "沉睡唤醒",
    "churn_threshold": "0.65",
    "holdout_percent": "20",
    "cool_down_days": "90",
    "window_days": "60",
    "offer_kind": "points",
    "points": "500",
    "high_value_offer_kind": "",
    "channels": ["sms", "wechat"],
    "message_title": "好久不见",
    "message_text": "送您{points}积分",
    "category_fallback": "新品",
    "frequency_cap_messages": "2",
    "frequency_cap_days": "7",
}


def _client(role: str) -> Client:
    client = Client()
    client.force_login(make_user(role))
    return client


def _programme(**fields: Any) -> WinbackProgramme:
    data: dict[str, Any] = {
        "name": "流失挽回",
        "churn_threshold": Decimal("0.6"),
        "holdout_share": Decimal("0.5"),
        "seed": 3,
        "offer_kind": "message",
        "channels": ["sms"],
        "message_title": "好久不见",
        "message_text": "来看看{top_category}",
    }
    data.update(fields)
    return services.winback_programme_create(user=make_user(Role.MARKETER), data=data)


@pytest.mark.parametrize("role", [*ALL_ROLES, "no_role"])
@pytest.mark.parametrize("page", ["list", "detail"])
def test_role_page_matrix(role: str, page: str) -> None:
    programme = _programme()
    url = "/marketing/winback/" if page == "list" else f"/marketing/winback/{programme.pk}/"
    response = _client(role).get(url)
    assert response.status_code == (200 if role in VIEW_ROLES else 403), (role, page)
    if response.status_code == 200:
        html = response.content.decode()
        assert ('data-testid="winback-form"' in html or 'data-testid="run"' in html) == (
            role in CHANGE_ROLES
        )


def test_create_a_programme_from_the_form() -> None:
    # when
    response = _client(Role.MARKETER).post("/marketing/winback/", FORM)

    # then
    programme = WinbackProgramme.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/marketing/winback/{programme.pk}/"
    assert (programme.churn_threshold, programme.holdout_share, programme.points) == (
        Decimal("0.650"), Decimal("0.200"), 500
    )  # fmt: skip
    assert programme.channels == ["sms", "wechat"] and programme.high_value_offer_kind == ""


def test_the_form_names_the_mistake_with_422() -> None:
    response = _client(Role.MARKETER).post("/marketing/winback/", {**FORM, "window_days": "120"})
    assert response.status_code == 422
    assert "winback.cool_down_days: at least the measurement window" in response.content.decode()
    assert not WinbackProgramme.objects.exists()


def test_an_analyst_cannot_create() -> None:
    assert _client(Role.ANALYST).post("/marketing/winback/", FORM).status_code == 403
    assert not WinbackProgramme.objects.exists()


def test_run_pause_and_edit_from_the_programme_page() -> None:
    # given
    for i in range(6):
        person = make_customer(name=f"沉睡{i}", phone=f"1360000{i:04d}")
        score(person, churn_probability=0.8)
        consent(person, "marketing", "sms", True, 10)
    programme = _programme()
    client = _client(Role.MARKETER)
    url = f"/marketing/winback/{programme.pk}/"

    # when
    ran = client.post(url, {"action": "run"})
    page = client.get(url).content.decode()
    edited = client.post(
        url, {**FORM, "action": "save", "name": "流失挽回", "holdout_percent": "50"}
    )
    reseeded = client.post(url, {**FORM, "action": "save", "holdout_percent": "30"})
    paused = client.post(url, {"action": "pause"})

    # then
    assert ran.status_code == 302
    assert WinbackEnrolment.objects.count() == 6
    assert 'data-testid="winback-entries"' in page and "沉睡0" in page
    assert "the programme has one offer for everyone → a message only" in page
    assert "No entry&#x27;s window has closed yet" in page
    assert edited.status_code == 302
    programme.refresh_from_db()
    assert (programme.churn_threshold, programme.points) == (Decimal("0.650"), 500)
    assert reseeded.status_code == 409
    assert "fixed once customers are enrolled" in reseeded.content.decode()
    assert paused.status_code == 302
    programme.refresh_from_db()
    assert programme.is_active is False


def test_the_page_shows_the_evaluation_once_windows_close() -> None:
    # given: a placebo 100 days ago, windows of 60 days
    for i in range(40):
        person = make_customer(phone=f"1350000{i:04d}")
        score(person, churn_probability=0.9)
    programme = _programme()
    services.winback_programme_run(
        programme_id=programme.pk, as_of=timezone.now() - timedelta(days=100), placebo=True
    )

    # when
    html = _client(Role.AUDITOR).get(f"/marketing/winback/{programme.pk}/").content.decode()

    # then
    assert 'data-testid="winback-chart"' in html
    assert 'data-testid="winback-significant"' in html
    assert 'data-testid="winback-rate-treatment">0.0 %<' in html
    assert "placebo" in html


# ---------------------------------------------------------------------- the admin


def test_the_admin_saves_through_the_service() -> None:
    # given
    admin = make_user(Role.ADMINISTRATOR)
    admin.is_staff = True
    admin.save(update_fields=["is_staff"])
    client = Client()
    client.force_login(admin)
    tpl = template(stock=None)
    data = {
        "name": "后台建的", "description": "", "is_active": "on", "churn_threshold": "0.7",
        "holdout_share": "0.1", "seed": "9", "cool_down_days": "90", "window_days": "60",
        "offer_kind": "coupon", "coupon_template": str(tpl.pk), "gift_text": "",
        "high_value_offer_kind": "", "high_value_gift_text": "", "high_value_grades": "[]",
        "channels": '["sms"]', "message_title": "t", "message_text": "x",
        "category_fallback": "新品", "frequency_cap_messages": "2", "frequency_cap_days": "7",
    }  # fmt: skip

    # when
    refused = client.post("/admin/marketing/winbackprogramme/add/", {**data, "window_days": "120"})
    saved = client.post("/admin/marketing/winbackprogramme/add/", data)

    # then
    assert refused.status_code == 200
    assert "at least the measurement window" in refused.content.decode()
    assert saved.status_code == 302, saved.content.decode()[:2000]
    programme = WinbackProgramme.objects.get()
    assert (programme.name, programme.coupon_template_id, programme.created_by) == (
        "后台建的", tpl.pk, admin
    )  # fmt: skip
