from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

SHARED_DATA = Path(__file__).resolve().parents[4].parent / "shared" / "data"


@pytest.fixture
def lake(tmp_path: Path, settings: Any) -> Path:
    """A private PATRON_HOME for the test: the event lake and rejects folder live there."""
    settings.HOME = tmp_path
    settings.LAKE_DIR = tmp_path / "lake"
    return settings.LAKE_DIR


def shared_data(*parts: str) -> Path:
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not found at {path} (the shared/ folder sits beside the repo)")
    return path


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[object]]) -> Path:
    import csv

    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path
