"""The default after-sales policy (editable data, R-F1): 7-day no-reason returns, 30-day
exchanges, repairs within a year, compensation within 30 days — present on every new install."""

from typing import Any

from django.db import migrations


def seed(apps: Any, schema_editor: Any) -> None:
    from patron.aftersales.rules import DEFAULT_POLICIES

    policy = apps.get_model("aftersales", "AfterSalesPolicy")
    for spec in DEFAULT_POLICIES:
        policy.objects.get_or_create(
            kind=spec["kind"], category_code=spec["category_code"], defaults=spec
        )


class Migration(migrations.Migration):
    dependencies = [("aftersales", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
