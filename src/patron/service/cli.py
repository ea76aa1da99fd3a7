"""``patron service``: the desk's channels from the command line.

Mounted by ``patron.cli`` as ``app.add_typer(service_app, name="service")``. Django is set up
inside each command, before any model is imported. Each command prints a summary on stderr and
one JSON object on stdout's last line (for scripts); ``webhook-sign`` prints the headers to send
instead, one per line.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from patron.clikit import django_setup, require_migrated

service_app = typer.Typer(
    help="Service desk: set up the desk, run the SLA watch, file inbound e-mail, sign webhook "
    "payloads.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals may hold personal data
)
console = Console(stderr=True)


@service_app.command("seed")
def seed() -> None:
    """Create the desk's defaults (teams, categories, SLA policies, opening hours, three years
    of holidays); rows staff have edited are kept."""
    django_setup()
    from patron.service.services import desk_seed

    require_migrated()
    counts = desk_seed()
    console.print("added: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    print(json.dumps(counts))


@service_app.command("sla-watch")
def sla_watch() -> None:
    """Warn before SLA deadlines and escalate breached tickets now (the every-minute job)."""
    django_setup()
    from dataclasses import asdict

    from patron.service.services import sla_watch as watch

    require_migrated()
    result = asdict(watch())
    console.print(
        f"checked {result['checked']}, warned {result['warned']}, breached {result['breached']}, "
        f"escalated {result['escalated']}"
    )
    print(json.dumps(result))


@service_app.command("mail-poll")
def mail_poll(
    folder: Annotated[
        Path | None,
        typer.Option(
            help="Folder of *.eml files or a Maildir (default: PATRON_MAIL_INBOX, else "
            "PATRON_HOME/mail/inbox)",
            file_okay=False,
        ),
    ] = None,
) -> None:
    """File every mail waiting in the inbox folder now (what the every-minute job does)."""
    django_setup()
    from patron.service.mail import mail_poll as poll

    require_migrated()
    result = poll(folder)
    for item in result.items:
        where = f"ticket {item.ticket_id}" if item.ticket_id else item.reason
        console.print(f"{item.outcome:<9} {item.file}: {where}", markup=False, highlight=False)
    counts = result.as_dict()
    console.print(
        f"{counts['filed']} filed ({counts['new_tickets']} new tickets), "
        f"{counts['duplicates']} filed before, {counts['skipped']} automatic mail skipped, "
        f"{counts['failed']} failed (see failed/*.error.txt) in {result.folder}",
        markup=False,
        highlight=False,
    )
    print(json.dumps(counts, ensure_ascii=False))
    if counts["failed"]:
        raise typer.Exit(1)


@service_app.command("mail-import")
def mail_import(
    file: Annotated[
        Path, typer.Argument(help="One e-mail as a .eml file", exists=True, dir_okay=False)
    ],
) -> None:
    """File one e-mail (.eml) as a ticket message; the file is left where it is."""
    django_setup()
    from patron.errors import PatronError
    from patron.service.mail import MailSkipped, mail_file

    require_migrated()
    try:
        received = mail_file(file.read_bytes())
    except MailSkipped as skipped:
        console.print(f"skipped: {skipped.message}", markup=False, highlight=False)
        print(json.dumps({"skipped": skipped.message}, ensure_ascii=False))
        return
    except PatronError as error:
        console.print(f"[red]not filed:[/red] {error.message}", highlight=False)
        raise typer.Exit(1) from None
    if received.duplicate:
        console.print(f"filed before, on ticket {received.ticket_id}")
    else:
        what = "a new ticket" if received.new_ticket else "its ticket"
        console.print(f"filed on {what}: ticket {received.ticket_id}")
    print(json.dumps(received.as_dict()))


@service_app.command("webhook-sign")
def webhook_sign(
    file: Annotated[
        Path, typer.Argument(help="The JSON payload, exactly as it will be posted", exists=True)
    ],
    secret: Annotated[
        str,
        typer.Option(
            envvar="PATRON_SERVICE_WEBHOOK_SECRET",
            help="The shared secret (default: $PATRON_SERVICE_WEBHOOK_SECRET)",
        ),
    ],
    timestamp: Annotated[
        int | None, typer.Option(help="Unix time to sign with (default: now)")
    ] = None,
) -> None:
    """Print the X-Patron-Timestamp and X-Patron-Signature headers for a payload, for
    connector developers checking their own signing."""
    from patron.outbox.adapters import webhook_signature

    if not secret:
        console.print("[red]--secret is empty")
        raise typer.Exit(2)
    body = file.read_bytes()
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    print(f"X-Patron-Timestamp: {stamp}")
    print(f"X-Patron-Signature: {webhook_signature(secret, stamp, body)}")
    console.print(
        "Post the file's bytes unchanged (curl --data-binary @FILE), within 5 minutes of the "
        "timestamp.",
        markup=False,
        highlight=False,
    )
