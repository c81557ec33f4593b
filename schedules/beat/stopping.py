"""celery beat's stop signals, held back while claimed slots are on their way to the publisher.

celery beat's SIGTERM/SIGINT handler raises ``SystemExit`` wherever the main thread is. Landing
between a claim's commit and the hand-over of its sends to the publisher, it would lose those
slots: claimed, so no other beat sends them, and never sent. Held, the handler runs once the
hand-over is done; beat's loop then closes the scheduler, which gives the publisher a last try.
"""

import signal
from contextlib import contextmanager

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopSignals:
    def __init__(self):
        self._holding = False
        self._held = None

    def install(self):
        """Wrap the stop handlers beat installed; main thread only, as ``signal.signal`` requires."""
        for signum in STOP_SIGNALS:
            handler = signal.getsignal(signum)
            if callable(handler):
                signal.signal(signum, self._deferring(handler))

    def _deferring(self, handler):
        def on_signal(signum, frame):
            if self._holding:
                self._held = (handler, signum)
            else:
                handler(signum, frame)

        return on_signal

    @contextmanager
    def held(self):
        """Run the block whole; a stop signal that lands meanwhile is handled at its end."""
        self._holding = True
        try:
            yield
        finally:
            self._holding = False
            held, self._held = self._held, None
            if held is not None:
                handler, signum = held
                handler(signum, None)
