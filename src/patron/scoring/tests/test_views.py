"""The model pages: runs and clusters, the back-test report, grade policies (list, read, edit,
preview, apply), who may open them, and the reasons' Chinese translations.

Most tests use a hand-made score run (fast, exact); the ones marked ``slow`` import the CDNOW
sample and run the real pipeline, read through ADBC, so their data must be committed.
"""

from __future__ import annotations

import html
import json
import re
import string
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from django.conf import settings
from django.test import Client
from django.utils import translation

from patron.account.roles import Role
from patron.audit.models import AuditEvent
from patron.conftest import NO_ROLE, PASSWORD, CustomerFile, make_customer, make_user
from patron.intelligence.explain import Reason, render
from patron.scoring.models import CustomerScore, GradePolicy, ScoreRun
from patron.scoring.policies import policy_active, policy_preview
from patron.scoring.selectors import reasons_render
from patron.scoring.writeback import reasons_write

ADMINISTRATOR = Role.ADMINISTRATOR.value
OPERATIONS_MANAGER = Role.OPERATIONS_MANAGER.value
SERVICE_AGENT = Role.SERVICE_AGENT.value
RISK_ANALYST = Role.RISK_ANALYST.value
MARKETER = Role.MARKETER.value
AUDITOR = Role.AUDITOR.value
ANALYST = Role.ANALYST.value
ROLES = [role.value for role in Role] + [NO_ROLE]
MAY_VIEW_MODELS = {ADMINISTRATOR, OPERATIONS_MANAGER, RISK_ANALYST, MARKETER, AUDITOR, ANALYST}
MAY_CHANGE_POLICY = {ADMINISTRATOR, OPERATIONS_MANAGER}

CDNOW_AS_OF = date(1997, 10, 1)


def client_for(role: str, *, language: str = "en") -> Client:
    client = Client(headers={"accept-language": language})
    client.force_login(make_user(role))
    return client


def text_of(page: str) -> str:
    """Visible text, whitespace collapsed."""
    without_tags = re.sub(r"<script.*?</script>|<[^>]+>", " ", page, flags=re.S)
    return html.unescape(re.sub(r"\s+", " ", without_tags).strip())


def chart_of(page: str, chart_id: str) -> dict[str, Any]:
    """The ECharts option a page wrote with ``json_script``."""
    found = re.search(rf'<script id="{chart_id}" type="application/json">(.*?)</script>', page)
    assert found, f"no chart {chart_id}"
    return dict(json.loads(found.group(1)))


def make_run() -> ScoreRun:
    """A finished nightly run, as ``score_customers`` records it, and three scored customers."""
    policy = policy_active()
    run = ScoreRun.objects.create(
        as_of=date(2026, 11, 1),
        status=ScoreRun.Status.COMPLETED,
        started_at=datetime(2026, 11, 1, 1, 0, tzinfo=UTC),
        finished_at=datetime(2026, 11, 1, 1, 1, tzinfo=UTC),
        customers=20,
        policy=policy,
        parameters={
            "bgnbd": {"r": 0.24, "alpha": 4.4, "a": 0.79, "b": 2.4},
            "credit": {"model": "scorecard"},
            "churn": {"model": "lightgbm"},
            "clusters": {
                "k": 2,
                "silhouette": {"2": 0.41, "3": 0.3},
                "tree_fidelity": 0.93,
                "tree_rules": [
                    "spend ≤ 29.4 → cluster 0 (low spend; 12 customers, 99 % of them in it)",
                    "spend > 29.4 → cluster 1 (high spend; 8 customers, 90 % of them in it)",
                ],
                # the same rules as data, as runs store them now
                "tree_leaves": [
                    {
                        "conditions": [["spend", None, 29.4, False]],
                        "cluster": 0,
                        "name": "low spend",
                        "support": 12,
                        "purity": 0.99,
                    },
                    {
                        "conditions": [["spend", 29.4, None, False]],
                        "cluster": 1,
                        "name": "high spend",
                        "support": 8,
                        "purity": 0.9,
                    },
                ],
            },
        },
        seconds={"extract": 0.25, "features": 1.65, "grades": 0.1},
        summary={
            "grade_counts": {"core": 3, "potential": 5, "ordinary": 12},
            "moves": None,
            "pending_moves": {
                "grades": ["core", "potential", "ordinary"],
                "matrix": [[2, 1, 0], [0, 4, 0], [0, 2, 11]],
                "up": 2,
                "down": 1,
                "unchanged": 17,
                "new": 0,
                "left": 0,
            },
            "regrade": False,
            "history": {"new": 0, "changed": 0},
            "clusters": [
                {
                    "cluster": 0,
                    "name": "low spend",
                    "size": 12,
                    "share": 0.6,
                    "distinctive": ["spend"],
                    "traits": ["spend 57 % below the median"],
                },
                {
                    "cluster": 1,
                    "name": "high spend",
                    "size": 8,
                    "share": 0.4,
                    "distinctive": ["spend"],
                    "traits": ["spend 3.7× the median"],
                    "comparisons": [
                        {
                            "feature": "spend",
                            "value": 370.0,
                            "typical": 100.0,
                            "statistic": "median",
                        }
                    ],
                },
            ],
        },
    )
    for grade in ("core", "potential", "potential"):
        CustomerScore.objects.create(
            customer=make_customer(), run=run, as_of=run.as_of, grade=grade, credit_score=700
        )
    return run


@pytest.fixture
def scored(db: None) -> ScoreRun:
    return make_run()


# --- who may open what --------------------------------------------------------------------------

# page: (url, roles allowed, status for them). A report with a holdout of 0 days is refused after
# the permission check (422) without fitting anything. The apply page previews the moves first:
# with no customer scored it answers 409, which still shows the role got past the check.
PAGES: dict[str, tuple[str, set[str], int]] = {
    "models": ("/models/", MAY_VIEW_MODELS, 200),
    "report form": ("/models/report/", MAY_VIEW_MODELS, 200),
    "report run": ("/models/report/?as_of=2026-11-01&holdout_days=0", MAY_VIEW_MODELS, 422),
    "grade policies": ("/models/grade-policy/", MAY_VIEW_MODELS, 200),
    "grade policy v1": ("/models/grade-policy/1/", MAY_VIEW_MODELS, 200),
    "new grade policy": ("/models/grade-policy/new/", MAY_CHANGE_POLICY, 200),
    "apply preview": ("/models/grade-policy/1/apply/", MAY_CHANGE_POLICY, 409),
}
#: Pages that read the scores through their own connection (ADBC): their tests commit.
READS_SCORES = {"apply preview"}


def check_page(role: str, page: str) -> None:
    # given
    policy_active()
    url, allowed, status = PAGES[page]

    # when
    response = client_for(role).get(url)

    # then
    assert response.status_code == (status if role in allowed else 403)
    if response.status_code == 403:
        assert "You do not have permission to see this page" in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("page", [page for page in PAGES if page not in READS_SCORES])
def test_pages(lake: Path, role: str, page: str) -> None:
    check_page(role, page)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("page", sorted(READS_SCORES))
def test_pages_that_read_the_scores(lake: Path, role: str, page: str) -> None:
    check_page(role, page)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("role", ROLES)
def test_saving_and_applying_a_policy_needs_the_permission(role: str) -> None:
    # given
    rules = dict(policy_active().rules)
    client = client_for(role)
    form = {"editor": "json", "rules_json": json.dumps(rules), "note": "copy", "action": "save"}

    # when
    saved = client.post("/models/grade-policy/new/", form)
    applied = client.post("/models/grade-policy/1/apply/")

    # then: allowed roles get through to the services (nothing is scored here: 409 on apply)
    if role in MAY_CHANGE_POLICY:
        assert (saved.status_code, saved["Location"]) == (302, "/models/grade-policy/2/")
        assert applied.status_code == 409
        assert list(GradePolicy.objects.values_list("version", "is_active")) == [
            (2, False),
            (1, True),
        ]
    else:
        assert (saved.status_code, applied.status_code) == (403, 403)
        assert GradePolicy.objects.count() == 1


@pytest.mark.parametrize("page", list(PAGES))
def test_pages_send_anonymous_users_to_login(db: None, page: str) -> None:
    # when
    response = Client().get(PAGES[page][0])

    # then
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("role", "shows_models"), [(ANALYST, True), (MARKETER, True), (SERVICE_AGENT, False)]
)
def test_the_top_bar_links_the_models_page(role: str, shows_models: bool) -> None:
    # when
    page = client_for(role).get("/customers/").content.decode()

    # then
    assert ('href="/models/"' in page) is shows_models


# --- models page --------------------------------------------------------------------------------


def test_models_page_shows_runs_clusters_and_grades(scored: ScoreRun) -> None:
    # when
    response = client_for(ANALYST).get("/models/")

    # then
    page = response.content.decode()
    text = text_of(page)
    assert response.status_code == 200
    row = text_of(page.split(f'data-testid="run-{scored.pk}"')[1].split("</tr>")[0])
    assert row == (
        f"> {scored.pk} 2026-11-01 scoring Completed 20 scorecard lightgbm v1 3 / 5 / 12 "
        "pending: 2 up, 1 down extract 0.25 · features 1.65 · grades 0.10 2.0 s in all "
        "2026-11-01 09:00"
    )
    assert "2 clusters by k-means · silhouette 0.410" in text
    assert "0 low spend 12 60 % spend 57 % below the median" in text
    assert "1 high spend 8 40 % spend 3.7× the median" in text
    assert "fidelity 93 %" in text
    assert "spend > 29.4 → cluster 1 (high spend; 8 customers, 90 % of them in it)" in text
    assert "3 customers scored · grade policy v1" in text
    chart = chart_of(page, "grade-chart")
    assert chart["xAxis"]["data"] == ["Core", "Potential", "Ordinary"]
    assert chart["series"][0]["data"] == [1, 2, 0]
    assert "vendor/echarts/echarts.min.js" in page


def test_models_page_before_any_run(db: None) -> None:
    # when
    page = client_for(ANALYST).get("/models/").content.decode()

    # then
    text = text_of(page)
    assert "No scoring runs yet." in text
    assert "No customer has been scored yet: run `patron score`." in text
    assert "No clusters yet: they are fitted by each scoring run." in text
    assert "echarts.min.js" not in page


def test_models_page_in_chinese(scored: ScoreRun) -> None:
    # when
    text = text_of(client_for(ANALYST, language="zh-hans").get("/models/").content.decode())

    # then
    assert "模型" in text
    assert "最近的评分运行" in text
    assert "待定：2 升，1 降" in text
    # cluster traits and tree rules kept as data are worded in Chinese; a run stored with
    # English lines only keeps them
    assert "1 高消费 8 40 % 消费为中位数的 3.7 倍" in text
    assert "0 低消费 12 60 % spend 57 % below the median" in text
    assert "消费 ≤ 29.4 → 第 0 群组（低消费；12 位客户，其中 99 % 属于该群组）" in text
    assert "消费 > 29.4 → 第 1 群组（高消费；8 位客户，其中 90 % 属于该群组）" in text


# --- back-test report ---------------------------------------------------------------------------


def test_report_form_suggests_a_cut_off_that_leaves_a_holdout(customer_file: CustomerFile) -> None:
    # given: the last order was placed on 2024-05-01 (10:00 in Shanghai)

    # when
    response = client_for(ANALYST).get("/models/report/")

    # then
    page = response.content.decode()
    assert response.status_code == 200
    assert 'name="as_of" value="2024-02-02"' in page
    assert 'name="holdout_days" value="90"' in page
    assert "Purchases run until 2024-05-01" in text_of(page)
    assert 'hx-indicator="#report-loading"' in page
    assert "tens of seconds on a million customers" in text_of(page)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"as_of": "2024-13-01", "holdout_days": "90"}, "as_of: expected a date as YYYY-MM-DD"),
        ({"as_of": "2024-02-01", "holdout_days": "ninety"}, "holdout_days: expected a whole"),
        ({"as_of": "2024-02-01", "holdout_days": "0"}, "holdout_days: must be between 1 and 3650"),
        ({"as_of": "2024-02-01", "holdout_days": "90"}, "there are no purchases to fit models on"),
    ],
)
@pytest.mark.django_db(transaction=True)  # the report reads the orders through ADBC
def test_report_errors_are_shown_on_the_page(
    lake: Path, query: dict[str, str], message: str
) -> None:
    # given
    client = client_for(ANALYST)

    # when
    full = client.get("/models/report/", query)
    partial = client.get("/models/report/", query, headers={"HX-Request": "true"})

    # then: the page keeps the form; htmx gets the message with a 200 so that it swaps it in
    assert full.status_code == 422
    assert message in text_of(full.content.decode())
    assert f'value="{query["as_of"]}"' in full.content.decode()
    assert partial.status_code == 200
    assert message in text_of(partial.content.decode())
    assert "<form" not in partial.content.decode()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_report_page_draws_every_section_for_cdnow(lake: Path) -> None:
    # given
    cdnow_import()

    # when
    response = client_for(ANALYST).get(
        "/models/report/",
        {"as_of": CDNOW_AS_OF.isoformat(), "holdout_days": "273"},
        headers={"HX-Request": "true"},
    )

    # then
    page = response.content.decode()
    text = text_of(page)
    assert response.status_code == 200
    assert "<nav" not in page  # the partial only
    tracking = chart_of(page, "tracking-chart")
    assert tracking["xAxis"]["data"][:3] == [5, 10, 15]
    assert tracking["xAxis"]["data"][-1] == 273
    assert [s["name"] for s in tracking["series"]] == ["Predicted", "Actual"]
    assert tracking["series"][1]["data"][-1] == 1882  # the paper's holdout repeat purchases
    assert tracking["series"][0]["data"][-1] == pytest.approx(1653.4, abs=0.1)
    calibration = chart_of(page, "calibration-chart")
    assert [s["name"] for s in calibration["series"]] == ["Predicted churn %", "Observed churn %"]
    assert len(calibration["xAxis"]["data"]) == len(calibration["series"][1]["data"]) >= 5
    stability = chart_of(page, "stability-chart")
    assert stability["yAxis"]["data"] == ["Core", "Potential", "Ordinary"]
    cells = stability["series"][0]["data"]
    assert len(cells) == 9 and sum(cell[2] for cell in cells) == 2357
    unchanged = sum(cell[2] for cell in cells if cell[0] == cell[1])
    assert f"{round(100 * unchanged / 2357)} % kept their grade" in text
    for name, value in {"r": "0.2426", "alpha": "4.4136", "a": "0.7929", "b": "2.4259"}.items():
        assert f'data-testid="param-{name}">{value}<' in page
    assert 'data-testid="param-ll">-9582.4<' in page
    assert 'data-testid="report-pareto"' in page
    assert 'data-testid="pareto-predicted">1666<' in page  # beside BG/NBD's 1,653
    assert 'data-testid="param-p">6.2496<' in page
    assert "Repeat purchases 1,653 1,882 0.626" in text
    assert "Credit score Model scorecard AUC — KS —" in text
    assert "AUC and KS need at least one bad and one good outcome in the holdout." in text
    assert "BG/NBD (1 − P(alive))" in text
    assert len(chart_of(page, "report-grade-chart")["series"][0]["data"]) == 3


# --- grade policies -----------------------------------------------------------------------------


def test_policy_list_marks_the_active_version(db: None) -> None:
    # given
    policy_active()
    GradePolicy.objects.create(
        version=2, rules=policy_active().rules, note="draft", created_by="li"
    )

    # when
    page = client_for(MARKETER).get("/models/grade-policy/").content.decode()

    # then
    rows = [text_of(row) for row in page.split("<tr data-testid=")[1:]]
    assert rows[0].startswith(
        '"policy-v2"> v2 inactive draft 12-month value 0.4 · credit score 0.2'
    )
    assert "core ≥ 0.72, potential ≥ 0.6 li" in rows[0]
    assert rows[1].startswith('"policy-v1"> v1 active Patron\'s default policy')
    assert 'data-testid="new-policy"' not in page  # a marketer may read, not edit


def test_policy_page_shows_the_rules_in_plain_words(db: None) -> None:
    # given
    policy_active()

    # when
    page = client_for(OPERATIONS_MANAGER).get("/models/grade-policy/1/").content.decode()

    # then
    text = text_of(page)
    assert "12-month value clv_12m 0.4 40 % higher is better" in text
    assert "word of mouth word_of_mouth 0.1 10 % higher is better" in text
    assert "Core from 0.72 Potential from 0.6 Hysteresis ± 0.02" in text
    assert "Core requires credit score >= 600" in text
    assert "Core requires chance of still being active >= 0.3" in text
    assert 'data-testid="edit-policy"' in page
    assert 'data-testid="apply-policy"' not in page  # already active


def test_unknown_policy_version_is_404(db: None) -> None:
    # when
    response = client_for(ANALYST).get("/models/grade-policy/9/")

    # then
    assert response.status_code == 404
    assert "grade policy v9 does not exist" in response.content.decode()


def edit_form(client: Client, url: str = "/models/grade-policy/new/") -> dict[str, str]:
    """The structured editor's fields as the page fills them in (what a browser would post)."""
    page = client.get(url).content.decode()
    form = page.split('data-testid="policy-form"')[1].split("</form>")[0]
    data: dict[str, str] = {}
    for tag in re.findall(r"<input[^>]*>", form):
        name = re.search(r'name="([^"]+)"', tag)
        if not name or name.group(1) == "csrfmiddlewaretoken":
            continue
        if 'type="checkbox"' in tag:
            if " checked" in tag:
                data[name.group(1)] = "on"
            continue
        value = re.search(r'value="([^"]*)"', tag)
        data[name.group(1)] = html.unescape(value.group(1)) if value else ""
    for name, options in re.findall(r'<select name="([^"]+)"[^>]*>(.*?)</select>', form, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected', options) or re.search(
            r'<option value="([^"]*)"', options
        )
        assert chosen
        data[name] = html.unescape(chosen.group(1))
    return data


def test_edit_form_starts_from_the_active_policy(db: None) -> None:
    # given
    policy_active()

    # when
    data = edit_form(client_for(ADMINISTRATOR))

    # then
    assert {k: v for k, v in data.items() if k.startswith("weight-") and v} == {
        "weight-clv_12m": "0.4",
        "weight-credit_score": "0.2",
        "weight-p_alive": "0.2",
        "weight-rfm_m": "0.1",
        "weight-word_of_mouth": "0.1",
    }
    assert (data["core_min"], data["potential_min"], data["hysteresis"]) == ("0.72", "0.6", "0.02")
    assert [data[f"rule-{i}-column"] for i in range(4)] == ["credit_score", "p_alive", "", ""]
    assert (data["rule-0-op"], data["rule-0-value"]) == (">=", "600")


@pytest.mark.parametrize(
    ("change", "message", "invalid_input"),
    [
        (
            {"core_min": "0.4"},
            "grade policy: thresholds.core_min: must be above potential_min",
            'id="id_core_min" name="core_min" value="0.4" class="form-control form-control-sm is-invalid"',
        ),
        (
            {"weight-clv_12m": "lots"},
            "grade policy: inputs.clv_12m: must be a number, got 'lots'",
            'name="weight-clv_12m" value="lots" class="form-control form-control-sm is-invalid"',
        ),
        (
            {"rule-1-value": "-"},
            "grade policy: requires.core[1].value: must be a number, got '-'",
            'name="rule-1-value" value="-" aria-label="Value" class="form-control form-control-sm is-invalid"',
        ),
        (
            {"hysteresis": "0.2"},
            "grade policy: hysteresis: must be less than half the gap",
            'id="id_hysteresis" name="hysteresis" value="0.2" class="form-control form-control-sm is-invalid"',
        ),
    ],
)
@pytest.mark.parametrize("action", ["save", "preview"])
def test_invalid_rules_show_the_field_error_keep_the_input_and_save_nothing(
    db: None, change: dict[str, str], message: str, invalid_input: str, action: str
) -> None:
    # given
    policy_active()
    client = client_for(OPERATIONS_MANAGER)
    form = {**edit_form(client), **change, "note": "my attempt", "action": action}
    audit_before = AuditEvent.objects.count()

    # when
    response = client.post("/models/grade-policy/new/", form)

    # then
    page = response.content.decode()
    assert response.status_code == 422
    assert message in text_of(page.split('data-testid="policy-error">')[1].split("</div>")[0])
    assert invalid_input in page
    assert 'name="note" maxlength="200" value="my attempt"' in page
    assert GradePolicy.objects.count() == 1
    assert AuditEvent.objects.count() == audit_before


def test_invalid_json_keeps_the_text_and_saves_nothing(db: None) -> None:
    # given
    policy_active()
    client = client_for(ADMINISTRATOR)
    rules = {**policy_active().rules, "inputs": {"shoe_size": 1.0}}

    # when
    broken = client.post(
        "/models/grade-policy/new/", {"editor": "json", "rules_json": "{oops", "action": "save"}
    )
    unknown = client.post(
        "/models/grade-policy/new/",
        {"editor": "json", "rules_json": json.dumps(rules), "action": "save"},
    )

    # then
    assert broken.status_code == unknown.status_code == 422
    assert "grade policy: not valid JSON" in text_of(broken.content.decode())
    assert "{oops</textarea>" in broken.content.decode()
    assert "unknown score column(s) shoe_size" in text_of(unknown.content.decode())
    assert GradePolicy.objects.count() == 1


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_edit_preview_save_and_apply_a_policy(lake: Path) -> None:
    # given: CDNOW scored under the default policy (v1)
    cdnow_score()
    client = client_for(OPERATIONS_MANAGER)
    form = {**edit_form(client), "core_min": "0.65", "note": "more core customers"}
    manager = make_user(OPERATIONS_MANAGER)
    expected = policy_preview(user=manager, rules=edited_rules(policy_active().rules))
    assert expected["up"] > 0

    # when: preview
    preview = client.post("/models/grade-policy/new/", {**form, "action": "preview"})

    # then: the moves are shown and nothing is saved
    page = preview.content.decode()
    assert preview.status_code == 200
    assert moves_shown(page) == (expected["up"], expected["down"], expected["unchanged"], 0)
    assert chart_cells(page) == expected["matrix"]
    assert 'id="id_core_min" name="core_min" value="0.65"' in page
    assert GradePolicy.objects.count() == 1

    # when: save
    saved = client.post("/models/grade-policy/new/", {**form, "action": "save"})

    # then: a new inactive version
    assert (saved.status_code, saved["Location"]) == (302, "/models/grade-policy/2/")
    version = GradePolicy.objects.get(version=2)
    assert (version.is_active, version.note, version.rules["thresholds"]["core_min"]) == (
        False,
        "more core customers",
        0.65,
    )
    detail = client.get("/models/grade-policy/2/").content.decode()
    assert "Grade policy v2 saved. Preview who would move, then apply it." in detail
    assert 'href="/models/grade-policy/2/apply/"' in detail

    # when: the apply page, before applying
    confirm = client.get("/models/grade-policy/2/apply/").content.decode()

    # then
    assert moves_shown(confirm) == (expected["up"], expected["down"], expected["unchanged"], 0)
    assert GradePolicy.objects.get(is_active=True).version == 1

    # when: apply
    applied = client.post("/models/grade-policy/2/apply/")

    # then
    assert (applied.status_code, applied["Location"]) == (302, "/models/grade-policy/2/")
    assert GradePolicy.objects.get(is_active=True).version == 2
    after = text_of(client.get("/models/grade-policy/2/").content.decode())
    assert (
        f"Grade policy v2 is now active: {expected['up']} customers moved up, "
        f"{expected['down']} down, {expected['unchanged']} kept their grade" in after
    )
    assert CustomerScore.objects.filter(grade="core").count() == sum(
        row[0] for row in expected["matrix"]
    )
    actions = list(
        AuditEvent.objects.filter(entity_type="scoring.gradepolicy").values_list(
            "action", flat=True
        )
    )
    assert sorted(actions) == ["grade_policy.apply", "grade_policy.save"]
    runs = text_of(client.get("/models/").content.decode())
    assert f"policy applied Completed 2357 — — v2 — {expected['up']} up" in runs


def edited_rules(rules: dict[str, Any]) -> dict[str, Any]:
    return {**rules, "thresholds": {**rules["thresholds"], "core_min": 0.65}}


def moves_shown(page: str) -> tuple[int, int, int, int]:
    def number(name: str) -> int:
        found = re.search(rf'data-testid="moves-{name}">(\d+)<', page)
        assert found, name
        return int(found.group(1))

    return (number("up"), number("down"), number("unchanged"), number("new"))


def chart_cells(page: str) -> list[list[int]]:
    cells = chart_of(page, "moves-chart")["series"][0]["data"]
    matrix = [[0] * 3 for _ in range(3)]
    for column, row, value in cells:
        matrix[row][column] = value
    return matrix


# --- data for the slow tests --------------------------------------------------------------------


def cdnow_import() -> None:
    from patron.ingest.adapters.cdnow import cdnow_parts
    from patron.ingest.services import import_parts
    from patron.ingest.tests.conftest import shared_data

    path = shared_data("cdnow", "CDNOW_sample.txt")
    summary = import_parts(label="cdnow", source="cdnow", path=str(path), parts=cdnow_parts(path))
    assert summary.ok


def cdnow_score() -> ScoreRun:
    from patron.scoring.services import score_customers

    cdnow_import()
    return score_customers(as_of=CDNOW_AS_OF)


# --- reasons in Chinese -------------------------------------------------------------------------

REASON_SOURCES = (
    "intelligence/reason_texts.py",
    "scoring/services.py",
)


def reason_templates() -> list[str]:
    """Every template marked ``N_(...)`` in the code that writes reasons."""
    root = Path(settings.BASE_DIR)
    found = []
    for name in REASON_SOURCES:
        source = (root / name).read_text(encoding="utf-8")
        for call in re.finditer(r"\bN_\(\s*((?:\"(?:[^\"\\]|\\.)*\"\s*)+)\)", source):
            found.append(
                "".join(
                    json.loads(part) for part in re.findall(r'"(?:[^"\\]|\\.)*"', call.group(1))
                )
            )
    return found


def fields_of(template: str) -> list[tuple[str | None, str | None]]:
    return sorted(
        (name, spec) for _, name, spec, _ in string.Formatter().parse(template) if name is not None
    )


def test_every_reason_template_has_a_chinese_translation_with_the_same_fields() -> None:
    # given
    templates = reason_templates()
    assert len(templates) >= 9

    # when
    with translation.override("zh-hans"):
        translated = {template: translation.gettext(template) for template in templates}

    # then
    for template, chinese in translated.items():
        assert chinese != template, f"not translated: {template}"
        assert fields_of(chinese) == fields_of(template), template


def score_with_reasons(
    customer: Any, run: ScoreRun, reasons: dict[str, Any], **fields: Any
) -> CustomerScore:
    """A score row of ``run`` whose reasons are in the run's reasons folder, as a run writes."""
    table = pa.table(
        {"customer_id": [customer.pk], "reasons": [json.dumps(reasons, ensure_ascii=False)]}
    )
    run.reasons_folder = reasons_write(run, table)
    run.save(update_fields=["reasons_folder"])
    return CustomerScore.objects.create(customer=customer, run=run, as_of=run.as_of, **fields)


@pytest.mark.django_db
def test_a_stored_reason_is_shown_in_chinese_on_the_customer_page(lake: Path) -> None:
    # given: a score row whose reason was stored as a template with parameters
    customer = make_customer(name="陈静")
    run = make_run()
    reason = Reason(
        "bought on {purchase_days} different days, about every {gap:.0f} days; "
        "the last purchase was {days} days ago",
        {"purchase_days": 3, "gap": 106.4, "days": 60},
    ).to_json()
    score_with_reasons(customer, run, {"p_alive": [reason]}, p_alive=0.8, clv_12m=Decimal("120.00"))

    # when
    chinese = client_for(SERVICE_AGENT, language="zh-hans").get(f"/customers/{customer.pk}/")
    english = client_for(SERVICE_AGENT).get(f"/customers/{customer.pk}/")

    # then
    sentence = "在 3 个不同的日子购买过，大约每 106 天一次；最近一次购买在 60 天前"
    assert sentence in chinese.content.decode()
    assert render(reason) in english.content.decode()
    with translation.override("zh-hans"):
        assert reasons_render({"p_alive": [reason]}) == {"p_alive": [sentence]}


@pytest.mark.django_db
def test_reasons_stored_by_key_and_the_cluster_name_are_shown_in_chinese(lake: Path) -> None:
    # given: reasons as the pipeline writes them (by key, labels in both languages)
    customer = make_customer(name="王芳")
    run = make_run()
    grade_reason = {
        "key": "grade.top",
        "params": {"label": {"en": "12-month value", "zh-hans": "12 个月价值"}, "share": 8},
    }
    value_reason = {"key": "value.spent", "params": {"amount": 3219}}
    score_with_reasons(
        customer,
        run,
        {"grade": [grade_reason], "value": [value_reason]},
        grade="core",
        cluster=2,
        cluster_name="coupon-driven · occasional",
    )

    # when
    chinese = client_for(SERVICE_AGENT, language="zh-hans").get(f"/customers/{customer.pk}/")
    english = client_for(SERVICE_AGENT).get(f"/customers/{customer.pk}/")

    # then
    page = chinese.content.decode()
    assert "12 个月价值位于全部客户的前 8 %" in page
    assert "近 12 个月消费 3,219" in page
    assert "爱用券 · 偶购" in page
    english_page = english.content.decode()
    assert "12-month value in the top 8 % of customers" in english_page
    assert "spent 3,219 in the last 12 months" in english_page
    assert "coupon-driven · occasional" in english_page


# --- in a browser -------------------------------------------------------------------------------

CHROMIUM = Path("/usr/bin/chromium")


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="Chromium is not installed at /usr/bin/chromium")
@pytest.mark.django_db(transaction=True)
def test_report_page_draws_its_charts_in_a_browser(live_server: Any, lake: Path) -> None:
    # given: CDNOW imported, an analyst who logs in
    from playwright.sync_api import sync_playwright

    from patron.web.tests.browsing import CHROMIUM_ARGS

    cdnow_import()
    make_user(ANALYST, username="analyst-wu", password=PASSWORD)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(locale="en-US", viewport={"width": 1366, "height": 900})
        context.set_default_timeout(15_000)
        page = context.new_page()
        page.goto(f"{live_server.url}/models/report/")
        page.fill("input[name=username]", "analyst-wu")
        page.fill("input[name=password]", PASSWORD)
        page.click("main form button[type=submit]")
        page.wait_for_url(f"{live_server.url}/models/report/")

        # when: the back-test runs through htmx
        page.fill("#id_as_of", CDNOW_AS_OF.isoformat())
        page.fill("#id_holdout_days", "273")
        page.click("#report-form button[type=submit]")
        page.locator("#report-loading").wait_for(state="visible")
        tracking = page.locator("[data-testid=tracking-chart] svg")
        tracking.wait_for(state="visible", timeout=120_000)

        # then: ECharts drew the lines, and the address can be bookmarked
        assert tracking.locator("path").count() > 2
        assert page.locator("[data-testid=stability-chart] svg").count() == 1
        assert page.url.endswith("/models/report/?as_of=1997-10-01&holdout_days=273")
        assert page.locator("#report-loading").is_visible() is False
        context.close()
        browser.close()
