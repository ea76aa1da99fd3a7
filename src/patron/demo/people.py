"""Customers of the demo merchant: individuals and businesses with Chinese names, mobile numbers,
addresses, birthdays and valid resident identity numbers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from faker import Faker
from numpy.typing import NDArray

from patron.demo import texts
from patron.demo.catalogue import CATEGORIES
from patron.demo.clock import DAY, NA, shopping_time_of_day
from patron.demo.geo import (
    DISTRICT_WEIGHTS,
    DISTRICTS,
    ESTATES,
    ROADS,
    STORES,
    birth_region_code,
)
from patron.demo.output import iso_dates, iso_times, pick
from patron.demo.params import REGISTERED_BEFORE_HISTORY

BUSINESS_SHARE = 0.08
FEMALE_SHARE = 0.58
ID_NUMBER_SHARE = 0.61  # of individuals
YEAR_DAYS = 365.2425

#: (registration channel, source channel, weight for individuals, weight for businesses)
REGISTRATION_CHANNELS: tuple[tuple[str, str, float, float], ...] = (
    ("app", "online", 0.22, 0.10),
    ("wechat_mini_program", "online", 0.22, 0.10),
    ("tmall", "third_party", 0.18, 0.15),
    ("jd", "third_party", 0.12, 0.25),
    ("douyin", "third_party", 0.12, 0.05),
    ("official_site", "online", 0.06, 0.25),
    ("offline_store", "offline", 0.08, 0.10),
)
OFFLINE_STORE = 6
COMPANY_SIZES = (("micro", 0.45), ("small", 0.35), ("medium", 0.15), ("large", 0.05))
#: Preference multipliers by gender for categories (female, male), default 1.
_GENDER_TASTE: dict[str, tuple[float, float]] = {
    "CAT01": (1.6, 0.8),
    "CAT02": (1.3, 0.9),
    "CAT03": (2.5, 0.4),
    "CAT04": (0.7, 1.8),
    "CAT05": (1.0, 1.1),
    "CAT07": (1.8, 0.6),
    "CAT09": (0.7, 1.6),
}
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def id_check_digit(first17: str) -> str:
    """ISO 7064 MOD 11-2 check character of a resident identity number (GB 11643-1999)."""
    total = sum(int(ch) * w for ch, w in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11]


def make_id_number(region: str, birthday: str, sequence: int) -> str:
    """18-character resident identity number from a 6-digit region code, ``YYYYMMDD`` and a
    3-digit sequence (odd for men, even for women)."""
    first17 = f"{region}{birthday}{sequence:03d}"
    return first17 + id_check_digit(first17)


@dataclass(frozen=True)
class Customers:
    """Customers as parallel arrays, plus their CSV columns."""

    ids: list[str]
    is_business: NDArray[np.bool_]
    female: NDArray[np.bool_]
    registered_at: NDArray[np.int64]
    district: NDArray[np.int64]  # index into geo.DISTRICTS
    reg_channel: NDArray[np.int64]  # index into REGISTRATION_CHANNELS
    taste: NDArray[np.float64]  # (customers x categories) category preferences, rows sum to 1
    columns: dict[str, list[str]]

    def __len__(self) -> int:
        return len(self.ids)


def _registration_times(
    rng: np.random.Generator, n: int, start: int, end: int
) -> NDArray[np.int64]:
    span = end - start
    before = rng.random(n) < REGISTERED_BEFORE_HISTORY
    # Growing merchant: sign-ups get denser towards the end (density rising with time).
    inside = start + (rng.random(n) ** 0.8) * span
    earlier = start - rng.random(n) * 2 * 365 * DAY
    t = np.where(before, earlier, inside).astype(np.int64)
    t = shopping_time_of_day(rng, t)
    # Nobody signs up in the last hour: such times go back into the last day.
    return np.where(t > end - 3600, end - rng.integers(3600, DAY, size=n), t)


def _registration_channels(
    rng: np.random.Generator, business: NDArray[np.bool_], district: NDArray[np.int64]
) -> NDArray[np.int64]:
    w_ind = np.array([c[2] for c in REGISTRATION_CHANNELS])
    w_bus = np.array([c[3] for c in REGISTRATION_CHANNELS])
    u = rng.random(business.size)
    ch = np.where(
        business,
        np.searchsorted(np.cumsum(w_bus) / w_bus.sum(), u, side="right"),
        np.searchsorted(np.cumsum(w_ind) / w_ind.sum(), u, side="right"),
    )
    # Only cities with a flagship store can sign people up in a store; others used the app.
    has_store = np.array([d.city in STORES for d in DISTRICTS])[district]
    ch = np.where((ch == OFFLINE_STORE) & ~has_store, 0, ch)
    # ... and store cities get a few more in-store sign-ups.
    extra = has_store & ~business & (rng.random(business.size) < 0.06)
    return np.where(extra, OFFLINE_STORE, ch).astype(np.int64)


def _tastes(rng: np.random.Generator, female: NDArray[np.bool_]) -> NDArray[np.float64]:
    base = np.array([c.popularity for c in CATEGORIES], dtype=np.float64)
    fem = np.array([_GENDER_TASTE.get(c.external_id, (1.0, 1.0))[0] for c in CATEGORIES])
    mal = np.array([_GENDER_TASTE.get(c.external_id, (1.0, 1.0))[1] for c in CATEGORIES])
    conc = np.where(female[:, None], base * fem, base * mal) * 0.6
    g = rng.gamma(conc)
    g += 1e-9
    return g / g.sum(axis=1, keepdims=True)


def _birthdays(
    rng: np.random.Generator, registered: NDArray[np.int64], end: int
) -> NDArray[np.int64]:
    """Birth dates (days since epoch): adult (18+) at registration, at most 70 at ``end``."""
    age_at_reg = np.clip(18.0 + rng.gamma(2.2, 7.0, size=registered.size), 18.0, 66.0)
    reg_day = registered // DAY
    born = (
        reg_day
        - (age_at_reg * YEAR_DAYS).astype(np.int64)
        - rng.integers(0, 365, size=registered.size)
    )
    oldest = end // DAY - int(70 * YEAR_DAYS) + 1
    return np.maximum(born, oldest).astype(np.int64)


def _mobiles(rng: np.random.Generator, n: int) -> list[str]:
    prefixes = rng.integers(0, len(texts.MOBILE_PREFIXES), size=n).tolist()
    rest = rng.integers(0, 100_000_000, size=n).tolist()
    return [f"{texts.MOBILE_PREFIXES[p]}{r:08d}" for p, r in zip(prefixes, rest, strict=True)]


def build_customers(
    rng: np.random.Generator,
    fake: Faker,
    n: int,
    start: int,
    end: int,
    tick: Callable[[int], None] | None = None,
) -> Customers:
    """Draw ``n`` customers registered before ``end`` (some before the history's ``start``)."""
    business = rng.random(n) < BUSINESS_SHARE
    female = rng.random(n) < FEMALE_SHARE
    district = rng.choice(len(DISTRICTS), size=n, p=DISTRICT_WEIGHTS).astype(np.int64)
    registered = _registration_times(rng, n, start, end)
    reg_channel = _registration_channels(rng, business, district)
    born = _birthdays(rng, registered, end)
    has_id = ~business & (rng.random(n) < ID_NUMBER_SHARE)
    has_birthday = has_id | (~business & (rng.random(n) < 0.55))
    has_gender = has_id | (~business & (rng.random(n) < 0.9))
    young = (end // DAY - born) < 35 * YEAR_DAYS
    cols = _person_columns(rng, fake, n, business, female, young, district, born, has_id, tick)
    n_sizes = rng.choice(len(COMPANY_SIZES), size=n, p=[w for _, w in COMPANY_SIZES])
    ids = [f"C{i + 1:06d}" for i in range(n)]
    columns: dict[str, list[str]] = {
        "external_id": ids,
        "name": cols["name"],
        "kind": ["business" if b else "individual" for b in business.tolist()],
        "gender": pick(("male", "female"), np.where(has_gender, female.astype(np.int64), -1)),
        "birthday": iso_dates(np.where(has_birthday, born, NA)),
        "phone": cols["phone"],
        "email": cols["email"],
        "id_number": cols["id_number"],
        "province": [DISTRICTS[d].province for d in district.tolist()],
        "city": [DISTRICTS[d].city for d in district.tolist()],
        "district": [DISTRICTS[d].district for d in district.tolist()],
        "address": cols["address"],
        "postal_code": [DISTRICTS[d].postal_code for d in district.tolist()],
        "source_channel": [REGISTRATION_CHANNELS[c][1] for c in reg_channel.tolist()],
        "registration_channel": [REGISTRATION_CHANNELS[c][0] for c in reg_channel.tolist()],
        "registered_at": iso_times(registered),
        "company_name": cols["company_name"],
        "company_size": pick([s for s, _ in COMPANY_SIZES], np.where(business, n_sizes, -1)),
        "industry": cols["industry"],
    }
    return Customers(
        ids, business, female, registered, district, reg_channel, _tastes(rng, female), columns
    )


def _person_columns(
    rng: np.random.Generator,
    fake: Faker,
    n: int,
    business: NDArray[np.bool_],
    female: NDArray[np.bool_],
    young: NDArray[np.bool_],
    district: NDArray[np.int64],
    born: NDArray[np.int64],
    has_id: NDArray[np.bool_],
    tick: Callable[[int], None] | None,
) -> dict[str, list[str]]:
    """The per-person text columns (one Faker call or so per field; ~20k customers/s)."""
    phones = _mobiles(rng, n)
    has_phone = rng.random(n) < np.where(business, 0.99, 0.97)
    has_email = rng.random(n) < np.where(business, 0.9, 0.5)
    has_address = rng.random(n) < 0.9
    domains = [d for d, _ in texts.EMAIL_DOMAINS]
    dom_p = np.array([w for _, w in texts.EMAIL_DOMAINS])
    email_domain = rng.choice(len(domains), size=n, p=dom_p / dom_p.sum()).tolist()
    modern = (young & (rng.random(n) < 0.6)).tolist()
    birth_text = np.datetime_as_string(born.astype("datetime64[D]"), unit="D").tolist()
    seq = (rng.integers(1, 500, size=n) * 2 - np.where(female, 0, 1)).tolist()
    other_district = rng.random(n) < 0.2
    out: dict[str, list[str]] = {
        k: []
        for k in ("name", "phone", "email", "id_number", "address", "company_name", "industry")
    }
    addr = rng.integers(0, 10_000, size=(n, 6)).tolist()
    for i in range(n):
        fem = bool(female[i])
        if modern[i]:
            pool = texts.MODERN_GIVEN_FEMALE if fem else texts.MODERN_GIVEN_MALE
            given = pool[addr[i][5] % len(pool)]
        else:
            given = fake.first_name_female() if fem else fake.first_name_male()
        out["name"].append(fake.last_name() + given)
        out["phone"].append(phones[i] if has_phone[i] else "")
        d = DISTRICTS[int(district[i])]
        a = addr[i]
        if business[i]:
            company = d.city.removesuffix("市") + fake.company_prefix() + fake.company_suffix()
            out["company_name"].append(company)
            out["industry"].append(texts.INDUSTRIES[a[4] % len(texts.INDUSTRIES)])
            handle = ("caigou", "purchase", "admin", "service", "info", "contact")[a[3] % 6]
            out["email"].append(f"{handle}@{fake.domain_name()}" if has_email[i] else "")
            street = f"{ROADS[a[0] % len(ROADS)]}{a[1] % 899 + 1}号{ESTATES[a[2] % len(ESTATES)][:2]}大厦{a[3] % 30 + 1}层{a[4] % 20 + 1:02d}室"
        else:
            out["company_name"].append("")
            out["industry"].append("")
            if has_email[i]:
                dom = domains[email_domain[i]]
                local = (
                    str(10_000_000 + a[0] * 7919 + a[1])
                    if dom == "qq.com" and a[2] % 2
                    else fake.user_name()
                )
                out["email"].append(f"{local}@{dom}")
            else:
                out["email"].append("")
            street = (
                f"{ROADS[a[0] % len(ROADS)]}{a[1] % 899 + 1}号{ESTATES[a[2] % len(ESTATES)]}"
                f"{a[3] % 30 + 1}栋{a[4] % 6 + 1}单元{a[5] % 32 + 1}{a[0] % 4 + 1:02d}室"
            )
        out["address"].append(street if has_address[i] else "")
        out["id_number"].append(
            _id_for(rng, d.code, d.province, birth_text[i], seq[i], bool(other_district[i]))
            if has_id[i]
            else ""
        )
        if tick is not None and (i + 1) % 1000 == 0:
            tick(i + 1)
    return out


_PROVINCE_CODES: dict[str, list[str]] = {}
for _d in DISTRICTS:
    _PROVINCE_CODES.setdefault(_d.province, [])
    if _d.code not in _PROVINCE_CODES[_d.province]:
        _PROVINCE_CODES[_d.province].append(_d.code)


def _id_for(
    rng: np.random.Generator,
    code: str,
    province: str,
    birthday: str,
    sequence: int,
    elsewhere: bool,
) -> str:
    """ID number registered in the customer's district, or (20 %) another one of the province,
    with a region code in use in the birth year ('' if the province had none then)."""
    if elsewhere:
        codes = _PROVINCE_CODES[province]
        code = codes[int(rng.integers(len(codes)))]
    region = birth_region_code(code, province, int(birthday[:4]))
    return make_id_number(region, birthday.replace("-", ""), sequence) if region else ""
