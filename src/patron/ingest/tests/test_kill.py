"""A process killed with SIGKILL in the middle of an import leaves the database as it was;
running the same import again completes it."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from patron.customer.models import Customer
from patron.ingest.models import ImportBatch

from .conftest import write_csv

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
ROWS = 60_000


def _database_url() -> str:
    name = connection.settings_dict["NAME"]
    if connection.vendor == "postgresql":
        return f"postgres://postgres@127.0.0.1:5432/{name}"
    return f"sqlite:///{name}"


def _writer_active() -> bool:
    """True once the import holds the write transaction on the customer table."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_locks l JOIN pg_class c ON l.relation = c.oid "
                "WHERE c.relname = 'customer_customer' AND l.mode = 'RowExclusiveLock' AND l.pid <> pg_backend_pid()"
            )
            return bool(cursor.fetchone()[0])
    probe = sqlite3.connect(connection.settings_dict["NAME"], timeout=0)
    try:
        # The batch row is committed first; the next write lock is the data transaction's.
        if not probe.execute("SELECT count(*) FROM ingest_importbatch").fetchone()[0]:
            return False
        probe.execute("BEGIN IMMEDIATE")
        probe.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError:
        return True
    finally:
        probe.close()


def _run(path: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "patron.cli",
        "import",
        "customers",
        str(path),
        "--source",
        "kill",
        "--json",
    ]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)


def test_kill_9_mid_import_leaves_nothing_and_a_rerun_completes(tmp_path: Path) -> None:
    # given: committed data from an earlier batch, and a large new file
    Customer.objects.create(source="kill", external_id="OLD", name="老客户")
    path = write_csv(
        tmp_path / "big.csv",
        ["external_id", "name", "province", "city"],
        [[f"K{i:06d}", f"客户{i}", "广东", "深圳"] for i in range(ROWS)],
    )
    env = {**os.environ, "DATABASE_URL": _database_url(), "PATRON_HOME": str(settings.HOME)}
    # when: the import is killed while it holds its write transaction
    process = _run(path, env)
    deadline = time.monotonic() + 120
    while not _writer_active():
        assert process.poll() is None, (
            "the import finished before it could be killed; make ROWS larger"
        )
        assert time.monotonic() < deadline, "the import never started writing"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    # then: the database is as it was before that batch
    assert list(Customer.objects.values_list("external_id", flat=True)) == ["OLD"]
    assert ImportBatch.objects.get().status == "running"
    # and running it again completes it
    rerun = _run(path, env)
    output, _ = rerun.communicate(timeout=300)
    assert rerun.returncode == 0
    assert Customer.objects.filter(source="kill").count() == ROWS + 1
    assert b'"inserted": 60000' in output.splitlines()[-1]
