"""The OpenAPI spec names each schema once: two pydantic classes with the same name in
different apps would be merged into one component, and one of them would be documented (and
fuzzed) with the other's fields."""

from __future__ import annotations

from collections import defaultdict

from ninja import Schema

import patron.api  # noqa: F401  (mounts every router, importing every schema)


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
