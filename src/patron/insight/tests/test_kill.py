"""``patron insights fill`` killed with SIGKILL part-way: the metrics it finished stay, the one it
was computing leaves nothing, and the next fill resumes and ends equal to a fill from scratch."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from patron.insight import services
from patron.insight.models import FillState, MetricValue

from .conftest import TODAY

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
ATTEMPTS = 5


def _env(home: Path) -> dict[str, str]:
    """The test's database and keys, with ``home`` (whose ``lake`` is the test's lake)."""
    for key in settings.HOME.glob("*.key"):
        shutil.copy(key, home / key.name)
    name = connection.settings_dict["NAME"]
    url = (
        f"postgres://postgres@127.0.0.1:5432/{name}"
        if connection.vendor == "postgresql"
        else f"sqlite:///{name}"
    )
    return {**os.environ, "DATABASE_URL": url, "PATRON_HOME": str(home), "OMP_NUM_THREADS": "1"}


def _kill_part_way(env: dict[str, str]) -> set[str] | None:
    """Start a fill and SIGKILL it once some but not all metrics are committed; the metrics it
    had finished, or None when it ended before it could be caught."""
    fill = subprocess.Popen(
        [sys.executable, "-m", "patron.cli", "insights", "fill", "--today", TODAY.isoformat()],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        while fill.poll() is None:
            if FillState.objects.exists():
                fill.send_signal(signal.SIGKILL)
                fill.wait(timeout=30)
                return set(FillState.objects.values_list("metric", flat=True))
            time.sleep(0.005)
    finally:
        if fill.poll() is None:
            fill.kill()
    assert fill.returncode == 0, fill.stderr.read() if fill.stderr else ""
    return None


def _table() -> dict[tuple[str, object], tuple[object, ...]]:
    return {
        (row.metric, row.period): (row.value, row.numerator, row.denominator, row.is_final)
        for row in MetricValue.objects.all()
    }


def test_a_fill_killed_part_way_resumes_and_ends_as_a_clean_one(
    shop: None, lake: Path, tmp_path: Path
) -> None:
    # given: the metrics a whole fill records its progress for
    services.metrics_fill(today=TODAY)
    every = set(FillState.objects.values_list("metric", flat=True))
    assert len(every) > 3
    # and a fill killed after it committed its first metric(s)
    env = _env(lake.parent)
    finished: set[str] | None = None
    for _attempt in range(ATTEMPTS):
        FillState.objects.all().delete()
        MetricValue.objects.all().delete()
        finished = _kill_part_way(env)
        if finished is not None and finished < every:
            break
    assert finished and finished < every, f"no fill was caught part-way in {ATTEMPTS} tries"
    filled = {metric for metric, _period in _table()}
    assert filled == finished  # the metric being computed left no half-written months
    # when the fill runs again
    services.metrics_fill(today=TODAY)
    resumed = _table()
    states = dict(FillState.objects.values_list("metric", "filled_through"))
    # then it equals a fill from scratch
    services.metrics_fill(today=TODAY, rebuild=True)
    assert _table() == resumed
    assert dict(FillState.objects.values_list("metric", "filled_through")) == states
