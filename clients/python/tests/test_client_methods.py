"""Every client method, sync and async, against a live server: what a caller gets back."""

import uuid
from datetime import datetime

import pytest

from client_helpers import run, settle
from luffy_admin_client import (
    AuditEvent,
    CatalogueTask,
    Dispatch,
    Page,
    Schedule,
    ScheduleSet,
    ScheduleSpec,
    Service,
)
from schedules.models import AuditEvent as StoredAuditEvent
from schedules.models import Service as StoredService
from schedules.models import TaskSchedule


def test_services_methods(make_client):
    """ensure (create, then idempotent), create, get with its ETag, update, list, iterate, delete."""

    async def scenario():
        client = make_client()
        try:
            registered = await settle(client.ensure_service("web-app", "Web application", "Storefront"))
            again = await settle(client.ensure_service("web-app", "Web application", "Storefront"))
            billing = await settle(client.create_service("billing", "Billing"))
            read = await settle(client.get_service("web-app"))
            renamed = await settle(client.update_service("web-app", name="Shop", if_match=read.etag))
            page = await settle(client.list_services(page_size=1))
            every = await settle(client.iter_services(page_size=1))
            await settle(client.delete_service("billing"))
            return registered, again, billing, read, renamed, page, every
        finally:
            await settle(client.close() if hasattr(client, "close") else client.aclose())

    registered, again, billing, read, renamed, page, every = run(scenario)

    assert isinstance(registered, Service)
    assert (registered.id, registered.name, registered.description, registered.schedule_count) == (
        "web-app",
        "Web application",
        "Storefront",
        0,
    )
    assert again.updated_at == registered.updated_at  # nothing changed the second time
    assert (billing.id, billing.name, billing.description) == ("billing", "Billing", "")
    assert read.etag and read.etag.startswith('"')
    assert (renamed.name, renamed.description) == ("Shop", "Storefront") and renamed.etag != read.etag
    assert isinstance(page, Page) and (page.count, len(page.results), page.next is not None) == (2, 1, True)
    assert [service.id for service in every] == ["billing", "web-app"]
    assert list(StoredService.objects.values_list("id", flat=True)) == ["web-app"]


def test_schedule_methods(make_client, default_queue):
    """Create (cron and interval), read, list, filter, iterate, update, toggle, run, history, delete."""

    async def scenario():
        client = make_client()
        try:
            await settle(client.ensure_service("web-app", "Web application"))
            logs = await settle(
                client.create_schedule("web-app", ScheduleSpec(task_name="fetch_logs", cron_expression="@hourly"))
            )
            index = await settle(
                client.create_schedule(
                    "web-app", {"task_name": "index_code", "schedule_type": "interval", "interval_seconds": 3600}
                )
            )
            of_service = await settle(client.service_schedules("web-app"))
            one = await settle(client.get_schedule(logs.id))
            updated = await settle(client.update_schedule(logs.id, cron_expression="*/30 * * * *", if_match=one.etag))
            disabled = await settle(client.disable(logs.id))
            filtered = await settle(client.list_schedules(service="web-app", enabled=False))
            enabled = await settle(client.enable(logs.id, if_match=disabled.etag))
            toggled = await settle(client.set_enabled(index.id, False))
            listed = await settle(client.iter_schedules(service="web-app", page_size=1))
            run_answer = await settle(client.run_schedule(logs.id))
            history = await settle(client.history(logs.id, page_size=2))
            every_event = await settle(client.iter_history(logs.id, page_size=2))
            dispatches = await settle(client.dispatches(logs.id))
            await settle(client.delete_schedule(index.id))
            return locals()
        finally:
            await settle(client.close() if hasattr(client, "close") else client.aclose())

    got = run(scenario)

    logs = got["logs"]
    assert isinstance(logs, Schedule)
    assert (logs.service_id, logs.task_name, logs.task_path) == (
        "web-app",
        "fetch_logs",
        "src.services.tasks.fetch_and_process_logs",
    )
    assert (logs.schedule_type, logs.cron_expression, logs.description, logs.enabled) == (
        "cron",
        "0 * * * *",
        "Every hour",
        True,
    )
    assert isinstance(logs.next_run, datetime) and logs.next_run.minute == 0
    assert (got["index"].schedule_type, got["index"].interval_seconds) == ("interval", 3600)
    assert [schedule.id for schedule in got["of_service"]] == [logs.id, got["index"].id]
    assert got["one"].model_dump() == logs.model_dump()
    assert (got["updated"].cron_expression, got["updated"].description) == ("*/30 * * * *", "Every 30 minutes")
    assert (got["disabled"].enabled, got["disabled"].next_run) == (False, None)
    assert [schedule.id for schedule in got["filtered"].results] == [logs.id]
    assert got["enabled"].enabled and got["enabled"].next_run is not None
    assert got["toggled"].enabled is False
    assert [schedule.id for schedule in got["listed"]] == [logs.id, got["index"].id]
    assert uuid.UUID(got["run_answer"].task_id)
    assert default_queue.llen("default") == 1
    assert got["history"].count == 5 and all(isinstance(event, AuditEvent) for event in got["history"].results)
    assert [event.action for event in got["every_event"]] == ["run_now", "toggle", "toggle", "update", "create"]
    assert got["every_event"][0].after.task_id == got["run_answer"].task_id
    assert got["every_event"][3].before.cron_expression == "0 * * * *"
    # The run-now is a send too (dispatches are the send part of the schedule's runs).
    assert [dispatch.task_id for dispatch in got["dispatches"]] == [got["run_answer"].task_id]
    assert list(TaskSchedule.objects.values_list("id", flat=True)) == [logs.id]
    # The service, two creates, an update, three toggles, a run and a delete, all by the key.
    assert StoredAuditEvent.objects.filter(actor="api-key:client-tests").count() == 9


def test_apply_schedules_replaces_the_set_and_twice_changes_nothing(make_client):
    """apply_schedules answers the diff; the same list again is all unchanged; dry runs write nothing."""
    desired = [
        ScheduleSpec(key="logs", task_name="fetch_logs", cron_expression="*/15 * * * *"),
        ScheduleSpec(task_name="generate_rca", cron_expression="0 * * * *"),
        {"task_name": "index_code", "schedule_type": "interval", "interval_seconds": 86400},
    ]

    async def scenario():
        client = make_client()
        try:
            await settle(client.ensure_service("web-app", "Web application"))
            preview = await settle(client.apply_schedules("web-app", desired, dry_run=True))
            first = await settle(client.apply_schedules("web-app", desired))
            second = await settle(client.apply_schedules("web-app", desired))
            fewer = await settle(client.apply_schedules("web-app", desired[:1], prune=False))
            pruned = await settle(client.apply_schedules("web-app", desired[:1]))
            return preview, first, second, fewer, pruned
        finally:
            await settle(client.close() if hasattr(client, "close") else client.aclose())

    preview, first, second, fewer, pruned = run(scenario)

    assert isinstance(first, ScheduleSet)
    assert (preview.dry_run, preview.summary.created, preview.schedules) == (True, 3, [])
    assert first.summary.model_dump() == {"created": 3, "updated": 0, "deleted": 0, "unchanged": 0}
    assert [schedule.key for schedule in first.schedules] == ["logs", None, None]
    assert second.summary.model_dump() == {"created": 0, "updated": 0, "deleted": 0, "unchanged": 3}
    assert not second.summary.changed
    assert [schedule.id for schedule in second.schedules] == [schedule.id for schedule in first.schedules]
    assert fewer.summary.model_dump() == {"created": 0, "updated": 0, "deleted": 0, "unchanged": 3}
    assert pruned.summary.model_dump() == {"created": 0, "updated": 0, "deleted": 2, "unchanged": 1}
    assert [schedule.key for schedule in pruned.schedules] == ["logs"]


def test_catalogue_cron_preview_and_health(make_client):
    async def scenario():
        client = make_client()
        try:
            return (
                await settle(client.tasks()),
                await settle(client.cron_preview("0 9 * * 1-5", timezone="Europe/Paris", count=3)),
                await settle(client.cron_preview("61 * * * *")),
                await settle(client.health()),
            )
        finally:
            await settle(client.close() if hasattr(client, "close") else client.aclose())

    tasks, weekdays, invalid, health = run(scenario)

    assert [task.name for task in tasks] == ["fetch_logs", "generate_rca", "index_code"]
    assert tasks[0] == CatalogueTask(
        name="fetch_logs",
        task_path="src.services.tasks.fetch_and_process_logs",
        queue="default",
        description=tasks[0].description,
        min_interval_seconds=60,
        max_interval_seconds=86400,
        default_cron_expression=None,
    )
    assert (weekdays.valid, weekdays.description, len(weekdays.next_runs)) == (
        True,
        "At 09:00, Monday through Friday",
        3,
    )
    assert (invalid.valid, invalid.error, invalid.next_runs) == (False, "minute: 61 is out of range 0-59.", [])
    assert (health.database, health.broker) == ("ok", "ok")


def test_cron_preview_places_h_fields_as_a_schedule_would(make_client):
    """cron_preview(service_id=, task_name=) resolves H where a schedule of that task in that
    service lands; key= hashes from any key; the created schedule agrees."""
    from schedules import timing

    async def scenario():
        client = make_client()
        try:
            for_schedule = await settle(
                client.cron_preview("H * * * *", service_id="web-app", task_name="fetch_logs", count=1)
            )
            for_key = await settle(client.cron_preview("H * * * *", key=timing.schedule_key("web-app", "fetch_logs")))
            await settle(client.ensure_service("web-app", "Web application"))
            created = await settle(
                client.create_schedule("web-app", {"task_name": "fetch_logs", "cron_expression": "H * * * *"})
            )
            return for_schedule, for_key, created
        finally:
            await settle(client.close() if hasattr(client, "close") else client.aclose())

    for_schedule, for_key, created = run(scenario)

    assert for_schedule.valid and for_schedule.resolved_expression != "H * * * *"
    assert for_schedule.resolved_expression == for_key.resolved_expression == created.resolved_cron_expression
    assert len(for_schedule.next_runs) == 1


@pytest.mark.parametrize("flavour", ["sync"], indirect=True)
def test_dispatch_model_reads_what_beat_recorded(make_client):
    """dispatches() turns the fleet scheduler's records into models (slot, task id, sent at)."""
    from django.utils import timezone

    from schedules import services
    from schedules.models import Dispatch as StoredDispatch

    service = services.service_create(actor=services.Actor.system("tests"), service_id="web-app", name="Web")
    schedule = services.schedule_create(
        actor=services.Actor.system("tests"), service=service, task_name="fetch_logs", cron_expression="* * * * *"
    )
    now = timezone.now().replace(microsecond=0)
    StoredDispatch.objects.create(periodic_task_name=schedule.periodic_task.name, slot=now, task_id="t-1", sent_at=now)
    with make_client() as client:
        assert client.dispatches(schedule.pk) == [Dispatch(slot=now, task_id="t-1", sent_at=now)]
