"""After-sales and logistics on the demo merchant: requests of every kind in every state, a few
fresh parcels followed scan by scan, and the exceptions the logistics monitor finds in them —
all made through the services, as the shop's staff, the customers and the carriers would.

The demo's history ends before today, so its orders are past the 7-day return window: returns
on them are filed outside the policy (one approved as a supervisor's exception). A dozen fresh
orders, delivered or shipped in the last days, give requests within the policy and the parcels
to track. Three demo staff members do the work (without passwords: nobody logs in as them): two
agents, so that an appeal is decided by someone other than the first decision's maker, and a
supervisor for exceptions. Safe to run twice: a demo that has them already is left as it is.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from patron.account.models import User
from patron.account.services import user_create
from patron.aftersales import services
from patron.aftersales.models import AfterSalesRequest
from patron.commerce.models import Order, OrderLine, Product, Shipment
from patron.customer.models import Customer
from patron.errors import PatronError

SOURCE = "demo-live"  # not "demo": the generated history is checked row for row
PREFIX = "ASD-"  # the fresh orders' external ids
AGENT, SECOND_AGENT, LEAD = "demo-agent", "demo-agent-2", "demo-aftersales-lead"
CARRIERS = (("顺丰速运", "SF"), ("中通快递", "ZT"), ("京东物流", "JD"), ("圆通速递", "YT"))
CITIES = ("上海转运中心", "杭州分拨中心", "南京中转场", "北京顺义集散中心", "广州白云中转场")


@dataclass(frozen=True)
class DemoAftersales:
    requests: int
    outside_policy: int
    shipments: int
    exceptions: int


def _staff(username: str, role: str) -> User:
    found = User.objects.filter(username=username).first()
    return found or user_create(username=username, role=role)


def _fresh_order(
    rng: random.Random,
    number: int,
    customer: Customer,
    products: list[Product],
    *,
    placed_at: datetime,
) -> Order:
    chosen = rng.sample(products, 2)
    quantities = [rng.choice((1, 1, 2)), 1]
    amounts = [(p.price or Decimal("99.00")) * q for p, q in zip(chosen, quantities, strict=True)]
    order = Order.objects.create(
        source=SOURCE,
        external_id=f"{PREFIX}{number:04d}",
        customer=customer,
        status=Order.Status.SHIPPED,
        store="Tmall",
        placed_at=placed_at,
        paid_at=placed_at + timedelta(minutes=2),
        shipped_at=placed_at + timedelta(hours=20),
        total_amount=sum(amounts, Decimal("0")),
    )
    for line_no, (product, quantity, amount) in enumerate(
        zip(chosen, quantities, amounts, strict=True), start=1
    ):
        OrderLine.objects.create(
            source=SOURCE,
            external_id=f"{order.external_id}:{line_no}",
            order=order,
            line_no=line_no,
            product=product,
            product_name=product.name,
            quantity=quantity,
            unit_price=amount / quantity,
            amount=amount,
        )
    return order


def _parcel(rng: random.Random, order: Order, *, promised: datetime) -> Shipment:
    carrier, code = rng.choice(CARRIERS)
    return Shipment.objects.create(
        source=SOURCE,
        external_id=f"S-{order.external_id}",
        order=order,
        carrier=carrier,
        tracking_number=f"{code}{rng.randrange(10**11, 10**12)}",
        status=Shipment.Status.IN_TRANSIT,
        shipped_at=order.shipped_at,
        estimated_delivery_at=promised,
    )


def _scans(shipment: Shipment, steps: list[tuple[datetime, str, str]], *, first: int = 1) -> None:
    """The carrier's webhook, as it would post them (event ids numbered from ``first``)."""
    services.carrier_scans_record(
        carrier=shipment.carrier,
        tracking_number=shipment.tracking_number,
        scans=[
            services.CarrierScan(
                event_id=f"{shipment.tracking_number}-{index}",
                at=at,
                status=status,
                location=location,
                description={
                    "picked_up": "快件已揽收",
                    "in_transit": "快件已到达",
                    "out_for_delivery": "快件派送中",
                    "delivered": "已签收，感谢使用",
                    "failed_delivery": "派送不成功：收件人电话无人接听",
                }.get(status, ""),
            )
            for index, (at, status, location) in enumerate(steps, start=first)
        ],
        source="demo carrier",
    )


def _line(order: Order, index: int = 0) -> OrderLine:
    return order.lines.order_by("line_no")[index]


def _file(
    user: User | None,
    order: Order,
    kind: str,
    reason_code: str,
    reason: str,
    *,
    line: int = 0,
    amount: Decimal | None = None,
) -> AfterSalesRequest:
    chosen = _line(order, line)
    return services.aftersales_file(
        user=user,
        customer_id=order.customer_id,
        order_id=order.pk,
        kind=kind,
        reason_code=reason_code,
        reason=reason,
        lines=[services.LineRequest(order_line_id=chosen.pk, quantity=1)],
        requested_amount=amount,
        channel=AfterSalesRequest.Channel.STAFF if user else AfterSalesRequest.Channel.PUBLIC,
        applicant_customer_id=None if user else order.customer_id,
    )


def demo_aftersales(*, seed: int) -> DemoAftersales:
    """Requests in every state and parcels with their scans and exceptions; see the module
    docstring. Customers and products are chosen at random with ``seed``."""
    if Order.objects.filter(source=SOURCE, external_id__startswith=PREFIX).exists():
        return DemoAftersales(
            requests=AfterSalesRequest.objects.count(),
            outside_policy=AfterSalesRequest.objects.filter(is_within_policy=False).count(),
            shipments=Shipment.objects.filter(external_id__startswith=f"S-{PREFIX}").count(),
            exceptions=services.LogisticsException.objects.count(),
        )
    rng = random.Random(seed)
    services.policies_seed()
    agent = _staff(AGENT, "service_agent")
    second = _staff(SECOND_AGENT, "service_agent")
    lead = _staff(LEAD, "operations_manager")
    now = timezone.now().replace(microsecond=0)
    people = list(
        Customer.objects.filter(status="active").order_by("pk").values_list("pk", flat=True)
    )
    products = list(Product.objects.filter(category__isnull=False).order_by("pk")[:400])
    if len(people) < 20 or len(products) < 2:
        return DemoAftersales(0, 0, 0, 0)
    customers = [Customer.objects.get(pk=pk) for pk in rng.sample(people, 20)]
    with transaction.atomic():
        fresh = [
            _fresh_order(
                rng,
                number + 1,
                customers[number],
                products,
                placed_at=now - timedelta(days=rng.uniform(4.0, 6.0)),
            )
            for number in range(14)
        ]
        parcels = [
            _parcel(rng, order, promised=order.placed_at + timedelta(hours=20, days=3))
            for order in fresh
        ]
        # Eight parcels arrived (days ago): their orders can be returned within the policy.
        for parcel in parcels[:8]:
            start = parcel.shipped_at
            assert start is not None
            _scans(
                parcel,
                [
                    (start + timedelta(hours=1), "picked_up", rng.choice(CITIES)),
                    (start + timedelta(hours=14), "in_transit", rng.choice(CITIES)),
                    (start + timedelta(hours=30), "out_for_delivery", rng.choice(CITIES)),
                    (start + timedelta(hours=33), "delivered", "收件人本人"),
                ],
            )
        # Six are still on their way: two fine, two silent for days, one late, one failed.
        on_way = parcels[8:]
        for index, parcel in enumerate(on_way):
            assert parcel.shipped_at is not None
            silent = index in (2, 3)
            last = now - (timedelta(hours=60) if silent else timedelta(hours=rng.uniform(2, 8)))
            status = "failed_delivery" if index == 5 else "in_transit"
            _scans(
                parcel,
                [
                    (parcel.shipped_at + timedelta(hours=1), "picked_up", rng.choice(CITIES)),
                    (last, status, rng.choice(CITIES)),
                ],
            )
            promised = now - timedelta(hours=5) if index == 4 else now + timedelta(days=1)
            Shipment.objects.filter(pk=parcel.pk).update(estimated_delivery_at=promised)
    made = _requests(rng, fresh[:8], customers[14:], agent=agent, second=second, lead=lead)
    check = services.logistics_check()
    return DemoAftersales(
        requests=made,
        outside_policy=AfterSalesRequest.objects.filter(is_within_policy=False).count(),
        shipments=len(parcels),
        exceptions=check.found,
    )


def _old_order(customer: Customer) -> Order | None:
    """The customer's latest delivered order from the history (past the 7-day window now)."""
    return (
        Order.objects.filter(customer=customer, status__in=("delivered", "completed"))
        .exclude(external_id__startswith=PREFIX)
        .filter(lines__isnull=False)
        .order_by("-placed_at")
        .first()
    )


def _requests(
    rng: random.Random,
    delivered: list[Order],
    others: list[Customer],
    *,
    agent: User,
    second: User,
    lead: User,
) -> int:
    """One request per story; a story the data cannot tell (an order too small …) is skipped."""
    stories: list[Callable[[], object]] = [
        # within the policy, waiting for a decision; one filed by the customer on their page
        lambda: _file(agent, delivered[0], "return", "no_reason", "尺码偏小，不想要了"),
        lambda: _file(None, delivered[1], "exchange", "size_or_fit", "想换大一号"),
        # approved, the goods on their way back
        lambda: _approve(agent, _file(agent, delivered[2], "return", "defective", "开线了")),
        # received, to refund
        lambda: _receive(agent, _file(agent, delivered[3], "return", "damaged", "外包装破损")),
        # refunded and closed
        lambda: _refund_and_close(agent, _file(agent, delivered[4], "return", "no_reason", "")),
        # an exchange carried out
        lambda: _replace(agent, _file(agent, delivered[5], "exchange", "wrong_item", "发错颜色")),
        # compensation for the late parcel, paid
        lambda: _compensate(agent, delivered[6]),
        # rejected, then appealed by the customer: waiting for someone else's decision
        lambda: _appealed(agent, delivered[7]),
        # cancelled by the customer before sending anything back
        lambda: _cancelled(delivered[2]),
    ]
    for customer in others[:6]:
        stories.append(functools.partial(_from_history, rng, customer, agent, lead))
    made = 0
    for story in stories:
        try:
            with transaction.atomic():
                story()
                made += 1
        except (PatronError, IndexError):
            continue
    return made


def _approve(user: User, request: AfterSalesRequest) -> AfterSalesRequest:
    return services.aftersales_approve(user=user, request_id=request.pk, reason="符合政策")


def _receive(user: User, request: AfterSalesRequest) -> AfterSalesRequest:
    _approve(user, request)
    return services.aftersales_receive(user=user, request_id=request.pk, note="商品完好，吊牌齐全")


def _refund_and_close(user: User, request: AfterSalesRequest) -> None:
    _receive(user, request)
    services.aftersales_refund(
        user=user,
        request_id=request.pk,
        amount=services.refundable_amount(request),
        method="original",
        reference=f"RF{request.pk:08d}",
    )
    services.aftersales_close(user=user, request_id=request.pk)


def _replace(user: User, request: AfterSalesRequest) -> None:
    _receive(user, request)
    services.aftersales_replace(
        user=user,
        request_id=request.pk,
        carrier="顺丰速运",
        tracking_number=f"SF{900000000000 + request.pk}",
    )


def _compensate(user: User, order: Order) -> None:
    request = _file(
        user, order, "compensation", "late_delivery", "晚到两天", amount=Decimal("10.00")
    )
    _approve(user, request)
    services.aftersales_refund(
        user=user, request_id=request.pk, amount=Decimal("10.00"), method="voucher"
    )


def _appealed(user: User, order: Order) -> None:
    request = _file(user, order, "return", "not_as_described", "颜色和图片不一样", line=1)
    services.aftersales_reject(
        user=user, request_id=request.pk, reason="图片为实物拍摄，颜色差异在合理范围内"
    )
    services.aftersales_appeal(
        user=None,
        request_id=request.pk,
        reason="差别很明显，附上了对比照片",
        applicant_customer_id=order.customer_id,
    )


def _cancelled(order: Order) -> None:
    request = _file(None, order, "repair", "defective", "拉链坏了", line=1)
    services.aftersales_cancel(
        user=None,
        request_id=request.pk,
        reason="自己修好了",
        applicant_customer_id=order.customer_id,
    )


def _from_history(rng: random.Random, customer: Customer, agent: User, lead: User) -> None:
    """A request on an order of the history: a return outside the 7-day window (one approved by
    the supervisor as an exception, one rejected), or a repair under warranty."""
    order = _old_order(customer)
    if order is None:
        raise IndexError("no delivered order")
    kind = rng.choice(("return", "return", "repair", "exchange"))
    reason_code = {"return": "defective", "repair": "defective", "exchange": "size_or_fit"}[kind]
    request = _file(agent, order, kind, reason_code, "用了几天发现问题")
    if request.is_within_policy:
        _approve(agent, request)
    elif rng.random() < 0.5:
        services.aftersales_approve(
            user=lead,
            request_id=request.pk,
            exception_reason="老客户，质量问题属实，破例受理",
        )
    # else: waits for a supervisor, outside the policy
