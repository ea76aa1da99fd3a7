from django.apps import AppConfig


class ServiceConfig(AppConfig):
    name = "patron.service"
    label = "service"
    verbose_name = "Customer service"
