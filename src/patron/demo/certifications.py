"""Certification on the demo merchant: some customers certified (a few of them businesses), a
few applications waiting for review, and a few sent back with a mistyped ID number, all made
through the services as staff would, so the queue, the process figures and the customer
pages have something real to show.

Two demo staff members do the work (without passwords: nobody logs in as them): an agent who
files, and a manager who decides (four eyes). Documents are tiny generated PNG files.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from django.db import transaction

from patron.account.models import User
from patron.account.services import user_create
from patron.certification import services
from patron.customer.models import Customer
from patron.errors import Conflict, PatronError

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64))
AGENT, REVIEWER = "demo-agent", "demo-reviewer"


@dataclass(frozen=True)
class DemoCertifications:
    certified: int
    waiting: int
    returned: int


def _staff(username: str, role: str) -> User:
    found = User.objects.filter(username=username).first()
    return found or user_create(username=username, role=role)


def _credit_code(rng: random.Random) -> str:
    from stdnum.cn import uscc

    body = "91" + "".join(rng.choice("0123456789") for _ in range(6))
    body += "".join(rng.choice("0123456789ABCDEFGHJKLMNPQRTUWXY") for _ in range(9))
    return body + uscc.calc_check_digit(body)


def _file(agent: User, customer: Customer, level: str, data: services.ApplicationData) -> int:
    application = services.application_create(
        user=agent, customer_id=customer.pk, level_code=level, data=data
    )
    kinds = ("business_licence", "legal_rep_id") if level == "business" else ("id_front", "id_back")
    for kind in kinds:
        services.document_add(
            user=agent,
            application_id=application.pk,
            kind=kind,
            filename=f"{kind}.png",
            content=PNG,
        )
    return services.application_submit(user=agent, application_id=application.pk).pk


def _person(customer: Customer, *, mistyped: bool = False) -> services.ApplicationData:
    number = customer.id_number
    if mistyped:  # the last character typed wrong: the pre-checks send it straight back
        number = number[:-1] + ("0" if number[-1] != "0" else "1")
    return services.ApplicationData(real_name=customer.name, id_number=number, phone=customer.phone)


def demo_certifications(
    *, seed: int, certified: int = 40, waiting: int = 8, returned: int = 3
) -> DemoCertifications:
    """Certify, queue and return applications for the demo's individual customers with an ID
    number and a phone, chosen at random with ``seed``; a few businesses too."""
    rng = random.Random(seed)
    services.levels_seed()
    agent = _staff(AGENT, "service_agent")
    reviewer = _staff(REVIEWER, "operations_manager")
    people = list(
        Customer.objects.filter(kind="individual", status="active")
        .exclude(id_number_hash="")
        .exclude(phone_hash="")
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    businesses = list(
        Customer.objects.filter(kind="business", status="active")
        .exclude(phone_hash="")
        .exclude(company_name="")
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    chosen = rng.sample(people, min(len(people), certified + waiting + returned))
    done = queued = sent_back = 0
    for index, pk in enumerate(chosen):
        customer = Customer.objects.get(pk=pk)
        try:
            with transaction.atomic():
                if index < certified:
                    application = _file(agent, customer, "trusted", _person(customer))
                    try:
                        with transaction.atomic():
                            services.application_approve(
                                user=reviewer,
                                application_id=application,
                                reason="证件照片与信息一致",
                            )
                    except Conflict:  # not enough history for "trusted": identity only
                        services.application_approve(
                            user=reviewer,
                            application_id=application,
                            reason="证件照片与信息一致，信用记录未达到信用认证",
                            level_code="identity",
                        )
                    done += 1
                elif index < certified + waiting:
                    _file(agent, customer, "identity", _person(customer))
                    queued += 1
                else:
                    _file(agent, customer, "identity", _person(customer, mistyped=True))
                    sent_back += 1
        except PatronError:
            continue  # a customer the demo data makes ineligible (e.g. erased): skip
    for pk in rng.sample(businesses, min(len(businesses), 4)):
        customer = Customer.objects.get(pk=pk)
        data = services.ApplicationData(
            company_name=customer.company_name,
            credit_code=_credit_code(rng),
            legal_rep_name=customer.name,
            legal_rep_id_number=customer.id_number or "11010519491231002X",
            phone=customer.phone,
        )
        try:
            with transaction.atomic():
                application = _file(agent, customer, "business", data)
                services.application_approve(
                    user=reviewer, application_id=application, reason="营业执照已核验"
                )
                done += 1
        except PatronError:
            continue
    return DemoCertifications(certified=done, waiting=queued, returned=sent_back)
