"""Jobs in the Django admin: the slots with their task status, and the task results."""

from __future__ import annotations

import pytest
from django.test import Client
from django_tasks_db.models import DBTaskResult

from patron.account.models import User
from patron.jobs import services
from patron.jobs.schedule import SCHEDULE

from .conftest import Clock

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(db: None) -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser(username="root", password=None))
    return client


def test_the_admin_lists_scheduled_slots_with_their_task_status_and_a_link_to_it(
    clock: Clock, admin: Client
) -> None:
    # given
    services.scheduler_pass(now=clock())
    task_id = str(DBTaskResult.objects.get(task_path__endswith="score_nightly").id)
    # when
    page = admin.get("/admin/jobs/scheduledslot/")
    # then
    assert page.status_code == 200
    html = page.content.decode()
    assert "score-nightly" in html and "regrade-quarterly" in html
    assert "risk-detect" in html
    assert html.count("READY") == len(SCHEDULE)
    assert f'href="/admin/django_tasks_database/dbtaskresult/{task_id}/change/"' in html


def test_slots_and_task_results_are_read_only_in_the_admin(clock: Clock, admin: Client) -> None:
    # given
    services.scheduler_pass(now=clock())
    # when
    add_slot = admin.get("/admin/jobs/scheduledslot/add/")
    results = admin.get("/admin/django_tasks_database/dbtaskresult/")
    # then
    assert add_slot.status_code == 403
    assert results.status_code == 200
    assert "score_nightly" in results.content.decode()
