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
