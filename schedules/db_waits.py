"""Bounded database waits for the web process (installed by gunicorn.conf.py's
``post_worker_init``) and for ``celery beat`` with the fleet scheduler (installed on Celery's
``beat_init`` signal, schedules/beat/scheduler.py).

libpq's own bounds do not cover a database that stops answering: ``connect_timeout`` ends
only the connect, ``statement_timeout`` is enforced by the server (a stopped server enforces
nothing) and TCP keepalives are answered by the server's kernel. So the web process's sessions
get LUFFY_DB_WEB_STATEMENT_TIMEOUT_MS as their statement timeout, and psycopg2 runs with a wait
callback that stops waiting for any answer, connect included, 0.5 s after that (an alive server
cancels a slow statement first) and raises ``OperationalError``; psycopg2 then closes that
connection and Django reconnects on a later request. The request answers 503
(schedules/api/exception_handler.py, schedules/middleware.py).

After one wait ran out, waits fail at once for the same length of time: a request whose health
check (CONN_HEALTH_CHECKS) timed out does not wait a second time to reconnect, and the other
threads answer 503 at once instead of each waiting out the bound.

The bound is on silence, not on total time: each wait restarts whenever the socket becomes
readable or writable, so a long result streamed without pause (beat's full load) is never cut.

Beat waits at most LUFFY_DB_BEAT_WAIT_SECONDS for any answer. The callback is process-wide
(``psycopg2.extensions.set_wait_callback``), so it bounds every session of the beat process:
Django's (loads, pickup polls, run-state writes), the leader lock's and the LISTEN session's.
A leader whose database stops answering thus steps down (fails closed) within that bound and
its ticks go on; once the database answers again it takes the lock again by itself.

The run monitor (``manage.py monitor_runs``) waits at most LUFFY_DB_MONITOR_WAIT_SECONDS: it keeps
its batch in memory and goes on reading events, and a stop signal ends it within that bound.
"""

import select
import threading
import time

import psycopg2
from django.conf import settings
from psycopg2 import extensions

EVENTS = {extensions.POLL_READ: select.POLLIN, extensions.POLL_WRITE: select.POLLOUT}


class BoundedWait:
    def __init__(self, seconds: float, clock=time.monotonic):
        self.seconds, self.clock = seconds, clock
        self.lock = threading.Lock()
        self.silent_until = 0.0
        self.longest = 0.0  # the longest silence waited out so far (bench/db_wait_bench.py)

    def __call__(self, conn) -> None:
        if self.clock() < self.silent_until:
            raise psycopg2.OperationalError("The database stopped answering moments ago; not waiting again yet.")
        while (state := conn.poll()) != extensions.POLL_OK:
            poller = select.poll()
            poller.register(conn.fileno(), EVENTS[state])
            started = self.clock()
            ready = poller.poll(self.seconds * 1000)
            self.longest = max(self.longest, self.clock() - started)
            if not ready:
                with self.lock:
                    self.silent_until = self.clock() + self.seconds
                raise psycopg2.OperationalError(f"The database did not answer within {self.seconds:g} s.")


def install() -> None:
    """The web process, before its first connection: sessions read these OPTIONS when they connect."""
    statement_ms = settings.LUFFY_DB_WEB_STATEMENT_TIMEOUT_MS
    settings.DATABASES["default"]["OPTIONS"]["options"] = f"-c statement_timeout={statement_ms}"
    extensions.set_wait_callback(BoundedWait(statement_ms / 1000 + 0.5))


def install_for_beat() -> BoundedWait:
    """The beat process: every psycopg2 session waits at most LUFFY_DB_BEAT_WAIT_SECONDS of silence."""
    return _install(settings.LUFFY_DB_BEAT_WAIT_SECONDS)


def install_for_monitor() -> BoundedWait:
    """The run monitor's process (LUFFY_DB_MONITOR_WAIT_SECONDS)."""
    return _install(settings.LUFFY_DB_MONITOR_WAIT_SECONDS)


def _install(seconds: float) -> BoundedWait:
    wait = BoundedWait(seconds)
    extensions.set_wait_callback(wait)
    return wait
