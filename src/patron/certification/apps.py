from django.apps import AppConfig


class CertificationConfig(AppConfig):
    name = "patron.certification"
    label = "certification"
    verbose_name = "Certification"
