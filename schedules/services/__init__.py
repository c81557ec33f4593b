"""Every write: services, schedules, their django-celery-beat rows, and the audit trail.

The API, the admin, management commands and tasks call these functions and nothing else
writes. Each runs in one transaction, so beat (which reads committed rows) sees a change
whole or not at all, and a failure anywhere leaves neither our row nor the PeriodicTask.

One module per kind of write; callers use the names re-exported here (``services.X``):

- ``audit``: the actor, audit events and the snapshots they hold
- ``versions``: ETags and the If-Match check
- ``service``: service create / update / put / delete
- ``rules``: the checks a schedule write makes (task, timing, key, cap, duplicates)
- ``beat_sync``: a schedule's PeriodicTask and timing row
- ``schedule``: schedule create / update / enable / delete
- ``run_now``: run-now's broker policy
- ``schedule_set``: the bulk replace
- ``idempotency``: Idempotency-Key replays
- ``run_records``: run records and their pruning
- ``heartbeats``, ``api_keys``
"""

from .api_keys import api_key_create
from .audit import Actor, schedule_snapshot
from .heartbeats import beat_heartbeat_record, monitor_heartbeat_record
from .idempotency import IDEMPOTENCY_TTL, idempotent_call, request_fingerprint
from .rules import SCHEDULE_FIELDS, schedule_validate
from .run_now import schedule_run_now
from .run_records import run_events_apply, run_record_sent, runs_mark_lost, runs_prune
from .schedule import schedule_create, schedule_delete, schedule_set_enabled, schedule_update
from .schedule_set import (
    CHANGE_ACTIONS,
    CREATED,
    DELETED,
    UNCHANGED,
    UPDATED,
    ScheduleChange,
    ScheduleSetResult,
    schedule_set_preview_for_new_service,
    schedule_set_replace,
)
from .service import service_create, service_delete, service_put, service_update
from .versions import schedule_etag, service_etag

__all__ = [
    "CHANGE_ACTIONS",
    "CREATED",
    "DELETED",
    "IDEMPOTENCY_TTL",
    "SCHEDULE_FIELDS",
    "UNCHANGED",
    "UPDATED",
    "Actor",
    "ScheduleChange",
    "ScheduleSetResult",
    "api_key_create",
    "beat_heartbeat_record",
    "idempotent_call",
    "monitor_heartbeat_record",
    "request_fingerprint",
    "run_events_apply",
    "run_record_sent",
    "runs_mark_lost",
    "runs_prune",
    "schedule_create",
    "schedule_delete",
    "schedule_etag",
    "schedule_run_now",
    "schedule_set_enabled",
    "schedule_set_preview_for_new_service",
    "schedule_set_replace",
    "schedule_snapshot",
    "schedule_update",
    "schedule_validate",
    "service_create",
    "service_delete",
    "service_etag",
    "service_put",
    "service_update",
]
