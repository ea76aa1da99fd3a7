"""Trades and the permits they need (R-H1: "qualifications and licences relevant to their
category"), with the default trades seeded once; staff edit them in the admin."""

from typing import Any

import django.db.models.deletion
from django.db import migrations, models


def seed(apps: Any, schema_editor: Any) -> None:
    from patron.certification.rules import DEFAULT_CATEGORIES

    category = apps.get_model("certification", "BusinessCategory")
    for spec in DEFAULT_CATEGORIES:
        category.objects.get_or_create(code=spec["code"], defaults=spec)


class Migration(migrations.Migration):
    dependencies = [("certification", "0004_default_fallbacks")]

    operations = [
        migrations.CreateModel(
            name="BusinessCategory",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("code", models.SlugField(max_length=40, unique=True)),
                (
                    "name",
                    models.CharField(help_text="Chinese name shown to applicants", max_length=80),
                ),
                ("name_en", models.CharField(max_length=80)),
                (
                    "required_permits",
                    models.JSONField(
                        blank=True,
                        default=list,
                        help_text="Names of the permits the trade needs, as on the permit, "
                        'e.g. ["食品经营许可证"]',
                    ),
                ),
                ("is_active", models.BooleanField(default=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
            ],
            options={"ordering": ["code"], "verbose_name_plural": "business categories"},
        ),
        migrations.AddField(
            model_name="application",
            name="business_category",
            field=models.ForeignKey(
                blank=True,
                help_text="The trade a business sells in: says which permits it must list",
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="certification.businesscategory",
            ),
        ),
        migrations.RunPython(seed, migrations.RunPython.noop),
    ]
