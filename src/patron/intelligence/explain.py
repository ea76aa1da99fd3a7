"""Reasons in plain words that can be shown in any language.

A reason is stored as data and turned into a sentence only when someone reads it, in their
language: a million customers' reasons are written every night and read a few at a time.

Two shapes, both JSON objects:

- ``{"key": …, "params": {…}}`` or ``{"template": …, "params": {…}}``: an English sentence template with ``str.format``
  fields (``{days}``, ``{value:,.2f}``) and its parameters. The reader translates the template
  (the web app through Django's catalogue: templates are marked with ``N_`` so they can be
  collected) and fills the fields. A parameter that depends on the language itself is a dict
  ``{"en": …, "zh-hans": …}``. A ``key`` names a template of
  ``patron.intelligence.reason_texts.TEXTS`` (the scores' reasons, written for every
  customer, say which sentence rather than repeating it).
- ``{"key" or "template": …, "feature": name, "value": v, "median": m, "points": p}``: a model's
  reason about one feature ("return rate 38 % (shop median 9 %): −41 points"). The feature's
  label and the formatting of its values (units, percentages, days) come from
  ``patron.intelligence.features.FEATURES`` at reading time.

Reasons stored as plain strings (before templates existed) are shown as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

Params = dict[str, Any]


def N_(template: str) -> str:
    """Mark a template for translation without translating it here (like gettext_noop)."""
    return template


@dataclass(frozen=True)
class Reason:
    template: str
    params: Params = field(default_factory=dict)

    def render(self, language: str = "en", translate: Callable[[str], str] | None = None) -> str:
        return render(self.to_json(), language=language, translate=translate)

    def to_json(self) -> dict[str, Any]:
        return {"template": self.template, "params": self.params}


def feature_reason(
    template: str, feature: str, value: float | None, median: float | None, points: float
) -> dict[str, Any]:
    """A model's reason about one feature, as stored."""
    return {
        "template": template,
        "feature": feature,
        "value": value,
        "median": median,
        "points": points,
    }


def _pick(value: Any, language: str) -> Any:
    if isinstance(value, Mapping):
        if language in value:
            return value[language]
        short = language.split("-")[0]
        for key, text in value.items():
            if key.split("-")[0] == short:
                return text
        return value.get("en", next(iter(value.values()), ""))
    return value


@cache
def _texts() -> Mapping[str, str]:
    from patron.intelligence.reason_texts import TEXTS

    return TEXTS


def template_of(reason: Mapping[str, Any]) -> str:
    """The reason's English template (by key or as stored)."""
    if "key" in reason:
        return _texts().get(str(reason["key"]), str(reason["key"]))
    return str(reason.get("template", ""))


@cache
def _features() -> Mapping[str, Any]:
    from patron.intelligence.features import FEATURES  # imports Ibis: only when reading

    return FEATURES


def _feature_params(reason: Mapping[str, Any], language: str) -> Params:
    name = str(reason.get("feature", ""))
    info = _features().get(name)
    value, median = reason.get("value"), reason.get("median")
    if info is None:
        return {"feature": name, "value": value, "median": median, "points": reason["points"]}
    zh = language.startswith("zh")
    return {
        "feature": info.label_zh if zh else info.label_en,
        "value": info.format(value, language=language),
        "median": info.format(median, language=language),
        "points": reason.get("points", 0.0),
    }


def render(
    reason: Mapping[str, Any] | str,
    *,
    language: str = "en",
    translate: Callable[[str], str] | None = None,
) -> str:
    """The sentence in ``language``; ``translate`` maps the English template to the target
    language's (gettext)."""
    if isinstance(reason, str):
        return reason
    english = template_of(reason)
    template = translate(english) if translate is not None else english
    if "feature" in reason:
        params = _feature_params(reason, language)
    else:
        params = {
            key: _pick(value, language) for key, value in dict(reason.get("params", {})).items()
        }
    try:
        return template.format(**params)
    except (KeyError, IndexError, TypeError, ValueError):
        # A translation that lost a field must not hide the reason: fall back to English;
        # a sentence that is not a template at all is shown as it is.
        try:
            return english.format(**params)
        except (KeyError, IndexError, TypeError, ValueError):
            return english
