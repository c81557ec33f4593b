"""Run-now: the one policy for the API and the admin (broker checked first, send after commit)."""

import uuid

from celery import current_app as celery_app
from django.db import transaction
from django.utils import timezone as django_timezone

from .. import health
from ..errors import BrokerUnavailable
from ..models import AuditEvent, Dispatch, TaskSchedule
from . import audit
from .audit import Actor, schedule_snapshot
from .rules import require_task
from .run_records import run_record_sent
from .schedule import locked_schedule


@transaction.atomic
def schedule_run_now(*, actor: Actor, schedule: TaskSchedule) -> str:
    """Send the task once, now, after commit; returns the Celery task id.

    The one run-now policy, for the API and the admin alike: a broker known to be down is
    refused up front (``BrokerUnavailable``) and leaves no audit event for a run that cannot
    happen; a send that still fails after commit marks its event ``sent: false`` and raises
    ``BrokerUnavailable``.
    """
    if health.check_broker(celery_app) == health.DOWN:
        raise BrokerUnavailable()
    schedule = locked_schedule(schedule)
    task = require_task(schedule.task_name)
    task_id = str(uuid.uuid4())
    event = audit.record(
        actor=actor,
        action=AuditEvent.Action.RUN_NOW,
        target=AuditEvent.Target.SCHEDULE,
        service_id=schedule.service_id,
        schedule_id=schedule.pk,
        before=schedule_snapshot(schedule),
        after={"task_id": task_id},
    )
    sent_at = django_timezone.now()
    run_record_sent(
        periodic_task_name=schedule.periodic_task.name,
        slot=sent_at,
        task_id=task_id,
        sent_at=sent_at,
        trigger=Dispatch.Trigger.RUN_NOW,
    )

    def send():
        try:
            celery_app.send_task(task.task, args=[schedule.service_id], queue=task.queue, task_id=task_id)
        except Exception as exc:
            # The event is committed already; say on it that nothing was sent, and drop the run
            # that never left, then let the caller report the failure.
            AuditEvent.objects.filter(pk=event.pk).update(
                after={"task_id": task_id, "sent": False, "error": str(exc) or type(exc).__name__}
            )
            Dispatch.objects.filter(task_id=task_id, trigger=Dispatch.Trigger.RUN_NOW).delete()
            raise BrokerUnavailable() from exc

    transaction.on_commit(send)
    return task_id
