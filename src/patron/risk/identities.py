"""The identities table of ``patron.risk.detection`` read from the OLTP database.

Only keyed hashes leave the database (``patron.privacy.crypto.lookup_hash``), never a phone
number or an address: equal hashes are all the identity measures need.
"""

from __future__ import annotations

import pyarrow as pa

from patron.customer.models import Address, Customer, CustomerDevice
from patron.risk.detection import IDENTITY_SCHEMA


def load_identities() -> pa.Table:
    """Every customer's phone, e-mail, address and device hashes as ``IDENTITY_SCHEMA`` rows
    (``customer_id``, ``kind``, ``value_hash``); empty hashes are left out. One query per kind.
    """
    customer_ids: list[int] = []
    kinds: list[str] = []
    hashes: list[str] = []
    queries = (
        ("phone", Customer.objects.exclude(phone_hash="").values_list("id", "phone_hash")),
        ("email", Customer.objects.exclude(email_hash="").values_list("id", "email_hash")),
        (
            "address",
            Address.objects.exclude(detail_hash="").values_list("customer_id", "detail_hash"),
        ),
        ("device", CustomerDevice.objects.values_list("customer_id", "device_hash")),
    )
    for kind, rows in queries:
        for customer_id, value_hash in rows.iterator(chunk_size=10_000):
            customer_ids.append(customer_id)
            kinds.append(kind)
            hashes.append(value_hash)
    return pa.table(
        [pa.array(customer_ids, pa.int64()), pa.array(kinds, pa.string()), pa.array(hashes)],
        schema=IDENTITY_SCHEMA,
    )
