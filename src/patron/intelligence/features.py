"""Features per customer as of a cut-off: one row per customer, numbers only.

Every feature sees only what had happened before the cut-off, judged by the row's own event
time (an order by ``placed_at``, a payment by ``at``, a return by ``requested_at``, a review by
``created_at``, a ticket by ``opened_at``, an event by ``occurred_at``). A state reached later
is read from its timestamp, not from today's status: an order cancelled after the cut-off was,
at the cut-off, a live purchase (see ``_order_states``).

Everything is an Ibis expression, run on DuckDB unless another backend is given, so the same
code can run on Spark over the lake. One small function per feature family builds a table keyed
by ``customer_id``; ``customer_features`` joins them to the customers and fills the gaps.

``FEATURES`` describes every output column (labels in English and Chinese, unit, formatting):
reasons shown to staff are built from it ("return rate 38 % (shop median 9 %)").

Known limits, because the sources carry no timestamp for them: a payment's status
(chargeback, default, refund), a return's refund amount and a review's helpful votes are as
they are now, not as they were at the cut-off.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.compute as pc

from patron.intelligence import text
from patron.intelligence.sources import Sources

DAY_SECONDS = 86_400
#: Order statuses that mean "bought" when an order carries no payment/shipping timestamps.
PURCHASE_STATUSES = ("paid", "shipped", "delivered", "completed", "returned")
#: ``company_size`` ordinal: 0 unknown or an individual.
COMPANY_SIZES: dict[str, int] = {"micro": 1, "small": 2, "medium": 3, "large": 4}
#: ``registration_channel`` code (a category, not an order: models must treat it as one).
#: 0 is unknown or any other channel.
REGISTRATION_CHANNELS: dict[str, int] = {
    "app": 1,
    "wechat_mini_program": 2,
    "tmall": 3,
    "jd": 4,
    "douyin": 5,
    "official_site": 6,
    "offline_store": 7,
}
#: Other spellings of the same channels, after lower-casing and spaces/hyphens → underscores.
_CHANNEL_ALIASES: dict[str, str] = {
    "wechat": "wechat_mini_program",
    "微信小程序": "wechat_mini_program",
    "小程序": "wechat_mini_program",
    "天猫": "tmall",
    "京东": "jd",
    "抖音": "douyin",
    "官网": "official_site",
    "website": "official_site",
    "门店": "offline_store",
    "线下门店": "offline_store",
    "store": "offline_store",
}

Unit = Literal["count", "days", "money", "rate", "score", "flag", "ordinal"]


@dataclass(frozen=True)
class FeatureInfo:
    """One feature column: what it is called, what it means and how to show a value."""

    name: str
    label_en: str
    label_zh: str
    unit: Unit
    description: str
    dtype: Literal["int64", "float64"] = "float64"
    levels: tuple[str, ...] = ()  # names of the codes 0, 1, 2 … of an ordinal or a category

    def format(self, value: float | None, *, language: str = "en") -> str:
        """The value as staff read it: "38 %", "12 days", "1,234.50"; "—" when missing."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "—"
        zh = language.startswith("zh")
        match self.unit:
            case "rate":
                percent = 100 * value
                if percent != 0 and abs(percent) < 0.5:
                    return f"{percent:.1f} %"
                return f"{_half_up(percent)} %"
            case "days":
                days = _half_up(value)
                if zh:
                    return f"{days} 天"
                return f"{days} day" if days == 1 else f"{days} days"
            case "money":
                return f"{value:,.2f}"
            case "score":
                return f"{value:.2f}"
            case "flag":
                if zh:
                    return "是" if value else "否"
                return "yes" if value else "no"
            case "ordinal":
                code = int(value)
                return self.levels[code] if 0 <= code < len(self.levels) else str(code)
            case _:
                return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def _half_up(value: float) -> int:
    return math.floor(value + 0.5)


def _feature(
    name: str,
    label_en: str,
    label_zh: str,
    unit: Unit,
    description: str,
    *,
    levels: tuple[str, ...] = (),
) -> FeatureInfo:
    integer = unit in ("count", "flag", "ordinal") and not name.startswith("mean_")
    return FeatureInfo(
        name, label_en, label_zh, unit, description, "int64" if integer else "float64", levels
    )


_FEATURE_LIST = [
    # purchases
    _feature(
        "orders",
        "orders",
        "订单数",
        "count",
        "Purchases placed before the cut-off: orders paid, shipped or delivered by then and not "
        "cancelled by then.",
    ),
    _feature(
        "purchase_days", "purchase days", "购买天数", "count", "Distinct UTC days with a purchase."
    ),
    _feature("spend", "spend", "消费金额", "money", "Sum of the purchases' total amounts."),
    _feature(
        "aov", "average order value", "客单价", "money", "spend / orders; null without orders."
    ),
    _feature(
        "recency_days",
        "days since last purchase",
        "距上次购买天数",
        "days",
        "Days from the last purchase to the cut-off; null without purchases.",
    ),
    _feature(
        "tenure_days",
        "customer for",
        "客户时长",
        "days",
        "Days from registration or the first order, whichever came first, to the cut-off; null "
        "if neither happened before it.",
    ),
    _feature(
        "orders_30d",
        "orders in 30 days",
        "近30天订单",
        "count",
        "Purchases in the 30 days before the cut-off.",
    ),
    _feature(
        "orders_90d",
        "orders in 90 days",
        "近90天订单",
        "count",
        "Purchases in the 90 days before the cut-off.",
    ),
    _feature(
        "orders_180d",
        "orders in 180 days",
        "近180天订单",
        "count",
        "Purchases in the 180 days before the cut-off.",
    ),
    _feature(
        "orders_365d",
        "orders in 365 days",
        "近365天订单",
        "count",
        "Purchases in the 365 days before the cut-off.",
    ),
    _feature(
        "spend_90d",
        "spend in 90 days",
        "近90天消费",
        "money",
        "Spend in the 90 days before the cut-off.",
    ),
    _feature(
        "spend_365d",
        "spend in 365 days",
        "近365天消费",
        "money",
        "Spend in the 365 days before the cut-off.",
    ),
    _feature(
        "days_between_orders",
        "days between orders",
        "平均购买间隔",
        "days",
        "Mean gap between consecutive purchases, (last − first) / (orders − 1); null below 2 orders.",
    ),
    # cancellations
    _feature(
        "orders_placed",
        "orders placed",
        "下单数",
        "count",
        "Every order placed before the cut-off, whatever became of it.",
    ),
    _feature(
        "cancel_rate",
        "cancel rate",
        "取消率",
        "rate",
        "Orders cancelled before the cut-off / orders placed; null without orders placed. An "
        "order marked cancelled without a cancellation time counts as cancelled when placed.",
    ),
    _feature(
        "cancels_after_shipment",
        "cancellations after shipment",
        "发货后取消",
        "count",
        "Orders cancelled after they had shipped, both before the cut-off (refused parcels).",
    ),
    # returns
    _feature(
        "delivered_orders",
        "delivered orders",
        "已签收订单",
        "count",
        "Orders delivered before the cut-off.",
    ),
    _feature(
        "returns",
        "returns",
        "退货次数",
        "count",
        "Return requests (kind return) made before the cut-off.",
    ),
    _feature(
        "return_rate",
        "return rate",
        "退货率",
        "rate",
        "Orders with a return request before the cut-off / delivered orders; null without "
        "deliveries.",
    ),
    _feature(
        "exchange_rate",
        "exchange rate",
        "换货率",
        "rate",
        "Orders with an exchange request / delivered orders; null without deliveries.",
    ),
    _feature(
        "returns_180d",
        "returns in 180 days",
        "近180天退货",
        "count",
        "Return requests in the 180 days before the cut-off.",
    ),
    _feature(
        "quick_return_rate",
        "returns within 48 h",
        "48小时内退货率",
        "rate",
        "Orders returned within 48 hours of their delivery / delivered orders; null without "
        "deliveries.",
    ),
    _feature(
        "refund_share",
        "refunded share of spend",
        "退款占比",
        "rate",
        "Refund amounts of after-sales requests made before the cut-off / spend; null without "
        "spend.",
    ),
    # payments
    _feature("failed_payments", "failed payments", "支付失败", "count", "Payments that failed."),
    _feature("chargebacks", "chargebacks", "拒付", "count", "Payments charged back."),
    _feature(
        "pay_later_defaults",
        "pay-later defaults",
        "先用后付逾期",
        "count",
        "Payments defaulted (pay later not repaid).",
    ),
    _feature(
        "cod_refusals",
        "cash-on-delivery refusals",
        "货到付款拒收",
        "count",
        "Payments refused on delivery (cash on delivery).",
    ),
    _feature(
        "pay_later_share",
        "pay-later share",
        "先用后付占比",
        "rate",
        "Pay-later payments / payments; null without payments.",
    ),
    _feature(
        "cod_share",
        "cash-on-delivery share",
        "货到付款占比",
        "rate",
        "Cash-on-delivery payments / payments; null without payments.",
    ),
    # reviews
    _feature("reviews", "reviews", "评价数", "count", "Reviews written before the cut-off."),
    _feature(
        "mean_rating",
        "mean rating",
        "平均评分",
        "score",
        "Mean star rating, 1–5; null without reviews.",
    ),
    _feature(
        "low_rating_share",
        "low ratings",
        "差评占比",
        "rate",
        "Reviews with 1 or 2 stars / reviews; null without reviews.",
    ),
    _feature(
        "mean_sentiment",
        "review sentiment",
        "评价情感",
        "score",
        "Mean sentiment of the review texts, −1…1 (patron.intelligence.text); null without reviews.",
    ),
    _feature(
        "mean_review_length",
        "review length",
        "评价长度",
        "count",
        "Mean length of the review texts in characters; null without reviews.",
    ),
    _feature(
        "helpful_votes", "helpful votes", "有用票数", "count", "Helpful votes the reviews received."
    ),
    _feature(
        "rating_deviation",
        "rating deviation",
        "评分偏离",
        "score",
        "Mean |rating − the product's mean rating| over all reviewers before the cut-off; high "
        "for customers who rate unlike everyone else. Null without reviews of known products.",
    ),
    # behaviour events (null when no events were given at all)
    _feature(
        "views_30d",
        "views in 30 days",
        "近30天浏览",
        "count",
        "Browse events in the 30 days before the cut-off.",
    ),
    _feature(
        "searches_30d",
        "searches in 30 days",
        "近30天搜索",
        "count",
        "Searches in the 30 days before the cut-off.",
    ),
    _feature(
        "favourites_30d",
        "favourites in 30 days",
        "近30天收藏",
        "count",
        "Products favourited in the 30 days before the cut-off.",
    ),
    _feature(
        "carts_30d",
        "add-to-carts in 30 days",
        "近30天加购",
        "count",
        "Add-to-cart events in the 30 days before the cut-off.",
    ),
    _feature(
        "events_90d",
        "events in 90 days",
        "近90天行为",
        "count",
        "All events in the 90 days before the cut-off.",
    ),
    _feature(
        "days_since_last_event",
        "days since last visit",
        "距上次访问天数",
        "days",
        "Days from the last event to the cut-off; null without events.",
    ),
    _feature(
        "cart_to_order_90d",
        "cart to order",
        "加购转化率",
        "rate",
        "Purchase events / add-to-cart events in the 90 days before the cut-off (items carted "
        "that were bought); null without add-to-carts.",
    ),
    # service
    _feature(
        "tickets",
        "service tickets",
        "工单数",
        "count",
        "Service tickets opened before the cut-off.",
    ),
    _feature("complaints", "complaints", "投诉数", "count", "Tickets that are complaints."),
    _feature(
        "tickets_per_order",
        "tickets per order",
        "每单工单数",
        "score",
        "tickets / orders; null without orders.",
    ),
    _feature(
        "mean_csat",
        "satisfaction (CSAT)",
        "满意度",
        "score",
        "Mean CSAT 1–5 of tickets resolved before the cut-off; null if none was rated.",
    ),
    _feature(
        "tickets_90d",
        "tickets in 90 days",
        "近90天工单",
        "count",
        "Tickets opened in the 90 days before the cut-off.",
    ),
    # promotions
    _feature(
        "coupon_share",
        "orders with a coupon",
        "用券订单占比",
        "rate",
        "Purchases with a coupon code / purchases; null without purchases.",
    ),
    _feature(
        "discount_share",
        "discount share",
        "折扣占比",
        "rate",
        "Discounts / (spend + discounts) over the purchases; null without either.",
    ),
    # attributes (as they are now: the customer file keeps no history of them)
    _feature(
        "is_business",
        "business customer",
        "企业客户",
        "flag",
        "1 for a business, 0 for an individual.",
    ),
    _feature(
        "company_size",
        "company size",
        "企业规模",
        "ordinal",
        "0 unknown or individual, 1 micro, 2 small, 3 medium, 4 large.",
        levels=("unknown", "micro", "small", "medium", "large"),
    ),
    _feature(
        "registration_channel",
        "registration channel",
        "注册渠道",
        "ordinal",
        "A category code, not an order: "
        + ", ".join(f"{c} {n}" for n, c in REGISTRATION_CHANNELS.items())
        + ", 0 other or unknown.",
        levels=("other", *REGISTRATION_CHANNELS),
    ),
]
FEATURES: dict[str, FeatureInfo] = {f.name: f for f in _FEATURE_LIST}

_MONEY_TOTALS = frozenset({"spend", "spend_90d", "spend_365d"})
EVENT_FEATURES = (
    "views_30d",
    "searches_30d",
    "favourites_30d",
    "carts_30d",
    "events_90d",
    "days_since_last_event",
    "cart_to_order_90d",
)


@dataclass(frozen=True)
class _Cutoff:
    """The cut-off instant (UTC) and the comparisons every family makes against it.

    Arrow tables reach Ibis with naive UTC timestamps (``memtable``): comparing and
    subtracting them needs no time-zone conversion per row, which on DuckDB costs more than
    the aggregation. Parquet events keep their ``timestamp[us, UTC]``; literals are made to
    match whichever a column has.
    """

    at: datetime  # aware, UTC

    def instant(self, column: ir.TimestampValue, days_back: int = 0) -> datetime:
        """The cut-off, or ``days_back`` days before it, as a literal for ``column``."""
        at = self.at - timedelta(days=days_back)
        return at if column.type().timezone else at.replace(tzinfo=None)

    def before(self, column: ir.TimestampValue) -> ir.BooleanValue:
        """True when the timestamp is known and earlier than the cut-off (never null)."""
        return (column < self.instant(column)).fill_null(False)

    def within(self, column: ir.TimestampValue, days: int) -> ir.BooleanValue:
        """At most ``days`` days before the cut-off (for rows already cut at it)."""
        return column >= self.instant(column, days)

    def days_since(self, column: ir.TimestampValue) -> ir.FloatingValue:
        """Days from ``column`` to the cut-off, with fractions."""
        seconds = self.at.timestamp() - column.epoch_seconds().cast("float64")
        return seconds / DAY_SECONDS


def _ratio(numerator: ir.NumericValue, denominator: ir.NumericValue) -> ir.FloatingValue:
    """numerator / denominator as float, null when the denominator is 0 or null."""
    return numerator.cast("float64") / denominator.cast("float64").nullif(0.0)


def _order_states(orders: ir.Table, cut: _Cutoff) -> ir.Table:
    """Orders placed before the cut-off, with their state at the cut-off.

    Cancelled: ``cancelled_at`` before the cut-off, or marked cancelled without a time.
    Purchase: not cancelled then, and paid, shipped or delivered by then — or, for sources
    that record only a status, a status of ``PURCHASE_STATUSES``.
    """
    placed = orders.filter(cut.before(orders.placed_at))
    cancelled = cut.before(placed.cancelled_at) | (
        placed.cancelled_at.isnull() & (placed.status == "cancelled")
    )
    timed = placed.paid_at.notnull() | placed.shipped_at.notnull() | placed.delivered_at.notnull()
    progressed = (
        cut.before(placed.paid_at)
        | cut.before(placed.shipped_at)
        | cut.before(placed.delivered_at)
        | (~timed & placed.status.isin(PURCHASE_STATUSES))
    )
    return placed.mutate(is_cancelled=cancelled, is_purchase=~cancelled & progressed)


def _purchase_features(orders: ir.Table, cut: _Cutoff) -> ir.Table:
    """Counts, spend, recency, frequency, cancellations and promotions from the orders."""
    o = _order_states(orders, cut)
    bought = o.is_purchase
    has_coupon = (o.coupon_code != "").fill_null(False)
    agg = o.group_by("customer_id").aggregate(
        orders=o.customer_id.count(where=bought),
        spend=o.total_amount.sum(where=bought),
        discount=o.discount_amount.sum(where=bought),
        first_purchase_at=o.placed_at.min(where=bought),
        last_purchase_at=o.placed_at.max(where=bought),
        first_order_at=o.placed_at.min(),
        orders_30d=o.customer_id.count(where=bought & cut.within(o.placed_at, 30)),
        orders_90d=o.customer_id.count(where=bought & cut.within(o.placed_at, 90)),
        orders_180d=o.customer_id.count(where=bought & cut.within(o.placed_at, 180)),
        orders_365d=o.customer_id.count(where=bought & cut.within(o.placed_at, 365)),
        spend_90d=o.total_amount.sum(where=bought & cut.within(o.placed_at, 90)),
        spend_365d=o.total_amount.sum(where=bought & cut.within(o.placed_at, 365)),
        coupon_orders=o.customer_id.count(where=bought & has_coupon),
        orders_placed=o.customer_id.count(),
        cancels=o.customer_id.count(where=o.is_cancelled),
        cancels_after_shipment=o.customer_id.count(
            where=cut.before(o.cancelled_at) & cut.before(o.shipped_at)
        ),
        delivered_orders=o.customer_id.count(where=cut.before(o.delivered_at)),
    )
    span = cut.days_since(agg.first_purchase_at) - cut.days_since(agg.last_purchase_at)
    agg = _left_join(agg, _purchase_days(o))
    return agg.mutate(
        recency_days=cut.days_since(agg.last_purchase_at),
        days_between_orders=ibis.ifelse(agg.orders >= 2, span / (agg.orders - 1), ibis.null()),
        cancel_rate=_ratio(agg.cancels, agg.orders_placed),
        coupon_share=_ratio(agg.coupon_orders, agg.orders),
        discount_share=_ratio(agg.discount, agg.spend.fill_null(0) + agg.discount.fill_null(0)),
    ).drop("first_purchase_at", "last_purchase_at", "cancels", "coupon_orders", "discount")


def _purchase_days(orders: ir.Table) -> ir.Table:
    """Distinct UTC days with a purchase. A grouping of its own: on DuckDB a COUNT(DISTINCT)
    among the other aggregates made the whole purchase pass five times slower."""
    bought = orders.filter(orders.is_purchase)
    days = bought.select(
        "customer_id", day=(bought.placed_at.epoch_seconds() // DAY_SECONDS).cast("int64")
    ).distinct()
    return days.group_by("customer_id").aggregate(purchase_days=days.customer_id.count())


def _return_features(returns: ir.Table, cut: _Cutoff) -> ir.Table:
    """After-sales requests: returns, exchanges, quick returns and refunds (rates are taken
    over delivered orders when the families are joined)."""
    r = returns.filter(cut.before(returns.requested_at))
    is_return = r.kind == "return"
    hours_after_delivery = (
        r.requested_at.epoch_seconds().cast("float64")
        - r.delivered_at.epoch_seconds().cast("float64")
    ) / 3600
    quick = is_return & cut.before(r.delivered_at) & (hours_after_delivery <= 48).fill_null(False)
    return r.group_by("customer_id").aggregate(
        returns=r.customer_id.count(where=is_return),
        returned_orders=r.order_id.nunique(where=is_return),
        exchanged_orders=r.order_id.nunique(where=r.kind == "exchange"),
        quick_returned_orders=r.order_id.nunique(where=quick),
        returns_180d=r.customer_id.count(where=is_return & cut.within(r.requested_at, 180)),
        refunds=r.refund_amount.sum(),
    )


def _payment_features(payments: ir.Table, cut: _Cutoff) -> ir.Table:
    """Payment trouble and payment habits."""
    p = payments.filter(cut.before(payments.at))
    agg = p.group_by("customer_id").aggregate(
        payments=p.customer_id.count(),
        failed_payments=p.customer_id.count(where=p.status == "failed"),
        chargebacks=p.customer_id.count(where=p.status == "chargeback"),
        pay_later_defaults=p.customer_id.count(where=p.status == "defaulted"),
        cod_refusals=p.customer_id.count(where=p.status == "refused"),
        pay_later_payments=p.customer_id.count(where=p.method == "pay_later"),
        cod_payments=p.customer_id.count(where=p.method == "cod"),
    )
    return agg.mutate(
        pay_later_share=_ratio(agg.pay_later_payments, agg.payments),
        cod_share=_ratio(agg.cod_payments, agg.payments),
    ).drop("payments", "pay_later_payments", "cod_payments")


def _review_features(reviews: ir.Table, cut: _Cutoff) -> ir.Table:
    """Ratings, sentiment, effort and how far a customer's ratings stray from everyone's."""
    r = reviews.filter(cut.before(reviews.created_at))
    known = r.filter(r.product_id.notnull())
    product = known.group_by("product_id").aggregate(
        product_rating=known.rating.cast("float64").mean()
    )
    r = r.left_join(product, "product_id").drop("product_id_right")
    agg = r.group_by("customer_id").aggregate(
        reviews=r.customer_id.count(),
        mean_rating=r.rating.cast("float64").mean(),
        low_reviews=r.customer_id.count(where=r.rating <= 2),
        mean_sentiment=r.sentiment.mean(),
        mean_review_length=r.text.fill_null("").length().cast("float64").mean(),
        helpful_votes=r.helpful_votes.sum(),
        rating_deviation=(r.rating.cast("float64") - r.product_rating).abs().mean(),
    )
    return agg.mutate(low_rating_share=_ratio(agg.low_reviews, agg.reviews)).drop("low_reviews")


def _event_features(events: ir.Table, customers: ir.Table, cut: _Cutoff) -> ir.Table:
    """Browsing behaviour from the event lake, matched on (source, external id)."""
    e = events.filter(cut.before(events.occurred_at))
    last_30 = cut.within(e.occurred_at, 30)
    last_90 = cut.within(e.occurred_at, 90)
    # Aggregate first, join after: the join then matches one row per customer, not per event.
    agg = e.group_by("source", "customer_external_id").aggregate(
        views_30d=e.occurred_at.count(where=last_30 & (e.event_type == "browse")),
        searches_30d=e.occurred_at.count(where=last_30 & (e.event_type == "search")),
        favourites_30d=e.occurred_at.count(where=last_30 & (e.event_type == "favourite")),
        carts_30d=e.occurred_at.count(where=last_30 & (e.event_type == "add_to_cart")),
        events_90d=e.occurred_at.count(where=last_90),
        carts_90d=e.occurred_at.count(where=last_90 & (e.event_type == "add_to_cart")),
        purchases_90d=e.occurred_at.count(where=last_90 & (e.event_type == "purchase")),
        last_event_at=e.occurred_at.max(),
    )
    keys = customers.select("customer_id", "source", "external_id")
    agg = agg.join(
        keys, [agg.source == keys.source, agg.customer_external_id == keys.external_id]
    ).drop("source", "customer_external_id", "external_id")
    return agg.mutate(
        days_since_last_event=cut.days_since(agg.last_event_at),
        cart_to_order_90d=_ratio(agg.purchases_90d, agg.carts_90d),
    ).drop("carts_90d", "purchases_90d", "last_event_at")


def _ticket_features(tickets: ir.Table, cut: _Cutoff) -> ir.Table:
    """Service load and satisfaction; a CSAT counts once its ticket was resolved."""
    t = tickets.filter(cut.before(tickets.opened_at))
    rated = cut.before(t.resolved_at) & t.satisfaction.notnull()
    return t.group_by("customer_id").aggregate(
        tickets=t.customer_id.count(),
        complaints=t.customer_id.count(where=t.is_complaint.fill_null(False)),
        mean_csat=t.satisfaction.cast("float64").mean(where=rated),
        tickets_90d=t.customer_id.count(where=cut.within(t.opened_at, 90)),
    )


def _attribute_features(customers: ir.Table, cut: _Cutoff) -> ir.Table:
    """Who the customer is: business or not, company size, where they signed up."""
    channel = customers.registration_channel.fill_null("").strip().lower()
    channel = channel.replace(" ", "_").replace("-", "_")
    codes = {**REGISTRATION_CHANNELS}
    codes.update({alias: REGISTRATION_CHANNELS[name] for alias, name in _CHANNEL_ALIASES.items()})
    return customers.select(
        "customer_id",
        registered_at=ibis.ifelse(
            cut.before(customers.registered_at), customers.registered_at, ibis.null()
        ),
        is_business=(customers.kind == "business").fill_null(False).cast("int64"),
        company_size=customers.company_size.fill_null("")
        .strip()
        .lower()
        .substitute(COMPANY_SIZES, else_=0),
        registration_channel=channel.substitute(codes, else_=0),
    )


def _left_join(left: ir.Table, right: ir.Table) -> ir.Table:
    return left.left_join(right, "customer_id").drop("customer_id_right")


def customer_features(
    sources: Sources, cutoff: datetime, *, con: ibis.BaseBackend | None = None
) -> pa.Table:
    """Features of every customer in ``sources.customers`` as of ``cutoff`` (exclusive).

    Returns one row per customer sorted by ``customer_id``: ``customer_id`` then the columns of
    ``FEATURES`` in order, ``int64`` or ``float64``. Counts are 0 for customers without
    activity; rates, means and recencies are null when there is nothing to take them over;
    the event features are null for everyone when ``sources.events`` is None (unknown, not 0).

    ``con`` is an Ibis backend (a fresh in-memory DuckDB when None); the Arrow tables are
    handed to it as memtables and ``events`` given as a path or glob is read with its
    ``read_parquet``. Reviews without a ``sentiment`` column get one from
    ``patron.intelligence.text`` first.
    """
    if cutoff.tzinfo is None:
        raise ValueError("cutoff must be timezone-aware (UTC)")
    at = cutoff.astimezone(UTC)
    cut = _Cutoff(at=at)
    con = con if con is not None else ibis.duckdb.connect()

    customers = memtable(sources.customers)
    families = [
        _purchase_features(memtable(sources.orders), cut),
        _return_features(memtable(sources.returns), cut),
        _payment_features(memtable(sources.payments), cut),
        _review_features(memtable(_with_sentiment(sources.reviews, at)), cut),
        _ticket_features(memtable(sources.tickets), cut),
    ]
    events = _events_table(sources.events, con)
    if events is not None:
        families.append(_event_features(events, customers, cut))

    joined = _attribute_features(customers, cut)
    for number, family in enumerate(families):
        # One join chain; the families' own keys are renamed out of the way, not dropped.
        joined = joined.left_join(family, "customer_id", rname=f"{{name}}_{number}")

    columns = _feature_columns(joined, cut, has_events=events is not None)
    table = con.to_pyarrow(joined.select("customer_id", **columns).order_by("customer_id"))
    return table.cast(output_schema())


def output_schema() -> pa.Schema:
    """The schema ``customer_features`` returns."""
    return pa.schema(
        [("customer_id", pa.int64())]
        + [(f.name, pa.int64() if f.dtype == "int64" else pa.float64()) for f in FEATURES.values()]
    )


def _feature_columns(j: ir.Table, cut: _Cutoff, *, has_events: bool) -> dict[str, ir.Value]:
    """The output columns from the joined families: counts and sums filled with 0 for
    customers a family has no row for, ratios across families, every column cast to its
    declared type."""
    spend = j.spend.fill_null(0.0)
    orders = j.orders.fill_null(0)
    started = ibis.least(
        j.registered_at.fill_null(j.first_order_at), j.first_order_at.fill_null(j.registered_at)
    )
    derived: dict[str, ir.Value] = {
        "aov": _ratio(spend, orders),
        "tenure_days": cut.days_since(started),
        "return_rate": _ratio(j.returned_orders.fill_null(0), j.delivered_orders),
        "exchange_rate": _ratio(j.exchanged_orders.fill_null(0), j.delivered_orders),
        "quick_return_rate": _ratio(j.quick_returned_orders.fill_null(0), j.delivered_orders),
        "refund_share": _ratio(j.refunds.fill_null(0.0), spend),
        "tickets_per_order": _ratio(j.tickets.fill_null(0), orders),
    }
    columns: dict[str, ir.Value] = {}
    for name, info in FEATURES.items():
        if name in EVENT_FEATURES and not has_events:
            value: ir.Value = ibis.null()
        elif name in derived:
            value = derived[name]
        else:
            value = j[name]
            if info.dtype == "int64" or name in _MONEY_TOTALS:
                value = value.fill_null(0)
        columns[name] = value.cast(info.dtype)
    return columns


def memtable(table: pa.Table) -> ir.Table:
    """An Arrow table for Ibis, its timestamps made naive UTC (see ``_Cutoff``)."""
    fields = [
        pa.field(f.name, pa.timestamp(f.type.unit)) if pa.types.is_timestamp(f.type) else f
        for f in table.schema
    ]
    return ibis.memtable(table.cast(pa.schema(fields)))


def _with_sentiment(reviews: pa.Table, at: datetime) -> pa.Table:
    """The reviews written before ``at``, with a ``sentiment`` column unless they have one."""
    created = reviews.column("created_at")
    return with_sentiment(reviews.filter(pc.less(created, pa.scalar(at, created.type))))


def with_sentiment(reviews: pa.Table) -> pa.Table:
    """``reviews`` with a ``sentiment`` column (as they are if they have one): a caller that
    takes the features at several cut-offs scores the texts once. Each distinct text is
    scored once."""
    if "sentiment" in reviews.column_names:
        return reviews
    texts = reviews.column("text")
    distinct = pc.unique(texts)
    scores = pa.array(text.sentiment(distinct.to_pylist()), pa.float64())
    return reviews.append_column("sentiment", scores.take(pc.index_in(texts, value_set=distinct)))


def _events_table(events: pa.Table | str | Path | None, con: ibis.BaseBackend) -> ir.Table | None:
    if events is None:
        return None
    if isinstance(events, pa.Table):
        return memtable(events)
    return con.read_parquet(str(events))
