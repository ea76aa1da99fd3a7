"""Roles are Django groups with least privilege. Deny by default: a permission not listed here
for a role is not granted. ``roles_sync`` makes the database match this table."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMINISTRATOR = "administrator"
    OPERATIONS_MANAGER = "operations_manager"
    SERVICE_AGENT = "service_agent"
    RISK_ANALYST = "risk_analyst"
    MARKETER = "marketer"
    AUDITOR = "auditor"
    ANALYST = "analyst"


VIEW_CUSTOMERS = "customer.view_customer"
CHANGE_CUSTOMERS = "customer.change_customer"
VIEW_PII = "account.view_pii"
VIEW_COMMERCE = "commerce.view_order"
VIEW_TICKETS = "service.view_ticket"
RUN_IMPORTS = "ingest.add_importbatch"
VIEW_IMPORTS = "ingest.view_importbatch"
VIEW_AUDIT = "audit.view_auditevent"
MANAGE_USERS = "account.change_user"
VIEW_MODELS = "scoring.view_scorerun"  # model runs, back-test report, grade policies
CHANGE_GRADE_POLICY = "scoring.change_gradepolicy"  # edit, preview and apply grade policies

_READ_BASE = {VIEW_CUSTOMERS, VIEW_COMMERCE, VIEW_TICKETS}

ROLE_PERMISSIONS: dict[Role, set[str]] = {
    Role.ADMINISTRATOR: _READ_BASE
    | {
        CHANGE_CUSTOMERS,
        VIEW_PII,
        RUN_IMPORTS,
        VIEW_IMPORTS,
        VIEW_AUDIT,
        MANAGE_USERS,
        VIEW_MODELS,
        CHANGE_GRADE_POLICY,
    },
    Role.OPERATIONS_MANAGER: _READ_BASE
    | {CHANGE_CUSTOMERS, VIEW_PII, RUN_IMPORTS, VIEW_IMPORTS, VIEW_MODELS, CHANGE_GRADE_POLICY},
    # Agents see contact data masked: replies go out through the channel, not by hand.
    Role.SERVICE_AGENT: _READ_BASE | {CHANGE_CUSTOMERS},
    Role.RISK_ANALYST: _READ_BASE | {VIEW_IMPORTS, VIEW_MODELS},
    Role.MARKETER: {VIEW_CUSTOMERS, VIEW_COMMERCE, VIEW_MODELS},
    Role.AUDITOR: {VIEW_CUSTOMERS, VIEW_AUDIT, VIEW_IMPORTS, VIEW_MODELS},
    Role.ANALYST: {VIEW_CUSTOMERS, VIEW_COMMERCE, VIEW_IMPORTS, VIEW_MODELS},
}

ROLE_LABELS: dict[Role, str] = {
    Role.ADMINISTRATOR: "管理员 Administrator",
    Role.OPERATIONS_MANAGER: "运营经理 Operations manager",
    Role.SERVICE_AGENT: "客服 Service agent",
    Role.RISK_ANALYST: "风控分析师 Risk analyst",
    Role.MARKETER: "营销 Marketer",
    Role.AUDITOR: "审计 Auditor",
    Role.ANALYST: "分析师 Analyst",
}
