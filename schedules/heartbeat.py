"""Beat liveness for ``/health``, from the heartbeat beat sends and a worker records.

``beat_heartbeat`` (``schedules/tasks.py``) runs every ``LUFFY_BEAT_HEARTBEAT_SECONDS``
only if beat is running, can publish to the broker, and a worker consumes
``LUFFY_BEAT_HEARTBEAT_QUEUE``; so a recent heartbeat proves the whole dispatch path.
"""

from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone

from . import selectors

BEAT_OK = "ok"
BEAT_STALE = "stale"
BEAT_UNKNOWN = "unknown"


def check_beat() -> str:
    """``ok`` when a heartbeat ran recently, ``stale`` when the last one is too old,
    ``unknown`` when none was ever recorded or the database cannot say."""
    try:
        heartbeat = selectors.beat_heartbeat_get()
    except DatabaseError:
        return BEAT_UNKNOWN
    if heartbeat is None:
        return BEAT_UNKNOWN
    max_age = timedelta(seconds=settings.LUFFY_BEAT_HEARTBEAT_STALE_SECONDS)
    return BEAT_OK if timezone.now() - heartbeat.received_at <= max_age else BEAT_STALE
