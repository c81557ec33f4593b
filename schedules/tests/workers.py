"""Each pytest-xdist worker (``make test`` runs two) gets a broker and a var folder of its own.

pytest-django already gives each worker its own test database (``test_<name>_gw0``, ...). The
Redis database is shared otherwise: the in-process scheduler tests, the client's run-now tests
and the API's run-now tests all read and empty the ``default`` queue, so two workers on one
Redis database would see each other's messages. Worker ``gwN`` uses the configured database
number plus N (mod 16) and ``$LUFFY_VAR_DIR/gwN``; the processes the end-to-end tests start
inherit both through the environment. Queue names, RabbitMQ vhosts and ports are per process
already.

scripts/test.sh loads it with ``-p schedules.tests.workers`` (from the repository root, as
``python -m pytest``), so it runs before pytest-django reads the settings: a conftest would be
too late. ``schedules/tests/conftest.py`` stops a parallel run that did not load it. Without
xdist it changes nothing. It also hands the beat timing
figures the workers measured to the controller, which prints them in its summary.
"""

import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

REDIS_DATABASES = 16  # Redis's default ``databases``
ISOLATED = "LUFFY_TEST_WORKER"  # set once a worker is isolated; conftest.py checks it


def _redis_url_for(url: str, index: int) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
        return url
    database = int(parts.path.strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{(database + index) % REDIS_DATABASES}"))


def _isolate(worker: str) -> None:
    index = int(worker.removeprefix("gw"))
    for name in ("CELERY_BROKER_URL", "LUFFY_CACHE_URL"):
        if os.environ.get(name):
            os.environ[name] = _redis_url_for(os.environ[name], index)
    # Unset, settings use BASE_DIR/var (the SQLite file and the folder broker of a bare run).
    var = Path(os.environ.get("LUFFY_VAR_DIR") or Path(__file__).resolve().parents[2] / "var")
    os.environ["LUFFY_VAR_DIR"] = str(var / worker)
    os.environ[ISOLATED] = worker


if os.environ.get("PYTEST_XDIST_WORKER") and os.environ.get(ISOLATED) != os.environ["PYTEST_XDIST_WORKER"]:
    _isolate(os.environ["PYTEST_XDIST_WORKER"])


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """The beat timing figures a worker measured (test_beat_e2e.py), printed by the controller."""
    from schedules.tests.e2e import Timings

    for timings in getattr(node, "workeroutput", {}).get("beat_timings", []):
        node.config.pluginmanager.register(Timings(**timings))
