"""Changes as PostgreSQL announces them: ``LISTEN`` on the channel migration 0009's triggers notify.

The triggers name the rows each committed statement touched (``task:1,2``, ``crontab:7``, or
``task:*`` for too many to name), so the leader re-reads exactly those, within a tick of the
commit. The session is its own (not Django's, which closes and reopens connections at will;
not the lock's, whose statement timeout and claims must not wait behind a notification
read). While it is down, or where the triggers are absent, the store polls instead; after
it comes back the store catches up once, as notifications sent meanwhile are lost.
"""

import logging

logger = logging.getLogger(__name__)

CHANNEL = "luffy_beat"


class ChangeListener:
    """One ``LISTEN`` session; ``take()`` hands over what arrived since the last call."""

    def __init__(self, connection):
        self._django = connection  # Django's connection: its parameters, OPTIONS included
        self._conn = None

    @property
    def listening(self) -> bool:
        return self._conn is not None

    def start(self) -> bool:
        """Open the session and ``LISTEN``; False (and polling goes on) if it cannot."""
        import psycopg2

        self.stop()
        try:
            # A connect to an unreachable server must not hold the tick (OPTIONS may say otherwise).
            params = {"connect_timeout": 5, **self._django.get_connection_params()}
            params.pop("cursor_factory", None)
            # Ours win over the same keys in Django's OPTIONS: a dead peer must end the session
            # within seconds (the store polls meanwhile).
            params.update(
                application_name="luffy-beat-listen",
                keepalives=1,
                keepalives_idle=5,
                keepalives_interval=2,
                keepalives_count=2,
            )
            conn = psycopg2.connect(**params)
            conn.autocommit = True
            with conn.cursor() as cursor:
                cursor.execute("SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'luffy_beat_notify_update')")
                if not cursor.fetchone()[0]:
                    conn.close()
                    logger.warning("beat: the change triggers are absent (migration 0009); polling for changes")
                    return False
                cursor.execute(f"LISTEN {CHANNEL}")
        except psycopg2.Error as exc:
            logger.warning("beat: cannot listen for changes (%s); polling for changes", exc)
            return False
        self._conn = conn
        return True

    def take(self) -> list[str] | None:
        """The payloads received since the last call; None once the session is lost."""
        try:
            self._conn.poll()
        except Exception as exc:  # psycopg2.Error and socket errors alike: the session is gone
            logger.error("beat: lost the change notification session (%s); polling for changes", exc)
            self.stop()
            return None
        payloads = [notify.payload for notify in self._conn.notifies]
        self._conn.notifies.clear()
        return payloads

    def stop(self):
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # already broken; dropping it is the point
                pass
        self._conn = None
