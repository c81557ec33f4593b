"""Benchmark: the upcoming-load endpoint and admin page at fleet size.

    python bench/load_bench.py                  # 100,000 schedules
    python bench/load_bench.py --n 10000

Seeds N enabled schedules (one per service, tasks in turn) in its own database (default
``luffy_load_bench``, created if missing, emptied; ``--reuse`` keeps a previous run's), with
bulk rows rather than the write path, which would take an hour at this size: 40%
``*/15 * * * *``, 40% ``H/15 * * * *`` resolved per service as the write path resolves it, 10%
``0 * * * *``, 10% 900 s intervals with 90 s of jitter (their anchors spread as the write path
spreads them). Then it times, median of
``--repeat`` runs each, ``GET /api/v1/task-scheduling/load`` (an API key) and the admin page
``/admin/schedules/taskschedule/load/`` (a superuser), and prints the figures.
"""

import argparse
import statistics
import time

from bench_database import bench_database_url, ensure_database, setup_django

TASKS = ("fetch_logs", "generate_rca", "index_code")


def seed(n: int) -> None:
    import json
    import uuid
    from datetime import UTC, datetime, timedelta

    from django.db import connection
    from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask, PeriodicTasks

    from schedules import beat_rows, catalogue, cron, timing
    from schedules.models import Service, TaskSchedule

    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {TaskSchedule._meta.db_table}, {Service._meta.db_table} CASCADE")
        cursor.execute(f"DELETE FROM {PeriodicTask._meta.db_table}")
    crontabs: dict[str, CrontabSchedule] = {}

    def crontab(expression: str) -> CrontabSchedule:
        if expression not in crontabs:
            fields = dict(zip(beat_rows.CRONTAB_FIELDS, expression.split(), strict=True))
            crontabs[expression] = CrontabSchedule.objects.filter(**fields, timezone="UTC").first() or (
                CrontabSchedule.objects.create(**fields, timezone="UTC")
            )
        return crontabs[expression]

    interval, _ = IntervalSchedule.objects.get_or_create(every=900, period=IntervalSchedule.SECONDS)
    now = datetime.now(UTC)
    services, tasks, schedules = [], [], []
    for number in range(n):
        service_id, task_name = f"svc-{number:06d}", TASKS[number % len(TASKS)]
        task = catalogue.get_task(task_name)
        kind = number % 10
        row = PeriodicTask(
            name=f"luffy:{service_id}:{number}",
            task=task.task,
            args=json.dumps([service_id]),
            queue=task.queue,
            enabled=True,
        )
        written = ""
        if kind < 4:
            row.crontab = crontab("*/15 * * * *")
        elif kind < 8:
            written = "H/15 * * * *"
            row.crontab = crontab(cron.resolve(written, timing.schedule_key(service_id, task_name))[0].text)
        elif kind < 9:
            row.crontab = crontab("0 * * * *")
        else:
            row.interval = interval
            jittered = timing.Timing(timing.INTERVAL, None, 900, timing.UTC, jitter_seconds=90)
            # Registered over the last quarter hour, each anchored its jitter offset later.
            offset = timing.jitter_offset(jittered, timing.schedule_key(service_id, task_name))
            row.date_changed = now - timedelta(seconds=number % 900) + timedelta(seconds=offset)
        services.append(Service(id=service_id, name=service_id))
        tasks.append(row)
        schedules.append((service_id, task_name, written, 90 if kind == 9 else None))
    Service.objects.bulk_create(services, batch_size=5000)
    PeriodicTask.objects.bulk_create(tasks, batch_size=5000)
    # bulk_create stamps date_changed with now (auto_now): put the interval anchors back.
    anchors = {row.name: row.date_changed for row in tasks if row.interval_id}
    ids = dict(PeriodicTask.objects.filter(name__in=list(anchors)).values_list("name", "id"))
    PeriodicTask.objects.bulk_update(
        [PeriodicTask(id=ids[name], date_changed=anchor) for name, anchor in anchors.items()],
        ["date_changed"],
        batch_size=5000,
    )
    periodic_ids = dict(PeriodicTask.objects.filter(name__startswith="luffy:").values_list("name", "id"))
    TaskSchedule.objects.bulk_create(
        [
            TaskSchedule(
                id=uuid.uuid4(),
                service_id=service_id,
                task_name=task_name,
                periodic_task_id=periodic_ids[f"luffy:{service_id}:{number}"],
                cron_expression_written=written,
                jitter_seconds=jitter,
            )
            for number, (service_id, task_name, written, jitter) in enumerate(schedules)
        ],
        batch_size=5000,
    )
    PeriodicTasks.update_changed()
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {PeriodicTask._meta.db_table}")
        cursor.execute(f"ANALYZE {TaskSchedule._meta.db_table}")


def timed(call, repeat: int) -> tuple[float, object]:
    durations, response = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        response = call()
        durations.append(time.perf_counter() - started)
        assert response.status_code == 200, response.status_code
    return statistics.median(durations), response


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="schedules to seed (default 100000)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs of each (default 5)")
    parser.add_argument("--database", default="luffy_load_bench")
    parser.add_argument("--reuse", action="store_true", help="keep the schedules a previous run seeded")
    args = parser.parse_args()

    database_url = bench_database_url(args.database)
    ensure_database(database_url)
    setup_django(database_url)
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client
    from rest_framework.test import APIClient
    from rest_framework_api_key.models import APIKey

    from schedules import services

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    # Pages render without a collectstatic manifest, as in the tests.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    call_command("migrate", verbosity=0)
    if not args.reuse:
        started = time.perf_counter()
        seed(args.n)
        print(f"seeded {args.n} schedules in {time.perf_counter() - started:.1f} s")

    APIKey.objects.filter(name="load-bench").delete()
    _, key = services.api_key_create(name="load-bench", scopes={"read"})
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    user = get_user_model().objects.filter(username="load-bench").first()
    user = user or get_user_model().objects.create_superuser("load-bench", "bench@example.com", None)
    admin = Client()
    admin.force_login(user)

    endpoint, response = timed(lambda: api.get("/api/v1/task-scheduling/load?hours=24&resolution=minute"), args.repeat)
    body = response.json()
    page, _ = timed(lambda: admin.get("/admin/schedules/taskschedule/load/"), args.repeat)
    busiest = body["busiest"][0]
    print(f"{body['schedules']} enabled schedules on {body['distinct_timings']} distinct timings")
    print(f"busiest minute {busiest['at']}: {busiest['total']} sends {busiest['by_task']}")
    print(f"GET /load?hours=24&resolution=minute: median {endpoint * 1000:.0f} ms over {args.repeat}")
    print(f"admin Upcoming load page:            median {page * 1000:.0f} ms over {args.repeat}")


if __name__ == "__main__":
    main()
