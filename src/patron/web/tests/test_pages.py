from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone

from patron.account.roles import Role
from patron.audit.models import AuditEvent
from patron.conftest import PASSWORD, CustomerFile, make_customer, make_user
from patron.ingest.models import ImportBatch
from patron.web.navigation import NAV_ENTRIES, nav_items
from patron.web.templatetags.patron_web import choice, money, stars

pytestmark = pytest.mark.django_db


def client_for(role: str, *, language: str = "en") -> Client:
    client = Client(headers={"accept-language": language})
    client.force_login(make_user(role))
    return client


def text_of(html: str) -> str:
    """Visible text, whitespace collapsed: enough to assert on what a person reads."""
    without_tags = re.sub(r"<script.*?</script>|<[^>]+>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", without_tags).strip()


# --- login and layout ---------------------------------------------------------------------------


def test_login_page_renders_and_logs_in(db: None) -> None:
    # given
    make_user(Role.SERVICE_AGENT, username="agent-zhang", password=PASSWORD)
    client = Client(headers={"accept-language": "en"})

    # when
    page = client.get("/login/")
    response = client.post("/login/", {"username": "agent-zhang", "password": PASSWORD})

    # then
    assert page.status_code == 200
    assert "Patron 客户质量管理" in page.content.decode()
    assert response.status_code == 302
    assert response["Location"] == "/customers/"


def test_wrong_password_shows_an_error(db: None) -> None:
    # given
    make_user(Role.SERVICE_AGENT, username="agent-zhang", password=PASSWORD)

    # when
    response = Client(headers={"accept-language": "en"}).post(
        "/login/", {"username": "agent-zhang", "password": "wrong"}
    )

    # then
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()


def test_logout_is_a_post_and_returns_to_login(db: None) -> None:
    # given
    client = client_for(Role.ANALYST)

    # when
    response = client.post("/logout/")

    # then
    assert response.status_code == 302
    assert response["Location"] == "/login/"
    assert client.get("/customers/").status_code == 302


def test_home_redirects_to_customers(db: None) -> None:
    # when
    response = client_for(Role.MARKETER).get("/")

    # then
    assert response.status_code == 302
    assert response["Location"] == "/customers/"


def test_pages_are_chinese_by_default(db: None) -> None:
    # given: no Accept-Language header
    client = Client()
    client.force_login(make_user(Role.ADMINISTRATOR))

    # when
    html = client.get("/customers/").content.decode()

    # then
    assert '<html lang="zh-hans">' in html
    assert "<title>客户 · Patron</title>" in html
    assert ">导入</a>" in html
    assert ">审计日志</a>" in html


def test_language_switch_to_english(db: None) -> None:
    # given
    client = Client()
    client.force_login(make_user(Role.ADMINISTRATOR))

    # when
    response = client.post("/i18n/setlang/", {"language": "en", "next": "/customers/"})
    html = client.get("/customers/").content.decode()

    # then
    assert response.status_code == 302
    assert '<html lang="en">' in html
    assert "<title>Customers · Patron</title>" in html


def test_static_assets_are_vendored(db: None) -> None:
    # given
    client = client_for(Role.ADMINISTRATOR)

    # when
    html = client.get("/customers/").content.decode()

    # then: no CDN, every asset from our static folder
    assert "https://" not in html
    for asset in (
        "vendor/bootstrap/bootstrap.min.css",
        "vendor/bootstrap/bootstrap.bundle.min.js",
        "vendor/htmx/htmx.min.js",
        "patron/patron.css",
    ):
        assert f"/static/{asset}" in html
        assert (Path(__file__).parents[1] / "static" / asset).is_file()


# --- navigation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        (
            Role.ADMINISTRATOR,
            [
                "Customers",
                "Imports",
                "Models",
                "Service",
                "Satisfaction",
                "Risk",
                "Certification",
                "Insights",
                "Marketing",
                "Audit log",
                "Admin",
            ],
        ),
        (
            Role.OPERATIONS_MANAGER,
            [
                "Customers",
                "Imports",
                "Models",
                "Service",
                "Satisfaction",
                "Risk",
                "Certification",
                "Insights",
                "Marketing",
            ],
        ),
        (Role.SERVICE_AGENT, ["Customers", "Service", "Satisfaction", "Certification"]),
        (Role.RISK_ANALYST, ["Customers", "Imports", "Models", "Service", "Risk", "Certification"]),
        (Role.MARKETER, ["Customers", "Models", "Insights", "Marketing"]),
        (
            Role.AUDITOR,
            [
                "Customers",
                "Imports",
                "Models",
                "Service",
                "Satisfaction",
                "Risk",
                "Certification",
                "Insights",
                "Marketing",
                "Audit log",
            ],
        ),
        (
            Role.ANALYST,
            ["Customers", "Imports", "Models", "Satisfaction", "Insights", "Marketing"],
        ),
    ],
)
def test_navigation_hides_what_the_role_may_not_open(
    rf: object, role: str, expected: list[str]
) -> None:
    # given
    request = rf.get("/customers/")  # type: ignore[attr-defined]
    request.user = make_user(role)

    # when
    items = nav_items(request)

    # then
    assert [str(item["label"]) for item in items] == expected
    assert [item["is_active"] for item in items] == [True] + [False] * (len(expected) - 1)


def test_navigation_is_empty_for_anonymous_users(rf: object) -> None:
    # given
    from django.contrib.auth.models import AnonymousUser

    request = rf.get("/login/")  # type: ignore[attr-defined]
    request.user = AnonymousUser()

    # when / then
    assert nav_items(request) == []
    assert len(NAV_ENTRIES) == 11


# --- customer list ------------------------------------------------------------------------------


def test_customer_list_shows_customers_and_filters(customer_file: CustomerFile) -> None:
    # given
    client = client_for(Role.SERVICE_AGENT)

    # when
    html = client.get("/customers/").content.decode()

    # then
    text = text_of(html)
    assert (
        "王小明 C1001 · shop Individual 138****1234 x***@example.com 上海 上海 Online 2024-01-05 3 ¥299.00 Active"
        in text
    )
    assert (
        "李华 C1002 · shop Business 139****1111 h***@example.com 广东 深圳 Offline 2024-02-10 1 ¥5,000.00 Active"
        in text
    )
    assert "Showing 1–3 of 3" in text
    assert '<option value="广东">广东</option>' in html
    assert 'hx-get="/customers/"' in html
    assert 'hx-target="#customer-results"' in html


def test_customer_search_returns_a_partial_for_htmx(customer_file: CustomerFile) -> None:
    # given
    client = client_for(Role.SERVICE_AGENT)

    # when
    response = client.get("/customers/", {"q": "13812341234"}, headers={"HX-Request": "true"})

    # then
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html
    assert "王小明" in html
    assert "李华" not in html
    assert "Showing 1–1 of 1" in text_of(html)
    assert "HX-Request" in response["Vary"]


def test_customer_list_filters_by_region_kind_and_channel(customer_file: CustomerFile) -> None:
    # given
    client = client_for(Role.ANALYST)

    # when
    html = client.get(
        "/customers/", {"province": "浙江", "kind": "individual", "source_channel": "third_party"}
    )

    # then
    text = text_of(html.content.decode())
    assert "王芳" in text
    assert "王小明" not in text
    assert '<option value="浙江" selected>' in html.content.decode()


def test_customer_list_paginates(db: None) -> None:
    # given
    for number in range(55):
        make_customer(name=f"Customer {number:02d}")
    client = client_for(Role.ADMINISTRATOR)

    # when
    first = text_of(client.get("/customers/").content.decode())
    second = client.get("/customers/", {"page": 2}).content.decode()

    # then
    assert "Showing 1–50 of 55" in first
    assert "Page 1 of 2" in first
    assert "Showing 51–55 of 55" in text_of(second)
    assert 'href="?page=1"' in second
    assert "Customer 00" in second


def test_customer_list_says_when_nothing_matches(customer_file: CustomerFile) -> None:
    # when
    html = client_for(Role.ADMINISTRATOR).get("/customers/", {"q": "nobody"}).content.decode()

    # then
    assert "No customers match." in html


def test_an_unknown_filter_value_is_a_422_page(db: None) -> None:
    # when
    response = client_for(Role.ADMINISTRATOR).get("/customers/", {"kind": "robot"})

    # then
    assert response.status_code == 422
    assert "unknown customer kind &#x27;robot&#x27;" in response.content.decode()


# --- customer page ------------------------------------------------------------------------------


def test_customer_page_shows_every_section(customer_file: CustomerFile, lake: Path) -> None:
    # given
    client = client_for(Role.ADMINISTRATOR)

    # when
    response = client.get(f"/customers/{customer_file.customer.pk}/")

    # then
    assert response.status_code == 200
    text = text_of(response.content.decode())
    assert "Phone 13812341234 E-mail xiaoming.wang@example.com ID number 110101199003074514" in text
    assert "Gender Male Birthday 1990-03-07 Region 上海 上海 Channel Online" in text
    assert "Registered 2024-01-05 10:00" in text  # 02:00 UTC shown in Asia/Shanghai
    assert "Frequent buyer VIP" in text
    assert "Marketing · SMS 2024-06-01 Withdrawn" in text
    assert "Home Default 上海上海浦东新区 世纪大道100号1号楼101室 200120" in text
    assert (
        "Orders 3 Total spent ¥299.00 Returns 1 Average rating 4.0 ★ Tickets 1 (1 complaint)"
        in text
    )
    assert "SO-0003 2024-04-20 20:00 Cancelled Tmall Online" in text
    assert (
        "SO-0001 2024-02-01 12:30 Completed Tmall Online 上海 上海 2 ¥20.00 ¥299.00 Alipay" in text
    )
    assert "1 Silk scarf 1 ¥199.00 ¥199.00" in text
    assert "2 Tea set 2 ¥50.00 ¥100.00" in text
    assert "Alipay Succeeded 2024-02-01 12:31 ¥299.00" in text
    assert "SO-0002 Rice cooker Return Damaged on arrival Refunded 2024-03-18 ¥1,288.50" in text
    assert "★★★★☆ Nice scarf" in text
    assert (
        "SF Express SF1234567890 Delivered 2024-02-01 18:00 2024-02-03 2024-02-05 18:00 2 days late"
        in text
    )
    assert "Rice cooker arrived broken Complaint Phone High Solved SO-0002" in text
    assert "Record changed customer:" in text
    assert "Registered C1001 Online WeChat mini program" in text


def test_customer_page_shows_behaviour_from_the_lake(
    customer_file: CustomerFile, lake_with_events: Path
) -> None:
    # when
    html = (
        client_for(Role.MARKETER).get(f"/customers/{customer_file.customer.pk}/").content.decode()
    )

    # then
    text = text_of(html)
    assert "2024-05-02 17:00 Added to cart SKU-1 CAT-1 — s2" in text
    assert "2024-05-01 09:05 Searched — — 围巾 s1" in text


def test_customer_page_masks_pii_for_an_agent(customer_file: CustomerFile, lake: Path) -> None:
    # when
    html = (
        client_for(Role.SERVICE_AGENT)
        .get(f"/customers/{customer_file.customer.pk}/")
        .content.decode()
    )

    # then
    text = text_of(html)
    assert "Phone 138****1234 E-mail x***@example.com ID number 110***********4514" in text
    assert "世纪大道10****" in text
    assert "13812341234" not in html
    assert "xiaoming.wang@example.com" not in html
    assert "Personal data masked" in text


def test_customer_page_for_an_auditor_has_no_orders(
    customer_file: CustomerFile, lake: Path
) -> None:
    # when
    html = client_for(Role.AUDITOR).get(f"/customers/{customer_file.customer.pk}/").content.decode()

    # then: auditors read tickets (the service desk's audit), not orders
    assert 'id="pane-orders"' not in html
    assert 'id="pane-tickets"' in html
    assert "SO-0001" not in html
    assert "Some activity is hidden because your role may not see it." in html
    assert 'id="pane-timeline"' in html


def test_customer_page_in_chinese(customer_file: CustomerFile, lake: Path) -> None:
    # when
    html = client_for(Role.ADMINISTRATOR, language="zh-hans").get(
        f"/customers/{customer_file.customer.pk}/"
    )

    # then
    text = text_of(html.content.decode())
    assert "手机号 13812341234" in text
    assert "累计消费 ¥299.00" in text
    assert "SO-0003 2024-04-20 20:00 已取消 Tmall 线上" in text
    assert "延迟 2 天" in text


def test_missing_customer_is_a_404_page(db: None) -> None:
    # when
    response = client_for(Role.ADMINISTRATOR).get("/customers/424242/")

    # then
    assert response.status_code == 404
    text = text_of(response.content.decode())
    assert "404 Not found customer 424242 does not exist" in text


def test_all_orders_page_is_paged(customer_file: CustomerFile) -> None:
    # when
    response = client_for(Role.ANALYST).get(f"/customers/{customer_file.customer.pk}/orders/")

    # then
    assert response.status_code == 200
    text = text_of(response.content.decode())
    assert "Orders · 王小明" in text
    assert "Showing 1–3 of 3" in text


# --- imports and audit --------------------------------------------------------------------------


def test_import_list_shows_batches_with_counts(db: None) -> None:
    # given
    started = timezone.now()
    ImportBatch.objects.create(
        kind="orders",
        source="olist",
        path="/data/olist/orders.csv",
        status=ImportBatch.Status.REJECTED,
        started_at=started,
        read=4000,
        rejected=1,
    )
    ImportBatch.objects.create(
        kind="customers",
        source="shop",
        path="/data/customers.csv",
        status=ImportBatch.Status.COMMITTED,
        started_at=started + timedelta(minutes=1),
        read=63,
        inserted=60,
        updated=2,
        unchanged=1,
    )

    # when
    html = client_for(Role.RISK_ANALYST).get("/imports/").content.decode()

    # then
    text = text_of(html)
    assert "customers shop customers.csv Committed" in text
    assert "63 60 2 1 0" in text
    assert "orders olist orders.csv Rejected" in text
    assert "4000 0 0 0 1" in text
    assert text.index("customers.csv") < text.index("orders.csv")


def test_import_list_filters_by_status(db: None) -> None:
    # given
    ImportBatch.objects.create(
        kind="orders", source="a", path="a.csv", status="rejected", started_at=timezone.now()
    )
    ImportBatch.objects.create(
        kind="orders", source="b", path="b.csv", status="committed", started_at=timezone.now()
    )

    # when
    text = text_of(
        client_for(Role.ANALYST).get("/imports/", {"status": "committed"}).content.decode()
    )

    # then
    assert "b.csv" in text
    assert "a.csv" not in text


def test_audit_list_is_paged_and_filtered(customer_file: CustomerFile) -> None:
    # given
    client = client_for(Role.AUDITOR)
    customer_id: int = customer_file.customer.pk

    # when
    everything = text_of(client.get("/audit/").content.decode())
    for_customer = text_of(
        client.get("/audit/", {"customer": str(customer_id), "action": "update"}).content.decode()
    )
    imports_only = text_of(client.get("/audit/", {"action": "import"}).content.decode())

    # then
    assert f"ops-lead Update customer:{customer_id} {customer_id} tags changed tags" in everything
    assert "Showing 1–1 of 1" in for_customer
    assert "No audit entries." in imports_only
    assert AuditEvent.objects.count() == 1


# --- filters ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "currency", "expected"),
    [
        ("1288.5", "CNY", "¥1,288.50"),
        ("0", "CNY", "¥0.00"),
        ("-20", "CNY", "-¥20.00"),
        ("12", "USD", "USD 12.00"),
        (None, "CNY", "—"),
    ],
)
def test_money_filter(value: str | None, currency: str, expected: str) -> None:
    assert money(value, currency) == expected


def test_choice_filter_picks_the_language_half() -> None:
    from django.utils import translation

    with translation.override("zh-hans"):
        assert choice("待客户回复 Pending customer") == "待客户回复"
    with translation.override("en"):
        assert choice("待客户回复 Pending customer") == "Pending customer"
        assert choice("App push") == "App push"


def test_stars_filter() -> None:
    assert stars(4) == "★★★★☆"
    assert stars(None) == ""
