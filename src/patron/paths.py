"""Where Patron keeps its data: ``PATRON_HOME`` (default ``./.patron/``).

It holds the SQLite file, the Parquet lake, the secret key and the data-encryption key file.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def patron_home() -> Path:
    home = Path(os.environ.get("PATRON_HOME", ".patron")).expanduser().resolve()
    home.mkdir(parents=True, exist_ok=True)
    return home


def lake_dir() -> Path:
    path = patron_home() / "lake"
    path.mkdir(parents=True, exist_ok=True)
    return path


def read_or_create_secret(name: str, nbytes: int = 32) -> bytes:
    """Return the secret stored in ``PATRON_HOME/<name>``, creating it (mode 0600) on first use.

    Secrets are never in the repository: a fresh home gets fresh keys.
    """
    path = patron_home() / name
    if not path.exists():
        value = secrets.token_hex(nbytes)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(value)
    return bytes.fromhex(path.read_text().strip())
