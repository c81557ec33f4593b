"""Rates: per API key, per staff user, per address for anonymous calls and for wrong keys; 429
with Retry-After in the usual error body."""

from http import HTTPStatus

import pytest
from rest_framework.test import APIClient

from schedules import services
from schedules.models import ApiKeyScope
from schedules.tests.api.helpers import BASE, key_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def rates(settings):
    """Small rates, so a test reaches them in a few calls."""

    def set_rates(**rates):
        settings.REST_FRAMEWORK = {
            **settings.REST_FRAMEWORK,
            "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], **rates},
        }

    return set_rates


def assert_throttled(response):
    assert response.status_code == HTTPStatus.TOO_MANY_REQUESTS
    wait = int(response["Retry-After"])
    assert 0 < wait <= 60
    assert response.json() == {
        "detail": f"Request was throttled. Expected available in {wait} seconds.",
        "code": "throttled",
    }


def test_health_polled_every_two_seconds_stays_under_the_default_anonymous_rate():
    """A minute of polling every 2 s (30 calls) from one monitor: never throttled."""
    client = APIClient()
    statuses = {client.get(f"{BASE}/health").status_code for _ in range(30)}
    assert statuses == {HTTPStatus.OK}


def test_anonymous_calls_past_the_rate_get_429_with_retry_after(rates):
    """Per client address, /health included."""
    rates(anon="3/min")
    client = APIClient()
    assert [client.get(f"{BASE}/health").status_code for _ in range(3)] == [HTTPStatus.OK] * 3
    assert_throttled(client.get(f"{BASE}/health"))
    # Another address has its own count.
    assert APIClient(REMOTE_ADDR="10.0.0.2").get(f"{BASE}/health").status_code == HTTPStatus.OK


def test_each_api_key_has_its_own_count(rates, api_key, make_schedule):
    """One key past its rate is throttled; another key, and anonymous /health, are not."""
    rates(key="2/min")
    _, other_key = services.api_key_create(name="other", scopes={ApiKeyScope.READ})
    first = key_client(api_key)
    assert [first.get(f"{BASE}/tasks").status_code for _ in range(2)] == [HTTPStatus.OK] * 2
    assert_throttled(first.get(f"{BASE}/tasks"))
    assert key_client(other_key).get(f"{BASE}/tasks").status_code == HTTPStatus.OK
    assert APIClient().get(f"{BASE}/health").status_code == HTTPStatus.OK


def test_each_staff_user_has_its_own_count(rates, staff):
    """A session user past the user rate is throttled; anonymous /health is not."""
    rates(user="2/min")
    assert [staff.get(f"{BASE}/tasks").status_code for _ in range(2)] == [HTTPStatus.OK] * 2
    assert_throttled(staff.get(f"{BASE}/tasks"))
    assert APIClient().get(f"{BASE}/health").status_code == HTTPStatus.OK


def test_wrong_api_keys_from_one_address_get_429_before_any_key_is_checked(rates, api_key):
    """Guessing keys: past the anonymous rate of failures, 429 even for a right key from that
    address; a valid key elsewhere, and failures elsewhere, are unaffected."""
    rates(anon="3/min")
    guesser = key_client("abcdefgh.wrong")
    assert [guesser.get(f"{BASE}/tasks").status_code for _ in range(3)] == [HTTPStatus.UNAUTHORIZED] * 3
    assert_throttled(guesser.get(f"{BASE}/tasks"))
    assert_throttled(key_client(api_key).get(f"{BASE}/tasks"))
    elsewhere = APIClient(REMOTE_ADDR="10.0.0.2")
    elsewhere.credentials(HTTP_AUTHORIZATION=f"Token {api_key}")
    assert elsewhere.get(f"{BASE}/tasks").status_code == HTTPStatus.OK
