"""The client's tests run against a live server (pytest-django's ``live_server``, a real HTTP
server in a thread of this process) with a real API key, on the project's test database."""

import pytest
import redis
from django.conf import settings
from django.db import connections

from luffy_admin_client import AsyncLuffyAdmin, LuffyAdmin
from schedules import services
from schedules.models import ApiKeyScope


@pytest.fixture(autouse=True)
def _server_threads_close_their_connections(monkeypatch):
    """The live server answers each request on a new thread; with persistent connections
    (CONN_MAX_AGE) each would keep one open and the test database could not be dropped."""
    monkeypatch.setitem(connections.settings["default"], "CONN_MAX_AGE", 0)


@pytest.fixture
def api_key(transactional_db):
    _, key = services.api_key_create(name="client-tests", scopes=set(ApiKeyScope.NAMES))
    return key


@pytest.fixture
def base_url(live_server):
    return live_server.url


@pytest.fixture
def luffy(base_url, api_key):
    with LuffyAdmin(base_url, api_key, backoff=0.01) as client:
        yield client


@pytest.fixture(params=["sync", "async"])
def flavour(request):
    return request.param


@pytest.fixture
def make_client(base_url, api_key, flavour):
    """A client of the test's flavour (sync or async); the test drives it through ``run``."""

    def make(**options):
        options = {"backoff": 0.01, **options}
        key = options.pop("api_key", api_key)
        return (LuffyAdmin if flavour == "sync" else AsyncLuffyAdmin)(base_url, key, **options)

    return make


@pytest.fixture
def default_queue():
    """The broker's ``default`` queue, emptied before and after (run-now really sends)."""
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    broker.delete("default")
    yield broker
    broker.delete("default")
