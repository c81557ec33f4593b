"""Load run: the API under gunicorn (gunicorn.conf.py), PostgreSQL on 127.0.0.1, an API key.

    python bench/api_load.py                       # 8 clients, 2,000 reads then 500 writes
    python bench/api_load.py --reads 5000 --clients 16

It creates (or empties) the database ``--database`` (default luffy_bench_api) on the PostgreSQL
of DATABASE_URL's host (default 127.0.0.1:5432), migrates it, seeds 20 services with 5 schedules
each and a key with every scope, starts gunicorn on a free port with the throttles raised (a
bench is not an abuser), then sends, from ``--clients`` threads on keep-alive connections:

- reads: GET /schedules (a page of 50), /services/{id}, /services/{id}/schedules, /schedules/{id}
  in turn;
- writes: PATCH /schedules/{id} (enabled flipped, the audit trail written, beat told), each
  client on its own schedules.

It prints requests per second and p50/p99 latency for each phase, and fails if any answer was
not the expected status. Bounded: ``--timeout`` seconds for the whole run (default 300).
"""

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
BASE = "/api/v1/task-scheduling"
SEED = """
import json
from schedules import services
from schedules.models import ApiKeyScope
actor = services.Actor.system("bench")
schedule_ids = []
for number in range(20):
    service = services.service_create(actor=actor, service_id=f"bench-{number}", name=f"Bench {number}")
    for minute in range(5):
        schedule = services.schedule_create(
            actor=actor, service=service, task_name="fetch_logs", cron_expression=f"{minute} * * * *"
        )
        schedule_ids.append(str(schedule.pk))
_, key = services.api_key_create(name="bench", scopes=set(ApiKeyScope.NAMES))
print(json.dumps({"key": key, "schedules": schedule_ids}))
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def database_url(name: str) -> str:
    parts = urlsplit(os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"))
    return urlunsplit(parts._replace(path=f"/{name}"))


def recreate_database(name: str) -> None:
    import psycopg2

    admin = psycopg2.connect(database_url("postgres"))
    admin.autocommit = True  # DROP/CREATE DATABASE refuse to run in a transaction
    try:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
            cursor.execute(f'CREATE DATABASE "{name}"')
    finally:
        admin.close()


class Client:
    """One keep-alive connection; reconnects when the server closed it."""

    def __init__(self, port: int, key: str):
        self.port, self.headers = port, {"Authorization": f"Token {key}", "Content-Type": "application/json"}
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def send(self, method: str, path: str, body=None) -> tuple[int, float]:
        payload = json.dumps(body) if body is not None else None
        started = time.perf_counter()
        for attempt in (1, 2):
            try:
                self.connection.request(method, path, body=payload, headers=self.headers)
                response = self.connection.getresponse()
                response.read()
                return response.status, time.perf_counter() - started
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.connection.close()
                self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


def run_phase(name, requests, clients, deadline) -> dict:
    """``requests``: per client, a list of (method, path, body, expected status)."""
    latencies, failures, lock = [], [], threading.Lock()

    def work(client, plan):
        for method, path, body, expected in plan:
            if time.monotonic() > deadline:
                failures.append("deadline")
                return
            status, seconds = client.send(method, path, body)
            with lock:
                latencies.append(seconds)
                if status != expected:
                    failures.append(f"{method} {path}: {status}")

    threads = [threading.Thread(target=work, args=pair) for pair in zip(clients, requests, strict=True)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    figures = {
        "phase": name,
        "requests": len(ordered),
        "seconds": elapsed,
        "per_second": len(ordered) / elapsed,
        "p50_ms": statistics.median(ordered) * 1000,
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
        "failures": failures,
    }
    print(
        f"{name:6} {figures['requests']:5} requests in {elapsed:6.2f} s: {figures['per_second']:7.1f} req/s, "
        f"p50 {figures['p50_ms']:6.1f} ms, p99 {figures['p99_ms']:6.1f} ms, {len(failures)} failures"
    )
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reads", type=int, default=2000)
    parser.add_argument("--writes", type=int, default=500)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--database", default="luffy_bench_api")
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()
    deadline = time.monotonic() + args.timeout

    recreate_database(args.database)
    port = free_port()
    var = ROOT / "var" / "bench-api"
    var.mkdir(parents=True, exist_ok=True)
    env = dict(
        os.environ,
        DATABASE_URL=database_url(args.database),
        LUFFY_VAR_DIR=str(var),
        LUFFY_BEAT_HEARTBEAT_SECONDS="0",
        LUFFY_THROTTLE_KEY="1000000/min",
        GUNICORN_BIND=f"127.0.0.1:{port}",
        DJANGO_LOG_LEVEL="WARNING",
    )
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "-v", "0"], env=env, cwd=ROOT, check=True)
    seeded = subprocess.run([*manage, "shell", "-c", SEED], env=env, cwd=ROOT, check=True, capture_output=True)
    fixtures = json.loads(seeded.stdout.decode().strip().splitlines()[-1])
    gunicorn = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--access-logfile", "/dev/null"]
    server = subprocess.Popen(
        [*gunicorn, "luffy_admin.wsgi"],
        env=env,
        cwd=ROOT,
        stdout=(var / "gunicorn.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        while True:
            try:
                if Client(port, fixtures["key"]).send("GET", f"{BASE}/health")[0] == 200:
                    break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"gunicorn did not come up; see {var / 'gunicorn.log'}")
            time.sleep(0.2)

        schedules = fixtures["schedules"]
        read_paths = [
            f"{BASE}/schedules?page_size=50",
            f"{BASE}/services/bench-{{n}}",
            f"{BASE}/services/bench-{{n}}/schedules",
            f"{BASE}/schedules/{{schedule}}",
        ]
        reads = [
            [
                ("GET", read_paths[i % 4].format(n=i % 20, schedule=schedules[i % len(schedules)]), None, 200)
                for i in range(c, args.reads, args.clients)
            ]
            for c in range(args.clients)
        ]
        writes = [
            [
                ("PATCH", f"{BASE}/schedules/{schedules[c + args.clients * (i % 4)]}", {"enabled": i % 2 == 1}, 200)
                for i in range(c, args.writes, args.clients)
            ]
            for c in range(args.clients)
        ]
        print(f"gunicorn.conf.py on 127.0.0.1:{port}, PostgreSQL database {args.database}, {args.clients} clients")
        results = [
            run_phase("reads", reads, [Client(port, fixtures["key"]) for _ in range(args.clients)], deadline),
            run_phase("writes", writes, [Client(port, fixtures["key"]) for _ in range(args.clients)], deadline),
        ]
    finally:
        server.terminate()
        server.wait(timeout=30)
    return 1 if any(result["failures"] for result in results) else 0


if __name__ == "__main__":
    sys.exit(main())
