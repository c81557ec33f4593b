"""gunicorn settings, the one place for them: `make run`, docker-compose and the docs use this file.

Threads (``gthread``) keep one slow request (a hung broker or database, bounded by their own
timeouts in settings.py) from taking a whole worker process; ``timeout`` is the last resort
that replaces a worker stuck past every bound. See https://docs.gunicorn.org/en/stable/settings.html
"""

import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# Longer than every dependency bound in settings.py (database waits 2.5 s, broker 2 s).
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 10
accesslog = "-"


def post_worker_init(worker):
    """Bound every database wait of this web process (see schedules/db_waits.py)."""
    from django.conf import settings

    if settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        from schedules import db_waits

        db_waits.install()
