from django.apps import AppConfig


class CareConfig(AppConfig):
    name = "patron.care"
    label = "care"
    verbose_name = "Care (birthdays, holidays, follow-up visits; measures by grade)"
