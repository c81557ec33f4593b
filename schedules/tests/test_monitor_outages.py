"""The run monitor through a database outage and a broker outage, on servers of this test's own.

A PostgreSQL cluster and a Redis server are started here (the helpers of
test_scheduler_outages.py), with a single fleet beat (which keeps sending from memory while the
database is down), the demo worker with task events on, and ``manage.py monitor_runs``, on a
one-second schedule. PostgreSQL is stopped for 4 s, then Redis for 5 s; the last test hangs
PostgreSQL (SIGSTOP) and stops the monitor meanwhile.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .beat.test_scheduler_outages import SETUP
from .e2e import Process, text_of, wait_for
from .servers import PG_BIN, Cluster, RedisServer, as_postgres, scratch_root

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
POSTGRES_DOWN, REDIS_DOWN = 4, 5


@pytest.fixture(scope="module")
def outage(tmp_path_factory):
    root = scratch_root("monitor-outage-")
    cluster, broker = Cluster(root), RedisServer()
    env = dict(
        os.environ,
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
        LUFFY_DEMO_RECORD_FILE=str(root / "calls.jsonl"),
        CELERY_BROKER_URL=f"redis://127.0.0.1:{broker.port}/0",
        LUFFY_TASK_CATALOGUE='[{"name": "fetch_logs", "task": "src.services.tasks.fetch_and_process_logs", '
        '"queue": "outage", "description": "Fetch logs.", "min_interval_seconds": 1, "max_interval_seconds": 86400}]',
        LUFFY_QUEUES="outage",
        LUFFY_BEAT_HEARTBEAT_SECONDS="0",
        LUFFY_BEAT_SINGLE="true",
        # Nothing turns lost during this test: every run either gets its events or is left alone.
        LUFFY_RUN_LOST_SECONDS="600",
    )
    processes = []
    try:
        cluster.init()
        cluster.start()
        broker.start()
        cluster.psql("postgres", "CREATE DATABASE runs")
        env["DATABASE_URL"] = cluster.url("runs")
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
        setup = SETUP.format(service_ids=["outage-svc"])
        subprocess.run([sys.executable, "manage.py", "shell", "-c", setup], cwd=ROOT, env=env, check=True)

        def start(name, args, ready):
            process = Process(args, env=env, cwd=ROOT, output=root / f"{name}.out")
            processes.append(process)
            wait_for(
                lambda: process.assert_running() or ready in text_of(root / f"{name}.out"),
                timeout=60,
                what=f"{name} to start: {text_of(root / f'{name}.out')[-1500:]}",
            )
            return process

        celery = [sys.executable, "-m", "celery"]
        start(
            "worker",
            [*celery, "-A", "demo.worker", "worker", "-Q", "outage", "--pool", "solo", "--without-mingle"]
            + ["--without-gossip", "--hostname", "outage@localhost", "--loglevel", "INFO"],
            " ready.",
        )
        monitor = start("monitor", [sys.executable, "manage.py", "monitor_runs"], "monitor: listening")
        beat = [*celery, "-A", "luffy_admin", "beat", "--pidfile=", "-s", str(root / "bs"), "--loglevel", "INFO"]
        start("beat", beat, "beat: Starting")

        def runs(where: str = "TRUE") -> list[tuple[float, str]]:
            rows = cluster.psql(
                "runs", f"SELECT extract(epoch FROM slot), state FROM schedules_dispatch WHERE {where} ORDER BY slot"
            )
            return [(float(slot), state) for slot, state in (line.split("|") for line in rows.split())]

        wait_for(lambda: "succeeded" in {state for _, state in runs()}, timeout=30, what="a first succeeded run")
        marks = {"postgres_down": time.time()}
        cluster.stop()
        time.sleep(POSTGRES_DOWN)
        cluster.start()
        marks["postgres_up"] = time.time()
        time.sleep(5)
        marks["redis_down"] = time.time()
        broker.stop()
        time.sleep(REDIS_DOWN)
        broker.start()
        marks["redis_up"] = time.time()
        yield runs, marks, monitor, cluster
    finally:
        for process in reversed(processes):
            process.stop()
        if broker.process and broker.process.poll() is None:
            broker.stop()
        try:
            as_postgres(PG_BIN / "pg_ctl", "-D", cluster.data, "-m", "immediate", "stop")
        except subprocess.CalledProcessError:
            pass  # never started, or already stopped
        shutil.rmtree(root, ignore_errors=True)


def test_runs_sent_while_the_database_was_down_get_their_outcome_once_it_is_back(outage):
    """The beat sent them from memory and wrote them later; the monitor kept their events."""
    runs, marks, _, _ = outage
    window = f"slot BETWEEN to_timestamp({marks['postgres_down'] + 1}) AND to_timestamp({marks['postgres_up'] - 1})"
    wait_for(
        lambda: runs(window) and {state for _, state in runs(window)} == {"succeeded"},
        timeout=40,
        what=f"every run of the database outage to succeed (saw {runs(window)})",
    )


def test_the_monitor_reconnects_to_the_broker_and_keeps_recording(outage):
    runs, marks, monitor, cluster = outage
    after = f"slot > to_timestamp({marks['redis_up'] + 2}) AND state = 'succeeded'"
    wait_for(lambda: len(runs(after)) >= 3, timeout=40, what="runs after the broker outage to succeed")
    monitor.assert_running()
    seen = cluster.psql("runs", "SELECT extract(epoch FROM seen_at) FROM schedules_monitorheartbeat")
    assert float(seen) > marks["redis_up"]


def test_the_monitor_stops_promptly_while_the_database_hangs(outage):
    """Last here (it stops the monitor): PostgreSQL under SIGSTOP, the monitor gives up on a write
    after LUFFY_DB_MONITOR_WAIT_SECONDS (events come every second, written every 0.5 s), and a
    SIGTERM meanwhile (a deploy, ``docker stop``) ends it within that bound, not when the
    database answers again."""
    _, _, monitor, cluster = outage
    gave_up = "monitor: database unavailable while"
    before = text_of(monitor.output).count(gave_up)
    cluster.hang()
    try:
        wait_for(
            lambda: text_of(monitor.output).count(gave_up) > before,
            timeout=15,
            what="the monitor to give up on a write to the hung database",
        )
        signalled = time.monotonic()
        os.kill(monitor.pid, signal.SIGTERM)
        wait_for(lambda: not monitor.running(), timeout=20, interval=0.1, what="the monitor to exit after SIGTERM")
        took = time.monotonic() - signalled
    finally:
        cluster.resume()
    print(f"\nmonitor stopped during a database hang: exited {took:.2f} s after SIGTERM")
    assert took <= 10, f"the monitor took {took:.2f} s to exit"
