"""Liveness checks behind ``/health``. Each check answers a state and nothing more: the
endpoint is anonymous, so it never names a service or counts anything.

Beat's liveness comes from its heartbeat: ``beat_heartbeat`` (``schedules/tasks.py``) runs
every ``LUFFY_BEAT_HEARTBEAT_SECONDS`` only if beat is running, can publish to the broker,
and a worker consumes ``LUFFY_BEAT_HEARTBEAT_QUEUE``; a recent one proves the whole path.
"""

from datetime import timedelta

from celery import current_app as celery_app
from django.conf import settings
from django.db import DatabaseError, connection
from django.utils import timezone
from kombu.exceptions import OperationalError

from . import selectors

OK = "ok"
DOWN = "down"
STALE = "stale"
UNKNOWN = "unknown"
DEGRADED = "degraded"

# How long the broker check may take before the broker counts as down.
BROKER_TIMEOUT_SECONDS = 2


def check_database(db=connection) -> str:
    try:
        with db.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        return DOWN
    return OK


def check_broker(app=celery_app) -> str:
    try:
        with app.connection_for_write() as broker:
            broker.ensure_connection(max_retries=0, timeout=BROKER_TIMEOUT_SECONDS)
    except (OperationalError, OSError):
        return DOWN
    return OK


def check_beat() -> str:
    """``ok`` when a heartbeat ran recently, ``stale`` when the last one is too old,
    ``unknown`` when none was ever recorded or the database cannot say."""
    try:
        heartbeat = selectors.beat_heartbeat_get()
    except DatabaseError:
        return UNKNOWN
    if heartbeat is None:
        return UNKNOWN
    max_age = timedelta(seconds=settings.LUFFY_BEAT_HEARTBEAT_STALE_SECONDS)
    return OK if timezone.now() - heartbeat.received_at <= max_age else STALE


def check_monitor() -> str:
    """The run monitor (``manage.py monitor_runs``), judged like beat: ``ok`` when it wrote its
    heartbeat recently, ``stale`` when the last one is too old, ``unknown`` when it never ran or
    the database cannot say."""
    try:
        heartbeat = selectors.monitor_heartbeat_get()
    except DatabaseError:
        return UNKNOWN
    if heartbeat is None:
        return UNKNOWN
    max_age = timedelta(seconds=settings.LUFFY_MONITOR_STALE_SECONDS)
    return OK if timezone.now() - heartbeat.seen_at <= max_age else STALE


CHECKS = {"database": check_database, "broker": check_broker, "beat": check_beat, "monitor": check_monitor}


def health_report() -> dict[str, str]:
    """``{"status", <check>: ...}``: down without the database, degraded when another check
    is down or beat's or the monitor's heartbeat is stale."""
    results = {name: check() for name, check in CHECKS.items()}
    if results["database"] == DOWN:
        status = DOWN
    elif DOWN in results.values() or STALE in results.values():
        status = DEGRADED
    else:
        status = OK
    return {"status": status, **results}
