from django.apps import AppConfig


class AftersalesConfig(AppConfig):
    name = "patron.aftersales"
    label = "aftersales"
    verbose_name = "After-sales (returns, exchanges, repairs, compensation, logistics)"
