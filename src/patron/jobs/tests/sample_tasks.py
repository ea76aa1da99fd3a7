"""Small tasks for the tests: they record their calls instead of doing work."""

from __future__ import annotations

from pathlib import Path

from django.tasks import task

CALLS: list[dict[str, str]] = []


@task()
def record(as_of: str) -> str:
    CALLS.append({"as_of": as_of})
    return f"recorded {as_of}"


@task(backend="immediate")
def record_inline(as_of: str) -> str:
    """Bound to the immediate backend: it runs as soon as it is enqueued."""
    CALLS.append({"as_of": as_of, "inline": "yes"})
    return f"recorded {as_of}"


@task()
def write_file(path: str, text: str) -> str:
    """For a worker in another process: its effect is a file the test can read."""
    Path(path).write_text(text, encoding="utf-8")
    return text


not_a_task = "patron.jobs.tests.sample_tasks.CALLS is a list, not a task"
