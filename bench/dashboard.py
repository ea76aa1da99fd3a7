"""The insights dashboard on the demo merchant: server time, queries, and the page drawn in a
real browser (the issue asks that it load in under a second).

    OMP_NUM_THREADS=1 .venv/bin/python bench/dashboard.py [--customers 2000]
        [--home /tmp/patron-bench-dashboard-2000] [--requests 10]
        [--screenshot docs/img/insights-dashboard.png] [--language en]

Setup (once per ``--home``; a marker file makes re-runs quick, and a change to any migration
builds the home again): ``patron demo --customers N --no-serve``, which builds the demo merchant,
scores it, fills the metrics and writes the admin's password to ``demo-login.txt``.

Then:

1. in process, Django's test client as the admin: the server time of ``GET /insights/``
   (median and slowest of ``--requests``, after one warm-up) and the SQL queries of one request;
2. ``patron serve`` and Debian's Chromium through Playwright: log in, open the dashboard and
   wait until every chart is drawn with data; the time from navigation to that point, on a
   first visit (the ECharts bundle is fetched) and on a second (it is cached);
3. with ``--screenshot``, the whole page as a PNG (1440 px wide) in ``--language``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from loadkit import ROOT, free_port, open_home, serving

CHROMIUM = "/usr/bin/chromium"
#: Every chart on the page with an ECharts instance that has drawn its points.
ALL_DRAWN = """() => {
  const charts = Array.from(document.querySelectorAll('[data-chart]'));
  return charts.length > 0 && charts.every((el) => {
    const chart = window.echarts && window.echarts.getInstanceByDom(el);
    return chart && el.querySelector('svg') !== null;
  });
}"""


def _build(home: Path, customers: int) -> dict[str, Any]:
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "patron.cli", "demo", "--customers", str(customers), "--no-serve"],
        env={"PATRON_HOME": str(home), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
        check=True,
        cwd=ROOT,
    )
    return {"build_seconds": round(time.monotonic() - started)}


def _password(home: Path) -> str:
    for line in (home / "demo-login.txt").read_text(encoding="utf-8").splitlines():
        if line.startswith("password:"):
            return line.split(":", 1)[1].strip()
    raise SystemExit(f"no password in {home / 'demo-login.txt'}")


def server_time(requests: int, language: str) -> dict[str, Any]:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from patron.account.models import User

    client = Client(headers={"accept-language": language})
    client.force_login(User.objects.get(username="admin"))
    assert client.get("/insights/").status_code == 200  # warm-up: imports, caches
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get("/insights/")
        times.append(time.perf_counter() - started)
        assert response.status_code == 200
    with CaptureQueriesContext(connection) as queries:
        client.get("/insights/")
    return {
        "server_ms_median": round(1000 * statistics.median(times), 1),
        "server_ms_max": round(1000 * max(times), 1),
        "queries": len(queries),
    }


def browser_time(home: Path, language: str, screenshot: Path | None) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    result: dict[str, Any] = {}
    with serving(home, port, workers=2), sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        context = browser.new_context(
            locale="zh-CN" if language.startswith("zh") else "en-US",
            viewport={"width": 1440, "height": 900},
            extra_http_headers={"Accept-Language": language},
        )
        page = context.new_page()
        page.goto(f"{base}/login/", timeout=60_000)
        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", _password(home))
        page.click("main form button[type=submit]")
        page.wait_for_url(f"{base}/customers/")
        for visit in ("first_visit_s", "second_visit_s"):
            started = time.perf_counter()
            page.goto(f"{base}/insights/")
            page.wait_for_function(ALL_DRAWN, timeout=30_000)
            result[visit] = round(time.perf_counter() - started, 2)
        result["charts"] = page.evaluate("document.querySelectorAll('[data-chart]').length")
        if screenshot is not None:
            page.wait_for_timeout(1500)  # ECharts' entry animations
            page.screenshot(path=str(screenshot), full_page=True)
            result["screenshot"] = str(screenshot)
        browser.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--home", type=Path)
    parser.add_argument("--requests", type=int, default=10)
    parser.add_argument("--language", default="en", help="en or zh-hans")
    parser.add_argument("--screenshot", type=Path)
    args = parser.parse_args()
    home = args.home or Path(f"/tmp/patron-bench-dashboard-{args.customers}")
    open_home(
        home,
        ".bench-dashboard.json",
        {"customers": args.customers},
        lambda: _build(home, args.customers),
    )
    figures = {**server_time(args.requests, args.language)}
    figures.update(browser_time(home, args.language, args.screenshot))
    for name, value in figures.items():
        print(f"{name:>18}: {value}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
