"""A session the database cannot save after the view (the session middleware's write on the way
out) answers the same 503 with Retry-After as an outage inside a view; Django alone answers 400,
saying the session was deleted by a concurrent request.

The write fails for real: another session holds the session table in EXCLUSIVE mode (reads go
on, writes wait) and this one gives up after a short statement timeout.
"""

from http import HTTPStatus

import psycopg2
import pytest
from django.contrib.sessions.models import Session
from django.db import connection
from django.test import Client

from schedules.middleware import DATABASE_UNAVAILABLE
from schedules.models import Service

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="holds a PostgreSQL table lock"),
]


@pytest.fixture
def operator(django_user_model):
    client = Client(raise_request_exception=False)
    client.force_login(django_user_model.objects.create_superuser("operator", "operator@example.com", "x" * 20))
    return client


@pytest.fixture
def session_writes_fail(settings):
    """Session reads work, session writes time out; every request saves its session."""
    settings.SESSION_SAVE_EVERY_REQUEST = True
    blocker = psycopg2.connect(**connection.get_connection_params())
    try:
        with blocker.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {Session._meta.db_table} IN EXCLUSIVE MODE")
        with connection.cursor() as cursor:
            cursor.execute("SET statement_timeout = 300")
        yield
    finally:
        blocker.rollback()
        blocker.close()
        with connection.cursor() as cursor:
            cursor.execute("RESET statement_timeout")


def test_an_api_call_whose_session_cannot_be_saved_answers_a_json_503(operator, session_writes_fail):
    response = operator.get("/api/v1/task-scheduling/services")
    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert response.json() == {"detail": DATABASE_UNAVAILABLE, "code": "service_unavailable"}
    assert response["Retry-After"] == "5"


def test_an_admin_page_whose_session_cannot_be_saved_answers_the_503_page(operator, session_writes_fail):
    response = operator.get("/admin/schedules/service/")
    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert b"<h1>Service unavailable</h1>" in response.content
    assert response["Retry-After"] == "5"


def test_an_unsafe_request_that_succeeded_keeps_its_answer(operator, session_writes_fail):
    """A 503 would invite a retry of a write that is done: the 201 stands, only the session
    write is lost."""
    response = operator.post(
        "/api/v1/task-scheduling/services", {"id": "saved-anyway", "name": "Saved"}, content_type="application/json"
    )
    assert response.status_code == HTTPStatus.CREATED
    assert Service.objects.filter(id="saved-anyway").exists()
