"""The beat benchmark's real processes: ``celery beat`` under one edit per second, and publishing alone."""

import json
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

from beat_common import BURST, PERIOD, QUEUE, SCHEDULERS, TASK, broker, percentile, rss_mb
from bench_database import ROOT

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
