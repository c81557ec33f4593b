"""Database and broker outages, on a PostgreSQL cluster and a Redis server started for this test.

The shared servers are never touched: the session fixture runs ``initdb`` + ``pg_ctl`` and
``redis-server`` on free ports of their own, then two fleet beats on one-second schedules,
one with the leader lock (the default) and one in single-beat mode, each on its own database,
with the demo worker consuming both queues. PostgreSQL is stopped for 4 s, then Redis for 5 s.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

import pytest

from ..e2e import wait_for
from ..servers import PG_BIN, Cluster, RedisServer, scratch_root
from .processes import ROOT, Processes, calls_in

pytestmark = pytest.mark.e2e

MODES = ("leader-lock", "single")
POSTGRES_DOWN, REDIS_DOWN = 4, 5


SETUP = """
from django_celery_beat.models import PeriodicTask
from schedules import services
actor = services.Actor.system("tests")
for service_id in {service_ids!r}:
    service = services.service_create(actor=actor, service_id=service_id, name=service_id)
    services.schedule_create(actor=actor, service=service, task_name="fetch_logs",
                             schedule_type="interval", interval_seconds=1)
# One-second slots would expire while the worker reconnects to Redis; give them 30 s, as an
# operator sets expire_seconds in django-celery-beat's admin.
PeriodicTask.objects.update(expire_seconds=30)
"""


@dataclass
class OutageRun:
    received: list[dict]
    dispatches: dict[str, list[tuple[str, float, float, str]]]  # mode -> (name, slot, sent_at, task id)
    marks: dict[str, float]
    alive_before_stop: dict[str, bool]
    exit_codes: dict[str, int]
    logs: dict[str, str]


def services_of(mode: str) -> list[str]:
    return [f"{mode}-{n}" for n in range(2)]


def dispatches_of(cluster: Cluster, mode: str) -> list[tuple[str, float, float, str]]:
    """The mode's dispatch records: (entry name, slot, sent at, task id), times in epoch seconds."""
    rows = cluster.psql(
        mode.replace("-", "_"),
        "SELECT periodic_task_name, extract(epoch FROM slot), extract(epoch FROM sent_at), task_id "
        "FROM schedules_dispatch",
    )
    return [
        (name, float(slot), float(sent_at), task_id)
        for name, slot, sent_at, task_id in (line.split("|") for line in rows.split())
    ]


def every_schedule_sent_after(cluster: Cluster, moment: float) -> bool:
    """Each schedule of each mode has a claimed slot later than ``moment``."""
    for mode in MODES:
        last = {}
        for name, slot, _, _ in dispatches_of(cluster, mode):
            last[name] = max(slot, last.get(name, slot))
        if len(last) < len(services_of(mode)) or min(last.values()) <= moment:
            return False
    return True


@pytest.fixture(scope="session")
def outage_run():
    root = scratch_root("fleet-outage-")
    cluster, broker = Cluster(root), RedisServer()
    record = root / "calls.jsonl"
    catalogue = [
        {
            "name": "fetch_logs",
            "task": "src.services.tasks.fetch_and_process_logs",
            "queue": "outage",
            "description": "Fetch logs.",
            "min_interval_seconds": 1,
            "max_interval_seconds": 86400,
        }
    ]
    base_env = dict(
        os.environ,
        PYTHONPATH=str(ROOT),
        LUFFY_DEMO_RECORD_FILE=str(record),
        CELERY_BROKER_URL=f"redis://127.0.0.1:{broker.port}/0",
        LUFFY_TASK_CATALOGUE=json.dumps(catalogue),
        LUFFY_QUEUES="outage",
        LUFFY_BEAT_HEARTBEAT_SECONDS="0",
    )  # only the tests' own schedules
    processes = Processes(root, base_env)
    marks, alive = {}, {}
    try:
        cluster.init()
        cluster.start()
        broker.start()
        for mode in MODES:
            database = mode.replace("-", "_")
            cluster.psql("postgres", f"CREATE DATABASE {database}")
            env = dict(base_env, DATABASE_URL=cluster.url(database), LUFFY_BEAT_SINGLE=str(mode == "single"))
            subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
            subprocess.run(
                [sys.executable, "manage.py", "shell", "-c", SETUP.format(service_ids=services_of(mode))],
                cwd=ROOT,
                env=env,
                check=True,
            )
        processes.env = dict(base_env, DATABASE_URL=cluster.url("leader_lock"))
        processes.worker("outage")
        processes.wait_for("worker", "ready.")
        for mode in MODES:
            processes.env = dict(
                base_env, DATABASE_URL=cluster.url(mode.replace("-", "_")), LUFFY_BEAT_SINGLE=str(mode == "single")
            )
            processes.beat(mode)
            processes.wait_for(mode, "loaded 2 schedules")
        all_services = [service_id for mode in MODES for service_id in services_of(mode)]
        wait_for(
            lambda: all(
                sum(call["service_id"] == service_id for call in calls_in(record)) >= 2 for service_id in all_services
            ),
            timeout=20,
            what="the worker to run two slots of every schedule before the outages",
        )
        marks["postgres_down"] = time.time()
        cluster.stop()
        time.sleep(POSTGRES_DOWN)  # the outage's length, not a wait
        cluster.start()
        marks["postgres_up"] = time.time()
        wait_for(
            lambda: every_schedule_sent_after(cluster, marks["postgres_up"]),
            timeout=20,
            interval=0.2,
            what="both beats to dispatch again after PostgreSQL came back",
        )
        marks["redis_down"] = time.time()
        broker.stop()
        time.sleep(REDIS_DOWN)  # the outage's length, not a wait
        broker.start()
        marks["redis_up"] = time.time()
        # Three seconds of slots after Redis is back: the tests check dispatch goes on.
        wait_for(
            lambda: every_schedule_sent_after(cluster, marks["redis_up"] + 3),
            timeout=20,
            interval=0.2,
            what="both beats to dispatch for three seconds after Redis came back",
        )
        alive = {name: process.poll() is None for name, process in processes.started.items()}
        for mode in MODES:
            processes.started[mode].send_signal(signal.SIGTERM)
            processes.started[mode].wait(timeout=20)
        dispatched = {task_id for mode in MODES for _, _, _, task_id in dispatches_of(cluster, mode)}
        wait_for(
            lambda: dispatched <= {call["task_id"] for call in calls_in(record)},
            timeout=20,
            what="the worker to run every dispatched slot",
        )
    finally:
        processes.stop_all()
        logs = {name: processes.log(name) for name in processes.started}
        dispatches = {}
        try:
            for mode in MODES:
                dispatches[mode] = dispatches_of(cluster, mode)
        finally:
            if broker.process and broker.process.poll() is None:
                broker.stop()
            subprocess.run(
                [
                    "runuser",
                    "-u",
                    "postgres",
                    "--",
                    str(PG_BIN / "pg_ctl"),
                    "-D",
                    str(cluster.data),
                    "-m",
                    "immediate",
                    "stop",
                ]
                if os.geteuid() == 0
                else [str(PG_BIN / "pg_ctl"), "-D", str(cluster.data), "-m", "immediate", "stop"],
                capture_output=True,
            )
    received = calls_in(record)
    exit_codes = {name: process.returncode for name, process in processes.started.items()}
    shutil.rmtree(root, ignore_errors=True)
    return OutageRun(received, dispatches, marks, alive, exit_codes, logs)


def test_beats_stay_alive_through_database_and_broker_outages(outage_run):
    """Neither beat exits while PostgreSQL or Redis is down; both stop cleanly on SIGTERM afterwards."""
    assert outage_run.alive_before_stop == {"worker": True, "leader-lock": True, "single": True}
    assert outage_run.exit_codes["leader-lock"] == outage_run.exit_codes["single"] == 0


@pytest.mark.parametrize("mode", MODES)
def test_no_slot_is_sent_twice_or_missed_across_the_outages(outage_run, mode):
    """Every one-second slot of every schedule reaches the worker once, outages included."""
    received = [call["task_id"] for call in outage_run.received if call["service_id"].startswith(mode)]
    assert len(received) == len(set(received))
    assert set(received) == {task_id for _, _, _, task_id in outage_run.dispatches[mode]}
    names = {name for name, _, _, _ in outage_run.dispatches[mode]}
    assert len(names) == len(services_of(mode))
    for name in names:
        slots = sorted(slot for row_name, slot, _, _ in outage_run.dispatches[mode] if row_name == name)
        assert {round(later - earlier, 3) for earlier, later in zip(slots, slots[1:], strict=False)} == {1.0}
        assert slots[-1] > outage_run.marks["redis_up"] + 3


def during(outage_run, mode, start, end):
    """(slot, sent_at, task id) of the slots due between two marks, a margin inside."""
    return [
        (slot, sent_at, task_id)
        for _, slot, sent_at, task_id in outage_run.dispatches[mode]
        if outage_run.marks[start] + 0.5 < slot < outage_run.marks[end] - 0.5
    ]


def test_single_beat_keeps_dispatching_from_memory_while_the_database_is_down(outage_run):
    """Without the lock, the database outage costs nothing: slots during it are sent on time."""
    sent = during(outage_run, "single", "postgres_down", "postgres_up")
    assert len(sent) >= 2 * (POSTGRES_DOWN - 2)
    assert max(sent_at - slot for slot, sent_at, _ in sent) < 0.5
    assert "database unreachable" in outage_run.logs["single"]


def test_leader_fails_closed_while_its_lock_session_is_gone_and_catches_up(outage_run):
    """With the lock, nothing is sent while PostgreSQL is down; the missed slots follow once it is back."""
    sent = during(outage_run, "leader-lock", "postgres_down", "postgres_up")
    assert len(sent) >= 2 * (POSTGRES_DOWN - 2)
    assert all(sent_at > outage_run.marks["postgres_up"] for _, sent_at, _ in sent)
    assert "stopped dispatching" in outage_run.logs["leader-lock"]


@pytest.mark.parametrize("mode", MODES)
def test_sends_refused_by_the_broker_are_retried_once_it_is_back(outage_run, mode):
    """Slots due while Redis was down are claimed, kept, and reach the worker once it returns."""
    sent = during(outage_run, mode, "redis_down", "redis_up")
    assert len(sent) >= 2 * (REDIS_DOWN - 2)
    assert all(sent_at < outage_run.marks["redis_up"] for _, sent_at, _ in sent)  # claimed on time
    assert {task_id for _, _, task_id in sent} <= {call["task_id"] for call in outage_run.received}
    assert "broker refused" in outage_run.logs[mode]
