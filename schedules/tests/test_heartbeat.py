"""Beat liveness as /health reports it: the heartbeat task's record and its age."""

from datetime import timedelta
from http import HTTPStatus

import pytest
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from schedules import health, selectors, services, tasks

pytestmark = pytest.mark.django_db


def test_heartbeat_task_records_the_worker_and_when_it_ran():
    """Running the task leaves one row: which worker ran it, and now."""
    before = timezone.now()

    tasks.beat_heartbeat.apply(throw=True)
    tasks.beat_heartbeat.apply(throw=True)

    recorded = selectors.beat_heartbeat_get()
    assert recorded.worker
    assert before <= recorded.received_at <= timezone.now()
    assert type(recorded).objects.count() == 1


def test_check_beat_is_unknown_before_any_heartbeat():
    """A fresh install (or no worker on the heartbeat queue yet) cannot say beat is alive."""
    assert health.check_beat() == health.UNKNOWN


@pytest.mark.parametrize(
    ("age_seconds", "expected"),
    [
        (0, health.OK),
        (29, health.OK),
        (31, health.STALE),
        (3600, health.STALE),
    ],
)
@override_settings(LUFFY_BEAT_HEARTBEAT_STALE_SECONDS=30)
def test_check_beat_reports_the_age_of_the_last_heartbeat(age_seconds, expected):
    """ok while the last heartbeat is younger than the stale age, stale after."""
    services.beat_heartbeat_record(worker="demo@host", received_at=timezone.now() - timedelta(seconds=age_seconds))

    assert health.check_beat() == expected


@pytest.mark.parametrize(
    ("age_seconds", "status", "beat"),
    [(1, "ok", "ok"), (3600, "degraded", "stale")],
)
def test_health_endpoint_reports_beat_from_its_heartbeat(age_seconds, status, beat):
    """/health says beat is alive while heartbeats arrive, and degraded once they stop."""
    services.beat_heartbeat_record(worker="demo@host", received_at=timezone.now() - timedelta(seconds=age_seconds))

    response = APIClient().get("/api/v1/task-scheduling/health")

    assert response.status_code == HTTPStatus.OK
    assert response.json() == {"status": status, "database": "ok", "broker": "ok", "beat": beat, "monitor": "unknown"}
