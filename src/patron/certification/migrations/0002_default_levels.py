"""The default certification levels (editable data, R-H2): present on every new install."""

from typing import Any

from django.db import migrations


def seed(apps: Any, schema_editor: Any) -> None:
    from patron.certification.rules import DEFAULT_LEVELS

    level = apps.get_model("certification", "CertificationLevel")
    for spec in DEFAULT_LEVELS:
        level.objects.get_or_create(code=spec["code"], defaults=spec)


class Migration(migrations.Migration):
    dependencies = [("certification", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
