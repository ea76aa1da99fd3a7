"""Reasons in plain words that can be shown in any language.

A reason is a sentence template (English, with ``str.format`` fields such as ``{rate:.0%}`` or
``{value:,.2f}``) and its parameters.
The library writes them; whoever shows them translates the template (the web app through
Django's gettext catalogue: the templates are marked with ``N_`` so ``makemessages`` finds
them) and fills in the parameters. A parameter that itself depends on the language (a feature's
label, a value with its unit) is a dict ``{"en": …, "zh-hans": …}``.

Stored as JSON: ``{"template": …, "params": {…}, "text": <English sentence>}``; ``text``
keeps scripts and the audit trail readable without a renderer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
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
        data = {"template": self.template, "params": self.params}
        return {**data, "text": render(data)}


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


def render(
    reason: Mapping[str, Any] | str,
    *,
    language: str = "en",
    translate: Callable[[str], str] | None = None,
) -> str:
    """The sentence in ``language``; ``translate`` maps the English template to the target
    language's (gettext). A bare string (reasons stored before templates existed) is returned
    as it is."""
    if isinstance(reason, str):
        return reason
    template = str(reason.get("template", ""))
    if translate is not None:
        template = translate(template)
    params = {key: _pick(value, language) for key, value in dict(reason.get("params", {})).items()}
    try:
        return template.format(**params)
    except (KeyError, IndexError, TypeError, ValueError):
        # A translation that lost a field must not hide the reason: fall back to English.
        return str(reason.get("text") or str(reason.get("template", "")).format(**params))
