"""Run records under django-celery-beat's stock scheduler (``celery beat -S django``).

The fleet scheduler records each send itself (its claim). The stock scheduler records nothing,
so in a beat process running it (or a subclass) Celery's ``before_task_publish`` signal records
every message that carries django-celery-beat's ``periodic_task_name`` header. It is a Celery
signal, not one of ours: the only hook the stock scheduler offers.

The stock scheduler does not say which slot a message stands for; the slot recorded is the send
time truncated to the whole second, so lateness (sent minus slot) under ``-S django`` is under
a second by construction and says nothing of how late the stock scheduler really was.
"""

import logging

from celery.signals import beat_init, before_task_publish
from django.db import DatabaseError
from django.utils import timezone
from django_celery_beat.schedulers import DatabaseScheduler

from . import services

logger = logging.getLogger(__name__)


def record_send(sender=None, headers=None, **kwargs):
    """Record a message beat is about to publish as a run (before it is published, so no event
    about it can reach the monitor first). A database error loses the record, not the send."""
    headers = headers or {}
    name = headers.get("periodic_task_name")
    if not name or not headers.get("id"):
        return
    sent_at = timezone.now()
    try:
        services.run_record_sent(
            periodic_task_name=name, slot=sent_at.replace(microsecond=0), task_id=headers["id"], sent_at=sent_at
        )
    except DatabaseError as exc:
        logger.warning("beat: could not record the run of %s (task id %s): %s", name, headers["id"], exc)


@beat_init.connect
def record_sends_under_the_stock_scheduler(sender=None, **kwargs):
    if isinstance(sender.scheduler, DatabaseScheduler):
        before_task_publish.connect(record_send, weak=False, dispatch_uid="luffy-record-send")
