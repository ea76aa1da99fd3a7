"""Arrow allocates with jemalloc in Patron's processes (see ``patron/__init__.py``)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

POOL = "import patron, pyarrow as pa; print(pa.default_memory_pool().backend_name)"


@pytest.mark.parametrize(("chosen", "expected"), [(None, "jemalloc"), ("system", "system")])
def test_arrow_uses_jemalloc_unless_told_otherwise(chosen: str | None, expected: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    if chosen:
        env["ARROW_DEFAULT_MEMORY_POOL"] = chosen
    found = subprocess.run(
        [sys.executable, "-c", POOL], env=env, capture_output=True, text=True, check=True
    )
    assert found.stdout.strip() == expected
