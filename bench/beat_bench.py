"""Benchmark: the stock DatabaseScheduler against the fleet scheduler, in the same run.

    python bench/beat_bench.py                 # 1,000 and 10,000 schedules
    python bench/beat_bench.py --n 100000      # any sizes, repeat --n

For each size it seeds N interval schedules (every 15 minutes, last runs spread over the past
15 minutes, so about N/900 come due each second) in its own database, then for each scheduler:

- in a fresh process (so memory is its own): load time (construct + first tick), reload after
  one change (one row saved, then the work that takes it in: the stock scheduler's re-read and
  heap rebuild, the fleet scheduler's poll; median of 5), dispatch rate with all N due
  (ticks driven directly, real broker, 5 s or until all are sent), and idle CPU (% of a core over
  20 s, ticking as beat does, every row's next slot a period away);
- fleet only, in-process with a real clock: a burst (``min(N, 10,000)`` slots due on the same
  second with all N loaded: when the last is on the broker, lateness p50/p99, sends/s), then
  change-to-applied pickup p50/p99 per kind of change (save, delete, django-celery-beat's
  admin bulk action, timing-row edit; 20 each);
- as a real ``celery beat`` process for ``--window`` seconds, from ``--settle`` seconds after
  its first send (slots that came due while it loaded go first): one row edited each second (its
  last run moved back so it is due at once, saved as the admin saves it), the broker queue read
  as messages arrive: change-to-broker pickup p50/p99, lateness p50/p99 of the regular sends
  (arrival minus due time), and the beat process's RSS.

It prints a table with fleet/stock ratios and writes JSON (``--json``, default var/bench.json).
``--only burst`` runs just the fleet burst and the publish figures (minutes, not the whole run).
The database named by ``--database`` (default luffy_bench) is created if missing and emptied.
"""

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
SCHEDULERS = {
    "stock": "django_celery_beat.schedulers:DatabaseScheduler",
    "fleet": "schedules.scheduler:FleetScheduler",
}
QUEUE = "bench"
PERIOD = 900
BURST = 10_000  # slots due on the same second (capped at N)
TASK = "src.services.tasks.fetch_and_process_logs"


def bench_database_url(database: str) -> str:
    parts = urlsplit(os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/luffy_admin")
    return urlunsplit(parts._replace(path=f"/{database}"))


def setup_django(database_url: str):
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "luffy_admin.settings")
    os.environ.setdefault("DJANGO_LOG_LEVEL", "WARNING")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def ensure_database(database_url: str):
    import psycopg2

    parts = urlsplit(database_url)
    admin = psycopg2.connect(
        host=parts.hostname,
        port=parts.port or 5432,
        user=parts.username or "postgres",
        password=parts.password,
        dbname="postgres",
    )
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [parts.path.lstrip("/")])
        if cursor.fetchone() is None:
            cursor.execute(f'CREATE DATABASE "{parts.path.lstrip("/")}"')
    admin.close()


def rss_mb(pid="self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values, fraction):
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def broker():
    import redis
    from django.conf import settings

    return redis.Redis.from_url(settings.CELERY_BROKER_URL)


class QueueLength:
    """The bench queue's length on the app's broker: Redis (LLEN) or RabbitMQ (a passive declare)."""

    def __init__(self, app):
        self._app = app
        self._redis = broker() if app.conf.broker_url.startswith("redis") else None
        if self._redis is None:
            self._connection = app.connection_for_write()
            self._channel = self._connection.channel()
            # Declared as Celery declares the queue it routes to, so the first publish finds it.
            app.amqp.queues[QUEUE].bind(self._channel).declare()
            self._channel.queue_purge(QUEUE)

    def __call__(self) -> int:
        if self._redis is not None:
            return self._redis.llen(QUEUE)
        return self._channel.queue_declare(QUEUE, passive=True).message_count

    def close(self):
        if self._redis is not None:
            self._redis.delete(QUEUE)
        else:
            self._channel.queue_delete(QUEUE)
            self._connection.release()


@contextmanager
def rabbitmq_vhost(url: str):
    """A vhost of this run's own on the RabbitMQ at ``url`` (rabbitmqctl), deleted afterwards; yields its URL."""
    name = f"luffy_bench_{os.getpid()}"
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", name], check=True, capture_output=True)
    try:
        subprocess.run(
            ["rabbitmqctl", "-q", "set_permissions", "-p", name, "guest", ".*", ".*", ".*"],
            check=True,
            capture_output=True,
        )
        parts = urlsplit(url)
        yield urlunsplit((parts.scheme, parts.netloc, f"/{name}", "", ""))
    finally:
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", name], capture_output=True)


# --- seeding ------------------------------------------------------------------------------


def seed(n: int) -> dict[str, float]:
    """N enabled interval rows with last runs spread over one period; returns name -> due time."""
    from datetime import UTC, datetime, timedelta

    from django.db import connection
    from django_celery_beat.models import IntervalSchedule, PeriodicTask, PeriodicTasks

    from schedules.models import Dispatch

    with connection.cursor() as cursor:
        # One statement: a queryset delete signals (and stamps PeriodicTasks) once per row.
        cursor.execute(f"DELETE FROM {PeriodicTask._meta.db_table}")
    Dispatch.objects.all().delete()
    broker().delete(QUEUE)
    interval, _ = IntervalSchedule.objects.get_or_create(every=PERIOD, period=IntervalSchedule.SECONDS)
    now = datetime.now(UTC)
    rows, due = [], {}
    for i in range(n):
        last_run = now - timedelta(seconds=random.uniform(0, PERIOD))
        name = f"bench-{i:06d}"
        rows.append(
            PeriodicTask(
                name=name,
                task=TASK,
                args=json.dumps([f"svc-{i}"]),
                queue=QUEUE,
                interval=interval,
                last_run_at=last_run,
            )
        )
        due[name] = (last_run + timedelta(seconds=PERIOD)).timestamp()
    PeriodicTask.objects.bulk_create(rows, batch_size=2000)
    # A fleet in steady state: its rows were saved long ago, not all in the last second.
    PeriodicTask.objects.update(date_changed=now - timedelta(hours=1))
    PeriodicTasks.update_changed()
    with connection.cursor() as cursor:  # planner statistics, as autovacuum keeps them
        cursor.execute(f"ANALYZE {PeriodicTask._meta.db_table}")
    return due


# --- in-process measurements (run in a child process per scheduler) -----------------------


def measure_in_process(scheduler_key: str, only: str | None = None) -> dict:
    from datetime import UTC, datetime, timedelta

    from celery.utils.imports import symbol_by_name
    from django_celery_beat.models import PeriodicTask, PeriodicTasks

    from luffy_admin.celery import app
    from schedules.beat.clock import us
    from schedules.models import Dispatch

    cls = symbol_by_name(SCHEDULERS[scheduler_key])
    n = PeriodicTask.objects.count()
    if only == "burst":
        return measure_burst(cls, min(n, BURST))
    if only == "burst-amqp":  # the app's broker is the RabbitMQ vhost named in CELERY_BROKER_URL
        return {f"rabbitmq_{key}": value for key, value in measure_burst(cls, min(n, BURST)).items()}
    baseline = rss_mb()
    started = time.perf_counter()
    scheduler = cls(app=app)
    scheduler.tick()
    load_s = time.perf_counter() - started
    loaded_rss = rss_mb()

    # The work to take one saved row in: the stock scheduler re-reads every row and rebuilds
    # its heap; the fleet scheduler applies the notification (PostgreSQL), or polls for what
    # changed (the fallback, with the change-stamp checks).
    reloads, polls = [], []
    ids = list(PeriodicTask.objects.filter(queue=QUEUE).order_by("?").values_list("id", flat=True)[:5])
    for row_id in ids:
        row = PeriodicTask.objects.get(pk=row_id)
        row.description = f"edited {time.time()}"
        row.save()
        time.sleep(0.05)  # the notification reaches the listening session a moment after the commit
        started = time.perf_counter()
        if scheduler_key == "fleet":
            scheduler.store.pickup.take_in(us(time.time()))
            reloads.append(time.perf_counter() - started)
            started = time.perf_counter()
            scheduler.store.pickup.pick_up_changes()
            polls.append(time.perf_counter() - started)
        else:
            scheduler.schedule  # noqa: B018 (the property reloads when the change stamp moved)
            scheduler.populate_heap()
            reloads.append(time.perf_counter() - started)
    scheduler.close()

    # Everything due at once: how fast does each scheduler work through it?
    PeriodicTask.objects.update(last_run_at=datetime.now(UTC) - timedelta(seconds=PERIOD * 1.5))
    PeriodicTasks.update_changed()
    Dispatch.objects.all().delete()  # slots sent above would count as sent (they were)
    broker().delete(QUEUE)
    scheduler = cls(app=app)
    scheduler.tick()  # loads (and may send a first batch)
    already = broker().llen(QUEUE)
    started = time.perf_counter()
    while time.perf_counter() - started < 5 and broker().llen(QUEUE) < n:
        scheduler.tick()
    elapsed = time.perf_counter() - started
    sent = broker().llen(QUEUE) - already
    scheduler.close()
    broker().delete(QUEUE)
    idle_cpu_pct = measure_idle_cpu(cls)
    results = {
        "load_s": load_s,
        "reload_after_one_change_ms": statistics.median(reloads) * 1000,
        "reload_by_polling_ms": statistics.median(polls) * 1000 if polls else None,
        "dispatch_per_s": sent / elapsed,
        "in_process_rss_mb": loaded_rss,
        "memory_per_schedule_kb": (loaded_rss - baseline) * 1024 / max(n, 1),
        "idle_cpu_pct": idle_cpu_pct,
    }
    if scheduler_key == "fleet":
        results.update(measure_burst(cls, min(n, BURST)))
        results.update(measure_pickup_by_kind(cls))  # last: it deletes and disables rows
    return results


class Ticking:
    """A scheduler ticking in a thread as ``celery beat`` runs it: tick, sleep what it returns."""

    def __init__(self, cls):
        from luffy_admin.celery import app

        self.scheduler = cls(app=app)
        self.scheduler.tick()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            self._stop.wait(self.scheduler.tick())

    def close(self):
        self._stop.set()
        self._thread.join()
        self.scheduler.close()


def measure_idle_cpu(cls, seconds: float = 20) -> float:
    """CPU (% of one core) of a loaded scheduler ticking as beat runs it, with nothing due and
    nothing changing: every row ran just now, so its next slot is a period away."""
    from datetime import UTC, datetime

    from django_celery_beat.models import PeriodicTask, PeriodicTasks

    PeriodicTask.objects.update(last_run_at=datetime.now(UTC))
    PeriodicTasks.update_changed()
    ticking = Ticking(cls)  # loads
    time.sleep(2)  # past the first ticks after the load
    cpu, wall = time.process_time(), time.perf_counter()
    time.sleep(seconds)
    used = (time.process_time() - cpu) / (time.perf_counter() - wall)
    ticking.close()
    return used * 100


def wait_until(condition, timeout=10.0) -> float | None:
    """Seconds until ``condition()`` (checked every millisecond); None on timeout."""
    started = time.time()
    while time.time() - started < timeout:
        if condition():
            return time.time() - started
        time.sleep(0.001)
    return None


def applied(kind: str, row_id: int, args: str, entries) -> bool:
    """Whether the scheduler's table holds the change ``measure_pickup_by_kind`` made to the row."""
    entry = entries.get(row_id)
    if kind == "save":
        return entry is not None and entry.args == args
    if kind == "timing_row":
        return entry is not None and entry.timing.micros == 2 * PERIOD * 1_000_000
    return entry is None  # deleted, or disabled by the admin action


def measure_pickup_by_kind(cls, per_kind: int = 20) -> dict:
    """Change-to-applied pickup of a ticking fleet scheduler, per kind of change.

    save (``row.save()``), delete, admin bulk action (django-celery-beat's "Disable selected":
    ``update()`` + ``update_changed()``) and timing-row edit (an ``IntervalSchedule`` saved).
    Measured from the commit to the scheduler's table holding the change.
    """
    from django_celery_beat.models import IntervalSchedule, PeriodicTask, PeriodicTasks

    ticking = Ticking(cls)
    entries = ticking.scheduler.entries
    rows = list(PeriodicTask.objects.filter(id__in=list(entries), queue=QUEUE).order_by("?")[: 4 * per_kind])
    timings = {}
    for row in rows[3 * per_kind :]:  # each timing probe on an interval row of its own
        row.interval = IntervalSchedule.objects.create(every=PERIOD + row.id, period=IntervalSchedule.SECONDS)
        row.save()
        timings[row.id] = row.interval
    wait_until(lambda: all(entries[row_id].timing.micros == (PERIOD + row_id) * 1_000_000 for row_id in timings))
    results, kinds = {}, {}
    for kind, probes in zip(
        ("save", "delete", "admin_action", "timing_row"),
        (rows[:per_kind], rows[per_kind : 2 * per_kind], rows[2 * per_kind : 3 * per_kind], rows[3 * per_kind :]),
        strict=True,
    ):
        times = []
        for row in probes:
            row_id = row.id  # a deleted instance forgets its id
            time.sleep(random.uniform(0, 0.1))  # no fixed phase against the scheduler's looks
            if kind == "save":
                row.args = json.dumps([f"edited-{time.time()}"])
                row.save()
            elif kind == "delete":
                row.delete()
            elif kind == "admin_action":
                PeriodicTask.objects.filter(pk=row.pk).update(enabled=False, last_run_at=None)
                PeriodicTasks.update_changed()
            else:
                timings[row.id].every = 2 * PERIOD
                timings[row.id].save()
            took = wait_until(lambda kind=kind, row_id=row_id, args=row.args: applied(kind, row_id, args, entries))
            if took is not None:
                times.append(took)
        kinds[kind] = f"{len(times)}/{len(probes)}"
        results[f"pickup_{kind}_p50_s"] = percentile(times, 0.5)
        results[f"pickup_{kind}_p99_s"] = percentile(times, 0.99)
    results["pickup_kinds_picked_up"] = kinds
    ticking.close()
    return results


def measure_burst(cls, count: int) -> dict:
    """``count`` slots due on the same second with all rows loaded: how soon are they all on the broker?

    The rows are aligned far enough ahead for the scheduler to load first (three times a timed load,
    plus 3 s; ``burst_loaded_ahead_s`` says by how much it did); the broker queue's length is
    sampled every 2 ms, so the k-th message's arrival is known to within a sample.
    """
    from datetime import UTC, datetime, timedelta

    from django_celery_beat.models import PeriodicTask, PeriodicTasks

    from luffy_admin.celery import app
    from schedules.models import Dispatch

    length = QueueLength(app)
    Dispatch.objects.all().delete()
    # The slot must come after the load (the figure is for a loaded scheduler): time one first.
    started = time.perf_counter()
    probe = cls(app=app)
    probe.tick()
    probe.close()
    lead = max(5.0, 3 * (time.perf_counter() - started) + 3)
    aligned = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=lead)
    ids = list(PeriodicTask.objects.filter(queue=QUEUE).order_by("?").values_list("id", flat=True)[:count])
    PeriodicTask.objects.update(last_run_at=aligned - timedelta(seconds=PERIOD / 2))  # the rest: not due now
    PeriodicTask.objects.filter(id__in=ids).update(last_run_at=aligned - timedelta(seconds=PERIOD))
    PeriodicTasks.update_changed()
    ticking = Ticking(cls)
    loaded_ahead = aligned.timestamp() - time.time()  # negative: the load ran past the slot
    samples = []
    deadline = aligned.timestamp() + 120
    while time.time() < deadline:
        on_broker = length()
        samples.append((time.time(), on_broker))
        if on_broker >= count:
            break
        time.sleep(0.002)
    ticking.close()
    length.close()
    slot = aligned.timestamp()
    arrivals, reached = [], 0
    for at, length in samples:
        arrivals.extend([at - slot] * (length - reached))
        reached = max(reached, length)
    return {
        "burst_slots": count,
        "burst_sent": reached,
        "burst_last_on_broker_s": arrivals[-1] if reached >= count else None,
        "burst_lateness_p50_s": percentile(arrivals, 0.5),
        "burst_lateness_p99_s": percentile(arrivals, 0.99),
        "burst_per_s": reached / arrivals[-1] if arrivals else None,
        "burst_loaded_ahead_s": loaded_ahead,
    }


# --- a real beat process under one edit per second ----------------------------------------


def measure_beat(scheduler_key: str, due: dict[str, float], window: float, settle: float, tmp: Path) -> dict:
    from datetime import UTC, datetime, timedelta

    from django_celery_beat.models import PeriodicTask

    client = broker()
    client.delete(QUEUE)
    arrivals: dict[str, list[float]] = {}
    stop = threading.Event()

    def read():
        reader = broker()
        while not stop.is_set():
            item = reader.brpop(QUEUE, timeout=0.2)
            if item:
                message = json.loads(item[1])
                arrivals.setdefault(message["headers"]["periodic_task_name"], []).append(time.time())

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    log = (tmp / f"beat-{scheduler_key}.log").open("w")
    beat = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "luffy_admin",
            "beat",
            "-S",
            SCHEDULERS[scheduler_key],
            "--pidfile=",
            "-s",
            str(tmp / f"{scheduler_key}-schedule"),
            "--loglevel",
            "WARNING",
        ],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.time() + 300
        while not arrivals and time.time() < deadline:  # loaded once it sends its first slot
            time.sleep(0.05)
        # Slots that came due while it loaded go out first; measure once that backlog is gone.
        time.sleep(settle)
        window_start = time.time()
        window_end = window_start + window
        # Probes: rows not due before the window ends (plus margin), so a send means pickup.
        candidates = [name for name, at in due.items() if at > window_end + 60]
        random.shuffle(candidates)
        edits = {}
        for name in candidates[: int(window)]:
            # One a second on average, at a random point of each second so edits do not keep
            # one phase against the scheduler's polling.
            next_edit = window_start + len(edits) + random.random()
            time.sleep(max(0.0, next_edit - time.time()))
            row = PeriodicTask.objects.get(name=name)
            row.last_run_at = datetime.now(UTC) - timedelta(seconds=PERIOD + 60)
            row.save()
            edits[name] = time.time()
        time.sleep(max(0.0, window_end - time.time()) + 5)
        rss = rss_mb(beat.pid)
    finally:
        beat.terminate()
        beat.wait(timeout=60)
        stop.set()
        thread.join()
        log.close()
    pickups = [arrivals[name][0] - at for name, at in edits.items() if name in arrivals]
    lateness = [
        arrivals[name][0] - at
        for name, at in due.items()
        if window_start + 1 <= at <= window_end and name in arrivals and name not in edits
    ]
    expected = sum(1 for name, at in due.items() if window_start + 1 <= at <= window_end and name not in edits)
    return {
        "pickup_p50_s": percentile(pickups, 0.5),
        "pickup_p99_s": percentile(pickups, 0.99),
        "edits_picked_up": f"{len(pickups)}/{len(edits)}",
        "lateness_p50_s": percentile(lateness, 0.5),
        "lateness_p99_s": percentile(lateness, 0.99),
        "due_sent_in_window": f"{len(lateness)}/{expected}",
        "beat_rss_mb": rss,
    }


# --- publishing alone, per broker --------------------------------------------------------


def measure_publish(url: str, count: int = BURST) -> dict:
    """``count`` claimed sends handed to the publisher at once: until all are on the broker.

    The scheduler's claims and run state left out, so Redis and RabbitMQ compare directly. The
    queue is one of this run's own; RabbitMQ's length comes from a passive declare.
    """
    from kombu import Exchange, Queue

    from luffy_admin.celery import app
    from schedules.beat.clock import SECOND, us
    from schedules.beat.publisher import Publisher, Send, task_id_for

    name = f"bench-publish-{os.getpid()}"
    saved = app.conf.broker_url, app.conf.broker_write_url
    app.conf.broker_url = app.conf.broker_write_url = url
    app._pool = app.amqp._producer_pool = None
    try:
        with app.connection_for_write() as connection:
            queue = Queue(name, Exchange(name), routing_key=name)(connection.default_channel)
            queue.declare()
            queue.purge()
            now = us(time.time())
            publisher = Publisher(app, retry_every=SECOND)
            for n in range(count):
                publisher.add(
                    Send(
                        name=f"bench-{n:06d}",
                        task=TASK,
                        args=json.dumps([f"svc-{n}"]),
                        kwargs="{}",
                        headers="{}",
                        options={"queue": name},
                        slot=now,
                        task_id=task_id_for(f"bench-{n:06d}", now),
                        period=PERIOD * SECOND,
                        stale_at=now + PERIOD * SECOND,
                    )
                )
            started = time.perf_counter()
            publisher.drain(now)
            publisher.close()
            while queue.queue_declare(passive=True).message_count < count and time.perf_counter() - started < 120:
                time.sleep(0.005)
            elapsed = time.perf_counter() - started
            on_broker = queue.queue_declare(passive=True).message_count
            queue.delete()
    finally:
        app.conf.broker_url, app.conf.broker_write_url = saved
        app._pool = app.amqp._producer_pool = None
    return {"sends": count, "on_broker": on_broker, "seconds": elapsed, "per_s": on_broker / elapsed}


# --- report -------------------------------------------------------------------------------

ROWS = [
    ("load_s", "load (s)", "{:.2f}"),
    ("reload_after_one_change_ms", "reload after one change (ms)", "{:.1f}"),
    ("reload_by_polling_ms", "same, fleet polling instead (ms)", "{:.1f}"),
    ("dispatch_per_s", "dispatches/s, all N loaded", "{:.0f}"),
    ("pickup_p50_s", "change-to-broker pickup p50 (s)", "{:.3f}"),
    ("pickup_p99_s", "change-to-broker pickup p99 (s)", "{:.3f}"),
    ("edits_picked_up", "edits picked up in the window", "{}"),
    ("lateness_p50_s", "lateness p50, 1 edit/s (s)", "{:.3f}"),
    ("lateness_p99_s", "lateness p99, 1 edit/s (s)", "{:.3f}"),
    ("due_sent_in_window", "slots due in the window, sent", "{}"),
    ("beat_rss_mb", "beat process RSS (MB)", "{:.0f}"),
    *(
        (f"pickup_{kind}_{q}_s", f"pickup {kind.replace('_', ' ')} {q} (s)", "{:.3f}")
        for kind in ("save", "delete", "admin_action", "timing_row")
        for q in ("p50", "p99")
    ),
    ("burst_slots", "burst: slots due on one second", "{:,}"),
    ("burst_last_on_broker_s", "burst: last on the broker after (s)", "{:.2f}"),
    ("burst_lateness_p99_s", "burst: lateness p99 (s)", "{:.2f}"),
    ("burst_per_s", "burst: sends/s", "{:.0f}"),
    ("burst_loaded_ahead_s", "burst: loaded ahead of the slot (s)", "{:.1f}"),
    ("rabbitmq_burst_last_on_broker_s", "burst on RabbitMQ: last on broker (s)", "{:.2f}"),
    ("rabbitmq_burst_lateness_p99_s", "burst on RabbitMQ: lateness p99 (s)", "{:.2f}"),
    ("rabbitmq_burst_per_s", "burst on RabbitMQ: sends/s", "{:.0f}"),
    ("memory_per_schedule_kb", "memory per schedule (KB)", "{:.2f}"),
    ("idle_cpu_pct", "idle CPU, nothing due (% of a core)", "{:.2f}"),
]


def fmt(template, value):
    return "-" if value is None else template.format(value)


def table(results: dict) -> str:
    lines = []
    for n, by_scheduler in results.items():
        lines.append(f"\n{n:,} schedules")
        lines.append(f"{'':34} {'stock':>12} {'fleet':>12} {'fleet/stock':>12}")
        for key, label, template in ROWS:
            stock, fleet = by_scheduler.get("stock", {}).get(key), by_scheduler["fleet"].get(key)
            if stock is None and fleet is None:
                continue  # not measured in this run (``--only``)
            ratio = "-"
            if isinstance(stock, (int, float)) and isinstance(fleet, (int, float)) and stock:
                ratio = f"{fleet / stock:.3g}"
            lines.append(f"{label:34} {fmt(template, stock):>12} {fmt(template, fleet):>12} {ratio:>12}")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, action="append", help="schedules to seed (repeatable)")
    parser.add_argument("--window", type=float, default=30, help="seconds of real-time run per scheduler")
    parser.add_argument("--settle", type=float, default=5, help="seconds after the first send before measuring")
    parser.add_argument("--database", default="luffy_bench")
    parser.add_argument("--amqp", default="amqp://guest:guest@127.0.0.1:5672//", help="RabbitMQ for the publish figure")
    parser.add_argument("--json", default=str(ROOT / "var" / "bench.json"))
    parser.add_argument(
        "--only",
        choices=["burst", "burst-amqp"],
        help="burst: only the fleet scheduler's burst (on Redis, and on RabbitMQ: --amqp) and the publish figures",
    )
    parser.add_argument("--measure", choices=SCHEDULERS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    database_url = bench_database_url(args.database)

    if args.measure:  # child process: in-process measurements of one scheduler
        setup_django(database_url)
        print(json.dumps(measure_in_process(args.measure, args.only)))
        return

    ensure_database(database_url)
    setup_django(database_url)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    tmp = Path(args.json).parent
    tmp.mkdir(parents=True, exist_ok=True)
    results = {}
    for n in args.n or [1000, 10000]:
        results[n] = {}
        for key in ["fleet"] if args.only else SCHEDULERS:
            print(f"{n:,} schedules, {key}: in-process measurements", flush=True)
            seed(n)
            only = ["--only", args.only] if args.only else []
            child = subprocess.run(
                [sys.executable, __file__, "--measure", key, "--database", args.database, *only],
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=True,
            )
            results[n][key] = json.loads(child.stdout.strip().splitlines()[-1])
            if args.only:
                print(f"{n:,} schedules, {key}: the burst on RabbitMQ", flush=True)
                with rabbitmq_vhost(args.amqp) as url:
                    child = subprocess.run(
                        [
                            sys.executable,
                            __file__,
                            "--measure",
                            key,
                            "--database",
                            args.database,
                            "--only",
                            "burst-amqp",
                        ],
                        cwd=ROOT,
                        capture_output=True,
                        text=True,
                        check=True,
                        env=dict(os.environ, CELERY_BROKER_URL=url),
                    )
                results[n][key].update(json.loads(child.stdout.strip().splitlines()[-1]))
                continue
            print(f"{n:,} schedules, {key}: beat process, {args.window:.0f} s at one edit per second", flush=True)
            due = seed(n)
            results[n][key].update(measure_beat(key, due, args.window, args.settle, tmp))
    from django.conf import settings

    publishing = {}
    for broker_name, url in (("redis", settings.CELERY_BROKER_URL), ("rabbitmq", args.amqp)):
        print(f"publishing {BURST:,} sends at once: {broker_name}", flush=True)
        try:
            publishing[broker_name] = measure_publish(url)
        except Exception as exc:  # a broker that is not there leaves its figure out, not the run
            publishing[broker_name] = {"error": str(exc)}
    Path(args.json).write_text(json.dumps({**results, "publish": publishing}, indent=2))
    print(table(results))
    for broker_name, figures in publishing.items():
        print(f"publishing {BURST:,} at once, {broker_name}: {figures}")
    print(f"\nJSON: {args.json}")


if __name__ == "__main__":
    main()
