"""Who changed what: the actor, the audit event each write records, and the snapshots it holds."""

from dataclasses import dataclass
from typing import Any

from .. import beat_rows
from ..models import AuditEvent, Service, TaskSchedule


@dataclass(frozen=True)
class Actor:
    """Who makes a change, as the audit trail records it."""

    label: str
    user: Any = None

    @classmethod
    def for_user(cls, user) -> "Actor":
        return cls(label=f"user:{user.get_username()}", user=user)

    @classmethod
    def for_api_key(cls, api_key) -> "Actor":
        return cls(label=f"api-key:{api_key.name}")

    @classmethod
    def system(cls, name: str) -> "Actor":
        return cls(label=f"system:{name}")


def event(
    *, actor: Actor, action: str, target: str, service_id: str, schedule_id=None, before=None, after=None
) -> AuditEvent:
    return AuditEvent(
        actor=actor.label,
        user=actor.user,
        action=action,
        target=target,
        service_id=service_id,
        schedule_id=schedule_id,
        before=before,
        after=after,
    )


def record(**fields) -> AuditEvent:
    """Save one audit event in the current transaction."""
    new = event(**fields)
    new.save(force_insert=True)
    return new


def service_snapshot(service: Service) -> dict:
    return {"id": service.id, "name": service.name, "description": service.description}


def schedule_snapshot(schedule: TaskSchedule) -> dict:
    current = beat_rows.schedule_timing(schedule)
    return {
        "task_name": schedule.task_name,
        "schedule_type": current.schedule_type,
        "cron_expression": current.shown_cron_expression,
        "interval_seconds": current.interval_seconds,
        "jitter_seconds": current.jitter_seconds,
        "timezone": current.timezone,
        "enabled": schedule.periodic_task.enabled,
        "key": schedule.key,
    }
