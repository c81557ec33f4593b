"""Fixtures built through the write path, so every row has its beat counterpart."""

import os

import pytest
from django.core.cache import cache

from schedules import health, services

if os.environ.get("PYTEST_XDIST_WORKER") and os.environ.get("LUFFY_TEST_WORKER") != os.environ["PYTEST_XDIST_WORKER"]:
    # Workers sharing one Redis database read and empty each other's queues (schedules/tests/workers.py).
    raise pytest.UsageError("parallel runs need -p schedules.tests.workers: use make test, or see README.md")


@pytest.fixture
def actor():
    return services.Actor.system("tests")


@pytest.fixture
def make_service(actor):
    def make(service_id="web-app", name="Web application", description=""):
        return services.service_create(actor=actor, service_id=service_id, name=name, description=description)

    return make


@pytest.fixture
def service(make_service):
    return make_service()


@pytest.fixture
def make_schedule(actor, service):
    def make(target=None, **fields):
        fields.setdefault("task_name", "fetch_logs")
        if fields.get("schedule_type") != "interval":
            fields.setdefault("cron_expression", "*/15 * * * *")
        return services.schedule_create(actor=actor, service=target or service, **fields)

    return make


@pytest.fixture(autouse=True)
def _static_files_without_collectstatic(settings):
    """Pages that use {% static %} render without a collectstatic manifest."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture(autouse=True)
def _fresh_throttle_counts_and_health():
    """Throttle counts and /health's last report live in the process: each test starts with none."""
    cache.clear()
    health.report_cache.clear()
