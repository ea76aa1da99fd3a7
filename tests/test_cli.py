"""The command line as operators and scripts use it: exit codes, --json, createuser tokens."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from patron.account.models import ApiToken, User

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _env(home: Path) -> dict[str, str]:
    name = connection.settings_dict["NAME"]
    url = (
        f"postgres://postgres@127.0.0.1:5432/{name}"
        if connection.vendor == "postgresql"
        else f"sqlite:///{name}"
    )
    return {**os.environ, "DATABASE_URL": url, "PATRON_HOME": str(home)}


def patron(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "patron.cli", *args],
        env=_env(home),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_import_json_summary_and_exit_codes(tmp_path: Path) -> None:
    from django.conf import settings as live

    home = Path(live.HOME)
    good = tmp_path / "customers.csv"
    good.write_text("external_id,name\nC1,张伟\nC2,李娜\n", encoding="utf-8")
    bad = tmp_path / "bad.csv"
    bad.write_text("external_id,name,birthday\nC3,王芳,1990-02-31\n", encoding="utf-8")

    ok = patron("import", "customers", str(good), "--json", home=home)
    refused = patron("import", "customers", str(bad), "--json", home=home)
    missing = patron("import", "orders", str(good), "--json", home=home)

    assert ok.returncode == 0, ok.stderr
    summary = json.loads(ok.stdout.splitlines()[-1])
    assert (summary["inserted"], summary["rejected"], summary["status"]) == (2, 0, "committed")
    assert refused.returncode == 1
    assert (
        json.loads(refused.stdout.splitlines()[-1])["errors"][0]["reason"]
        == "not a valid date (expected YYYY-MM-DD)"
    )
    assert "bad.csv line 2 field 'birthday'" in refused.stderr.replace("\n", " ")
    assert missing.returncode == 2
    assert "missing required column" in missing.stderr


def test_createuser_with_token_prints_a_working_token(tmp_path: Path) -> None:
    from django.conf import settings as live

    from patron.account.services import token_authenticate

    result = patron(
        "createuser", "ops", "--role", "operations_manager", "--token", home=Path(live.HOME)
    )
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip().splitlines()[-1]
    user = User.objects.get(username="ops")
    assert list(user.groups.values_list("name", flat=True)) == ["operations_manager"]
    assert token_authenticate(token) == user
    assert ApiToken.objects.get().digest != token
    again = patron("createuser", "ops", "--role", "analyst", home=Path(live.HOME))
    assert again.returncode == 2
    assert "already exists" in again.stderr
