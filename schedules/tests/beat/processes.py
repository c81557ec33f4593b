"""Real fleet beats and the demo worker for the process and outage tests, and what the worker ran."""

import signal
import subprocess
import sys
import time
from pathlib import Path

from ..e2e import WorkerCalls

ROOT = Path(__file__).resolve().parents[3]
# The path settings.CELERY_BEAT_SCHEDULER names, so the re-export is what these beats load.
SCHEDULER = "schedules.scheduler:FleetScheduler"


class Processes:
    """Celery processes started by a test, each logging to its own file; all stopped at the end."""

    def __init__(self, tmp: Path, env: dict):
        self.tmp, self.env, self.started = tmp, env, {}

    def start(self, name: str, *args: str) -> subprocess.Popen:
        log = (self.tmp / f"{name}.log").open("w")
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", *args],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.started[name] = process
        return process

    def beat(self, name: str) -> subprocess.Popen:
        return self.start(
            name,
            "-A",
            "luffy_admin",
            "beat",
            "-S",
            SCHEDULER,
            "--pidfile=",
            "-s",
            str(self.tmp / f"{name}-schedule"),
            "--loglevel",
            "INFO",
        )

    def worker(self, queue: str) -> subprocess.Popen:
        return self.start(
            "worker",
            "-A",
            "demo.worker",
            "worker",
            "-Q",
            queue,
            "--pool",
            "solo",
            "-n",
            f"fleet-{queue}@%h",
            "--without-gossip",
            "--without-mingle",
            "--loglevel",
            "INFO",
        )

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text()

    def wait_for(self, name: str, text: str, timeout: float = 30) -> float:
        """Block until ``text`` is in the process's log; returns the time it was seen."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if text in self.log(name):
                return time.time()
            if self.started[name].poll() is not None:
                raise AssertionError(f"{name} exited early:\n{self.log(name)}")
            time.sleep(0.05)
        raise AssertionError(f"{name} never logged {text!r}:\n{self.log(name)}")

    def stop_all(self):
        for process in self.started.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.started.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def calls_in(record: Path) -> list[dict]:
    """What the demo worker ran, one JSON object a line."""
    return WorkerCalls(record).all()
