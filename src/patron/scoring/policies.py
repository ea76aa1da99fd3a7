"""Grade policies: staff edit them as data, preview who would move, then apply them.

A saved version never changes (the runs and grade history that used it name it); an edit is a
new version. Applying a version makes it the active one and re-grades every scored customer
from their latest scores at once — no model is refitted, so it takes seconds.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pyarrow as pa
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from patron.account.roles import CHANGE_GRADE_POLICY, VIEW_MODELS
from patron.account.services import require_permission
from patron.audit.services import AuditEntry, audit_record
from patron.errors import Conflict, NotFound, ValidationFailed
from patron.intelligence import grading
from patron.scoring.extract import latest_scores
from patron.scoring.models import CustomerScore, GradePolicy, ScoreRun
from patron.scoring.writeback import grade_history_apply, open_grades


def policy_active() -> GradePolicy:
    """The active policy; the built-in default becomes version 1 on first use."""
    active = GradePolicy.objects.filter(is_active=True).first()
    if active is not None:
        return active
    with transaction.atomic():
        if not GradePolicy.objects.exists():
            return GradePolicy.objects.create(
                version=1,
                rules=grading.DEFAULT_POLICY,
                note="Patron's default policy",
                is_active=True,
                created_by="patron",
                activated_at=timezone.now(),
            )
        latest = GradePolicy.objects.order_by("-version").first()
        assert latest is not None
        latest.is_active = True
        latest.activated_at = timezone.now()
        latest.save(update_fields=["is_active", "activated_at"])
        return latest


def policy_parse(rules: Any) -> grading.GradePolicy:
    """Validate ``rules``; the error names the field that is wrong."""
    if not isinstance(rules, dict):
        raise ValidationFailed("grade policy: expected a JSON object")
    try:
        policy = grading.GradePolicy.from_dict(rules)
    except (ValueError, TypeError, KeyError) as error:
        raise ValidationFailed(f"grade policy: {error}") from error
    unknown = sorted(set(policy.input_columns()) - set(grading_inputs()))
    if unknown:
        raise ValidationFailed(
            f"grade policy: unknown score column(s) {', '.join(unknown)}; "
            f"choose from {', '.join(grading_inputs())}"
        )
    return policy


def grading_inputs() -> tuple[str, ...]:
    """Columns of the latest scores a policy may weigh or test."""
    return (
        "clv_12m",
        "potential_value",
        "credit_score",
        "p_alive",
        "churn_probability",
        "expected_orders_90d",
        "expected_order_value",
        "purchase_days",
        "days_since_last_purchase",
        "rfm_r",
        "rfm_f",
        "rfm_m",
        "word_of_mouth",
        "certification_rank",
    )


def policy_save(*, user: Any, rules: Any, note: str = "") -> GradePolicy:
    """Save ``rules`` as a new, inactive version."""
    require_permission(user, CHANGE_GRADE_POLICY)
    policy = policy_parse(rules)
    with transaction.atomic():
        latest = GradePolicy.objects.aggregate(v=Max("version"))["v"] or 0
        saved = GradePolicy.objects.create(
            version=latest + 1,
            rules={**policy.to_dict(), "version": latest + 1},
            note=note[:200],
            created_by=user.get_username(),
        )
        audit_record(
            AuditEntry(
                action="grade_policy.save",
                entity_type="scoring.gradepolicy",
                entity_id=str(saved.pk),
                summary=f"grade policy v{saved.version} saved: {note[:120]}",
                changes={"rules": saved.rules},
            ),
            actor=user,
        )
    return saved


def _policy(version: int) -> GradePolicy:
    found = GradePolicy.objects.filter(version=version).first()
    if found is None:
        raise NotFound(f"grade policy v{version} does not exist")
    return found


def policy_preview(*, user: Any, rules: Any) -> dict[str, Any]:
    """How many scored customers would move between grades under ``rules``, against the
    grades they hold now. Nothing is written."""
    require_permission(user, VIEW_MODELS)
    policy = policy_parse(rules)
    scores = latest_scores()
    if scores.num_rows == 0:
        raise Conflict("no customer has been scored yet: run `patron score` first")
    current = {customer: grade for customer, (grade, _) in open_grades().items()}
    result = grading.grade(scores, policy, previous=current)
    return grading.moves(current, result)


@transaction.atomic
def policy_apply(*, user: Any, version: int, as_of: date | None = None) -> dict[str, Any]:
    """Make ``version`` the active policy and re-grade every scored customer now."""
    require_permission(user, CHANGE_GRADE_POLICY)
    chosen = _policy(version)
    policy = policy_parse(chosen.rules)
    scores = latest_scores()
    if scores.num_rows == 0:
        raise Conflict("no customer has been scored yet: run `patron score` first")
    day = as_of or timezone.localdate()
    GradePolicy.objects.filter(is_active=True).exclude(pk=chosen.pk).update(is_active=False)
    chosen.is_active = True
    chosen.activated_at = timezone.now()
    chosen.save(update_fields=["is_active", "activated_at"])
    current = {customer: grade for customer, (grade, _) in open_grades().items()}
    result = grading.grade(scores, policy, previous=current)
    run = ScoreRun.objects.create(
        as_of=day,
        started_at=timezone.now(),
        finished_at=timezone.now(),
        status=ScoreRun.Status.COMPLETED,
        customers=scores.num_rows,
        is_regrade=True,
        policy=chosen,
        parameters={"grade_policy": policy.to_dict(), "regrade_only": True},
    )
    grades = dict(zip(result.customer_id.tolist(), result.grade.tolist(), strict=True))
    reasons = dict(
        zip(result.customer_id.tolist(), result.reasons.to_pylist(), strict=True)
    )  # JSON text
    history = grade_history_apply(
        run=run, as_of=day, grades=grades, reasons=reasons, policy_version=chosen.version
    )
    _scores_regrade(result)
    moves = grading.moves(current, result)
    run.summary = {"moves": moves, "history": history}
    run.save(update_fields=["summary"])
    audit_record(
        AuditEntry(
            action="grade_policy.apply",
            entity_type="scoring.gradepolicy",
            entity_id=str(chosen.pk),
            summary=f"grade policy v{chosen.version} applied as of {day}: "
            f"{moves['up']} up, {moves['down']} down, {moves['unchanged']} unchanged",
            changes={"moves": moves},
        ),
        actor=user,
    )
    return moves


def _scores_regrade(result: grading.Grades) -> None:
    """Copy new grades onto the latest score rows (one UPDATE per grade, not per customer)."""
    ids = pa.array(result.customer_id)
    for grade in ("core", "potential", "ordinary"):
        chosen = [
            int(c)
            for c, g in zip(ids.to_pylist(), result.grade.tolist(), strict=True)
            if g == grade
        ]
        for start in range(0, len(chosen), 20_000):
            CustomerScore.objects.filter(customer_id__in=chosen[start : start + 20_000]).update(
                grade=grade
            )
