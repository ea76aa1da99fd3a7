"""Orders, lines, payments, returns/exchanges, reviews, shipments, products and categories.

Money is ``Decimal`` with a currency on the record (CNY by default); times are UTC.
Every imported record is keyed by (source, external_id) so that re-imports are idempotent.
"""

from __future__ import annotations

from django.db import models

from patron.customer.models import Customer, Imported, SourceChannel


class Category(Imported):
    name = models.CharField(max_length=120)
    name_en = models.CharField(max_length=120, blank=True)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL)
    is_no_reason_return_exempt = models.BooleanField(
        default=False,
        help_text="Excluded from the statutory 7-day no-reason return (made to order, fresh, "
        "digital, periodicals; Consumer Rights Protection Law Art. 25)",
    )

    class Meta:
        verbose_name_plural = "categories"
        constraints = [
            models.UniqueConstraint(fields=["source", "external_id"], name="category_source_ext")
        ]

    def __str__(self) -> str:
        return self.name


class Product(Imported):
    name = models.CharField(max_length=200)
    category = models.ForeignKey(Category, null=True, blank=True, on_delete=models.SET_NULL)
    price = models.DecimalField(null=True, blank=True, max_digits=14, decimal_places=2)
    currency = models.CharField(max_length=3, default="CNY")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source", "external_id"], name="product_source_ext")
        ]

    def __str__(self) -> str:
        return self.name


class Order(Imported):
    class Status(models.TextChoices):
        CREATED = "created", "待付款 Created"
        PAID = "paid", "已付款 Paid"
        SHIPPED = "shipped", "已发货 Shipped"
        DELIVERED = "delivered", "已签收 Delivered"
        COMPLETED = "completed", "已完成 Completed"
        CANCELLED = "cancelled", "已取消 Cancelled"
        RETURNED = "returned", "已退货 Returned"

    # Indexed through (customer, placed_at) below; a second index would slow every import.
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="orders", db_index=False
    )
    status = models.CharField(max_length=12, choices=Status.choices)
    channel = models.CharField(
        max_length=12, choices=SourceChannel.choices, default=SourceChannel.ONLINE
    )
    store = models.CharField(
        max_length=60, blank=True, help_text="Storefront: Tmall, JD, app, offline shop …"
    )
    placed_at = models.DateTimeField()
    paid_at = models.DateTimeField(null=True, blank=True)
    shipped_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    estimated_delivery_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    total_amount = models.DecimalField(max_digits=14, decimal_places=2)
    discount_amount = models.DecimalField(default=0, max_digits=14, decimal_places=2)
    shipping_fee = models.DecimalField(default=0, max_digits=14, decimal_places=2)
    currency = models.CharField(max_length=3, default="CNY")
    coupon_code = models.CharField(max_length=40, blank=True)
    ship_province = models.CharField(max_length=40, blank=True)
    ship_city = models.CharField(max_length=60, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source", "external_id"], name="order_source_ext")
        ]
        indexes = [
            models.Index(fields=["customer", "placed_at"]),
            models.Index(fields=["placed_at"]),
        ]

    def __str__(self) -> str:
        return f"Order {self.external_id}"


class OrderLine(Imported):
    # Indexed through (order, line_no) below.
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines", db_index=False)
    line_no = models.PositiveIntegerField()
    product = models.ForeignKey(Product, null=True, blank=True, on_delete=models.SET_NULL)
    product_ref = models.CharField(
        max_length=100,
        blank=True,
        help_text="The product's id in the source, kept when the product is not in the catalogue",
    )
    product_name = models.CharField(max_length=200, blank=True)
    quantity = models.PositiveIntegerField(default=1)
    unit_price = models.DecimalField(max_digits=14, decimal_places=2)
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    currency = models.CharField(max_length=3, default="CNY")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source", "external_id"], name="orderline_source_ext"),
        ]
        indexes = [models.Index(fields=["order", "line_no"])]

    def __str__(self) -> str:
        return f"{self.order_id}:{self.line_no} {self.product_name}"


class Payment(Imported):
    class Method(models.TextChoices):
        ALIPAY = "alipay", "支付宝 Alipay"
        WECHAT_PAY = "wechat_pay", "微信支付 WeChat Pay"
        CARD = "card", "银行卡 Card"
        CASH_ON_DELIVERY = "cod", "货到付款 Cash on delivery"
        PAY_LATER = "pay_later", "先用后付 Pay later"
        VOUCHER = "voucher", "代金券 Voucher"
        BANK_TRANSFER = "bank_transfer", "银行转账 Bank transfer"
        OTHER = "other", "其他 Other"

    class Status(models.TextChoices):
        SUCCEEDED = "succeeded", "成功 Succeeded"
        FAILED = "failed", "失败 Failed"
        REFUNDED = "refunded", "已退款 Refunded"
        CHARGEBACK = "chargeback", "拒付 Chargeback"
        DEFAULTED = "defaulted", "逾期未还 Defaulted"
        REFUSED = "refused", "拒收 Refused on delivery"

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="payments")
    method = models.CharField(max_length=16, choices=Method.choices)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.SUCCEEDED)
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    currency = models.CharField(max_length=3, default="CNY")
    installments = models.PositiveSmallIntegerField(default=1)
    paid_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source", "external_id"], name="payment_source_ext")
        ]

    def __str__(self) -> str:
        return f"{self.method} {self.amount} {self.currency} ({self.status})"


class ReturnRequest(Imported):
    class Kind(models.TextChoices):
        RETURN = "return", "退货 Return"
        EXCHANGE = "exchange", "换货 Exchange"
        REPAIR = "repair", "维修 Repair"
        COMPENSATION = "compensation", "补偿 Compensation"

    class Status(models.TextChoices):
        REQUESTED = "requested", "已申请 Requested"
        APPROVED = "approved", "已同意 Approved"
        REJECTED = "rejected", "已拒绝 Rejected"
        RECEIVED = "received", "已收货 Received"
        REFUNDED = "refunded", "已退款 Refunded"
        COMPLETED = "completed", "已完成 Completed"
        CANCELLED = "cancelled", "已撤销 Cancelled"

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="returns")
    order_line = models.ForeignKey(OrderLine, null=True, blank=True, on_delete=models.SET_NULL)
    kind = models.CharField(max_length=14, choices=Kind.choices, default=Kind.RETURN)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.REQUESTED)
    reason = models.CharField(max_length=200, blank=True)
    requested_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    refund_amount = models.DecimalField(default=0, max_digits=14, decimal_places=2)
    currency = models.CharField(max_length=3, default="CNY")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source", "external_id"], name="return_source_ext")
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.external_id} ({self.status})"


class Review(Imported):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="reviews")
    order = models.ForeignKey(
        Order, null=True, blank=True, on_delete=models.SET_NULL, related_name="reviews"
    )
    product = models.ForeignKey(Product, null=True, blank=True, on_delete=models.SET_NULL)
    rating = models.PositiveSmallIntegerField()
    title = models.CharField(max_length=200, blank=True)
    text = models.TextField(blank=True)
    created_at = models.DateTimeField()
    answered_at = models.DateTimeField(null=True, blank=True)
    helpful_votes = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source", "external_id"], name="review_source_ext"),
            models.CheckConstraint(
                condition=models.Q(rating__gte=1, rating__lte=5), name="review_rating_1_5"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.rating}★ {self.title or self.text[:30]}"


class Shipment(Imported):
    class Status(models.TextChoices):
        PENDING = "pending", "待发货 Pending"
        IN_TRANSIT = "in_transit", "运输中 In transit"
        DELIVERED = "delivered", "已签收 Delivered"
        EXCEPTION = "exception", "异常 Exception"
        RETURNED = "returned", "已退回 Returned"

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="shipments")
    carrier = models.CharField(max_length=40, blank=True)
    tracking_number = models.CharField(max_length=60, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    shipped_at = models.DateTimeField(null=True, blank=True)
    estimated_delivery_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source", "external_id"], name="shipment_source_ext")
        ]

    def __str__(self) -> str:
        return f"{self.carrier} {self.tracking_number} ({self.status})"

    @property
    def delay_days(self) -> int | None:
        if self.delivered_at and self.estimated_delivery_at:
            return (self.delivered_at - self.estimated_delivery_at).days
        return None
