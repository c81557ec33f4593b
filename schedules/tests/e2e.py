"""Helpers for end-to-end tests: real processes, their logs and what the demo worker ran.

Each process runs in its own session (process group), so stopping it reaches its children and
nothing else on the machine.
"""

import json
import os
import re
import signal
import socket
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from django.db import DEFAULT_DB_ALIAS, connection
from django.test.utils import setup_databases, teardown_databases

# Celery's default log format: "[2026-01-31 12:00:05,123: INFO/MainProcess] message".
# The processes run with TZ=UTC, so the time is UTC, to the millisecond.
LOG_LINE = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}): \w+/[\w-]+\] (.*)$")
# The stock scheduler logs "Scheduler: Sending due task <entry> (<task>)", the fleet scheduler
# "beat: sending <entry> (<task>) for <slot>"; both just before publishing.
SENDING = re.compile(r"^(?:Scheduler: Sending due task|beat: sending) (\S+) \((\S+)\)(?: for .*)?$")
SCHEDULE_CHANGED = "DatabaseScheduler: Schedule changed."


def wait_for(predicate, *, timeout: float, what: str, interval: float = 0.1):
    """Poll ``predicate`` until it returns something truthy; fail saying ``what`` never happened."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


@contextmanager
def shared_test_database():
    """The test database, for tests whose writes must commit so real processes see them.

    pytest-django creates it only when some collected test is marked ``django_db``; when the
    end-to-end modules run alone none is, and they would run against (and flush) the
    configured database. Create it here then.
    """
    created = None
    if not connection.settings_dict["NAME"].startswith("test_"):
        created = setup_databases(verbosity=0, interactive=False, aliases={DEFAULT_DB_ALIAS})
    try:
        yield
    finally:
        if created is not None:
            teardown_databases(created, verbosity=0)


def text_of(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def database_url(settings_dict: dict) -> str:
    """A DATABASE_URL for a PostgreSQL connection's settings (the test database's real name)."""
    credentials = quote(settings_dict["USER"] or "", safe="")
    if settings_dict.get("PASSWORD"):
        credentials += ":" + quote(settings_dict["PASSWORD"], safe="")
    host = settings_dict["HOST"] or "127.0.0.1"
    port = settings_dict["PORT"] or 5432
    return f"postgres://{credentials}@{host}:{port}/{settings_dict['NAME']}"


class Process:
    """A started command in its own process group."""

    def __init__(self, args: list[str], *, env: dict, cwd: Path, output: Path):
        self.output = output
        with output.open("ab") as sink:
            self.popen = subprocess.Popen(
                args, env=env, cwd=cwd, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def running(self) -> bool:
        return self.popen.poll() is None

    def assert_running(self) -> None:
        """Fail at once, with the end of its output, if the process has exited."""
        if not self.running():
            tail = self.output.read_text(errors="replace")[-4000:]
            raise AssertionError(f"{self.popen.args[:6]} exited with {self.popen.returncode}:\n{tail}")

    def group_alive(self) -> bool:
        self.popen.poll()  # reap our own child: a zombie still counts as a group member
        try:
            os.killpg(self.popen.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def stop(self, *, sig=signal.SIGTERM, timeout: float = 20) -> None:
        """Signal the whole group, wait for it to exit, kill what is left after ``timeout``."""
        if self.group_alive():
            os.killpg(self.popen.pid, sig)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        deadline = time.monotonic() + timeout
        while self.group_alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        if self.group_alive():
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=5)


def _log_time(stamp: str) -> float:
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").replace(tzinfo=UTC).timestamp()


class BeatLog:
    """What beat did, read back from its log file (epoch seconds, millisecond precision)."""

    def __init__(self, path: Path):
        self.path = path

    def _lines(self):
        if not self.path.exists():
            return
        for line in self.path.read_text().splitlines():
            match = LOG_LINE.match(line)
            if match:
                yield _log_time(match.group(1)), match.group(2)

    def sends(self, entry_name: str) -> list[float]:
        """When beat sent ``entry_name``: its "Sending due task" lines, logged just before publishing."""
        return [at for at, message in self._lines() if (sent := SENDING.match(message)) and sent.group(1) == entry_name]

    def sent_tasks(self, entry_name: str) -> set[str]:
        return {
            sent.group(2)
            for _, message in self._lines()
            if (sent := SENDING.match(message)) and sent.group(1) == entry_name
        }

    def schedule_changes(self) -> list[float]:
        """When beat noticed a change in the database and reloaded its schedule."""
        return [at for at, message in self._lines() if message == SCHEDULE_CHANGED]

    def count(self, text: str) -> int:
        return sum(1 for _, message in self._lines() if text in message)


class WorkerCalls:
    """The calls the demo worker recorded, one JSON object a line."""

    def __init__(self, path: Path):
        self.path = path

    def all(self) -> list[dict]:
        if not self.path.exists():
            return []
        # The worker may be writing a line as we read: only the lines it ended count.
        *complete, _ = self.path.read_text().split("\n")
        return [json.loads(line) for line in complete if line.strip()]

    def of(self, service_id: str) -> list[dict]:
        return [call for call in self.all() if call["service_id"] == service_id]


@dataclass(eq=False)
class Timings:
    """Figures measured across the end-to-end tests; as a pytest plugin, printed in the summary."""

    scheduler: str
    pickups: list[float]
    dispatch_errors: list[float]

    @staticmethod
    def describe(values: list[float]) -> str:
        if not values:
            return "none measured"
        ordered = sorted(values)
        middle = len(ordered) // 2
        median = ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
        return f"median {median * 1000:.1f} ms, max {ordered[-1] * 1000:.1f} ms over {len(values)}"

    def pytest_terminal_summary(self, terminalreporter):
        terminalreporter.write_sep("-", f"beat timing, {self.scheduler} scheduler")
        # Only the stock scheduler logs its reloads ("Schedule changed."); the fleet one loads rows
        # in place and says nothing per change (make bench measures its pickup).
        if self.scheduler == "stock":
            terminalreporter.write_line(f"change -> beat reloads its schedule: {self.describe(self.pickups)}")
        terminalreporter.write_line(f"beat send - next_run the API reported: {self.describe(self.dispatch_errors)}")


AMQP_HOST, AMQP_PORT = "127.0.0.1", 5672


@contextmanager
def rabbitmq_vhost(name: str):
    """A RabbitMQ virtual host of this run's own (guest may use it), deleted afterwards.

    The shared server is only asked for a vhost, never stopped: parallel runs cannot see each
    other's queues. Yields the broker URL.
    """
    import pytest

    try:
        socket.create_connection((AMQP_HOST, AMQP_PORT), timeout=1).close()
    except OSError:
        pytest.skip(f"needs RabbitMQ on {AMQP_HOST}:{AMQP_PORT} (make test starts it)")
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", name], check=True, capture_output=True)
    try:
        subprocess.run(
            ["rabbitmqctl", "-q", "set_permissions", "-p", name, "guest", ".*", ".*", ".*"],
            check=True,
            capture_output=True,
        )
        yield f"amqp://guest:guest@{AMQP_HOST}:{AMQP_PORT}/{quote(name, safe='')}"
    finally:
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", name], capture_output=True)


@contextmanager
def app_broker(app, url: str):
    """This process's Celery app publishing to ``url`` (run now, cleanup), and back afterwards."""
    saved = app.conf.broker_url, app.conf.broker_write_url
    app.conf.broker_url = app.conf.broker_write_url = url
    app._pool = app.amqp._producer_pool = None  # both cache a connection to the old broker
    try:
        yield
    finally:
        app.conf.broker_url, app.conf.broker_write_url = saved
        app._pool = app.amqp._producer_pool = None
