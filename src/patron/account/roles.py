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
    INTEGRATION = "integration"


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
VIEW_RISK = "risk.view_alert"  # the alert queue, blacklist, appeals, detection runs
ACT_ON_RISK = "risk.change_alert"  # decide alerts, apply/lift restrictions, blacklist decisions
VIEW_RESTRICTIONS = "risk.view_restriction"  # a customer's restrictions and their reasons
CHANGE_RISK_RULES = "risk.change_riskrule"  # edit rules and the risk policy, run detection
FILE_APPEAL = "risk.add_appeal"  # file an appeal on a customer's behalf
DECIDE_APPEAL = "risk.change_appeal"  # review appeals (never one's own decision)
VIEW_CHECKOUT_POLICY = "risk.view_riskpolicy"  # GET /api/customers/{id}/checkout-policy
VIEW_INSIGHTS = "insight.view_metricvalue"  # KPI dashboard, cohorts, targets, reports
CHANGE_TARGETS = "insight.change_target"  # set targets, refill the metrics
VIEW_MESSAGES = "outbox.view_message"  # messages sent to customers (also on their file)
CANCEL_MESSAGES = "outbox.change_message"  # cancel a message before it is sent
VIEW_CERTIFICATION = "certification.view_application"  # applications, levels, process figures
APPLY_FOR_CERTIFICATION = "certification.add_application"  # file for a customer, change requests
REVIEW_CERTIFICATION = "certification.change_application"  # decide (never what one filed)
VIEW_CERTIFICATION_DOCUMENTS = "certification.view_document"  # open uploaded documents
CHANGE_CERTIFICATION_LEVELS = "certification.change_certificationlevel"  # edit level criteria
VIEW_LOYALTY = "loyalty.view_pointsaccount"  # points, ledger, tiers and the loyalty policy
CHANGE_POINTS = "loyalty.change_pointsaccount"  # redeem for a customer, adjust (audited)
CHANGE_LOYALTY_POLICY = "loyalty.change_loyaltypolicy"  # the points policy and the tiers
VIEW_SEGMENTS = "marketing.view_segment"  # segments, their sizes, members and previews
CHANGE_SEGMENTS = "marketing.change_segment"  # save segments (new version), snapshots
VIEW_COUPONS = "marketing.view_coupon"  # coupon templates and codes
CHANGE_COUPONS = "marketing.change_coupon"  # templates, issue and void codes
REDEEM_COUPONS = "marketing.redeem_coupon"  # redeem a code at checkout

_READ_BASE = {VIEW_CUSTOMERS, VIEW_COMMERCE, VIEW_TICKETS}
_RISK_READ = {VIEW_RISK, VIEW_RESTRICTIONS, VIEW_CHECKOUT_POLICY}
_RISK_ACT = {ACT_ON_RISK, CHANGE_RISK_RULES, FILE_APPEAL, DECIDE_APPEAL}
_MESSAGES = {VIEW_MESSAGES, CANCEL_MESSAGES}
_CERT_REVIEW = {VIEW_CERTIFICATION, REVIEW_CERTIFICATION, VIEW_CERTIFICATION_DOCUMENTS}
_CERT_ALL = _CERT_REVIEW | {APPLY_FOR_CERTIFICATION, CHANGE_CERTIFICATION_LEVELS}
_MARKETING_READ = {VIEW_SEGMENTS, VIEW_COUPONS}
_MARKETING_ALL = _MARKETING_READ | {CHANGE_SEGMENTS, CHANGE_COUPONS}

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
        VIEW_INSIGHTS,
        CHANGE_TARGETS,
    }
    | _RISK_READ
    | _RISK_ACT
    | _CERT_ALL
    | _MESSAGES
    | {VIEW_LOYALTY, CHANGE_POINTS, CHANGE_LOYALTY_POLICY}
    | _MARKETING_ALL
    | {REDEEM_COUPONS},
    Role.OPERATIONS_MANAGER: _READ_BASE
    | {CHANGE_CUSTOMERS, VIEW_PII, RUN_IMPORTS, VIEW_IMPORTS, VIEW_MODELS, CHANGE_GRADE_POLICY}
    | _RISK_READ
    | {FILE_APPEAL, VIEW_INSIGHTS, CHANGE_TARGETS}
    | _CERT_ALL
    | _MESSAGES
    | {VIEW_LOYALTY, CHANGE_POINTS, CHANGE_LOYALTY_POLICY}
    | _MARKETING_ALL
    | {REDEEM_COUPONS},
    # Agents see contact data masked: replies go out through the channel, not by hand. They see
    # restrictions and their reasons and file appeals for customers, but cannot lift anything.
    Role.SERVICE_AGENT: _READ_BASE
    | {CHANGE_CUSTOMERS, VIEW_RESTRICTIONS, VIEW_CHECKOUT_POLICY, FILE_APPEAL}
    | {VIEW_CERTIFICATION, APPLY_FOR_CERTIFICATION}
    | {VIEW_MESSAGES}
    | {VIEW_LOYALTY, CHANGE_POINTS}  # redeem on the customer's behalf
    | {VIEW_COUPONS, REDEEM_COUPONS},
    # Only risk analysts act on risk; separation of duties is per case (patron.risk.rules).
    Role.RISK_ANALYST: _READ_BASE
    | {VIEW_IMPORTS, VIEW_MODELS}
    | _RISK_READ
    | _RISK_ACT
    | _CERT_REVIEW,
    Role.MARKETER: {VIEW_CUSTOMERS, VIEW_COMMERCE, VIEW_MODELS, VIEW_INSIGHTS}
    | _MESSAGES
    | {VIEW_LOYALTY, CHANGE_LOYALTY_POLICY}
    | _MARKETING_ALL,
    Role.AUDITOR: {VIEW_CUSTOMERS, VIEW_AUDIT, VIEW_IMPORTS, VIEW_MODELS, VIEW_INSIGHTS}
    | _RISK_READ
    | {VIEW_CERTIFICATION}
    | {VIEW_MESSAGES}
    | {VIEW_LOYALTY}
    | _MARKETING_READ,
    Role.ANALYST: {VIEW_CUSTOMERS, VIEW_COMMERCE, VIEW_IMPORTS, VIEW_MODELS, VIEW_INSIGHTS}
    | {VIEW_LOYALTY}
    | _MARKETING_READ,
    # Checkout and other systems: one token, a few questions (checkout policy, coupons).
    Role.INTEGRATION: {VIEW_CHECKOUT_POLICY, REDEEM_COUPONS},
}

ROLE_LABELS: dict[Role, str] = {
    Role.ADMINISTRATOR: "管理员 Administrator",
    Role.OPERATIONS_MANAGER: "运营经理 Operations manager",
    Role.SERVICE_AGENT: "客服 Service agent",
    Role.RISK_ANALYST: "风控分析师 Risk analyst",
    Role.MARKETER: "营销 Marketer",
    Role.AUDITOR: "审计 Auditor",
    Role.ANALYST: "分析师 Analyst",
    Role.INTEGRATION: "系统对接 Integration (checkout and other systems)",
}
