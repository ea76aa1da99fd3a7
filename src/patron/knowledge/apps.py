from django.apps import AppConfig


class KnowledgeConfig(AppConfig):
    name = "patron.knowledge"
    label = "knowledge"
    verbose_name = "Knowledge base (FAQ and automatic replies)"
