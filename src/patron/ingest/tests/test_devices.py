"""Devices from imported events: recorded as keyed hashes with the first and last time seen,
idempotent on re-import, nothing written when the batch fails, and read by risk detection's
shared-identity rule."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.db import connection

from patron.customer.models import CustomerDevice
from patron.ingest.services import import_file
from patron.privacy import crypto
from patron.risk import detect
from patron.risk.models import Alert

from .conftest import write_csv

pytestmark = pytest.mark.django_db

EVENT_HEADER = ["customer_external_id", "event_type", "occurred_at", "session_id", "device_id"]


def _customers(tmp_path: Path, *ids: str) -> None:
    path = write_csv(
        tmp_path / "customers.csv",
        ["external_id", "name", "registered_at"],
        [[external_id, f"客户{external_id}", "2025-01-01"] for external_id in ids],
    )
    assert import_file(kind="customers", path=path).status == "committed"


def _events(tmp_path: Path, rows: list[list[str]], name: str = "events.csv") -> Path:
    return write_csv(tmp_path / name, EVENT_HEADER, rows)


def test_devices_are_recorded_as_hashes_with_when_they_were_seen(
    lake: Path, tmp_path: Path
) -> None:
    # given
    _customers(tmp_path, "C1", "C2")
    path = _events(
        tmp_path,
        [
            ["C1", "browse", "2026-03-01T10:00:00Z", "s1", "idfa-AAAA-1111"],
            ["C1", "add_to_cart", "2026-03-04T10:00:00Z", "s2", "idfa-aaaa-1111"],
            ["C2", "browse", "2026-03-02T10:00:00Z", "s3", "idfa-AAAA-1111"],
            ["C2", "browse", "2026-03-02T11:00:00Z", "s3", ""],
        ],
    )
    # when
    summary = import_file(kind="events", path=path)
    # then
    assert summary.status == "committed"
    rows = {
        (d.customer.external_id, d.first_seen_at, d.last_seen_at)
        for d in CustomerDevice.objects.select_related("customer")
    }
    assert rows == {
        ("C1", datetime(2026, 3, 1, 10, tzinfo=UTC), datetime(2026, 3, 4, 10, tzinfo=UTC)),
        ("C2", datetime(2026, 3, 2, 10, tzinfo=UTC), datetime(2026, 3, 2, 10, tzinfo=UTC)),
    }
    assert set(CustomerDevice.objects.values_list("device_hash", flat=True)) == {
        crypto.lookup_hash("IDFA-AAAA-1111", kind="device")
    }
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM customer_customerdevice")
        stored = " ".join(str(value) for row in cursor.fetchall() for value in row)
    assert "idfa" not in stored.lower()


def test_re_importing_changes_nothing_and_a_later_batch_widens_the_seen_times(
    lake: Path, tmp_path: Path
) -> None:
    # given
    _customers(tmp_path, "C1")
    first = _events(tmp_path, [["C1", "browse", "2026-03-01T10:00:00Z", "s1", "dev-1"]])
    import_file(kind="events", path=first)
    before = list(CustomerDevice.objects.values_list("pk", "first_seen_at", "last_seen_at"))
    # when
    import_file(kind="events", path=first)
    again = list(CustomerDevice.objects.values_list("pk", "first_seen_at", "last_seen_at"))
    later = _events(
        tmp_path, [["C1", "browse", "2026-05-01T10:00:00Z", "s9", "dev-1"]], name="later.csv"
    )
    import_file(kind="events", path=later)
    # then
    assert again == before
    device = CustomerDevice.objects.get()
    assert (device.first_seen_at, device.last_seen_at) == (
        datetime(2026, 3, 1, 10, tzinfo=UTC),
        datetime(2026, 5, 1, 10, tzinfo=UTC),
    )


def test_a_refused_batch_records_no_device(lake: Path, tmp_path: Path) -> None:
    # given: the second row names an unknown customer
    _customers(tmp_path, "C1")
    path = _events(
        tmp_path,
        [
            ["C1", "browse", "2026-03-01T10:00:00Z", "s1", "dev-1"],
            ["C404", "browse", "2026-03-01T10:00:00Z", "s2", "dev-1"],
        ],
    )
    # when
    summary = import_file(kind="events", path=path)
    # then
    assert summary.status == "rejected"
    assert [(e["line"], e["field"]) for e in summary.errors] == [(3, "customer_external_id")]
    assert not CustomerDevice.objects.exists()


# transaction=True: on PostgreSQL detection reads the tables through ADBC, its own connection
@pytest.mark.django_db(transaction=True)
def test_accounts_sharing_one_device_are_flagged_by_the_shared_identity_rule(
    lake: Path, tmp_path: Path
) -> None:
    # given: four accounts seen on one phone handset, and one on its own
    _customers(tmp_path, "C1", "C2", "C3", "C4", "C5")
    path = _events(
        tmp_path,
        [
            *(
                [customer, "browse", "2026-03-01T10:00:00Z", f"s{customer}", "handset-42"]
                for customer in ("C1", "C2", "C3", "C4")
            ),
            ["C5", "browse", "2026-03-01T10:00:00Z", "s5", "handset-7"],
        ],
    )
    import_file(kind="events", path=path)
    # when
    detect.detection_run(as_of=datetime(2026, 3, 2, tzinfo=UTC), with_model=False)
    # then
    flagged = Alert.objects.filter(rule_code="ID-SHARED")
    assert sorted(flagged.values_list("customer__external_id", flat=True)) == [
        "C1",
        "C2",
        "C3",
        "C4",
    ]
    assert all(alert.value == 3 for alert in flagged)
