"""The pure rules of certification: every transition of the three state machines, the
pre-checks against the standards' published examples, and the level criteria."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import product
from typing import Any

import pytest

from patron.certification import rules
from patron.intelligence.explain import render
from patron.statemachine import SeparationOfDuties, TransitionRefused

# Published examples: GB 11643-1999 resident IDs, GB 32100-2015 social credit codes.
VALID_IDS = ["11010519491231002X", "360426199101010071"]
VALID_CODES = ["91110000802100433B", "91350100M000100Y43"]


def _text(check: rules.Check) -> str:
    return render(check.reason, language="en")


# ---------------------------------------------------------------------- state machines

APPLICATION_EXPECTED = {
    ("draft", "submit"): "pending",
    ("draft", "return"): "needs_info",
    ("draft", "withdraw"): "withdrawn",
    ("pending", "start_review"): "in_review",
    ("pending", "approve"): "approved",
    ("pending", "reject"): "rejected",
    ("pending", "request_info"): "needs_info",
    ("pending", "withdraw"): "withdrawn",
    ("in_review", "approve"): "approved",
    ("in_review", "reject"): "rejected",
    ("in_review", "request_info"): "needs_info",
    ("in_review", "release"): "pending",
    ("in_review", "withdraw"): "withdrawn",
    ("needs_info", "submit"): "pending",
    ("needs_info", "return"): "needs_info",
    ("needs_info", "withdraw"): "withdrawn",
}
APPLICATION_ACTIONS = sorted({a for _, a in APPLICATION_EXPECTED} | {"expire"})


@pytest.mark.parametrize(
    ("state", "action"), list(product(rules.APPLICATION_TRANSITIONS, APPLICATION_ACTIONS))
)
def test_every_application_transition_is_allowed_or_refused_as_the_table_says(
    state: str, action: str
) -> None:
    expected = APPLICATION_EXPECTED.get((state, action))
    if expected is None:
        with pytest.raises(TransitionRefused, match=f"cannot {action.replace('_', ' ')}"):
            rules.application_next(state, action)
    else:
        assert rules.application_next(state, action) == expected


@pytest.mark.parametrize("state", ["approved", "rejected", "withdrawn"])
def test_a_decided_application_is_final(state: str) -> None:
    with pytest.raises(TransitionRefused, match=r"allowed: none \(final\)"):
        rules.application_next(state, "submit")


CERTIFICATION_EXPECTED = {
    ("active", "expire"): "expired",
    ("active", "downgrade"): "downgraded",
    ("active", "revoke"): "revoked",
    ("active", "supersede"): "superseded",
}
CERTIFICATION_ACTIONS = sorted({a for _, a in CERTIFICATION_EXPECTED} | {"approve"})


@pytest.mark.parametrize(
    ("state", "action"), list(product(rules.CERTIFICATION_TRANSITIONS, CERTIFICATION_ACTIONS))
)
def test_every_certification_transition_is_allowed_or_refused_as_the_table_says(
    state: str, action: str
) -> None:
    expected = CERTIFICATION_EXPECTED.get((state, action))
    if expected is None:
        with pytest.raises(TransitionRefused, match=f"the certification is {state}: cannot"):
            rules.certification_next(state, action)
    else:
        assert rules.certification_next(state, action) == expected


def test_the_certification_states_are_the_models() -> None:
    from patron.certification.models import Certification

    assert set(rules.CERTIFICATION_TRANSITIONS) == set(Certification.Status.values)


CHANGE_EXPECTED = {
    ("pending", "approve"): "approved",
    ("pending", "reject"): "rejected",
    ("pending", "withdraw"): "withdrawn",
}
CHANGE_ACTIONS = sorted({a for _, a in CHANGE_EXPECTED} | {"submit"})


@pytest.mark.parametrize(
    ("state", "action"), list(product(rules.CHANGE_TRANSITIONS, CHANGE_ACTIONS))
)
def test_every_change_request_transition_is_allowed_or_refused_as_the_table_says(
    state: str, action: str
) -> None:
    expected = CHANGE_EXPECTED.get((state, action))
    if expected is None:
        with pytest.raises(TransitionRefused, match=f"the change request is {state}: cannot"):
            rules.change_next(state, action)
    else:
        assert rules.change_next(state, action) == expected


def test_the_states_are_the_models() -> None:
    from patron.certification.models import Application, ChangeRequest

    assert set(rules.APPLICATION_TRANSITIONS) == set(Application.Status.values)
    assert set(rules.CHANGE_TRANSITIONS) == set(ChangeRequest.Status.values)


def test_whoever_filed_does_not_decide() -> None:
    with pytest.raises(SeparationOfDuties, match="another reviewer"):
        rules.check_decider(7, filed_by=7, what="application")
    rules.check_decider(8, filed_by=7, what="application")
    rules.check_decider(8, filed_by=None, what="application")


# ---------------------------------------------------------------------- identity numbers


@pytest.mark.parametrize("number", VALID_IDS)
def test_published_resident_ids_pass(number: str) -> None:
    [check] = rules.field_checks({"id_number": number})
    assert check.passed and check.code == "id_number_valid"


@pytest.mark.parametrize(
    ("number", "code", "words"),
    [
        ("11010519491231002Y", "id_number_checksum", "should be X, not Y"),
        ("1101051949123100ZX", "id_number_format", "only digits"),
        ("110105194912310021", "id_number_checksum", "should be X, not 1"),
        ("11010519491231002", "id_number_format", "18 characters; it has 17"),
        ("110105194913310021", "id_number_birth_date", "(19491331) are not a real date"),
    ],
)
def test_a_wrong_resident_id_is_explained_precisely(number: str, code: str, words: str) -> None:
    [check] = rules.field_checks({"id_number": number})
    assert (check.code, check.passed, check.hard) == (code, False, True)
    assert words in _text(check)


@pytest.mark.parametrize("code", VALID_CODES)
def test_published_credit_codes_pass(code: str) -> None:
    [check] = rules.field_checks({"credit_code": code})
    assert check.passed and check.code == "credit_code_valid"


def test_a_mistyped_credit_code_names_the_right_check_character() -> None:
    [check] = rules.field_checks({"credit_code": "91110000802100433X"})
    assert check.code == "credit_code_checksum" and not check.passed
    assert "should be B, not X" in _text(check)


def test_a_credit_code_with_a_forbidden_letter_is_a_format_fault() -> None:
    [check] = rules.field_checks({"credit_code": "9111000080210043OB"})
    assert check.code in {"credit_code_format", "credit_code_checksum"}
    assert not check.passed


@pytest.mark.parametrize(
    ("phone", "passed"),
    [("13800138000", True), ("+86 138 0013 8000", True), ("12345", False), ("1380013800a", False)],
)
def test_phones_are_checked_with_phonenumbers(phone: str, passed: bool) -> None:
    [check] = rules.field_checks({"phone": phone})
    assert check.passed is passed


# ---------------------------------------------------------------------- whole applications

TODAY = date(2026, 11, 23)


def _individual(**changes: object) -> rules.ApplicationInput:
    base: dict[str, object] = {
        "kind": "individual",
        "real_name": "张三",
        "id_number": "11010519491231002X",
        "phone": "13800138000",
        "documents": frozenset({"id_front", "id_back"}),
    }
    base.update(changes)
    return rules.ApplicationInput(**base)  # type: ignore[arg-type]


def _failed(checks: list[rules.Check]) -> list[str]:
    return [c.code for c in checks if not c.passed]


def test_a_complete_individual_application_passes_every_hard_check() -> None:
    checks = rules.application_checks(
        _individual(birth_date=date(1949, 12, 31), id_region="北京"),
        required_documents=("id_front", "id_back"),
        today=TODAY,
    )
    assert _failed(checks) == []
    assert {c.code for c in checks} >= {
        "id_number_valid",
        "birth_date_matches_id",
        "region_matches_id",
        "phone_valid",
    }


def test_the_birth_date_and_region_entered_are_compared_with_the_id() -> None:
    checks = rules.application_checks(
        _individual(birth_date=date(1950, 1, 1), id_region="江西省"),
        required_documents=(),
        today=TODAY,
    )
    assert _failed(checks) == ["birth_date_differs_from_id", "region_differs_from_id"]
    texts = [_text(c) for c in checks if not c.passed]
    assert "(1950-01-01) differs from the one in the ID number (1949-12-31)" in texts[0]
    assert "(江西省) differs" in texts[1] and "(北京市)" in texts[1]


def test_missing_fields_and_documents_are_named() -> None:
    checks = rules.application_checks(
        _individual(real_name=" ", documents=frozenset({"id_front"})),
        required_documents=("id_front", "id_back"),
        today=TODAY,
    )
    failed = [c for c in checks if not c.passed]
    assert [(c.code, c.field) for c in failed] == [
        ("field_missing", "real_name"),
        ("document_missing", "id_back"),
    ]
    assert _text(failed[0]) == "The real name is missing."
    assert render(failed[1].reason, language="zh-hans").startswith("Upload the 身份证国徽面")


def test_a_business_application_checks_code_representative_and_permits() -> None:
    data = rules.ApplicationInput(
        kind="business",
        company_name="北京某某科技有限公司",
        credit_code="91110000802100433B",
        legal_rep_name="李四",
        legal_rep_id_number="360426199101010071",
        phone="13800138000",
        qualifications=(
            {"name": "食品经营许可证", "number": "JY11105000000001", "valid_until": "2026-01-01"},
            {"name": "", "number": "X"},
        ),
        documents=frozenset({"business_licence", "legal_rep_id"}),
    )
    checks = rules.application_checks(
        data, required_documents=("business_licence", "legal_rep_id"), today=TODAY
    )
    assert _failed(checks) == ["qualification_expired", "qualification_incomplete"]
    expired = next(c for c in checks if c.code == "qualification_expired")
    assert _text(expired) == "The 食品经营许可证 expired on 2026-01-01: upload the renewed one."


FOOD = {"en": "Food", "zh-hans": "食品"}


def _shop(**changes: Any) -> rules.ApplicationInput:
    """A complete business application of a food shop, its permit listed and uploaded."""
    values: dict[str, Any] = {
        "kind": "business",
        "company_name": "北京某某食品有限公司",
        "credit_code": "91110000802100433B",
        "legal_rep_name": "李四",
        "legal_rep_id_number": "360426199101010071",
        "phone": "13800138000",
        "qualifications": ({"name": "食品经营许可证", "number": "JY1", "valid_until": None},),
        "documents": frozenset({"business_licence", "legal_rep_id", "qualification"}),
        "trade": FOOD,
        "required_permits": ("食品经营许可证",),
    }
    values.update(changes)
    return rules.ApplicationInput(**values)


def _business_checks(data: rules.ApplicationInput) -> list[rules.Check]:
    return rules.application_checks(
        data, required_documents=("business_licence", "legal_rep_id"), today=TODAY
    )


def test_a_trade_that_needs_a_permit_passes_with_it_listed_and_uploaded() -> None:
    checks = _business_checks(_shop())
    assert _failed(checks) == []
    listed = next(c for c in checks if c.code == "permits_listed")
    assert (listed.hard, listed.field) == (True, "qualifications")
    assert _text(listed) == "Every permit a shop selling Food needs is listed: 食品经营许可证."


def test_a_permit_the_trade_needs_is_a_hard_check_naming_trade_and_permit() -> None:
    # given: a food shop that lists another permit, without its number for the right one
    data = _shop(
        qualifications=(
            {"name": "出版物经营许可证", "number": "X1"},
            {"name": "食品经营许可证", "number": ""},
        )
    )
    # when
    checks = _business_checks(data)
    # then: the incomplete row and the missing permit, each said once
    assert _failed(checks) == ["qualification_incomplete", "permit_missing"]
    missing = next(c for c in checks if c.code == "permit_missing")
    assert _text(missing) == (
        "A shop selling Food needs the 食品经营许可证: list it under qualifications with its "
        "number and validity, and upload a copy."
    )
    assert render(missing.reason, language="zh-hans").startswith("A shop selling 食品")


def test_the_permit_names_compare_without_spaces_and_bracket_widths() -> None:
    data = _shop(
        qualifications=({"name": " 医疗器械经营许可证（三类） ", "number": "J1"},),
        required_permits=("医疗器械经营许可证(三类)",),
    )
    assert _failed(_business_checks(data)) == []


def test_a_copy_of_the_permit_must_be_uploaded_unless_the_level_asks_for_it() -> None:
    data = _shop(documents=frozenset({"business_licence", "legal_rep_id"}))
    assert _failed(_business_checks(data)) == ["permit_copy_missing"]
    # a level that requires the qualification document names it through its own check
    checks = rules.application_checks(
        data, required_documents=("business_licence", "legal_rep_id", "qualification"), today=TODAY
    )
    assert [(c.code, c.field) for c in checks if not c.passed] == [
        ("document_missing", "qualification")
    ]


@pytest.mark.parametrize("trade", [None, {"en": "General merchandise", "zh-hans": "一般商品"}])
def test_no_trade_or_a_trade_without_permits_asks_for_none(trade: Any) -> None:
    data = _shop(trade=trade, required_permits=(), qualifications=(), documents=frozenset())
    checks = rules.permit_checks(data, required_documents=())
    assert checks == []


# ---------------------------------------------------------------------- level criteria

LEVEL = rules.LevelCriteria(
    code="trusted",
    applicant_kind="individual",
    min_credit_score=650,
    min_paid_orders=3,
    min_spend_12m=Decimal("500"),
    min_tenure_days=180,
    requires_no_restrictions=True,
)


def test_a_customer_meeting_every_criterion_has_nothing_unmet() -> None:
    facts = rules.CustomerFacts(
        credit_score=700, paid_orders=5, spend_12m=Decimal("800"), tenure_days=400
    )
    assert rules.unmet_criteria(LEVEL, facts) == []


def test_unmet_criteria_say_the_value_and_the_minimum() -> None:
    facts = rules.CustomerFacts(
        credit_score=600,
        paid_orders=1,
        spend_12m=Decimal("120.5"),
        tenure_days=30,
        restrictions=("coupon_ban",),
        is_blacklisted=True,
    )
    unmet = rules.unmet_criteria(LEVEL, facts)
    texts = [render(c["reason"], language="en") for c in unmet]
    assert texts == [
        "Credit score 600 (this level needs at least 650).",
        "1 paid orders (this level needs at least 3).",
        "Spent ¥120.50 in the last 12 months (this level needs ¥500.00).",
        "A customer for 30 days (this level needs 180).",
        "Risk restrictions in force: blacklist, coupon_ban.",
    ]
    assert all(not c["hard"] for c in unmet)


def test_no_credit_score_yet_does_not_meet_a_credit_criterion() -> None:
    [check] = rules.criteria_checks(
        rules.LevelCriteria(
            code="x",
            applicant_kind="individual",
            min_credit_score=600,
            requires_no_restrictions=False,
        ),
        rules.CustomerFacts(),
    )
    assert not check.passed
    assert _text(check) == "No credit score yet (this level needs at least 600)."


def test_duplicates_are_a_warning_for_the_reviewer() -> None:
    check = rules.duplicate_check(rules.CustomerFacts(duplicates=(4, 9)))
    assert (check.passed, check.hard) == (False, False)
    assert _text(check) == "Other customers have the same number: #4, #9. Check before approving."


# ---------------------------------------------------------------------- fallbacks

LEVELS = (
    rules.LevelLink("identity", "individual", 1),
    rules.LevelLink("trusted", "individual", 2, "identity"),
    rules.LevelLink("business", "business", 3),
)


def _with(code: str, **changes: object) -> list[rules.LevelLink]:
    return [replace(lv, **changes) if lv.code == code else lv for lv in LEVELS]  # type: ignore[arg-type]


def test_the_default_fallbacks_are_sound() -> None:
    for code in ("identity", "trusted", "business"):
        assert rules.fallback_faults(LEVELS, edited=code) == []
    assert rules.DEFAULT_FALLBACKS == {"trusted": "identity"}


@pytest.mark.parametrize(
    ("code", "changes", "faults"),
    [
        (
            "trusted",
            {"fallback": "trusted"},
            ["level trusted.fallback: a level cannot fall back to itself"],
        ),
        ("trusted", {"fallback": "gold"}, ["level trusted.fallback: there is no level 'gold'"]),
        (
            "trusted",
            {"fallback": "business"},
            [
                "level trusted.fallback: business is a level for business customers, trusted "
                "for individual customers",
                "level trusted.fallback: business must have a lower rank than trusted (2); "
                "it has 3",
            ],
        ),
        (
            "identity",
            {"fallback": "trusted"},
            [
                "level identity.fallback: the fallbacks would loop (identity → trusted → identity)",
                "level identity.fallback: trusted must have a lower rank than identity (1); "
                "it has 2",
            ],
        ),
        (
            "identity",
            {"rank": 2},
            [
                "level identity.rank: 2 must stay below the rank of trusted (2), which falls "
                "back to identity"
            ],
        ),
        ("identity", {"rank": 0}, []),
        ("trusted", {"fallback": None}, []),
    ],
)
def test_a_fallback_is_a_lower_level_of_the_same_kind_and_never_loops(
    code: str, changes: dict[str, object], faults: list[str]
) -> None:
    assert rules.fallback_faults(_with(code, **changes), edited=code) == faults


# ---------------------------------------------------------------------- re-verification

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expires_in", "reminded", "stage"),
    [
        (timedelta(days=-1), False, "expire"),
        (timedelta(0), True, "expire"),
        (timedelta(days=10), False, "remind"),
        (timedelta(days=10), True, "none"),
        (timedelta(days=30), False, "remind"),
        (timedelta(days=31), False, "none"),
    ],
)
def test_expiry_stage(expires_in: timedelta, reminded: bool, stage: str) -> None:
    assert (
        rules.expiry_stage(expires_at=NOW + expires_in, now=NOW, remind_days=30, reminded=reminded)
        == stage
    )


def test_changed_fields_keep_old_and_new_and_drop_unchanged() -> None:
    old = {"real_name": "张三", "id_number": "11010519491231002X", "phone": "13800138000"}
    diff = rules.changed_fields(
        old, {"phone": "13900139000", "real_name": "张三"}, kind="individual"
    )
    assert diff == {"phone": {"old": "13800138000", "new": "13900139000"}}
    with pytest.raises(KeyError):
        rules.changed_fields(old, {"company_name": "x"}, kind="individual")


TRUSTED = rules.LevelCriteria(
    code="trusted",
    applicant_kind="individual",
    min_credit_score=650,
    required_documents=("id_front", "id_back"),
    validity_days=365,
)
IDENTITY = rules.LevelCriteria(
    code="identity",
    applicant_kind="individual",
    requires_no_restrictions=False,
    required_documents=("id_front", "id_back"),
    validity_days=730,
)
DECIDED = NOW - timedelta(days=365)
CUSTOMER = rules.CustomerFacts(credit_score=600, paid_orders=1, tenure_days=500)


def _outcome(
    fallback: rules.LevelCriteria | None = IDENTITY,
    *,
    entered: rules.ApplicationInput | None = None,
    facts: rules.CustomerFacts = CUSTOMER,
    decided_at: datetime = DECIDED,
) -> rules.ExpiryOutcome:
    return rules.expiry_outcome(
        level=TRUSTED,
        fallback=fallback,
        entered=entered or _individual(),
        facts=facts,
        decided_at=decided_at,
        now=NOW,
    )


def test_at_expiry_a_customer_who_still_meets_the_fallback_is_downgraded() -> None:
    # when: trusted expired (the credit score fell) but identity still holds
    outcome = _outcome()
    # then: identity, until the original decision plus identity's own validity
    assert (outcome.action, outcome.fallback, outcome.failed) == ("downgrade", "identity", ())
    assert outcome.is_downgrade
    assert outcome.expires_at == DECIDED + timedelta(days=730)
    assert render(outcome.reason, language="en") == (
        "Level trusted expired; the customer still meets every criterion of its fallback "
        "identity, granted until 2027-11-23 (730 days from the decision on 2025-11-23)."
    )


def test_without_a_fallback_the_certification_ends() -> None:
    outcome = _outcome(None)
    assert (outcome.action, outcome.fallback, outcome.expires_at) == ("expire", "", None)
    assert render(outcome.reason, language="en") == (
        "Level trusted expired and names no lower level to fall back to."
    )


@pytest.mark.parametrize(
    "fallback",
    [replace(IDENTITY, is_active=False), replace(IDENTITY, applicant_kind="business")],
)
def test_a_fallback_no_longer_offered_is_not_granted(fallback: rules.LevelCriteria) -> None:
    outcome = _outcome(fallback)
    assert outcome.action == "expire"
    assert render(outcome.reason, language="en") == (
        "Level trusted expired; its fallback identity is not offered any more."
    )


@pytest.mark.parametrize(("validity", "action"), [(365, "expire"), (366, "downgrade")])
def test_the_fallback_validity_counts_from_the_original_decision(
    validity: int, action: str
) -> None:
    outcome = _outcome(replace(IDENTITY, validity_days=validity))
    assert outcome.action == action
    if action == "expire":
        assert render(outcome.reason, language="en") == (
            "Level trusted expired; its fallback identity ran out too, on 2026-11-23 "
            "(365 days from the decision on 2025-11-23)."
        )


def test_a_fallback_whose_criteria_no_longer_hold_is_not_granted() -> None:
    # given identity as staff made it: a clean record and a credit score of 620
    strict = replace(IDENTITY, requires_no_restrictions=True, min_credit_score=620)
    facts = replace(CUSTOMER, restrictions=("coupon_ban",))
    # when
    outcome = _outcome(strict, facts=facts)
    # then: the approval's criteria, with the values found
    assert outcome.action == "expire"
    assert [render(f["reason"], language="en") for f in outcome.failed] == [
        "Credit score 600 (this level needs at least 620).",
        "Risk restrictions in force: coupon_ban.",
    ]
    assert render(outcome.reason, language="en") == (
        "Level trusted expired; the customer no longer meets its fallback identity: "
        "2 check(s) failed."
    )


def test_a_fallback_runs_the_hard_checks_of_approval_on_the_certified_facts() -> None:
    # given a fallback that requires a document the original application did not have
    outcome = _outcome(entered=_individual(documents=frozenset({"id_front"})))
    # then
    assert outcome.action == "expire"
    assert [(f["code"], f["field"]) for f in outcome.failed] == [("document_missing", "id_back")]


def test_a_change_needs_the_document_that_proves_it() -> None:
    # a new company name and representative: the reissued licence, said once for both
    checks = rules.change_document_checks(["company_name", "legal_rep_name", "phone"], [])
    assert [(c.code, c.field) for c in checks] == [("document_missing", "business_licence")]
    assert _text(checks[0]) == (
        "Upload the new business licence: a change of the company name and legal "
        "representative's name needs it."
    )
    assert rules.change_document_checks(["company_name"], ["business_licence"]) == []
    assert rules.change_document_checks(["phone"], []) == []
    kinds = [
        c.field for c in rules.change_document_checks(["id_number", "legal_rep_id_number"], [])
    ]
    assert kinds == ["id_front", "legal_rep_id"]
