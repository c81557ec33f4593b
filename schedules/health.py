"""Liveness checks behind ``/health``. Each check answers a state and nothing more: the
endpoint is anonymous, so it never names a service or counts anything.

Beat's liveness comes from its heartbeat: ``beat_heartbeat`` (``schedules/tasks.py``) runs
every ``LUFFY_BEAT_HEARTBEAT_SECONDS`` only if beat is running, can publish to the broker,
and a worker consumes ``LUFFY_BEAT_HEARTBEAT_QUEUE``; a recent one proves the whole path.
"""

import threading
import time
from datetime import timedelta

from celery import current_app as celery_app
from django.conf import settings
from django.db import DatabaseError, connection
from django.utils import timezone
from kombu.exceptions import LimitExceeded, OperationalError

from . import selectors

OK = "ok"
DOWN = "down"
STALE = "stale"
UNKNOWN = "unknown"
DEGRADED = "degraded"


def check_database(db=connection) -> str:
    try:
        with db.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        return DOWN
    return OK


def check_broker(app=celery_app) -> str:
    """A round trip on a connection from Celery's own pool (the one sends use): no new
    connection per check, and every wait bounded by LUFFY_BROKER_TIMEOUT_SECONDS (settings)."""
    timeout = settings.LUFFY_BROKER_TIMEOUT_SECONDS
    try:
        with app.pool.acquire(block=True, timeout=timeout) as broker:
            try:
                broker.ensure_connection(max_retries=0, timeout=timeout)
                # A pooled connection counts as connected without asking the broker: on Redis
                # a PING proves it answers. Other transports are asked on their next send.
                client = getattr(broker.default_channel, "client", None)
                if client is not None:
                    client.ping()
            except broker.connection_errors + broker.channel_errors:
                return DOWN
    except (OperationalError, OSError, LimitExceeded):
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


class CachedReport:
    """The last report, reused for ``seconds``; one check at a time per process, so callers
    arriving while the broker or database is slow wait for that check instead of piling on."""

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self.lock = threading.Lock()
        self.clear()

    def clear(self) -> None:
        self.report, self.finished = None, 0.0

    def get(self, compute) -> dict[str, str]:
        asked = self.clock()
        with self.lock:
            # A report finished after this caller asked is as fresh as one it would make itself.
            expired = self.clock() >= self.finished + settings.LUFFY_HEALTH_CACHE_SECONDS
            if self.report is None or (self.finished < asked and expired):
                self.report = compute()
                self.finished = self.clock()
            return dict(self.report)


report_cache = CachedReport()


def health_report() -> dict[str, str]:
    """``{"status", <check>: ...}``, at most LUFFY_HEALTH_CACHE_SECONDS old."""
    return report_cache.get(_fresh_report)


def _fresh_report() -> dict[str, str]:
    """Down without the database, degraded when another check is down or beat's or the
    monitor's heartbeat is stale."""
    results = {name: check() for name, check in CHECKS.items()}
    if results["database"] == DOWN:
        status = DOWN
    elif DOWN in results.values() or STALE in results.values():
        status = DEGRADED
    else:
        status = OK
    return {"status": status, **results}
