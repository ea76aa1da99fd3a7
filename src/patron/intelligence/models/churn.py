"""Churn: the probability that an existing buyer makes no purchase over the next horizon.

Two estimates are available, and the back-test report says which ranks and calibrates better
on the holdout (:func:`compare_churn`):

* the BG/NBD model (:class:`patron.intelligence.models.btyd.BetaGeo`): churn = 1 − P(alive),
  from purchase timing alone. Strictly, P(alive) is the probability of not having dropped
  out *for good*, while the label (:func:`patron.intelligence.labels.churned`) is "no purchase
  in the horizon", which a live but slow customer also meets: the BG/NBD figure is a
  baseline, expected to under-predict such labels and to rank well;
* :class:`ChurnModel`: a calibrated LightGBM classifier on the customer features (the same
  machinery as the credit model, :class:`patron.intelligence.models.credit.BoostedClassifier`),
  when enough history exists to label churn.

Pure numpy / LightGBM, no Django.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import pyarrow as pa
from scipy import special

from patron.intelligence import metrics
from patron.intelligence.models.credit import (
    BoostedClassifier,
    Explanation,
    Reason,
    rank_reasons,
)

__all__ = ["MONOTONE_CHURN", "ChurnModel", "compare_churn"]

FloatArray = npt.NDArray[np.float64]

#: Known directions of churn risk: +1 = a higher value means more likely to churn. Only the
#: days since the last purchase qualify, other things equal (in the BG/NBD, P(alive) falls as
#: ``T − t_x`` grows). Frequency does not: at a given recency a frequent buyer who stopped is
#: *more* likely gone than an occasional one.
MONOTONE_CHURN: dict[str, int] = {"recency_days": +1}


class ChurnModel(BoostedClassifier):
    """LightGBM classifier of churn over the next horizon, Platt-calibrated, with reasons.

    Parameters and fitting are those of
    :class:`~patron.intelligence.models.credit.BoostedClassifier` (at most 200 trees, 15
    leaves, early stopping and Platt scaling on a stratified 25 % hold-out; see the credit
    model's notes for why Platt rather than isotonic). ``monotone`` defaults to
    :data:`MONOTONE_CHURN`.

    Labels come from :func:`patron.intelligence.labels.churned`, over customers who bought
    before the cut-off (:func:`patron.intelligence.labels.bought_before`).

    Reasons are in calibrated log-odds of churning (``Reason.points`` > 0 raised the risk):
    ``base + contributions.sum(axis=1)`` equals :meth:`log_odds`.
    """

    positive_name: ClassVar[str] = "churned"

    def __init__(
        self,
        *,
        monotone: Mapping[str, int] | None = None,
        num_threads: int = 1,
        seed: int = 0,
        max_trees: int = 200,
        num_leaves: int = 15,
        learning_rate: float = 0.1,
        validation_share: float = 0.25,
        early_stopping_rounds: int = 20,
    ) -> None:
        super().__init__(
            monotone=MONOTONE_CHURN if monotone is None else monotone,
            num_threads=num_threads,
            seed=seed,
            max_trees=max_trees,
            num_leaves=num_leaves,
            learning_rate=learning_rate,
            validation_share=validation_share,
            early_stopping_rounds=early_stopping_rounds,
        )

    def fit(self, X: pa.Table, y: Any) -> ChurnModel:
        """Fit on features as of the cut-off and churn labels over the horizon. Returns self."""
        super().fit(X, y)
        return self

    def contributions(self, X: pa.Table) -> tuple[FloatArray, FloatArray]:
        """Base and per-feature calibrated log-odds of churning (columns as
        ``feature_names_``)."""
        base, terms, _ = self.log_odds_contributions(X)
        return base, terms

    def reasons(self, X: pa.Table, top: int = 3) -> list[list[Reason]]:
        """Per customer up to ``top`` features that raised the churn risk, largest first."""
        _, terms, values = self.log_odds_contributions(X)
        return rank_reasons(self.feature_names_, values, terms, top, +1)

    def strengths(self, X: pa.Table, top: int = 3) -> list[list[Reason]]:
        """Per customer up to ``top`` features that lowered the churn risk, largest first."""
        _, terms, values = self.log_odds_contributions(X)
        return rank_reasons(self.feature_names_, values, terms, top, -1)

    def explain(self, X: pa.Table, top: int = 3) -> Explanation:
        """Probability, reasons and strengths with one contributions pass (``score`` is None)."""
        base, terms, values = self.log_odds_contributions(X)
        return Explanation(
            probability=np.asarray(special.expit(base + terms.sum(axis=1)), dtype=np.float64),
            score=None,
            reasons=rank_reasons(self.feature_names_, values, terms, top, +1),
            strengths=rank_reasons(self.feature_names_, values, terms, top, -1),
        )


def compare_churn(
    y_true: npt.ArrayLike, p_model: npt.ArrayLike | None, p_alive: npt.ArrayLike
) -> dict[str, Any]:
    """Compare the LightGBM churn probability with the BG/NBD one on the same holdout.

    Parameters
    ----------
    y_true : array_like
        Churn labels of the holdout customers (1/True = churned).
    p_model : array_like or None
        :meth:`ChurnModel.probability` for the same customers; None when no model was fitted
        (too little history), in which case the BG/NBD wins by default.
    p_alive : array_like
        BG/NBD P(alive) at the cut-off; its churn probability is ``1 − p_alive``.

    Returns
    -------
    dict
        ``n``, ``churn_rate``, ``lightgbm_auc``, ``lightgbm_brier``, ``btyd_auc``,
        ``btyd_brier`` (None where undefined) and ``better``: ``"lightgbm"`` or ``"btyd"``,
        decided by AUC (ranking is what the churn figure is used for), then by Brier score
        when the AUCs are equal or undefined; ``"btyd"`` on a complete tie, as the model
        with no features to go stale. ``decided_by`` names the deciding metric
        (``"auc"``, ``"brier"``, ``"tie"`` or ``"no_model"``).
    """
    outcome = np.asarray(y_true).astype(bool).ravel()
    p_btyd = 1.0 - np.asarray(p_alive, dtype=np.float64).ravel()
    result: dict[str, Any] = {
        "n": int(outcome.size),
        "churn_rate": float(outcome.mean()) if outcome.size else None,
        "btyd_auc": metrics.auc(outcome, p_btyd),
        "btyd_brier": metrics.brier(outcome, p_btyd),
        "lightgbm_auc": None,
        "lightgbm_brier": None,
    }
    if p_model is None:
        return {**result, "better": "btyd", "decided_by": "no_model"}
    p_lgb = np.asarray(p_model, dtype=np.float64).ravel()
    result["lightgbm_auc"] = metrics.auc(outcome, p_lgb)
    result["lightgbm_brier"] = metrics.brier(outcome, p_lgb)
    model_auc, btyd_auc = result["lightgbm_auc"], result["btyd_auc"]
    if model_auc is not None and btyd_auc is not None and model_auc != btyd_auc:
        better = "lightgbm" if model_auc > btyd_auc else "btyd"
        return {**result, "better": better, "decided_by": "auc"}
    model_brier, btyd_brier = result["lightgbm_brier"], result["btyd_brier"]
    if model_brier is not None and btyd_brier is not None and model_brier != btyd_brier:
        better = "lightgbm" if model_brier < btyd_brier else "btyd"
        return {**result, "better": better, "decided_by": "brier"}
    return {**result, "better": "btyd", "decided_by": "tie"}
