"""Pure parsing and validation of import values (no database). Each parser takes the raw cell
(text from CSV/JSONL, or a native value from Parquet) and returns the typed value or raises
``ValueError`` with a reason a person can act on."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal
from zoneinfo import ZoneInfo

Parser = Callable[[Any, "ParseContext"], Any]

_TRUE = {"1", "true", "yes", "y", "t", "是"}
_FALSE = {"0", "false", "no", "n", "f", "否"}


@dataclass(frozen=True)
class ParseContext:
    """Batch-level settings that parsing depends on."""

    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    datetime_formats: dict[str, str] = field(default_factory=dict)
    field_name: str = ""


def parse_text(raw: Any, ctx: ParseContext) -> str:
    return str(raw).strip()


def parse_int(raw: Any, ctx: ParseContext) -> int:
    if isinstance(raw, bool):
        raise ValueError("expected a whole number, got a boolean")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float):
        if raw.is_integer():
            return int(raw)
        raise ValueError("expected a whole number")
    text = str(raw).strip()
    try:
        return int(text)
    except ValueError:
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise ValueError("expected a whole number") from None
        if number == number.to_integral_value():
            return int(number)
        raise ValueError("expected a whole number") from None


def parse_decimal(raw: Any, ctx: ParseContext) -> Decimal:
    """Money and other exact numbers. Floats from Parquet are taken at their shortest repr."""
    if isinstance(raw, bool):
        raise ValueError("expected a decimal number, got a boolean")
    if isinstance(raw, Decimal):
        value = raw
    elif isinstance(raw, int | float):
        value = Decimal(repr(raw)) if isinstance(raw, float) else Decimal(raw)
    else:
        text = str(raw).strip().replace(",", "")
        for symbol in ("¥", "￥", "$", "R$"):
            text = text.removeprefix(symbol)
        try:
            value = Decimal(text)
        except InvalidOperation:
            raise ValueError("expected a decimal number like 199.00") from None
    if not value.is_finite():
        raise ValueError("expected a finite number")
    return value.quantize(Decimal("0.01"))


def parse_bool(raw: Any, ctx: ParseContext) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("expected true or false")


def _aware(value: datetime, ctx: ParseContext) -> datetime:
    if value.tzinfo is None:
        value = value.replace(tzinfo=ctx.timezone)
    return value.astimezone(UTC)


def parse_datetime(raw: Any, ctx: ParseContext) -> datetime:
    """ISO 8601 text, a configured strftime format, a Unix timestamp (s), or a native value.
    Naive times are read in the batch's time zone; the result is aware and in UTC."""
    if isinstance(raw, datetime):
        return _aware(raw, ctx)
    if isinstance(raw, date):
        return _aware(datetime(raw.year, raw.month, raw.day), ctx)
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return datetime.fromtimestamp(float(raw), tz=UTC)
    text = str(raw).strip()
    fmt = ctx.datetime_formats.get(ctx.field_name)
    if fmt:
        try:
            return _aware(datetime.strptime(text, fmt), ctx)
        except ValueError:
            raise ValueError(f"not a date-time in the format {fmt}") from None
    if text.isdigit() and len(text) >= 9:
        return datetime.fromtimestamp(int(text), tz=UTC)
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("/", "-"))
    except ValueError:
        raise ValueError("not a valid date-time (expected e.g. 2024-03-01 14:05:00)") from None
    return _aware(value, ctx)


def parse_date(raw: Any, ctx: ParseContext) -> date:
    if isinstance(raw, datetime):
        return raw.date()
    if isinstance(raw, date):
        return raw
    text = str(raw).strip()
    fmt = ctx.datetime_formats.get(ctx.field_name)
    try:
        if fmt:
            return datetime.strptime(text, fmt).date()
        if len(text) == 8 and text.isdigit():
            return date(int(text[:4]), int(text[4:6]), int(text[6:]))
        return date.fromisoformat(text[:10].replace("/", "-"))
    except ValueError:
        raise ValueError("not a valid date (expected YYYY-MM-DD)") from None


FieldType = Literal["text", "int", "decimal", "datetime", "date", "bool", "choice"]

BASE_PARSERS: dict[str, Parser] = {
    "text": parse_text,
    "int": parse_int,
    "decimal": parse_decimal,
    "datetime": parse_datetime,
    "date": parse_date,
    "bool": parse_bool,
    "choice": parse_text,
}


@dataclass(frozen=True)
class FieldSpec:
    """One import column: its type and the constraints its values must meet."""

    name: str
    type: FieldType = "text"
    required: bool = False
    max_length: int | None = None
    choices: tuple[str, ...] = ()
    low: int | None = None
    high: int | None = None

    def choice_error(self) -> str:
        return f"must be one of: {', '.join(self.choices)} (map other values with --mapping)"

    def range_error(self) -> str:
        if self.high is None:
            return "must not be negative" if self.low == 0 else f"must be at least {self.low}"
        return f"must be between {self.low} and {self.high}"


def parse_value(spec: FieldSpec, raw: Any, ctx: ParseContext) -> Any:
    """Parse one raw value and check the field's constraints; ``ValueError`` says why not."""
    value = BASE_PARSERS[spec.type](raw, ctx)
    if spec.type == "choice" and value not in spec.choices:
        lowered = value.lower()
        if lowered not in spec.choices:
            raise ValueError(spec.choice_error())
        value = lowered
    if (spec.low is not None and value < spec.low) or (spec.high is not None and value > spec.high):
        raise ValueError(spec.range_error())
    if spec.max_length is not None and isinstance(value, str) and len(value) > spec.max_length:
        raise ValueError(f"longer than {spec.max_length} characters")
    return value
