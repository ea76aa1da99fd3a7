"""Messages in the admin are read-only: they are queued by the services that write to
customers, delivered by ``outbox_deliver`` and cancelled through ``message_cancel`` (audited,
on the API). The address a message went to is shown masked here; the API shows it in full to
those who may see personal data."""

from __future__ import annotations

from django.contrib import admin

from patron.outbox.models import Message
from patron.privacy import crypto
from patron.web.adminkit import ReadOnlyAdmin

_MASK_KIND = {"email": "email", "sms": "phone", "phone": "phone"}


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "customer",
        "channel",
        "purpose",
        "template",
        "status",
        "attempts",
        "next_attempt_at",
        "sent_at",
        "created_at",
    )
    list_filter = ("status", "channel", "purpose", "template")
    search_fields = ("customer__name", "customer__external_id", "key", "source")
    list_select_related = ("customer",)
    exclude = ("recipient",)
    readonly_fields = ("masked_recipient",)

    @admin.display(description="recipient")
    def masked_recipient(self, obj: Message) -> str:
        kind = _MASK_KIND.get(obj.channel)
        return (crypto.mask(obj.recipient, kind=kind) if kind else obj.recipient) or "—"
