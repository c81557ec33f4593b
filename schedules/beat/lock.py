"""Leadership on PostgreSQL: an advisory lock held by a session of its own, and claims made on it."""

import logging
import zlib

from ..models import Dispatch
from .clock import from_us
from .entries import Claim

logger = logging.getLogger(__name__)

LOCK_KEY = zlib.crc32(b"luffy-admin fleet beat")
# How long data may go unacknowledged on the lock's link before either end drops it.
SESSION_TIMEOUT_MS = 8000
# The server ends the lock's session, freeing the lock, after this long without a query from
# the leader (which checks the lock every second, and during a long load too). TCP timeouts
# cannot see a peer whose kernel still acknowledges (a stopped process, a proxy that stopped
# forwarding); this can. PostgreSQL 14 and later.
IDLE_SESSION_TIMEOUT_MS = 8000


class LeaderLock:
    """A PostgreSQL advisory lock held by a dedicated session.

    The lock lives as long as the session: if the server, the network or this process goes, the
    lock is gone and another beat may take it. Claims are written on the same session, so a
    claim that succeeds proves the lock was still held when the slot was claimed.
    """

    def __init__(self, database):
        """``database``: Django's connection, whose parameters (OPTIONS included) this session uses."""
        self._database = database
        self._conn = None

    def _connect(self):
        import psycopg2

        # Django's own parameters: sslmode, sslrootcert, options=-c search_path=... and the
        # rest of OPTIONS apply to the lock's session as to every other query of beat's.
        params = self._database.get_connection_params()
        params.pop("cursor_factory", None)
        params.setdefault("connect_timeout", 5)
        options = params.pop("options", None)
        # Ours win over the same keys in Django's OPTIONS (its keepalives are for requests).
        params.update(
            application_name="luffy-beat-lock",
            # A dead peer must end the session within seconds, releasing the lock (fail
            # closed). Keepalives only probe an idle link; tcp_user_timeout also ends a
            # connection whose sent data goes unacknowledged (packets dropped), and the
            # server-side settings make PostgreSQL end the session, and free the lock,
            # when this beat is the one cut off.
            keepalives=1,
            keepalives_idle=5,
            keepalives_interval=2,
            keepalives_count=2,
            tcp_user_timeout=SESSION_TIMEOUT_MS,
            options=" ".join(
                filter(
                    None,
                    [
                        options,
                        "-c statement_timeout=5000",
                        "-c tcp_keepalives_idle=5 -c tcp_keepalives_interval=2 -c tcp_keepalives_count=2",
                        f"-c tcp_user_timeout={SESSION_TIMEOUT_MS}",
                    ],
                )
            ),
        )
        self._conn = psycopg2.connect(**params)
        self._conn.autocommit = True
        if self._conn.server_version >= 140000:
            with self._conn.cursor() as cursor:
                cursor.execute(f"SET idle_session_timeout = {IDLE_SESSION_TIMEOUT_MS}")

    def acquire(self) -> bool:
        try:
            if self._conn is None or self._conn.closed:
                self._connect()
            with self._conn.cursor() as cursor:
                cursor.execute("SELECT pg_try_advisory_lock(%s)", [LOCK_KEY])
                return bool(cursor.fetchone()[0])
        except Exception as exc:  # psycopg2.Error and socket errors alike: not the leader
            logger.warning("beat: cannot reach PostgreSQL for the leader lock: %s", exc)
            self.release()
            return False

    def alive(self) -> bool:
        try:
            with self._conn.cursor() as cursor:
                cursor.execute("SELECT 1")
            return True
        except Exception:
            self.release()
            return False

    def setting(self, name: str) -> str:
        """A server setting as the lock's session has it (``SHOW``)."""
        with self._conn.cursor() as cursor:
            cursor.execute(f"SHOW {name}")
            return cursor.fetchone()[0]

    def claim(self, claims: list[Claim]) -> set[tuple[str, int]]:
        """Insert the claims; return the (name, slot) pairs now ours. Raises once the session is gone.

        One statement (one commit on this autocommit session) per batch, the columns passed as
        arrays (psycopg2 adapts those in C; a VALUES list is built row by row in Python). A
        claim's task id stands for its (name, slot) (``task_id_for``), so the ids inserted are
        all that comes back.
        """
        names, slots, task_ids, sent = [], [], [], []
        for name, slot, task_id, sent_at in claims:
            names.append(name)
            slots.append(from_us(slot))
            task_ids.append(task_id)
            sent.append(from_us(sent_at))
        with self._conn.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {Dispatch._meta.db_table} (periodic_task_name, slot, task_id, sent_at) "
                "SELECT * FROM unnest(%s::text[], %s::timestamptz[], %s::text[], %s::timestamptz[]) "
                "ON CONFLICT DO NOTHING RETURNING task_id",
                [names, slots, task_ids, sent],
            )
            inserted = {task_id for (task_id,) in cursor.fetchall()}
        return {(claim.name, claim.slot) for claim in claims if claim.task_id in inserted}

    def release(self):
        """Unlock and end the session: a standby may take over at once."""
        if self._conn is not None:
            try:
                # Unlock first: the server frees a closed session's locks only once it notices
                # the hang-up, and a standby that tries in between would wait another second.
                with self._conn.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock_all()")
            except Exception:  # the session is already dead, and the lock with it
                pass
            try:
                self._conn.close()
            except Exception:  # already dead: closing is all that was left to do
                pass
        self._conn = None
