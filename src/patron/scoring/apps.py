from django.apps import AppConfig


class ScoringConfig(AppConfig):
    name = "patron.scoring"
    label = "scoring"
    verbose_name = "Customer scores"
