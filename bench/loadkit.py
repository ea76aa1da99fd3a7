"""What the loopback load benchmarks share: a throw-away ``PATRON_HOME`` built once (a marker
file keeps what the build made; a changed migration builds it again), ``patron serve`` as
production runs it, an open loop at a fixed rate measured from each request's *scheduled*
time (so a stalled server cannot hide its queue: coordinated omission), a closed loop for
saturation, the CPU of the client, the server and the machine, and the rows they print.

Used by ``checkout_policy.py`` and ``service_desk.py``; import it as ``loadkit`` (the scripts
run from this folder).
"""

from __future__ import annotations

import hashlib
import http.client
import itertools
import json
import math
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))


# ---------------------------------------------------------------------- the home


def django_setup(home: Path) -> None:
    os.environ["PATRON_HOME"] = str(home)
    os.environ.pop("DATABASE_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "patron.settings")
    import django

    django.setup()
    from django.core.management import call_command

    from patron.account.services import roles_sync

    call_command("migrate", interactive=False, verbosity=0)
    roles_sync()


def schema_fingerprint() -> str:
    """Of every migration file: a home built before one changed is built again."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "src" / "patron").glob("*/migrations/*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def open_home(
    home: Path, marker_name: str, params: dict[str, Any], build: Callable[[], dict[str, Any]]
) -> dict[str, Any]:
    """Django set up on ``home`` (migrated), and what its marker keeps: ``build()``'s answer
    plus ``params`` and the schema fingerprint. Built now when there is no marker or the
    migrations changed since (the old home is removed: it has the marker, so it is ours); a
    home built with other ``params`` is refused."""
    marker = home / marker_name
    schema = schema_fingerprint()
    kept: dict[str, Any] | None = None
    if marker.exists():
        kept = json.loads(marker.read_text())
        other = {name: kept.get(name) for name, value in params.items() if kept.get(name) != value}
        if other:
            built = ", ".join(f"{name}={value}" for name, value in other.items())
            raise SystemExit(f"{home} was built with {built}: pass the same or another --home")
        if kept.get("schema") != schema:
            print(f"setup: the migrations changed since {home} was built: building again")
            shutil.rmtree(home)
            kept = None
    home.mkdir(parents=True, exist_ok=True)
    django_setup(home)
    if kept is not None:
        print(f"setup: reusing {home} (built in {kept['build_seconds']} s)", flush=True)
    else:
        kept = {**build(), **params, "schema": schema}
        marker.write_text(json.dumps(kept, indent=1))
    return kept


# ---------------------------------------------------------------------- the server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(home: Path, port: int, workers: int) -> Iterator[subprocess.Popen[bytes]]:
    """``patron serve`` as production runs it, until the block ends."""
    env = {**os.environ, "PATRON_HOME": str(home), "OMP_NUM_THREADS": "1"}
    env.pop("DATABASE_URL", None)
    log = (home / "server.log").open("wb")
    command = [sys.executable, "-m", "patron.cli", "serve", "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--workers", str(workers)],
        env=env,
        stdout=log,  # gunicorn's access log: one line a request, as in production
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None:
                raise SystemExit(f"patron serve exited: {_tail(home / 'server.log')}")
            try:
                # The login page: cheap, and it loads the URL conf (the API's included). Not the
                # OpenAPI document, which is generated per request (450 kB, seconds of CPU on
                # a busy machine: the 5 s probe never saw it answer).
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                conn.request("GET", "/login/")
                if conn.getresponse().status == 200:
                    conn.close()
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"patron serve did not answer: {_tail(home / 'server.log')}")
            time.sleep(0.2)
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)  # gunicorn's master and its workers
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        log.close()


def _tail(path: Path) -> str:
    return path.read_text(errors="replace")[-2000:]


# ---------------------------------------------------------------------- CPU accounting

_TICKS = os.sysconf("SC_CLK_TCK")


def _process_cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime + stime


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _machine_jiffies() -> tuple[int, int]:
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


@dataclass
class CpuMeter:
    """CPU used by the client (this process), the server (gunicorn) and the whole machine."""

    server_pid: int
    cores: int = field(default_factory=lambda: os.cpu_count() or 1)

    def snapshot(self) -> tuple[float, float, tuple[int, int], float]:
        server = sum(
            _process_cpu_seconds(p) for p in [self.server_pid, *_children(self.server_pid)]
        )
        return time.process_time(), server, _machine_jiffies(), time.perf_counter()

    def since(self, before: tuple[float, float, tuple[int, int], float]) -> dict[str, float]:
        client, server, (busy, total), wall = self.snapshot()
        elapsed = wall - before[3]
        machine = (busy - before[2][0]) / max(1, total - before[2][1])
        return {
            "server_cpu_seconds": round(server - before[1], 2),
            "client_cpu_pct": round(100 * (client - before[0]) / elapsed),  # of one core
            "server_cpu_pct": round(100 * (server - before[1]) / elapsed),  # of one core
            "machine_busy_pct": round(100 * machine * self.cores),  # of one core
        }


# ---------------------------------------------------------------------- the load


class Connection:
    """One keep-alive connection; a request the server closed under us is retried once."""

    def __init__(self, port: int, headers: dict[str, str]) -> None:
        self.port = port
        self.headers = headers
        self.conn: http.client.HTTPConnection | None = None
        self.used = False
        self.reconnects = 0

    def get(self, path: str) -> tuple[int, bytes]:
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                self.used = False
            try:
                self.conn.request("GET", path, headers=self.headers)
                response = self.conn.getresponse()
                body = response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn.close()
                self.conn = None
                if attempt == 0 and self.used:  # the server closed an idle keep-alive
                    self.reconnects += 1
                    continue
                raise
            self.used = True
            if response.will_close:
                self.conn.close()
                self.conn = None
            return response.status, body
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


@dataclass(frozen=True)
class Endpoint:
    name: str
    path: str  # with {id} for an id drawn at random from the load's list
    key: str  # a key every good answer (a JSON object) has
    # For answers that are not JSON (pages): says whether the body of a 200 is good.
    check: Callable[[bytes], bool] | None = None

    def good(self, body: bytes) -> bool:
        if self.check is not None:
            return self.check(body)
        try:
            return self.key in json.loads(body)
        except ValueError:
            return False


@dataclass
class Recorder:
    latencies: list[float] = field(default_factory=list)  # from the scheduled time
    service: list[float] = field(default_factory=list)  # from the moment it was sent
    # Sent this late: waiting for a free connection (all busy: the server's queue, seen from
    # here) plus the client thread's own wake-up delay.
    lags: list[float] = field(default_factory=list)
    errors: int = 0
    reconnects: int = 0
    first_errors: list[str] = field(default_factory=list)
    # Given up on (open loop with ``give_up_after``): never sent; each one's wait until then is
    # in ``latencies``, a lower bound of what it would have taken.
    unsent: int = 0

    def merge(self, other: Recorder) -> None:
        self.latencies += other.latencies
        self.service += other.service
        self.lags += other.lags
        self.errors += other.errors
        self.reconnects += other.reconnects
        self.unsent += other.unsent
        self.first_errors = (self.first_errors + other.first_errors)[:5]


def _one(
    connection: Connection, endpoint: Endpoint, item_id: int, scheduled: float, out: Recorder
) -> None:
    sent = time.perf_counter()
    try:
        status, body = connection.get(endpoint.path.format(id=item_id))
    except OSError as error:
        done = time.perf_counter()
        status, body = 0, repr(error).encode()
    else:
        done = time.perf_counter()
    out.latencies.append(done - scheduled)
    out.service.append(done - sent)
    out.lags.append(sent - scheduled)
    if status != 200 or not endpoint.good(body):
        out.errors += 1
        if len(out.first_errors) < 5:
            out.first_errors.append(f"{status} {body[:200]!r}")


def _run_threads(count: int, target: Callable[[int, Recorder], None]) -> Recorder:
    recorders = [Recorder() for _ in range(count)]
    threads = [
        threading.Thread(target=target, args=(i, recorders[i]), daemon=True) for i in range(count)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    total = Recorder()
    for recorder in recorders:
        total.merge(recorder)
    return total


def open_loop(
    port: int,
    headers: dict[str, str],
    endpoint: Endpoint,
    ids: list[int],
    *,
    rate: float,
    seconds: float,
    threads: int,
    give_up_after: float | None = None,
) -> tuple[Recorder, float]:
    """``rate`` requests a second on a fixed schedule, whatever the server's answers take.

    With ``give_up_after``, requests still unsent that many seconds after the schedule ends
    are not sent (a server far slower than the rate would otherwise keep the run going for
    ages): they are counted as ``unsent`` and their wait so far goes into the latencies, so the
    percentiles stay honest lower bounds instead of forgetting the worst requests."""
    total = round(rate * seconds)
    counter = itertools.count()  # next() on it is atomic under the GIL
    start = time.perf_counter() + 0.1
    give_up = math.inf if give_up_after is None else start + seconds + give_up_after

    def client(number: int, out: Recorder) -> None:
        rng = random.Random(number)
        connection = Connection(port, headers)
        while (i := next(counter)) < total:
            scheduled = start + i / rate
            if (now := time.perf_counter()) > give_up:
                out.unsent += 1
                out.latencies.append(now - scheduled)
                continue
            delay = scheduled - now
            if delay > 0:
                time.sleep(delay)
            _one(connection, endpoint, rng.choice(ids), scheduled, out)
        out.reconnects = connection.reconnects
        connection.close()

    recorder = _run_threads(threads, client)
    return recorder, time.perf_counter() - start


def closed_loop(
    port: int,
    headers: dict[str, str],
    endpoint: Endpoint,
    ids: list[int],
    *,
    concurrency: int,
    seconds: float,
) -> tuple[Recorder, float]:
    """``concurrency`` connections, each sending its next request as soon as one is answered."""
    start = time.perf_counter()
    stop = start + seconds

    def client(number: int, out: Recorder) -> None:
        rng = random.Random(1000 + number)
        connection = Connection(port, headers)
        while (now := time.perf_counter()) < stop:
            _one(connection, endpoint, rng.choice(ids), now, out)
        out.reconnects = connection.reconnects
        connection.close()

    recorder = _run_threads(concurrency, client)
    return recorder, time.perf_counter() - start


def percentile(values: list[float], q: float) -> float:
    """Nearest rank, in milliseconds."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def summarise(step: str, endpoint: Endpoint, recorder: Recorder, seconds: float) -> dict[str, Any]:
    row: dict[str, Any] = {
        "step": step,
        "endpoint": endpoint.name,
        "requests": len(recorder.service),  # sent and answered (or failed)
        "errors": recorder.errors,
        "reconnects": recorder.reconnects,
        "rate": round(len(recorder.service) / seconds, 1),
        "unsent": recorder.unsent,
    }
    for label, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p99.9", 0.999), ("max", 1.0)):
        row[f"{label}_ms"] = round(percentile(recorder.latencies, q), 2)
    row["service_p99_ms"] = round(percentile(recorder.service, 0.99), 2)
    row["send_delay_p99_ms"] = round(percentile(recorder.lags, 0.99), 2)
    row["first_errors"] = recorder.first_errors
    return row


def measured(row: dict[str, Any], cpu: dict[str, float]) -> dict[str, Any]:
    row.update(cpu)
    row["server_cpu_ms_per_request"] = round(
        1000 * cpu["server_cpu_seconds"] / max(1, row["requests"]), 2
    )
    return row


def print_row(row: dict[str, Any]) -> None:
    print(
        f"{row['step']:10} {row['endpoint']:16} {row['requests']:6} req {row['errors']:3} err "
        f"{row['rate']:7.1f}/s  p50 {row['p50_ms']:6.2f}  p90 {row['p90_ms']:6.2f}  "
        f"p99 {row['p99_ms']:6.2f}  p99.9 {row['p99.9_ms']:6.2f}  max {row['max_ms']:7.2f} ms"
        f"  | from send p99 {row['service_p99_ms']:.2f}, send delay p99 "
        f"{row['send_delay_p99_ms']:.2f} | cpu % of a core: client {row['client_cpu_pct']}, "
        f"server {row['server_cpu_pct']}, machine {row['machine_busy_pct']}; server "
        f"{row['server_cpu_ms_per_request']:.2f} ms cpu/request",
        flush=True,
    )
    if row.get("unsent"):
        print(
            f"    given up: {row['unsent']} requests were still unsent well after the schedule "
            "ended (their wait so far is in the percentiles: lower bounds)"
        )
    for error in row["first_errors"]:
        print(f"    error: {error}")
