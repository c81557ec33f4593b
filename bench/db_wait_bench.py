"""Benchmark: does beat's bound on database silence leave a full load at N schedules alone?

    python bench/db_wait_bench.py --n 100000

Seeds N interval schedules (bench/beat_bench.py's seed) and ten minutes of dispatch records at
N/900 sends/s (what the load's claim lookback reads) in its own database (``--database``,
default luffy_bench_waits, created if missing and emptied), installs beat's wait callback
(schedules/db_waits.py, LUFFY_DB_BEAT_WAIT_SECONDS) and runs the fleet scheduler's first tick:
lock, full load. Prints the load time, the longest single wait for the server (the silence the
bound cuts) and the bound. The bound is on silence, so the load passes when that wait is under it.
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from beat_common import PERIOD, seed
from bench_database import bench_database_url, ensure_database, setup_django


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--database", default="luffy_bench_waits")
    options = parser.parse_args()
    url = bench_database_url(options.database)
    ensure_database(url)
    setup_django(url)
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    seed(options.n)
    per_second = max(1, options.n // PERIOD)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO schedules_dispatch (periodic_task_name, slot, task_id, sent_at) "
            "SELECT 'bench-' || lpad((i %% %s)::text, 6, '0'), now() - make_interval(secs => i::float / %s), "
            "md5(i::text), now() - make_interval(secs => i::float / %s) FROM generate_series(1, %s) AS i",
            [options.n, per_second, per_second, per_second * 600],
        )
        cursor.execute("ANALYZE schedules_dispatch")
    connection.close()

    from luffy_admin.celery import app
    from schedules import db_waits
    from schedules.beat.scheduler import FleetScheduler

    app.conf.beat_schedule = {}
    wait = db_waits.install_for_beat()
    scheduler = FleetScheduler(app=app)
    started = time.perf_counter()
    scheduler.tick()
    loaded = time.perf_counter() - started
    counts = scheduler.table.counts()
    scheduler.close()
    print(f"schedules loaded: {counts[0]} (dispatch records read back: {per_second * 600})")
    print(f"first tick (lock + full load): {loaded:.2f} s")
    print(f"longest single wait for the server: {wait.longest:.3f} s")
    print(f"bound (LUFFY_DB_BEAT_WAIT_SECONDS): {settings.LUFFY_DB_BEAT_WAIT_SECONDS:g} s")
    if counts[0] != options.n:
        raise SystemExit("the load did not finish")


if __name__ == "__main__":
    main()
