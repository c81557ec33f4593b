"""The web process (gunicorn with gunicorn.conf.py) against a hung or stopped broker and database.

A PostgreSQL cluster and a Redis server of this module's own (schedules/tests/servers.py) are
SIGSTOPped ("hung": TCP still accepted, nothing answered) or stopped ("down"); the shared servers
are never touched. A real gunicorn process rather than Django's test client: the bounds live in
the process (its psycopg2 wait callback, kombu's sockets, gunicorn's threads), and a test client
in pytest's process would neither install nor exercise them honestly.
"""

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path

import pytest
from django.conf import settings

from schedules import errors
from schedules.middleware import DATABASE_UNAVAILABLE

from .e2e import Process, wait_for
from .servers import Cluster, RedisServer, free_port, scratch_root

pytestmark = pytest.mark.e2e

ROOT = Path(settings.BASE_DIR)
BASE = "/api/v1/task-scheduling"
BOUND = 3.0  # seconds: what a caller may wait for a 503 while a dependency hangs
THREADS = 4
SETUP = """
import json
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore
from schedules import services
from schedules.models import ApiKeyScope
actor = services.Actor.system("tests")
service = services.service_create(actor=actor, service_id="web-app", name="Web")
schedule = services.schedule_create(actor=actor, service=service, task_name="fetch_logs", cron_expression="0 * * * *")
_, key = services.api_key_create(name="faults", scopes=set(ApiKeyScope.NAMES))
user = get_user_model().objects.create_superuser("operator", "operator@example.com", "unused-long-password")
session = SessionStore()
session.update({"_auth_user_id": str(user.pk), "_auth_user_backend": "django.contrib.auth.backends.ModelBackend",
                "_auth_user_hash": user.get_session_auth_hash()})
session.create()
print(json.dumps({"key": key, "session": session.session_key, "schedule": str(schedule.pk)}))
"""


@dataclass
class Answer:
    status: int
    headers: dict
    body: bytes
    seconds: float

    def json(self):
        return json.loads(self.body)


@dataclass
class Web:
    url: str
    cluster: Cluster
    redis: RedisServer
    key: str
    session: str
    schedule: str

    def call(self, path, *, method="GET", auth="key") -> Answer:
        headers = {"Authorization": f"Token {self.key}"} if auth == "key" else {}
        if auth == "session":
            headers["Cookie"] = f"sessionid={self.session}"
        request = urllib.request.Request(self.url + path, method=method, headers=headers)
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=40) as response:
                status, answer_headers, body = response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            status, answer_headers, body = error.code, dict(error.headers), error.read()
        return Answer(status, answer_headers, body, time.monotonic() - started)


@pytest.fixture(scope="module")
def web():
    root = scratch_root("web-faults-")
    cluster, redis = Cluster(root), RedisServer()
    gunicorn = None
    try:
        cluster.init()
        cluster.start()
        cluster.psql("postgres", "CREATE DATABASE luffy")
        redis.start()
        port = free_port()
        env = dict(
            os.environ,
            DATABASE_URL=cluster.url("luffy"),
            CELERY_BROKER_URL=f"redis://127.0.0.1:{redis.port}/0",
            LUFFY_VAR_DIR=str(root / "var"),
            LUFFY_BEAT_HEARTBEAT_SECONDS="0",
            # Every /health call checks the broker, so the connection count below means something.
            LUFFY_HEALTH_CACHE_SECONDS="0",
            LUFFY_THROTTLE_ANON="10000/min",
            GUNICORN_BIND=f"127.0.0.1:{port}",
            GUNICORN_WORKERS="1",
            GUNICORN_THREADS=str(THREADS),
        )
        manage = [sys.executable, "manage.py"]
        subprocess.run([*manage, "migrate", "--verbosity", "0"], env=env, cwd=ROOT, check=True, capture_output=True)
        # The admin's pages need the static manifest, as under `make run`.
        subprocess.run([*manage, "collectstatic", "--no-input", "-v", "0"], env=env, cwd=ROOT, check=True)
        created = subprocess.run(
            [*manage, "shell", "-c", SETUP], env=env, cwd=ROOT, check=True, capture_output=True, text=True
        )
        fixtures = json.loads(created.stdout.strip().splitlines()[-1])
        gunicorn = Process(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "luffy_admin.wsgi"],
            env=env,
            cwd=ROOT,
            output=root / "gunicorn.log",
        )
        web = Web(f"http://127.0.0.1:{port}", cluster, redis, **fixtures)

        def up():
            gunicorn.assert_running()
            try:
                return web.call(f"{BASE}/health", auth=None).status == HTTPStatus.OK
            except OSError:
                return False

        wait_for(up, timeout=30, what="gunicorn answering /health")
        yield web
    finally:
        if gunicorn is not None:
            gunicorn.stop()
        if redis.process is not None:
            redis.stop()
        if (cluster.data / "postmaster.pid").exists():
            cluster.resume()
            cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_health_reuses_a_pooled_broker_connection(web):
    """50 /health calls (each checking the broker: no cache here) open at most one new
    connection to Redis, not one per call."""
    before = int(web.redis.info("stats")["total_connections_received"])
    for _ in range(50):
        assert web.call(f"{BASE}/health", auth=None).status == HTTPStatus.OK
    after = int(web.redis.info("stats")["total_connections_received"])
    clients = int(web.redis.info("clients")["connected_clients"])
    new_connections = after - before - 1  # less the INFO call's own connection
    print(f"\n/health x50: {new_connections} new broker connections, {clients} connected clients")
    assert new_connections <= 1
    assert clients <= THREADS + 1


def test_hung_broker_health_and_run_answer_within_bounds_and_recover(web):
    """Redis under SIGSTOP: /health says the broker is down and /run answers 503, each within
    3 s; other requests are not held up; after SIGCONT both work again without a restart."""
    web.redis.hang()
    try:
        health = web.call(f"{BASE}/health", auth=None)
        assert (health.status, health.json()) == (
            HTTPStatus.OK,
            {"status": "degraded", "database": "ok", "broker": "down", "beat": "unknown", "monitor": "unknown"},
        )
        run = web.call(f"{BASE}/schedules/{web.schedule}/run", method="POST")
        assert run.status == HTTPStatus.SERVICE_UNAVAILABLE
        assert run.json() == {"detail": errors.BrokerUnavailable().detail, "code": "broker_unavailable"}
        with ThreadPoolExecutor(3) as pool:
            polls = [pool.submit(web.call, f"{BASE}/health", auth=None) for _ in range(3)]
            services = web.call(f"{BASE}/services")
            polled = [poll.result() for poll in polls]
        print(
            f"\nbroker hung: /health {health.seconds:.2f} s, /run {run.seconds:.2f} s, "
            f"/services {services.seconds:.2f} s"
        )
        assert max(answer.seconds for answer in [health, run, services, *polled]) < BOUND
        assert services.status == HTTPStatus.OK
    finally:
        web.redis.resume()

    wait_for(lambda: web.call(f"{BASE}/health", auth=None).json()["broker"] == "ok", timeout=10, what="broker ok again")
    assert web.call(f"{BASE}/schedules/{web.schedule}/run", method="POST").status == HTTPStatus.ACCEPTED


API_PATHS = [
    ("GET", f"{BASE}/services", "key"),
    ("GET", f"{BASE}/tasks", "key"),
    ("GET", f"{BASE}/cron/preview?expression=0+*+*+*+*", "key"),
    ("POST", f"{BASE}/schedules/{{schedule}}/run", "key"),
    ("GET", f"{BASE}/schedules", "session"),
]


def _assert_unavailable_everywhere(web) -> list[float]:
    times = []
    for method, path, auth in API_PATHS:
        answer = web.call(path.format(schedule=web.schedule), method=method, auth=auth)
        assert answer.status == HTTPStatus.SERVICE_UNAVAILABLE, (path, answer.body)
        assert answer.json() == {"detail": DATABASE_UNAVAILABLE, "code": "service_unavailable"}
        assert answer.headers["Retry-After"] == "5"
        times.append(answer.seconds)
    health = web.call(f"{BASE}/health", auth=None)
    assert (health.status, health.json()) == (
        HTTPStatus.SERVICE_UNAVAILABLE,
        {"status": "down", "database": "down", "broker": "ok", "beat": "unknown", "monitor": "unknown"},
    )
    admin = web.call("/admin/schedules/service/", auth="session")
    assert admin.status == HTTPStatus.SERVICE_UNAVAILABLE
    assert admin.headers["Content-Type"].startswith("text/html")
    assert b"<h1>Service unavailable</h1>" in admin.body
    assert admin.headers["Retry-After"] == "5"
    times += [health.seconds, admin.seconds]
    assert max(times) < BOUND, times
    return times


def _assert_recovered(web):
    wait_for(lambda: web.call(f"{BASE}/services").status == HTTPStatus.OK, timeout=15, what="the API again")
    assert web.call("/admin/schedules/service/", auth="session").status == HTTPStatus.OK
    assert web.call(f"{BASE}/health", auth=None).json()["database"] == "ok"


def test_hung_database_answers_503_everywhere_within_bounds_and_recovers(web):
    """PostgreSQL under SIGSTOP: every API path a JSON 503 with Retry-After, /health 503 down,
    the admin a plain 503 page, each within 3 s; after SIGCONT all answer again, no restart."""
    assert web.call(f"{BASE}/services").status == HTTPStatus.OK  # a persistent connection exists
    web.cluster.hang()
    try:
        times = _assert_unavailable_everywhere(web)
        print(f"\ndatabase hung: first 503 after {times[0]:.2f} s, slowest {max(times):.2f} s")
    finally:
        web.cluster.resume()
    _assert_recovered(web)


def test_stopped_database_answers_503_everywhere_within_bounds_and_recovers(web):
    """PostgreSQL stopped: the same 503s; once it is started again, the same process recovers."""
    assert web.call(f"{BASE}/services").status == HTTPStatus.OK
    web.cluster.stop()
    try:
        times = _assert_unavailable_everywhere(web)
        print(f"\ndatabase stopped: first 503 after {times[0]:.2f} s, slowest {max(times):.2f} s")
    finally:
        web.cluster.start()
    _assert_recovered(web)
