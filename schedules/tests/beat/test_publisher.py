"""The publisher against the real Redis broker: batched sends are the per-message sends, byte for byte."""

import json
import os
import time

import pytest
import redis
from django.conf import settings
from kombu import Exchange, Queue

from luffy_admin.celery import app as celery_app
from schedules.beat.clock import SECOND, us
from schedules.beat.publisher import Publisher, Send, task_id_for

from ..e2e import free_port

QUEUE = f"publisher-{os.getpid()}"


@pytest.fixture
def broker():
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.delete(QUEUE)
    # The binding a worker consuming the queue declares; without it Redis drops the messages.
    with celery_app.connection_for_write() as connection:
        Queue(QUEUE, Exchange(QUEUE), routing_key=QUEUE)(connection.default_channel).declare()
    yield client
    client.delete(QUEUE)


def sends(count: int, now: int) -> list[Send]:
    return [
        Send(
            name=f"entry-{n}",
            task="src.services.tasks.fetch_and_process_logs",
            args=json.dumps([f"service-{n}"]),
            kwargs='{"window": 5}',
            headers='{"tenant": "t1"}',
            options={"queue": QUEUE},
            slot=now,
            task_id=task_id_for(f"entry-{n}", now),
            period=900 * SECOND,
            stale_at=now + 900 * SECOND,
        )
        for n in range(count)
    ]


def published(broker, publisher: Publisher, batch: list[Send], now: int) -> list[dict]:
    for send in batch:
        publisher.add(send)
    publisher.drain(now)
    publisher.close()
    raw = [json.loads(message) for message in reversed(broker.lrange(QUEUE, 0, -1))]
    broker.delete(QUEUE)
    for message in raw:
        assert message["properties"].pop("delivery_tag")  # kombu's random tag, new on every publish
        # Celery turns ``expires`` into a TTL counted from the moment of publishing.
        message["properties"]["expiration"] = round(int(message["properties"]["expiration"]) / 1000)
    return raw


def test_a_batch_on_redis_is_the_per_message_sends_byte_for_byte(broker):
    """Body, headers and properties of each message are those the one-at-a-time path sends.

    Only kombu's random delivery tag differs, and the TTL Celery derives from ``expires`` at the
    moment of publishing (compared to the second)."""
    now = us(time.time())
    one_by_one = published(broker, Publisher(celery_app, retry_every=SECOND, batch_size=1), sends(3, now), now)
    batched = published(broker, Publisher(celery_app, retry_every=SECOND), sends(3, now), now)
    assert len(batched) == 3
    assert batched == one_by_one
    assert [message["headers"]["id"] for message in batched] == [task_id_for(f"entry-{n}", now) for n in range(3)]


def test_sends_kept_through_a_refused_batch_go_once_each(broker, monkeypatch):
    """A batch the broker refuses is kept; the retry sends every message once, in order."""
    now = us(time.time())
    publisher = Publisher(celery_app, retry_every=SECOND)
    monkeypatch.setitem(celery_app.conf, "broker_write_url", f"redis://127.0.0.1:{free_port()}/0")
    for send in sends(5, now):
        publisher.add(send)
    publisher.drain(now)
    assert publisher.waiting == 5
    monkeypatch.setitem(celery_app.conf, "broker_write_url", settings.CELERY_BROKER_URL)
    publisher.drain(now + SECOND)
    publisher.close()
    ids = [json.loads(message)["headers"]["id"] for message in reversed(broker.lrange(QUEUE, 0, -1))]
    assert ids == [task_id_for(f"entry-{n}", now) for n in range(5)]
    assert publisher.waiting == 0
