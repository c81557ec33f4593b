"""A database that hangs and a partitioned leader, against real fleet beats (issue 10, items 12 and 8).

The module starts a PostgreSQL cluster and a Redis server of its own (never the shared ones);
each test copies one migrated database with two one-second schedules and runs real beats on
it, with no worker: what each beat published stays in its own Redis database, where the test
reads it back. A task id names one (schedule, slot), so a task id twice is a slot sent twice.

- Hung database: the cluster's processes are SIGSTOPped for 10 s (TCP stays up, the kernel
  acknowledges, nothing answers). Beat's ticks must go on (its liveness file keeps being
  touched) and it must send again, nothing twice, once the cluster resumes.
- Partition: the leader reaches PostgreSQL through a proxy the test switches to dropping every
  byte without closing a socket; the standby connects directly. The standby must take over
  within 15 s, nothing may be sent twice, and the cut-off leader must send nothing it claimed
  after the cut.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis

from ..e2e import LOG_LINE, Process, _log_time, wait_for
from ..servers import PG_BIN, Cluster, Partition, RedisServer, scratch_root
from .processes import ROOT, SCHEDULER

pytestmark = pytest.mark.e2e

HANG_SECONDS = 10
# No tick may last longer than this while the database hangs (beat logs ticks over 1 s).
MAX_TICK = 3.0
# The liveness file is touched at the start of a tick, at most once a second: a gap between two
# touches is a tick plus up to a second.
MAX_TOUCH_GAP = MAX_TICK + 1.0
TAKEOVER_TARGET = 15.0
SCHEDULES = ["fault-0", "fault-1"]

SETUP = """
from schedules import services
actor = services.Actor.system("tests")
for service_id in {service_ids!r}:
    service = services.service_create(actor=actor, service_id=service_id, name=service_id)
    services.schedule_create(actor=actor, service=service, task_name="fetch_logs",
                             schedule_type="interval", interval_seconds=1)
"""
CATALOGUE = [
    {
        "name": "fetch_logs",
        "task": "src.services.tasks.fetch_and_process_logs",
        "queue": "faults",
        "description": "Fetch logs.",
        "min_interval_seconds": 1,
        "max_interval_seconds": 86400,
    }
]


class Servers:
    def __init__(self, root: Path, cluster: Cluster, broker: RedisServer):
        self.root, self.cluster, self.broker = root, cluster, broker
        self.env = dict(
            os.environ,
            TZ="UTC",
            PYTHONPATH=str(ROOT),
            LUFFY_TASK_CATALOGUE=json.dumps(CATALOGUE),
            LUFFY_QUEUES="faults",
            LUFFY_BEAT_HEARTBEAT_SECONDS="0",  # only the tests' own schedules
        )

    def database(self, name: str) -> str:
        """A fresh copy of the migrated database with the two schedules."""
        self.cluster.psql("postgres", f"CREATE DATABASE {name} TEMPLATE fleet")
        return name

    def beat(self, name: str, *, database_url: str, broker_db: int, **env) -> Process:
        return Process(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "luffy_admin",
                "beat",
                "-S",
                SCHEDULER,
                "--pidfile=",
                "-s",
                str(self.root / f"{name}-schedule"),
                "--loglevel",
                "INFO",
            ],
            env=dict(
                self.env,
                DATABASE_URL=database_url,
                CELERY_BROKER_URL=f"redis://127.0.0.1:{self.broker.port}/{broker_db}",
                **env,
            ),
            cwd=ROOT,
            output=self.root / f"{name}.log",
        )

    def published(self, broker_db: int) -> list[str]:
        """The task ids of every message a beat published to its Redis database, in order."""
        client = redis.Redis(port=self.broker.port, db=broker_db)
        return [
            json.loads(raw)["headers"]["id"]
            for key in client.scan_iter()
            if client.type(key) == b"list"
            for raw in reversed(client.lrange(key, 0, -1))
        ]

    def dispatches(self, database: str) -> list[tuple[str, float, float, str]]:
        """(schedule name, slot, claimed at, task id), times in epoch seconds."""
        rows = self.cluster.psql(
            database,
            "SELECT periodic_task_name, extract(epoch FROM slot), extract(epoch FROM sent_at), task_id "
            "FROM schedules_dispatch ORDER BY sent_at",
        )
        return [
            (name, float(slot), float(at), task_id)
            for name, slot, at, task_id in (line.split("|") for line in rows.split())
        ]

    def every_schedule_claimed_after(self, database: str, moment: float) -> bool:
        claimed = {name for name, slot, _, _ in self.dispatches(database) if slot > moment}
        return len(claimed) == len(SCHEDULES)


def log_times(path: Path, text: str) -> list[float]:
    """When the process logged a line containing ``text`` (epoch seconds)."""
    found = []
    for line in path.read_text(errors="replace").splitlines():
        match = LOG_LINE.match(line)
        if match and text in match.group(2):
            found.append(_log_time(match.group(1)))
    return found


@pytest.fixture(scope="module")
def servers():
    root = scratch_root("fleet-faults-")
    cluster, broker = Cluster(root), RedisServer()
    found = Servers(root, cluster, broker)
    try:
        cluster.init()
        cluster.start()
        broker.start()
        cluster.psql("postgres", "CREATE DATABASE fleet")
        env = dict(found.env, DATABASE_URL=cluster.url("fleet"))
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
        subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", SETUP.format(service_ids=SCHEDULES)],
            cwd=ROOT,
            env=env,
            check=True,
        )
        yield found
    finally:
        if (cluster.data / "postmaster.pid").exists():
            cluster.resume()  # a failed test may have left it stopped
        if broker.process and broker.process.poll() is None:
            broker.stop()
        subprocess.run(
            ["runuser", "-u", "postgres", "--"] * (os.geteuid() == 0)
            + [str(PG_BIN / "pg_ctl"), "-D", str(cluster.data), "-m", "immediate", "stop"],
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


def log_times_of(line: str) -> float:
    match = LOG_LINE.match(line)
    return _log_time(match.group(1)) if match else 0.0


class Touches:
    """Samples a file's modification time every 50 ms in a thread: when beat's loop touched it."""

    def __init__(self, path: Path):
        self.path, self.times, self._stop = path, [], threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self):
        while not self._stop.wait(0.05):
            try:
                moment = self.path.stat().st_mtime
            except OSError:
                continue
            if not self.times or moment != self.times[-1]:
                self.times.append(moment)

    def stop(self) -> list[float]:
        self._stop.set()
        self._thread.join()
        return self.times


def test_a_hung_database_never_blocks_a_tick_and_beat_recovers_with_no_slot_twice(servers):
    """PostgreSQL stopped (SIGSTOP) for 10 s: beat's loop goes on (no tick over ~3 s, measured by
    its liveness file), the leader stops claiming (it cannot write), and once the database
    resumes it leads and sends again by itself, no slot twice and nothing it did not claim."""
    database = servers.database("hang")
    alive = servers.root / "hang-alive"
    beat = servers.beat(
        "hang", database_url=servers.cluster.url(database), broker_db=1, LUFFY_BEAT_LIVENESS_FILE=str(alive)
    )
    log = servers.root / "hang.log"
    try:
        wait_for(lambda: "loaded 2 schedules" in log.read_text(), timeout=30, what="beat to load")
        started = time.time()
        wait_for(
            lambda: servers.every_schedule_claimed_after(database, started + 1),
            timeout=15,
            what="beat to send before the hang",
        )
        touches = Touches(alive)
        wait_for(lambda: len(touches.times) >= 2, timeout=5, what="two touches of the liveness file")
        hung_at = time.time()
        servers.cluster.hang()
        time.sleep(HANG_SECONDS)  # the hang's length, not a wait
        beat.assert_running()
        servers.cluster.resume()
        resumed_at = time.time()
        wait_for(
            lambda: servers.every_schedule_claimed_after(database, resumed_at + 2),
            timeout=30,
            interval=0.2,
            what="beat to send again after the database resumed",
        )
        times = touches.stop()
        beat.assert_running()
    finally:
        servers.cluster.resume()
        beat.stop()
    output = log.read_text()
    during = [moment for moment in times if hung_at - 1 <= moment <= resumed_at + 1]
    gaps = [later - earlier for earlier, later in zip(during, during[1:], strict=False)]
    longest = max(gaps)
    ticks = [
        float(line.rsplit(" ", 2)[-2])
        for line in output.splitlines()
        if "beat: a tick took" in line and hung_at <= log_times_of(line) <= resumed_at + 5
    ]
    longest_tick = max(ticks, default=0.0)
    print(
        f"\nhung database: longest tick {longest_tick:.2f} s (ticks over 1 s: {ticks}); "
        f"longest gap between liveness touches {longest:.2f} s; gaps {[round(gap, 2) for gap in gaps]}"
    )
    assert ticks, "no tick waited on the hung database: was it hung?"
    assert longest_tick <= MAX_TICK, f"a tick lasted {longest_tick:.2f} s during the hang:\n{output[-3000:]}"
    assert longest <= MAX_TOUCH_GAP, f"the loop was away {longest:.2f} s during the hang:\n{output[-3000:]}"
    # The touches sampled cover the hang (the last may come a moment before the resume is noted).
    assert during and during[0] <= hung_at and during[-1] >= resumed_at - 1, (during, hung_at, resumed_at)
    assert "stopped dispatching" in output
    published = servers.published(1)
    claimed = {task_id for _, _, _, task_id in servers.dispatches(database)}
    assert len(published) == len(set(published)), "a slot was sent twice"
    assert set(published) <= claimed, "beat sent a slot it had not claimed"
    # Claimed during the hang means written, so claimed before the hang or after the resume.
    assert not [at for _, _, at, _ in servers.dispatches(database) if hung_at + 3 < at < resumed_at]


def test_a_partitioned_leader_stops_and_the_standby_takes_over_within_15_seconds(servers):
    """The leader's link to PostgreSQL drops every byte (nothing closed): it stops sending what
    it cannot claim, the server ends its idle lock session, and the standby takes the lock and
    sends within 15 s. No slot is sent twice across the two beats."""
    database = servers.database("partition")
    link = Partition(servers.cluster.port)
    link.start()
    leader = servers.beat("leader", database_url=f"postgres://postgres@127.0.0.1:{link.port}/{database}", broker_db=2)
    standby = None
    try:
        wait_for(lambda: "loaded 2 schedules" in (servers.root / "leader.log").read_text(), timeout=30, what="load")
        standby = servers.beat("standby", database_url=servers.cluster.url(database), broker_db=3)
        started = time.time()
        wait_for(
            lambda: servers.every_schedule_claimed_after(database, started + 3),
            timeout=15,
            what="the leader to send with the standby up",
        )
        assert not log_times(servers.root / "standby.log", "took the leader lock")
        cut_at = time.time()
        link.drop()
        after = wait_for(
            lambda: [at for _, _, at, _ in servers.dispatches(database) if at > cut_at],
            timeout=30,
            interval=0.1,
            what="the standby to claim a slot after the cut",
        )
        takeover = min(after) - cut_at
        later = time.time() + 2
        wait_for(
            lambda: servers.every_schedule_claimed_after(database, later),
            timeout=10,
            what="the standby to send for two more seconds",
        )
        leader.assert_running()
        standby.assert_running()
    finally:
        for process in (leader, standby):
            if process is not None:
                process.stop(timeout=10)
        link.stop()
    took_lock = log_times(servers.root / "standby.log", "took the leader lock")
    print(f"\npartition: standby claimed its first slot {takeover:.2f} s after the cut")
    assert takeover <= TAKEOVER_TARGET, f"takeover took {takeover:.2f} s (target {TAKEOVER_TARGET:g} s)"
    assert took_lock and took_lock[0] > cut_at
    dispatches = servers.dispatches(database)
    claimed_at = {task_id: at for _, _, at, task_id in dispatches}
    by_leader, by_standby = servers.published(2), servers.published(3)
    # Fails closed: everything the cut-off leader sent, it had claimed before the cut.
    assert by_leader and all(claimed_at[task_id] <= cut_at for task_id in by_leader)
    assert by_standby and all(claimed_at[task_id] > cut_at for task_id in by_standby)
    both = by_leader + by_standby
    assert len(both) == len(set(both)), "a slot was sent twice"
    assert "stopped dispatching" in (servers.root / "leader.log").read_text()


def test_a_beat_stopped_while_it_waits_on_the_database_exits_promptly(servers):
    """SIGTERM lands while beat waits on a stopped database (the bounded waits are Python
    callbacks, so celery's signal handler runs inside the wait): beat exits within a few
    seconds, instead of closing sessions that are mid-statement from inside the handler."""
    database = servers.database("stop")
    beat = servers.beat("stop", database_url=servers.cluster.url(database), broker_db=4)
    try:
        wait_for(lambda: "loaded 2 schedules" in (servers.root / "stop.log").read_text(), timeout=30, what="load")
        servers.cluster.hang()
        time.sleep(1)  # inside the first bounded wait (each lasts 2 s)
        signalled = time.monotonic()
        os.kill(beat.pid, signal.SIGTERM)
        wait_for(lambda: not beat.running(), timeout=15, interval=0.1, what="beat to exit after SIGTERM")
        took = time.monotonic() - signalled
    finally:
        servers.cluster.resume()
        beat.stop(timeout=5)
    print(f"\nstopped during a database wait: beat exited {took:.2f} s after SIGTERM")
    assert took <= 6, f"beat took {took:.2f} s to exit"
