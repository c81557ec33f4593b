"""celery beat's stop signals, held back while slots are claimed and published.

celery beat's SIGTERM/SIGINT handler raises ``SystemExit`` wherever the main thread is. Landing
between a claim's commit and the hand-over of its sends to the publisher, it would lose those
slots (claimed, so no other beat sends them, and never sent); landing inside a publish after the
broker took the message, it would leave that send waiting, to go a second time. Held, the
handler runs once the dispatch is done; beat's loop then closes the scheduler, which gives the
publisher a last try for what the broker has not taken.
"""

import signal
from contextlib import contextmanager

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopSignals:
    def __init__(self):
        self._depth = 0  # held() blocks open; they may nest
        self._held = None

    def install(self):
        """Wrap the stop handlers beat installed; main thread only, as ``signal.signal`` requires."""
        for signum in STOP_SIGNALS:
            handler = signal.getsignal(signum)
            if callable(handler):
                signal.signal(signum, self._deferring(handler))

    def _deferring(self, handler):
        def on_signal(signum, frame):
            if self._depth:
                self._held = (handler, signum)
            else:
                handler(signum, frame)

        return on_signal

    @contextmanager
    def held(self):
        """Run the block whole; a stop signal that lands meanwhile is handled at its end."""
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if not self._depth and self._held is not None:
                (handler, signum), self._held = self._held, None
                handler(signum, None)
