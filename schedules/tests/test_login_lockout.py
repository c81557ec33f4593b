"""Admin login lockout (django-axes): repeated wrong passwords lock the username from that address."""

import time
from datetime import timedelta
from http import HTTPStatus

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/"


@pytest.fixture
def operator():
    return get_user_model().objects.create_user("oscar", password="right-horse-battery", is_staff=True)


def _login(client, password):
    return client.post(LOGIN, {"username": "oscar", "password": password, "next": "/admin/"})


def test_failures_past_the_limit_refuse_even_the_right_password_until_the_cool_off(settings, operator):
    """LUFFY_LOGIN_FAILURE_LIMIT wrong passwords: locked (429), the right one too; after the
    cool-off the right password logs in again."""
    settings.AXES_FAILURE_LIMIT = 3
    settings.AXES_COOLOFF_TIME = timedelta(seconds=2)
    client = Client()
    assert [_login(client, "wrong").status_code for _ in range(2)] == [HTTPStatus.OK] * 2  # the form again
    assert _login(client, "wrong").status_code == HTTPStatus.TOO_MANY_REQUESTS

    locked = _login(client, "right-horse-battery")
    assert locked.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert "_auth_user_id" not in client.session
    # The same username from another address is not locked.
    assert _login(Client(REMOTE_ADDR="10.0.0.2"), "right-horse-battery").status_code == HTTPStatus.FOUND

    time.sleep(2.2)
    assert _login(client, "right-horse-battery").status_code == HTTPStatus.FOUND
    assert client.session["_auth_user_id"] == str(operator.pk)


def test_default_limit_and_cool_off_come_from_the_environment(settings):
    """Five failures, fifteen minutes, unless LUFFY_LOGIN_FAILURE_LIMIT / _COOLOFF_MINUTES say otherwise."""
    assert (5, timedelta(minutes=15)) == (settings.AXES_FAILURE_LIMIT, settings.AXES_COOLOFF_TIME)
