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
        "service.reply",
        description="A reply on a service ticket (context: subject, ticket, body, link)",
        zh=(
            "回复：$subject [#$ticket]",
            "$name，您好：\n\n$body\n\n查看或回复此工单：$link\n",
        ),
        en=(
            "Re: $subject [#$ticket]",
            "Hello $name,\n\n$body\n\nSee or answer this ticket: $link\n",
        ),
    ),
    _template(
        "service.escalated",
        description="A ticket went to specialists (context: subject, ticket, link)",
        zh=(
            "您的问题已升级处理 [#$ticket]",
            "$name，您好：\n\n您的问题“$subject”已转交专门团队优先处理，我们会尽快给您答复。\n\n"
            "查看进度：$link\n",
        ),
        en=(
            "Your request was escalated [#$ticket]",
            'Hello $name,\n\nYour request "$subject" is now with a specialist team, who '
            "will answer you as soon as they can.\n\nFollow it here: $link\n",
        ),
    ),
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
        "certification.downgraded",
        description=(
            "A certification expired and the customer keeps its lower fallback level "
            "(context: level, new_level, expires_on, link)"
        ),
        zh=(
            "认证已到期，已调整为$new_level",
            "$name，您好：\n\n您的$level已到期。您仍符合$new_level的条件，"
            "该等级有效期至 $expires_on。如需恢复$level，请通过以下链接重新申请：$link\n",
        ),
        en=(
            "Your certification expired: you keep $new_level",
            "Hello $name,\n\nYour $level certification has expired. You still meet the "
            "conditions of $new_level, which stays valid until $expires_on. To get $level "
            "back, please apply again here: $link\n",
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
        "complaint.resolution_proposed",
        description="A complaint's proposed resolution, to accept or reject (context: resolution, link)",
        zh=(
            "您的投诉处理方案",
            "$name，您好：\n\n关于您的投诉，我们调查后提出以下处理方案：\n$resolution\n\n"
            "请通过以下链接告诉我们您是否接受（如不接受，请说明原因）：$link\n",
        ),
        en=(
            "A proposed resolution of your complaint",
            "Hello $name,\n\nWe looked into your complaint and propose the following:\n"
            "$resolution\n\nPlease tell us whether you accept it (and if not, why) here: $link\n",
        ),
    ),
    _template(
        "complaint.closed",
        description="A complaint was closed (context: outcome)",
        zh=(
            "您的投诉已结案",
            "$name，您好：\n\n您的投诉已处理完毕并结案。结果：$outcome\n感谢您的耐心与反馈。\n",
        ),
        en=(
            "Your complaint is closed",
            "Hello $name,\n\nYour complaint has been dealt with and is now closed. Outcome: "
            "$outcome\nThank you for your patience and for telling us.\n",
        ),
    ),
    _template(
        "aftersales.approved",
        description="An after-sales request was approved (context: request, order, link)",
        zh=(
            "您的售后申请已通过 [$request]",
            "$name，您好：\n\n您的售后申请 $request（订单 $order）已通过。"
            "如需寄回商品，请按页面上的说明寄回；进度可随时在此查看：$link\n",
        ),
        en=(
            "Your after-sales request was approved [$request]",
            "Hello $name,\n\nYour after-sales request $request (order $order) was approved. "
            "If the goods are to come back to us, the page shows how; follow its progress "
            "here: $link\n",
        ),
    ),
    _template(
        "aftersales.rejected",
        description="An after-sales request or its appeal was turned down "
        "(context: request, order, reason, link)",
        zh=(
            "您的售后申请未通过 [$request]",
            "$name，您好：\n\n很抱歉，您的售后申请 $request（订单 $order）未通过。原因：$reason\n\n"
            "如有异议，您可以通过以下链接在线申诉（每个申请可申诉一次）：$link\n",
        ),
        en=(
            "Your after-sales request was not approved [$request]",
            "Hello $name,\n\nWe are sorry: your after-sales request $request (order $order) was "
            "not approved. Reason: $reason\n\nIf you disagree, you can appeal online (once per "
            "request) here: $link\n",
        ),
    ),
    _template(
        "aftersales.refunded",
        description="Money was refunded on an after-sales request (context: request, order, amount)",
        zh=(
            "退款已办理 [$request]",
            "$name，您好：\n\n您的售后申请 $request（订单 $order）已退款 $amount，"
            "将按原支付渠道退回，到账时间以支付机构为准。\n",
        ),
        en=(
            "Your refund is on its way [$request]",
            "Hello $name,\n\nWe refunded $amount on your after-sales request $request (order "
            "$order). It goes back the way you paid; when it arrives depends on your payment "
            "provider.\n",
        ),
    ),
    _template(
        "logistics.exception",
        description="A parcel is delayed or its delivery failed (context: order, carrier, tracking)",
        zh=(
            "您的包裹配送异常，我们正在跟进",
            "$name，您好：\n\n您的订单 $order 的包裹（$carrier $tracking）配送出现异常。"
            "我们已主动联系物流公司跟进，并会尽快告知您进展，给您带来不便深表歉意。\n",
        ),
        en=(
            "There is a problem with your delivery: we are on it",
            "Hello $name,\n\nThe parcel of your order $order ($carrier $tracking) has run "
            "into a delivery problem. We have contacted the carrier and will tell you what "
            "happens next. We are sorry for the trouble.\n",
        ),
    ),
    _template(
        "marketing.announcement",
        description="A marketing announcement (context: title, text); needs marketing consent",
        zh=("$title", "$name，您好：\n\n$text\n"),
        en=("$title", "Hello $name,\n\n$text\n"),
    ),
    _template(
        "care.birthday",
        description="A birthday greeting with the grade's offer (context: offer); needs "
        "marketing consent",
        zh=(
            "祝您生日快乐",
            "$name，您好：\n\n今天是您的生日，祝您生日快乐，万事如意！\n$offer\n",
        ),
        en=(
            "Happy birthday!",
            "Hello $name,\n\nHappy birthday from all of us: we wish you a wonderful day and "
            "a happy year ahead!\n$offer\n",
        ),
    ),
    _template(
        "care.holiday",
        description="A holiday greeting with the grade's offer (context: holiday, greeting, "
        "offer); needs marketing consent",
        zh=(
            "$greeting",
            "$name，您好：\n\n值此$holiday之际，祝您和家人$greeting！\n$offer\n",
        ),
        en=(
            "$greeting",
            "Hello $name,\n\n$greeting! For $holiday, all of us wish you and your family "
            "the very best.\n$offer\n",
        ),
    ),
    _template(
        "service.csat",
        description="How satisfied the customer is with a solved ticket (context: title, link)",
        zh=(
            "您对本次服务满意吗？",
            "$name，您好：\n\n您的问题“$title”已处理完毕。请花一分钟为本次服务打分（1–5 星），"
            "帮助我们做得更好：$link\n",
        ),
        en=(
            "How did we do?",
            "Hello $name,\n\nYour request “$title” has been solved. Please take a "
            "minute to rate our service (1–5 stars) and help us do better: $link\n",
        ),
    ),
    _template(
        "survey.invitation",
        description="An invitation to answer a satisfaction survey (context: title, link)",
        zh=(
            "邀请您参与：$title",
            "$name，您好：\n\n诚邀您参与我们的满意度调查“$title”，只需几分钟：$link\n\n"
            "感谢您的宝贵意见！\n",
        ),
        en=(
            "Your opinion, please: $title",
            "Hello $name,\n\nWe would value your answers to our survey “$title”; "
            "it takes a few minutes: $link\n\nThank you for your time!\n",
        ),
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
