"""Writes to services: create, update, put, and delete with everything under them."""

from typing import Any

from django.db import IntegrityError, transaction
from django_celery_beat.models import PeriodicTask, PeriodicTasks

from ..errors import ConflictError
from ..models import AuditEvent, Service, TaskSchedule
from . import audit
from .audit import Actor, schedule_snapshot, service_snapshot
from .versions import check_if_match, service_etag

# A keyword argument not given (``None`` may be a value).
UNSET: Any = object()


@transaction.atomic
def service_create(*, actor: Actor, service_id: str, name: str, description: str = "") -> Service:
    service = Service(id=service_id, name=name, description=description)
    service.full_clean(validate_unique=False)
    try:
        with transaction.atomic():
            service.save(force_insert=True)
    except IntegrityError:
        raise ConflictError(f"Service {service_id!r} already exists.", existing_id=service_id) from None
    audit.record(
        actor=actor,
        action=AuditEvent.Action.CREATE,
        target=AuditEvent.Target.SERVICE,
        service_id=service.id,
        after=service_snapshot(service),
    )
    return service


@transaction.atomic
def service_update(
    *, actor: Actor, service: Service, name: str = UNSET, description: str = UNSET, if_match: str | None = None
) -> Service:
    service = Service.objects.select_for_update().get(pk=service.pk)
    check_if_match(if_match=if_match, current_etag=service_etag(service), what="service")
    before = service_snapshot(service)
    if name is not UNSET:
        service.name = name
    if description is not UNSET:
        service.description = description
    service.full_clean(validate_unique=False)
    after = service_snapshot(service)
    if after != before:
        service.save()
        audit.record(
            actor=actor,
            action=AuditEvent.Action.UPDATE,
            target=AuditEvent.Target.SERVICE,
            service_id=service.id,
            before=before,
            after=after,
        )
    return service


@transaction.atomic
def service_put(
    *, actor: Actor, service_id: str, name: str, description: str = "", if_match: str | None = None
) -> tuple[Service, bool]:
    """Create the service or replace its fields; returns (service, created). Idempotent."""
    existing = Service.objects.select_for_update().filter(pk=service_id).first()
    if existing is not None:
        service = service_update(actor=actor, service=existing, name=name, description=description, if_match=if_match)
        return service, False
    check_if_match(if_match=if_match, current_etag=None, what="service")
    try:
        return service_create(actor=actor, service_id=service_id, name=name, description=description), True
    except ConflictError:
        # Created concurrently between our look-up and insert: this PUT is then an update.
        existing = Service.objects.select_for_update().get(pk=service_id)
        return service_update(actor=actor, service=existing, name=name, description=description), False


@transaction.atomic
def service_delete(*, actor: Actor, service: Service, if_match: str | None = None) -> None:
    """Delete the service, its schedules and their beat rows, together.

    Set-based, whatever the number of schedules: the audit rows in one insert, the beat rows in
    one delete (no per-row signals, each of which would bump django-celery-beat's change stamp)
    and a single change bump at the end.
    """
    service = Service.objects.select_for_update().get(pk=service.pk)
    check_if_match(if_match=if_match, current_etag=service_etag(service), what="service")
    schedules = list(
        TaskSchedule.objects.filter(service=service).select_related("periodic_task__crontab", "periodic_task__interval")
    )
    AuditEvent.objects.bulk_create(
        [
            audit.event(
                actor=actor,
                action=AuditEvent.Action.DELETE,
                target=AuditEvent.Target.SCHEDULE,
                service_id=service.id,
                schedule_id=schedule.pk,
                before=schedule_snapshot(schedule),
            )
            for schedule in schedules
        ]
        + [
            audit.event(
                actor=actor,
                action=AuditEvent.Action.DELETE,
                target=AuditEvent.Target.SERVICE,
                service_id=service.id,
                before=service_snapshot(service),
            )
        ],
        batch_size=1000,
    )
    periodic_task_ids = [schedule.periodic_task_id for schedule in schedules]
    TaskSchedule.objects.filter(service=service)._raw_delete(TaskSchedule.objects.db)
    if periodic_task_ids:
        # Nothing else references a PeriodicTask (TaskSchedule's PROTECT link is gone above), so a
        # raw delete is safe; the timing rows stay, as they may be shared.
        PeriodicTask.objects.filter(pk__in=periodic_task_ids)._raw_delete(PeriodicTask.objects.db)
        PeriodicTasks.update_changed()
    service.delete()
