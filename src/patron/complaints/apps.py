from django.apps import AppConfig


class ComplaintsConfig(AppConfig):
    name = "patron.complaints"
    label = "complaints"
    verbose_name = "Complaints"

    def ready(self) -> None:
        # A ticket the desk opens as a complaint gets its complaint (idempotent receiver).
        from patron.complaints.services import on_ticket_opened
        from patron.service.signals import ticket_opened

        ticket_opened.connect(on_ticket_opened, dispatch_uid="complaints.on_ticket_opened")
