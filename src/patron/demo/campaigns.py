"""A finished campaign on the demo merchant, so that the campaign pages have an evaluation to
show: a coupon campaign to returning customers in Jiangsu, Zhejiang and Shanghai over
September of the demo's last year, evaluated on the demo's own orders.

The demo's orders are generated before any campaign exists and do not respond to campaigns,
so nothing is (or could honestly be) sent: the campaign is recorded as a *placebo* (A/A test,
``campaign_placebo``). Its members and holdout are drawn exactly as a launch draws them, and
its evaluation measures the real difference between the two groups' orders — which is chance
alone, so the uplift is expected to be near zero and not significant. That is what the page
shows, with the note saying so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from patron.account.models import User
from patron.account.services import user_create
from patron.marketing import selectors, services
from patron.marketing.models import Campaign, CouponTemplate, Segment

MARKETER = "demo-marketer"
SEGMENT = "江浙沪老客 Returning customers in Jiangsu, Zhejiang, Shanghai"
CAMPAIGN = "秋季回购券 Autumn repurchase coupon (placebo)"
RULE = {
    "all": [
        {"field": "province", "op": "in", "value": ["浙江省", "江苏省", "上海市"]},
        {"field": "orders_count", "op": "gte", "value": 1},
    ]
}


@dataclass(frozen=True)
class DemoCampaign:
    campaign_id: int
    treatment: int
    holdout: int
    treatment_rate: float | None
    holdout_rate: float | None
    uplift: float | None
    low: float | None
    high: float | None


def demo_campaign(*, as_of: datetime, seed: int) -> DemoCampaign:
    """The demo's finished campaign (made once; a second call returns the first)."""
    marketer = User.objects.filter(username=MARKETER).first() or user_create(
        username=MARKETER, role="marketer"
    )
    campaign = Campaign.objects.filter(name=CAMPAIGN).first()
    if campaign is None:
        segment = Segment.objects.filter(name=SEGMENT).first() or services.segment_save(
            user=marketer,
            name=SEGMENT,
            description="Customers with at least one paid order, in 浙江, 江苏 or 上海",
            rule=RULE,
        )
        template = CouponTemplate.objects.filter(name="回购券 满200减20").first()
        if template is None:
            template = services.coupon_template_create(
                user=marketer,
                data={
                    "name": "回购券 满200减20",
                    "kind": "amount_off",
                    "value": Decimal("20"),
                    "min_order_amount": Decimal("200"),
                    "valid_days": 30,
                },
            )
        end = as_of - timedelta(days=30)
        campaign = services.campaign_create(
            user=marketer,
            data={
                "name": CAMPAIGN,
                "description": "A September repurchase push, evaluated on the demo's orders",
                "goal_metric": "repurchase_rate",
                "target_value": Decimal("0.02"),
                "period_start": end - timedelta(days=30),
                "period_end": end,
                "segment_id": segment.pk,
                "holdout_share": Decimal("0.1"),
                "seed": seed,
                "offer_kind": "coupon",
                "coupon_template_id": template.pk,
                "channels": ["sms", "wechat"],
                "message_title": "秋季回购礼",
                "message_text": "感谢您的支持，送您一张满200减20的优惠券：{coupon_code}",
                "budget": Decimal("20000"),
            },
        )
        campaign = services.campaign_placebo(user=marketer, campaign_id=campaign.pk)
    evaluation = selectors.campaign_evaluation(user=marketer, campaign_id=campaign.pk)
    uplift = evaluation.uplift
    return DemoCampaign(
        campaign_id=campaign.pk,
        treatment=evaluation.treatment.members,
        holdout=evaluation.holdout.members,
        treatment_rate=evaluation.treatment.metric,
        holdout_rate=evaluation.holdout.metric,
        uplift=uplift.estimate if uplift else None,
        low=uplift.low if uplift else None,
        high=uplift.high if uplift else None,
    )
