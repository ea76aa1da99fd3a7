"""Model constants of the demo merchant and the closed forms used to back-test them.

Purchase timing follows the BG/NBD model of Fader, Hardie & Lee (2005), "'Counting Your
Customers' the Easy Way: An Alternative to the Pareto/NBD Model", *Marketing Science* 24(2):
while alive a customer buys at Poisson rate ``lambda ~ Gamma(r, alpha)`` (rate per week) and after
every repeat purchase drops out with probability ``p ~ Beta(a, b)``.

Order values follow the Gamma-Gamma spend model of Fader & Hardie (2013), "The Gamma-Gamma Model
of Monetary Value": a customer's orders are ``Gamma(p, nu)`` (shape ``p``, rate ``nu``) with
``nu ~ Gamma(q, gamma)`` across customers, so the expected order value is ``p * gamma / (q - 1)``.

All values are recorded in ``problem_customers.json`` so that fitted models can be compared with
the truth.
"""

from __future__ import annotations

import math
from datetime import datetime
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")
#: End of the default history: the last second of October 2026, Beijing time.
DEFAULT_AS_OF = datetime(2026, 10, 31, 23, 59, 59, tzinfo=SHANGHAI)

DAY = 86_400
WEEK = 7 * DAY

# --- BG/NBD (Fader, Hardie & Lee 2005); time unit: weeks -------------------------------------
BGNBD_R = 0.8
BGNBD_ALPHA = 12.0
BGNBD_A = 1.5
BGNBD_B = 5.0

# --- Gamma-Gamma spend (Fader & Hardie 2013); money unit: CNY --------------------------------
GG_P = 4.0
GG_Q = 3.5
GG_GAMMA = 150.0
#: Business customers' drawn order values are multiplied by this (bigger baskets).
BUSINESS_SPEND_MULTIPLIER = 4.0

# --- Acquisition: how registered customers come to their first purchase ----------------------
#: Share of customers who ever buy (the rest only browse).
CONVERSION_RATE = 0.82
#: Of the buyers, the share whose first order comes within the registration session.
FIRST_PURCHASE_SAME_SESSION = 0.35
#: Mean delay in days to the first purchase for the others (exponential).
FIRST_PURCHASE_MEAN_DELAY_DAYS = 30.0
#: Share of customers registered before the generated history starts.
REGISTERED_BEFORE_HISTORY = 0.2
#: Of those, the share still active (buying now and then) when the history starts.
PREHISTORY_ACTIVE = 0.65

# --- Problem customers: share of all customers in each (disjoint) group ----------------------
PROBLEM_SHARE = 0.02
PROBLEM_KINDS = ("serial_returner", "frequent_canceller", "malicious_reviewer", "chargeback")


def model_parameters() -> dict[str, object]:
    """The generating parameters, as written to ``problem_customers.json``."""
    return {
        "bg_nbd": {
            "reference": "Fader, Hardie & Lee (2005), Marketing Science 24(2)",
            "r": BGNBD_R,
            "alpha": BGNBD_ALPHA,
            "a": BGNBD_A,
            "b": BGNBD_B,
            "time_unit": "week",
            "time_origin": "first purchase in the history (or registration, if later)",
        },
        "gamma_gamma": {
            "reference": "Fader & Hardie (2013), The Gamma-Gamma Model of Monetary Value",
            "p": GG_P,
            "q": GG_Q,
            "gamma": GG_GAMMA,
            "currency": "CNY",
            "business_spend_multiplier": BUSINESS_SPEND_MULTIPLIER,
            "note": "drawn value per order; realised totals differ by product price rounding, "
            "discounts and shipping fees",
        },
        "acquisition": {
            "conversion_rate": CONVERSION_RATE,
            "first_purchase_same_session": FIRST_PURCHASE_SAME_SESSION,
            "first_purchase_mean_delay_days": FIRST_PURCHASE_MEAN_DELAY_DAYS,
            "registered_before_history": REGISTERED_BEFORE_HISTORY,
            "prehistory_active": PREHISTORY_ACTIVE,
            "prehistory_first_purchase": "exponential wait with the customer's own rate lambda",
        },
    }


def hyp2f1(a: float, b: float, c: float, z: float, *, tol: float = 1e-13) -> float:
    """Gauss hypergeometric function 2F1(a, b; c; z) by its power series (``0 <= z < 1``)."""
    if not 0.0 <= z < 1.0:
        raise ValueError("the series needs 0 <= z < 1")
    term = total = 1.0
    j = 0
    while True:
        term *= (a + j) * (b + j) / ((c + j) * (j + 1)) * z
        total += term
        j += 1
        if abs(term) < tol * abs(total) or j > 200_000:
            return total


def bgnbd_expected_repeats(
    t_weeks: float,
    r: float = BGNBD_R,
    alpha: float = BGNBD_ALPHA,
    a: float = BGNBD_A,
    b: float = BGNBD_B,
) -> float:
    """E[X(t)], the expected number of repeat purchases in ``(0, t]`` (Fader, Hardie & Lee 2005, eq. 9)."""
    if t_weeks <= 0:
        return 0.0
    z = t_weeks / (alpha + t_weeks)
    head = (a + b - 1.0) / (a - 1.0)
    return head * (1.0 - math.pow(alpha / (alpha + t_weeks), r) * hyp2f1(r, b, a + b - 1.0, z))


def gamma_gamma_expected_value(p: float = GG_P, q: float = GG_Q, gamma: float = GG_GAMMA) -> float:
    """Population mean order value ``p * gamma / (q - 1)`` (Fader & Hardie 2013)."""
    return p * gamma / (q - 1.0)
