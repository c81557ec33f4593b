"""The beat benchmark's in-process measurements, one scheduler per child process: load, reload,
dispatch rate, idle CPU, and for the fleet scheduler the burst and pickup by kind of change."""

import json
import random
import statistics
import threading
import time

from beat_common import BURST, PERIOD, QUEUE, SCHEDULERS, QueueLength, broker, percentile, rss_mb

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
