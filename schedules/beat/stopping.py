"""celery beat's stop signals, held back while slots are claimed and published.

celery beat's SIGTERM/SIGINT handler raises ``SystemExit`` wherever the main thread is. Landing
between a claim's commit and the hand-over of its sends to the publisher, it would lose those
slots (claimed, so no other beat sends them, and never sent); landing inside a publish after the
broker took the message, it would leave that send waiting, to go a second time. Held, the
handler runs at the end of the claim or of the publish; beat's loop then closes the scheduler,
which gives the publisher a last try for what is still waiting.
"""

import logging
import signal
from contextlib import contextmanager

logger = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopSignals:
    """Defers beat's stop handlers while a ``held()`` block runs (blocks nest: a close holds
    while each publish of its last try holds too)."""

    def __init__(self):
        self._depth = 0
        self._deferred = None  # (handler, signum) of a signal that landed while held

    def install(self):
        """Wrap the stop handlers beat installed; main thread only, as ``signal.signal`` requires."""
        for signum in STOP_SIGNALS:
            handler = signal.getsignal(signum)
            if callable(handler):
                signal.signal(signum, self._deferring(handler))

    def _deferring(self, handler):
        def on_signal(signum, frame):
            if self._depth:
                self._deferred = (handler, signum)
            else:
                handler(signum, frame)

        return on_signal

    @contextmanager
    def held(self):
        """Run the block whole; a stop signal that lands meanwhile is handled at its end."""
        self._depth += 1
        try:
            yield
        except BaseException:
            self._release(failed=True)
            raise
        self._release(failed=False)

    def _release(self, *, failed: bool):
        self._depth -= 1
        if self._depth or self._deferred is None:
            return
        (handler, signum), self._deferred = self._deferred, None
        if failed:
            # The handler's SystemExit replaces the error in flight, and beat's loop ends quietly
            # on SystemExit: the error is logged here or nowhere.
            logger.exception("beat: stopping (signal %d) after this error", signum)
        handler(signum, None)
