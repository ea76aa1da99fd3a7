"""Consents: what each demo customer agreed to at sign-up, and the withdrawals that followed.

Shares are illustrative of Chinese e-commerce sign-up flows: service messages are part of the
contract; marketing and profiling are separate opt-ins (PIPL Art. 14 asks for specific,
separate consent), some of which are later withdrawn (e.g. an SMS "TD" reply).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from patron.demo.clock import DAY
from patron.demo.output import Column, iso_times

#: (purpose, channel, share granting at sign-up, share of grants later withdrawn)
OPT_INS: tuple[tuple[str, str, float, float], ...] = (
    ("service", "sms", 1.0, 0.0),
    ("service", "app", 0.7, 0.0),
    ("marketing", "sms", 0.55, 0.15),
    ("marketing", "wechat", 0.45, 0.10),
    ("marketing", "email", 0.25, 0.10),
    ("profiling", "app", 0.6, 0.05),
)
SIGN_UP = "注册时勾选同意"
WITHDRAWN = {
    "sms": "短信回复TD退订",
    "wechat": "微信取消订阅",
    "email": "邮件退订链接",
    "app": "App设置中关闭",
}


def consents_columns(
    rng: np.random.Generator, customer_ids: list[str], registered_at: NDArray[np.int64], end: int
) -> dict[str, Column]:
    """One row per consent given at registration, plus one per later withdrawal."""
    who: list[str] = []
    purposes: list[str] = []
    channels: list[str] = []
    granted: list[str] = []
    times: list[NDArray[np.int64]] = []
    evidence: list[str] = []
    ids = np.array(customer_ids)
    for purpose, channel, share, withdrawn_share in OPT_INS:
        gives = rng.random(len(customer_ids)) < share
        at = registered_at[gives]
        count = int(gives.sum())
        who += ids[gives].tolist()
        purposes += [purpose] * count
        channels += [channel] * count
        granted += ["true"] * count
        times.append(at)
        evidence += [SIGN_UP] * count
        withdraws = rng.random(count) < withdrawn_share
        later = at[withdraws] + (
            rng.random(int(withdraws.sum())) * np.maximum(end - at[withdraws], DAY)
        ).astype(np.int64)
        later = np.minimum(later, end - 1)
        count = int(withdraws.sum())
        who += ids[gives][withdraws].tolist()
        purposes += [purpose] * count
        channels += [channel] * count
        granted += ["false"] * count
        times.append(later)
        evidence += [WITHDRAWN[channel]] * count
    return {
        "customer_external_id": who,
        "purpose": purposes,
        "channel": channels,
        "is_granted": granted,
        "recorded_at": iso_times(np.concatenate(times)),
        "evidence": evidence,
        "external_id": [""] * len(who),
    }
