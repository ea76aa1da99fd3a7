"""Reading scores: the small public face other apps use (customer page, API).

Reasons are stored as templates with parameters (``patron.intelligence.explain``) and rendered
here in the request's language through Django's translation catalogue.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from django.utils import translation

from patron.intelligence.explain import render
from patron.intelligence.models.clusters import cluster_name_render
from patron.scoring.models import CustomerScore, Grade, GradeHistory, ScoreRun
from patron.scoring.rules import segment_label
from patron.scoring.writeback import reasons_of, snapshot_history

#: The order in which a customer's reasons are shown.
REASON_ORDER = ("grade", "credit", "churn", "p_alive", "clv_12m", "value", "rfm", "cluster")


@dataclass(frozen=True)
class GradePeriod:
    grade: str
    grade_label: str
    valid_from: date
    valid_to: date | None
    policy_version: int
    reasons: list[str]


@dataclass(frozen=True)
class ScoreView:
    as_of: date
    grade: str
    grade_label: str
    grade_composite: float | None
    credit_score: int | None
    credit_model: str
    churn_probability: float | None
    churn_model: str
    p_alive: float | None
    expected_orders_90d: float | None
    expected_order_value: Decimal | None
    clv_12m: Decimal | None
    potential_value: Decimal | None
    word_of_mouth: float | None
    currency: str
    purchase_days: int
    days_since_last_purchase: int | None
    rfm_r: int | None
    rfm_f: int | None
    rfm_m: int | None
    rfm_segment: str
    rfm_segment_label: str
    cluster: int | None
    cluster_name: str
    reasons: dict[str, list[str]]
    #: False when the run's reasons folder is no longer in the lake (``reasons`` is then empty)
    reasons_available: bool = True


def reasons_render(stored: dict[str, Any]) -> dict[str, list[str]]:
    """Stored reasons in the active language, in the order staff read them."""
    language = translation.get_language() or "en"
    names = [n for n in REASON_ORDER if n in stored] + sorted(set(stored) - set(REASON_ORDER))
    return {
        name: [
            render(item, language=language, translate=translation.gettext) for item in stored[name]
        ]
        for name in names
    }


def stored_reasons(row: CustomerScore) -> dict[str, Any] | None:
    """The score row's reasons as stored (score name -> reasons as data), from its run's
    reasons folder in the lake; None when that folder is no longer kept."""
    name = ScoreRun.objects.filter(pk=row.run_id).values_list("reasons_folder", flat=True).first()
    return reasons_of(name or "", row.customer_id)


def score_of_customer(*, customer_id: int) -> ScoreView | None:
    """The customer's latest scores, or None before the first scoring run.
    The caller checks that the user may see the customer."""
    row = CustomerScore.objects.filter(customer_id=customer_id).first()
    if row is None:
        return None
    stored = stored_reasons(row)
    return ScoreView(
        as_of=row.as_of,
        grade=row.grade,
        grade_label=Grade(row.grade).label if row.grade else "",
        grade_composite=row.grade_composite,
        credit_score=row.credit_score,
        credit_model=row.credit_model,
        churn_probability=row.churn_probability,
        churn_model=row.churn_model,
        p_alive=row.p_alive,
        expected_orders_90d=row.expected_orders_90d,
        expected_order_value=row.expected_order_value,
        clv_12m=row.clv_12m,
        potential_value=row.potential_value,
        word_of_mouth=row.word_of_mouth,
        currency=row.currency,
        purchase_days=row.purchase_days,
        days_since_last_purchase=row.days_since_last_purchase,
        rfm_r=row.rfm_r,
        rfm_f=row.rfm_f,
        rfm_m=row.rfm_m,
        rfm_segment=row.rfm_segment,
        rfm_segment_label=segment_label(row.rfm_segment) if row.rfm_segment else "",
        cluster=row.cluster,
        cluster_name=cluster_name_render(row.cluster_name, translation.get_language() or "en"),
        reasons=reasons_render(stored or {}),
        reasons_available=stored is not None,
    )


def grade_history_of_customer(*, customer_id: int) -> list[GradePeriod]:
    """Every grade the customer has held, newest first."""
    language = translation.get_language() or "en"
    rows = GradeHistory.objects.filter(customer_id=customer_id).order_by("-valid_from")
    return [
        GradePeriod(
            grade=row.grade,
            grade_label=Grade(row.grade).label,
            valid_from=row.valid_from,
            valid_to=row.valid_to,
            policy_version=row.policy_version,
            reasons=[
                render(item, language=language, translate=translation.gettext)
                for item in row.reasons
            ],
        )
        for row in rows
    ]


def score_history_of_customer(*, customer_id: int) -> list[dict[str, Any]]:
    """The customer's scores in every run's lake snapshot, oldest first (for the trend chart)."""
    return snapshot_history(customer_id)
