"""Mapping files: how a shop's own export maps onto Patron's columns and values (TOML).

```toml
source = "myshop"            # the (source, external_id) namespace; default: the kind's file name
timezone = "Asia/Shanghai"   # zone of times written without one

[columns]                    # patron column = "their column"
external_id = "订单编号"
placed_at = "下单时间"

[values.status]              # for a patron column: "their value" = "patron value"
"交易成功" = "completed"
"交易关闭" = "cancelled"

[defaults]                   # value when the column is absent or the cell empty
currency = "CNY"

[formats]                    # strptime formats for date/time columns
placed_at = "%Y/%m/%d %H:%M"
```
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from patron.errors import ValidationFailed


@dataclass(frozen=True)
class Mapping:
    source: str | None = None
    timezone: str = "Asia/Shanghai"
    columns: dict[str, str] = field(default_factory=dict)
    values: dict[str, dict[str, str]] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)
    formats: dict[str, str] = field(default_factory=dict)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def column_for(self, ours: str) -> str:
        return self.columns.get(ours, ours)

    def apply(self, record: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
        """Return the record under Patron's column names with values mapped and defaults filled."""
        out: dict[str, Any] = {}
        for name in names:
            raw = record.get(self.column_for(name))
            if raw is None or (isinstance(raw, str) and raw.strip() == ""):
                raw = self.defaults.get(name)
            table = self.values.get(name)
            if table and raw is not None:
                key = raw.strip() if isinstance(raw, str) else str(raw)
                raw = table.get(key, raw)
            out[name] = raw
        return out


_KEYS = {"source", "timezone", "columns", "values", "defaults", "formats"}


def mapping_load(path: Path) -> Mapping:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValidationFailed(f"mapping file {path}: {exc}") from None
    unknown = set(data) - _KEYS
    if unknown:
        raise ValidationFailed(
            f"mapping file {path}: unknown key(s) {', '.join(sorted(unknown))}; "
            f"allowed: {', '.join(sorted(_KEYS))}"
        )
    mapping = Mapping(
        source=data.get("source"),
        timezone=data.get("timezone", "Asia/Shanghai"),
        columns={str(k): str(v) for k, v in data.get("columns", {}).items()},
        values={
            str(k): {str(a): str(b) for a, b in v.items()}
            for k, v in data.get("values", {}).items()
        },
        defaults=dict(data.get("defaults", {})),
        formats={str(k): str(v) for k, v in data.get("formats", {}).items()},
    )
    try:
        mapping.zone  # noqa: B018 - validate the zone name early
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationFailed(
            f"mapping file {path}: unknown time zone '{mapping.timezone}'"
        ) from None
    return mapping
