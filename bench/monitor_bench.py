"""Benchmark: how many task events per second the run monitor's update path sustains.

    python bench/monitor_bench.py                  # 20,000 runs, 4 events each
    python bench/monitor_bench.py --runs 100000

It records ``--runs`` runs in its own database (``--database``, default luffy_monitor_bench,
created if missing and emptied), then feeds their events (task-received, task-started,
task-succeeded or task-failed, and one repeat of each run's received event) to ``RunMonitor``
as the broker would hand them over: many runs in flight at once, shuffled within windows of
``--window`` events so a batch holds hundreds of different tasks and some arrive out of order.
The monitor batches as in production (500 events or 0.5 s) and writes through
``services.run_events_apply``. It prints events/s over the whole feed, the database writes
included, and checks every run ended in its final state.
"""

import argparse
import random
import time
import uuid
from datetime import UTC, datetime, timedelta
from unittest import mock

from bench_database import bench_database_url, ensure_database, setup_django


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20_000)
    parser.add_argument("--window", type=int, default=2_000, help="events shuffled together")
    parser.add_argument("--database", default="luffy_monitor_bench")
    args = parser.parse_args()

    database_url = bench_database_url(args.database)
    ensure_database(database_url)
    setup_django(database_url)
    from django.core.management import call_command
    from django.db import connection
    from django.db.models import Count

    from schedules.models import Dispatch
    from schedules.monitor import RunMonitor

    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {Dispatch._meta.db_table}")

    start = datetime.now(UTC) - timedelta(hours=1)
    task_ids = [str(uuid.uuid4()) for _ in range(args.runs)]
    Dispatch.objects.bulk_create(
        [
            Dispatch(
                periodic_task_name=f"luffy:bench:{index % 100}",
                slot=start + timedelta(milliseconds=index),
                task_id=task_id,
                sent_at=start + timedelta(milliseconds=index),
            )
            for index, task_id in enumerate(task_ids)
        ],
        batch_size=5000,
    )

    rng = random.Random(13)
    events = []
    base = start.timestamp()
    for index, task_id in enumerate(task_ids):
        at = base + index * 0.001
        received = {"type": "task-received", "uuid": task_id, "timestamp": at + 0.01, "hostname": "w1", "retries": 0}
        last = (
            {"type": "task-failed", "uuid": task_id, "timestamp": at + 1.0, "exception": "KeyError('x')"}
            if index % 10 == 0
            else {"type": "task-succeeded", "uuid": task_id, "timestamp": at + 1.0, "runtime": 0.9}
        )
        events += [received, {"type": "task-started", "uuid": task_id, "timestamp": at + 0.1}, last, dict(received)]
    # Many runs in flight: events of neighbouring runs interleave, some arrive out of order.
    for offset in range(0, len(events), args.window):
        window = events[offset : offset + args.window]
        rng.shuffle(window)
        events[offset : offset + args.window] = window

    monitor = RunMonitor(mock.Mock(), lost_seconds=300, retention=timedelta(days=1))
    monitor.listening_since = time.time()
    began = time.perf_counter()
    for event in events:
        monitor.on_event(event)
        monitor.tick()
    monitor.flush()
    elapsed = time.perf_counter() - began

    states = dict(Dispatch.objects.values_list("state").annotate(count=Count("pk")).order_by())
    expected = {"failed": len(range(0, args.runs, 10)), "succeeded": args.runs - len(range(0, args.runs, 10))}
    assert states == expected, f"runs ended as {states}, expected {expected}"
    print(f"runs: {args.runs:,}  events: {len(events):,}  ({connection.vendor}, batches of {monitor.max_batch} events)")
    print(f"monitor update path: {len(events) / elapsed:,.0f} events/s ({elapsed:.2f} s, database writes included)")


if __name__ == "__main__":
    main()
