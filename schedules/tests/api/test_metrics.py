"""/metrics: Prometheus text read from the database, for staff, API keys or listed addresses."""

from http import HTTPStatus

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient

from schedules import services
from schedules.tests.api.test_runs import FAILS, SUCCEEDS, record_run

pytestmark = pytest.mark.django_db


def samples(response) -> dict:
    """{(sample name, sorted labels): value}"""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def test_metrics_count_runs_schedules_and_heartbeats(api, make_schedule):
    hourly = make_schedule(cron_expression="0 * * * *")
    daily = make_schedule(task_name="index_code", cron_expression="0 3 * * *", enabled=False)
    record_run(hourly, minute=0, events=SUCCEEDS)
    record_run(hourly, minute=1, events=SUCCEEDS)
    record_run(daily, minute=2, events=FAILS)
    services.monitor_heartbeat_record(seen_at=timezone.now(), lag_seconds=0.5)

    response = api.get("/metrics")

    assert response.status_code == HTTPStatus.OK
    assert response["Content-Type"].startswith("text/plain; version=")
    found = samples(response)
    runs = {key: value for key, value in found.items() if key[0] == "luffy_runs"}
    assert runs == {
        ("luffy_runs", (("queue", "default"), ("state", "succeeded"), ("task", "fetch_logs"))): 2.0,
        ("luffy_runs", (("queue", "default"), ("state", "failed"), ("task", "index_code"))): 1.0,
    }
    # Runtimes 2 s, 2 s (fetch_logs) and 1 s (index_code); every run was sent 1 s after its slot.
    assert found[("luffy_run_duration_seconds_bucket", (("le", "1.0"), ("task", "fetch_logs")))] == 0
    assert found[("luffy_run_duration_seconds_bucket", (("le", "5.0"), ("task", "fetch_logs")))] == 2
    assert found[("luffy_run_duration_seconds_sum", (("task", "fetch_logs"),))] == 4.0
    assert found[("luffy_run_duration_seconds_count", (("task", "index_code"),))] == 1
    assert found[("luffy_run_lateness_seconds_bucket", (("le", "0.5"), ("task", "fetch_logs")))] == 0
    assert found[("luffy_run_lateness_seconds_bucket", (("le", "1.0"), ("task", "fetch_logs")))] == 2
    assert {key: value for key, value in found.items() if key[0].startswith("luffy_schedules")} == {
        ("luffy_schedules", (("state", "enabled"), ("task", "fetch_logs"))): 1.0,
        ("luffy_schedules", (("state", "disabled"), ("task", "index_code"))): 1.0,
        ("luffy_schedules_failing", (("task", "index_code"),)): 1.0,
    }
    assert found[("luffy_monitor_lag_seconds", ())] == 0.5
    assert found[("luffy_monitor_heartbeat_age_seconds", ())] < 60
    assert ("luffy_beat_heartbeat_age_seconds", ()) not in found, "never recorded: absent"
    assert found[("luffy_beat_leader", ())] == 0
    assert not [key for key in found if "service" in dict(key[1]) or "schedule" in dict(key[1])]


def test_metrics_refuse_anonymous_callers(settings):
    settings.LUFFY_METRICS_ALLOW_IPS = ["10.0.0.9"]
    response = APIClient().get("/metrics")
    assert (response.status_code, response.json()) == (
        HTTPStatus.UNAUTHORIZED,
        {"detail": "Authentication credentials were not provided.", "code": "not_authenticated"},
    )


def test_metrics_answer_a_listed_address_without_credentials(settings):
    settings.LUFFY_METRICS_ALLOW_IPS = ["10.0.0.9"]
    response = APIClient(REMOTE_ADDR="10.0.0.9").get("/metrics")
    assert response.status_code == HTTPStatus.OK
    assert "luffy_runs" in {family.name for family in text_string_to_metric_families(response.content.decode())}


def test_metrics_answer_staff(staff):
    assert staff.get("/metrics").status_code == HTTPStatus.OK
