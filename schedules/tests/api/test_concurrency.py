"""Racing requests: one winner, clean 409/404s, and rows that agree with their beat entries."""

import json
import threading
from http import HTTPStatus

import pytest
from django.db import connection
from django_celery_beat.models import PeriodicTask

from schedules import catalogue
from schedules.models import AuditEvent, Service, TaskSchedule
from schedules.tests.api.helpers import BASE, key_client

pytestmark = pytest.mark.django_db


def _in_threads(count, work):
    """Run ``work(i)`` in ``count`` threads started together; return results in order."""
    barrier = threading.Barrier(count)
    results = [None] * count

    def run(index):
        try:
            barrier.wait()
            results[index] = work(index)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


@pytest.mark.django_db(transaction=True)
def test_concurrent_identical_creates_give_one_201_and_409s(api_key, service):
    """Six callers create the same schedule at once: exactly one wins, the rest get 409."""
    body = json.dumps({"task_name": "fetch_logs", "cron_expression": "*/5 * * * *"})

    def create(_):
        response = key_client(api_key).post(
            f"{BASE}/services/web-app/schedules", data=body, content_type="application/json"
        )
        return response.status_code

    statuses = _in_threads(6, create)
    assert sorted(statuses) == [HTTPStatus.CREATED] + [HTTPStatus.CONFLICT] * 5
    assert TaskSchedule.objects.count() == PeriodicTask.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_updates_leave_row_and_beat_entry_agreeing(api_key, schedule):
    """Updates racing on one schedule end with our row, its PeriodicTask and the audit in step."""
    tasks = ["fetch_logs", "generate_rca", "index_code"]

    def update(index):
        body = json.dumps({"task_name": tasks[index % 3], "cron_expression": f"{index} * * * *"})
        return (
            key_client(api_key)
            .put(f"{BASE}/schedules/{schedule.pk}", data=body, content_type="application/json")
            .status_code
        )

    assert _in_threads(6, update) == [HTTPStatus.OK] * 6
    current = TaskSchedule.objects.select_related("periodic_task__crontab").get(pk=schedule.pk)
    last = AuditEvent.objects.filter(schedule_id=schedule.pk).order_by("-at", "-id").first()
    assert current.periodic_task.task == catalogue.get_task(current.task_name).task
    assert last.after["task_name"] == current.task_name
    assert last.after["cron_expression"] == f"{current.periodic_task.crontab.minute} * * * *"
    assert AuditEvent.objects.filter(schedule_id=schedule.pk, action="update").count() == 6


@pytest.mark.django_db(transaction=True)
def test_concurrent_deletes_give_one_200_and_404s(api_key, schedule):
    """Racing deletes of one schedule: one succeeds, the others find it gone (never a 500)."""

    def delete(_):
        return key_client(api_key).delete(f"{BASE}/schedules/{schedule.pk}").status_code

    assert sorted(_in_threads(4, delete)) == [HTTPStatus.OK] + [HTTPStatus.NOT_FOUND] * 3
    assert not TaskSchedule.objects.exists() and not PeriodicTask.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_service_puts_create_it_once(api_key):
    """The FastAPI stack's idempotent registration: racing PUTs make one service, one 201."""
    body = json.dumps({"name": "Billing API"})

    def put(_):
        return (
            key_client(api_key)
            .put(f"{BASE}/services/billing-api", data=body, content_type="application/json")
            .status_code
        )

    statuses = _in_threads(4, put)
    assert sorted(statuses) == [HTTPStatus.OK] * 3 + [HTTPStatus.CREATED]
    assert Service.objects.filter(pk="billing-api").count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_with_one_idempotency_key_create_once(api_key, service):
    """Six copies of one keyed create at once (a client retrying while the first is in flight):
    one schedule, and every caller gets the same 201 body."""
    body = json.dumps({"task_name": "fetch_logs", "cron_expression": "*/5 * * * *"})

    def create(_):
        response = key_client(api_key).post(
            f"{BASE}/services/web-app/schedules",
            data=body,
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY="retry-me",
        )
        return response.status_code, response.json()

    answers = _in_threads(6, create)
    assert {status for status, _ in answers} == {HTTPStatus.CREATED}
    assert len({json.dumps(answer, sort_keys=True) for _, answer in answers}) == 1
    assert TaskSchedule.objects.count() == PeriodicTask.objects.count() == 1
    assert AuditEvent.objects.filter(action="create", target="schedule").count() == 1
