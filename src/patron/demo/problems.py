"""Problem customers: four disjoint groups of about ``PROBLEM_SHARE`` of all customers each.

They are picked among individual customers with enough orders for their behaviour to show, so
that the purchase timing of the whole population stays exactly BG/NBD.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from patron.demo.params import PROBLEM_KINDS, PROBLEM_SHARE

#: Minimum number of orders a customer needs to be eligible for each group.
MIN_ORDERS = {
    "serial_returner": 3,
    "frequent_canceller": 3,
    "malicious_reviewer": 2,
    "chargeback": 2,
}


def select_problem_customers(
    rng: np.random.Generator, n_orders: NDArray[np.int64], is_business: NDArray[np.bool_]
) -> dict[str, NDArray[np.int64]]:
    """Customer indices (sorted) of each problem group; groups never overlap."""
    n = n_orders.size
    want = max(1, round(PROBLEM_SHARE * n)) if n >= 50 else 1
    taken = np.zeros(n, dtype=bool)
    groups: dict[str, NDArray[np.int64]] = {}
    for kind in PROBLEM_KINDS:
        chosen = np.zeros(0, dtype=np.int64)
        for minimum in (MIN_ORDERS[kind], 2, 1):
            pool = np.flatnonzero(~taken & ~is_business & (n_orders >= minimum))
            pool = np.setdiff1d(pool, chosen)
            need = want - chosen.size
            if need <= 0:
                break
            extra = (
                rng.choice(pool, size=min(need, pool.size), replace=False) if pool.size else pool
            )
            chosen = np.concatenate([chosen, extra.astype(np.int64)])
        chosen = np.sort(chosen)
        taken[chosen] = True
        groups[kind] = chosen
    return groups


def membership(groups: dict[str, NDArray[np.int64]], n: int) -> dict[str, NDArray[np.bool_]]:
    """Boolean masks over all customers, one per group."""
    masks: dict[str, NDArray[np.bool_]] = {}
    for kind, idx in groups.items():
        mask = np.zeros(n, dtype=bool)
        mask[idx] = True
        masks[kind] = mask
    return masks
