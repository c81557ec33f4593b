"""The publisher against real brokers: batched sends are the per-message sends, byte for byte."""

import json
import os
import time
from contextlib import ExitStack

import pytest
from django.conf import settings
from kombu import Exchange, Queue

from luffy_admin.celery import app as celery_app
from schedules.beat.clock import SECOND, us
from schedules.beat.publisher import Publisher, Send, task_id_for

from ..e2e import app_broker, free_port, rabbitmq_vhost, wait_for

QUEUE = f"publisher-{os.getpid()}"


@pytest.fixture(params=["redis", "rabbitmq"])
def broker(request):
    """The app publishing to the broker, the test's queue declared (as a consuming worker would)."""
    with ExitStack() as contexts:
        url = settings.CELERY_BROKER_URL
        if request.param == "rabbitmq":
            url = contexts.enter_context(rabbitmq_vhost(f"luffy_test_publisher_{os.getpid()}"))
        contexts.enter_context(app_broker(celery_app, url))
        connection = contexts.enter_context(celery_app.connection_for_write())
        queue = Queue(QUEUE, Exchange(QUEUE), routing_key=QUEUE)(connection.default_channel)
        queue.declare()
        queue.purge()
        yield queue
        queue.delete()


def sends(count: int, now: int, period: int = 900 * SECOND) -> list[Send]:
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
            period=period,
            stale_at=now + period,
        )
        for n in range(count)
    ]


def received(queue) -> list[dict]:
    """Everything on the queue, oldest first: the raw body, headers and properties."""
    messages = []
    while (message := queue.get(no_ack=True)) is not None:
        properties = dict(message.properties)
        # kombu's Redis transport tags each publish at random: the one field that must differ.
        properties.pop("delivery_tag", None)
        properties.pop("delivery_info", None)  # the consumer's side, not the message's
        # Celery turns ``expires`` into a TTL counted from the moment of publishing.
        properties["expiration"] = round(int(properties["expiration"]) / 1000)
        messages.append(
            {
                "body": message.body,
                "content_type": message.content_type,
                "content_encoding": message.content_encoding,
                "headers": message.headers,
                "properties": properties,
            }
        )
    return messages


def published(queue, publisher: Publisher, batch: list[Send], now: int) -> list[dict]:
    for send in batch:
        publisher.add(send)
    publisher.drain(now)
    publisher.close()
    return received(queue)


def test_a_batch_is_the_per_message_sends_byte_for_byte(broker):
    """Body, headers and properties of each message are those the one-at-a-time path sends.

    Only the TTL Celery derives from ``expires`` at the moment of publishing may differ (it is
    compared to the second)."""
    now = us(time.time())
    one_by_one = published(broker, Publisher(celery_app, retry_every=SECOND, batch_size=1), sends(3, now), now)
    batched = published(broker, Publisher(celery_app, retry_every=SECOND), sends(3, now), now)
    assert len(batched) == 3
    assert batched == one_by_one
    assert [message["headers"]["id"] for message in batched] == [task_id_for(f"entry-{n}", now) for n in range(3)]


def test_sends_kept_through_a_refused_batch_go_once_each(broker):
    """A batch the broker refuses is kept; the retry sends every message once, in order."""
    now = us(time.time())
    publisher = Publisher(celery_app, retry_every=SECOND)
    with app_broker(celery_app, f"redis://127.0.0.1:{free_port()}/0"):  # nothing listens there
        for send in sends(5, now):
            publisher.add(send)
        publisher.drain(now)
    assert publisher.waiting == 5
    publisher.drain(now + SECOND)
    publisher.close()
    assert [message["headers"]["id"] for message in received(broker)] == [
        task_id_for(f"entry-{n}", now) for n in range(5)
    ]
    assert publisher.waiting == 0


def test_the_broker_drops_a_message_once_it_expires(broker):
    """A send nobody consumed within its period is gone from the queue: Celery's TTL on RabbitMQ.

    On Redis the worker drops it instead (the ``expires`` header), so only RabbitMQ is checked."""
    if broker.channel.connection.client.transport.driver_type != "amqp":
        pytest.skip("only RabbitMQ expires messages itself")
    now = us(time.time())
    publisher = Publisher(celery_app, retry_every=SECOND)
    publisher.add(sends(1, now, period=1 * SECOND)[0])
    publisher.drain(now)
    publisher.close()
    assert broker.queue_declare(passive=True).message_count == 1
    wait_for(lambda: broker.queue_declare(passive=True).message_count == 0, timeout=10, what="the message to expire")
