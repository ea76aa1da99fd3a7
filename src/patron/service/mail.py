"""Inbound e-mail: read a customer's mail (RFC 5322) and file it on a ticket.

``mail_parse`` reads the raw bytes with the standard library: the sender, the subject, the
threading headers and the new text only (quoted earlier mails are cut off; an HTML-only mail is
turned into text). Charsets are decoded as Chinese mail programs actually write them: a part
labelled GB2312 or GBK is read as GB18030 (their superset), and a mislabelled part falls back
to UTF-8, then GB18030, so no customer's words are lost to a wrong label. Attachments are named
in the filed text but not stored.

Automatic mail (``Auto-Submitted`` other than ``no``, out-of-office replies, bounces from
``MAILER-DAEMON`` or ``postmaster``, delivery reports) is refused with ``MailSkipped``: answering
it would start a loop between two robots. A mail without a sender address is refused with
``ValidationFailed``. Both name the mail and the header.

``mail_receive`` files one mail (idempotent on its Message-ID); ``mail_poll`` files every mail
dropped in the inbox folder (``settings.PATRON_MAIL_INBOX``, default ``PATRON_HOME/mail/inbox``)
and in its Maildir ``new/``, each moved afterwards to ``processed/``, ``skipped/`` or
``failed/`` (with a ``.error.txt`` saying why): one bad file never stops the others.

Threading: a reply names our reply's Message-ID in ``In-Reply-To``/``References`` and lands on
the same ticket (``services.inbound_receive``); a mail program that drops those headers still
keeps the ``[#123]`` our replies put in the subject, which is used when the headers find
nothing and the ticket is the sender's.
"""

from __future__ import annotations

import email.errors
import email.header
import email.utils
import hashlib
import logging
import os
import re
import time
from dataclasses import dataclass, field, replace
from datetime import datetime
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction

from patron.errors import PatronError, ValidationFailed
from patron.paths import patron_home
from patron.service import services
from patron.service.channels import Received, receive
from patron.service.models import PATRON_SOURCE, Ticket, TicketMessage

logger = logging.getLogger(__name__)

MAX_MAIL_BYTES = 10 * 1024 * 1024
MAX_SUBJECT = services.MAX_SUBJECT
MAX_BODY = services.MAX_BODY
#: Charsets Chinese mail programs put on their mail, read as the superset that decodes them all.
CHARSET_ALIASES = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "cp936": "gb18030",
    "gb_2312-80": "gb18030",
    "euc-cn": "gb18030",
    "big5": "big5hkscs",
    "ks_c_5601-1987": "cp949",
    "unicode-1-1-utf-7": "utf-7",
}
#: Senders that are always machines.
ROBOT_SENDERS = ("mailer-daemon", "postmaster")
#: ``Precedence`` values of automatic mail.
ROBOT_PRECEDENCE = ("auto_reply", "bulk", "junk")
ATTACHMENTS_NOTE = "[附件未保存 Attachments not stored: {names}]"
CUT_NOTE = "\n[… the mail was longer than {limit:,} characters and was cut here]"


class MailSkipped(ValidationFailed):
    """An automatic mail (auto-reply, bounce, delivery report): not filed, on purpose."""

    code = "mail_skipped"


@dataclass(frozen=True)
class ParsedMail:
    """What a mail says, decoded."""

    from_address: str
    from_name: str
    subject: str
    message_id: str
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    date: datetime | None
    text: str
    attachments: tuple[str, ...] = ()

    def inbound(self) -> services.Inbound:
        return services.Inbound(
            channel="email",
            identity_kind="email",
            identity_value=self.from_address,
            name=self.from_name,
            subject=self.subject,
            body=self.text,
            external_id=self.message_id,
            email_message_id=self.message_id,
            references=tuple(dict.fromkeys(self.in_reply_to + self.references)),
        )


# ---------------------------------------------------------------------- decoding


def decode_bytes(data: bytes, charset: str | None) -> str:
    """``data`` as text: the declared charset (through ``CHARSET_ALIASES``), else UTF-8, else
    GB18030; never raises, at worst replaces what no charset can read."""
    names: list[str] = []
    if charset:
        label = charset.strip().strip('"').lower()
        names.append(CHARSET_ALIASES.get(label, label))
    names += ["utf-8", "gb18030"]
    for name in names:
        try:
            return data.decode(name)
        except (LookupError, UnicodeDecodeError):
            continue
    return data.decode("utf-8", errors="replace")


def _raw_header(message: Message, name: str) -> str:
    for key, value in message.raw_items():
        if key.lower() == name.lower():
            return str(value)
    return ""


def decode_header(raw: str) -> str:
    """A header's text with its RFC 2047 encoded words decoded (GB2312 as GB18030), and raw
    8-bit bytes (some Chinese mail programs send them) read as UTF-8 or GB18030."""
    raw = re.sub(r"\r?\n(?=[ \t])", "", raw or "")
    if any("\udc80" <= ch <= "\udcff" for ch in raw):
        return decode_bytes(raw.encode("ascii", "surrogateescape"), None).strip()
    try:
        chunks = email.header.decode_header(raw)
    except (ValueError, email.errors.HeaderParseError):
        return raw.strip()
    text = "".join(
        decode_bytes(chunk, charset) if isinstance(chunk, bytes) else chunk
        for chunk, charset in chunks
    )
    return re.sub(r"\s+", " ", text).strip()


_MESSAGE_ID = re.compile(r"<[^<>\s]+>")


def message_ids(value: str) -> tuple[str, ...]:
    """The ``<id>`` tokens of a Message-ID, In-Reply-To or References header, in order."""
    return tuple(dict.fromkeys(_MESSAGE_ID.findall(value or "")))


def _message_id(message: Message, raw: bytes) -> str:
    found = message_ids(_raw_header(message, "Message-ID"))
    if found:
        return found[0][:250]
    bare = _raw_header(message, "Message-ID").strip()
    if bare and " " not in bare:
        return f"<{bare.strip('<>')}>"[:250]
    # No id: the same bytes get the same id, so dropping the file in twice files it once.
    return f"<sha256-{hashlib.sha256(raw).hexdigest()[:40]}@patron.invalid>"


def _sender(message: Message) -> tuple[str, str]:
    """(address, display name) of the From header; address '' when there is none."""
    decoded = decode_header(_raw_header(message, "From"))
    name, address = email.utils.parseaddr(decoded)
    try:
        header: Any = message["From"]
        parsed = header.addresses if header is not None else ()
    except Exception:  # a header the policy cannot parse: parseaddr's reading stands
        parsed = ()
    if parsed and parsed[0].addr_spec:
        address = parsed[0].addr_spec
        name = name or parsed[0].display_name
    address = address.strip()
    if "@" not in address or any(ch.isspace() for ch in address):
        address = ""
    return address, name.strip().strip('"').strip()[:200]


# ---------------------------------------------------------------------- the text


class _HtmlText(HTMLParser):
    """Text of an HTML mail: blocks become lines; scripts, styles and (with ``drop_quotes``)
    quoted earlier mails (``blockquote``, Gmail's ``gmail_quote``, Outlook's reply header)
    are left out."""

    BLOCKS = frozenset(
        [
            "p",
            "div",
            "br",
            "li",
            "tr",
            "table",
            "ul",
            "ol",
            "h1",
            "h2",
            "h3",
            "h4",
            "h5",
            "h6",
            "pre",
            "hr",
            "section",
            "article",
            "header",
            "footer",
            "address",
            "dl",
            "dt",
            "dd",
        ]
    )
    VOID = frozenset(
        [
            "br",
            "img",
            "hr",
            "meta",
            "link",
            "input",
            "area",
            "base",
            "col",
            "embed",
            "source",
            "track",
            "wbr",
        ]
    )
    HIDDEN = frozenset(["script", "style", "head", "title", "template"])

    def __init__(self, *, drop_quotes: bool) -> None:
        super().__init__(convert_charrefs=True)
        self.drop_quotes = drop_quotes
        self.parts: list[str] = []
        self.skipping = 0
        self.pre = 0

    def _is_quote(self, tag: str, attrs: list[tuple[str, str | None]]) -> bool:
        if not self.drop_quotes:
            return False
        values = dict(attrs)
        classes = (values.get("class") or "").lower()
        ident = (values.get("id") or "").lower()
        return (
            tag == "blockquote"
            or "gmail_quote" in classes
            or "yahoo_quoted" in classes
            or ident in ("divrplyfwdmsg", "appendonsend", "reply-intro")
        )

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.skipping:
            if tag not in self.VOID:
                self.skipping += 1
            return
        if tag in self.HIDDEN or self._is_quote(tag, attrs):
            if tag not in self.VOID:
                self.skipping = 1
            return
        if tag in self.BLOCKS:
            self.parts.append("\n")
        if tag == "li":
            self.parts.append("- ")
        if tag == "pre":
            self.pre += 1

    def handle_endtag(self, tag: str) -> None:
        if self.skipping:
            if tag not in self.VOID:
                self.skipping -= 1
            return
        if tag == "pre" and self.pre:
            self.pre -= 1
        if tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self.skipping:
            return
        self.parts.append(data if self.pre else re.sub(r"[ \t\r\n\f]+", " ", data))

    def text(self) -> str:
        lines = [line.strip() for line in "".join(self.parts).replace("\xa0", " ").splitlines()]
        return _tidy("\n".join(lines))


def html_to_text(html: str, *, drop_quotes: bool = True) -> str:
    """Readable text of an HTML mail (standard library ``html.parser`` only)."""
    parser = _HtmlText(drop_quotes=drop_quotes)
    try:
        parser.feed(html)
        parser.close()
    except Exception:  # html.parser is lenient; anything it still trips on is not worth a loss
        logger.warning("an HTML mail body could not be parsed whole", exc_info=True)
    text = parser.text()
    if not text and drop_quotes:
        return html_to_text(html, drop_quotes=False)
    return text


def _tidy(text: str) -> str:
    text = re.sub(r"[ \t]+\n", "\n", text.replace("\r\n", "\n").replace("\r", "\n"))
    return re.sub(r"\n{3,}", "\n\n", text).strip()


#: An attribution names when the quoted mail was written (a year or a time): a customer's own
#: "as I wrote:" is not one.
_WHEN = r"(?=.*(\d{4}|\d:\d\d))"
_ATTRIBUTION = (
    re.compile(rf"^\s*On\b{_WHEN}.{{0,400}}\bwrote:\s*$", re.IGNORECASE),  # Gmail, Apple Mail
    re.compile(rf"^\s*在{_WHEN}.{{0,400}}(写道|寫道)\s*[：:]\s*$"),  # the same in Chinese
    re.compile(
        rf"^{_WHEN}.{{0,200}}于.{{0,200}}(写道|寫道)\s*[：:]\s*$"
    ),  # Foxmail: "张三 于2024年… 写道："
    re.compile(
        r"^\s*-{2,}\s*(Original Message|Forwarded message|原始邮件|原始郵件|转发邮件|"
        r"转发的邮件)\s*-{2,}\s*$",
        re.IGNORECASE,
    ),
)
_OUTLOOK_FROM = re.compile(r"^\s*(\*?From\*?|发件人|寄件者)\s*[:：]", re.IGNORECASE)
_OUTLOOK_NEXT = re.compile(
    r"^\s*(\*?(Sent|Date|To|Subject)\*?|发送时间|日期|时间|收件人|主题|寄件日期)\s*[:：]",
    re.IGNORECASE,
)


def strip_quoted(text: str) -> str:
    """The new part of a reply: cut at the first attribution line of the quoted mail
    ("On … wrote:", "在 … 写道：", "-----Original Message-----", Outlook's From:/Sent: block)
    and without lines starting with ``>``. When nothing would be left (a forward with no words
    of its own) the whole text is kept."""
    lines = _tidy(text).split("\n")
    kept: list[str] = []
    for index, line in enumerate(lines):
        pair = f"{line} {lines[index + 1]}" if index + 1 < len(lines) else line
        if any(p.match(line) for p in _ATTRIBUTION) or (
            line.lstrip().startswith("On ") and _ATTRIBUTION[0].match(pair)
        ):
            break
        is_rule = line.strip("_- ") == "" and bool(line.strip())
        if is_rule and index + 1 < len(lines) and _OUTLOOK_FROM.match(lines[index + 1]):
            break
        if _OUTLOOK_FROM.match(line) and any(
            _OUTLOOK_NEXT.match(following) for following in lines[index + 1 : index + 4]
        ):
            break
        if line.lstrip().startswith(">"):
            continue
        kept.append(line)
    new = _tidy("\n".join(kept))
    return new or _tidy(text)


def _part_text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    return decode_bytes(payload, part.get_content_charset())


def _body_and_attachments(message: EmailMessage) -> tuple[str, tuple[str, ...]]:
    body_parts: list[Message] = []
    text = ""
    plain = message.get_body(preferencelist=("plain",))
    if plain is not None:
        body_parts.append(plain)
        text = strip_quoted(_part_text(plain))
    if not text:
        html = message.get_body(preferencelist=("html",))
        if html is not None:
            body_parts.append(html)
            text = strip_quoted(html_to_text(_part_text(html)))
    names: list[str] = []
    for part in message.walk():
        if part.is_multipart() or any(part is body for body in body_parts):
            continue
        try:
            filename = part.get_filename()
        except Exception:  # a broken filename parameter: still an attachment
            filename = None
        if filename or part.get_content_disposition() == "attachment":
            names.append(decode_header(filename or "") or f"({part.get_content_type()})")
    return text, tuple(names)


# ---------------------------------------------------------------------- reading a mail


def _label(message_id: str) -> str:
    return f"mail {message_id}"


def _robot_reason(message: Message, address: str) -> str:
    """Why this mail was written by a machine, or '' when it was not."""
    auto = decode_header(_raw_header(message, "Auto-Submitted")).lower()
    if auto and auto.split(";")[0].strip() != "no":
        return f"Auto-Submitted: {auto}: automatic mail is not filed"
    for name in ("X-Autoreply", "X-Autorespond"):
        if _raw_header(message, name).strip():
            return f"{name}: an automatic reply is not filed"
    precedence = decode_header(_raw_header(message, "Precedence")).lower()
    if precedence in ROBOT_PRECEDENCE:
        return f"Precedence: {precedence}: automatic mail is not filed"
    if message.get_content_type() == "multipart/report":
        return "Content-Type: multipart/report: a delivery report (bounce) is not filed"
    if address and address.split("@", 1)[0].lower() in ROBOT_SENDERS:
        return f"From: {address}: a bounce from a mail server is not filed"
    return ""


def mail_parse(raw: bytes) -> ParsedMail:
    """Read one mail. ``MailSkipped`` for automatic mail, ``ValidationFailed`` for a mail
    that cannot be filed (no sender address, nothing written); both name the mail and the
    header or part at fault."""
    if not isinstance(raw, bytes | bytearray) or not raw.strip():
        raise ValidationFailed("mail: the file is empty")
    if len(raw) > MAX_MAIL_BYTES:
        raise ValidationFailed(f"mail: larger than {MAX_MAIL_BYTES // (1024 * 1024)} MB")
    message = BytesParser(policy=policy.default).parsebytes(bytes(raw))
    if not isinstance(message, EmailMessage) or not message.keys():
        raise ValidationFailed("mail: no headers: this is not an e-mail message (RFC 5322)")
    message_id = _message_id(message, bytes(raw))
    address, name = _sender(message)
    reason = _robot_reason(message, address)
    if reason:
        raise MailSkipped(f"{_label(message_id)}: {reason}")
    if not address:
        raise ValidationFailed(
            f"{_label(message_id)}: From: no sender address, so there is no one to answer"
        )
    subject = decode_header(_raw_header(message, "Subject")).replace("\x00", "")
    text, attachments = _body_and_attachments(message)
    text = text.replace("\x00", "")
    if attachments:
        note = ATTACHMENTS_NOTE.format(names=", ".join(attachments))
        text = f"{text}\n\n{note}" if text else note
    if not text.strip():
        raise ValidationFailed(f"{_label(message_id)}: the body is empty: nothing to file")
    if len(text) > MAX_BODY:
        cut = CUT_NOTE.format(limit=MAX_BODY)
        text = text[: MAX_BODY - len(cut)] + cut
    try:
        date = email.utils.parsedate_to_datetime(_raw_header(message, "Date").strip())
    except (TypeError, ValueError, IndexError):
        date = None
    if date is not None and date.tzinfo is None:
        date = None  # a date without a zone says no instant
    return ParsedMail(
        from_address=address,
        from_name=name,
        subject=subject[:MAX_SUBJECT].strip(),
        message_id=message_id,
        in_reply_to=message_ids(_raw_header(message, "In-Reply-To")),
        references=message_ids(_raw_header(message, "References")),
        date=date,
        text=text,
        attachments=attachments,
    )


_SUBJECT_TICKET = re.compile(r"\[#(\d{1,12})\]")


def _subject_ticket(parsed: ParsedMail) -> int | None:
    """The ``[#123]`` of our reply's subject, when the threading headers find no ticket and
    that ticket is the sender's (never a way into someone else's ticket)."""
    found = _SUBJECT_TICKET.search(parsed.subject)
    if found is None:
        return None
    references = list(parsed.in_reply_to + parsed.references)[:50]
    if references and TicketMessage.objects.filter(email_message_id__in=references).exists():
        return None  # the headers thread it
    ticket_id = int(found.group(1))
    customer = services.contact_resolve(
        kind="email", value=parsed.from_address, name=parsed.from_name
    )
    is_theirs = Ticket.objects.filter(
        pk=ticket_id, customer=customer, source=PATRON_SOURCE
    ).exists()
    return ticket_id if is_theirs else None


def mail_file(raw: bytes) -> Received:
    """File one mail; ``MailSkipped`` / ``ValidationFailed`` as ``mail_parse``."""
    parsed = mail_parse(raw)
    inbound = parsed.inbound()
    with transaction.atomic():
        ticket_id = _subject_ticket(parsed)
        if ticket_id is not None:
            inbound = replace(inbound, ticket_id=ticket_id)
        return receive(inbound, actor_label=parsed.from_name or "e-mail")


def mail_receive(raw: bytes) -> TicketMessage | None:
    """File one mail and return its message on the ticket, or None for automatic mail
    (logged, not filed). Idempotent: the same Message-ID twice is filed once."""
    try:
        return mail_file(raw).message
    except MailSkipped as skipped:
        logger.info("inbound mail skipped: %s", skipped.message)
        return None


# ---------------------------------------------------------------------- the inbox folder


def inbox_folder() -> Path:
    configured = getattr(settings, "PATRON_MAIL_INBOX", None)
    return Path(configured) if configured else patron_home() / "mail" / "inbox"


@dataclass(frozen=True)
class PollItem:
    file: str
    outcome: str  # filed, duplicate, skipped, failed
    ticket_id: int | None = None
    new_ticket: bool = False
    reason: str = ""


@dataclass
class PollResult:
    folder: str = ""
    items: list[PollItem] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(1 for item in self.items if item.outcome == outcome)

    def as_dict(self) -> dict[str, Any]:
        return {
            "folder": self.folder,
            "filed": self.count("filed"),
            "duplicates": self.count("duplicate"),
            "skipped": self.count("skipped"),
            "failed": self.count("failed"),
            "new_tickets": sum(1 for item in self.items if item.new_ticket),
        }


#: A file claimed by a poll that stopped halfway is taken again after this long.
CLAIM_LEASE_SECONDS = 600


def _candidates(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.glob("*.eml") if p.is_file())
    maildir_new = folder / "new"
    if maildir_new.is_dir():
        files += sorted(
            p for p in maildir_new.iterdir() if p.is_file() and not p.name.startswith(".")
        )
    claimed = folder / "processing"
    if claimed.is_dir():
        stale = time.time() - CLAIM_LEASE_SECONDS
        files += sorted(p for p in claimed.iterdir() if p.is_file() and p.stat().st_ctime < stale)
    return files


def _unique(target: Path) -> Path:
    if not target.exists():
        return target
    stem, suffix = target.stem, target.suffix
    for number in range(1, 10_000):
        candidate = target.with_name(f"{stem}-{number}{suffix}")
        if not candidate.exists():
            return candidate
    return target.with_name(f"{stem}-{time.time_ns()}{suffix}")


def _claim(path: Path, folder: Path) -> Path | None:
    """Move the file into ``processing/`` (an atomic rename): of two polls at once, one gets
    it. None when another poll was first."""
    claimed = folder / "processing"
    claimed.mkdir(parents=True, exist_ok=True)
    if path.parent == claimed:
        os.utime(path)  # renew the lease
        return path
    target = _unique(claimed / path.name)
    try:
        path.rename(target)
    except FileNotFoundError:
        return None
    return target


def _settle(path: Path, folder: Path, outcome: str, reason: str = "") -> Path:
    where = {"filed": "processed", "duplicate": "processed", "skipped": "skipped"}.get(
        outcome, "failed"
    )
    destination = folder / where
    destination.mkdir(parents=True, exist_ok=True)
    target = _unique(destination / path.name)
    path.rename(target)
    if reason and where != "processed":
        note = target.with_name(
            target.name + (".error.txt" if where == "failed" else ".reason.txt")
        )
        note.write_text(reason.rstrip() + "\n", encoding="utf-8")
    return target


def mail_poll_file(path: Path, folder: Path) -> PollItem | None:
    claimed = _claim(path, folder)
    if claimed is None:
        return None
    name = path.name
    try:
        received = mail_file(claimed.read_bytes())
    except MailSkipped as skipped:
        _settle(claimed, folder, "skipped", skipped.message)
        return PollItem(file=name, outcome="skipped", reason=skipped.message)
    except PatronError as error:
        reason = f"{type(error).__name__} ({error.status}): {error.message}"
        _settle(claimed, folder, "failed", reason)
        return PollItem(file=name, outcome="failed", reason=reason)
    except Exception as error:  # one bad file never stops the others
        logger.exception("inbound mail %s could not be filed", name)
        reason = f"{type(error).__name__}: {error}"
        _settle(claimed, folder, "failed", reason)
        return PollItem(file=name, outcome="failed", reason=reason)
    outcome = "duplicate" if received.duplicate else "filed"
    _settle(claimed, folder, outcome)
    return PollItem(
        file=name, outcome=outcome, ticket_id=received.ticket_id, new_ticket=received.new_ticket
    )


def mail_poll(folder: Path | None = None) -> PollResult:
    """File every mail waiting in ``folder`` (default ``inbox_folder()``): ``*.eml`` files and
    a Maildir's ``new/``. Each goes to ``processed/`` (filed, or filed before), ``skipped/``
    (automatic mail, with a ``.reason.txt``) or ``failed/`` (with a ``.error.txt``). Safe to
    run twice, and in two processes at once: a file is claimed by one poll only, and a mail
    filed before is not filed again."""
    folder = Path(folder) if folder is not None else inbox_folder()
    folder.mkdir(parents=True, exist_ok=True)
    result = PollResult(folder=str(folder))
    for path in _candidates(folder):
        item = mail_poll_file(path, folder)
        if item is not None:
            result.items.append(item)
    return result
