"""Every sentence a customer's score reasons can say, by key.

A stored reason names its sentence by key (``{"key": "rfm", "params": {…}}``) rather than
carrying the English text. A million customers' rows would otherwise repeat the same
sentences a dozen times each. ``patron.intelligence.explain.render`` looks the key up here;
the web app translates the English through its catalogue (``N_`` marks them for
``makemessages``).
"""

from __future__ import annotations

from typing import Final

from patron.intelligence.explain import N_

TEXTS: Final[dict[str, str]] = {
    # credit and churn models: one feature each (explain.py's feature shape)
    "credit.feature": N_("{feature} {value} (shop median {median}): {points:+.0f} points"),
    "credit.nothing": N_("nothing in the history lowers the score"),
    "churn.feature": N_("{feature} {value} (shop median {median}) raises the risk of churning"),
    # purchase models
    "rfm": N_(
        "last purchase {days} days ago (shop average {mean_days:.0f}); "
        "bought on {purchase_days} days (average {mean_purchase_days:.1f}); "
        "spent {spend:,.2f} {currency} (average {mean_spend:,.2f})"
    ),
    "alive.once": N_(
        "bought once, {days} days ago; one purchase says little about what comes next"
    ),
    "alive.gap": N_(
        "bought on {purchase_days} different days, about every {gap:.0f} days; "
        "the last purchase was {days} days ago"
    ),
    "alive.days": N_(
        "bought on {purchase_days} different days; the last purchase was {days} days ago"
    ),
    "clv.repeat": N_(
        "{orders:.1f} expected orders in the next 12 months × {value:,.2f} {currency} "
        "expected per order (from their own repeat orders)"
    ),
    "clv.new": N_(
        "{orders:.1f} expected orders in the next 12 months × {value:,.2f} {currency} "
        "expected per order (from the shop's typical customer: no repeat order yet)"
    ),
    # grades: where the customer stands on the policy's inputs, and what decided
    "grade.none": N_("no {label} yet"),
    "grade.top": N_("{label} in the top {share} % of customers"),
    "grade.bottom": N_("{label} in the bottom {share} % of customers"),
    "grade.lowest": N_("{label} in the lowest {share} % of customers"),
    "grade.highest": N_("{label} in the highest {share} % of customers"),
    "grade.kept": N_(
        "kept {grade}: score {score:.2f} is within the {margin} margin below the {grade} "
        "threshold {threshold:.2f}"
    ),
    "grade.stays": N_(
        "stays {grade}: score {score:.2f} has not cleared the {target} threshold "
        "{threshold:.2f} by the {margin} margin"
    ),
    "grade.held_back": N_("held back from {grade}: requires {rule}"),
    # value: now, potential, word of mouth
    "value.spent": N_("spent {amount:,.0f} in the last 12 months"),
    "value.no_spend": N_("no purchases in the last 12 months"),
    "value.headroom": N_(
        "could spend {gap:,.0f} more a year: {peers} reach {target:,.0f} (75th percentile)"
    ),
    "value.headroom_alive": N_(
        "could spend {gap:,.0f} more a year: {peers} reach {target:,.0f} (75th percentile); "
        "{alive} % likely still active"
    ),
    "value.little": N_("little realistic headroom: {peers} reach {target:,.0f}"),
    "value.little_alive": N_(
        "little realistic headroom: {peers} reach {target:,.0f}; {alive} % likely still active"
    ),
    "value.at_top": N_("already at or above the 75th percentile of {peers}"),
    "value.mouth": N_("word of mouth: {counts}"),
    "value.no_mouth": N_("no word of mouth yet"),
}
