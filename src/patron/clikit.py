"""What every ``patron`` command needs before it touches the database: Django set up, and the
schema up to date. Apps with their own command groups (``patron.outbox.cli``, …) use these, so
the main ``patron.cli`` can mount them without importing itself back."""

from __future__ import annotations

import os

import typer
from rich.console import Console

console = Console(stderr=True)


def django_setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "patron.settings")
    import django

    django.setup()


def require_migrated() -> None:
    """Long-running processes do not migrate (several start at once); they ask for it."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    if executor.migration_plan(executor.loader.graph.leaf_nodes()):
        console.print("[red]the database schema is not up to date: run 'patron migrate' first")
        raise typer.Exit(2)
