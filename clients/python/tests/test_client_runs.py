"""Run records, the upcoming load, and the errors a scope-less key or an oversized body get,
through the client (sync and async) and the CLI, against a live server."""

import json
import uuid
from datetime import timedelta

import pytest

from client_helpers import cli_runner, record_run, run, settle
from luffy_admin_client import (
    Load,
    NotFound,
    Page,
    PayloadTooLarge,
    PermissionDenied,
    Run,
    RunError,
    ScheduleSpec,
    Service,
    ServiceDetail,
    TaskOutcome,
    ValidationFailed,
)
from schedules import services
from schedules.models import ApiKeyScope, Dispatch, TaskSchedule
from schedules.tests.api.helpers import FAILS, SUCCEEDS, T0


def _schedule(service_id="web-app") -> TaskSchedule:
    actor = services.Actor.system("tests")
    service = services.service_create(actor=actor, service_id=service_id, name="Web application")
    return services.schedule_create(
        actor=actor, service=service, task_name="fetch_logs", cron_expression="*/15 * * * *"
    )


async def _close(client):
    await settle(client.close() if hasattr(client, "close") else client.aclose())


def test_runs_lists_each_run_newest_first_with_its_outcome(make_client):
    """runs() pages, iter_runs() walks every page, state= filters; each run's times, worker,
    runtime and error read as typed fields."""
    schedule_id = _schedule().pk
    ok = record_run(schedule_id, minute=0, events=SUCCEEDS)
    failed = record_run(schedule_id, minute=15, events=FAILS)
    pending = record_run(schedule_id, minute=30, trigger="run_now")

    async def scenario():
        client = make_client()
        try:
            first = await settle(client.runs(schedule_id, page_size=2))
            second = await settle(client.runs(schedule_id, page=2, page_size=2))
            every = await settle(client.iter_runs(schedule_id, page_size=1))
            failures = await settle(client.iter_runs(schedule_id, state="failed"))
            return first, second, every, failures
        finally:
            await _close(client)

    first, second, every, failures = run(scenario)

    assert isinstance(first, Page) and (first.count, first.next is not None, first.previous) == (3, True, None)
    assert [item.task_id for item in first.results] == [pending, failed]
    assert [item.task_id for item in second.results] == [ok] and second.next is None
    assert [item.task_id for item in every] == [pending, failed, ok]
    assert all(isinstance(item, Run) for item in every)
    at = lambda minute, seconds: T0 + timedelta(minutes=minute, seconds=seconds)  # noqa: E731
    assert every[0] == Run(
        task_id=pending,
        trigger="run_now",
        slot=at(30, 0),
        sent_at=at(30, 1),
        state="sent",
        received_at=None,
        started_at=None,
        finished_at=None,
        runtime_seconds=None,
        worker=None,
        retries=0,
        error=None,
    )
    assert every[1] == Run(
        task_id=failed,
        trigger="schedule",
        slot=at(15, 0),
        sent_at=at(15, 1),
        state="failed",
        received_at=at(15, 2),
        started_at=at(15, 3),
        finished_at=at(15, 4),
        runtime_seconds=1.0,
        worker="celery@w1",
        retries=0,
        error=RunError(type="KeyError", message="x"),
    )
    assert (every[2].state, every[2].runtime_seconds, every[2].finished_at, every[2].error) == (
        "succeeded",
        2.0,
        at(0, 5),
        None,
    )
    assert every[2].sent_at.tzinfo is not None
    assert [item.task_id for item in failures] == [failed]


def test_get_service_reads_each_tasks_last_outcome(make_client):
    """get_service() is a ServiceDetail: per task it schedules, the newest run's state, and
    whether one of its schedules is failing; None for a task that has not run."""
    logs = _schedule()
    services.schedule_create(
        actor=services.Actor.system("tests"), service=logs.service, task_name="index_code", cron_expression="0 3 * * *"
    )
    schedule_id = logs.pk
    record_run(schedule_id, minute=0, events=SUCCEEDS)
    record_run(schedule_id, minute=15, events=FAILS)

    async def scenario():
        client = make_client()
        try:
            return await settle(client.get_service("web-app"))
        finally:
            await _close(client)

    detail = run(scenario)

    assert isinstance(detail, ServiceDetail) and isinstance(detail, Service) and detail.etag
    assert (detail.id, detail.schedule_count) == ("web-app", 2)
    assert detail.last_outcomes == {
        "fetch_logs": TaskOutcome(state="failed", at=T0 + timedelta(minutes=15, seconds=4), failing=True),
        "index_code": None,
    }


def test_run_now_through_the_client_is_listed_as_a_run(make_client, default_queue):
    """A run_schedule() send is recorded: runs() shows it, trigger run_now, state sent."""

    async def scenario():
        client = make_client()
        try:
            await settle(client.ensure_service("web-app", "Web application"))
            schedule = await settle(
                client.create_schedule("web-app", ScheduleSpec(task_name="fetch_logs", cron_expression="@hourly"))
            )
            before = await settle(client.runs(schedule.id))
            sent = await settle(client.run_schedule(schedule.id))
            after = await settle(client.runs(schedule.id))
            return before, sent, after
        finally:
            await _close(client)

    before, sent, after = run(scenario)

    assert (before.count, before.results) == (0, [])
    assert [(item.task_id, item.trigger, item.state) for item in after.results] == [(sent.task_id, "run_now", "sent")]
    assert default_queue.llen("default") == 1


def test_runs_errors(make_client):
    """An unknown schedule is NotFound; a state the server does not know is ValidationFailed."""
    schedule_id = _schedule().pk

    async def scenario():
        client = make_client()
        try:
            with pytest.raises(NotFound) as missing:
                await settle(client.runs(uuid.UUID(int=1)))
            with pytest.raises(ValidationFailed) as bad_state:
                await settle(client.runs(schedule_id, state="exploded"))
            return missing.value, bad_state.value
        finally:
            await _close(client)

    missing, bad_state = run(scenario)

    assert (missing.status, missing.detail) == (404, "Schedule not found")
    assert (bad_state.status, list(bad_state.errors)) == (400, ["state"])


def test_a_key_without_the_scope_gets_permission_denied(make_client):
    """A read-only key reads runs, but run and create are PermissionDenied (403) naming the scope;
    nothing is sent or created."""
    schedule_id = _schedule().pk
    _, read_only = services.api_key_create(name="dashboard", scopes={ApiKeyScope.READ})

    async def scenario():
        client = make_client(api_key=read_only)
        try:
            listed = await settle(client.runs(schedule_id))
            with pytest.raises(PermissionDenied) as no_run:
                await settle(client.run_schedule(schedule_id))
            with pytest.raises(PermissionDenied) as no_write:
                await settle(client.create_schedule("web-app", {"task_name": "index_code"}))
            return listed, no_run.value, no_write.value
        finally:
            await _close(client)

    listed, no_run, no_write = run(scenario)

    assert listed.count == 0
    assert (no_run.status, no_run.code, no_run.detail) == (
        403,
        "permission_denied",
        "This API key lacks the scope this request needs: 'run'.",
    )
    assert (no_write.status, no_write.detail) == (403, "This API key lacks the scope this request needs: 'write'.")
    assert TaskSchedule.objects.count() == 1
    assert not Dispatch.objects.exists()


@pytest.mark.parametrize("flavour", ["sync"], indirect=True)
def test_an_oversized_body_is_payload_too_large(make_client, settings):
    """A replace list beyond the server's body limit: PayloadTooLarge (413), nothing written."""
    _schedule()
    desired = [
        ScheduleSpec(key=f"logs-{minute}-{hour}", task_name="fetch_logs", cron_expression=f"{minute} {hour} * * *")
        for minute in range(60)
        for hour in range(24)
    ]
    with make_client() as client, pytest.raises(PayloadTooLarge) as raised:
        client.apply_schedules("web-app", desired)
    assert (raised.value.status, raised.value.code) == (413, "payload_too_large")
    assert raised.value.detail == f"The request body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes."
    assert TaskSchedule.objects.count() == 1


def test_load_counts_the_sends_ahead(make_client):
    """load(): an hour ahead of one */15 schedule is four sends at the quarter hours; by hour, one
    bucket per hour."""
    _schedule()

    async def scenario():
        client = make_client()
        try:
            return await settle(client.load(hours=1)), await settle(client.load(hours=2, resolution="hour"))
        finally:
            await _close(client)

    minutes, hours = run(scenario)

    assert isinstance(minutes, Load)
    assert (minutes.resolution, minutes.tasks, minutes.schedules, minutes.distinct_timings) == (
        "minute",
        ["fetch_logs"],
        1,
        1,
    )
    assert minutes.end - minutes.start == timedelta(hours=1)
    ahead = (minutes.start + timedelta(minutes=offset) for offset in range(1, 60))
    assert [bucket.at for bucket in minutes.buckets] == [minute for minute in ahead if minute.minute % 15 == 0]
    assert all(bucket.by_task == {"fetch_logs": 1} and bucket.total == 1 for bucket in minutes.buckets)
    assert [(second.second, second.total) for second in minutes.busiest_minute_seconds] == [(0, 1)]
    assert hours.resolution == "hour" and sum(bucket.total for bucket in hours.buckets) in (7, 8)


# --- the CLI ------------------------------------------------------------------------------


@pytest.fixture
def cli(base_url, api_key, monkeypatch):
    return cli_runner(base_url, api_key, monkeypatch)


def test_cli_schedules_runs_table_and_json(cli):
    """`schedules runs ID`: a table newest first (the error as `Type: message`), --state filters,
    --limit caps, --json is the API's run bodies."""
    schedule_id = str(_schedule().pk)
    ok = record_run(schedule_id, minute=0, events=SUCCEEDS)
    failed = record_run(schedule_id, minute=15, events=FAILS)

    table = cli("schedules", "runs", schedule_id).stdout.splitlines()
    assert table[0].split() == [
        "SENT_AT",
        "TRIGGER",
        "STATE",
        "RUNTIME_SECONDS",
        "WORKER",
        "RETRIES",
        "ERROR",
        "TASK_ID",
    ]
    assert table[1].split() == [
        "2026-01-31T12:15:01+00:00",
        "schedule",
        "failed",
        "1.0",
        "celery@w1",
        "0",
        "KeyError:",
        "x",
        failed,
    ]
    assert table[2].split() == ["2026-01-31T12:00:01+00:00", "schedule", "succeeded", "2.0", "celery@w1", "0", "-", ok]
    assert len(table) == 3

    only_failed = cli("schedules", "runs", schedule_id, "--state", "failed").stdout.splitlines()
    assert [line.split()[-1] for line in only_failed[1:]] == [failed]
    assert len(cli("schedules", "runs", schedule_id, "--limit", "1").stdout.splitlines()) == 2

    body = json.loads(cli("--json", "schedules", "runs", schedule_id).stdout)
    assert [item["task_id"] for item in body] == [failed, ok]
    assert body[0] == {
        "task_id": failed,
        "trigger": "schedule",
        "slot": "2026-01-31T12:15:00Z",
        "sent_at": "2026-01-31T12:15:01Z",
        "state": "failed",
        "received_at": "2026-01-31T12:15:02Z",
        "started_at": "2026-01-31T12:15:03Z",
        "finished_at": "2026-01-31T12:15:04Z",
        "runtime_seconds": 1.0,
        "worker": "celery@w1",
        "retries": 0,
        "error": {"type": "KeyError", "message": "x"},
    }
    assert json.loads(cli("--json", "schedules", "runs", schedule_id, "--state", "lost").stdout) == []
    assert cli("schedules", "runs", schedule_id, "--state", "lost").stdout == "(none)\n"


def test_cli_schedules_runs_of_an_unknown_schedule(cli):
    missing = cli("schedules", "runs", str(uuid.UUID(int=1)), status=1)
    assert missing.stderr == "error: Schedule not found\n"


def test_cli_load(cli):
    _schedule()
    lines = cli("load", "--hours", "1").stdout.splitlines()
    assert lines[0].startswith("1 enabled schedules, 1 distinct timings, ") and lines[0].endswith(" by minute")
    assert lines[1].split() == ["AT", "TOTAL", "BY_TASK"]
    assert all(line.split()[1:] == ["1", "fetch_logs", "1"] for line in lines[2:]) and len(lines) in (5, 6)
    assert json.loads(cli("--json", "load", "--hours", "1").stdout)["schedules"] == 1
