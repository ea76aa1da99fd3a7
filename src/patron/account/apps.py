from django.apps import AppConfig


class AccountConfig(AppConfig):
    name = "patron.account"
    label = "account"
    verbose_name = "Accounts and roles"
