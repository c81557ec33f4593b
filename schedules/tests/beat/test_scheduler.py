"""The fleet scheduler in-process, against the real database and broker, on a clock it is handed.

Each test drives ``FleetScheduler.tick()`` itself, so slots come due when the test says and
the messages are read back from the broker queue they were sent to.
"""

import logging
import os
import shutil
import signal
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import redis
from django.conf import settings
from django.contrib import admin
from django.contrib.messages.storage.fallback import FallbackStorage
from django.db import connection
from django.db.models import F
from django.test import RequestFactory
from django_celery_beat import admin as beat_admin
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    PeriodicTasks,
    SolarSchedule,
)
from kombu import Connection

from luffy_admin.celery import app as celery_app
from schedules import selectors, services
from schedules.beat.clock import to_us
from schedules.beat.publisher import task_id_for
from schedules.models import Dispatch

from ..e2e import AMQP_PORT, free_port, rabbitmq_vhost, wait_for
from ..servers import Partition, RedisServer
from .inprocess import due_of, fresh, run, sent, wait_for_the_lock_to_go

pytestmark = pytest.mark.django_db(transaction=True)

QUEUE = "default"  # the catalogue's queue


def pick_up(beat, clock, condition, *, within: float = 5.0):
    """Tick a poll (or notification check) period apart until ``condition()``, for at most
    ``within`` seconds of beat's clock: far inside the 60 s reconciliation, so only the pickup
    under test can bring the change in.

    A notification reaches the listening session a moment after the commit, not with it: the
    ticks are also spaced in real time.
    """
    listening = connection.vendor == "postgresql" and settings.LUFFY_BEAT_LISTEN
    step = beat.listen_seconds if listening else beat.poll_seconds
    ticks = iter(range(round(within / step)))

    def ticked():
        if next(ticks, None) is None:
            raise AssertionError(f"beat did not take the change in within {within:g} s of its clock")
        clock.advance(step)
        beat.tick()
        return condition()

    wait_for(ticked, timeout=30, interval=0.05, what="beat to take the change in")


@pytest.fixture(params=["poll", "notify"])
def pickup(request, settings):
    """Both ways a change reaches beat: polling (SQLite, or LUFFY_BEAT_LISTEN off) and NOTIFY."""
    if request.param == "notify" and connection.vendor != "postgresql":
        pytest.skip("NOTIFY is PostgreSQL's")
    settings.LUFFY_BEAT_LISTEN = request.param == "notify"
    return request.param


@pytest.mark.parametrize(
    "timing",
    [
        {"cron_expression": "*/15 * * * *"},
        {"cron_expression": "30 9 * * 1-5", "timezone": "Europe/Paris"},
        {"cron_expression": "@daily", "timezone": "America/New_York"},
        {"schedule_type": "interval", "interval_seconds": 900},
    ],
)
def test_next_dispatch_is_the_api_next_run_before_and_after_a_run(make_schedule, scheduler, clock, broker, timing):
    """Beat sends at the API's next_run, and after the run the API's next_run is beat's next one."""
    schedule = make_schedule(**timing)
    beat = scheduler()
    beat.tick()
    first = selectors.schedule_next_run(fresh(schedule))
    assert due_of(beat, schedule) == first

    clock.at(first)
    beat.tick()
    beat.sync()
    assert [message["task_id"] for message in sent(broker)] == [task_id_for(schedule.periodic_task.name, to_us(first))]
    reread = fresh(schedule)
    assert reread.periodic_task.last_run_at == first
    assert selectors.schedule_next_run(reread) == due_of(beat, schedule) > first


def test_a_due_slot_is_sent_once_with_the_rows_task_arguments_and_expiry(make_schedule, scheduler, clock, broker):
    """The message carries the row's task, [service_id], queue, beat's header and a one-period expiry."""
    schedule = make_schedule(schedule_type="interval", interval_seconds=600)
    beat = scheduler()
    beat.tick()
    slot = due_of(beat, schedule)
    clock.at(slot)
    beat.tick()
    run(beat, clock, slot + timedelta(seconds=5))
    assert sent(broker) == [
        {
            "name": schedule.periodic_task.name,
            "task": "src.services.tasks.fetch_and_process_logs",
            "task_id": task_id_for(schedule.periodic_task.name, to_us(slot)),
            "args": ["web-app"],
            "expires": (slot + timedelta(seconds=600)).isoformat(),
        }
    ]
    assert list(Dispatch.objects.values_list("periodic_task_name", "slot", "task_id")) == [
        (schedule.periodic_task.name, slot, task_id_for(schedule.periodic_task.name, to_us(slot)))
    ]


def test_run_state_is_written_back_in_a_batch_without_signalling_a_change(make_schedule, scheduler, clock, broker):
    """last_run_at and total_run_count land within the flush period; date_changed and last_update stay."""
    schedules = [make_schedule(schedule_type="interval", interval_seconds=60 + n) for n in range(3)]
    before = {row.pk: row.date_changed for row in PeriodicTask.objects.all()}
    last_update = PeriodicTasks.last_change()
    beat = scheduler()
    beat.tick()
    slots = {schedule.periodic_task_id: due_of(beat, schedule) for schedule in schedules}
    run(beat, clock, max(slots.values()) + timedelta(seconds=beat.flush_seconds + 1))

    rows = PeriodicTask.objects.in_bulk(list(slots))
    assert {pk: (row.last_run_at, row.total_run_count) for pk, row in rows.items()} == {
        pk: (slot, 1) for pk, slot in slots.items()
    }
    assert {pk: row.date_changed for pk, row in rows.items()} == before
    assert PeriodicTasks.last_change() == last_update


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ("timing", "api next_run"),
        ("disable", None),
        ("delete", None),
        ("sql_disable", None),
        ("sql_retime", "api next_run"),
    ],
)
def test_changes_are_picked_up_one_row_at_a_time(
    make_schedule, actor, scheduler, clock, broker, pickup, change, expected
):
    """Write-path changes land at the next poll or notification; SQL that bypasses every signal, by
    notification or at reconciliation."""
    schedule = make_schedule(cron_expression="0 * * * *")
    bystander = make_schedule(cron_expression="30 * * * *")
    beat = scheduler()
    beat.tick()
    bystander_entry = beat.entries[bystander.periodic_task_id]

    if change == "timing":
        services.schedule_update(actor=actor, schedule=schedule, cron_expression="17 * * * *")
    elif change == "disable":
        services.schedule_set_enabled(actor=actor, schedule=schedule, enabled=False)
    elif change == "delete":
        services.schedule_delete(actor=actor, schedule=schedule)
    elif change == "sql_disable":
        PeriodicTask.objects.filter(pk=schedule.periodic_task_id).update(enabled=False)
    else:
        CrontabSchedule.objects.filter(pk=schedule.periodic_task.crontab_id).update(minute="45")
    if change.startswith("sql") and pickup == "poll":
        clock.advance(beat.reconcile_seconds)

    def settled():
        if expected is None:
            return due_of(beat, schedule) is None
        return due_of(beat, schedule) == selectors.schedule_next_run(fresh(schedule))

    pick_up(beat, clock, settled)

    if expected is None:
        assert due_of(beat, schedule) is None
    else:
        assert due_of(beat, schedule) == selectors.schedule_next_run(fresh(schedule))
        assert due_of(beat, schedule).minute == (17 if change == "timing" else 45)
    assert beat.entries[bystander.periodic_task_id] is bystander_entry


def _insert_poison(kind: str, good: PeriodicTask) -> str:
    """Insert a row the scheduler cannot run, with SQL as an operator might."""
    name = f"poison-{kind}"
    values = {"args": "[]", "interval_id": None, "crontab_id": None}
    if kind == "never_firing_cron":
        values["crontab_id"] = CrontabSchedule.objects.create(
            minute="0", hour="0", day_of_month="30", month_of_year="2"
        ).pk
    elif kind == "out_of_range_cron":
        values["crontab_id"] = CrontabSchedule.objects.create(minute="61").pk
    elif kind == "overflowing_interval":
        values["interval_id"] = IntervalSchedule.objects.create(every=2_000_000_000, period="days").pk
    elif kind == "broken_args":
        values.update(interval_id=good.interval_id, args="[not json")
    elif kind == "no_schedule":
        pass
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO django_celery_beat_periodictask (name, task, args, kwargs, enabled, one_off, "
            "total_run_count, date_changed, description, headers, interval_id, crontab_id, queue) "
            "VALUES (%s, 'x.y', %s, '{}', true, false, 0, now(), '', '{}', %s, %s, 'default')",
            [name, values["args"], values["interval_id"], values["crontab_id"]],
        )
    return name


@pytest.mark.parametrize(
    "kind", ["never_firing_cron", "out_of_range_cron", "overflowing_interval", "broken_args", "no_schedule"]
)
@pytest.mark.parametrize("when", ["at_start", "while_running"])
def test_an_unschedulable_row_is_skipped_and_logged_by_name(
    make_schedule, scheduler, clock, broker, caplog, kind, when
):
    """One bad row costs nothing but a log line naming it: every other schedule is sent on time."""
    good = make_schedule(schedule_type="interval", interval_seconds=300)
    beat = scheduler()
    if when == "at_start":
        name = _insert_poison(kind, good.periodic_task)
    beat.tick()
    if when == "while_running":
        name = _insert_poison(kind, good.periodic_task)
    slot = due_of(beat, good)
    run(beat, clock, slot + timedelta(seconds=1))
    clock.advance(beat.reconcile_seconds)
    beat.tick()
    assert [message["name"] for message in sent(broker)] == [good.periodic_task.name]
    about_it = [record for record in caplog.records if name in record.getMessage()]
    assert [(record.levelno, record.getMessage()[: len(name) + 28]) for record in about_it] == [
        (logging.ERROR, f"beat: skipping schedule '{name}': ")
    ]


def test_day_of_week_7_runs_on_sunday_as_the_api_says(make_schedule, scheduler, clock, broker):
    """A crontab row saying 7 (as Vixie cron means Sunday) is neither dropped nor refused."""
    schedule = make_schedule(cron_expression="0 6 * * 0")
    CrontabSchedule.objects.filter(pk=schedule.periodic_task.crontab_id).update(day_of_week="7")
    beat = scheduler()
    beat.tick()
    due = due_of(beat, schedule)
    assert due == selectors.schedule_next_run(fresh(schedule))
    assert (due.isoweekday(), due.hour) == (7, 6)


def test_a_burst_over_several_batches_sends_each_slot_once_and_writes_run_state_after(
    make_schedule, scheduler, clock, broker
):
    """Seven slots on one second, two per batch: each sent once, claimed once; the run state is
    written after the last batch (not between them)."""
    schedules = [make_schedule(schedule_type="interval", interval_seconds=60 + n) for n in range(7)]
    slot = (clock.now + timedelta(seconds=5)).replace(microsecond=0)
    for schedule in schedules:
        PeriodicTask.objects.filter(pk=schedule.periodic_task_id).update(
            last_run_at=slot - timedelta(seconds=schedule.periodic_task.interval.every)
        )
    beat = scheduler()
    beat.max_batch = 2
    beat.tick()
    flushes = []
    flush = beat.store.flush
    beat.store.flush = lambda: flushes.append(beat.store.unwritten_runs) or flush()
    run(beat, clock, slot + timedelta(seconds=1))

    names = sorted(schedule.periodic_task.name for schedule in schedules)
    assert sorted(message["name"] for message in sent(broker)) == names
    assert sorted({message["task_id"] for message in sent(broker)}) == sorted(
        task_id_for(name, to_us(slot)) for name in names
    )
    assert sorted(Dispatch.objects.values_list("periodic_task_name", flat=True)) == names
    assert flushes == [7]  # once, after the last batch
    assert set(
        PeriodicTask.objects.filter(pk__in=[s.periodic_task_id for s in schedules]).values_list(
            "last_run_at", flat=True
        )
    ) == {slot}


def test_a_slot_already_claimed_elsewhere_is_not_sent_again(make_schedule, scheduler, clock, broker, caplog):
    """Two dispatchers (a split brain) still send a slot once: the claim is unique per slot."""
    schedule = make_schedule(schedule_type="interval", interval_seconds=60)
    beat = scheduler()
    beat.tick()
    slot = due_of(beat, schedule)
    name = schedule.periodic_task.name
    Dispatch.objects.create(periodic_task_name=name, slot=slot, task_id=task_id_for(name, to_us(slot)), sent_at=slot)
    run(beat, clock, slot + timedelta(seconds=1))
    assert sent(broker) == []
    assert due_of(beat, schedule) == slot + timedelta(seconds=60)


def test_a_new_leader_continues_after_the_last_claimed_slot(make_schedule, scheduler, clock, broker):
    """Slots the old leader claimed but never wrote back are not sent again by the next one."""
    schedule = make_schedule(schedule_type="interval", interval_seconds=60)
    old = scheduler()
    old.tick()
    slot = due_of(old, schedule)
    run(old, clock, slot + timedelta(seconds=0.5))
    old.close()
    wait_for_the_lock_to_go()
    # As if it was killed before writing the run state back.
    PeriodicTask.objects.filter(pk=schedule.periodic_task_id).update(last_run_at=None)

    new = scheduler()
    new.tick()
    assert due_of(new, schedule) == slot + timedelta(seconds=60)


def test_only_the_lock_holder_dispatches(make_schedule, scheduler, clock, broker):
    """A second beat on PostgreSQL waits as a standby and takes over when the leader's session ends."""
    schedule = make_schedule(schedule_type="interval", interval_seconds=60)
    leader, standby = scheduler(), scheduler()
    leader.tick()
    standby.tick()
    assert (leader.is_leader, standby.is_leader) == (True, False)
    assert standby.entries == {}

    leader.lock.release()  # the session dies (the process was killed)
    wait_for_the_lock_to_go()
    clock.advance(standby.lock_retry_seconds)
    standby.tick()
    assert standby.is_leader
    assert due_of(standby, schedule) == selectors.schedule_next_run(fresh(schedule))
    clock.advance(leader.lock_retry_seconds)
    leader.tick()
    assert leader.is_leader is False


def test_slots_missed_for_longer_than_a_period_are_sent_once(make_schedule, scheduler, clock, broker):
    """After a long stop beat sends the latest missed slot, not a backlog of stale runs."""
    schedule = make_schedule(schedule_type="interval", interval_seconds=60)
    PeriodicTask.objects.filter(pk=schedule.periodic_task_id).update(last_run_at=datetime.now(UTC) - timedelta(hours=2))
    beat = scheduler()
    run(beat, clock, clock.now + timedelta(seconds=5))
    assert len(sent(broker)) == 1


def test_dispatch_records_are_kept_for_the_retention_and_the_last_ten_listed(make_schedule, scheduler, clock, broker):
    """Each send is recorded; records past the retention go; the selector lists the newest ten."""
    schedule = make_schedule(schedule_type="interval", interval_seconds=60)
    name = schedule.periodic_task.name
    now = clock.now
    slots = [now - timedelta(minutes=minutes) for minutes in range(1, 13)] + [now - timedelta(days=2)]
    Dispatch.objects.bulk_create(
        [
            Dispatch(periodic_task_name=name, slot=slot, task_id=task_id_for(name, to_us(slot)), sent_at=slot)
            for slot in slots
        ]
    )
    beat = scheduler()
    beat.tick()
    assert Dispatch.objects.filter(slot__lt=now - timedelta(days=1)).exists() is False
    assert [dispatch.slot for dispatch in selectors.schedule_recent_dispatches(fresh(schedule))] == slots[:10]


def test_each_beat_touches_the_liveness_file_about_once_a_second(scheduler, clock, settings, tmp_path):
    """Leader and standby both touch LUFFY_BEAT_LIVENESS_FILE from their ticks, at most once a second."""
    alive = tmp_path / "beat-alive"
    settings.LUFFY_BEAT_LIVENESS_FILE = str(alive)
    leader, standby = scheduler(), scheduler()
    for beat in (leader, standby):
        beat.tick()
        assert alive.exists()
        os.utime(alive, (0, 0))
        clock.advance(0.5)
        beat.tick()
        assert alive.stat().st_mtime == 0  # not twice within a second
        clock.advance(0.5)
        beat.tick()
        assert time.time() - alive.stat().st_mtime < 5
        os.utime(alive, (0, 0))
    assert (leader.is_leader, standby.is_leader) == (True, connection.vendor != "postgresql")


def beat_row(name: str, every: int = 60, **fields) -> PeriodicTask:
    """A django-celery-beat row made as its own users make one: its models, no luffy schedule."""
    interval, _ = IntervalSchedule.objects.get_or_create(every=every, period=IntervalSchedule.SECONDS)
    return PeriodicTask.objects.create(name=name, task="x.y", interval=interval, queue=QUEUE, **fields)


def made_an_hour_ago():
    """Age every row past the poll's look-back, so only the change under test can bring it back."""
    PeriodicTask.objects.update(date_changed=F("date_changed") - timedelta(hours=1))


def run_admin_action(action: str, queryset):
    """django-celery-beat's own admin action, as its changelist runs it."""
    request = RequestFactory().post("/")
    request.session = {}
    request._messages = FallbackStorage(request)
    getattr(beat_admin.PeriodicTaskAdmin(PeriodicTask, admin.site), action)(request, queryset)


def test_a_fleet_beat_loads_with_an_empty_change_stamp_table(scheduler, clock, broker, pickup):
    """Rows written without django-celery-beat's stamp (bulk_create, SQL) load and are reconciled."""
    first = beat_row("stampless-1")
    PeriodicTasks.objects.all().delete()
    beat = scheduler()
    beat.tick()
    assert set(beat.entries) == {first.pk}
    interval = IntervalSchedule.objects.get(every=60)
    second = PeriodicTask.objects.bulk_create([PeriodicTask(name="stampless-2", task="x.y", interval=interval)])[0]
    clock.advance(beat.reconcile_seconds)
    beat.tick()
    assert set(beat.entries) == {first.pk, second.pk}


def test_a_delete_next_to_a_save_in_one_poll_is_picked_up(scheduler, clock, broker, pickup):
    """Deleting a row and saving another before the next poll drops the deleted one at that poll."""
    job = beat_row("job", args='["OLD"]')
    beat = scheduler()
    beat.tick()
    job.delete()
    new_job = beat_row("job", args='["NEW"]')
    pick_up(beat, clock, lambda: set(beat.entries) == {new_job.pk})
    assert {entry.name: entry.args for entry in beat.entries.values()} == {"job": '["NEW"]'}


@pytest.mark.parametrize(
    ("action", "enabled_before", "enabled_after"),
    [
        ("disable_tasks", [True, True], [False, False]),
        ("enable_tasks", [False, False], [True, True]),
        ("toggle_tasks", [True, False], [False, True]),
    ],
)
def test_django_celery_beat_admin_actions_are_picked_up_at_the_next_poll(
    scheduler, clock, broker, pickup, action, enabled_before, enabled_after
):
    """Enable/Disable/Toggle selected (``update()`` + ``update_changed()``) land within one poll."""
    rows = [beat_row(f"bulk-{n}", enabled=enabled) for n, enabled in enumerate(enabled_before)]
    bystander = beat_row("bystander")
    made_an_hour_ago()
    beat = scheduler()
    beat.tick()
    saved = beat_row("saved-in-the-same-poll")  # a save must not hide the action
    run_admin_action(action, PeriodicTask.objects.filter(pk__in=[row.pk for row in rows]))
    pick_up(beat, clock, lambda: [row.pk in beat.entries for row in rows] == enabled_after)
    assert bystander.pk in beat.entries and saved.pk in beat.entries


@pytest.mark.parametrize("kind", ["crontab", "interval", "solar", "clocked"])
def test_an_edited_timing_row_is_picked_up_at_the_next_poll(make_schedule, scheduler, clock, broker, pickup, kind):
    """Saving a timing row of any kind (each stamps the change) retimes its tasks within a poll."""
    if kind == "crontab":
        row = make_schedule(cron_expression="0 * * * *")
        timing_row = row.periodic_task.crontab
        timing_row.minute = "45"
    elif kind == "interval":
        row = make_schedule(schedule_type="interval", interval_seconds=600)
        timing_row = row.periodic_task.interval
        timing_row.every = 900
    elif kind == "solar":
        timing_row = SolarSchedule.objects.create(event="sunrise", latitude="48.8566", longitude="2.3522")
        row = PeriodicTask.objects.create(name="solar", task="x.y", solar=timing_row, queue=QUEUE)
        timing_row.event = "sunset"
    else:
        timing_row = ClockedSchedule.objects.create(clocked_time=clock.now + timedelta(hours=1))
        row = PeriodicTask.objects.create(name="clocked", task="x.y", clocked=timing_row, one_off=True, queue=QUEUE)
        timing_row.clocked_time = clock.now + timedelta(hours=2)
    made_an_hour_ago()
    beat = scheduler()
    beat.tick()
    before = due_of(beat, row)
    timing_row.save()
    pick_up(beat, clock, lambda: due_of(beat, row) != before)
    if kind == "clocked":
        assert due_of(beat, row) == timing_row.clocked_time
    elif kind != "solar":  # a luffy schedule: the API's next_run
        assert due_of(beat, row) == selectors.schedule_next_run(fresh(row))


@pytest.fixture
def own_redis(monkeypatch):
    """A redis-server of this test's own as beat's broker (the shared one is never stopped)."""
    if shutil.which("redis-server") is None:
        pytest.skip("needs redis-server")
    server = RedisServer()
    server.start()
    monkeypatch.setitem(celery_app.conf, "broker_write_url", f"redis://127.0.0.1:{server.port}/0")
    yield server
    server.process.send_signal(signal.SIGCONT)
    server.stop()


def longest_tick_while_hung(beat, clock, hang, resume) -> float:
    """The longest of three ticks (a second apart) while the broker hangs, in seconds."""
    hang()
    longest = 0.0
    try:
        for _ in range(3):
            clock.advance(1)
            ticking = threading.Thread(target=beat.tick, daemon=True)
            started = time.monotonic()
            ticking.start()
            ticking.join(timeout=10)
            longest = max(longest, time.monotonic() - started)
            if ticking.is_alive():
                break
    finally:
        resume()
    ticking.join(timeout=60)
    return longest


def test_a_hung_broker_blocks_no_tick_for_longer_than_three_seconds(scheduler, clock, own_redis):
    """With Redis stopped (SIGSTOP: packets go unanswered), each tick returns within ~3 s, and
    beat sends again once it answers."""
    beat_row("hung", every=1)
    beat = scheduler()
    beat.tick()
    clock.advance(1.5)
    beat.tick()  # connected: the broker is known to work
    assert redis.Redis(port=own_redis.port).llen(QUEUE) == 1

    longest = longest_tick_while_hung(beat, clock, own_redis.hang, own_redis.resume)
    print(f"\nRedis hung: longest tick {longest:.2f} s")
    assert longest < 3
    clock.advance(1)
    beat.tick()
    assert redis.Redis(port=own_redis.port).llen(QUEUE) >= 2


def test_a_hung_amqp_link_loses_no_send_and_blocks_no_tick_for_longer_than_three_seconds(scheduler, clock, monkeypatch):
    """RabbitMQ behind a link that stops passing bytes (a TCP proxy of the test's; the shared
    server is not touched). A publish is a socket write that the kernel takes at once: only the
    broker's confirm tells it arrived. Unconfirmed sends stay waiting for the next try, and no
    tick waits longer than ~3 s for a confirm or an answer."""
    with rabbitmq_vhost(f"luffy_test_hung_{os.getpid()}") as url:
        link = Partition(AMQP_PORT)
        link.start()
        try:
            monkeypatch.setitem(celery_app.conf, "broker_write_url", url.replace(f":{AMQP_PORT}/", f":{link.port}/"))
            beat_row("hung", every=1)
            clock.at(datetime.now(UTC))  # the vhost took a while: the row is newer than the test's clock
            beat = scheduler()
            beat.tick()
            clock.advance(1.5)
            beat.tick()  # connected: the broker is known to work
            with Connection(url) as broker, broker.channel() as channel:
                assert channel.queue_declare(QUEUE, passive=True).message_count == 1

            longest = longest_tick_while_hung(beat, clock, link.drop, lambda: None)
            print(f"\nRabbitMQ link hung: longest tick {longest:.2f} s, {beat.publisher.waiting} sends kept")
            assert longest < 3
            assert beat.publisher.waiting >= 1  # the sends made since the cut, not counted as sent
            beat.close()  # while the vhost is there: its last try waits on the dropped link
        finally:
            link.stop()


def test_stale_sends_are_dropped_from_anywhere_in_the_queue_during_a_broker_outage(scheduler, clock, monkeypatch):
    """A daily slot at the head of the queue keeps its day; the one-second slots behind it keep ten seconds."""
    monkeypatch.setitem(celery_app.conf, "broker_write_url", f"redis://127.0.0.1:{free_port()}/0")  # refused
    daily = beat_row("daily", every=86400)
    PeriodicTask.objects.filter(pk=daily.pk).update(date_changed=clock.now - timedelta(days=1, seconds=-0.1))
    for n in range(20):
        beat_row(f"every-second-{n}", every=1)
    beat = scheduler()
    run(beat, clock, clock.now + timedelta(seconds=60))
    # Each one-second schedule keeps at most its last ~11 slots; without the sweep, all 60.
    assert beat.publisher.waiting <= 1 + 20 * 12
    assert beat.publisher.waiting >= 1 + 20 * 9


def listening_sessions() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'luffy-beat-listen' "
            "AND datname = current_database()"
        )
        return cursor.fetchone()[0]


def disable_with_sql(row_id: int):
    """What an operator's psql does: no change stamp, no date_changed."""
    with connection.cursor() as cursor:
        cursor.execute("UPDATE django_celery_beat_periodictask SET enabled = false WHERE id = %s", [row_id])


@pytest.mark.skipif(connection.vendor != "postgresql", reason="NOTIFY is PostgreSQL's")
def test_raw_sql_reaches_a_listening_beat_through_notify(make_schedule, scheduler, clock, broker):
    """A change no stamp or date_changed reveals is in within a few notification checks, not at reconciliation."""
    schedule = make_schedule(schedule_type="interval", interval_seconds=600)
    beat = scheduler()
    beat.tick()
    assert listening_sessions() == 1
    disable_with_sql(schedule.periodic_task_id)
    pick_up(beat, clock, lambda: due_of(beat, schedule) is None)


@pytest.fixture
def triggers_absent():
    """The change triggers renamed away (as on a database migrated without them), then back."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT tgrelid::regclass::text FROM pg_trigger WHERE tgname = 'luffy_beat_notify_update'")
        tables = [table for (table,) in cursor.fetchall()]
        for table in tables:
            cursor.execute(f"ALTER TRIGGER luffy_beat_notify_update ON {table} RENAME TO luffy_test_renamed")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            for table in tables:
                cursor.execute(f"ALTER TRIGGER luffy_test_renamed ON {table} RENAME TO luffy_beat_notify_update")


@pytest.mark.skipif(connection.vendor != "postgresql", reason="NOTIFY is PostgreSQL's")
def test_a_listening_beat_without_the_triggers_says_so_and_polls(scheduler, clock, broker, triggers_absent, caplog):
    beat = scheduler()
    beat.tick()
    assert listening_sessions() == 0
    assert "change triggers are absent" in caplog.text
    row = beat_row("saved-after-the-load")
    pick_up(beat, clock, lambda: row.pk in beat.entries)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="NOTIFY is PostgreSQL's")
def test_a_notification_lost_with_the_listening_session_is_repaired_on_reconnect(
    make_schedule, scheduler, clock, broker, caplog
):
    """Changes made while the listening session was gone are caught up as soon as it is back."""
    schedule = make_schedule(schedule_type="interval", interval_seconds=600)
    beat = scheduler()
    beat.tick()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'luffy-beat-listen' "
            "AND datname = current_database()"
        )
    wait_for(lambda: listening_sessions() == 0, timeout=10, what="the listening session to end")
    disable_with_sql(schedule.periodic_task_id)  # announced to no one
    pick_up(beat, clock, lambda: due_of(beat, schedule) is None)
    assert listening_sessions() == 1
    assert "listening for changes again; catching up" in caplog.text


@pytest.mark.skipif(connection.vendor != "postgresql", reason="NOTIFY is PostgreSQL's")
def test_a_statement_over_too_many_rows_to_name_is_taken_in_at_once(scheduler, clock, broker):
    """Over 10,000 rows in one statement notify ``task:*``: the stamp checks run at once, no stamp needed."""
    interval = IntervalSchedule.objects.create(every=60, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.bulk_create(
        [PeriodicTask(name=f"bulk-{n}", task="x.y", interval=interval, queue=QUEUE) for n in range(10_001)],
        batch_size=2000,
    )
    beat = scheduler()
    beat.tick()
    assert len(beat.entries) == 10_001
    PeriodicTask.objects.update(enabled=False)  # one statement, no change stamp
    pick_up(beat, clock, lambda: not beat.entries)


def test_celery_beat_bounds_database_waits_for_the_fleet_scheduler_only(scheduler):
    """On ``beat_init`` a beat running the fleet scheduler installs db_waits' bound
    (LUFFY_DB_BEAT_WAIT_SECONDS) for every psycopg2 session of its process; a beat running
    another scheduler, or running in a worker's thread, leaves psycopg2 as it is."""
    from celery import signals
    from psycopg2 import extensions

    from schedules.db_waits import BoundedWait

    class Service:
        def __init__(self, running):
            self.scheduler = running

    assert extensions.get_wait_callback() is None
    try:
        signals.beat_init.send(sender=Service(object()))
        assert extensions.get_wait_callback() is None
        in_thread = threading.Thread(target=signals.beat_init.send, kwargs={"sender": Service(scheduler())})
        in_thread.start()
        in_thread.join()
        assert extensions.get_wait_callback() is None
        signals.beat_init.send(sender=Service(scheduler()))
        installed = extensions.get_wait_callback()
        assert isinstance(installed, BoundedWait)
        assert installed.seconds == settings.LUFFY_DB_BEAT_WAIT_SECONDS
    finally:
        extensions.set_wait_callback(None)


def test_the_server_ends_a_leader_lock_session_left_idle(scheduler, clock):
    """The lock's session carries ``idle_session_timeout``: a leader cut off so that TCP sees
    nothing (its peer's kernel still acknowledges) stops using it, and the server then ends it and
    frees the lock for a standby."""
    from schedules.beat.lock import IDLE_SESSION_TIMEOUT_MS

    leader = scheduler()
    leader.tick()
    assert leader.is_leader
    assert leader.lock.setting("idle_session_timeout") == f"{IDLE_SESSION_TIMEOUT_MS // 1000}s"


def test_a_long_load_keeps_the_lock_session_in_use_and_is_dropped_once_the_lock_is_lost(
    make_schedule, scheduler, clock, monkeypatch, caplog
):
    """While rows stream in, the leader uses its lock session about once a second (so the
    server's idle timeout never ends a leader's session during a long load); if the lock is
    gone by then, the load is dropped and the beat steps down instead of sending."""
    from schedules.beat import store

    for seconds in (60, 120, 180):
        make_schedule(schedule_type="interval", interval_seconds=seconds)
    monkeypatch.setattr(store, "LOAD_KEEP_ALIVE_ROWS", 1)
    monkeypatch.setattr(store, "LOAD_KEEP_ALIVE_SECONDS", 0)
    leader = scheduler()
    checks = []
    alive = leader.lock.alive
    monkeypatch.setattr(leader.lock, "alive", lambda: checks.append(True) or alive())
    leader.tick()
    assert leader.table.loaded and len(checks) >= 3

    follower = scheduler()
    leader.close()
    wait_for_the_lock_to_go()
    monkeypatch.setattr(follower.lock, "alive", lambda: False)
    with caplog.at_level(logging.ERROR, logger="schedules.beat.store"):
        follower.tick()
    assert not follower.table.loaded
    assert "lost during the load" in caplog.text
