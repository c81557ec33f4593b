"""Claimed slots on their way to the broker: kept in order, retried while the broker refuses them."""

import itertools
import json
import logging
import time
import uuid
from collections import deque
from contextlib import nullcontext
from dataclasses import dataclass

from .clock import from_us, seconds
from .confirms import Confirms
from .entries import CATCH_UP, Entry
from .messages import Shapes

logger = logging.getLogger(__name__)

# The longest one broker operation (connect, one publish) may block a tick. A broker that hangs
# (packets dropped, a stopped process) otherwise holds it for the kernel's TCP retransmission
# timeout, minutes, and with it the claims, the polls and the lock checks.
BROKER_TIMEOUT = 2.0
# How long a stopping beat goes on sending what waits (one broker timeout, then a publish or two):
# within a supervisor's usual grace period (docker stop: 10 s) whatever the backlog.
HAND_OVER_SECONDS = 5.0
# The transport options that bound every socket operation, by kombu driver type.
TIMEOUT_OPTIONS = {
    "redis": {"socket_timeout": BROKER_TIMEOUT, "socket_connect_timeout": BROKER_TIMEOUT},
    # kombu's pyamqp transport passes its transport options to py-amqp's Connection.
    "amqp": {"read_timeout": BROKER_TIMEOUT, "write_timeout": BROKER_TIMEOUT},
}


def task_id_for(name: str, slot: int) -> str:
    """The same entry and slot always give the same Celery task id."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"luffy-beat:{name}@{slot}"))


@dataclass
class Send:
    """A claimed slot waiting for the broker."""

    name: str
    task: str
    args: str
    kwargs: str
    headers: str
    options: dict
    slot: int
    task_id: str
    period: int
    stale_at: int

    @classmethod
    def of(cls, entry: Entry) -> "Send":
        """The send for the entry's due slot."""
        slot = entry.due
        period = entry.expire_us if entry.expire_us is not None else entry.period()
        return cls(
            name=entry.name,
            task=entry.task,
            args=entry.args,
            kwargs=entry.kwargs,
            headers=entry.headers,
            options=entry.options,
            slot=slot,
            task_id=task_id_for(entry.name, slot),
            period=period,
            stale_at=slot + max(period, CATCH_UP),
        )


class Publisher:
    """Sends waiting for the broker, oldest first, and the broker connection they go through."""

    def __init__(self, app, *, retry_every: int, batch_size: int = 500, templates: bool = True, guard=nullcontext):
        """``templates=False``: every message through ``send_task`` (the reference the tests compare to).

        ``guard()``: a context each publish runs in, up to the removal of what it sent (beat's
        stop-signal hold), so a stop can neither cut a publish short nor leave a sent one waiting.
        """
        self._app = app
        self._guard = guard
        self._templates = templates
        self._retry_every = retry_every
        self._batch_size = batch_size
        # After a failed send the next tries go one at a time, until the queue is empty again.
        self._batching = True
        self._pipelines = False  # whether the connected transport publishes a batch in one go
        self._pending: deque[Send] = deque()
        self._retry_at = 0
        self._broker_down = False
        self._connection = None
        self._producer = None
        self._confirms = None
        self._shapes = Shapes(app)

    @property
    def waiting(self) -> int:
        """How many claimed sends wait for the broker."""
        return len(self._pending)

    @property
    def wake_at(self) -> int | None:
        """When the next try is due, while sends are waiting."""
        return self._retry_at if self._pending else None

    def add(self, send: Send):
        self._pending.append(send)

    def drain(self, now: int, *, deadline: float | None = None):
        """Publish waiting sends in order; on a broker error keep the rest for the next try.

        ``deadline`` (``time.monotonic``): no publish starts after it.
        """
        if now < self._retry_at:
            return
        self._drop_stale(now)
        # Looked up once per drain: one at a time (RabbitMQ), it cost as much as a publish.
        templated = self._templates and self._shapes.usable()
        while self._pending and (deadline is None or time.monotonic() < deadline):
            send = self._pending[0]
            try:
                with self._guard():
                    went = self._publish(now, templated)
                    for _ in range(went):
                        self._pending.popleft()
            except Exception as exc:  # kombu raises transport-specific errors
                self.close(graceful=False)
                self._batching = False
                self._retry_at = now + self._retry_every
                if not self._broker_down:
                    logger.error(
                        "beat: broker refused %s slot %s (%s); keeping %d sends, retrying every %s s",
                        send.name,
                        from_us(send.slot),
                        exc,
                        len(self._pending),
                        seconds(self._retry_every),
                    )
                self._broker_down = True
                return
            if self._broker_down:
                logger.info("beat: broker reachable again; sending %d waiting slots", len(self._pending))
                self._broker_down = False
        self._batching = True

    def hand_over(self, now: int):
        """The beat is stopping: a last try for the waiting sends, whatever the retry pacing, for
        at most HAND_OVER_SECONDS. They are claimed, so no other beat sends them: what the broker
        has not taken by then is lost.
        """
        if not self._pending:
            return
        self._retry_at = 0
        self.drain(now, deadline=time.monotonic() + HAND_OVER_SECONDS)
        if self._pending:
            logger.error("beat: stopping with %d claimed sends the broker did not take; not sent", len(self._pending))
            self._pending.clear()

    def _drop_stale(self, now: int):
        """Drop every send past its catch-up window, wherever it waits.

        Sends go stale out of order (a daily slot keeps a day, a one-second slot ten seconds),
        so during an outage a long-lived send at the head must not shelter the rest.
        """
        if not any(send.stale_at < now for send in self._pending):
            return
        fresh = deque()
        for send in self._pending:
            if send.stale_at < now:
                logger.error(
                    "beat: %s slot %s went stale before the broker took it; not sent", send.name, from_us(send.slot)
                )
            else:
                fresh.append(send)
        self._pending = fresh

    def _publish(self, now: int, templated: bool) -> int:
        """Publish the head of the queue, a batch of it where the transport allows; how many went.

        Redis (kombu's ``Producer.batch``): one pipeline of the very messages ``send_task``
        builds, so ~500 sends cost one round trip. RabbitMQ: each message is written at once,
        then the batch waits for the broker's confirms (``confirms``). Other transports publish
        each at once with nothing to wait for, so a failure half-way would leave no record of
        which went: they go one at a time, as does everything after a failure (then the send
        that fails is known). Each message is built from its shape's template (``messages``)
        where it has one.
        """
        if self._producer is None:
            self._connection = self._connect()
            self._producer = self._app.amqp.Producer(self._connection, auto_declare=False)
            if self._connection.transport.driver_type == "amqp":
                self._confirms = Confirms(self._producer.channel, timeout=BROKER_TIMEOUT)
        batched = self._pipelines or self._confirms is not None
        count = 1
        if self._batching and batched and self._batch_size > 1:
            count = min(len(self._pending), self._batch_size)
        sends = list(itertools.islice(self._pending, count))
        if self._pipelines and count > 1:
            # max_size counts Redis commands (a queue with x-expires adds some): never flush midway.
            with self._producer.batch(max_size=10 * count):
                for send in sends:
                    self._send(send, now, templated)
        else:
            for send in sends:
                if self._confirms is not None:
                    self._confirms.expect()
                self._send(send, now, templated)
        if self._confirms is not None:
            self._confirms.settle(self._connection)
        return count

    def _send(self, send: Send, now: int, templated: bool):
        logger.info("beat: sending %s (%s) for %s", send.name, send.task, from_us(send.slot))
        # Stale once the next slot is due: a lagging worker pool skips it instead of replaying
        # a pile of old runs.
        expires = from_us(max(send.slot, now) + send.period)
        template = None
        if templated:
            template = self._shapes.get(self._connection, task=send.task, headers=send.headers, options=send.options)
        if template is None:
            self._send_task(send, expires)
            return
        if not template.declared:
            for entity in template.declare:  # what send_task declares before each publish
                self._producer.maybe_declare(entity, retry=False)
            template.declared = True
        template.publish(
            self._producer,
            task_id=send.task_id,
            name=send.name,
            args=json.loads(send.args),
            kwargs=json.loads(send.kwargs),
            expires=expires,
        )

    def _send_task(self, send: Send, expires):
        # The headers the stock scheduler sends: the worker side knows the entry by its name.
        headers = dict(json.loads(send.headers), periodic_task_name=send.name, celery_beat_task=True)
        self._app.send_task(
            send.task,
            json.loads(send.args),
            json.loads(send.kwargs),
            task_id=send.task_id,
            producer=self._producer,
            retry=False,
            expires=expires,
            headers=headers,
            **send.options,
        )

    def _connect(self):
        options = dict(self._app.conf.broker_transport_options)
        # No reconnect loop inside a send (kombu's default retries for seconds): a refused send
        # goes back to the queue and the tick goes on; the next try is ours to time.
        options["max_retries"] = 0
        connection = self._app.connection_for_write(connect_timeout=BROKER_TIMEOUT)
        # The driver type is known without any I/O; the options must fit it (py-amqp refuses
        # redis-py's names and the other way round).
        options.update(TIMEOUT_OPTIONS.get(connection.transport.driver_type, {}))
        self._pipelines = connection.transport.driver_type == "redis"
        connection.release()
        return self._app.connection_for_write(connect_timeout=BROKER_TIMEOUT, transport_options=options)

    def close(self, *, graceful: bool = True):
        """Drop the broker connection; the next send opens a fresh one.

        Not ``graceful`` after a failure: AMQP's closing handshake would wait on the same broker
        that just failed to answer (seconds per channel and connection), so the socket just goes.
        """
        if self._connection is not None:
            try:
                if graceful:
                    self._connection.release()
                else:
                    self._connection.collect()
            except Exception:  # already broken; dropping it is the point
                pass
        self._connection = self._producer = self._confirms = None
        self._shapes.clear()  # a template's queues are declared once per connection
