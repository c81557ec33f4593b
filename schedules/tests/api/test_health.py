"""/health: anonymous, status only; degraded or down with the broker or database."""

from http import HTTPStatus

import pytest
from django.db import connection
from django.db.utils import load_backend
from rest_framework.test import APIClient

from schedules import health
from schedules.tests.api.helpers import BASE, unreachable_celery_app

pytestmark = pytest.mark.django_db


def test_health_answers_anonymously_with_status_only():
    """No credentials needed; nothing but states."""
    response = APIClient().get(f"{BASE}/health")
    assert response.status_code == HTTPStatus.OK
    assert response.json() == {
        "status": "ok",
        "database": "ok",
        "broker": "ok",
        "beat": "unknown",
        "monitor": "unknown",
    }


def test_health_with_the_broker_down_is_degraded(monkeypatch):
    """A broker that refuses connections makes the status degraded, still 200."""
    unreachable = unreachable_celery_app()
    monkeypatch.setitem(health.CHECKS, "broker", lambda: health.check_broker(unreachable))
    response = APIClient().get(f"{BASE}/health")
    assert response.status_code == HTTPStatus.OK
    assert response.json() == {
        "status": "degraded",
        "database": "ok",
        "broker": "down",
        "beat": "unknown",
        "monitor": "unknown",
    }


@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL to point at a closed port")
def test_health_with_the_database_down_answers_503(monkeypatch):
    """A database that refuses connections: 503, status down."""
    backend = load_backend(connection.settings_dict["ENGINE"])
    unreachable = backend.DatabaseWrapper(
        {**connection.settings_dict, "HOST": "127.0.0.1", "PORT": "1"}, alias="unreachable"
    )
    monkeypatch.setitem(health.CHECKS, "database", lambda: health.check_database(unreachable))
    response = APIClient().get(f"{BASE}/health")
    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert response.json() == {
        "status": "down",
        "database": "down",
        "broker": "ok",
        "beat": "unknown",
        "monitor": "unknown",
    }


def test_health_report_is_reused_for_the_cache_time(settings):
    """Within LUFFY_HEALTH_CACHE_SECONDS the last report answers; the checks run again after it."""
    settings.LUFFY_HEALTH_CACHE_SECONDS = 1.5
    now = [100.0]  # quarter seconds add up exactly in floating point
    checks = []

    def compute():
        checks.append(now[0])
        return {"status": "ok", "checked": str(len(checks))}

    cached = health.CachedReport(clock=lambda: now[0])
    assert cached.get(compute) == {"status": "ok", "checked": "1"}
    now[0] += 1.25
    assert cached.get(compute) == {"status": "ok", "checked": "1"}
    now[0] += 0.25
    assert cached.get(compute) == {"status": "ok", "checked": "2"}
    assert checks == [100.0, 101.5]


def test_health_endpoint_answers_from_the_cache(monkeypatch, settings):
    """Two calls in a row check the broker once."""
    settings.LUFFY_HEALTH_CACHE_SECONDS = 60
    calls = []
    monkeypatch.setitem(health.CHECKS, "broker", lambda: calls.append(1) or health.OK)
    client = APIClient()
    assert client.get(f"{BASE}/health").json() == client.get(f"{BASE}/health").json()
    assert calls == [1]
