"""Rows made the ways users make them (django-celery-beat's models, ``QuerySet.update()``, SQL):
the fleet scheduler runs them as django-celery-beat's stock ``DatabaseScheduler`` does.

Each test drives ``FleetScheduler.tick()`` on the test's clock and reads the broker queue.
"""

import logging
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)

from schedules import selectors, services
from schedules.beat.clock import to_us
from schedules.beat.publisher import task_id_for
from schedules.models import Dispatch

from .inprocess import due_of, fresh, run, sent, wait_for_the_lock_to_go

pytestmark = pytest.mark.django_db(transaction=True)

TASK = "src.services.tasks.fetch_and_process_logs"
# A Tuesday evening, away from any DST change.
START = datetime(2026, 12, 1, 20, 30, tzinfo=UTC)


def periodic_task(clock, name="row", **fields) -> PeriodicTask:
    """A PeriodicTask saved through django-celery-beat's model, changed at the test clock's time."""
    fields.setdefault("queue", "default")
    row = PeriodicTask.objects.create(name=name, task=TASK, args='["web-app"]', **fields)
    # auto_now stamped the wall clock; the scheduler's time is the test's.
    PeriodicTask.objects.filter(pk=row.pk).update(date_changed=clock.now)
    row.refresh_from_db()
    return row


def slots(beat, row, count: int, clock) -> list[datetime]:
    """The next ``count`` due times, sending each (clock moved to it)."""
    seen = []
    for _ in range(count):
        due = due_of(beat, row)
        seen.append(due)
        clock.at(due)
        beat.tick()
    return seen


def test_an_interval_with_a_future_start_time_runs_at_it_then_every_period(scheduler, clock, broker):
    """Stock runs at start_time, then one period after each run; fleet ran a period late, 1 µs early."""
    clock.at(START)
    start = START + timedelta(minutes=10)
    row = periodic_task(clock, interval=IntervalSchedule.objects.create(every=1, period="hours"), start_time=start)
    beat = scheduler()
    beat.tick()
    assert slots(beat, row, 3, clock) == [start, start + timedelta(hours=1), start + timedelta(hours=2)]
    assert len(sent(broker)) == 3


def test_an_interval_whose_last_run_is_before_start_time_waits_for_it(scheduler, clock, broker):
    """A row that ran before its start_time moved later runs at start_time, not earlier."""
    clock.at(START)
    start = START + timedelta(minutes=30)
    row = periodic_task(clock, interval=IntervalSchedule.objects.create(every=10, period="minutes"), start_time=start)
    PeriodicTask.objects.filter(pk=row.pk).update(last_run_at=START - timedelta(minutes=5))
    beat = scheduler()
    beat.tick()
    assert slots(beat, row, 2, clock) == [start, start + timedelta(minutes=10)]


def test_a_one_off_runs_once_and_is_disabled_even_when_saved_right_after(scheduler, clock, broker):
    """Stock disables a one-off after its run and resets its count, so enabling it again arms it again."""
    clock.at(START)
    row = periodic_task(clock, interval=IntervalSchedule.objects.create(every=60, period="seconds"), one_off=True)
    beat = scheduler()
    beat.tick()
    slot = due_of(beat, row)
    clock.at(slot)
    beat.tick()
    # Someone saves the row in the admin right after the run, before any batched write.
    saved = PeriodicTask.objects.get(pk=row.pk)
    saved.description = "edited"
    saved.save()
    run(beat, clock, slot + timedelta(minutes=5), step=5)
    assert len(sent(broker)) == 1
    reread = PeriodicTask.objects.get(pk=row.pk)
    assert (reread.enabled, reread.total_run_count, reread.last_run_at) == (False, 0, None)

    reread.enabled = True
    reread.save()  # re-armed, as with stock: a period after the change
    PeriodicTask.objects.filter(pk=row.pk).update(date_changed=clock.now)
    run(beat, clock, clock.now + timedelta(minutes=2), step=5)
    assert len(sent(broker)) == 2
    assert PeriodicTask.objects.get(pk=row.pk).enabled is False


def test_a_one_off_claimed_by_a_leader_that_died_is_not_sent_again(scheduler, clock, broker):
    """The old leader claimed and sent it but never disabled it: the next leader disables it, no resend."""
    clock.at(START)
    row = periodic_task(clock, interval=IntervalSchedule.objects.create(every=60, period="seconds"), one_off=True)
    old = scheduler()
    old.tick()
    slot = due_of(old, row)
    clock.at(slot)
    old.tick()
    old.lock.release()
    wait_for_the_lock_to_go()
    # As if it died between claiming the slot and disabling the row.
    PeriodicTask.objects.filter(pk=row.pk).update(
        enabled=True, total_run_count=0, last_run_at=None, date_changed=row.date_changed
    )

    new = scheduler()
    run(new, clock, slot + timedelta(minutes=3), step=5)
    assert len(sent(broker)) == 1
    assert PeriodicTask.objects.get(pk=row.pk).enabled is False


def test_a_row_past_its_expiry_is_disabled_and_not_sent(scheduler, clock, broker):
    """Stock sends up to expires and then disables the row; fleet left it enabled."""
    clock.at(START)
    row = periodic_task(
        clock,
        interval=IntervalSchedule.objects.create(every=60, period="seconds"),
        expires=START + timedelta(seconds=150),
    )
    beat = scheduler()
    run(beat, clock, START + timedelta(minutes=5), step=5)
    assert len(sent(broker)) == 2
    assert PeriodicTask.objects.get(pk=row.pk).enabled is False


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"minute": "0", "hour": "22-2"}, ["12-01 22:00", "12-01 23:00", "12-02 00:00", "12-02 01:00", "12-02 02:00"]),
        ({"minute": "0", "hour": "9", "day_of_week": "fri-mon"}, ["12-04 09:00", "12-05 09:00", "12-06 09:00"]),
        ({"minute": "0", "hour": "9", "day_of_week": "monday"}, ["12-07 09:00", "12-14 09:00"]),
        ({"minute": "*/60"}, ["12-01 21:00", "12-01 22:00"]),
        ({"minute": ",".join(str(minute) for minute in range(60))}, ["12-01 20:31", "12-01 20:32"]),
    ],
    ids=["wrapping-hours", "wrapping-days", "day-name", "step-60", "over-120-chars"],
)
def test_crontabs_celery_accepts_run_as_celery_reads_them(scheduler, clock, broker, fields, expected):
    """What the API refuses but Celery's crontab runs (stock runs it) runs at Celery's slots."""
    clock.at(START)
    row = periodic_task(clock, crontab=CrontabSchedule.objects.create(**fields))
    beat = scheduler()
    beat.tick()
    assert [slot.strftime("%m-%d %H:%M") for slot in slots(beat, row, len(expected), clock)] == expected
    assert len(sent(broker)) == len(expected)


def test_null_arguments_are_sent_empty(scheduler, clock, broker):
    """args and kwargs stored as JSON null go out as [] and {}, as stock sends them."""
    clock.at(START)
    row = periodic_task(clock, interval=IntervalSchedule.objects.create(every=60, period="seconds"))
    PeriodicTask.objects.filter(pk=row.pk).update(args="null", kwargs="null")
    beat = scheduler()
    run(beat, clock, START + timedelta(seconds=61))
    assert [(message["name"], message["args"]) for message in sent(broker)] == [("row", [])]


def test_a_clocked_row_runs_once_at_its_time(scheduler, clock, broker):
    """A ClockedSchedule one-off (django-celery-beat's admin offers it) runs at its time, then is disabled."""
    clock.at(START)
    at = START + timedelta(minutes=5)
    row = periodic_task(clock, clocked=ClockedSchedule.objects.create(clocked_time=at), one_off=True)
    beat = scheduler()
    beat.tick()
    assert due_of(beat, row) == at
    run(beat, clock, at + timedelta(minutes=5), step=5)
    assert len(sent(broker)) == 1
    assert PeriodicTask.objects.get(pk=row.pk).enabled is False


def test_a_clocked_row_whose_time_has_passed_runs_at_once(scheduler, clock, broker):
    """Stock runs a clocked row created after its time on its first tick; so does fleet, once."""
    clock.at(START)
    row = periodic_task(
        clock, clocked=ClockedSchedule.objects.create(clocked_time=START - timedelta(hours=3)), one_off=True
    )
    beat = scheduler()
    run(beat, clock, START + timedelta(minutes=1), step=5)
    assert [message["name"] for message in sent(broker)] == [row.name]


def test_a_solar_row_runs_at_the_sun_event(scheduler, clock, broker):
    """A SolarSchedule row runs at Celery's next sunrise after its anchor (ephem computes it)."""
    clock.at(START)
    row = periodic_task(
        clock, solar=SolarSchedule.objects.create(event="sunrise", latitude="48.8566", longitude="2.3522")
    )
    beat = scheduler()
    beat.tick()
    first, second = slots(beat, row, 2, clock)
    assert first.strftime("%m-%d %H:%M") == "12-02 07:23"
    assert second.strftime("%m-%d %H:%M") == "12-03 07:24"
    assert len(sent(broker)) == 2


def test_an_unknown_time_zone_skips_that_row_only(make_schedule, scheduler, clock, broker, caplog):
    """A zone zoneinfo does not know (SQL, a tzdata upgrade) costs its row, not the load."""
    good = make_schedule(cron_expression="*/15 * * * *")
    clock.at(START)
    bad = periodic_task(clock, crontab=CrontabSchedule.objects.create(minute="0"))
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE django_celery_beat_crontabschedule SET timezone = 'Mars/Olympus_Mons' WHERE id = %s",
            [bad.crontab_id],
        )
    beat = scheduler()
    beat.tick()
    assert beat.is_leader and due_of(beat, good) is not None
    assert due_of(beat, bad) is None
    errors = [record.getMessage() for record in caplog.records if record.levelno == logging.ERROR]
    assert any("skipping schedule 'row'" in message for message in errors)


def test_next_run_names_the_next_slot_right_after_a_send(make_schedule, scheduler, clock, broker):
    """The API's next_run moves on when the slot goes out, not at the next batched write."""
    schedule = make_schedule(schedule_type="interval", interval_seconds=600)
    beat = scheduler()
    beat.tick()
    slot = due_of(beat, schedule)
    clock.at(slot)
    beat.tick()
    assert selectors.schedule_next_run(fresh(schedule)) == slot + timedelta(seconds=600) == due_of(beat, schedule)


def test_an_edit_racing_an_old_slot_keeps_the_change_as_the_anchor(
    make_schedule, actor, scheduler, clock, broker, settings
):
    """A slot of the old timing sent before pickup does not move the new timing's first run."""
    # Polling leaves the race open for a poll period (NOTIFY narrows it to ~50 ms): test it there.
    settings.LUFFY_BEAT_LISTEN = False
    # 120 s: the old slot must not coincide with the once-a-minute reconciliation.
    schedule = make_schedule(schedule_type="interval", interval_seconds=120)
    beat = scheduler()
    beat.tick()
    old_slot = due_of(beat, schedule)
    clock.at(old_slot - timedelta(seconds=0.2))
    beat.tick()
    updated = services.schedule_update(actor=actor, schedule=fresh(schedule), interval_seconds=900)
    # Committed at the test clock's time (auto_now stamped the wall clock, minutes behind it).
    PeriodicTask.objects.filter(pk=schedule.periodic_task_id).update(date_changed=clock.now)
    promised = selectors.schedule_next_run(fresh(updated))
    clock.at(old_slot)
    beat.tick()  # the old slot falls due before the next poll
    run(beat, clock, old_slot + timedelta(seconds=2))
    name = schedule.periodic_task.name
    assert [message["task_id"] for message in sent(broker)] == [task_id_for(name, to_us(old_slot))]
    assert due_of(beat, schedule) == promised


def test_a_stale_skip_writes_back_the_slot_sent(make_schedule, scheduler, clock, broker):
    """When the slot after a late one is skipped as stale, last_run_at is the slot claimed, not the skip point."""
    schedule = make_schedule(schedule_type="interval", interval_seconds=60)
    beat = scheduler()
    beat.tick()
    slot = due_of(beat, schedule)
    clock.at(slot + timedelta(seconds=150))  # the beat stalled: the next slot (+60 s) is stale too
    beat.tick()
    beat.sync()
    assert list(Dispatch.objects.values_list("slot", flat=True)) == [slot]
    assert PeriodicTask.objects.get(pk=schedule.periodic_task_id).last_run_at == slot


def test_run_state_never_moves_last_run_at_backwards(make_schedule, scheduler, clock, broker):
    """A later last_run_at (another leader's) stays when this beat writes an older slot."""
    schedule = make_schedule(schedule_type="interval", interval_seconds=60)
    beat = scheduler()
    beat.tick()
    slot = due_of(beat, schedule)
    later = slot + timedelta(hours=1)
    clock.at(slot - timedelta(seconds=0.1))
    beat.tick()
    PeriodicTask.objects.filter(pk=schedule.periodic_task_id).update(last_run_at=later)
    clock.at(slot)
    beat.tick()
    beat.sync()
    assert len(sent(broker)) == 1
    assert PeriodicTask.objects.get(pk=schedule.periodic_task_id).last_run_at == later


def test_closing_the_leader_frees_the_lock_at_once(make_schedule, scheduler, clock, broker):
    """close() unlocks before hanging up, so a standby's next try takes over without a wait."""
    make_schedule(schedule_type="interval", interval_seconds=60)
    leader, standby = scheduler(), scheduler()
    leader.tick()
    leader.close()
    standby.tick()
    assert standby.is_leader


def test_the_lock_session_uses_the_databases_options(make_schedule, scheduler, clock, broker, monkeypatch):
    """OPTIONS (here a search_path) apply to the lock's session too: with a schema that has no
    tables, claiming fails there and beat steps down instead of claiming in another schema."""
    schedule = make_schedule(schedule_type="interval", interval_seconds=60)
    options = {**connection.settings_dict["OPTIONS"], "options": "-c search_path=no_such_schema"}
    beat = scheduler()
    # Django's own session is open already and keeps its search_path; the lock's opens now.
    with monkeypatch.context() as patch:
        patch.setitem(connection.settings_dict, "OPTIONS", options)
        beat.tick()
    assert beat.is_leader
    clock.at(due_of(beat, schedule))
    beat.tick()
    assert (beat.is_leader, sent(broker)) == (False, [])


def test_pruning_keeps_up_with_300_sends_a_second(make_schedule, scheduler, clock, broker, settings):
    """Records past the retention all go within seconds, however many: at 300 sends/s a minute
    brings 18,000, and one run deleted at most 10,000 a minute before."""
    settings.LUFFY_BEAT_DISPATCH_RETENTION_HOURS = 1
    make_schedule()  # a first load needs django-celery-beat's change stamp (issue 10, item 17)
    per_minute = 300 * 60
    expired_at = clock.now - timedelta(hours=1, seconds=1)
    Dispatch.objects.bulk_create(
        [
            Dispatch(
                periodic_task_name=f"row-{n % 1000}",
                slot=expired_at - timedelta(microseconds=n),
                task_id=f"{n}",
                sent_at=expired_at,
            )
            for n in range(3 * per_minute)
        ]
        + [Dispatch(periodic_task_name="recent", slot=clock.now, task_id="recent", sent_at=clock.now)],
        batch_size=5000,
    )
    beat = scheduler()
    started = time.perf_counter()
    run(beat, clock, clock.now + timedelta(seconds=5), step=1)
    took = time.perf_counter() - started
    assert list(Dispatch.objects.values_list("task_id", flat=True)) == ["recent"]
    print(f"pruned {3 * per_minute} records in {took:.2f} s of ticks: {3 * per_minute / took:,.0f}/s")
