from django.apps import AppConfig


class OutboxConfig(AppConfig):
    name = "patron.outbox"
    label = "outbox"
    verbose_name = "Outbox (messages to customers)"
