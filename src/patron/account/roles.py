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
WORK_TICKETS = "service.change_ticket"  # claim, reply, note, change status and priority, escalate
MANAGE_DESK = "service.change_slapolicy"  # SLA policies, hours, holidays, categories, teams
POST_INBOUND = "service.add_ticketmessage"  # connectors post customers' messages (API token)
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
VIEW_CAMPAIGNS = "marketing.view_campaign"  # campaigns, their members and evaluation
CHANGE_CAMPAIGNS = "marketing.change_campaign"  # create, schedule, launch, cancel campaigns

_READ_BASE = {VIEW_CUSTOMERS, VIEW_COMMERCE, VIEW_TICKETS}
_RISK_READ = {VIEW_RISK, VIEW_RESTRICTIONS, VIEW_CHECKOUT_POLICY}
_RISK_ACT = {ACT_ON_RISK, CHANGE_RISK_RULES, FILE_APPEAL, DECIDE_APPEAL}
_MESSAGES = {VIEW_MESSAGES, CANCEL_MESSAGES}
_CERT_REVIEW = {VIEW_CERTIFICATION, REVIEW_CERTIFICATION, VIEW_CERTIFICATION_DOCUMENTS}
_CERT_ALL = _CERT_REVIEW | {APPLY_FOR_CERTIFICATION, CHANGE_CERTIFICATION_LEVELS}
_MARKETING_READ = {VIEW_SEGMENTS, VIEW_COUPONS, VIEW_CAMPAIGNS}
_MARKETING_ALL = _MARKETING_READ | {CHANGE_SEGMENTS, CHANGE_COUPONS, CHANGE_CAMPAIGNS}

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
    | {REDEEM_COUPONS}
    | {WORK_TICKETS, MANAGE_DESK, POST_INBOUND},
    Role.OPERATIONS_MANAGER: _READ_BASE
    | {CHANGE_CUSTOMERS, VIEW_PII, RUN_IMPORTS, VIEW_IMPORTS, VIEW_MODELS, CHANGE_GRADE_POLICY}
    | _RISK_READ
    | {FILE_APPEAL, VIEW_INSIGHTS, CHANGE_TARGETS}
    | _CERT_ALL
    | _MESSAGES
    | {VIEW_LOYALTY, CHANGE_POINTS, CHANGE_LOYALTY_POLICY}
    | _MARKETING_ALL
    | {REDEEM_COUPONS}
    | {WORK_TICKETS, MANAGE_DESK},
    # Agents see contact data masked: replies go out through the channel, not by hand. They see
    # restrictions and their reasons and file appeals for customers, but cannot lift anything.
    Role.SERVICE_AGENT: _READ_BASE
    | {CHANGE_CUSTOMERS, VIEW_RESTRICTIONS, VIEW_CHECKOUT_POLICY, FILE_APPEAL}
    | {VIEW_CERTIFICATION, APPLY_FOR_CERTIFICATION}
    | {VIEW_MESSAGES}
    | {VIEW_LOYALTY, CHANGE_POINTS}  # redeem on the customer's behalf
    | {VIEW_COUPONS, REDEEM_COUPONS}
    | {WORK_TICKETS},
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
    Role.AUDITOR: {
        VIEW_CUSTOMERS,
        VIEW_TICKETS,
        VIEW_AUDIT,
        VIEW_IMPORTS,
        VIEW_MODELS,
        VIEW_INSIGHTS,
    }
    | _RISK_READ
    | {VIEW_CERTIFICATION}
    | {VIEW_MESSAGES}
    | {VIEW_LOYALTY}
    | _MARKETING_READ,
    Role.ANALYST: {VIEW_CUSTOMERS, VIEW_COMMERCE, VIEW_IMPORTS, VIEW_MODELS, VIEW_INSIGHTS}
    | {VIEW_LOYALTY}
    | _MARKETING_READ,
    # Checkout and other systems: one token, a few questions (checkout policy, coupons).
    Role.INTEGRATION: {VIEW_CHECKOUT_POLICY, REDEEM_COUPONS, POST_INBOUND},
}

# Satisfaction: CSAT answers, surveys and their results, the suggestion box, improvement plans
# and the service KPIs (patron.satisfaction).
VIEW_SATISFACTION = "satisfaction.view_csatrequest"  # CSAT, surveys, suggestions, plans, KPIs
MANAGE_SURVEYS = "satisfaction.change_survey"  # create, edit, schedule and close surveys
MANAGE_PLANS = "satisfaction.change_improvementplan"  # plans, their links; review suggestions
for _role, _granted in {
    Role.ADMINISTRATOR: {VIEW_SATISFACTION, MANAGE_SURVEYS, MANAGE_PLANS},
    Role.OPERATIONS_MANAGER: {VIEW_SATISFACTION, MANAGE_SURVEYS, MANAGE_PLANS},
    Role.SERVICE_AGENT: {VIEW_SATISFACTION},
    Role.AUDITOR: {VIEW_SATISFACTION},
    Role.ANALYST: {VIEW_SATISFACTION},
}.items():
    ROLE_PERMISSIONS[_role] = ROLE_PERMISSIONS[_role] | _granted

# Complaints: the complaint workflow and the complaint-risk early warning (patron.complaints).
VIEW_COMPLAINTS = "complaints.view_complaint"  # complaints, their timeline, the at-risk list
HANDLE_COMPLAINTS = "complaints.change_complaint"  # file complaints and take every step
for _role, _granted in {
    Role.ADMINISTRATOR: {VIEW_COMPLAINTS, HANDLE_COMPLAINTS},
    Role.OPERATIONS_MANAGER: {VIEW_COMPLAINTS, HANDLE_COMPLAINTS},
    Role.SERVICE_AGENT: {VIEW_COMPLAINTS, HANDLE_COMPLAINTS},
    Role.AUDITOR: {VIEW_COMPLAINTS},
    Role.ANALYST: {VIEW_COMPLAINTS},
}.items():
    ROLE_PERMISSIONS[_role] = ROLE_PERMISSIONS[_role] | _granted

# After-sales and logistics: returns, exchanges, repairs, compensation, the policy, logistics
# exceptions (patron.aftersales).
VIEW_AFTERSALES = "aftersales.view_aftersalesrequest"  # requests, policy, logistics exceptions
HANDLE_AFTERSALES = "aftersales.change_aftersalesrequest"  # file and take every step
APPROVE_AFTERSALES_EXCEPTION = "aftersales.approve_exception"  # approve outside the policy
CHANGE_AFTERSALES_POLICY = "aftersales.change_aftersalespolicy"  # edit the policy's rows
for _role, _granted in {
    Role.ADMINISTRATOR: {
        VIEW_AFTERSALES,
        HANDLE_AFTERSALES,
        APPROVE_AFTERSALES_EXCEPTION,
        CHANGE_AFTERSALES_POLICY,
    },
    Role.OPERATIONS_MANAGER: {
        VIEW_AFTERSALES,
        HANDLE_AFTERSALES,
        APPROVE_AFTERSALES_EXCEPTION,
        CHANGE_AFTERSALES_POLICY,
    },
    Role.SERVICE_AGENT: {VIEW_AFTERSALES, HANDLE_AFTERSALES},
    Role.AUDITOR: {VIEW_AFTERSALES},
    Role.ANALYST: {VIEW_AFTERSALES},
}.items():
    ROLE_PERMISSIONS[_role] = ROLE_PERMISSIONS[_role] | _granted

# Knowledge base: FAQ articles, suggestions and automatic replies (patron.knowledge).
VIEW_FAQ = "knowledge.view_article"  # articles, suggestions, the evaluation
CHANGE_FAQ = "knowledge.change_article"  # write, publish and unpublish articles
RECORD_FAQ_FEEDBACK = "knowledge.add_feedback"  # say whether a suggested answer helped
for _role, _granted in {
    Role.ADMINISTRATOR: {VIEW_FAQ, CHANGE_FAQ, RECORD_FAQ_FEEDBACK},
    Role.OPERATIONS_MANAGER: {VIEW_FAQ, CHANGE_FAQ, RECORD_FAQ_FEEDBACK},
    Role.SERVICE_AGENT: {VIEW_FAQ, RECORD_FAQ_FEEDBACK},
    Role.AUDITOR: {VIEW_FAQ},
}.items():
    ROLE_PERMISSIONS[_role] = ROLE_PERMISSIONS[_role] | _granted

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
