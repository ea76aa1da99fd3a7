"""The whole pipeline on the demo merchant, through the product: every customer scored, graded
and explained; the generator's known problem customers get clearly worse credit scores; grade
history, re-grades and grade policies behave as staff expect."""

from __future__ import annotations

import itertools
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
from django.test import Client

from patron.conftest import make_user
from patron.customer.models import Customer
from patron.demo import generate_demo
from patron.errors import Conflict, PermissionDenied, ValidationFailed
from patron.ingest.schemas import LOAD_ORDER
from patron.ingest.services import import_file
from patron.intelligence import reason_columns as rc
from patron.intelligence.explain import render
from patron.intelligence.metrics import auc
from patron.scoring.models import CustomerScore, GradeHistory, GradePolicy, ScoreRun
from patron.scoring.policies import policy_active, policy_apply, policy_preview, policy_save
from patron.scoring.selectors import stored_reasons
from patron.scoring.services import score_customers
from patron.scoring.writeback import reasons_dir, snapshot_history

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

AS_OF = date(2026, 11, 1)  # the demo's history ends on 2026-10-31


@pytest.fixture
def demo(tmp_path: Path, lake: Path) -> dict[str, Any]:
    manifest = generate_demo(out_dir=tmp_path / "demo", customers=1500, seed=11)
    for kind in LOAD_ORDER:
        summary = import_file(kind=kind, path=manifest.files[kind], source="demo")
        assert summary.ok, (kind, summary.errors[:3])
    return {"problem_customers": manifest.problem_customers}


def test_every_customer_is_scored_graded_and_explained(demo: dict[str, Any]) -> None:
    # when
    run = score_customers(as_of=AS_OF)
    # then
    assert run.status == "completed"
    assert CustomerScore.objects.count() == Customer.objects.count() == run.customers
    grades = set(CustomerScore.objects.values_list("grade", flat=True))
    assert grades == {"core", "potential", "ordinary"}
    assert not CustomerScore.objects.filter(credit_score__isnull=True).exists()
    assert not CustomerScore.objects.filter(credit_score__lt=350).exists()
    assert not CustomerScore.objects.filter(credit_score__gt=950).exists()
    written = pq.read_table(reasons_dir() / run.reasons_folder / "reasons.parquet")
    assert written.num_rows == run.customers
    stored = dict(
        zip(*written.select(["customer_id", "reasons"]).to_pydict().values(), strict=True)
    )
    for score in CustomerScore.objects.all()[:200]:
        assert rc.decoded(stored[score.customer_id])["grade"], score.customer_id
        assert score.cluster is not None and score.cluster_name
    for score in CustomerScore.objects.order_by("customer_id")[:20]:  # as a page reads them
        reasons = stored_reasons(score)
        assert reasons is not None and reasons["grade"] and reasons["credit"], score.customer_id
    if run.parameters["churn"]["model"] == "lightgbm":  # its reasons: what raised the risk
        riskiest = CustomerScore.objects.exclude(churn_probability=None)
        for score in riskiest.order_by("-churn_probability")[:10]:
            reasons = stored_reasons(score)
            assert reasons is not None and reasons["churn"], score.customer_id
    buyers = CustomerScore.objects.exclude(rfm_segment="")
    assert not buyers.filter(churn_probability__isnull=True).exists()
    assert GradeHistory.objects.filter(valid_to__isnull=True).count() == run.customers
    assert run.summary["history"] == {"new": run.customers, "changed": 0}
    assert set(run.parameters) >= {"bgnbd", "gamma_gamma", "credit", "churn", "clusters"}


def test_problem_customers_get_clearly_worse_credit_scores(demo: dict[str, Any]) -> None:
    # given
    score_customers(as_of=AS_OF)
    problem = {e for ids in demo["problem_customers"].values() for e in ids}
    # when
    rows = list(CustomerScore.objects.values_list("customer__external_id", "credit_score"))
    is_problem = np.array([external in problem for external, _ in rows])
    scores = np.array([score for _, score in rows], dtype=float)
    # then: ranking by the score finds them (measured 0.94 on 3,000 customers, seed 7)
    separation = auc(is_problem, -scores)
    assert separation is not None and separation >= 0.85
    assert scores[is_problem].mean() < scores[~is_problem].mean() - 50


def test_a_nightly_run_keeps_grades_and_a_regrade_changes_them(demo: dict[str, Any]) -> None:
    # given: graded once
    first = score_customers(as_of=date(2026, 8, 1))
    before = dict(GradeHistory.objects.values_list("customer_id", "grade"))
    # when: a nightly run three months later
    nightly = score_customers(as_of=AS_OF)
    # then: nobody who had a grade moved; the pending moves are counted
    still = dict(
        GradeHistory.objects.filter(valid_to__isnull=True).values_list("customer_id", "grade")
    )
    assert {c: still[c] for c in before} == before
    pending = nightly.summary["pending_moves"]
    assert pending["up"] + pending["down"] > 0
    # and exactly the customers whose grade is held say so first, before the grade's reasons
    stored = pq.read_table(reasons_dir() / nightly.reasons_folder / "reasons.parquet")
    held = [
        grade_reasons
        for grade_reasons in (
            rc.decoded(row)["grade"] for row in stored.column("reasons").to_pylist()
        )
        if render(grade_reasons[0]).startswith("grade held since 2026-08-01")
    ]
    assert len(held) == pending["up"] + pending["down"]
    assert all(len(grade_reasons) > 1 for grade_reasons in held)
    # when: the quarterly re-grade
    regrade = score_customers(as_of=date(2026, 11, 2), regrade=True)
    # then: moves happened exactly as pending said, and history has no gaps
    assert regrade.summary["moves"]["up"] + regrade.summary["moves"]["down"] > 0
    for customer_id in list(before)[:300]:
        periods = list(GradeHistory.objects.filter(customer_id=customer_id).order_by("valid_from"))
        assert periods[0].valid_from == first.as_of
        for earlier, later in itertools.pairwise(periods):
            assert earlier.valid_to == later.valid_from
        assert periods[-1].valid_to is None
    # and going back in time is refused, with nothing written
    runs = ScoreRun.objects.count()
    with pytest.raises(Conflict, match="grade history already runs from 2026-11-02"):
        score_customers(as_of=date(2026, 9, 1), regrade=True)
    assert ScoreRun.objects.filter(status="completed").count() == runs


def test_score_history_is_kept_in_the_lake_and_shown_on_the_page(demo: dict[str, Any]) -> None:
    # given
    score_customers(as_of=date(2026, 8, 1))
    score_customers(as_of=AS_OF)
    customer = CustomerScore.objects.exclude(rfm_segment="").earliest("customer_id").customer
    # when
    history = snapshot_history(customer.pk)
    client = Client()
    client.force_login(make_user("service_agent"))
    page = client.get(f"/customers/{customer.pk}/").content.decode()
    # then
    assert [row["as_of"] for row in history] == ["2026-08-01", "2026-11-01"]
    assert 'data-testid="score-history"' in page
    assert 'data-testid="grade-history"' in page
    assert 'data-testid="credit-score"' in page


def test_a_new_policy_is_previewed_then_applied_and_audited(demo: dict[str, Any]) -> None:
    # given
    score_customers(as_of=AS_OF)
    manager = make_user("operations_manager")
    rules = dict(policy_active().rules)
    stricter = {**rules, "thresholds": {**rules["thresholds"], "core_min": 0.95}}
    # when
    preview = policy_preview(user=manager, rules=stricter)
    saved = policy_save(user=manager, rules=stricter, note="fewer core customers")
    # then: nothing changed yet
    assert preview["down"] > 0 and preview["up"] == 0
    assert GradePolicy.objects.get(is_active=True).version == 1
    # when
    moves = policy_apply(user=manager, version=saved.version, as_of=date(2026, 11, 2))
    # then
    assert moves["down"] == preview["down"]
    assert GradePolicy.objects.get(is_active=True).version == saved.version
    assert (
        CustomerScore.objects.filter(grade="core").count() < preview["matrix"][0][0] + moves["down"]
    )


def test_policy_edits_need_the_permission_and_valid_rules(demo: dict[str, Any]) -> None:
    score_customers(as_of=AS_OF)
    rules = dict(policy_active().rules)
    with pytest.raises(PermissionDenied):
        policy_save(user=make_user("service_agent"), rules=rules)
    with pytest.raises(ValidationFailed, match="unknown score column"):
        policy_save(
            user=make_user("operations_manager"),
            rules={**rules, "inputs": {"shoe_size": 1.0}},
        )
    assert GradePolicy.objects.count() == 1
