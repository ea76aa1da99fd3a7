"""The OpenAPI spec names each schema once: two pydantic classes with the same name in
different apps would be merged into one component, and one of them would be documented (and
fuzzed) with the other's fields."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Annotated, Any, get_args, get_origin

import pytest
from ninja import Schema
from pydantic import BeforeValidator, TypeAdapter, ValidationError

import patron.api
from patron import apitext


def _schemas(cls: type) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        if sub.__module__.startswith("patron."):
            found.append(sub)
        found.extend(_schemas(sub))
    return found


def test_every_api_schema_has_its_own_name() -> None:
    modules: dict[str, set[str]] = defaultdict(set)
    for schema in _schemas(Schema):
        modules[schema.__name__].add(schema.__module__)
    clashes = {name: sorted(found) for name, found in modules.items() if len(found) > 1}
    assert clashes == {}


# ---------------------------------------------------------------------- dates are text


def _request_schemas() -> set[str]:
    """Names of the components a request body uses, directly or nested."""
    spec = patron.api.api.get_openapi_schema(path_prefix="/api/")
    components = spec["components"]["schemas"]
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                name = ref.rsplit("/", 1)[-1]
                if name not in found:
                    found.add(name)
                    walk(components[name])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for operations in spec["paths"].values():
        for operation in operations.values():
            walk(operation.get("requestBody", {}))
    return found


def _is_date(annotation: Any) -> bool:
    """Whether a field's type is (or holds) a date or a date-time not read through apitext."""
    if get_origin(annotation) is Annotated:
        base, *metadata = get_args(annotation)
        ours = any(
            isinstance(m, BeforeValidator) and m.func in apitext.DATE_READERS for m in metadata
        )
        return not ours and _is_date(base)
    if isinstance(annotation, type):
        return issubclass(annotation, date)
    return any(_is_date(arg) for arg in get_args(annotation))


def test_every_date_a_request_takes_is_read_as_iso_text() -> None:
    # pydantic's lax mode reads a number as seconds since 1970, which the spec's
    # format: date-time does not allow (CI's fuzzer sent -625507 and got a 200)
    requests = _request_schemas()
    lax = sorted(
        f"{schema.__module__}.{schema.__name__}.{name}"
        for schema in _schemas(Schema)
        if schema.__name__ in requests
        for name, field in schema.model_fields.items()
        if _is_date(
            Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
        )
    )
    assert lax == []


@pytest.mark.parametrize("value", [-625507, 0, 1.5, True, "1700000000", "yesterday", "2026-5-1"])
def test_a_number_or_a_non_iso_text_is_no_date(value: Any) -> None:
    for kind in (apitext.DateText, apitext.DateTimeText, apitext.AwareDateTimeText):
        with pytest.raises(ValidationError, match="ISO 8601"):
            TypeAdapter(kind).validate_python(value)


def test_iso_texts_and_python_objects_are_dates() -> None:
    assert TypeAdapter(apitext.DateText).validate_python("2026-05-01") == date(2026, 5, 1)
    assert TypeAdapter(apitext.DateTimeText).validate_python("2026-05-01T10:00:00") == (
        datetime(2026, 5, 1, 10)
    )
    aware = datetime(2026, 5, 1, 2, tzinfo=UTC)
    assert TypeAdapter(apitext.AwareDateTimeText).validate_python("2026-05-01T10:00+08:00") == (
        aware
    )
    assert TypeAdapter(apitext.AwareDateTimeText).validate_python(aware) == aware
    with pytest.raises(ValidationError):  # a date-time without its offset
        TypeAdapter(apitext.AwareDateTimeText).validate_python("2026-05-01T10:00:00")
    with pytest.raises(ValidationError, match="ISO 8601"):  # a date is a whole day
        TypeAdapter(apitext.DateText).validate_python("2026-05-01T00:00:00")


def test_no_pattern_lets_the_spec_and_pydantic_disagree_on_u0085() -> None:
    # ECMAScript's \s (the spec's readers) leaves U+0085 out, pydantic's Rust regex counts it:
    # a pattern with \s must name \x85 too, or a schema-valid value is refused (CI's fuzzer
    # sent a category code with U+0085 and got a 422)
    spec = json.dumps(patron.api.api.get_openapi_schema(path_prefix="/api/"))
    patterns = set(re.findall(r'"pattern": "((?:[^"\\]|\\.)*)"', spec))
    lax = sorted(p for p in patterns if "\\\\s" in p and "\\\\x85" not in p)
    assert patterns and lax == []


def _query_options() -> Iterator[tuple[str, dict[str, Any]]]:
    """Every query parameter of the API as "METHOD path ?name", with each schema it may
    match (the schema itself and its anyOf options)."""
    spec = patron.api.api.get_openapi_schema(path_prefix="/api/")
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                if parameter["in"] != "query":
                    continue
                schema = parameter.get("schema", {})
                for option in [schema, *schema.get("anyOf", [])]:
                    yield f"{method.upper()} {path} ?{parameter['name']}", option


def test_every_text_a_query_takes_says_what_it_may_hold() -> None:
    # A query text without a pattern, choices or a format lets NUL through, which PostgreSQL
    # refuses with a 500 (CI's fuzzer: GET /api/risk/alerts?rule=%C2%83%00).
    loose = [
        name
        for name, option in _query_options()
        if option.get("type") == "string"
        and not (option.get("pattern") or option.get("enum") or option.get("format"))
    ]
    assert loose == []


def test_every_integer_a_query_takes_has_its_bounds() -> None:
    # Without a maximum, JSON Schema's integers include 1.5e+167, which the fuzzer sends as
    # such and pydantic refuses with a 422 (CI: GET /api/risk/blacklist?customer_id=1.54e+167).
    unbounded = [
        name
        for name, option in _query_options()
        if option.get("type") == "integer" and not ("maximum" in option and "minimum" in option)
    ]
    assert unbounded == []
