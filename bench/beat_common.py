"""What the beat benchmark's parts share: its database, broker, figures and seeded schedules."""

import json
import os
import random
import subprocess
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

SCHEDULERS = {
    "stock": "django_celery_beat.schedulers:DatabaseScheduler",
    "fleet": "schedules.scheduler:FleetScheduler",
}
QUEUE = "bench"
PERIOD = 900
BURST = 10_000  # slots due on the same second (capped at N)
TASK = "src.services.tasks.fetch_and_process_logs"


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
