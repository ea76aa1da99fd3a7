"""The forms of the customer's pages (``public_views``): Django forms, so every field is
checked and its error shown next to it; the rules themselves are in ``patron.service.public``
(a rule's ``ValidationFailed`` names its field and is put back on that field)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from patron.errors import PatronError
from patron.service import public, services


class _Styled(forms.Form):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        for field in self.fields.values():
            field.widget.attrs.setdefault("class", "form-control")

    def add_error(self, field: str | None, error: Any) -> None:
        super().add_error(field, error)
        for name in self.errors:
            if name in self.fields:
                widget = self.fields[name].widget
                widget.attrs["class"] = "form-control is-invalid"

    def fail(self, error: PatronError) -> None:
        """Show a rule's error on the field it names (``"email: …"``), else above the form."""
        name, _sep, rest = error.message.partition(":")
        if name in self.fields and rest.strip():
            self.add_error(name, rest.strip())
        else:
            self.add_error(None, error.message)


class HelpForm(_Styled):
    name = forms.CharField(label=_("Your name"), max_length=public.MAX_NAME)
    email = forms.EmailField(label=_("E-mail"), required=False, max_length=254)
    phone = forms.CharField(label=_("Phone"), required=False, max_length=30)
    order = forms.CharField(
        label=_("Order number (optional)"),
        required=False,
        max_length=64,
        help_text=_("As shown in your order confirmation."),
    )
    subject = forms.CharField(label=_("Subject"), max_length=services.MAX_SUBJECT)
    message = forms.CharField(
        label=_("Your message"),
        max_length=services.MAX_BODY,
        widget=forms.Textarea(attrs={"rows": 6}),
    )

    def clean_phone(self) -> str:
        phone = str(self.cleaned_data.get("phone") or "").strip()
        if phone and not public.PHONE.match(phone):
            raise forms.ValidationError(_("Enter a phone number: digits, spaces, - or +."))
        return phone

    def clean(self) -> dict[str, object]:
        cleaned = super().clean() or {}
        has_email = bool(cleaned.get("email")) or "email" in self.errors
        has_phone = bool(cleaned.get("phone")) or "phone" in self.errors
        if not has_email and not has_phone:
            self.add_error(
                "email", _("Give an e-mail address or a phone number so that we can answer you.")
            )
        return cleaned


class WriteForm(_Styled):
    message = forms.CharField(
        label=_("Write to us"),
        max_length=services.MAX_BODY,
        widget=forms.Textarea(attrs={"rows": 4}),
    )
