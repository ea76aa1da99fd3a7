"""The filing form shared by the staff page and the customer's page: what was typed, kept as
typed so that a refusal shows it again next to the error, and turned into the service's
arguments here (one place for both pages)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from django.http import QueryDict

from patron.aftersales import services
from patron.aftersales.models import Kind, ReasonCode
from patron.errors import PatronError, ValidationFailed
from patron.web.templatetags.patron_web import choice


def kind_choices() -> list[tuple[str, str]]:
    return [(value, choice(label)) for value, label in Kind.choices]


def reason_choices() -> list[tuple[str, str]]:
    return [(value, choice(label)) for value, label in ReasonCode.choices]


def _whole(text: str, name: str) -> int:
    try:
        return int(text.strip())
    except (AttributeError, ValueError):
        raise ValidationFailed(f"{name}: expected a whole number, got '{text}'") from None


@dataclass
class FilingForm:
    order: str = ""
    kind: str = "return"
    reason_code: str = "no_reason"
    reason: str = ""
    requested_amount: str = ""
    quantities: dict[str, str] = field(default_factory=dict)
    error: PatronError | None = None

    @classmethod
    def from_post(cls, data: QueryDict) -> FilingForm:
        return cls(
            order=data.get("order", ""),
            kind=data.get("kind", ""),
            reason_code=data.get("reason_code", ""),
            reason=data.get("reason", ""),
            requested_amount=data.get("requested_amount", "").strip(),
            quantities={
                key.removeprefix("quantity_"): str(data.get(key, "")).strip()
                for key in data
                if key.startswith("quantity_") and str(data.get(key, "")).strip()
            },
        )

    @property
    def field(self) -> str:
        """The field the error names (``lines.0.quantity`` …), to mark it on the page."""
        if self.error is None:
            return ""
        if isinstance(self.error.details, dict) and self.error.details.get("field"):
            return str(self.error.details["field"])
        return self.error.message.split(":", 1)[0]

    def file(
        self,
        *,
        user: Any,
        customer_id: int,
        channel: str,
        applicant_customer_id: int | None = None,
    ) -> Any:
        """File the request the form describes (the service checks everything that matters;
        here only what the page's fields mean)."""
        order_id = _whole(self.order, "order_id") if self.order else 0
        if not order_id:
            raise ValidationFailed("order_id: choose the order", details={"field": "order_id"})
        lines = [
            services.LineRequest(order_line_id=int(line_id), quantity=_whole(qty, "quantity"))
            for line_id, qty in self.quantities.items()
            if line_id.isdigit() and qty not in ("", "0")
        ]
        amount: Decimal | None = None
        if self.requested_amount:
            try:
                amount = Decimal(self.requested_amount)
            except InvalidOperation:
                raise ValidationFailed(
                    f"requested_amount: expected an amount, got '{self.requested_amount}'",
                    details={"field": "requested_amount"},
                ) from None
        return services.aftersales_file(
            user=user,
            customer_id=customer_id,
            order_id=order_id,
            kind=self.kind,
            reason_code=self.reason_code,
            reason=self.reason,
            lines=[line for line in lines if _line_of(line, self.order)],
            requested_amount=amount,
            channel=channel,
            applicant_customer_id=applicant_customer_id,
        )


def _line_of(line: services.LineRequest, order: str) -> bool:
    """The page names quantities for the lines of every order shown; only the chosen order's
    count (a line of another order is dropped, not refused)."""
    from patron.commerce.models import OrderLine

    return OrderLine.objects.filter(pk=line.order_line_id, order_id=order).exists()
