"""The one-row heartbeats of beat and of the run monitor."""

from datetime import datetime

from django.db import transaction

from ..models import BeatHeartbeat, MonitorHeartbeat


@transaction.atomic
def beat_heartbeat_record(*, worker: str, received_at: datetime) -> BeatHeartbeat:
    """Note that ``worker`` ran beat's heartbeat at ``received_at`` (one row, overwritten)."""
    heartbeat, _ = BeatHeartbeat.objects.update_or_create(pk=1, defaults={"worker": worker, "received_at": received_at})
    return heartbeat


def monitor_heartbeat_record(*, seen_at: datetime, lag_seconds: float | None = None) -> None:
    """Note that the run monitor is listening and writing (one row, overwritten)."""
    defaults = {"seen_at": seen_at} if lag_seconds is None else {"seen_at": seen_at, "lag_seconds": lag_seconds}
    MonitorHeartbeat.objects.update_or_create(pk=1, defaults=defaults)
