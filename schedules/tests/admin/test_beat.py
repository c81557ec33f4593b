"""django-celery-beat's pages: strict cron forms, and rows a service schedule owns kept out of reach."""

from http import HTTPStatus

import pytest
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from schedules import selectors
from schedules.models import TaskSchedule

from .helpers import (
    CRONTABS_URL,
    INTERVALS_URL,
    PERIODIC_TASKS_URL,
    action_post,
    empty_inline,
    errors_on_form,
    shown_messages,
)

pytestmark = pytest.mark.django_db


def crontab_post(minute="*/15", hour="*", day_of_month="*", month_of_year="*", day_of_week="*"):
    return {
        "minute": minute,
        "hour": hour,
        "day_of_month": day_of_month,
        "month_of_year": month_of_year,
        "day_of_week": day_of_week,
        "timezone": "UTC",
        **empty_inline("periodictask_set"),
    }


def interval_post(every):
    return {"every": str(every), "period": IntervalSchedule.SECONDS, **empty_inline("periodictask_set")}


def crontab_row(minute):
    """A crontab row made in beat's admin, outside luffy-admin."""
    return CrontabSchedule.objects.create(minute=minute, hour="*", day_of_month="*", month_of_year="*", day_of_week="*")


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        ({"minute": "61"}, {"minute": "minute: 61 is out of range 0-59."}),
        ({"hour": "*/0"}, {"hour": "hour: step 0 must be between 1 and 23."}),
        (
            {"day_of_month": "5/10"},
            {"day_of_month": "day of month: '5/10' needs a range before the step, e.g. '5-31/10'."},
        ),
        (
            {"day_of_month": "30", "month_of_year": "2"},
            {"__all__": "This expression never fires: day 30 never occurs in the selected month(s)."},
        ),
        ({"minute": "1 2"}, {"minute": "One cron field per box, without spaces. Example: */15"}),
    ],
)
def test_beat_crontab_form_refuses_what_beat_cannot_run(admin_client, fields, errors):
    """django-celery-beat's crontab page applies the project's cron rules, on the field at fault."""
    response = admin_client.post(f"{CRONTABS_URL}add/", crontab_post(**fields))
    assert response.status_code == HTTPStatus.OK
    form_errors = errors_on_form(response)
    for field, message in errors.items():
        assert message in form_errors[field]
    assert not CrontabSchedule.objects.exists()


def test_beat_crontab_form_stores_the_form_celery_reads(admin_client):
    """Names and Sunday-as-7 are stored as Celery's numbers."""
    response = admin_client.post(f"{CRONTABS_URL}add/", crontab_post(minute="0", month_of_year="jan", day_of_week="7"))
    assert response.status_code == HTTPStatus.FOUND
    row = CrontabSchedule.objects.get()
    assert (row.minute, row.month_of_year, row.day_of_week) == ("0", "1", "0")


def test_beat_periodic_task_form_refuses_a_broken_crontab(admin_client):
    """A PeriodicTask cannot be pointed at a crontab row that beat cannot schedule."""
    broken = CrontabSchedule.objects.create(minute="61", hour="*", day_of_month="*", month_of_year="*", day_of_week="*")
    response = admin_client.post(
        f"{PERIODIC_TASKS_URL}add/",
        {
            "name": "cleanup",
            "task": "demo.cleanup",
            "enabled": "on",
            "crontab": broken.pk,
            "args": "[]",
            "kwargs": "{}",
            "headers": "{}",
        },
    )
    assert response.status_code == HTTPStatus.OK
    assert errors_on_form(response)["crontab"] == [
        "Beat cannot schedule this crontab: minute: 61 is out of range 0-59. Fix the crontab first."
    ]
    assert not PeriodicTask.objects.exists()


@pytest.mark.parametrize("kind", ["crontab", "interval", "periodic task"])
def test_beat_delete_that_would_cascade_into_schedules_is_refused(admin_client, make_schedule, kind):
    """Deleting a beat row a service schedule needs shows Django's protected-objects refusal."""
    if kind == "crontab":
        schedule = make_schedule()
        row, url = schedule.periodic_task.crontab, CRONTABS_URL
    elif kind == "interval":
        schedule = make_schedule(schedule_type="interval", interval_seconds=900)
        row, url = schedule.periodic_task.interval, INTERVALS_URL
    else:
        schedule = make_schedule()
        row, url = schedule.periodic_task, PERIODIC_TASKS_URL
    single = admin_client.post(f"{url}{row.pk}/delete/", {"post": "yes"})
    bulk = admin_client.post(url, action_post("delete_selected", [row], post="yes"))
    for response in (single, bulk):
        assert response.status_code == HTTPStatus.OK
        page = response.content.decode()
        assert "would require deleting the following protected related objects" in page
        assert "web-app / fetch_logs" in page
    assert (TaskSchedule.objects.count(), PeriodicTask.objects.count()) == (1, 1)
    assert CrontabSchedule.objects.count() + IntervalSchedule.objects.count() == 1


@pytest.mark.parametrize("kind", ["crontab", "interval"])
def test_beat_timing_rows_used_by_schedules_are_read_only(admin_client, make_schedule, kind):
    """Editing a shared timing row would change service schedules behind the write path: view only."""
    if kind == "crontab":
        row, url = make_schedule().periodic_task.crontab, CRONTABS_URL
        post, stored = crontab_post(minute="5"), ("minute", "*/15")
    else:
        row = make_schedule(schedule_type="interval", interval_seconds=900).periodic_task.interval
        url, post, stored = INTERVALS_URL, interval_post(5), ("every", 900)
    page = admin_client.get(f"{url}{row.pk}/change/")
    assert page.status_code == HTTPStatus.OK
    assert page.context["has_change_permission"] is False
    assert shown_messages(page) == [
        f"Service schedules use this {row._meta.verbose_name}. "
        "Managed by luffy-admin: change it on the schedule's page, not here."
    ]
    response = admin_client.post(f"{url}{row.pk}/change/", post)
    assert response.status_code == HTTPStatus.FORBIDDEN
    field, value = stored
    assert getattr(type(row).objects.get(pk=row.pk), field) == value


@pytest.mark.parametrize("kind", ["crontab", "interval", "periodic task"])
def test_beat_rows_no_schedule_owns_stay_editable(admin_client, make_schedule, kind):
    """Beat rows outside luffy-admin (here beside a service schedule) keep beat's own edit page."""
    make_schedule(cron_expression="0 * * * *")
    crontab = crontab_row("30")
    interval = IntervalSchedule.objects.create(every=60, period=IntervalSchedule.SECONDS)
    other = PeriodicTask.objects.create(name="cleanup", task="demo.cleanup", interval=interval)
    PeriodicTask.objects.create(name="report", task="demo.report", crontab=crontab)
    if kind == "crontab":
        row, url, post = crontab, CRONTABS_URL, crontab_post(minute="45")
    elif kind == "interval":
        row, url, post = interval, INTERVALS_URL, interval_post(120)
    else:
        row, url = other, PERIODIC_TASKS_URL
        post = {
            "name": "cleanup",
            "task": "demo.cleanup",
            "interval": interval.pk,
            "enabled": "on",
            "args": "[]",
            "kwargs": "{}",
            "headers": "{}",
            "description": "nightly",
        }
    page = admin_client.get(f"{url}{row.pk}/change/")
    assert (page.status_code, page.context["has_change_permission"], shown_messages(page)) == (HTTPStatus.OK, True, [])
    response = admin_client.post(f"{url}{row.pk}/change/", post)
    assert response.status_code == HTTPStatus.FOUND, errors_on_form(response)
    row.refresh_from_db()
    if kind == "crontab":
        assert row.minute == "45"
    elif kind == "interval":
        assert row.every == 120
    else:
        assert row.description == "nightly"


def test_beat_row_ownership_is_one_rule(make_schedule):
    """Owned: a schedule's PeriodicTask, and any timing row it uses, even one another task shares."""
    schedule = make_schedule(cron_expression="*/15 * * * *")
    owned = schedule.periodic_task
    shared_crontab = owned.crontab
    neighbour = PeriodicTask.objects.create(name="report", task="demo.report", crontab=shared_crontab)
    interval = IntervalSchedule.objects.create(every=60, period=IntervalSchedule.SECONDS)
    other = PeriodicTask.objects.create(name="cleanup", task="demo.cleanup", interval=interval)
    rows = {
        "owned entry": owned,
        "its crontab, shared": shared_crontab,
        "entry sharing it": neighbour,
        "other entry": other,
        "other interval": interval,
        "unused crontab": crontab_row("5"),
    }
    assert {label: selectors.beat_row_is_owned(row) for label, row in rows.items()} == {
        "owned entry": True,
        "its crontab, shared": True,
        "entry sharing it": False,
        "other entry": False,
        "other interval": False,
        "unused crontab": False,
    }
    everything = PeriodicTask.objects.order_by("name")
    assert [task.name for task in selectors.owned_periodic_tasks(everything)] == [owned.name]
    assert [task.name for task in selectors.unowned_periodic_tasks(everything)] == ["cleanup", "report"]
    assert list(selectors.owned_periodic_tasks()) == [owned]
    assert list(selectors.owned_periodic_tasks(PeriodicTask.objects.filter(name="cleanup"))) == []


def test_beat_periodic_task_owned_by_a_schedule_is_view_only(admin_client, make_schedule):
    """Beat's page marks a service schedule's entry as managed, shows it read-only and refuses edits."""
    schedule = make_schedule()
    listing = admin_client.get(PERIODIC_TASKS_URL)
    assert "luffy-admin: web-app / fetch_logs" in listing.content.decode()
    page = admin_client.get(f"{PERIODIC_TASKS_URL}{schedule.periodic_task_id}/change/")
    assert page.context["has_change_permission"] is False
    response = admin_client.post(
        f"{PERIODIC_TASKS_URL}{schedule.periodic_task_id}/change/",
        {
            "name": "renamed",
            "task": "x",
            "args": "[]",
            "kwargs": "{}",
            "headers": "{}",
        },
    )
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert PeriodicTask.objects.get().name == f"luffy:web-app:{schedule.pk}"


def test_beat_actions_skip_entries_owned_by_schedules(admin_client, make_schedule):
    """Beat's bulk disable leaves service schedules alone (they are audited elsewhere) and says so."""
    owned = make_schedule().periodic_task
    interval = IntervalSchedule.objects.create(every=60, period=IntervalSchedule.SECONDS)
    other = PeriodicTask.objects.create(name="cleanup", task="demo.cleanup", interval=interval)
    response = admin_client.post(PERIODIC_TASKS_URL, action_post("disable_tasks", [owned, other]))
    assert response.status_code == HTTPStatus.FOUND
    assert dict(PeriodicTask.objects.values_list("name", "enabled")) == {owned.name: True, "cleanup": False}
    assert shown_messages(response) == [
        "1 task skipped: Managed by luffy-admin: change it on the schedule's page, not here. "
        "Use the Schedules page's actions.",
        "1 task was successfully disabled",
    ]
