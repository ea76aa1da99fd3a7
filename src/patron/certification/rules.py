"""Pure rules of certification: the state machines, the automatic pre-checks, the level
criteria, the levels' fallbacks and what becomes of a certification at expiry (a downgrade to
the fallback, or its end). Nothing here touches the database;
``patron.certification.services`` gathers the facts and applies these rules inside
transactions, so the API, the pages and the CLI agree.

Pre-checks come in two strengths. A **hard** check is about the application itself (a wrong
check digit, a birth date that does not match the ID, a missing document): it sends the
application straight back to the applicant with the precise fault, before a reviewer spends
time on it. A **soft** check is about the customer (credit, history, duplicates, restrictions):
it is shown to the reviewer, and a level whose criteria are unmet cannot be granted.

Identity numbers are validated with python-stdnum (``cn.ric``, ``cn.uscc``) and phones with
phonenumbers — never hand-written checksums.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import phonenumbers
from stdnum import exceptions as stdnum_errors
from stdnum.cn import ric, uscc

from patron.intelligence.explain import N_
from patron.statemachine import SeparationOfDuties, next_state

# ---------------------------------------------------------------------- state machines

#: Application status -> {action: next status}. ``return`` is the automatic return to the
#: applicant when a hard pre-check fails; ``request_info`` is a reviewer's (a round trip).
APPLICATION_TRANSITIONS: dict[str, dict[str, str]] = {
    "draft": {"submit": "pending", "return": "needs_info", "withdraw": "withdrawn"},
    "pending": {
        "start_review": "in_review",
        "approve": "approved",
        "reject": "rejected",
        "request_info": "needs_info",
        "withdraw": "withdrawn",
    },
    "in_review": {
        "approve": "approved",
        "reject": "rejected",
        "request_info": "needs_info",
        "release": "pending",
        "withdraw": "withdrawn",
    },
    "needs_info": {"submit": "pending", "return": "needs_info", "withdraw": "withdrawn"},
    "approved": {},
    "rejected": {},
    "withdrawn": {},
}

#: Certification status -> {action: next status}. At expiry a certification either ends
#: (``expire``) or, when its level's fallback level still holds, is ``downgrade``d: it ends and
#: a new certification of the fallback level replaces it (``expiry_outcome`` decides which).
CERTIFICATION_TRANSITIONS: dict[str, dict[str, str]] = {
    "active": {
        "expire": "expired",
        "downgrade": "downgraded",
        "revoke": "revoked",
        "supersede": "superseded",
    },
    "expired": {},
    "downgraded": {},
    "revoked": {},
    "superseded": {},
}

#: Change request status -> {action: next status}.
CHANGE_TRANSITIONS: dict[str, dict[str, str]] = {
    "pending": {"approve": "approved", "reject": "rejected", "withdraw": "withdrawn"},
    "approved": {},
    "rejected": {},
    "withdrawn": {},
}

LIVE_APPLICATION = frozenset({"draft", "pending", "in_review", "needs_info"})
EDITABLE_APPLICATION = frozenset({"draft", "needs_info"})
AWAITING_REVIEW = frozenset({"pending", "in_review"})


def application_next(state: str, action: str) -> str:
    return next_state(APPLICATION_TRANSITIONS, "the application", state, action)


def certification_next(state: str, action: str) -> str:
    return next_state(CERTIFICATION_TRANSITIONS, "the certification", state, action)


def change_next(state: str, action: str) -> str:
    return next_state(CHANGE_TRANSITIONS, "the change request", state, action)


def check_decider(user_id: int, *, filed_by: int | None, what: str) -> None:
    """Four eyes: whoever filed an application or a change request does not decide it."""
    if filed_by is not None and user_id == filed_by:
        raise SeparationOfDuties(f"you filed this {what}: another reviewer must decide it")


#: The levels Patron ships with: editable data (R-H2), seeded once.
DEFAULT_LEVELS: tuple[dict[str, Any], ...] = (
    {
        "code": "identity",
        "name": "实名认证",
        "name_en": "Identity verified",
        "applicant_kind": "individual",
        "rank": 1,
        "required_documents": ["id_front", "id_back"],
        "validity_days": 730,
        "remind_days": 30,
        "requires_no_restrictions": False,
    },
    {
        "code": "trusted",
        "name": "信用认证",
        "name_en": "Verified, good credit and history",
        "applicant_kind": "individual",
        "rank": 2,
        "min_credit_score": 650,
        "min_paid_orders": 3,
        "min_tenure_days": 180,
        "required_documents": ["id_front", "id_back"],
        "validity_days": 365,
        "remind_days": 30,
        "requires_no_restrictions": True,
    },
    {
        "code": "business",
        "name": "企业认证",
        "name_en": "Verified business",
        "applicant_kind": "business",
        "rank": 3,
        "required_documents": ["business_licence", "legal_rep_id"],
        "validity_days": 365,
        "remind_days": 45,
        "requires_no_restrictions": True,
    },
)
#: The trades Patron ships with and the permits PRC law asks of a shop selling in them
#: (editable data, seeded once; a trade not listed here needs no permit beyond the licence).
DEFAULT_CATEGORIES: tuple[dict[str, Any], ...] = (
    {
        "code": "general",
        "name": "一般商品",
        "name_en": "General merchandise",
        "required_permits": [],
    },
    {
        "code": "food",
        "name": "食品",
        "name_en": "Food",
        "required_permits": ["食品经营许可证"],
    },
    {
        "code": "pharmaceuticals",
        "name": "药品",
        "name_en": "Pharmaceuticals",
        "required_permits": ["药品经营许可证"],
    },
    {
        "code": "medical_devices",
        "name": "医疗器械",
        "name_en": "Medical devices",
        "required_permits": ["医疗器械经营许可证"],
    },
    {
        "code": "publications",
        "name": "出版物",
        "name_en": "Books and publications",
        "required_permits": ["出版物经营许可证"],
    },
    {
        "code": "hazardous_chemicals",
        "name": "危险化学品",
        "name_en": "Hazardous chemicals",
        "required_permits": ["危险化学品经营许可证"],
    },
)
#: The default levels' fallbacks (level code -> the lower level it falls back to at expiry):
#: a trusted customer who is no longer trusted is still a verified identity; a business has
#: nothing below it. Kept apart from ``DEFAULT_LEVELS``, which the first data migration reads
#: before the field existed.
DEFAULT_FALLBACKS: dict[str, str] = {"trusted": "identity"}


@dataclass(frozen=True)
class LevelLink:
    """A level's place among the others: what ``fallback_faults`` needs to know."""

    code: str
    applicant_kind: str
    rank: int
    fallback: str | None = None


def fallback_faults(levels: Iterable[LevelLink], *, edited: str) -> list[str]:
    """What is wrong with the fallbacks once level ``edited`` has its new values, each fault
    naming the edited level and the field to change (``level trusted.fallback: …``). A fallback
    is another level of the same kind with a lower rank, so that following fallbacks always
    ends (no loops) and a downgrade is always a step down. Empty: nothing is wrong."""
    by_code = {level.code: level for level in levels}
    level = by_code[edited]
    faults: list[str] = []
    where = f"level {edited}.fallback"
    if level.fallback is not None:
        target = by_code.get(level.fallback)
        if target is None:
            faults.append(f"{where}: there is no level {level.fallback!r}")
        elif target.code == level.code:
            faults.append(f"{where}: a level cannot fall back to itself")
        else:
            chain = [level.code]
            step: LevelLink | None = target
            while step is not None and step.code not in chain:
                chain.append(step.code)
                step = by_code.get(step.fallback) if step.fallback else None
            if step is not None:
                loop = " → ".join([*chain, step.code])
                faults.append(f"{where}: the fallbacks would loop ({loop})")
            if target.applicant_kind != level.applicant_kind:
                faults.append(
                    f"{where}: {target.code} is a level for {target.applicant_kind} customers, "
                    f"{edited} for {level.applicant_kind} customers"
                )
            if target.rank >= level.rank:
                faults.append(
                    f"{where}: {target.code} must have a lower rank than {edited} ({level.rank}); "
                    f"it has {target.rank}"
                )
    for other in sorted(by_code.values(), key=lambda lv: lv.code):
        if other.fallback == edited and other.code != edited and level.rank >= other.rank:
            faults.append(
                f"level {edited}.rank: {level.rank} must stay below the rank of {other.code} "
                f"({other.rank}), which falls back to {edited}"
            )
    return faults


# ---------------------------------------------------------------------- what is checked

#: Fields a certified profile holds, per applicant kind; changing one needs a change request.
PROFILE_FIELDS: dict[str, tuple[str, ...]] = {
    "individual": ("real_name", "id_number", "phone"),
    "business": (
        "company_name",
        "credit_code",
        "legal_rep_name",
        "legal_rep_id_number",
        "phone",
    ),
}
REQUIRED_FIELDS = PROFILE_FIELDS
FIELD_LABELS: dict[str, dict[str, str]] = {
    "real_name": {"en": "real name", "zh-hans": "真实姓名"},
    "id_number": {"en": "resident ID number", "zh-hans": "居民身份证号码"},
    "phone": {"en": "phone", "zh-hans": "手机号码"},
    "company_name": {"en": "company name", "zh-hans": "企业名称"},
    "credit_code": {"en": "unified social credit code", "zh-hans": "统一社会信用代码"},
    "legal_rep_name": {"en": "legal representative's name", "zh-hans": "法定代表人姓名"},
    "legal_rep_id_number": {
        "en": "legal representative's ID number",
        "zh-hans": "法定代表人身份证号码",
    },
    "qualifications": {"en": "qualifications", "zh-hans": "资质许可"},
}
DOCUMENT_LABELS: dict[str, dict[str, str]] = {
    "id_front": {"en": "ID card (photo side)", "zh-hans": "身份证人像面"},
    "id_back": {"en": "ID card (emblem side)", "zh-hans": "身份证国徽面"},
    "business_licence": {"en": "business licence", "zh-hans": "营业执照"},
    "legal_rep_id": {"en": "legal representative's ID", "zh-hans": "法定代表人身份证"},
    "qualification": {"en": "qualification or permit", "zh-hans": "资质许可证"},
    "other": {"en": "other document", "zh-hans": "其他文件"},
}


@dataclass(frozen=True)
class Check:
    """One pre-check: ``reason`` is a stored reason (``{"template", "params"}``, see
    ``patron.intelligence.explain``) so the applicant reads it in their language."""

    code: str
    passed: bool
    hard: bool
    reason: dict[str, Any]
    field: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "passed": self.passed,
            "hard": self.hard,
            "field": self.field,
            "reason": self.reason,
        }


def _reason(template: str, **params: Any) -> dict[str, Any]:
    return {"template": template, "params": params}


def _field(name: str) -> dict[str, str]:
    return FIELD_LABELS.get(name, {"en": name, "zh-hans": name})


@dataclass(frozen=True)
class ApplicationInput:
    """What the applicant states (plain values, decrypted)."""

    kind: str
    real_name: str = ""
    id_number: str = ""
    phone: str = ""
    birth_date: date | None = None
    id_region: str = ""
    company_name: str = ""
    credit_code: str = ""
    legal_rep_name: str = ""
    legal_rep_id_number: str = ""
    qualifications: Sequence[Mapping[str, Any]] = ()
    documents: frozenset[str] = frozenset()
    #: The trade named ({"en", "zh-hans"} label) and the permits it needs (business only).
    trade: Mapping[str, str] | None = None
    required_permits: tuple[str, ...] = ()


def _id_number_check(value: str, *, field_name: str) -> Check:
    """A resident ID number (GB 11643-1999) through ``stdnum.cn.ric``, with the exact fault."""
    label = _field(field_name)
    try:
        ric.validate(value)
    except stdnum_errors.InvalidLength:
        return Check(
            "id_number_format",
            False,
            True,
            _reason(
                N_("The {field} must have 18 characters; it has {length}."),
                field=label,
                length=len(ric.compact(value)),
            ),
            field_name,
        )
    except stdnum_errors.InvalidChecksum:
        compact = ric.compact(value)
        return Check(
            "id_number_checksum",
            False,
            True,
            _reason(
                N_("The {field} is mistyped: its last character should be {expected}, not {got}."),
                field=label,
                expected=ric.calc_check_digit(compact),
                got=compact[-1:],
            ),
            field_name,
        )
    except stdnum_errors.InvalidComponent:
        return Check(
            "id_number_birth_date",
            False,
            True,
            _reason(
                N_("The {field} is not valid: characters 7 to 14 ({digits}) are not a real date."),
                field=label,
                digits=ric.compact(value)[6:14],
            ),
            field_name,
        )
    except stdnum_errors.ValidationError:
        return Check(
            "id_number_format",
            False,
            True,
            _reason(
                N_("The {field} may hold only digits, with X allowed as the last character."),
                field=label,
            ),
            field_name,
        )
    return Check(
        "id_number_valid",
        True,
        True,
        _reason(N_("The {field} is well formed and its check digit is right."), field=label),
        field_name,
    )


def _credit_code_check(value: str) -> Check:
    label = _field("credit_code")
    try:
        uscc.validate(value)
    except stdnum_errors.InvalidLength:
        return Check(
            "credit_code_format",
            False,
            True,
            _reason(
                N_("The {field} must have 18 characters; it has {length}."),
                field=label,
                length=len(uscc.compact(value)),
            ),
            "credit_code",
        )
    except stdnum_errors.InvalidChecksum:
        compact = uscc.compact(value)
        return Check(
            "credit_code_checksum",
            False,
            True,
            _reason(
                N_("The {field} is mistyped: its last character should be {expected}, not {got}."),
                field=label,
                expected=uscc.calc_check_digit(compact),
                got=compact[-1:],
            ),
            "credit_code",
        )
    except stdnum_errors.ValidationError:
        return Check(
            "credit_code_format",
            False,
            True,
            _reason(
                N_(
                    "The {field} may hold only digits and capital letters other than "
                    "I, O, S, V and Z, and starts with its registration authority and type."
                ),
                field=label,
            ),
            "credit_code",
        )
    return Check(
        "credit_code_valid",
        True,
        True,
        _reason(N_("The {field} is well formed and its check character is right."), field=label),
        "credit_code",
    )


def phone_is_valid(value: str) -> bool:
    try:
        parsed = phonenumbers.parse(value, "CN")
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.is_valid_number(parsed)


def _phone_check(value: str) -> Check:
    label = _field("phone")
    if phone_is_valid(value):
        return Check(
            "phone_valid", True, True, _reason(N_("The {field} is valid."), field=label), "phone"
        )
    return Check(
        "phone_invalid",
        False,
        True,
        _reason(
            N_("The {field} {value} is not a valid number (for example 138 0013 8000)."),
            field=label,
            value=value,
        ),
        "phone",
    )


def _id_birth_checks(value: str, entered: date | None, region: str) -> list[Check]:
    """The birth date and the region encoded in a valid ID against what was entered."""
    checks: list[Check] = []
    encoded = ric.get_birth_date(value)
    if entered is not None:
        ok = encoded == entered
        checks.append(
            Check(
                "birth_date_matches_id" if ok else "birth_date_differs_from_id",
                ok,
                True,
                _reason(
                    N_("The birth date entered ({entered}) matches the ID number.")
                    if ok
                    else N_(
                        "The birth date entered ({entered}) differs from the one in the ID "
                        "number ({encoded}): one of them is wrong."
                    ),
                    entered=entered.isoformat(),
                    encoded=encoded.isoformat(),
                ),
                "birth_date",
            )
        )
    if region:
        place = ric.get_birth_place(value) or {}
        province = str(place.get("province", ""))
        if not province:
            checks.append(
                Check(
                    "region_unknown",
                    True,
                    False,
                    _reason(
                        N_("The ID number's region code {code} is not in the current list."),
                        code=ric.compact(value)[:6],
                    ),
                    "id_region",
                )
            )
        else:
            ok = _same_province(province, region)
            checks.append(
                Check(
                    "region_matches_id" if ok else "region_differs_from_id",
                    ok,
                    True,
                    _reason(
                        N_("The region entered ({entered}) matches the ID number ({encoded}).")
                        if ok
                        else N_(
                            "The region entered ({entered}) differs from the region of household "
                            "registration in the ID number ({encoded})."
                        ),
                        entered=region,
                        encoded=province,
                    ),
                    "id_region",
                )
            )
    return checks


_PROVINCE_SUFFIXES = ("省", "市", "自治区", "壮族自治区", "回族自治区", "维吾尔自治区")


def _same_province(a: str, b: str) -> bool:
    def core(name: str) -> str:
        name = name.strip()
        for suffix in sorted(_PROVINCE_SUFFIXES, key=len, reverse=True):
            if name.endswith(suffix) and len(name) > len(suffix):
                return name[: -len(suffix)]
        return name

    return core(a) == core(b)


def field_checks(values: Mapping[str, str]) -> list[Check]:
    """The hard checks of single fields (a change request's new values)."""
    checks: list[Check] = []
    for name, value in values.items():
        if not str(value).strip():
            checks.append(
                Check(
                    "field_missing",
                    False,
                    True,
                    _reason(N_("The {field} is missing."), field=_field(name)),
                    name,
                )
            )
        elif name in {"id_number", "legal_rep_id_number"}:
            checks.append(_id_number_check(str(value), field_name=name))
        elif name == "credit_code":
            checks.append(_credit_code_check(str(value)))
        elif name == "phone":
            checks.append(_phone_check(str(value)))
    return checks


def application_checks(
    data: ApplicationInput, *, required_documents: Iterable[str], today: date
) -> list[Check]:
    """The hard pre-checks of an application: complete, well formed, consistent."""
    checks: list[Check] = []
    missing = [name for name in REQUIRED_FIELDS[data.kind] if not str(getattr(data, name)).strip()]
    for name in missing:
        checks.append(
            Check(
                "field_missing",
                False,
                True,
                _reason(N_("The {field} is missing."), field=_field(name)),
                name,
            )
        )
    checks += document_checks(required_documents, data.documents)
    if data.kind == "individual" and "id_number" not in missing:
        check = _id_number_check(data.id_number, field_name="id_number")
        checks.append(check)
        if check.passed:
            checks.extend(_id_birth_checks(data.id_number, data.birth_date, data.id_region))
    if data.kind == "business":
        if "credit_code" not in missing:
            checks.append(_credit_code_check(data.credit_code))
        if "legal_rep_id_number" not in missing:
            checks.append(
                _id_number_check(data.legal_rep_id_number, field_name="legal_rep_id_number")
            )
        checks.extend(_qualification_checks(data.qualifications, today=today))
        checks.extend(permit_checks(data, required_documents=required_documents))
    if "phone" not in missing:
        checks.append(_phone_check(data.phone))
    return checks


def document_checks(required: Iterable[str], supplied: Iterable[str]) -> list[Check]:
    """A hard check failed for each required kind of document not supplied."""
    have = frozenset(supplied)
    return [
        Check(
            "document_missing",
            False,
            True,
            _reason(
                N_("Upload the {document}: this level requires it."),
                document=DOCUMENT_LABELS.get(kind, {"en": kind}),
            ),
            kind,
        )
        for kind in required
        if kind not in have
    ]


def _permit_key(name: str) -> str:
    """A permit's name as compared: without spaces, full-width brackets as half-width."""
    return "".join(name.split()).translate(str.maketrans("（）", "()"))


def permit_checks(data: ApplicationInput, *, required_documents: Iterable[str]) -> list[Check]:
    """The permits the named trade needs: each listed among the qualifications (by name, with
    its number; expiry is ``_qualification_checks``'s) and a copy uploaded. Nothing to check
    when no trade, or a trade without permits, was named."""
    if not data.required_permits:
        return []
    trade = data.trade or {"en": "", "zh-hans": ""}
    listed = {
        _permit_key(str(item.get("name", ""))): str(item.get("number", "")).strip()
        for item in data.qualifications
    }
    checks = [
        Check(
            "permit_missing",
            False,
            True,
            _reason(
                N_(
                    "A shop selling {trade} needs the {permit}: list it under qualifications "
                    "with its number and validity, and upload a copy."
                ),
                trade=trade,
                permit=permit,
            ),
            "qualifications",
        )
        for permit in data.required_permits
        if not listed.get(_permit_key(permit))
    ]
    if "qualification" not in data.documents and "qualification" not in required_documents:
        # (a level that requires permits already says so through its own document check)
        checks.append(
            Check(
                "permit_copy_missing",
                False,
                True,
                _reason(
                    N_("Upload a copy of the {permits}: a shop selling {trade} needs it."),
                    permits="、".join(data.required_permits),
                    trade=trade,
                ),
                "qualification",
            )
        )
    if not checks:
        checks.append(
            Check(
                "permits_listed",
                True,
                True,
                _reason(
                    N_("Every permit a shop selling {trade} needs is listed: {permits}."),
                    trade=trade,
                    permits="、".join(data.required_permits),
                ),
                "qualifications",
            )
        )
    return checks


def _qualification_checks(items: Sequence[Mapping[str, Any]], *, today: date) -> list[Check]:
    checks: list[Check] = []
    for number, item in enumerate(items, start=1):
        name = str(item.get("name", "")).strip()
        if not name or not str(item.get("number", "")).strip():
            checks.append(
                Check(
                    "qualification_incomplete",
                    False,
                    True,
                    _reason(N_("Qualification {n} needs both its name and its number."), n=number),
                    "qualifications",
                )
            )
            continue
        until = item.get("valid_until")
        if until:
            until_date = until if isinstance(until, date) else date.fromisoformat(str(until))
            if until_date < today:
                checks.append(
                    Check(
                        "qualification_expired",
                        False,
                        True,
                        _reason(
                            N_("The {name} expired on {date}: upload the renewed one."),
                            name=name,
                            date=until_date.isoformat(),
                        ),
                        "qualifications",
                    )
                )
    return checks


# ---------------------------------------------------------------------- the customer


@dataclass(frozen=True)
class LevelCriteria:
    """A level's criteria (``CertificationLevel`` as plain data)."""

    code: str
    applicant_kind: str
    min_credit_score: int | None = None
    min_paid_orders: int = 0
    min_spend_12m: Decimal = Decimal(0)
    min_tenure_days: int = 0
    requires_no_restrictions: bool = True
    required_documents: tuple[str, ...] = ()
    validity_days: int = 365
    is_active: bool = True


@dataclass(frozen=True)
class CustomerFacts:
    """What Patron knows about the customer when the application is checked or decided."""

    credit_score: int | None = None
    paid_orders: int = 0
    spend_12m: Decimal = Decimal(0)
    tenure_days: int = 0
    restrictions: tuple[str, ...] = ()  # kinds of restrictions in force
    is_blacklisted: bool = False
    duplicates: tuple[int, ...] = field(default=())  # other customers with the same number


def criteria_checks(level: LevelCriteria, facts: CustomerFacts) -> list[Check]:
    """The soft checks of a level's criteria; every one must pass for the level to be granted."""
    checks: list[Check] = []
    if level.min_credit_score is not None:
        score = facts.credit_score
        ok = score is not None and score >= level.min_credit_score
        checks.append(
            Check(
                "credit_score",
                ok,
                False,
                _reason(
                    N_("Credit score {score} (this level needs at least {minimum}).")
                    if score is not None
                    else N_("No credit score yet (this level needs at least {minimum})."),
                    score=score,
                    minimum=level.min_credit_score,
                ),
            )
        )
    if level.min_paid_orders:
        checks.append(
            Check(
                "paid_orders",
                facts.paid_orders >= level.min_paid_orders,
                False,
                _reason(
                    N_("{count} paid orders (this level needs at least {minimum})."),
                    count=facts.paid_orders,
                    minimum=level.min_paid_orders,
                ),
            )
        )
    if level.min_spend_12m:
        checks.append(
            Check(
                "spend_12m",
                facts.spend_12m >= level.min_spend_12m,
                False,
                _reason(
                    N_("Spent ¥{spend} in the last 12 months (this level needs ¥{minimum})."),
                    spend=f"{facts.spend_12m:,.2f}",
                    minimum=f"{level.min_spend_12m:,.2f}",
                ),
            )
        )
    if level.min_tenure_days:
        checks.append(
            Check(
                "tenure",
                facts.tenure_days >= level.min_tenure_days,
                False,
                _reason(
                    N_("A customer for {days} days (this level needs {minimum})."),
                    days=facts.tenure_days,
                    minimum=level.min_tenure_days,
                ),
            )
        )
    if level.requires_no_restrictions:
        clean = not facts.restrictions and not facts.is_blacklisted
        what = list(facts.restrictions) + (["blacklist"] if facts.is_blacklisted else [])
        checks.append(
            Check(
                "no_restrictions",
                clean,
                False,
                _reason(N_("No risk restriction in force."))
                if clean
                else _reason(
                    N_("Risk restrictions in force: {kinds}."), kinds=", ".join(sorted(what))
                ),
            )
        )
    return checks


def duplicate_check(facts: CustomerFacts) -> Check:
    """Another customer with the same ID number or credit code: shown, never decided here."""
    if not facts.duplicates:
        return Check(
            "no_duplicate",
            True,
            False,
            _reason(N_("No other customer has this ID number or credit code.")),
        )
    return Check(
        "duplicate",
        False,
        False,
        _reason(
            N_("Other customers have the same number: {ids}. Check before approving."),
            ids=", ".join(f"#{pk}" for pk in facts.duplicates),
        ),
    )


def hard_failures(checks: Iterable[Mapping[str, Any] | Check]) -> list[dict[str, Any]]:
    """The failed hard checks, as stored JSON."""
    out = []
    for check in checks:
        data = check.to_json() if isinstance(check, Check) else dict(check)
        if data["hard"] and not data["passed"]:
            out.append(data)
    return out


def unmet_criteria(level: LevelCriteria, facts: CustomerFacts) -> list[dict[str, Any]]:
    return [c.to_json() for c in criteria_checks(level, facts) if not c.passed]


def expiry_stage(*, expires_at: Any, now: Any, remind_days: int, reminded: bool) -> str:
    """What the re-verification job does with an active certification: ``expire``,
    ``remind`` (once, ``remind_days`` ahead) or ``none``."""
    if expires_at <= now:
        return "expire"
    if not reminded and (expires_at - now).total_seconds() <= remind_days * 86400:
        return "remind"
    return "none"


@dataclass(frozen=True)
class ExpiryOutcome:
    """What becomes of an expired certification: ``downgrade`` to ``fallback`` until
    ``expires_at``, or ``expire``. ``reason`` says why (stored, read in any language);
    ``failed`` are the fallback's checks the customer no longer passes."""

    action: str
    reason: dict[str, Any]
    fallback: str = ""
    expires_at: datetime | None = None
    failed: tuple[dict[str, Any], ...] = ()

    @property
    def is_downgrade(self) -> bool:
        return self.action == "downgrade"


def expiry_outcome(
    *,
    level: LevelCriteria,
    fallback: LevelCriteria | None,
    entered: ApplicationInput,
    facts: CustomerFacts,
    decided_at: datetime,
    now: datetime,
) -> ExpiryOutcome:
    """Re-verification at expiry (R-H3): the certification of ``level``, decided at
    ``decided_at``, falls back to ``fallback`` when that level is still offered, its own
    validity counted from the same decision has not run out, and the customer passes now what
    approval would check for it — the hard checks of the certified facts (``entered``: the
    documents on file, permits not expired) and every criterion (``facts``). Otherwise it ends.

    ``decided_at`` and ``now`` are aware datetimes in the time zone the dates are told in."""
    if fallback is None:
        return ExpiryOutcome(
            "expire",
            _reason(
                N_("Level {level} expired and names no lower level to fall back to."),
                level=level.code,
            ),
        )
    if not fallback.is_active or fallback.applicant_kind != level.applicant_kind:
        return ExpiryOutcome(
            "expire",
            _reason(
                N_("Level {level} expired; its fallback {fallback} is not offered any more."),
                level=level.code,
                fallback=fallback.code,
            ),
        )
    until = decided_at + timedelta(days=fallback.validity_days)
    if until <= now:
        return ExpiryOutcome(
            "expire",
            _reason(
                N_(
                    "Level {level} expired; its fallback {fallback} ran out too, on {until} "
                    "({days} days from the decision on {decided})."
                ),
                level=level.code,
                fallback=fallback.code,
                until=until.date().isoformat(),
                days=fallback.validity_days,
                decided=decided_at.date().isoformat(),
            ),
        )
    checks = application_checks(
        entered, required_documents=fallback.required_documents, today=now.date()
    )
    failed = tuple(c.to_json() for c in checks + criteria_checks(fallback, facts) if not c.passed)
    if failed:
        return ExpiryOutcome(
            "expire",
            _reason(
                N_(
                    "Level {level} expired; the customer no longer meets its fallback "
                    "{fallback}: {count} check(s) failed."
                ),
                level=level.code,
                fallback=fallback.code,
                count=len(failed),
            ),
            failed=failed,
        )
    return ExpiryOutcome(
        "downgrade",
        _reason(
            N_(
                "Level {level} expired; the customer still meets every criterion of its "
                "fallback {fallback}, granted until {until} ({days} days from the decision on "
                "{decided})."
            ),
            level=level.code,
            fallback=fallback.code,
            until=until.date().isoformat(),
            days=fallback.validity_days,
            decided=decided_at.date().isoformat(),
        ),
        fallback=fallback.code,
        expires_at=until,
    )


#: The document a change of a certified field comes with: the new ID card, the business
#: licence reissued under the new name, code or representative, the new representative's ID.
CHANGE_DOCUMENTS: dict[str, str] = {
    "real_name": "id_front",
    "id_number": "id_front",
    "company_name": "business_licence",
    "credit_code": "business_licence",
    "legal_rep_name": "business_licence",
    "legal_rep_id_number": "legal_rep_id",
}


def change_document_checks(fields: Iterable[str], supplied: Iterable[str]) -> list[Check]:
    """A hard check failed for each document a change needs and does not have yet (a change
    of the phone needs none)."""
    have = frozenset(supplied)
    needed: dict[str, list[str]] = {}
    for name in fields:
        kind = CHANGE_DOCUMENTS.get(name)
        if kind is not None:
            needed.setdefault(kind, []).append(name)
    return [
        Check(
            "document_missing",
            False,
            True,
            _reason(
                N_("Upload the new {document}: a change of the {fields} needs it."),
                document=DOCUMENT_LABELS[kind],
                fields={
                    "en": " and ".join(_field(name)["en"] for name in names),
                    "zh-hans": "、".join(_field(name)["zh-hans"] for name in names),
                },
            ),
            kind,
        )
        for kind, names in sorted(needed.items())
        if kind not in have
    ]


def changed_fields(
    old: Mapping[str, Any], new: Mapping[str, Any], *, kind: str
) -> dict[str, dict[str, Any]]:
    """The profile fields a change request changes, with old and new values; fields outside
    the kind's profile are refused by the caller, unchanged ones are dropped."""
    out: dict[str, dict[str, Any]] = {}
    for name, value in new.items():
        if name not in PROFILE_FIELDS[kind]:
            raise KeyError(name)
        before = str(old.get(name, "") or "")
        after = str(value or "").strip()
        if after != before:
            out[name] = {"old": before, "new": after}
    return out
