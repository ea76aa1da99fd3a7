"""The correlation analysis (R-C3): which customer, order and service factors move with
repurchase and with satisfaction. Computed on demand (page button, ``patron insights
correlations``) and kept as one ``Snapshot`` the page reads.

Design: the factors are the customer features as of a cut-off ``horizon_days`` before the
analysis date; the outcomes are observed in the ``horizon_days`` after it, so a factor is
always measured before what it is compared with.

- **Repurchase**: customers with at least one order before the cut-off; 1 when they placed an
  order (not cancelled) in the window after it.
- **Satisfaction**: customers who rated a ticket opened in the window after the cut-off; 1 when
  their mean rating there is 4 or 5 (the CSAT convention of ``docs/insights.md``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from django.conf import settings
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from patron.account.roles import CHANGE_TARGETS, VIEW_INSIGHTS
from patron.account.services import require_permission
from patron.errors import Conflict, NotFound
from patron.insight.models import Snapshot
from patron.intelligence import correlation
from patron.intelligence.features import FEATURES, customer_features

KIND = "correlations"
#: Features that are codes or bookkeeping, not factors a manager can act on.
NOT_FACTORS = frozenset({"registration_channel", "company_size", "purchase_days"})


def _window(as_of: date, horizon_days: int) -> tuple[datetime, datetime]:
    zone = ZoneInfo(settings.TIME_ZONE)
    end = datetime.combine(as_of, time(), tzinfo=zone).astimezone(UTC)
    return end - timedelta(days=horizon_days), end


def _ids_between(table: pa.Table, column: str, start: datetime, end: datetime) -> pa.Table:
    times = table.column(column)
    lo = pa.scalar(start, pa.timestamp("us", tz="UTC"))
    hi = pa.scalar(end, pa.timestamp("us", tz="UTC"))
    return table.filter(pc.and_(pc.greater_equal(times, lo), pc.less(times, hi)))


def _repurchase(
    sources: Any, features: pa.Table, start: datetime, end: datetime
) -> tuple[pa.Table, np.ndarray]:
    buyers = features.filter(pc.greater(features.column("orders"), 0))
    later = _ids_between(sources.orders, "placed_at", start, end)
    later = later.filter(pc.invert(pc.equal(later.column("status"), "cancelled")))
    again = pc.is_in(buyers.column("customer_id"), value_set=pc.unique(later.column("customer_id")))
    return buyers, np.asarray(again.to_numpy(zero_copy_only=False), dtype=np.float64)


def _satisfaction(
    sources: Any, features: pa.Table, start: datetime, end: datetime
) -> tuple[pa.Table, np.ndarray]:
    tickets = _ids_between(sources.tickets, "opened_at", start, end)
    rated = tickets.filter(pc.is_valid(tickets.column("satisfaction")))
    if rated.num_rows == 0:
        return features.slice(0, 0), np.zeros(0)
    means = rated.group_by("customer_id").aggregate([("satisfaction", "mean")])
    mask = pc.is_in(features.column("customer_id"), value_set=means.column("customer_id"))
    people = features.filter(mask)
    index = pc.index_in(people.column("customer_id"), value_set=means.column("customer_id"))
    mean = pc.take(means.column("satisfaction_mean"), index)
    return people, np.asarray(
        pc.greater_equal(mean, 4.0).to_numpy(zero_copy_only=False), dtype=np.float64
    )


@transaction.atomic
def correlations_run(
    *, user: Any = None, as_of: date | None = None, horizon_days: int = 180
) -> dict[str, Any]:
    """Run both studies and keep them (replacing the last); ``user`` None is the command line."""
    if user is not None:
        require_permission(user, CHANGE_TARGETS)
    from patron.scoring.sources import load_sources

    as_of = as_of or timezone.localdate()
    start, end = _window(as_of, horizon_days)
    sources = load_sources()
    if sources.orders.num_rows == 0:
        raise Conflict("no orders yet: import orders before looking for what moves with them")
    features = customer_features(sources, start)
    factors = [name for name in FEATURES if name not in NOT_FACTORS]
    studies = []
    for name, (people, outcome) in (
        ("repurchase", _repurchase(sources, features, start, end)),
        ("satisfaction", _satisfaction(sources, features, start, end)),
    ):
        studies.append(correlation.study(people, outcome, factors, name=name).to_json())
    data = {
        "as_of": as_of.isoformat(),
        "cutoff": start.isoformat(),
        "horizon_days": horizon_days,
        "studies": studies,
    }
    Snapshot.objects.update_or_create(
        kind=KIND, defaults={"data": data, "computed_at": timezone.now()}
    )
    return data


# ---------------------------------------------------------------------- reading


OUTCOME_WORDS = {
    "repurchase": (gettext_lazy("Repurchase"), gettext_lazy("buy again within the window")),
    "satisfaction": (gettext_lazy("Satisfaction"), gettext_lazy("rate their tickets 4 or 5")),
}


@dataclass(frozen=True)
class FactorRow:
    feature: str
    label: str
    rho: float
    low: float
    high: float
    customers: int
    is_clear: bool
    sentence: str
    bar_left: float  # the interval as percentages of a −1 … 1 axis, for the page's bars
    bar_width: float


@dataclass(frozen=True)
class StudyView:
    outcome: str
    title: str
    customers: int
    positive: int
    rate: float | None  # per cent
    factors: list[FactorRow]
    model_auc: float | None
    model_weights: list[tuple[str, float]]


def _label(feature: str) -> str:
    info = FEATURES.get(feature)
    if info is None:
        return feature
    return info.label_zh if (translation.get_language() or "").startswith("zh") else info.label_en


def _sentence(factor: dict[str, Any], goal: str) -> str:
    values = {
        "factor": _label(factor["feature"]),
        "goal": goal,
        "rho": f"{factor['rho']:+.2f}",
        "low": f"{factor['low']:+.2f}",
        "high": f"{factor['high']:+.2f}",
        "n": f"{factor['customers']:,}",
    }
    if not factor["is_clear"]:
        return (
            _(
                "No clear link between %(factor)s and whether customers %(goal)s (ρ %(rho)s, 95 %% interval %(low)s to %(high)s, %(n)s customers)."
            )
            % values
        )
    if factor["rho"] > 0:
        return (
            _(
                "Customers with a higher %(factor)s more often %(goal)s (ρ %(rho)s, 95 %% interval %(low)s to %(high)s, %(n)s customers)."
            )
            % values
        )
    return (
        _(
            "Customers with a higher %(factor)s less often %(goal)s (ρ %(rho)s, 95 %% interval %(low)s to %(high)s, %(n)s customers)."
        )
        % values
    )


def correlations_stored(*, user: Any) -> dict[str, Any]:
    """The last analysis as stored (404 before the first run)."""
    require_permission(user, VIEW_INSIGHTS)
    found = Snapshot.objects.filter(kind=KIND).first()
    if found is None:
        raise NotFound("the correlation analysis has not been run yet")
    return {"computed_at": found.computed_at.isoformat(), **found.data}


def correlations_view(
    *, user: Any, limit: int = 15
) -> tuple[dict[str, Any], list[StudyView]] | None:
    """The last analysis as the page shows it: the strongest ``limit`` factors per outcome,
    in plain words; None before the first run."""
    require_permission(user, VIEW_INSIGHTS)
    found = Snapshot.objects.filter(kind=KIND).first()
    if found is None:
        return None
    views = []
    for study in found.data.get("studies", []):
        title, goal = OUTCOME_WORDS.get(study["outcome"], (study["outcome"], study["outcome"]))
        rows = [
            FactorRow(
                feature=f["feature"],
                label=_label(f["feature"]),
                rho=f["rho"],
                low=f["low"],
                high=f["high"],
                customers=f["customers"],
                is_clear=f["is_clear"],
                sentence=_sentence(f, str(goal)),
                bar_left=round((f["low"] + 1) * 50, 2),
                bar_width=round(max((f["high"] - f["low"]) * 50, 0.5), 2),
            )
            for f in study["factors"][:limit]
        ]
        customers = study["customers"]
        views.append(
            StudyView(
                outcome=study["outcome"],
                title=str(title),
                customers=customers,
                positive=study["positive"],
                rate=100 * study["positive"] / customers if customers else None,
                factors=rows,
                model_auc=study["model_auc"],
                model_weights=[
                    (_label(w["feature"]), w["coefficient"]) for w in study["model_weights"]
                ],
            )
        )
    return {
        "computed_at": found.computed_at,
        **{k: v for k, v in found.data.items() if k != "studies"},
    }, views
