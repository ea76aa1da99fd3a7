"""Detection through the product: rules as data, alerts raised and refreshed, dismissals that
stick until there is new evidence, the after-import trigger, and the rule that no rule or model
ever restricts or blacklists anyone by itself."""

from __future__ import annotations

import importlib
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from django_tasks_db.models import DBTaskResult

from patron.account.roles import Role
from patron.audit.models import AuditEvent
from patron.conftest import at, make_customer, make_order, make_payment, make_user
from patron.customer.models import Customer
from patron.errors import NotFound, PermissionDenied, ValidationFailed
from patron.risk import detect, services
from patron.risk.detection import DEFAULT_RULES
from patron.risk.models import Alert, BlacklistEntry, DetectionRun, Restriction, RiskRule
from patron.risk.tasks import TASK_PATH, enqueue_after_import

# transaction=True: on PostgreSQL detection reads the tables through ADBC, its own connection
pytestmark = pytest.mark.django_db(transaction=True)

AS_OF = at("2026-06-01 00:00")


def _chargeback(customer: Customer, n: int, placed: datetime) -> None:
    order = make_order(
        customer, external_id=f"CB-{customer.pk}-{n}", placed_at=placed, total="199.00"
    )
    make_payment(order, method="card", amount="199.00", paid_at=placed, status="chargeback")


@pytest.fixture
def fraudster(lake: Path) -> Customer:
    customer = make_customer(name="赵六")
    _chargeback(customer, 1, at("2026-03-02 10:00"))
    _chargeback(customer, 2, at("2026-04-11 10:00"))
    honest = make_customer(name="钱七")
    order = make_order(honest, external_id="OK-1", placed_at=at("2026-03-05 10:00"), total="88")
    make_payment(order, method="alipay", amount="88", paid_at=at("2026-03-05 10:00"))
    return customer


def test_the_default_rules_are_seeded_once() -> None:
    assert detect.rules_seed() == len(DEFAULT_RULES)
    assert detect.rules_seed() == 0
    assert RiskRule.objects.count() == len(DEFAULT_RULES)
    assert dict(RiskRule.objects.values_list("code", "name_zh")) == {
        rule.code: rule.name_zh for rule in DEFAULT_RULES
    }
    assert all(rule.name_zh for rule in DEFAULT_RULES)


def test_the_migration_names_in_chinese_the_rules_we_ship() -> None:
    # The migration keeps its own copy (migrations must not import code that changes later).
    migration = importlib.import_module("patron.risk.migrations.0002_rule_name_zh")
    assert {rule.code: rule.name_zh for rule in DEFAULT_RULES} == migration.NAMES_ZH


def test_a_rule_hit_raises_one_alert_with_its_evidence_and_a_rerun_refreshes_it(
    fraudster: Customer,
) -> None:
    # when
    first = detect.detection_run(as_of=AS_OF, with_model=False)
    again = detect.detection_run(as_of=AS_OF, with_model=False)
    # then
    alert = Alert.objects.get(customer=fraudster, rule_code="PAY-CB")
    assert (alert.source, alert.status, alert.value, alert.volume) == ("rule", "open", 2.0, 2)
    assert {e["type"] for e in alert.evidence} == {"payment"}
    assert len(alert.evidence) == 2
    assert first.alerts_new >= 1 and again.alerts_new == 0 and again.alerts_updated >= 1
    assert alert.run == again
    assert not Alert.objects.exclude(customer=fraudster).filter(rule_code="PAY-CB").exists()
    assert DetectionRun.objects.count() == 2


def test_no_rule_ever_blacklists_or_restricts_anyone_by_itself(fraudster: Customer) -> None:
    # given: analysts set every rule to suggest the harshest actions
    detect.rules_seed()
    RiskRule.objects.update(action="blacklist", severity="high", threshold=0, min_volume=0)
    # when
    detect.detection_run(as_of=AS_OF, with_model=False)
    # then: alerts only, each suggesting a blacklisting that a person must decide
    assert Alert.objects.filter(customer=fraudster, suggested_action="blacklist").exists()
    assert not BlacklistEntry.objects.exists()
    assert not Restriction.objects.exists()
    assert not Alert.objects.exclude(status="open").exists()


def test_a_dismissed_alert_returns_only_with_new_evidence(fraudster: Customer) -> None:
    # given
    analyst = make_user(Role.RISK_ANALYST)
    detect.detection_run(as_of=AS_OF, with_model=False)
    alert = Alert.objects.get(customer=fraudster, rule_code="PAY-CB")
    services.alert_decide(user=analyst, alert_id=alert.pk, action="dismiss", reason="银行误判")
    # when nothing new happened
    detect.detection_run(as_of=AS_OF, with_model=False)
    # then
    assert Alert.objects.filter(customer=fraudster, rule_code="PAY-CB").count() == 1
    # when a third chargeback arrives
    _chargeback(fraudster, 3, at("2026-05-20 10:00"))
    detect.detection_run(as_of=AS_OF, with_model=False)
    # then
    fresh = Alert.objects.get(customer=fraudster, rule_code="PAY-CB", status="open")
    assert fresh.value == 3.0 and fresh.pk != alert.pk


def test_data_at_or_after_the_cutoff_is_not_read(fraudster: Customer) -> None:
    detect.detection_run(as_of=at("2026-03-02 10:00"), with_model=False)
    assert not Alert.objects.filter(rule_code="PAY-CB").exists()


def test_editing_a_rule_bumps_its_version_and_is_audited() -> None:
    # given
    analyst = make_user(Role.RISK_ANALYST)
    detect.rules_seed()
    # when
    rule = detect.rule_update(
        user=analyst, code="PAY-CB", data={"threshold": 2, "severity": "medium"}
    )
    # then
    assert (rule.threshold, rule.severity, rule.version) == (2.0, "medium", 2)
    event = AuditEvent.objects.get(entity_type="risk.rule", entity_id="PAY-CB")
    assert event.changes == {"threshold": [1.0, 2.0], "severity": ["high", "medium"]}
    assert detect.rule_update(user=analyst, code="PAY-CB", data={"threshold": 2}).version == 2


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"threshold": -1}, "rule PAY-CB.threshold: must not be negative"),
        ({"window_days": 0}, "rule PAY-CB.window_days"),
        ({"measure": "x"}, "cannot change measure"),
        ({"action": "shoot"}, "rule PAY-CB.action: one of"),
        ({"params": {"colour": 1}}, "rule PAY-CB.params: unknown colour"),
    ],
)
def test_an_invalid_rule_edit_names_the_rule_and_field(
    data: dict[str, object], message: str
) -> None:
    analyst = make_user(Role.RISK_ANALYST)
    detect.rules_seed()
    with pytest.raises(ValidationFailed, match=message):
        detect.rule_update(user=analyst, code="PAY-CB", data=data)


def test_only_analysts_edit_rules() -> None:
    detect.rules_seed()
    with pytest.raises(PermissionDenied):
        detect.rule_update(user=make_user(Role.SERVICE_AGENT), code="PAY-CB", data={"threshold": 3})
    with pytest.raises(NotFound):
        detect.rule_update(user=make_user(Role.RISK_ANALYST), code="NOPE", data={})


def test_a_backtest_compares_the_changed_rule_with_the_rule_as_it_stands(
    fraudster: Customer,
) -> None:
    analyst = make_user(Role.RISK_ANALYST)
    detect.rules_seed()
    result = detect.backtest(
        user=analyst, code="PAY-CB", data={"threshold": 3}, days=60, as_of=AS_OF
    )
    assert result["changed"] == {"threshold": 3.0}
    assert result["current"]["flagged"] == 1 and result["only_current"] == [fraudster.pk]
    assert result["proposed"]["flagged"] == 0
    assert RiskRule.objects.get(code="PAY-CB").threshold == 1.0  # nothing saved


def test_a_committed_import_queues_one_detection_run() -> None:
    assert enqueue_after_import({"orders"})
    assert not enqueue_after_import({"returns"})  # one is already waiting
    assert not enqueue_after_import({"events"})
    assert DBTaskResult.objects.filter(task_path=TASK_PATH).count() == 1


def test_the_anomaly_model_raises_model_alerts_marked_as_such(lake: Path) -> None:
    # given: 80 alike customers and one who spends a hundred times more, very often
    for i in range(80):
        c = make_customer()
        make_order(
            c,
            external_id=f"N{i}",
            placed_at=at("2026-02-01 10:00") + timedelta(days=i % 30),
            total="100",
        )
    whale = make_customer(name="大户")
    for i in range(40):
        make_order(
            whale,
            external_id=f"W{i}",
            placed_at=at("2026-01-02 10:00") + timedelta(days=3 * i),
            total="9000",
        )
    # when
    detect.detection_run(as_of=AS_OF)
    # then
    model_alerts = Alert.objects.filter(source="model")
    assert model_alerts.filter(customer=whale).exists()
    alert = model_alerts.get(customer=whale)
    assert alert.rule_code == detect.MODEL_CODE and alert.suggested_action == "watch"
    assert alert.reasons and {"feature", "value", "median"} <= set(alert.reasons[0])


def test_a_rule_name_with_nul_is_refused_naming_the_field() -> None:
    detect.rules_seed()
    rule = RiskRule.objects.get(code="PAY-CB")
    with pytest.raises(ValidationFailed, match=r"rule PAY-CB.name_zh: must not contain the NUL"):
        detect.rule_validate({"name_zh": "拒\x00付"}, base=rule)
