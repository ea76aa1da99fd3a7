"""The template registry: every message in both languages, and clear errors."""

from __future__ import annotations

import pytest

from patron.outbox import templates

SAMPLE_CONTEXT = {
    "missing": "营业执照",
    "link": "https://shop.example/c/1",
    "level": "金牌",
    "new_level": "实名认证",
    "reason": "资料不全",
    "expires_on": "2026-12-31",
    "outcome": "通过",
    "tier": "黄金",
    "title": "双十一",
    "text": "全场八折",
    "request": "AS12",
    "order": "SO-0001",
    "amount": "199.00 CNY",
    "carrier": "顺丰速运",
    "tracking": "SF1234567890",
    "resolution": "退款并补发一件新品",
    "subject": "订单还没发货",
    "ticket": "1024",
    "body": "已为您催促仓库，今天发出。",
    "offer": "特为您送上一张满200元减20元优惠券，券码：ABCD2345EF。",
    "holiday": "中秋节",
    "greeting": "中秋快乐，阖家团圆",
}

REQUIRED = {
    "certification.info_requested": ("link", "missing"),
    "certification.approved": ("level",),
    "certification.rejected": ("reason",),
    "certification.expiring": ("expires_on", "level", "link"),
    "certification.expired": ("level",),
    "certification.downgraded": ("expires_on", "level", "link", "new_level"),
    "change_request.decided": ("outcome", "reason"),
    "loyalty.tier_up": ("tier",),
    "appeal.decided": ("outcome", "reason"),
    "aftersales.approved": ("link", "order", "request"),
    "aftersales.rejected": ("link", "order", "reason", "request"),
    "aftersales.refunded": ("amount", "order", "request"),
    "logistics.exception": ("carrier", "order", "tracking"),
    "complaint.resolution_proposed": ("link", "resolution"),
    "complaint.closed": ("outcome",),
    "service.csat": ("link", "title"),
    "service.reply": ("body", "link", "subject", "ticket"),
    "service.escalated": ("link", "subject", "ticket"),
    "survey.invitation": ("link", "title"),
    "care.birthday": ("offer",),
    "care.holiday": ("greeting", "holiday", "offer"),
}


@pytest.mark.parametrize(("name", "keys"), sorted(REQUIRED.items()))
def test_the_templates_others_use_exist_with_their_context(name: str, keys: tuple[str]) -> None:
    assert templates.template_get(name).context_keys() == keys


@pytest.mark.parametrize("name", sorted(templates.TEMPLATES))
@pytest.mark.parametrize("language", templates.LANGUAGES)
def test_every_template_renders_in_every_language(name: str, language: str) -> None:
    # when
    rendered = templates.render(
        name, language=language, customer_name="王小明", context=SAMPLE_CONTEXT
    )

    # then
    assert rendered.language == language
    assert rendered.subject and "$" not in rendered.subject
    assert "王小明" in rendered.body and "$" not in rendered.body


@pytest.mark.parametrize("name", sorted(templates.TEMPLATES))
def test_both_languages_use_the_same_placeholders(name: str) -> None:
    from string import Template

    template = templates.TEMPLATES[name]
    used = {
        language: set(Template(template.subject[language]).get_identifiers())
        | set(Template(template.body[language]).get_identifiers())
        for language in templates.LANGUAGES
    }
    assert used[templates.ZH] == used[templates.EN]


def test_a_rendered_message_in_chinese() -> None:
    # when
    rendered = templates.render(
        "certification.approved",
        language="zh-hans",
        customer_name="王小明",
        context={"level": "金牌"},
    )

    # then
    assert rendered == templates.Rendered(
        subject="认证已通过",
        body="王小明，您好：\n\n恭喜，您的认证申请已通过，认证等级：金牌。\n",
        language="zh-hans",
    )


def test_a_rendered_message_in_english_with_the_unsubscribe_footer() -> None:
    # when
    rendered = templates.render(
        "loyalty.tier_up",
        language="en",
        customer_name="Li Hua",
        context={"tier": "Gold"},
        unsubscribe_link="https://patron.example/u/abc/",
    )

    # then
    assert rendered.subject == "You moved up a membership tier"
    assert rendered.body == (
        "Hello Li Hua,\n\nCongratulations: you are now a Gold member. Thank you for "
        "shopping with us!\n\nTo stop receiving these messages: https://patron.example/u/abc/\n"
    )


def test_a_missing_context_key_names_the_template_and_the_key() -> None:
    with pytest.raises(templates.TemplateError) as error:
        templates.render(
            "certification.expiring",
            language="zh-hans",
            customer_name="王小明",
            context={"level": "金牌"},
        )
    assert str(error.value) == (
        "message template 'certification.expiring' needs context key 'expires_on' "
        "(also missing: 'link')"
    )


def test_context_values_are_not_templates_themselves() -> None:
    # when: a value with a dollar sign is text, not a placeholder
    rendered = templates.render(
        "certification.rejected",
        language="en",
        customer_name="$name",
        context={"reason": "costs $5 ${level}"},
    )

    # then
    assert "Reason: costs $5 ${level}" in rendered.body
    assert rendered.body.startswith("Hello $name,")


def test_an_unknown_template_lists_the_known_ones() -> None:
    with pytest.raises(
        templates.TemplateError, match="message template 'nope' is unknown; known: "
    ):
        templates.render("nope", language="en", customer_name="x")


def test_an_unknown_language_is_refused() -> None:
    with pytest.raises(templates.TemplateError, match="language 'fr'"):
        templates.render("loyalty.tier_up", language="fr", customer_name="x", context={"tier": "1"})


@pytest.mark.parametrize(
    ("preferred", "default", "expected"),
    [
        ("en", "zh-hans", "en"),
        ("en-US", "zh-hans", "en"),
        ("EN_gb", "zh-hans", "en"),
        ("zh-CN", "en", "zh-hans"),
        ("zh-Hant", "en", "zh-hans"),
        ("", "zh-hans", "zh-hans"),
        (None, "en", "en"),
        ("fr", "en", "en"),
        ("fr", "de", "zh-hans"),
    ],
)
def test_language_for(preferred: str | None, default: str, expected: str) -> None:
    assert templates.language_for(preferred, default) == expected
