"""The default levels' fallback (R-H3): a trusted customer whose certification expires keeps
"identity verified" if they still meet it. Set only where staff have not chosen one, and only
where it would be valid (same kind, lower rank); the values are written here, not imported,
so that later changes to the code do not change what this migration did."""

from typing import Any

from django.db import migrations

DEFAULT_FALLBACKS = {"trusted": "identity"}


def seed(apps: Any, schema_editor: Any) -> None:
    level = apps.get_model("certification", "CertificationLevel")
    for code, fallback_code in DEFAULT_FALLBACKS.items():
        upper = level.objects.filter(code=code, fallback__isnull=True).first()
        lower = level.objects.filter(code=fallback_code).first()
        if (
            upper is not None
            and lower is not None
            and lower.applicant_kind == upper.applicant_kind
            and lower.rank < upper.rank
            and lower.fallback_id is None
        ):
            upper.fallback = lower
            upper.save(update_fields=["fallback"])


class Migration(migrations.Migration):
    dependencies = [("certification", "0003_downgrade_at_expiry")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
