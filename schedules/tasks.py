"""luffy-admin's own Celery task: the beat heartbeat.

The scheduled luffy tasks are not here: they live in the luffy workers' codebase, and beat
only sends their names.
"""

from celery import shared_task
from django.utils import timezone

from . import services
from .log_filters import HEARTBEAT_TASK


@shared_task(name=HEARTBEAT_TASK, bind=True, ignore_result=True)
def beat_heartbeat(self):
    """Record that a heartbeat went beat -> broker -> this worker, and when it arrived."""
    services.beat_heartbeat_record(worker=self.request.hostname or "unknown", received_at=timezone.now())
