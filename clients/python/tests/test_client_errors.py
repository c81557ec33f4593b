"""Each error arrives as its typed exception; retries are safe (a lost answer never creates twice)."""

import socket
import time
import uuid

import httpx
import pytest

from client_helpers import run, settle
from luffy_admin_client import (
    AsyncLuffyAdmin,
    AuthenticationFailed,
    Conflict,
    IdempotencyKeyReused,
    LuffyAdmin,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
    RateLimited,
    ScheduleSpec,
    Unavailable,
    ValidationFailed,
)
from schedules import services
from schedules.models import AuditEvent, TaskSchedule
from schedules.services import run_now
from schedules.tests.api.helpers import unreachable_celery_app

HOURLY = ScheduleSpec(task_name="fetch_logs", cron_expression="0 * * * *")


async def _close(client):
    await settle(client.close() if hasattr(client, "close") else client.aclose())


def _raised(make_client, steps, **options):
    """What ``await steps(client, existing)`` raises, with web-app and its hourly schedule there."""

    async def scenario():
        client = make_client(**options)
        try:
            await settle(client.ensure_service("web-app", "Web application"))
            existing = await settle(client.create_schedule("web-app", HOURLY))
            with pytest.raises(Exception) as raised:
                await steps(client, existing)
            return raised.value, existing
        finally:
            await _close(client)

    return run(scenario)


def _raised_by(make, steps):
    """What ``await steps(client)`` raises, on a client ``make()`` gives (closed after)."""

    async def scenario():
        client = make()
        try:
            with pytest.raises(Exception) as raised:
                await steps(client)
            return raised.value
        finally:
            await _close(client)

    return run(scenario)


def test_not_found(make_client):
    async def steps(client, existing):
        await settle(client.get_schedule(uuid.uuid4()))

    exc, _ = _raised(make_client, steps)
    assert isinstance(exc, NotFound)
    assert (exc.status, exc.code, exc.detail) == (404, "not_found", "Schedule not found")


def test_conflict_carries_the_existing_id(make_client):
    async def steps(client, existing):
        await settle(client.create_schedule("web-app", {"task_name": "fetch_logs", "cron_expression": "@hourly"}))

    exc, existing = _raised(make_client, steps)
    assert isinstance(exc, Conflict)
    assert (exc.status, exc.code, exc.existing_id) == (409, "conflict", str(existing.id))


def test_validation_failed_carries_field_errors(make_client):
    async def steps(client, existing):
        await settle(client.create_schedule("web-app", {"task_name": "fetch_logs", "cron_expression": "61 * * * *"}))

    exc, _ = _raised(make_client, steps)
    assert isinstance(exc, ValidationFailed)
    assert exc.errors == {"cron_expression": ["minute: 61 is out of range 0-59."]}
    assert exc.detail == "cron_expression: minute: 61 is out of range 0-59."


def test_if_match_loses_the_race_with_precondition_failed(make_client):
    """Two callers read one version; the first write wins, the second gets PreconditionFailed."""

    async def steps(client, existing):
        read = await settle(client.get_schedule(existing.id))
        await settle(client.update_schedule(existing.id, enabled=False, if_match=read.etag))
        await settle(client.update_schedule(existing.id, cron_expression="0 2 * * *", if_match=read.etag))

    exc, existing = _raised(make_client, steps)
    assert isinstance(exc, PreconditionFailed)
    assert exc.code == "precondition_failed"
    schedule = TaskSchedule.objects.select_related("periodic_task__crontab").get()
    assert (schedule.periodic_task.enabled, schedule.periodic_task.crontab.hour) == (False, "*")


def test_reused_idempotency_key(make_client):
    async def steps(client, existing):
        await settle(
            client.create_schedule(
                "web-app", {**HOURLY.model_dump(), "cron_expression": "0 3 * * *"}, idempotency_key="k1"
            )
        )
        await settle(
            client.create_schedule(
                "web-app", {**HOURLY.model_dump(), "cron_expression": "0 4 * * *"}, idempotency_key="k1"
            )
        )

    exc, _ = _raised(make_client, steps)
    assert isinstance(exc, IdempotencyKeyReused)
    assert (exc.status, exc.code) == (422, "idempotency_key_reused")
    assert TaskSchedule.objects.count() == 2


def test_wrong_key_and_wrong_scheme_are_authentication_failed(make_client, base_url):
    async def list_services(client):
        await settle(client.list_services())

    exc = _raised_by(lambda: make_client(api_key="abcdefgh.wrongwrongwrong"), list_services)
    assert isinstance(exc, AuthenticationFailed)
    assert (exc.status, exc.code, exc.detail) == (401, "authentication_failed", "Invalid API key.")
    bearer = httpx.get(f"{base_url}/api/v1/task-scheduling/tasks", headers={"Authorization": "Bearer x"})
    assert bearer.json()["detail"].startswith("The Authorization scheme 'Bearer' is not accepted")


def test_broker_down_on_run_is_unavailable_and_sends_nothing(make_client, monkeypatch):
    """503 from /run arrives as Unavailable (after the retries the idempotency key makes safe)."""
    monkeypatch.setattr(run_now, "celery_app", unreachable_celery_app())

    async def steps(client, existing):
        await settle(client.run_schedule(existing.id))

    exc, _ = _raised(make_client, steps, retries=1)
    assert isinstance(exc, Unavailable)
    assert (exc.status, exc.code) == (503, "broker_unavailable")
    assert not AuditEvent.objects.filter(action="run_now").exists()


def test_unreachable_server_is_unavailable(flavour):
    """Nothing listening: Unavailable with no status, after the retries."""

    async def scenario():
        client = (LuffyAdmin if flavour == "sync" else AsyncLuffyAdmin)("http://127.0.0.1:9", "k.k", backoff=0.001)
        try:
            with pytest.raises(Unavailable) as raised:
                await settle(client.get_schedule(uuid.uuid4()))
            return raised.value
        finally:
            await _close(client)

    exc = run(scenario)
    assert exc.status is None and "no answer from the server" in exc.detail


def test_a_server_that_never_answers_is_unavailable_within_the_timeout(flavour):
    """The port accepts connections and says nothing (a hung server): each try gives up after
    ``timeout``, so the call fails after the tries, not after the server's silence."""

    async def scenario(url):
        cls = LuffyAdmin if flavour == "sync" else AsyncLuffyAdmin
        client = cls(url, "k.k", timeout=0.3, retries=1, backoff=0.001)
        started = time.monotonic()
        try:
            with pytest.raises(Unavailable) as raised:
                await settle(client.get_schedule(uuid.uuid4()))
            return raised.value, time.monotonic() - started
        finally:
            await _close(client)

    with socket.create_server(("127.0.0.1", 0)) as silent:  # the kernel accepts; nothing reads
        exc, took = run(lambda: scenario(f"http://127.0.0.1:{silent.getsockname()[1]}"))
    assert exc.status is None
    assert 0.6 <= took < 2, f"two tries of 0.3 s took {took:.2f} s"


def test_the_live_servers_rate_limit_is_rate_limited(make_client, settings):
    """The server's own throttle (2 calls a minute for this key here): the third call is a 429
    that RateLimited carries with the server's Retry-After (not retried: retries=0)."""
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "key": "2/min"},
    }

    async def three_calls(client):
        for _ in range(3):
            await settle(client.tasks())

    exc = _raised_by(lambda: make_client(retries=0), three_calls)
    assert isinstance(exc, RateLimited)
    assert (exc.status, exc.code) == (429, "throttled")
    assert 0 < exc.retry_after <= 60


# --- scripted answers: retries after a Retry-After of 0 s, and non-staff sessions ---------------


def _scripted(flavour, answers, seen):
    """A client whose transport answers ``answers`` in turn (httpx.MockTransport)."""

    def handler(request):
        seen.append(request)
        status, headers, body = answers[min(len(seen) - 1, len(answers) - 1)]
        return httpx.Response(status, headers=headers, json=body)

    cls = LuffyAdmin if flavour == "sync" else AsyncLuffyAdmin
    return cls("http://luffy.test", "k.k", backoff=0.001, transport=httpx.MockTransport(handler))


def test_rate_limited_is_retried_after_retry_after_then_raised(flavour):
    """429s are retried (waiting Retry-After); when they persist, RateLimited says how long to wait."""
    seen = []
    busy = (429, {"Retry-After": "0"}, {"detail": "Request was throttled.", "code": "throttled"})
    client = _scripted(flavour, [busy], seen)

    async def scenario():
        try:
            with pytest.raises(RateLimited) as raised:
                await settle(client.tasks())
            return raised.value
        finally:
            await _close(client)

    exc = run(scenario)
    assert (exc.status, exc.code, exc.retry_after, exc.detail) == (429, "throttled", 0.0, "Request was throttled.")
    assert len(seen) == 4  # the call and its 3 retries


def test_rate_limit_then_success_returns_the_answer(flavour):
    seen = []
    answers = [(429, {"Retry-After": "0"}, {"detail": "slow down", "code": "throttled"}), (200, {}, [])]
    client = _scripted(flavour, answers, seen)

    async def scenario():
        try:
            return await settle(client.tasks())
        finally:
            await _close(client)

    assert run(scenario) == [] and len(seen) == 2


def test_permission_denied(flavour):
    seen = []
    client = _scripted(
        flavour, [(403, {}, {"detail": "Staff login or an API key is required.", "code": "permission_denied"})], seen
    )

    async def scenario():
        try:
            with pytest.raises(PermissionDenied) as raised:
                await settle(client.list_services())
            return raised.value
        finally:
            await _close(client)

    exc = run(scenario)
    assert (exc.status, exc.code) == (403, "permission_denied") and len(seen) == 1


def test_run_retries_reuse_one_idempotency_key(flavour):
    """A 503 on run is retried, every attempt with the same Idempotency-Key, so it sends at most once."""
    seen = []
    client = _scripted(flavour, [(503, {}, {"detail": "down", "code": "unavailable"})], seen)

    async def scenario():
        try:
            with pytest.raises(Unavailable):
                await settle(client.run_schedule(uuid.uuid4()))
        finally:
            await _close(client)

    run(scenario)
    assert len(seen) == 4 and len({request.headers["Idempotency-Key"] for request in seen}) == 1


# --- a lost answer, retried --------------------------------------------------------------


class _LoseFirstPostAnswer:
    """Delivers every request, but loses the answer to the first POST (a timeout), as a flaky
    network does after the server has acted."""

    def __init__(self):
        self.lost = 0

    def lose(self, request, response):
        if request.method == "POST" and not self.lost:
            self.lost += 1
            raise httpx.ReadTimeout("answer lost", request=request)
        return response


class _SyncLossy(httpx.HTTPTransport):
    def __init__(self, loss):
        super().__init__()
        self.loss = loss

    def handle_request(self, request):
        response = super().handle_request(request)
        response.read()
        return self.loss.lose(request, response)


class _AsyncLossy(httpx.AsyncHTTPTransport):
    def __init__(self, loss):
        super().__init__()
        self.loss = loss

    async def handle_async_request(self, request):
        response = await super().handle_async_request(request)
        await response.aread()
        return self.loss.lose(request, response)


@pytest.mark.parametrize("what", ["create", "run"])
def test_retried_post_with_an_idempotency_key_acts_once(make_client, flavour, what, default_queue):
    """The server creates (or sends) on the first POST, its answer is lost, the client retries with
    the same Idempotency-Key: one schedule (one message), and the caller gets the first answer."""
    loss = _LoseFirstPostAnswer()
    transport = _SyncLossy(loss) if flavour == "sync" else _AsyncLossy(loss)
    tests = services.Actor.system("tests")
    service = services.service_create(actor=tests, service_id="web-app", name="Web application")
    schedule = None
    if what == "run":
        schedule = services.schedule_create(actor=tests, service=service, **HOURLY.model_dump())

    async def scenario():
        client = make_client(transport=transport)
        try:
            if what == "create":
                return await settle(client.create_schedule("web-app", HOURLY))
            return await settle(client.run_schedule(schedule.pk))
        finally:
            await _close(client)

    answer = run(scenario)
    assert loss.lost == 1
    if what == "create":
        assert [str(pk) for pk in TaskSchedule.objects.values_list("id", flat=True)] == [str(answer.id)]
        assert AuditEvent.objects.filter(action="create", target="schedule").count() == 1
    else:
        assert default_queue.llen("default") == 1
        assert AuditEvent.objects.get(action="run_now").after == {"task_id": answer.task_id}
