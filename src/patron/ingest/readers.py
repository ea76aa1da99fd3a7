"""Reading import files: CSV, Parquet and JSONL into (row number, record) pairs.

Row numbers are what a person finds in the file: the physical line for CSV (header = line 1)
and JSONL, the 1-based row index for Parquet.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from patron.errors import ValidationFailed

FORMATS = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}


def file_format(path: Path) -> str:
    try:
        return FORMATS[path.suffix.lower()]
    except KeyError:
        raise ValidationFailed(
            f"{path.name}: unknown file type '{path.suffix}'; use .csv, .parquet or .jsonl"
        ) from None


def read_header(path: Path) -> list[str]:
    fmt = file_format(path)
    if fmt == "csv":
        with path.open(newline="", encoding="utf-8-sig") as handle:
            return next(csv.reader(handle), [])
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return list(pq.read_schema(path).names)
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                return list(json.loads(line).keys())
    return []


def read_records(
    path: Path, *, header: list[str] | None = None
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (row number, record). ``header`` names the columns of a CSV that has none."""
    fmt = file_format(path)
    if fmt == "csv":
        yield from _read_csv(path, header)
    elif fmt == "parquet":
        yield from _read_parquet(path)
    else:
        yield from _read_jsonl(path)


def _read_csv(path: Path, header: list[str] | None) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            names = header or next(reader, None)
            if names is None:
                return
            names = [n.strip() for n in names]
            width = len(names)
            line = reader.line_num + 1
            for cells in reader:
                if not cells:
                    line = reader.line_num + 1
                    continue
                if len(cells) != width:
                    raise ValidationFailed(
                        f"{path.name} line {line}: expected {width} columns, found {len(cells)}",
                        details=[
                            {
                                "file": path.name,
                                "line": line,
                                "field": "",
                                "value": "",
                                "reason": f"expected {width} columns, found {len(cells)}",
                            }
                        ],
                    )
                yield line, dict(zip(names, cells, strict=True))
                line = reader.line_num + 1
    except UnicodeDecodeError as exc:
        raise ValidationFailed(
            f"{path.name}: not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from None


def _read_parquet(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    import pyarrow.parquet as pq

    row = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=65_536):
        for record in batch.to_pylist():
            row += 1
            yield row, record


def _read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValidationFailed(
                    f"{path.name} line {line_no}: not valid JSON ({exc.msg})",
                    details=[
                        {
                            "file": path.name,
                            "line": line_no,
                            "field": "",
                            "value": line[:80],
                            "reason": f"not valid JSON ({exc.msg})",
                        }
                    ],
                ) from None
            if not isinstance(record, dict):
                raise ValidationFailed(f"{path.name} line {line_no}: expected a JSON object")
            yield line_no, record
