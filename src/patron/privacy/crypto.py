"""Encryption at rest for personal data, and keyed hashes for exact-match search.

Scheme (see docs/adr/0002-pii-encryption.md): AES-256-GCM with a random 96-bit nonce per value;
the stored text is ``v1:<key id>:<base64(nonce || ciphertext || tag)>``. The data key comes from
``PATRON_DATA_KEY`` (64 hex characters) or the ``PATRON_HOME/data.key`` file. Lookups use an
HMAC-SHA256 of the normalised value under a key derived from the data key, so equal values can
be found without decrypting, and the hash reveals nothing without the key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from functools import lru_cache

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from patron.paths import read_or_create_secret

PREFIX = "v1"


class DecryptionError(ValueError):
    pass


@lru_cache(maxsize=1)
def _master_key() -> bytes:
    env = os.environ.get("PATRON_DATA_KEY")
    key = bytes.fromhex(env) if env else read_or_create_secret("data.key")
    if len(key) != 32:
        raise ValueError("the data key must be 32 bytes (64 hex characters)")
    return key


def _derived(label: bytes) -> bytes:
    return hmac.new(_master_key(), label, hashlib.sha256).digest()


@lru_cache(maxsize=1)
def _aead() -> tuple[str, AESGCM]:
    key = _derived(b"patron-encryption-v1")
    key_id = hashlib.sha256(key).hexdigest()[:8]
    return key_id, AESGCM(key)


@lru_cache(maxsize=1)
def _hash_key() -> bytes:
    return _derived(b"patron-lookup-hash-v1")


def encrypt(plaintext: str, *, context: str = "") -> str:
    """Encrypt ``plaintext``; ``context`` (e.g. the field name) is bound as associated data."""
    key_id, aead = _aead()
    nonce = os.urandom(12)
    sealed = aead.encrypt(nonce, plaintext.encode("utf-8"), context.encode("utf-8"))
    return f"{PREFIX}:{key_id}:{base64.b64encode(nonce + sealed).decode('ascii')}"


def decrypt(token: str, *, context: str = "") -> str:
    try:
        prefix, key_id, body = token.split(":", 2)
    except ValueError as exc:
        raise DecryptionError("not an encrypted value") from exc
    current_id, aead = _aead()
    if prefix != PREFIX or key_id != current_id:
        raise DecryptionError(f"value was encrypted with an unknown key ({prefix}:{key_id})")
    raw = base64.b64decode(body)
    try:
        return aead.decrypt(raw[:12], raw[12:], context.encode("utf-8")).decode("utf-8")
    except Exception as exc:  # cryptography raises InvalidTag
        raise DecryptionError("value failed authentication") from exc


def encrypt_bytes(data: bytes, *, context: str) -> bytes:
    """Encrypt a file's bytes: ``v1:<key id>:`` then nonce, ciphertext and tag, raw."""
    key_id, aead = _aead()
    nonce = os.urandom(12)
    sealed = aead.encrypt(nonce, data, context.encode("utf-8"))
    return f"{PREFIX}:{key_id}:".encode("ascii") + nonce + sealed


def decrypt_bytes(blob: bytes, *, context: str) -> bytes:
    head = f"{PREFIX}:{_aead()[0]}:".encode("ascii")
    if not blob.startswith(head):
        raise DecryptionError("file was encrypted with an unknown key")
    raw = blob[len(head) :]
    try:
        return _aead()[1].decrypt(raw[:12], raw[12:], context.encode("utf-8"))
    except Exception as exc:  # cryptography raises InvalidTag
        raise DecryptionError("file failed authentication") from exc


_SPACES = re.compile(r"[\s\-()]+")


def normalise(value: str, *, kind: str) -> str:
    """Canonical form used for lookups: phones lose spaces/dashes and a +86 prefix, e-mails
    are lower-cased, ``exact`` values (WeChat OpenIDs, app user ids: case matters) are only
    stripped, everything else is stripped and upper-cased (ID numbers end in X)."""
    value = value.strip()
    if kind == "exact":
        return value
    if kind == "phone":
        value = _SPACES.sub("", value)
        for prefix in ("+86", "0086"):
            if value.startswith(prefix):
                value = value[len(prefix) :]
        return value
    if kind == "email":
        return value.lower()
    return _SPACES.sub("", value).upper()


def lookup_hash(value: str, *, kind: str) -> str:
    """Keyed hash of the normalised value, for exact-match search on encrypted fields."""
    canon = normalise(value, kind=kind)
    return hmac.new(_hash_key(), f"{kind}:{canon}".encode(), hashlib.sha256).hexdigest()


def fingerprint_key() -> bytes:
    """Key for BLAKE2b fingerprints of imported rows (which may cover personal data)."""
    return _derived(b"patron-row-fingerprint-v1")


def mask(value: str | None, *, kind: str) -> str:
    """Masked form for roles that may not see the value: 138****1234, z***@example.com."""
    if not value:
        return ""
    if kind == "phone":
        digits = normalise(value, kind="phone")
        if len(digits) >= 7:
            return f"{digits[:3]}****{digits[-4:]}"
        return "*" * len(digits)
    if kind == "email":
        local, _, domain = value.partition("@")
        return f"{local[:1]}***@{domain}" if domain else "***"
    if kind == "id_number":
        return (
            f"{value[:3]}{'*' * max(len(value) - 7, 0)}{value[-4:]}" if len(value) > 7 else "****"
        )
    if kind == "address":
        return value[:6] + "****" if len(value) > 6 else "****"
    return "****"
