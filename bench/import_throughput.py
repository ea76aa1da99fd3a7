"""How many order rows per second `patron import orders` sustains, from CSV and Parquet, into
SQLite and PostgreSQL.

    python bench/import_throughput.py [--rows 1000000] [--customers 100000] [--databases sqlite,postgres]

For each database: a fresh database, the customers imported first (not timed), then the same
orders file imported as CSV and (into a second fresh database) as Parquet, timed end to end
through the CLI's code path (parse, validate, resolve customers, fingerprint, insert, commit).
Then the re-import of the same file (all unchanged) is timed too. Prints one line per run and a
JSON object last. Set OMP_NUM_THREADS=1; the machine is shared and noisy: compare ratios.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
STATUSES = ["completed", "delivered", "paid", "shipped", "cancelled"]


def make_files(folder: Path, rows: int, customers: int, seed: int = 1) -> tuple[Path, Path, Path]:
    rng = random.Random(seed)
    customers_csv = folder / "customers.csv"
    with customers_csv.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["external_id", "name", "province", "city", "registered_at"])
        for i in range(customers):
            writer.writerow([f"C{i:07d}", f"客户{i}", "广东", "深圳", "2024-01-01 00:00:00"])
    columns: dict[str, list[str]] = {
        k: []
        for k in (
            "external_id",
            "customer_external_id",
            "status",
            "placed_at",
            "paid_at",
            "total_amount",
            "discount_amount",
            "shipping_fee",
            "currency",
            "channel",
            "store",
        )
    }
    for i in range(rows):
        day = 1 + i % 28
        columns["external_id"].append(f"O{i:08d}")
        columns["customer_external_id"].append(f"C{rng.randrange(customers):07d}")
        columns["status"].append(STATUSES[i % len(STATUSES)])
        columns["placed_at"].append(f"2025-{1 + i % 12:02d}-{day:02d} 10:{i % 60:02d}:00")
        columns["paid_at"].append(f"2025-{1 + i % 12:02d}-{day:02d} 10:{i % 60:02d}:30")
        columns["total_amount"].append(f"{rng.randrange(100, 100000) / 100:.2f}")
        columns["discount_amount"].append("0.00")
        columns["shipping_fee"].append("8.00")
        columns["currency"].append("CNY")
        columns["channel"].append("online")
        columns["store"].append("天猫旗舰店")
    table = pa.table(columns)
    orders_csv, orders_parquet = folder / "orders.csv", folder / "orders.parquet"
    pa.csv.write_csv(table, orders_csv)
    pq.write_table(table, orders_parquet)
    return customers_csv, orders_csv, orders_parquet


def run(database_url: str | None, home: Path, args: list[str]) -> dict[str, object]:
    env = {**os.environ, "PATRON_HOME": str(home), "OMP_NUM_THREADS": "1"}
    env.pop("DATABASE_URL", None)
    if database_url:
        env["DATABASE_URL"] = database_url
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "patron.cli", "import", *args, "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"import failed: {result.stderr[-2000:]}")
    summary = json.loads(result.stdout.splitlines()[-1])
    summary["wall_seconds"] = elapsed
    return summary


def fresh_postgres(name: str) -> str:
    for sql in (f"DROP DATABASE IF EXISTS {name}", f"CREATE DATABASE {name}"):
        subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-q", "-c", sql], check=True)
    return f"postgres://postgres@127.0.0.1:5432/{name}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--databases", default="sqlite,postgres")
    opts = parser.parse_args()
    import pyarrow.csv  # noqa: F401 - registers pa.csv

    work = Path(tempfile.mkdtemp(prefix="patron-bench-"))
    customers_csv, orders_csv, orders_parquet = make_files(work, opts.rows, opts.customers)
    results = []
    for database in opts.databases.split(","):
        for fmt, path in (("csv", orders_csv), ("parquet", orders_parquet)):
            home = work / f"{database}-{fmt}"
            home.mkdir()
            url = fresh_postgres(f"patron_bench_{fmt}") if database == "postgres" else None
            run(url, home, ["customers", str(customers_csv), "--source", "bench"])
            first = run(url, home, ["orders", str(path), "--source", "bench"])
            again = run(url, home, ["orders", str(path), "--source", "bench"])
            row = {
                "database": database,
                "format": fmt,
                "rows": opts.rows,
                "import_seconds": round(first["seconds"], 2),
                "rows_per_second": round(opts.rows / first["seconds"]),
                "reimport_rows_per_second": round(opts.rows / again["seconds"]),
                "inserted": first["inserted"],
                "reimport_unchanged": again["unchanged"],
            }
            print(
                f"{database:9} {fmt:8} {row['rows_per_second']:>8,} rows/s "
                f"({row['import_seconds']} s); re-import {row['reimport_rows_per_second']:,} rows/s",
                flush=True,
            )
            results.append(row)
    print(json.dumps({"benchmark": "import_throughput", "results": results}))


if __name__ == "__main__":
    main()
