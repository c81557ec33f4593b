"""The publisher against real brokers: templated and batched sends are ``send_task``'s, byte for byte."""

import json
import os
import time
from contextlib import ExitStack
from unittest import mock

import pytest
from celery.signals import before_task_publish
from celery.utils.saferepr import saferepr
from django.conf import settings
from kombu import Exchange, Queue

from luffy_admin.celery import app as celery_app
from schedules.beat.clock import SECOND, us
from schedules.beat.messages import argument_repr
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


def varied_sends(now: int) -> list[Send]:
    """Sends of several shapes: plain, with kwargs and headers, a priority, an exchange and routing key,
    long arguments (``argsrepr`` truncated), a shape-sharing pair, a slot sent late."""
    base = sends(2, now)
    extra = [
        Send(
            name="entry-priority",
            task="src.services.tasks.other",
            args="[]",
            kwargs="{}",
            headers="{}",
            options={"queue": QUEUE, "priority": 5},
            slot=now,
            task_id=task_id_for("entry-priority", now),
            period=60 * SECOND,
            stale_at=now + 60 * SECOND,
        ),
        Send(
            name="entry-exchange",
            task="src.services.tasks.fetch_and_process_logs",
            args=json.dumps(["x" * 2000, {"nested": [1, 2, [3, [4, [5, [6]]]]]}]),
            kwargs=json.dumps({"big": "y" * 2000, "n": None}),
            headers='{"tenant": "t2", "trace": [1, 2]}',
            options={"queue": QUEUE, "exchange": QUEUE, "routing_key": QUEUE},
            slot=now,
            task_id=task_id_for("entry-exchange", now),
            period=3600 * SECOND,
            stale_at=now + 3600 * SECOND,
        ),
        Send(
            name="entry-late",
            task="src.services.tasks.fetch_and_process_logs",
            args='["late"]',
            kwargs="{}",
            headers="{}",
            options={"queue": QUEUE},
            slot=now - 20 * SECOND,
            task_id=task_id_for("entry-late", now - 20 * SECOND),
            period=10 * SECOND,
            stale_at=now + 60 * SECOND,
        ),
    ]
    return base + extra


@pytest.mark.parametrize("batch_size", [500, 1], ids=["batched", "one-at-a-time"])
def test_templated_messages_are_send_tasks_byte_for_byte(broker, batch_size):
    """Body, headers and properties of each message are those ``send_task`` publishes.

    The reference goes through ``send_task`` one message at a time; the templated path (in a
    batch on Redis, one at a time everywhere after a failure) must publish the same bytes. Only
    what kombu or Celery make per publish may differ: Redis's ``delivery_tag`` (a random uuid)
    and the TTL Celery derives from ``expires`` at the moment of publishing (compared to the
    second)."""
    now = us(time.time())
    reference = published(broker, Publisher(celery_app, retry_every=SECOND, templates=False), varied_sends(now), now)
    publisher = Publisher(celery_app, retry_every=SECOND, batch_size=batch_size)
    templated = published(broker, publisher, varied_sends(now), now)
    assert len(templated) == len(varied_sends(now))
    assert templated == reference
    # In order, but for the priority: the Redis transport reads its priority lists in turn.
    assert sorted(message["headers"]["id"] for message in templated) == sorted(
        send.task_id for send in varied_sends(now)
    )


def test_every_shape_here_is_templated(broker):
    """The shapes above are built from templates, not by ``send_task`` (so the test above compares two paths)."""
    now = us(time.time())
    publisher = Publisher(celery_app, retry_every=SECOND)
    with mock.patch.object(celery_app, "send_task", wraps=celery_app.send_task) as send_task:
        published(broker, publisher, varied_sends(now), now)
    # One probe per shape (the two plain sends share theirs), no send_task per message.
    assert send_task.call_count == 4
    assert {call.kwargs["task_id"] for call in send_task.call_args_list} == {"luffy-probe-task-id-0f3c"}


def test_a_signal_receiver_sends_through_send_task(broker):
    """With a ``before_task_publish`` receiver every message goes through ``send_task``, which calls it."""
    now = us(time.time())
    seen = []

    def receiver(headers=None, **kwargs):
        seen.append(headers["id"])

    before_task_publish.connect(receiver)
    try:
        messages = published(broker, Publisher(celery_app, retry_every=SECOND), varied_sends(now), now)
    finally:
        before_task_publish.disconnect(receiver)
    assert seen == [send.task_id for send in varied_sends(now)]  # each message, in publishing order
    assert sorted(message["headers"]["id"] for message in messages) == sorted(seen)


def test_a_router_function_sends_through_send_task(broker, monkeypatch):
    """A task route that is a function (it may read the arguments) is left to ``send_task``."""
    now = us(time.time())
    routed = []

    def route(name, args, kwargs, options, task=None, **kw):
        routed.append(args)
        return None

    monkeypatch.setattr(celery_app.amqp.router, "routes", [route])
    messages = published(broker, Publisher(celery_app, retry_every=SECOND), sends(3, now), now)
    assert len(messages) == 3
    assert routed == [[f"service-{n}"] for n in range(3)]


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


@pytest.mark.parametrize(
    "value",
    [
        [],
        {},
        ["service-1"],
        ["it's", 'say "hi"', "back\\slash", "new\nline", "tab\t", "ünïcødé ☃", "\x00", ""],
        [1, -2, 3.5, float("inf"), True, False, 10**30],
        ["x" * 1000],
        ["x" * 2000],
        ["a"] * 16,
        ["a"] * 17,
        [None],
        [["nested"]],
        [{"k": "v"}],
        ("tuple",),
        {"k": "v"},
        [b"bytes"],
    ],
)
@pytest.mark.parametrize("maxlen", [None, 10, 1024])
def test_argument_repr_is_celerys_saferepr(value, maxlen):
    """The argument reprs in a templated message's headers are what Celery's saferepr writes."""
    assert argument_repr(value, maxlen, 3) == saferepr(value, maxlen, maxlevels=3)
