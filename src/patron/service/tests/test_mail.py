"""Inbound e-mail: reading Chinese mail, threading replies, refusing robots, the inbox folder,
the every-minute job and the CLI."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from patron.account.models import User
from patron.account.roles import Role
from patron.errors import ValidationFailed
from patron.outbox.services import outbox_deliver
from patron.service import mail, services
from patron.service.cli import service_app
from patron.service.mail import MailSkipped, mail_parse, mail_poll, mail_receive
from patron.service.models import ChannelIdentity, Ticket, TicketMessage
from patron.service.tasks import mail_poll_task
from patron.service.tests.channel_fixtures import channel_settings, eml, encoded_word

__all__ = ["channel_settings"]

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("channel_settings")]


def _reply_eml(in_reply_to: str, *, body: str, subject: str = "回复：订单没有收到") -> bytes:
    return eml(
        subject=subject,
        body=body,
        message_id="<c2@mail.example.cn>",
        headers={"In-Reply-To": in_reply_to, "References": f"<c1@mail.example.cn> {in_reply_to}"},
    )


# ---------------------------------------------------------------------- the round trip


def test_a_chinese_mail_opens_a_ticket_the_reply_threads_and_the_answer_reopens_it(
    user_factory: Callable[..., User], mailoutbox: list[Any]
) -> None:
    # given: a mail from 李雷 with its name, subject and body in GB2312, base64
    raw = eml()

    # when
    first = mail_receive(raw)

    # then: a new ticket for a new contact, in the customer's words
    assert first is not None
    ticket = Ticket.objects.select_related("customer").get(pk=first.ticket_id)
    assert (ticket.channel, ticket.subject, ticket.status) == ("email", "订单没有收到", "new")
    assert (ticket.customer.name, ticket.customer.email) == ("李雷", "li.lei@example.cn")
    assert first.body == "我的订单还没有收到，请帮忙查一下。"
    assert (first.direction, first.email_message_id, first.external_id) == (
        "in",
        "<c1@mail.example.cn>",
        "<c1@mail.example.cn>",
    )
    assert list(ChannelIdentity.objects.values_list("kind", "customer_id")) == [
        ("email", ticket.customer_id)
    ]

    # when: an agent answers and the outbox sends it
    agent = user_factory(Role.SERVICE_AGENT)
    reply = services.ticket_reply(ticket.pk, user=agent, body="您好，已为您查询物流。")
    delivered = outbox_deliver()

    # then: the mail threads onto the customer's
    assert delivered.sent == 1
    sent = mailoutbox[-1].message()
    assert sent["To"] == "li.lei@example.cn"
    assert sent["Message-ID"] == reply.email_message_id
    assert sent["In-Reply-To"] == "<c1@mail.example.cn>"
    assert sent["References"] == "<c1@mail.example.cn>"
    ticket.refresh_from_db()
    assert ticket.status == "pending"

    # when: the customer answers our mail, quoting it
    answer = mail_receive(
        _reply_eml(
            reply.email_message_id,
            body=(
                "还是没收到，快递单号是 SF123。\n\n"
                "在 2026年11月20日 10:30，Shop service <service@shop.example> 写道：\n"
                "> 您好，已为您查询物流。\n"
            ),
        )
    )

    # then: on the same ticket, new words only, and back to a person
    assert answer is not None
    assert answer.ticket_id == ticket.pk
    assert answer.body == "还是没收到，快递单号是 SF123。"
    ticket.refresh_from_db()
    assert ticket.status == "open"
    assert Ticket.objects.count() == 1
    assert list(ticket.messages.values_list("direction", flat=True)) == ["in", "out", "in"]


def test_the_same_mail_twice_is_filed_once() -> None:
    # given
    first = mail_receive(eml())

    # when
    second = mail_receive(eml())

    # then
    assert first is not None and second is not None
    assert second.pk == first.pk
    assert TicketMessage.objects.count() == 1


def test_a_reply_without_threading_headers_finds_its_ticket_by_the_subject_tag() -> None:
    # given
    first = mail_receive(eml())
    assert first is not None
    ticket_id = first.ticket_id

    # when: a mail program that kept only the subject
    again = mail_receive(
        eml(
            subject=f"回复：订单没有收到 [#{ticket_id}]", body="补充一下地址。", message_id="<c9@x>"
        )
    )

    # then
    assert again is not None
    assert again.ticket_id == ticket_id
    assert Ticket.objects.count() == 1


def test_the_subject_tag_never_opens_someone_elses_ticket() -> None:
    # given: 李雷's ticket
    first = mail_receive(eml())
    assert first is not None

    # when: another sender names it
    other = mail_receive(
        eml(
            sender="韩梅梅 <han.meimei@example.cn>",
            subject=f"Re: [#{first.ticket_id}]",
            body="我也有问题",
            message_id="<h1@x>",
        )
    )

    # then: a ticket of their own
    assert other is not None
    assert other.ticket_id != first.ticket_id
    assert Ticket.objects.count() == 2


# ---------------------------------------------------------------------- reading


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Thanks!\n\nOn Fri, 20 Nov 2026 at 10:00, Shop <s@shop.example> wrote:\n> Hello",
            "Thanks!",
        ),
        ("Thanks!\n\nOn Fri, 20 Nov 2026 at 10:00, Shop <s@shop.example>\nwrote:\n> Hi", "Thanks!"),
        ("好的\n\n在 2026年11月20日 10:30，客服 写道：\n> 您好", "好的"),
        ("好的\n\n------------------ 原始邮件 ------------------\n发件人: 客服", "好的"),
        ("OK\n\n-----Original Message-----\nFrom: Shop\nSent: Friday", "OK"),
        ("OK\n\nFrom: Shop <s@shop.example>\nSent: Friday\nTo: me\nSubject: Re", "OK"),
        ("first\n> quoted\nsecond", "first\nsecond"),
        ("好\n\n张三 <z@x.cn> 于2026年11月20日 周五 10:00写道：\n> 旧", "好"),
        ("在上封邮件里我写道：\n地址是北京", "在上封邮件里我写道：\n地址是北京"),
        ("As I wrote:\nOn Monday it broke", "As I wrote:\nOn Monday it broke"),
        ("> only a quote", "> only a quote"),
    ],
)
def test_quoted_earlier_mail_is_cut_off(text: str, expected: str) -> None:
    assert mail.strip_quoted(text) == expected


def test_an_html_only_mail_in_gbk_is_read_as_text_without_the_quote() -> None:
    # given: GBK (a character outside GB2312: 镕) labelled GB2312, as many programs do
    html = (
        "<html><head><style>p {color: red}</style></head><body>"
        "<div>朱镕基路的店，发票抬头写错了&nbsp;</div><div><br></div><p>请重开 &amp; 寄回</p>"
        '<div class="gmail_quote"><div>在 2026年11月20日 写道：</div>'
        "<blockquote>旧的内容</blockquote></div></body></html>"
    )
    raw = (
        "From: han@example.cn\r\nSubject: =?GB2312?B?"
        + base64.b64encode("发票".encode("gb2312")).decode()
        + "?=\r\nMessage-ID: <html1@x>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/html; charset=GB2312\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(html.encode("gbk")).decode()
    ).encode()

    # when
    parsed = mail_parse(raw)

    # then
    assert parsed.subject == "发票"
    assert parsed.text == "朱镕基路的店，发票抬头写错了\n\n请重开 & 寄回"
    assert parsed.from_name == ""


def test_a_multipart_mail_prefers_the_plain_text_and_lists_attachments_unsaved() -> None:
    # given
    raw = (
        "From: =?UTF-8?B?" + base64.b64encode("王芳".encode()).decode() + "?= <wang@example.cn>\r\n"
        "Subject: =?UTF-8?Q?=E9=80=80=E8=B4=A7?=\r\n"
        "Message-ID: <mp1@x>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="B1"\r\n\r\n'
        "--B1\r\n"
        'Content-Type: multipart/alternative; boundary="B2"\r\n\r\n'
        "--B2\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n我要退货。\r\n"
        "--B2\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>HTML 版本</p>\r\n"
        "--B2--\r\n"
        "--B1\r\nContent-Type: application/pdf\r\n"
        "Content-Disposition: attachment; filename*=UTF-8''%E5%8F%91%E7%A5%A8.pdf\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n"
        "--B1--\r\n"
    ).encode()

    # when
    parsed = mail_parse(raw)

    # then
    assert (parsed.from_name, parsed.from_address, parsed.subject) == (
        "王芳",
        "wang@example.cn",
        "退货",
    )
    assert parsed.text == "我要退货。\n\n[附件未保存 Attachments not stored: 发票.pdf]"
    assert parsed.attachments == ("发票.pdf",)


def test_a_mislabelled_charset_falls_back_to_what_decodes() -> None:
    # given: UTF-8 bytes declared as us-ascii
    raw = (
        "From: a@example.cn\r\nSubject: hi\r\nMessage-ID: <u1@x>\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        "你好，世界"
    ).encode()

    # when / then
    assert mail_parse(raw).text == "你好，世界"


def test_a_mail_without_message_id_gets_a_stable_one_from_its_bytes() -> None:
    # given
    raw = eml(message_id="")

    # when
    first, second = mail_parse(raw), mail_parse(raw)

    # then
    assert first.message_id == second.message_id
    assert first.message_id.startswith("<sha256-") and first.message_id.endswith("@patron.invalid>")


# ---------------------------------------------------------------------- refusing


@pytest.mark.parametrize(
    ("headers", "sender", "reason"),
    [
        (
            {"Auto-Submitted": "auto-replied"},
            "李雷 <li.lei@example.cn>",
            "Auto-Submitted: auto-replied",
        ),
        ({"X-Autoreply": "yes"}, "李雷 <li.lei@example.cn>", "X-Autoreply"),
        ({"Precedence": "auto_reply"}, "李雷 <li.lei@example.cn>", "Precedence: auto_reply"),
        (
            {},
            "Mail Delivery System <MAILER-DAEMON@mx.example.cn>",
            "From: MAILER-DAEMON@mx.example.cn",
        ),
        ({}, "postmaster@example.cn", "From: postmaster@example.cn"),
    ],
)
def test_automatic_mail_is_skipped_not_filed(
    headers: dict[str, str], sender: str, reason: str
) -> None:
    # given
    raw = eml(sender=sender, headers=headers, message_id="<robot@x>")

    # when
    with pytest.raises(MailSkipped) as skipped:
        mail_parse(raw)
    filed = mail_receive(raw)

    # then
    assert skipped.value.message.startswith(f"mail <robot@x>: {reason}")
    assert filed is None
    assert (Ticket.objects.count(), TicketMessage.objects.count()) == (0, 0)


def test_auto_submitted_no_is_a_person() -> None:
    assert mail_receive(eml(headers={"Auto-Submitted": "no"})) is not None


def test_a_mail_without_sender_address_is_refused_naming_the_mail_and_the_header() -> None:
    # given
    raw = eml(sender="undisclosed-recipients:;", message_id="<nofrom@x>")

    # when
    with pytest.raises(ValidationFailed) as refused:
        mail_receive(raw)

    # then
    assert refused.value.message == (
        "mail <nofrom@x>: From: no sender address, so there is no one to answer"
    )
    assert Ticket.objects.count() == 0


def test_a_file_that_is_not_a_mail_is_refused() -> None:
    with pytest.raises(ValidationFailed) as refused:
        mail_parse(b"   ")
    assert refused.value.message == "mail: the file is empty"


# ---------------------------------------------------------------------- the inbox folder


def test_the_poll_files_good_mail_and_moves_bad_and_automatic_mail_aside(tmp_path: Path) -> None:
    # given: an inbox with a good mail, one without sender, an auto-reply and a Maildir mail
    inbox = tmp_path / "inbox"
    (inbox / "new").mkdir(parents=True)
    (inbox / "a-good.eml").write_bytes(eml())
    (inbox / "b-bad.eml").write_bytes(eml(sender="undisclosed-recipients:;", message_id="<bad@x>"))
    (inbox / "c-robot.eml").write_bytes(
        eml(headers={"Auto-Submitted": "auto-replied"}, message_id="<ooo@x>")
    )
    (inbox / "new" / "1700000000.M1.host").write_bytes(
        eml(
            sender="韩梅梅 <han@example.cn>", subject="换货", body="想换个颜色", message_id="<md@x>"
        )
    )
    (inbox / "notes.txt").write_text("not a mail")

    # when
    result = mail_poll()

    # then
    assert result.as_dict() == {
        "folder": str(inbox),
        "filed": 2,
        "duplicates": 0,
        "skipped": 1,
        "failed": 1,
        "new_tickets": 2,
    }
    assert sorted(p.name for p in (inbox / "processed").iterdir()) == [
        "1700000000.M1.host",
        "a-good.eml",
    ]
    assert sorted(p.name for p in (inbox / "failed").iterdir()) == [
        "b-bad.eml",
        "b-bad.eml.error.txt",
    ]
    assert (inbox / "failed" / "b-bad.eml.error.txt").read_text(encoding="utf-8") == (
        "ValidationFailed (422): mail <bad@x>: From: no sender address, so there is no one "
        "to answer\n"
    )
    assert sorted(p.name for p in (inbox / "skipped").iterdir()) == [
        "c-robot.eml",
        "c-robot.eml.reason.txt",
    ]
    assert sorted(Ticket.objects.values_list("subject", flat=True)) == ["换货", "订单没有收到"]
    assert (inbox / "notes.txt").exists()
    assert list((inbox / "processing").iterdir()) == []


def test_a_mail_dropped_twice_is_filed_once_and_the_task_reports_it(tmp_path: Path) -> None:
    # given
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "one.eml").write_bytes(eml())
    mail_poll()
    (inbox / "one.eml").write_bytes(eml())

    # when
    summary = mail_poll_task.call()

    # then
    assert summary == {
        "folder": str(inbox),
        "filed": 0,
        "duplicates": 1,
        "skipped": 0,
        "failed": 0,
        "new_tickets": 0,
    }
    assert sorted(p.name for p in (inbox / "processed").iterdir()) == ["one-1.eml", "one.eml"]
    assert TicketMessage.objects.count() == 1


def test_an_unexpected_error_on_one_file_does_not_stop_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: filing breaks on the first mail only
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "a.eml").write_bytes(eml(message_id="<boom@x>"))
    (inbox / "b.eml").write_bytes(eml(message_id="<fine@x>"))
    real = mail.receive

    def flaky(inbound: services.Inbound, **kwargs: Any) -> Any:
        if inbound.external_id == "<boom@x>":
            raise RuntimeError("disk full")
        return real(inbound, **kwargs)

    monkeypatch.setattr(mail, "receive", flaky)

    # when
    result = mail_poll()

    # then
    assert [(i.file, i.outcome, i.reason) for i in result.items] == [
        ("a.eml", "failed", "RuntimeError: disk full"),
        ("b.eml", "filed", ""),
    ]
    assert (inbox / "failed" / "a.eml.error.txt").read_text() == "RuntimeError: disk full\n"


# ---------------------------------------------------------------------- the command line


def test_cli_mail_import_and_mail_poll(tmp_path: Path) -> None:
    # given
    single = tmp_path / "single.eml"
    single.write_bytes(eml())
    folder = tmp_path / "drop"
    folder.mkdir()
    (folder / "x.eml").write_bytes(eml(sender="韩梅梅 <han@example.cn>", message_id="<x@x>"))
    runner = CliRunner()

    # when
    imported = runner.invoke(service_app, ["mail-import", str(single)])
    again = runner.invoke(service_app, ["mail-import", str(single)])
    polled = runner.invoke(service_app, ["mail-poll", "--folder", str(folder)])

    # then
    assert imported.exit_code == 0, imported.output
    ticket_id = Ticket.objects.order_by("id").values_list("id", flat=True).first()
    first = json.loads(imported.stdout.strip().splitlines()[-1])
    assert first == {
        "ticket_id": ticket_id,
        "message_id": TicketMessage.objects.order_by("id").first().pk,  # type: ignore[union-attr]
        "new_ticket": True,
        "duplicate": False,
    }
    assert json.loads(again.stdout.strip().splitlines()[-1])["duplicate"] is True
    assert polled.exit_code == 0, polled.output
    assert json.loads(polled.stdout.strip().splitlines()[-1])["filed"] == 1
    assert single.exists()


def test_cli_mail_poll_exits_1_when_a_mail_failed(tmp_path: Path) -> None:
    # given
    folder = tmp_path / "drop"
    folder.mkdir()
    (folder / "bad.eml").write_bytes(b"Subject: no sender\r\n\r\nhello")

    # when
    result = CliRunner().invoke(service_app, ["mail-poll", "--folder", str(folder)])

    # then
    assert result.exit_code == 1
    assert json.loads(result.stdout.strip().splitlines()[-1])["failed"] == 1


def test_cli_webhook_sign_prints_the_headers(tmp_path: Path) -> None:
    # given
    payload = tmp_path / "message.json"
    payload.write_bytes(b'{"channel": "wechat"}')

    # when
    result = CliRunner().invoke(
        service_app,
        ["webhook-sign", "--secret", "s3cret", "--timestamp", "1700000000", str(payload)],
    )

    # then
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "X-Patron-Timestamp: 1700000000",
        "X-Patron-Signature: sha256="
        "adde2b817fb621ed4c9dbb968156a587e493bd8f6eb941a0a883b07ec1050ac4",
    ]


def test_encoded_word_helper_round_trips() -> None:
    assert mail.decode_header(encoded_word("订单没有收到")) == "订单没有收到"
