"""A win-back programme on the demo merchant, replayed on the demo's own past, so that its page
has an evaluation to show.

The programme enrols customers whose churn probability is 0.6 or more, gives high-value ones
(CLV over ¥1,500 in 12 months, or grade core) a better coupon than the others, keeps a 20 %
holdout and counts a paid order within 60 days as a reactivation. It is run once, as of 90
days before the end of the demo's history, on churn probabilities computed **as of that day**
(the intelligence pipeline run with the data before it, nothing written back), so that nothing
from after the enrolment leaks into who enters; the 60-day windows have closed by the end of
the history.

The demo's orders were generated before any programme existed and do not respond to offers,
so nothing is (or could honestly be) sent: the run is a *placebo* (``placebo=True``: groups
drawn and offers chosen exactly as a real run does, every treated entry ``not_sent``). Its
evaluation measures the real reactivation of the demo's at-risk customers in both groups —
the difference is chance alone, so the uplift should be near zero and not significant. The
programme is paused afterwards: running it for real is the user's decision (the page's
"Resume" and "Run now").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from patron.account.models import User
from patron.account.services import user_create
from patron.marketing import selectors, services
from patron.marketing.models import CouponTemplate, WinbackProgramme

MARKETER = "demo-marketer"
PROGRAMME = "流失预警挽回 Churn win-back (placebo replay)"
REPLAY_DAYS = 90
TEMPLATES = {
    "standard": ("挽回券 满150减30", Decimal("30"), Decimal("150")),
    "high_value": ("老客挽回券 满300减80", Decimal("80"), Decimal("300")),
}


@dataclass(frozen=True)
class DemoWinback:
    programme_id: int
    enrolled_at: datetime
    at_risk: int
    treatment: int
    holdout: int
    high_value: int
    treatment_rate: float | None
    holdout_rate: float | None
    uplift: float | None
    low: float | None
    high: float | None


def _template(user: Any, tier: str) -> CouponTemplate:
    name, value, threshold = TEMPLATES[tier]
    found = CouponTemplate.objects.filter(name=name).first()
    if found is not None:
        return found
    return services.coupon_template_create(
        user=user,
        data={
            "name": name,
            "kind": "amount_off",
            "value": value,
            "min_order_amount": threshold,
            "valid_days": 30,
        },
    )


def _risks_as_of(cutoff: datetime) -> dict[int, services.CustomerRisk]:
    """Every customer's churn probability, CLV and grade as the pipeline computes them with
    the data before ``cutoff`` (the scores a nightly run would have written then)."""
    from patron.intelligence.pipeline import run
    from patron.scoring.policies import policy_active, policy_parse
    from patron.scoring.services import pipeline_config
    from patron.scoring.sources import load_sources

    result = run(
        load_sources(),
        cutoff,
        policy=policy_parse(policy_active().rules),
        config=pipeline_config(),
    )
    scores = result.scores
    columns = [
        scores.column(name).to_pylist()
        for name in ("customer_id", "churn_probability", "clv_12m", "grade")
    ]
    day = cutoff.date()
    return {
        int(customer_id): services.CustomerRisk(
            churn_probability=None if churn is None else float(churn),
            clv_12m=None if clv is None else Decimal(str(round(float(clv), 2))),
            grade=grade or "",
            score_as_of=day,
        )
        for customer_id, churn, clv, grade in zip(*columns, strict=True)
    }


def demo_winback(*, as_of: datetime, seed: int) -> DemoWinback:
    """The demo's win-back programme and its placebo replay (made once; a second call returns
    the first, finishing what a failed first call left). ``as_of``: the end of the demo's
    history."""
    marketer = User.objects.filter(username=MARKETER).first() or user_create(
        username=MARKETER, role="marketer"
    )
    programme = WinbackProgramme.objects.filter(name=PROGRAMME).first()
    enrolled_at = as_of - timedelta(days=REPLAY_DAYS)
    if programme is None:
        programme = services.winback_programme_create(
            user=marketer,
            data={
                "name": PROGRAMME,
                "description": "Replayed on the demo's past: nothing was sent (a placebo)",
                "churn_threshold": Decimal("0.6"),
                "holdout_share": Decimal("0.2"),
                "seed": seed,
                "cool_down_days": 90,
                "window_days": 60,
                "offer_kind": "coupon",
                "coupon_template_id": _template(marketer, "standard").pk,
                "high_value_offer_kind": "coupon",
                "high_value_coupon_template_id": _template(marketer, "high_value").pk,
                "high_value_min_clv": Decimal("1500"),
                "high_value_grades": ["core"],
                "channels": ["sms", "wechat"],
                "message_title": "好久不见，给您留了一份礼物",
                "message_text": "您常买的{top_category}上新了，送您一张优惠券：{coupon_code}",
            },
        )
    if not programme.runs.exists():
        services.winback_programme_run(
            programme_id=programme.pk,
            as_of=enrolled_at,
            user=marketer,
            risks=_risks_as_of(enrolled_at),
            placebo=True,
        )
    if programme.is_active:
        services.winback_programme_update(
            user=marketer, programme_id=programme.pk, changes={"is_active": False}
        )
    run = programme.runs.order_by("as_of").first()
    evaluation = selectors.winback_evaluation(user=marketer, programme_id=programme.pk)
    difference = evaluation.uplift
    return DemoWinback(
        programme_id=programme.pk,
        enrolled_at=run.as_of if run is not None else enrolled_at,
        at_risk=run.at_risk if run is not None else 0,
        treatment=evaluation.treatment.entries,
        holdout=evaluation.holdout.entries,
        high_value=sum(t.treatment + t.holdout for t in evaluation.tiers if t.tier == "high_value"),
        treatment_rate=evaluation.treatment.rate,
        holdout_rate=evaluation.holdout.rate,
        uplift=difference.estimate if difference else None,
        low=difference.low if difference else None,
        high=difference.high if difference else None,
    )
