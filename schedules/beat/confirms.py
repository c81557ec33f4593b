"""RabbitMQ publisher confirms for beat's batches.

A plain AMQP publish is a socket write: it returns as soon as the kernel takes the bytes, so a
link that stops passing them (a partition, a broker that hangs) swallows every message while
beat counts it sent. In confirm mode the broker acknowledges each publish; beat publishes a
batch, then waits (at most the broker timeout) until every one is acknowledged. A batch not
acknowledged in time goes back to the queue like a refused one. Its messages may have arrived:
they are sent again, one at a time with a confirm each, under the same task ids.
"""

import time


class Unconfirmed(ConnectionError):
    """The broker did not acknowledge every publish in time, or refused (nacked) one."""


class Confirms:
    """Confirm mode on one channel. The broker numbers its publishes from 1, so ``expect()``
    runs before each publish and a failed channel is never reused (the publisher reconnects)."""

    def __init__(self, channel, *, timeout: float):
        channel.confirm_select()
        # Acks may be read by any wait on the connection (a queue declare's too): listen for them.
        channel.events["basic_ack"].add(self._on_ack)
        channel.events["basic_nack"].add(self._on_nack)
        self._timeout = timeout
        self._published = 0
        self._unconfirmed: set[int] = set()
        self._nacked = False

    def expect(self):
        """Count the publish about to be made."""
        self._published += 1
        self._unconfirmed.add(self._published)

    def settle(self, connection):
        """Wait until every expected publish is acknowledged; raise ``Unconfirmed`` otherwise."""
        deadline = time.monotonic() + self._timeout
        while self._unconfirmed:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise Unconfirmed(f"{len(self._unconfirmed)} publishes not confirmed within {self._timeout:g} s")
            connection.drain_events(timeout=remaining)
        if self._nacked:
            raise Unconfirmed("the broker refused a publish (nack)")

    def _on_ack(self, delivery_tag, multiple):
        if multiple:
            self._unconfirmed = {tag for tag in self._unconfirmed if tag > delivery_tag}
        else:
            self._unconfirmed.discard(delivery_tag)

    def _on_nack(self, delivery_tag, multiple):
        self._on_ack(delivery_tag, multiple)
        self._nacked = True
