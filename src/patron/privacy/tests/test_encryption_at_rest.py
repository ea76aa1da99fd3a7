"""Personal data is encrypted at rest: a seeded phone, e-mail, ID number and street address
appear nowhere in plain text, neither in the SQLite file nor in a PostgreSQL dump."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from patron.customer.models import Address, Customer
from patron.ingest.services import import_file
from patron.ingest.tests.conftest import write_csv
from patron.privacy import crypto

PHONE, EMAIL, ID_NUMBER, STREET = (
    "13912345678",
    "wang.fang@example.cn",
    "11010519491231002X",
    "科技园南区88号",
)


def _database_bytes() -> bytes:
    if connection.vendor == "postgresql":
        pg_dump = shutil.which("pg_dump")
        if pg_dump is None:
            pytest.fail("pg_dump is needed to inspect the PostgreSQL database")
        name = connection.settings_dict["NAME"]
        return subprocess.run(
            [pg_dump, "-h", "127.0.0.1", "-U", "postgres", name], check=True, capture_output=True
        ).stdout
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    path = Path(connection.settings_dict["NAME"])
    return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())


@pytest.mark.django_db(transaction=True)
def test_seeded_personal_data_is_not_stored_in_plain_text(tmp_path: Path, settings: Any) -> None:
    # given
    settings.HOME, settings.LAKE_DIR = tmp_path, tmp_path / "lake"
    path = write_csv(
        tmp_path / "customers.csv",
        ["external_id", "name", "phone", "email", "id_number", "province", "city", "address"],
        [["P1", "王芳", PHONE, EMAIL, ID_NUMBER, "广东", "深圳", STREET]],
    )
    # when
    import_file(kind="customers", path=path)
    # then: readable through the model, searchable by keyed hash …
    customer = Customer.objects.get(
        phone_hash=crypto.lookup_hash("+86 139-1234-5678", kind="phone")
    )
    assert (customer.phone, customer.email, customer.id_number) == (PHONE, EMAIL, ID_NUMBER)
    assert Address.objects.get(customer=customer).detail == STREET
    # … and absent from the bytes on disk
    data = _database_bytes()
    assert "王芳".encode() in data  # the scan does see the table's plain columns
    for secret in (PHONE, EMAIL, ID_NUMBER, STREET, "1234-5678"):
        assert secret.encode() not in data, f"{secret} found in plain text"


def test_ciphertext_is_bound_to_its_field() -> None:
    token = crypto.encrypt("13912345678", context="phone")
    assert crypto.decrypt(token, context="phone") == "13912345678"
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(token, context="email")


@pytest.mark.parametrize(
    ("value", "kind", "masked"),
    [
        ("13812341234", "phone", "138****1234"),
        ("+86 138 1234 1234", "phone", "138****1234"),
        ("zhang@example.com", "email", "z***@example.com"),
        ("11010519491231002X", "id_number", "110***********002X"),
        ("", "phone", ""),
    ],
)
def test_masking(value: str, kind: str, masked: str) -> None:
    assert crypto.mask(value, kind=kind) == masked
