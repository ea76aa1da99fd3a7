"""Care tests run as if the grades' visits had begun on 1 January 2025 (seeded rows take the
day they are made, which would tie the tests' dates to the clock)."""

from __future__ import annotations

from datetime import date

import pytest

VISITS_FROM = date(2025, 1, 1)


@pytest.fixture(autouse=True)
def _visits_began_long_ago(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("django_db") is None:
        return
    request.getfixturevalue("db")  # the test's own database setup (transactional or not)
    from patron.care import services
    from patron.care.models import GradeMeasure

    services.care_policy_seed()
    GradeMeasure.objects.filter(visit_interval_days__isnull=False).update(visits_from=VISITS_FROM)
