from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "patron.audit"
    label = "audit"
    verbose_name = "Audit log"
