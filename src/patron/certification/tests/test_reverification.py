"""Re-verification at expiry (R-H3): a level's fallback is kept when the customer still meets
it and its validity from the original decision has not run out; otherwise the certification
ends. Idempotent, safe beside a revocation, and the fallback is data staff edit and validate."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from django.utils import timezone

from patron.account.roles import Role
from patron.audit.models import AuditEvent
from patron.certification import selectors, services
from patron.certification.models import Certification, CertificationLevel
from patron.conftest import make_customer, make_order, make_user, race, require_postgresql
from patron.customer.models import Customer
from patron.errors import Conflict, ValidationFailed
from patron.outbox.models import Message
from patron.risk.models import Restriction
from patron.scoring.models import CustomerScore, ScoreRun

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + b"0" * 64
PERSON = services.ApplicationData(
    real_name="张三", id_number="11010519491231002X", phone="13800138000"
)


@pytest.fixture
def agent() -> Any:
    return make_user(Role.SERVICE_AGENT, username="agent-wang")


@pytest.fixture
def reviewer() -> Any:
    return make_user(Role.OPERATIONS_MANAGER, username="manager-li")


@pytest.fixture
def customer() -> Customer:
    """A customer of 400 days with a credit score of 700 and three paid orders: trusted."""
    now = timezone.now()
    customer = make_customer(name="张三", registered_at=now - timedelta(days=400))
    run = ScoreRun.objects.create(as_of=date(2026, 11, 1), status="completed", started_at=now)
    CustomerScore.objects.create(
        customer=customer, run=run, as_of=run.as_of, credit_score=700, grade="good"
    )
    for number in range(3):
        when = now - timedelta(days=300 - number)
        make_order(customer, external_id=f"T{number}", placed_at=when, paid_at=when, total="100.00")
    return customer


def _certified(agent: Any, reviewer: Any, customer: Customer, level: str) -> Certification:
    application = services.application_create(
        user=agent, customer_id=customer.pk, level_code=level, data=PERSON
    )
    for kind in ("id_front", "id_back"):
        services.document_add(
            user=agent,
            application_id=application.pk,
            kind=kind,
            filename=f"{kind}.png",
            content=PNG,
        )
    application = services.application_submit(user=agent, application_id=application.pk)
    return services.application_approve(user=reviewer, application_id=application.pk, reason="ok")


@pytest.fixture
def trusted(agent: Any, reviewer: Any, customer: Customer) -> Certification:
    return _certified(agent, reviewer, customer, "trusted")


def _restrict(customer: Customer, by: Any) -> None:
    Restriction.objects.create(
        customer=customer,
        kind="coupon_ban",
        reason="coupon abuse",
        starts_at=timezone.now(),
        applied_by=by,
    )


# ---------------------------------------------------------------------- the downgrade


def test_at_expiry_a_trusted_customer_keeps_identity_until_the_decision_plus_its_validity(
    trusted: Certification, customer: Customer
) -> None:
    # given: trusted falls back to identity (the default), valid 730 days from the decision
    decided = trusted.granted_at
    at = trusted.expires_at + timedelta(hours=2)
    # when
    result = services.certifications_reverify(now=at)
    # then: trusted is downgraded, identity replaces it with the same facts
    assert result == services.ExpiryResult(reminded=0, expired=0, downgraded=1)
    trusted.refresh_from_db()
    replacement = Certification.objects.get(customer=customer, status="active")
    assert (trusted.status, trusted.ended_at) == ("downgraded", at)
    assert trusted.end_reason.startswith("downgraded to identity: Level trusted expired; the ")
    assert (replacement.level.code, replacement.replaces_id, replacement.granted_by) == (
        "identity",
        trusted.pk,
        None,
    )
    assert replacement.application_id == trusted.application_id
    assert replacement.profile == trusted.profile
    assert (replacement.granted_at, replacement.expires_at) == (at, decided + timedelta(days=730))
    # the customer's file records it, with the reason
    summaries = list(
        AuditEvent.objects.filter(
            customer_id=customer.pk, entity_type="certification.certification"
        )
        .order_by("id")
        .values_list("entity_id", "summary")
    )
    until = timezone.localdate(replacement.expires_at).isoformat()
    assert summaries[-2:] == [
        (
            str(trusted.pk),
            f"certification trusted expired: downgraded to identity (certification "
            f"{replacement.pk}) until {until}",
        ),
        (
            str(replacement.pk),
            f"level identity granted until {until}: fallback of expired certification "
            f"{trusted.pk} (trusted)",
        ),
    ]
    granted = AuditEvent.objects.filter(entity_id=str(replacement.pk)).get()
    assert "still meets every criterion of its fallback identity" in granted.changes["reason"]
    assert (granted.actor_id, granted.actor_label) == (None, "re-verification job")
    # the customer is told, once, in their language, with the way back
    message = Message.objects.get(template="certification.downgraded")
    assert message.customer_id == customer.pk
    assert "信用认证 (Verified, good credit and history)" in message.body
    assert "实名认证 (Identity verified)" in message.body and until in message.body
    assert "/apply/" in message.body
    assert not Message.objects.filter(template="certification.expired").exists()
    # the level shows as identity, downgraded from trusted
    view = selectors.certification_of(customer.pk)
    assert view is not None and view.level_code == "identity"
    assert view.downgraded_from == selectors.LevelName(
        "trusted", "信用认证", "Verified, good credit and history"
    )


def test_the_job_can_run_twice(trusted: Certification, customer: Customer) -> None:
    at = trusted.expires_at
    assert services.certifications_reverify(now=at).downgraded == 1
    # when: run again, the same moment and the next day
    again = services.certifications_reverify(now=at)
    later = services.certifications_reverify(now=at + timedelta(days=1))
    # then nothing more happens
    assert again == later == services.ExpiryResult(0, 0, 0)
    assert Certification.objects.filter(customer=customer).count() == 2
    assert Message.objects.filter(template="certification.downgraded").count() == 1


def test_the_fallback_itself_is_reminded_and_then_ends(
    trusted: Certification, customer: Customer
) -> None:
    decided = trusted.granted_at
    services.certifications_reverify(now=trusted.expires_at)
    identity = Certification.objects.get(customer=customer, status="active")
    # when identity nears its own expiry, then reaches it (identity names no fallback)
    reminded = services.certifications_reverify(now=identity.expires_at - timedelta(days=10))
    ended = services.certifications_reverify(now=decided + timedelta(days=730))
    # then
    assert (reminded, ended) == (services.ExpiryResult(1, 0, 0), services.ExpiryResult(0, 1, 0))
    identity.refresh_from_db()
    assert identity.status == "expired"
    assert identity.end_reason == (
        "expired: not re-verified in time. Level identity expired and names no lower level to "
        "fall back to."
    )
    assert selectors.certification_of(customer.pk) is None
    assert Message.objects.filter(template="certification.expired").count() == 1


def test_a_customer_who_no_longer_meets_the_fallback_loses_the_certification(
    trusted: Certification, customer: Customer, reviewer: Any
) -> None:
    # given: staff made identity require a clean record, and the customer was restricted since
    services.level_update(
        user=reviewer, code="identity", changes={"requires_no_restrictions": True}
    )
    _restrict(customer, reviewer)
    # when
    result = services.certifications_reverify(now=trusted.expires_at)
    # then: it ends as before, saying why no fallback was granted
    assert result == services.ExpiryResult(0, 1, 0)
    trusted.refresh_from_db()
    assert trusted.status == "expired"
    assert trusted.end_reason == (
        "expired: not re-verified in time. Level trusted expired; the customer no longer meets "
        "its fallback identity: 1 check(s) failed. Risk restrictions in force: coupon_ban."
    )
    assert not Certification.objects.filter(customer=customer, status="active").exists()
    assert Message.objects.filter(template="certification.expired").count() == 1
    assert not Message.objects.filter(template="certification.downgraded").exists()


def test_a_fallback_whose_validity_from_the_decision_ran_out_is_not_granted(
    trusted: Certification, customer: Customer, reviewer: Any
) -> None:
    services.level_update(user=reviewer, code="identity", changes={"validity_days": 365})
    assert services.certifications_reverify(now=trusted.expires_at).expired == 1
    trusted.refresh_from_db()
    assert "its fallback identity ran out too" in trusted.end_reason
    assert Certification.objects.filter(customer=customer).count() == 1


def test_a_level_without_a_fallback_ends_as_before(
    agent: Any, reviewer: Any, customer: Customer
) -> None:
    identity = _certified(agent, reviewer, customer, "identity")
    assert services.certifications_reverify(now=identity.expires_at) == services.ExpiryResult(
        0, 1, 0
    )


# ---------------------------------------------------------------------- beside staff


def test_a_revocation_after_the_downgrade_names_the_certification_in_force(
    trusted: Certification, customer: Customer, reviewer: Any
) -> None:
    services.certifications_reverify(now=trusted.expires_at)
    replacement = Certification.objects.get(customer=customer, status="active")
    # when staff revoke the certification they had open
    with pytest.raises(Conflict) as refused:
        services.certification_revoke(user=reviewer, certification_id=trusted.pk, reason="fraud")
    # then they are told where the level is now, and nothing changed
    assert refused.value.message == (
        f"certification {trusted.pk} expired and was downgraded to certification "
        f"{replacement.pk} (identity): revoke that one if the customer must lose it"
    )
    assert Certification.objects.get(pk=replacement.pk).status == "active"
    services.certification_revoke(user=reviewer, certification_id=replacement.pk, reason="fraud")
    assert selectors.certification_of(customer.pk) is None


def test_a_certification_revoked_before_the_job_is_not_downgraded(
    trusted: Certification, customer: Customer, reviewer: Any
) -> None:
    services.certification_revoke(user=reviewer, certification_id=trusted.pk, reason="fraud")
    assert services.certifications_reverify(now=trusted.expires_at) == services.ExpiryResult(
        0, 0, 0
    )
    assert list(Certification.objects.values_list("status", flat=True)) == ["revoked"]


def test_a_change_request_waiting_moves_to_the_fallback_and_can_be_approved(
    trusted: Certification, customer: Customer, agent: Any, reviewer: Any
) -> None:
    request = services.change_request_file(
        user=agent, customer_id=customer.pk, changes={"phone": "13900139000"}, reason="new number"
    )
    services.certifications_reverify(now=trusted.expires_at)
    replacement = Certification.objects.get(customer=customer, status="active")
    request.refresh_from_db()
    assert (request.certification_id, request.status) == (replacement.pk, "pending")
    services.change_request_approve(user=reviewer, request_id=request.pk, reason="called them")
    replacement.refresh_from_db()
    assert services.certification_profile(replacement)["phone"] == "13900139000"


@pytest.mark.parametrize("ending", ["expire", "revoke", "supersede"])
def test_a_change_request_waiting_on_a_certification_that_ends_is_withdrawn(
    agent: Any, reviewer: Any, customer: Customer, ending: str
) -> None:
    identity = _certified(agent, reviewer, customer, "identity")
    request = services.change_request_file(
        user=agent, customer_id=customer.pk, changes={"phone": "13900139000"}, reason="new number"
    )
    # when
    if ending == "expire":
        services.certifications_reverify(now=identity.expires_at)
    elif ending == "revoke":
        services.certification_revoke(user=reviewer, certification_id=identity.pk, reason="x")
    else:
        _certified(agent, reviewer, customer, "identity")
    # then: nothing is left waiting on it, and the file says why
    request.refresh_from_db()
    verb = {"expire": "expired", "revoke": "was revoked", "supersede": "was superseded"}[ending]
    assert (request.status, request.decision_reason) == (
        "withdrawn",
        f"certification {identity.pk} {verb}",
    )
    assert selectors.process_stats(user=reviewer).pending_changes == 0


def test_a_new_approval_supersedes_the_fallback(
    trusted: Certification, customer: Customer, agent: Any, reviewer: Any
) -> None:
    services.certifications_reverify(now=trusted.expires_at)
    again = _certified(agent, reviewer, customer, "trusted")
    assert sorted(Certification.objects.values_list("level__code", "status")) == [
        ("identity", "superseded"),
        ("trusted", "active"),
        ("trusted", "downgraded"),
    ]
    assert again.replaces_id is None


@pytest.mark.django_db(transaction=True)
def test_the_job_and_a_revocation_at_once_leave_one_consistent_outcome(
    agent: Any, reviewer: Any, customer: Customer
) -> None:
    require_postgresql()
    trusted = _certified(agent, reviewer, customer, "trusted")
    # when the job and a reviewer act on the expired certification at the same moment
    job, revoked = race(
        lambda: services.certifications_reverify(now=trusted.expires_at),
        lambda: services.certification_revoke(
            user=reviewer, certification_id=trusted.pk, reason="fraud"
        ),
    )
    # then either the revocation came first (nothing to downgrade) or the job did (the
    # revocation is refused, naming the fallback in force): never both, never an error 500
    trusted.refresh_from_db()
    if isinstance(revoked, Certification):
        assert job == services.ExpiryResult(0, 0, 0)
        assert list(Certification.objects.values_list("status", flat=True)) == ["revoked"]
    else:
        assert isinstance(revoked, Conflict), revoked
        assert job == services.ExpiryResult(0, 0, 1)
        assert trusted.status == "downgraded"
        assert Certification.objects.filter(status="active").count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_job_and_a_new_approval_at_once_leave_the_new_level_in_force(
    agent: Any, reviewer: Any, customer: Customer
) -> None:
    require_postgresql()
    trusted = _certified(agent, reviewer, customer, "trusted")
    application = services.application_create(
        user=agent, customer_id=customer.pk, level_code="identity", data=PERSON
    )
    for kind in ("id_front", "id_back"):
        services.document_add(
            user=agent,
            application_id=application.pk,
            kind=kind,
            filename=f"{kind}.png",
            content=PNG,
        )
    services.application_submit(user=agent, application_id=application.pk)
    # when
    job, approved = race(
        lambda: services.certifications_reverify(now=trusted.expires_at),
        lambda: services.application_approve(
            user=reviewer, application_id=application.pk, reason="renewed"
        ),
    )
    # then: whoever came second saw the other's work; one certification is in force
    assert isinstance(approved, Certification), approved
    assert isinstance(job, services.ExpiryResult), job
    assert list(Certification.objects.filter(status="active").values_list("pk", flat=True)) == [
        approved.pk
    ]


@pytest.mark.django_db(transaction=True)
def test_two_jobs_at_once_downgrade_once(agent: Any, reviewer: Any, customer: Customer) -> None:
    require_postgresql()
    trusted = _certified(agent, reviewer, customer, "trusted")
    results = race(*[lambda: services.certifications_reverify(now=trusted.expires_at)] * 2)
    assert sorted(r.downgraded for r in results) == [0, 1], results
    assert Certification.objects.filter(customer=customer).count() == 2
    assert Message.objects.filter(template="certification.downgraded").count() == 1


# ---------------------------------------------------------------------- the fallback as data


def test_the_default_levels_come_with_their_fallback() -> None:
    fallbacks = dict(CertificationLevel.objects.values_list("code", "fallback__code"))
    assert fallbacks == {"identity": None, "trusted": "identity", "business": None}


def test_a_fallback_is_edited_and_audited_by_its_code(reviewer: Any) -> None:
    # when
    services.level_update(user=reviewer, code="trusted", changes={"fallback": None})
    services.level_update(user=reviewer, code="trusted", changes={"fallback": "identity"})
    # then
    assert CertificationLevel.objects.get(code="trusted").fallback.code == "identity"  # type: ignore[union-attr]
    changes = list(
        AuditEvent.objects.filter(entity_type="certification.level")
        .order_by("id")
        .values_list("changes", flat=True)
    )
    assert changes == [
        {"old": {"fallback": "identity"}, "new": {"fallback": None}},
        {"old": {"fallback": None}, "new": {"fallback": "identity"}},
    ]


@pytest.mark.parametrize(
    ("code", "changes", "message"),
    [
        (
            "trusted",
            {"fallback": "business"},
            "level trusted.fallback: business is a level for business customers, trusted for "
            "individual customers; level trusted.fallback: business must have a lower rank "
            "than trusted (2); it has 3",
        ),
        (
            "identity",
            {"fallback": "trusted"},
            "level identity.fallback: the fallbacks would loop (identity → trusted → identity); "
            "level identity.fallback: trusted must have a lower rank than identity (1); it has 2",
        ),
        (
            "identity",
            {"rank": 5},
            "level identity.rank: 5 must stay below the rank of trusted (2), which falls back "
            "to identity",
        ),
        ("trusted", {"fallback": "gold"}, "level trusted.fallback: there is no level 'gold'"),
    ],
)
def test_a_fallback_that_is_not_a_lower_level_of_the_same_kind_is_refused(
    reviewer: Any, code: str, changes: dict[str, Any], message: str
) -> None:
    before = list(CertificationLevel.objects.values_list("code", "rank", "fallback_id"))
    with pytest.raises(ValidationFailed) as refused:
        services.level_update(user=reviewer, code=code, changes=changes)
    assert refused.value.message == message
    assert list(CertificationLevel.objects.values_list("code", "rank", "fallback_id")) == before
    assert not AuditEvent.objects.filter(entity_type="certification.level").exists()


def test_seeding_again_keeps_what_staff_made_of_the_fallback() -> None:
    CertificationLevel.objects.filter(code="trusted").update(fallback=None)
    assert services.levels_seed() == 0
    assert CertificationLevel.objects.get(code="trusted").fallback_id is None
