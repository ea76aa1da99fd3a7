"""Pure rules of risk control: the state machines of alerts, blacklist entries and appeals,
who may decide what, and how a checkout policy follows from restrictions, credit and grade.

Nothing here touches the database; ``patron.risk.services`` applies these rules inside
transactions, so that the API, the pages and the CLI share them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from patron.intelligence.explain import N_
from patron.statemachine import SeparationOfDuties, next_state

# ---------------------------------------------------------------------- state machines

#: Alert status -> {action: next status}. Dismissed, restricted and escalated are final: a
#: later run raises a new alert only when it finds evidence the dismissed one did not have.
ALERT_TRANSITIONS: dict[str, dict[str, str]] = {
    "open": {
        "watch": "watching",
        "dismiss": "dismissed",
        "restrict": "restricted",
        "propose_blacklist": "escalated",
    },
    "watching": {
        "dismiss": "dismissed",
        "restrict": "restricted",
        "propose_blacklist": "escalated",
    },
    "dismissed": {},
    "restricted": {},
    "escalated": {},
}

#: Blacklist entry status -> {action: next status}. ``approve`` goes to ``confirmed`` while
#: more approvals are needed and to ``active`` with the last one (see ``blacklist_approve``).
BLACKLIST_TRANSITIONS: dict[str, dict[str, str]] = {
    "proposed": {"approve": "confirmed|active", "reject": "rejected"},
    "confirmed": {"approve": "active", "reject": "rejected"},
    "active": {"lift": "lifted"},
    "rejected": {},
    "lifted": {},
}

#: Appeal status -> {action: next status}.
APPEAL_TRANSITIONS: dict[str, dict[str, str]] = {
    "open": {"start_review": "in_review", "uphold": "upheld", "overturn": "overturned"},
    "in_review": {"uphold": "upheld", "overturn": "overturned"},
    "upheld": {},
    "overturned": {},
}

LIVE_ALERT = frozenset({"open", "watching"})
LIVE_BLACKLIST = frozenset({"proposed", "confirmed", "active"})
LIVE_APPEAL = frozenset({"open", "in_review"})


def alert_next(state: str, action: str) -> str:
    return next_state(ALERT_TRANSITIONS, "alert", state, action)


def appeal_next(state: str, action: str) -> str:
    return next_state(APPEAL_TRANSITIONS, "appeal", state, action)


def blacklist_next(state: str, action: str, *, approvals_after: int = 0, needed: int = 1) -> str:
    """The next status; for ``approve``, ``approvals_after`` counts this approval too."""
    target = next_state(BLACKLIST_TRANSITIONS, "blacklist entry", state, action)
    if action == "approve":
        return "active" if approvals_after >= needed else "confirmed"
    return target


def check_approver(user_id: int, *, proposer_id: int | None, approver_ids: Iterable[int]) -> None:
    """A blacklisting is confirmed by people other than its proposer, each approving once."""
    if proposer_id is not None and user_id == proposer_id:
        raise SeparationOfDuties("you proposed this blacklisting: another analyst must approve it")
    if user_id in set(approver_ids):
        raise SeparationOfDuties("you already approved this blacklisting: a second analyst must")


def check_reviewer(user_id: int, *, decider_ids: Iterable[int | None]) -> None:
    """An appeal is decided by a person who took no part in the decision appealed."""
    if user_id in {d for d in decider_ids if d is not None}:
        raise SeparationOfDuties(
            "you took part in the decision under appeal: another analyst must review it"
        )


def evidence_is_new(
    current: Iterable[Mapping[str, Any]], seen: Iterable[Mapping[str, Any]]
) -> bool:
    """Whether ``current`` names any record that ``seen`` did not (re-raising dismissed alerts)."""
    known = {(e.get("type"), e.get("id")) for e in seen}
    return any((e.get("type"), e.get("id")) not in known for e in current)


# ---------------------------------------------------------------------- checkout policy

#: Payment methods that extend credit to the customer: they need a good enough score.
DEFERRED_METHODS = ("cod", "pay_later")

#: How reasons name payment methods (``patron.commerce.models.Payment.Method``), per language.
METHOD_NAMES: dict[str, tuple[str, str]] = {
    "alipay": ("Alipay", "支付宝"),
    "wechat_pay": ("WeChat Pay", "微信支付"),
    "card": ("card", "银行卡"),
    "cod": ("cash on delivery", "货到付款"),
    "pay_later": ("pay later", "先用后付"),
    "voucher": ("voucher", "代金券"),
    "bank_transfer": ("bank transfer", "银行转账"),
    "other": ("other", "其他"),
}


def method_names(methods: Iterable[str]) -> dict[str, str]:
    """A reason parameter naming ``methods`` in each language (``explain`` picks one)."""
    names = [METHOD_NAMES.get(m, (m, m)) for m in sorted(methods)]
    return {"en": ", ".join(n[0] for n in names), "zh-hans": "、".join(n[1] for n in names)}


DEFAULT_RISK_POLICY: dict[str, Any] = {
    "payment_methods": ["alipay", "wechat_pay", "card", "bank_transfer", "cod", "pay_later"],
    "deferred_methods": list(DEFERRED_METHODS),
    "deferred_min_score": 550,
    "credit_bands": [
        {"min_score": 750, "limit": "5000"},
        {"min_score": 650, "limit": "2000"},
        {"min_score": 550, "limit": "500"},
    ],
    "grade_multiplier": {"core": 1.5, "potential": 1.0, "ordinary": 1.0},
    # Certified customers (patron.certification): the level's code -> factor on the limit.
    "certification_multiplier": {"trusted": 1.5, "business": 2.0},
    "review_below_score": 480,
    "unscored_deferred": False,
    "currency": "CNY",
    "blacklist_approvals": 2,
    "appeal_sla_hours": 72,
}


@dataclass(frozen=True)
class CreditBand:
    min_score: float
    limit: Decimal


@dataclass(frozen=True)
class RiskPolicyRules:
    """The checkout and decision settings staff edit (``RiskPolicy.rules``)."""

    payment_methods: tuple[str, ...]
    deferred_methods: tuple[str, ...]
    deferred_min_score: float
    credit_bands: tuple[CreditBand, ...]  # highest first
    grade_multiplier: Mapping[str, float]
    certification_multiplier: Mapping[str, float]
    review_below_score: float
    unscored_deferred: bool
    currency: str
    blacklist_approvals: int
    appeal_sla_hours: int

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RiskPolicyRules:
        """Validate and read a stored policy; errors name the field."""
        merged = {**DEFAULT_RISK_POLICY, **data}
        unknown = sorted(set(data) - set(DEFAULT_RISK_POLICY))
        if unknown:
            raise ValueError(f"unknown field(s): {', '.join(unknown)}")
        methods = _strings(merged["payment_methods"], "payment_methods")
        deferred = _strings(merged["deferred_methods"], "deferred_methods")
        stray = sorted(set(deferred) - set(methods))
        if stray:
            raise ValueError(f"deferred_methods: {', '.join(stray)} not in payment_methods")
        bands = []
        for i, band in enumerate(merged["credit_bands"]):
            where = f"credit_bands[{i}]"
            if not isinstance(band, Mapping) or set(band) != {"min_score", "limit"}:
                raise ValueError(f"{where}: expected {{min_score, limit}}")
            limit = _decimal(band["limit"], f"{where}.limit")
            bands.append(CreditBand(_number(band["min_score"], f"{where}.min_score"), limit))
        bands.sort(key=lambda b: b.min_score, reverse=True)
        factors = _factors(merged["grade_multiplier"], "grade_multiplier", "grade")
        certified = _factors(
            merged["certification_multiplier"], "certification_multiplier", "level"
        )
        approvals = merged["blacklist_approvals"]
        if not isinstance(approvals, int) or isinstance(approvals, bool) or not 1 <= approvals <= 3:
            raise ValueError("blacklist_approvals: a whole number from 1 to 3")
        sla = merged["appeal_sla_hours"]
        if not isinstance(sla, int) or isinstance(sla, bool) or not 1 <= sla <= 24 * 30:
            raise ValueError("appeal_sla_hours: a whole number of hours from 1 to 720")
        if not isinstance(merged["unscored_deferred"], bool):
            raise ValueError("unscored_deferred: true or false")
        currency = merged["currency"]
        if not isinstance(currency, str) or len(currency) != 3:
            raise ValueError("currency: a three-letter code")
        return cls(
            payment_methods=methods,
            deferred_methods=deferred,
            deferred_min_score=_number(merged["deferred_min_score"], "deferred_min_score"),
            credit_bands=tuple(bands),
            grade_multiplier=factors,
            certification_multiplier=certified,
            review_below_score=_number(merged["review_below_score"], "review_below_score"),
            unscored_deferred=merged["unscored_deferred"],
            currency=currency.upper(),
            blacklist_approvals=approvals,
            appeal_sla_hours=sla,
        )


def _factors(value: Any, name: str, key: str) -> dict[str, float]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{name}: expected an object {key} -> factor")
    factors = {str(k): _number(v, f"{name}.{k}") for k, v in value.items()}
    if any(f < 0 for f in factors.values()):
        raise ValueError(f"{name}: factors must not be negative")
    return factors


def _strings(value: Any, name: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"{name}: expected a list of names")
    return tuple(value)


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name}: expected a number")
    return float(value)


def _decimal(value: Any, name: str) -> Decimal:
    try:
        amount = Decimal(str(value))
    except ArithmeticError as error:
        raise ValueError(f"{name}: expected an amount") from error
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"{name}: expected an amount of zero or more")
    return amount.quantize(Decimal("0.01"))


@dataclass(frozen=True)
class ActiveRestriction:
    """What the checkout policy needs of an active restriction."""

    kind: str
    scope: Mapping[str, Any]
    reason: str
    restriction_id: int


@dataclass(frozen=True)
class Override:
    """Terms a person granted on review of the automated decision (``CreditOverride``)."""

    credit_limit: Decimal
    allow_deferred: bool


@dataclass(frozen=True)
class CheckoutPolicy:
    may_order: bool
    payment_methods: tuple[str, ...]
    credit_limit: Decimal
    currency: str
    order_review: bool
    coupons_allowed: bool
    reasons: tuple[dict[str, Any], ...] = field(default_factory=tuple)  # explain.py shapes


def _reason(template: str, **params: Any) -> dict[str, Any]:
    return {"template": template, "params": params}


def checkout_policy(
    rules: RiskPolicyRules,
    *,
    credit_score: float | None,
    grade: str,
    restrictions: Sequence[ActiveRestriction] = (),
    blacklisted: bool = False,
    override: Override | None = None,
    certification: str = "",
) -> CheckoutPolicy:
    """What a shop may offer this customer at checkout, and why, in plain words.

    The score decides automatically; an ``override`` a person granted on appeal replaces what
    the score decided; restrictions a person applied come last and only ever take away."""
    reasons: list[dict[str, Any]] = []
    if blacklisted:
        return CheckoutPolicy(
            may_order=False,
            payment_methods=(),
            credit_limit=Decimal("0.00"),
            currency=rules.currency,
            order_review=True,
            coupons_allowed=False,
            reasons=(_reason(N_("The account is on the blacklist after a review by our staff.")),),
        )
    methods = list(rules.payment_methods)
    limit = Decimal("0.00")
    review = False
    if credit_score is None:
        if not rules.unscored_deferred:
            methods = [m for m in methods if m not in rules.deferred_methods]
            reasons.append(
                _reason(
                    N_(
                        "No credit score yet: cash on delivery and pay later open once "
                        "there is enough purchase history."
                    )
                )
            )
    else:
        score = round(credit_score)
        band = next((b for b in rules.credit_bands if credit_score >= b.min_score), None)
        if band is not None:
            factor = Decimal(str(rules.grade_multiplier.get(grade, 1.0)))
            limit = (band.limit * factor).quantize(Decimal("0.01"))
            reasons.append(
                _reason(
                    N_("Credit score {score} gives a credit limit of {limit} {currency}."),
                    score=score,
                    limit=f"{limit:,.2f}",
                    currency=rules.currency,
                )
            )
            certified = rules.certification_multiplier.get(certification, 1.0)
            if certification and certified != 1.0:
                limit = (limit * Decimal(str(certified))).quantize(Decimal("0.01"))
                reasons.append(
                    _reason(
                        N_(
                            "Certified customer ({level}): the credit limit is {limit} "
                            "{currency} ({factor} times)."
                        ),
                        level=certification,
                        limit=f"{limit:,.2f}",
                        currency=rules.currency,
                        factor=f"{certified:g}",
                    )
                )
        if credit_score < rules.deferred_min_score:
            methods = [m for m in methods if m not in rules.deferred_methods]
            reasons.append(
                _reason(
                    N_(
                        "Credit score {score} is below {minimum}: cash on delivery and pay "
                        "later are not offered."
                    ),
                    score=score,
                    minimum=round(rules.deferred_min_score),
                )
            )
        if credit_score < rules.review_below_score:
            review = True
            reasons.append(
                _reason(
                    N_("Credit score {score} is below {minimum}: orders are checked by staff."),
                    score=score,
                    minimum=round(rules.review_below_score),
                )
            )
    if override is not None:
        review = False
        limit = override.credit_limit
        if override.allow_deferred:
            methods = [
                m for m in rules.payment_methods if m in methods or m in rules.deferred_methods
            ]
        reasons = [  # what the score decided no longer holds: say what does
            _reason(
                N_(
                    "A person reviewed what the credit score decided and granted a credit limit "
                    "of {limit} {currency}."
                ),
                limit=f"{limit:,.2f}",
                currency=rules.currency,
            )
        ]
    may_order = True
    coupons = True
    for restriction in restrictions:
        said = restriction.reason
        if restriction.kind == "account_freeze":
            may_order = False
            methods = []
            limit = Decimal("0.00")
            reasons.append(_reason(N_("The account is frozen: {reason}"), reason=said))
        elif restriction.kind == "payment_method":
            barred = set(restriction.scope.get("methods") or rules.deferred_methods)
            methods = [m for m in methods if m not in barred]
            reasons.append(
                _reason(
                    N_("Payment methods {methods} are not offered: {reason}"),
                    methods=method_names(barred),
                    reason=said,
                )
            )
        elif restriction.kind == "credit_limit":
            cap = Decimal(str(restriction.scope.get("limit", "0"))).quantize(Decimal("0.01"))
            limit = min(limit, cap)
            reasons.append(
                _reason(
                    N_("The credit limit is capped at {limit} {currency}: {reason}"),
                    limit=f"{cap:,.2f}",
                    currency=rules.currency,
                    reason=said,
                )
            )
        elif restriction.kind == "order_review":
            review = True
            reasons.append(_reason(N_("Orders are checked by staff: {reason}"), reason=said))
        elif restriction.kind == "coupon_ban":
            coupons = False
            reasons.append(_reason(N_("Coupons cannot be used: {reason}"), reason=said))
    if limit == 0:
        methods = [m for m in methods if m != "pay_later"]
    return CheckoutPolicy(
        may_order=may_order,
        payment_methods=tuple(methods),
        credit_limit=limit,
        currency=rules.currency,
        order_review=review or not may_order,
        coupons_allowed=coupons and may_order,
        reasons=tuple(reasons),
    )
