from django.apps import AppConfig


class RecommendConfig(AppConfig):
    name = "patron.recommend"
    label = "recommend"
    verbose_name = "Recommendations (purchase co-occurrence)"
