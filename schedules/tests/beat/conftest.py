"""Fixtures for the in-process scheduler tests: a test clock, the broker queue, schedulers."""

import pytest
import redis
from django.conf import settings

from luffy_admin.celery import app as celery_app
from schedules.beat.scheduler import FleetScheduler

from .inprocess import QUEUE, Clock, wait_for_the_lock_to_go


@pytest.fixture
def broker():
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.delete(QUEUE)
    yield client
    client.delete(QUEUE)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def scheduler(clock, monkeypatch):
    # Only the rows each test makes: no configured entries (the heartbeat) joining them.
    monkeypatch.setitem(celery_app.conf, "beat_schedule", {})
    made = []

    def make():
        instance = FleetScheduler(app=celery_app, clock=clock)
        made.append(instance)
        return instance

    yield make
    for instance in made:
        instance.close()
    wait_for_the_lock_to_go()
