from django.apps import AppConfig


class CustomerConfig(AppConfig):
    name = "patron.customer"
    label = "customer"
    verbose_name = "Customers"
