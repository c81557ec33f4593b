"""Plain helpers the API tests share (fixtures live in conftest.py)."""

import json
import uuid
from datetime import UTC, datetime, timedelta

from celery import Celery
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask
from rest_framework.test import APIClient
from rest_framework_api_key.models import APIKey

from schedules import catalogue, runs, services
from schedules.models import AuditEvent, Service, TaskSchedule

BASE = "/api/v1/task-scheduling"
UNREACHABLE_BROKER = "redis://127.0.0.1:1/0"


def unreachable_celery_app() -> Celery:
    """A Celery app configured as ours but sending to a closed port.

    Celery prefers the CELERY_BROKER_URL environment variable over ``broker_url``; the
    write URL is what sending and the health check use, and it can be overridden.
    """
    app = Celery(set_as_current=False)
    app.config_from_object("django.conf:settings", namespace="CELERY")
    app.conf.broker_write_url = UNREACHABLE_BROKER
    return app


def key_client(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def send(client, method, path, *, json_body=None, raw=None, content_type="application/json"):
    if raw is not None:
        return client.generic(method, path, data=raw, content_type=content_type)
    if json_body is not None:
        return client.generic(method, path, data=json.dumps(json_body), content_type="application/json")
    return client.generic(method, path)


def iso(moment):
    return moment.astimezone(UTC).isoformat() if moment is not None else None


def next_slot(moment: datetime, minutes: int) -> datetime:
    """The first ``*/minutes`` cron slot strictly after ``moment``."""
    floor = moment.replace(second=0, microsecond=0) - timedelta(minutes=moment.minute % minutes)
    return floor + timedelta(minutes=minutes)


def expected_body(schedule_id, **overrides) -> dict:
    """The schedule as the API must show it, read from the database independently of the view."""
    schedule = TaskSchedule.objects.select_related("periodic_task__crontab", "periodic_task__interval").get(
        pk=schedule_id
    )
    periodic_task = schedule.periodic_task
    crontab, interval = periodic_task.crontab, periodic_task.interval
    resolved = (
        f"{crontab.minute} {crontab.hour} {crontab.day_of_month} {crontab.month_of_year} {crontab.day_of_week}"
        if crontab
        else None
    )
    body = {
        "id": str(schedule.pk),
        "service_id": schedule.service_id,
        "task_name": schedule.task_name,
        "task_path": catalogue.get_task(schedule.task_name).task,
        "schedule_type": "cron" if crontab else "interval",
        "cron_expression": schedule.cron_expression_written or resolved,
        "resolved_cron_expression": resolved,
        "interval_seconds": interval.every if interval else None,
        "jitter_seconds": schedule.jitter_seconds,
        "timezone": str(crontab.timezone) if crontab else "UTC",
        "enabled": periodic_task.enabled,
        "key": schedule.key,
        "last_run": iso(periodic_task.last_run_at),
        "total_run_count": periodic_task.total_run_count,
        "created_at": iso(schedule.created_at),
        "updated_at": iso(schedule.updated_at),
        # No run recorded: tests that record runs override these.
        "last_outcome": None,
        "failing": False,
    }
    body.update(overrides)
    return body


def database_state() -> dict:
    """Everything a request could write, to prove a refused one wrote nothing."""
    return {
        "services": list(Service.objects.order_by("id").values_list("id", "name", "description", "updated_at")),
        "schedules": list(
            TaskSchedule.objects.order_by("id").values_list("id", "task_name", "periodic_task_id", "updated_at")
        ),
        "periodic_tasks": list(
            PeriodicTask.objects.order_by("id").values_list(
                "id", "name", "task", "args", "enabled", "crontab_id", "interval_id", "last_run_at", "date_changed"
            )
        ),
        "crontabs": CrontabSchedule.objects.count(),
        "intervals": IntervalSchedule.objects.count(),
        "audit_events": AuditEvent.objects.count(),
        "api_keys": list(APIKey.objects.order_by("id").values_list("id", "revoked")),
    }


# A refused request, as the `assert_refused` fixture takes it (tables of them are parametrized).
REFUSAL = ("method", "path", "request_kwargs", "status", "code", "error_fields")
CREATE = ("POST", "/services/web-app/schedules")


# Run records, as beat (or run-now) writes them and the run monitor applies worker events.
T0 = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)
SUCCEEDS = [("task-received", 2, {}), ("task-started", 3, {}), ("task-succeeded", 5, {"runtime": 2.0})]
FAILS = [("task-received", 2, {}), ("task-started", 3, {}), ("task-failed", 4, {"exception": "KeyError('x')"})]


def record_run(schedule: TaskSchedule, *, minute: int, events=(), trigger="schedule") -> str:
    """A run sent at T0 + ``minute`` minutes, as beat records it, then the workers' ``events``
    (type, seconds after the send, fields) as the run monitor applies them; returns its task id."""
    task_id = str(uuid.uuid4())
    slot = T0 + timedelta(minutes=minute)
    services.run_record_sent(
        periodic_task_name=schedule.periodic_task.name,
        slot=slot,
        task_id=task_id,
        sent_at=slot + timedelta(seconds=1),
        trigger=trigger,
    )
    buffer = runs.PatchBuffer()
    for kind, seconds, fields in events:
        at = (slot + timedelta(seconds=seconds)).timestamp()
        buffer.add({"type": kind, "uuid": task_id, "timestamp": at, "hostname": "celery@w1", **fields})
    services.run_events_apply(patches=buffer.take())
    return task_id
