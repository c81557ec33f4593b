"""Liveness checks behind ``/health``. Each check answers OK, DOWN or UNKNOWN and nothing
more: the endpoint is anonymous, so it never names a service or counts anything.
"""

from django.db import DatabaseError, connection
from kombu.exceptions import OperationalError

from luffy_admin.celery import app as celery_app

OK = "ok"
DOWN = "down"
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
    """Beat leaves no heartbeat yet, so its liveness cannot be told from here."""
    return UNKNOWN


CHECKS = {"database": check_database, "broker": check_broker, "beat": check_beat}


def health_report() -> dict[str, str]:
    """``{"status", <check>: ...}``: down without the database, degraded when another check is down."""
    results = {name: check() for name, check in CHECKS.items()}
    if results["database"] == DOWN:
        status = DOWN
    elif DOWN in results.values():
        status = DEGRADED
    else:
        status = OK
    return {"status": status, **results}
