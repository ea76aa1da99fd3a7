from django.apps import AppConfig


class IngestConfig(AppConfig):
    name = "patron.ingest"
    label = "ingest"
    verbose_name = "Imports"
