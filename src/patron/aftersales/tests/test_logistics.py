"""Logistics: the carriers' signed webhook (accepted, refused, replayed without effect), what the
scans do to the shipment and its order, and the monitor that finds shipments in trouble — once
per shipment and kind, with one proactive ticket and one message to the customer."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.test import Client

from patron.aftersales import rules, services
from patron.aftersales.models import LogisticsException, ShipmentEvent
from patron.aftersales.tests.conftest import DeskCalls, Shop, make_shop
from patron.audit.models import AuditEvent
from patron.commerce.models import Order, Shipment
from patron.outbox.models import Message
from patron.service.models import Ticket

pytestmark = pytest.mark.django_db

SECRET = "whsec-test"
URL = "/api/aftersales/carrier-events"
NOW = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def secret(settings: Any) -> None:
    settings.PATRON_CARRIER_WEBHOOK_SECRET = SECRET


@pytest.fixture
def in_transit(db: None) -> Shop:
    """SO-9001 shipped on 18 November (UTC), promised for the 21st, not delivered."""
    shop = make_shop(delivered_at=datetime(2026, 11, 18, 2, 0, tzinfo=UTC))
    Shipment.objects.filter(pk=shop.shipment.pk).update(
        status="in_transit",
        delivered_at=None,
        shipped_at=datetime(2026, 11, 18, 2, 0, tzinfo=UTC),
        estimated_delivery_at=datetime(2026, 11, 21, 2, 0, tzinfo=UTC),
    )
    Order.objects.filter(pk=shop.order.pk).update(status="shipped")
    shop.shipment.refresh_from_db()
    return shop


def _body(*events: dict[str, Any], tracking: str = "SF9001") -> bytes:
    return json.dumps(
        {"carrier": "SF Express", "tracking_number": tracking, "events": list(events)},
        ensure_ascii=False,
    ).encode()


def _post(
    body: bytes, *, secret: str = SECRET, timestamp: int | None = None, **headers: str
) -> Any:
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    signed = {
        "X-Patron-Timestamp": stamp,
        "X-Patron-Signature": rules.webhook_signature(secret, stamp, body),
    }
    signed.update(headers)
    return Client(headers=signed).post(URL, body, content_type="application/json")


SCAN_1 = {
    "id": "e1",
    "at": "2026-11-18T18:00:00+08:00",
    "status": "in_transit",
    "location": "上海转运中心",
}
SCAN_2 = {
    "id": "e2",
    "at": "2026-11-19T09:30:00+08:00",
    "status": "delivered",
    "location": "杭州",
    "description": "本人签收",
}


# ---------------------------------------------------------------------- the webhook


def test_a_signed_post_records_the_scans_and_moves_the_shipment(in_transit: Shop) -> None:
    # when
    response = _post(_body(SCAN_1, SCAN_2))
    # then
    assert response.status_code == 200, response.json()
    delivered = datetime(2026, 11, 19, 1, 30, tzinfo=UTC)
    assert response.json() == {
        "shipment_id": in_transit.shipment.pk,
        "created": 2,
        "duplicates": 0,
        "status": "delivered",
        "delivered_at": "2026-11-19T01:30:00Z",
    }
    assert list(
        ShipmentEvent.objects.order_by("at").values_list("carrier_event_id", "status", "location")
    ) == [("e1", "in_transit", "上海转运中心"), ("e2", "delivered", "杭州")]
    in_transit.shipment.refresh_from_db()
    order = Order.objects.get(pk=in_transit.order.pk)
    assert (in_transit.shipment.status, in_transit.shipment.delivered_at) == (
        "delivered",
        delivered,
    )
    assert (order.status, order.delivered_at) == ("delivered", delivered)


def test_a_replayed_post_changes_nothing(in_transit: Shop) -> None:
    # given
    body = _body(SCAN_1)
    first = _post(body, timestamp=int(time.time()))
    # when: the very same request again, and the same scan re-sent with a later one
    replay = _post(body, timestamp=int(time.time()))
    resent = _post(_body(SCAN_1, {**SCAN_2, "id": "e2"}))
    # then
    assert first.json()["created"] == 1
    assert (replay.status_code, replay.json()["created"], replay.json()["duplicates"]) == (
        200,
        0,
        1,
    )
    assert (resent.json()["created"], resent.json()["duplicates"]) == (1, 1)
    assert ShipmentEvent.objects.count() == 2


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("wrong_secret", "the signature does not match the request"),
        ("tampered", "the signature does not match the request"),
        ("old", "X-Patron-Timestamp is more than 300 seconds away from now"),
        ("unsigned", "the X-Patron-Timestamp and X-Patron-Signature headers are required"),
        ("not_configured", "the carrier webhook is not configured (PATRON_CARRIER_WEBHOOK_SECRET)"),
    ],
)
def test_a_post_that_is_not_signed_right_is_refused_and_records_nothing(
    in_transit: Shop, settings: Any, case: str, message: str
) -> None:
    # given
    body = _body(SCAN_1)
    # when
    if case == "wrong_secret":
        response = _post(body, secret="guess")
    elif case == "tampered":
        stamp = str(int(time.time()))
        response = Client(
            headers={
                "X-Patron-Timestamp": stamp,
                "X-Patron-Signature": rules.webhook_signature(SECRET, stamp, body),
            }
        ).post(URL, _body({**SCAN_1, "status": "delivered"}), content_type="application/json")
    elif case == "old":
        response = _post(body, timestamp=int(time.time()) - 301)
    elif case == "unsigned":
        response = Client().post(URL, body, content_type="application/json")
    else:
        settings.PATRON_CARRIER_WEBHOOK_SECRET = ""
        response = _post(body)
    # then
    assert response.status_code == 401
    assert response.json() == {"code": "signature_refused", "message": message, "details": None}
    assert not ShipmentEvent.objects.exists()
    in_transit.shipment.refresh_from_db()
    assert in_transit.shipment.status == "in_transit"


def test_a_users_token_is_no_substitute_for_the_signature(in_transit: Shop) -> None:
    from patron.account.services import token_create
    from patron.conftest import make_user

    # when
    token = token_create(user=make_user("administrator"))
    response = Client(headers={"Authorization": f"Bearer {token}"}).post(
        URL, _body(SCAN_1), content_type="application/json"
    )
    # then
    assert response.status_code == 401
    assert not ShipmentEvent.objects.exists()


def test_an_unknown_tracking_number_is_404_and_a_bad_scan_422(in_transit: Shop) -> None:
    # when
    unknown = _post(_body(SCAN_1, tracking="NOPE"))
    bad = _post(_body({**SCAN_1, "status": "teleported"}))
    # then
    assert unknown.status_code == 404
    assert unknown.json()["message"] == "no shipment with tracking number 'NOPE' (SF Express)"
    assert bad.status_code == 422
    assert "body.body.events.0.status" in bad.json()["message"]


def test_an_older_scan_arriving_after_the_delivery_does_not_undo_it(in_transit: Shop) -> None:
    # given
    _post(_body(SCAN_2))
    # when
    _post(_body(SCAN_1))
    # then
    in_transit.shipment.refresh_from_db()
    assert in_transit.shipment.status == "delivered"


# ---------------------------------------------------------------------- the monitor


def _scan(shop: Shop, at: datetime, status: str = "in_transit", event_id: str = "s1") -> None:
    services.carrier_scans_record(
        carrier="SF Express",
        tracking_number="SF9001",
        scans=[services.CarrierScan(event_id=event_id, at=at, status=status)],
    )


def test_a_shipment_in_trouble_gets_one_exception_per_kind_one_ticket_and_one_message(
    in_transit: Shop, desk: DeskCalls
) -> None:
    # given: last scan 50 hours before NOW, and promised for an hour before NOW
    _scan(in_transit, NOW - timedelta(hours=50))
    Shipment.objects.filter(pk=in_transit.shipment.pk).update(
        estimated_delivery_at=NOW - timedelta(hours=1)
    )
    # when
    first = services.logistics_check(now=NOW)
    second = services.logistics_check(now=NOW + timedelta(minutes=30))
    # then
    assert (first.found, first.tickets_opened, first.customers_told) == (2, 2, 2)
    assert (second.found, second.tickets_opened, second.resolved) == (0, 0, 0)
    exceptions = list(LogisticsException.objects.order_by("kind"))
    assert [(e.kind, e.status, e.detected_at) for e in exceptions] == [
        ("late", "open", NOW),
        ("no_scan", "open", NOW),
    ]
    assert exceptions[1].detail == (
        "no scan for 50 hours (since 2026-11-18 08:00; the limit is 48)"
    )
    assert len(desk.calls) == 1  # the second exception shares the shipment's ticket
    call = desk.calls[0]
    assert {
        k: call[k] for k in ("customer_id", "channel", "category", "order_id", "actor_label")
    } == {
        "customer_id": in_transit.customer.pk,
        "channel": "web",
        "category": "logistics",
        "order_id": in_transit.order.pk,
        "actor_label": "logistics monitor",
    }
    assert "SO-9001" in call["subject"] and "SF9001" in call["body"]
    assert {e.ticket_id for e in exceptions} == {Ticket.objects.get().pk}
    assert Message.objects.filter(template="logistics.exception").count() == 1
    assert AuditEvent.objects.filter(entity_type="aftersales.logistics_exception").count() == 2


def test_a_failed_delivery_scan_is_an_exception(in_transit: Shop, desk: DeskCalls) -> None:
    # given
    _scan(in_transit, NOW - timedelta(hours=2), status="failed_delivery")
    # when
    result = services.logistics_check(now=NOW)
    # then
    assert result.found == 1
    found = LogisticsException.objects.get()
    assert (found.kind, found.detail) == (
        "failed_delivery",
        "the carrier reported a failed delivery at 2026-11-20 08:00",
    )


def test_exceptions_resolve_once_the_parcel_is_delivered(in_transit: Shop, desk: DeskCalls) -> None:
    # given
    _scan(in_transit, NOW - timedelta(hours=50))
    services.logistics_check(now=NOW)
    _scan(in_transit, NOW + timedelta(hours=1), status="delivered", event_id="s2")
    # when
    result = services.logistics_check(now=NOW + timedelta(hours=2))
    # then
    assert result.resolved == 1
    assert list(LogisticsException.objects.values_list("status", "resolved_at")) == [
        ("resolved", NOW + timedelta(hours=2))
    ]


def test_when_the_desk_refuses_the_reason_is_kept_and_the_next_run_tries_again(
    in_transit: Shop, desk: DeskCalls
) -> None:
    # given
    _scan(in_transit, NOW - timedelta(hours=50))
    desk.refuse = True
    first = services.logistics_check(now=NOW)
    waiting = LogisticsException.objects.get()
    # when
    desk.refuse = False
    second = services.logistics_check(now=NOW + timedelta(minutes=30))
    # then
    assert (first.tickets_opened, first.tickets_waiting) == (0, 1)
    assert (waiting.ticket_id, waiting.ticket_error) == (None, "the desk is closed for maintenance")
    assert (second.found, second.tickets_opened, second.tickets_waiting) == (0, 1, 0)
    found = LogisticsException.objects.get()
    assert (found.ticket_id, found.ticket_error) == (Ticket.objects.get().pk, "")
    assert Message.objects.filter(template="logistics.exception").count() == 1


def test_without_the_desks_ticket_open_the_exception_waits_for_it(
    in_transit: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: the service desk does not offer ticket_open (yet)
    import patron.service as service_package

    try:
        import patron.service.services as desk_services
    except ImportError:
        pass
    else:
        monkeypatch.delattr(desk_services, "ticket_open", raising=False)
    monkeypatch.setattr(service_package, "services", None, raising=False)
    _scan(in_transit, NOW - timedelta(hours=50))
    # when
    result = services.logistics_check(now=NOW)
    # then
    assert (result.found, result.tickets_opened, result.customers_told) == (1, 0, 1)
    assert LogisticsException.objects.get().ticket_error == (
        "the service desk cannot open tickets yet (ticket_open)"
    )


def test_old_shipments_are_history_not_watched(in_transit: Shop, desk: DeskCalls) -> None:
    # given: sent and promised more than 30 days before NOW, never delivered
    Shipment.objects.filter(pk=in_transit.shipment.pk).update(
        shipped_at=NOW - timedelta(days=60), estimated_delivery_at=NOW - timedelta(days=57)
    )
    # when
    result = services.logistics_check(now=NOW)
    # then
    assert (result.watched, result.found) == (0, 0)
    assert desk.calls == []


def test_the_job_runs_the_monitor_as_of_its_slot(in_transit: Shop, desk: DeskCalls) -> None:
    from patron.aftersales.tasks import check_logistics

    # given
    _scan(in_transit, NOW - timedelta(hours=50))
    # when
    result = check_logistics.call(as_of="2026-11-20T10:00:00+08:00")
    again = check_logistics.call(as_of="2026-11-20T10:30:00+08:00")
    # then
    assert result["found"] == 1
    assert again["found"] == 0
    assert LogisticsException.objects.get().detected_at == NOW


def test_the_real_service_desk_opens_the_proactive_ticket(in_transit: Shop) -> None:
    # given: the service desk's own ticket_open, when it is there
    desk_services = pytest.importorskip("patron.service.services")
    if not hasattr(desk_services, "ticket_open"):
        pytest.skip("the service desk does not offer ticket_open yet")
    from patron.service.models import TicketMessage

    if hasattr(desk_services, "desk_seed"):
        desk_services.desk_seed()  # its categories, "logistics" among them
    _scan(in_transit, NOW - timedelta(hours=50))
    # when
    result = services.logistics_check(now=NOW)
    # then
    assert LogisticsException.objects.get().ticket_error == ""
    assert (result.found, result.tickets_opened) == (1, 1)
    ticket = Ticket.objects.get()
    assert LogisticsException.objects.get().ticket == ticket
    assert (ticket.customer_id, ticket.order_id, ticket.channel, ticket.is_complaint) == (
        in_transit.customer.pk,
        in_transit.order.pk,
        "web",
        False,
    )
    first = TicketMessage.objects.filter(ticket=ticket).order_by("id").first()
    assert first is not None and first.author_label == "logistics monitor"
