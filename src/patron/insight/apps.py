from django.apps import AppConfig


class InsightConfig(AppConfig):
    name = "patron.insight"
    label = "insight"
    verbose_name = "Insights"
