"""``manage.py monitor_runs``: follow Celery task events and record each run's outcome.

See ``schedules/monitor.py``. One monitor is enough; a second one writes the same outcomes
again, which changes nothing (updates only move a run forward).
"""

import signal
from datetime import timedelta

from celery import current_app as celery_app
from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import connection

from schedules import db_waits
from schedules.monitor import RunMonitor


class Command(BaseCommand):
    help = "Record run outcomes from Celery task events (needs workers with task events on)."

    def handle(self, *args, **options):
        if connection.vendor == "postgresql":
            # A database that stops answering must not freeze the loop (nor a stop signal with it).
            db_waits.install_for_monitor()
        monitor = RunMonitor(
            celery_app,
            lost_seconds=settings.LUFFY_RUN_LOST_SECONDS,
            retention=timedelta(hours=settings.LUFFY_BEAT_DISPATCH_RETENTION_HOURS),
        )
        signal.signal(signal.SIGTERM, monitor.stop)
        signal.signal(signal.SIGINT, monitor.stop)
        monitor.run()
