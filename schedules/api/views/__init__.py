"""The REST API's views (base ``/api/v1/task-scheduling``), one module per resource.

Reads go through selectors and writes through services; bodies and query strings are checked
by serializers and filter serializers first.

Paths, bodies and messages follow the seed's FastAPI endpoints so its callers work unchanged:
the per-service list is a bare array, ``PUT /schedules/{id}`` takes a partial body,
``toggle`` reads ``?enabled=`` and ``DELETE`` answers with the seed's message.

- ``services``: services and a service's schedules (list, create, bulk replace)
- ``schedules``: one schedule (read, update, toggle, run now, runs, dispatches, history)
- ``utility``: the task catalogue, the cron preview, /health, /load
- ``common``: what they share (headers, 404 look-ups, ETag responses, Idempotency-Key)
"""

from .schedules import ScheduleViewSet
from .services import ServiceViewSet
from .utility import CronPreviewView, HealthView, LoadView, TaskViewSet

__all__ = ["CronPreviewView", "HealthView", "LoadView", "ScheduleViewSet", "ServiceViewSet", "TaskViewSet"]
