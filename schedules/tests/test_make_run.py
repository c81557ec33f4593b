"""`make run` on a bare machine: the embedded default (SQLite + kombu's folder broker) works.

Runs ``scripts/run.sh`` (what ``make run`` runs once the virtualenv exists) with none of the
project's variables set and its files in a temporary ``LUFFY_VAR_DIR``.
"""

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from http import HTTPStatus
from pathlib import Path

import pytest
from django.conf import settings

from schedules.management.commands.load_demo_data import DEMO

from .e2e import Process, WorkerCalls, free_port, wait_for

# The demo data's earliest dispatches: web-app's fetch_logs every minute, billing-api's every 60 s.
FIRST_DISPATCH_SECONDS = 60
START_SECONDS = 45
HEARTBEAT_SECONDS = 10
STOP_SECONDS = 40
PROJECT_PREFIXES = ("DJANGO_", "DATABASE_URL", "CELERY_", "LUFFY_")


def _admin_login_status(port: int) -> int | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/admin/login/", timeout=2) as response:
            return response.status
    except OSError:
        return None


def _heartbeat_worker(database: Path) -> str | None:
    with sqlite3.connect(database, timeout=20) as db:
        row = db.execute("SELECT worker FROM schedules_beatheartbeat").fetchone()
    return row[0] if row else None


def _finished_run(database: Path) -> tuple | None:
    """A demo run the monitor saw finish: (beat entry, state, worker)."""
    with sqlite3.connect(database, timeout=20) as db:
        return db.execute(
            "SELECT periodic_task_name, state, worker FROM schedules_dispatch "
            "WHERE periodic_task_name LIKE 'luffy:%' AND state IN ('succeeded', 'failed')"
        ).fetchone()


def _bare_environment(**extra) -> dict:
    env = {name: value for name, value in os.environ.items() if not name.startswith(PROJECT_PREFIXES)}
    env.update(VENV=sys.prefix, PYTHONUNBUFFERED="1", **extra)
    return env


def test_make_run_on_a_busy_port_says_how_to_pick_another_before_starting_anything(tmp_path):
    """A taken port stops the run command at once, with the way out, before it migrates or starts a process."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            ["bash", "scripts/run.sh"],
            env=_bare_environment(PORT=str(port), LUFFY_VAR_DIR=str(tmp_path / "var")),
            cwd=Path(settings.BASE_DIR),
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 1
    assert result.stderr == f"luffy-admin: port {port} on 127.0.0.1 is in use. Pick another one: PORT=8010 make run\n"
    assert not (tmp_path / "var").exists()


@pytest.mark.e2e
def test_make_run_serves_dispatches_and_stops_on_the_embedded_default(tmp_path):
    """The admin answers, beat's first demo dispatch reaches the demo worker, beat's heartbeat
    is recorded, the monitor records a run's outcome, and stopping the run command (SIGTERM, as
    a supervisor would) ends every process it started."""
    var = tmp_path / "var"
    port = free_port()
    env = _bare_environment(PORT=str(port), LUFFY_VAR_DIR=str(var))
    started = time.time()
    run = Process(["bash", "scripts/run.sh"], env=env, cwd=Path(settings.BASE_DIR), output=tmp_path / "run.out")
    try:
        wait_for(
            lambda: _admin_login_status(port) == HTTPStatus.OK,
            timeout=START_SECONDS,
            what=f"the admin login page (see {tmp_path / 'run.out'})",
        )
        calls = WorkerCalls(var / "demo-calls.jsonl")
        first = wait_for(
            calls.all, timeout=FIRST_DISPATCH_SECONDS + 15, what=f"the first demo dispatch (see {tmp_path / 'run.out'})"
        )[0]

        assert first["service_id"] in DEMO  # any of the demo services that run every minute
        assert first["args"] == [first["service_id"]]
        assert first["queue"] == "default"
        assert first["periodic_task_name"].startswith(f"luffy:{first['service_id']}:")
        assert first["received_at"] > started
        assert (var / "db.sqlite3").exists() and (var / "broker").is_dir()
        # The fleet scheduler is what `make run` starts, as the single beat on SQLite.
        assert "FleetScheduler" in (tmp_path / "run.out").read_text()
        worker = wait_for(
            lambda: _heartbeat_worker(var / "db.sqlite3"),
            timeout=3 * HEARTBEAT_SECONDS,
            what="the demo worker to record beat's heartbeat",
        )
        assert worker.startswith("demo@")
        # Task events flow on the filesystem broker too: the monitor records the demo runs' outcomes.
        *_, run_worker = wait_for(
            lambda: _finished_run(var / "db.sqlite3"), timeout=30, what="the monitor to record a run's outcome"
        )
        assert run_worker.startswith("demo@")
    finally:
        os.kill(run.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_SECONDS
        while run.group_alive() and time.monotonic() < deadline:
            time.sleep(0.2)
        stopped = not run.group_alive()
        run.stop()
    assert stopped, f"processes of the run command outlived it by {STOP_SECONDS} s"
    log = (tmp_path / "run.out").read_text()
    # A quiet log: the heartbeat's lines are DEBUG, the broker URL is complete, a clean stop is no error.
    assert [line for line in log.splitlines() if "beat_heartbeat" in line and "INFO" in line] == []
    assert "No hostname was supplied" not in log
    # flaky-svc's failures are the demo's (demo/worker.py); any other error is not.
    errors = [line for line in log.splitlines() if (" ERROR " in line or "ERROR/" in line)]
    assert [line for line in errors if "FlakyServiceError" not in line] == []
