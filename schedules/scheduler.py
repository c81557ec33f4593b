"""Kept so existing ``CELERY_BEAT_SCHEDULER`` values and ``-S schedules.scheduler:FleetScheduler`` keep working."""

from schedules.beat.scheduler import FleetScheduler  # noqa: F401
