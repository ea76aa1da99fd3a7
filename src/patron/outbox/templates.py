"""The messages Patron can send: one registry, name -> subject and body per language.

Texts are ``string.Template`` strings (``$name``, ``${name}``; ``$$`` is a dollar sign), plain
text, never HTML-escaped. ``$name`` is always the customer's name; every other placeholder comes
from the caller's ``context`` and must be there: a missing key is an error naming the template
and the key, never a message with a hole in it.

Adding a message is adding one ``MessageTemplate`` to ``TEMPLATES`` with both languages.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from string import Template
from typing import Any

ZH = "zh-hans"
EN = "en"
LANGUAGES = (ZH, EN)
DEFAULT_LANGUAGE = ZH


class TemplateError(ValueError):
    """An unknown template or a context that does not fill it (the services answer 422)."""


@dataclass(frozen=True)
class MessageTemplate:
    name: str
    subject: Mapping[str, str]  # language -> text
    body: Mapping[str, str]
    description: str = ""

    def placeholders(self) -> set[str]:
        """Every ``$key`` used in any language, ``name`` included."""
        found: set[str] = set()
        for text in (*self.subject.values(), *self.body.values()):
            found.update(Template(text).get_identifiers())
        return found

    def context_keys(self) -> tuple[str, ...]:
        """What the caller must give in ``context``."""
        return tuple(sorted(self.placeholders() - {"name"}))


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str
    language: str


def _template(
    name: str, *, zh: tuple[str, str], en: tuple[str, str], description: str = ""
) -> MessageTemplate:
    return MessageTemplate(
        name=name,
        subject={ZH: zh[0], EN: en[0]},
        body={ZH: zh[1], EN: en[1]},
        description=description,
    )


_TEMPLATES = (
    _template(
        "certification.info_requested",
        description="A certification application needs more documents (context: missing, link)",
        zh=(
            "请补充认证资料",
            "$name，您好：\n\n您的认证申请还需要补充以下资料：\n$missing\n\n"
            "请通过以下链接补充：$link\n",
        ),
        en=(
            "More information needed for your certification",
            "Hello $name,\n\nYour certification application needs the following before we "
            "can continue:\n$missing\n\nPlease add it here: $link\n",
        ),
    ),
    _template(
        "certification.approved",
        description="A certification was granted (context: level)",
        zh=(
            "认证已通过",
            "$name，您好：\n\n恭喜，您的认证申请已通过，认证等级：$level。\n",
        ),
        en=(
            "Your certification was approved",
            "Hello $name,\n\nCongratulations: your certification was approved at level $level.\n",
        ),
    ),
    _template(
        "certification.rejected",
        description="A certification application was turned down (context: reason)",
        zh=(
            "认证未通过",
            "$name，您好：\n\n很抱歉，您的认证申请未通过。原因：$reason\n\n"
            "如有疑问，请联系客服。\n",
        ),
        en=(
            "Your certification was not approved",
            "Hello $name,\n\nWe are sorry: your certification application was not approved. "
            "Reason: $reason\n\nIf you have questions, please contact our service team.\n",
        ),
    ),
    _template(
        "certification.expiring",
        description="A certification expires soon (context: level, expires_on, link)",
        zh=(
            "认证即将到期",
            "$name，您好：\n\n您的$level认证将于 $expires_on 到期。请通过以下链接续期：$link\n",
        ),
        en=(
            "Your certification expires soon",
            "Hello $name,\n\nYour $level certification expires on $expires_on. "
            "Please renew it here: $link\n",
        ),
    ),
    _template(
        "certification.expired",
        description="A certification has expired (context: level)",
        zh=(
            "认证已到期",
            "$name，您好：\n\n您的$level认证已到期。如需继续享受认证权益，请重新申请。\n",
        ),
        en=(
            "Your certification has expired",
            "Hello $name,\n\nYour $level certification has expired. To keep its benefits, "
            "please apply again.\n",
        ),
    ),
    _template(
        "change_request.decided",
        description="A request to change certified data was decided (context: outcome, reason)",
        zh=(
            "您的变更申请已处理",
            "$name，您好：\n\n您的资料变更申请已处理，结果：$outcome。说明：$reason\n",
        ),
        en=(
            "Your change request was decided",
            "Hello $name,\n\nYour request to change your details was decided: $outcome. "
            "Note: $reason\n",
        ),
    ),
    _template(
        "loyalty.tier_up",
        description="The customer moved up a loyalty tier (context: tier)",
        zh=(
            "会员等级提升",
            "$name，您好：\n\n恭喜您升级为$tier会员，感谢您的支持！\n",
        ),
        en=(
            "You moved up a membership tier",
            "Hello $name,\n\nCongratulations: you are now a $tier member. Thank you for "
            "shopping with us!\n",
        ),
    ),
    _template(
        "appeal.decided",
        description="An appeal against a restriction was decided (context: outcome, reason)",
        zh=(
            "您的申诉已处理",
            "$name，您好：\n\n您的申诉已处理，结果：$outcome。说明：$reason\n",
        ),
        en=(
            "Your appeal was decided",
            "Hello $name,\n\nYour appeal was decided: $outcome. Note: $reason\n",
        ),
    ),
    _template(
        "marketing.announcement",
        description="A marketing announcement (context: title, text); needs marketing consent",
        zh=("$title", "$name，您好：\n\n$text\n"),
        en=("$title", "Hello $name,\n\n$text\n"),
    ),
)

TEMPLATES: dict[str, MessageTemplate] = {t.name: t for t in _TEMPLATES}

#: Appended to every marketing message; ``$link`` is the customer's unsubscribe link.
UNSUBSCRIBE_FOOTER = {
    ZH: "\n退订请点击：$link\n",
    EN: "\nTo stop receiving these messages: $link\n",
}


def language_for(preferred: str | None, default: str = DEFAULT_LANGUAGE) -> str:
    """One of ``LANGUAGES`` for a customer's language ('en-US' -> 'en', 'zh-CN' -> 'zh-hans'),
    else ``default`` (itself normalised; zh-Hans when nothing fits)."""
    for code in (preferred, default):
        text = (code or "").strip().lower().replace("_", "-")
        if text.startswith("zh"):
            return ZH
        if text.split("-")[0] == EN:
            return EN
    return ZH


def template_get(name: str) -> MessageTemplate:
    found = TEMPLATES.get(name)
    if found is None:
        raise TemplateError(
            f"message template {name!r} is unknown; known: {', '.join(sorted(TEMPLATES))}"
        )
    return found


def _fill(template_name: str, text: str, values: Mapping[str, str]) -> str:
    try:
        return Template(text).substitute(values)
    except KeyError as error:
        key = error.args[0]
        raise TemplateError(
            f"message template {template_name!r} needs context key {key!r}"
        ) from None
    except ValueError as error:  # a lone '$' in a registered text: a bug in this module
        raise TemplateError(f"message template {template_name!r}: {error}") from None


def render(
    name: str,
    *,
    language: str,
    customer_name: str,
    context: Mapping[str, Any] | None = None,
    unsubscribe_link: str = "",
) -> Rendered:
    """Subject and body of template ``name`` in ``language`` (one of ``LANGUAGES``).

    Every placeholder the template uses in any language must be in ``context``, so that a
    caller's missing key shows at once and not only for customers of the other language.
    With ``unsubscribe_link`` the unsubscribe footer is appended to the body.
    """
    template = template_get(name)
    if language not in LANGUAGES:
        raise TemplateError(f"language {language!r}: use one of {', '.join(LANGUAGES)}")
    values = {str(key): str(value) for key, value in (context or {}).items()}
    missing = [key for key in template.context_keys() if key not in values]
    if missing:
        raise TemplateError(
            f"message template {name!r} needs context key {missing[0]!r}"
            + (f" (also missing: {', '.join(repr(k) for k in missing[1:])})" if missing[1:] else "")
        )
    values["name"] = customer_name
    subject = _fill(name, template.subject[language], values)
    body = _fill(name, template.body[language], values)
    if unsubscribe_link:
        body = (
            body.rstrip("\n")
            + "\n"
            + _fill(name, UNSUBSCRIBE_FOOTER[language], {"link": unsubscribe_link})
        )
    return Rendered(subject=subject.strip(), body=body, language=language)
