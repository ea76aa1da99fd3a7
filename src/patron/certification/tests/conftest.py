"""The default levels and trades come from data migrations; a transactional test elsewhere in the run
flushes them away, so each database test here puts them back (the seeds are idempotent)."""

from __future__ import annotations

import pytest

from patron.certification.services import categories_seed, levels_seed


@pytest.fixture(autouse=True)
def default_levels(request: pytest.FixtureRequest) -> None:
    marker = request.node.get_closest_marker("django_db")
    if marker is None:
        return
    transactional = bool(marker.kwargs.get("transaction"))
    request.getfixturevalue("transactional_db" if transactional else "db")
    levels_seed()
    categories_seed()
