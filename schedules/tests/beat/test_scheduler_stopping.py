"""Stopping beat (SIGTERM, Ctrl-C) never loses a slot it has claimed.

celery beat's own stop handler is installed as ``celery beat`` installs it, with the
scheduler's ``beat_init`` hook on top; the signal is sent to this process at the worst moment,
right after a claim commits and before its send reaches the broker.
"""

import os
import signal

import pytest
from celery.apps.beat import Beat
from celery.beat import Service
from celery.signals import after_task_publish, beat_init
from django_celery_beat.models import IntervalSchedule, PeriodicTask
from psycopg2 import extensions

from luffy_admin.celery import app as celery_app
from schedules.beat.clock import from_us
from schedules.beat.publisher import task_id_for
from schedules.beat.stopping import STOP_SIGNALS
from schedules.models import Dispatch

from .inprocess import QUEUE, sent, wait_for_the_lock_to_go

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def beat_service(scheduler):
    """A beat Service around an in-process scheduler, with celery beat's stop handler installed."""
    before = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    wait_callback = extensions.get_wait_callback()  # beat_init bounds the process's database waits
    beat = scheduler()
    service = Service(app=celery_app)
    service.__dict__["scheduler"] = beat  # what Service.scheduler would build, on the test's clock
    Beat(app=celery_app).install_sync_handler(service)
    beat_init.send(sender=service)
    yield service
    for signum, handler in before.items():
        signal.signal(signum, handler)
    extensions.set_wait_callback(wait_callback)


def first_slot_loaded_by(beat) -> int:
    """A django-celery-beat row every 60 s, loaded by ``beat``; its first slot."""
    interval, _ = IntervalSchedule.objects.get_or_create(every=60, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.create(name="stopping", task="x.y", interval=interval, queue=QUEUE)
    beat.tick()
    (entry,) = beat.entries.values()
    return entry.due


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_right_after_a_claim_still_sends_the_claimed_slot(beat_service, clock, broker, monkeypatch, stop):
    beat = beat_service.scheduler
    slot = first_slot_loaded_by(beat)
    claim = beat.lock.claim

    def claim_then_stop(claims):
        claimed = claim(claims)
        os.kill(os.getpid(), stop)  # handled at the next bytecode, with the claim committed
        return claimed

    monkeypatch.setattr(beat.lock, "claim", claim_then_stop)
    clock.at(from_us(slot))
    with pytest.raises(SystemExit):
        beat.tick()
    beat_service.sync()  # what beat's loop does on its way out

    task_id = task_id_for("stopping", slot)
    assert list(Dispatch.objects.values_list("task_id", flat=True)) == [task_id]
    assert [message["task_id"] for message in sent(broker)] == [task_id]


def test_a_stop_signal_between_ticks_is_handled_at_once(beat_service):
    """Only a claim or a publish holds a signal back: a beat between ticks closes and exits at once."""
    beat_service.scheduler.tick()
    assert beat_service.scheduler.is_leader
    with pytest.raises(SystemExit):
        os.kill(os.getpid(), signal.SIGTERM)
    wait_for_the_lock_to_go()


def test_a_stop_signal_inside_a_publish_does_not_send_the_slot_twice(beat_service, clock, broker):
    """The broker has the message when the signal lands (Celery's ``after_task_publish``): the
    publish is let finish, so the last try on the way out has nothing left to send again."""
    beat = beat_service.scheduler
    slot = first_slot_loaded_by(beat)

    def stop_once_published(**kwargs):
        after_task_publish.disconnect(stop_once_published)
        os.kill(os.getpid(), signal.SIGTERM)

    after_task_publish.connect(stop_once_published, weak=False)
    try:
        clock.at(from_us(slot))
        with pytest.raises(SystemExit):
            beat.tick()
        beat_service.sync()
    finally:
        after_task_publish.disconnect(stop_once_published)
    assert [message["task_id"] for message in sent(broker)] == [task_id_for("stopping", slot)]


def test_the_last_try_on_the_way_out_ends_at_its_deadline(scheduler, clock, broker, monkeypatch, caplog):
    """Whatever the backlog, a stopping beat sends for at most HAND_OVER_SECONDS, then says what it dropped."""
    from schedules.beat import publisher

    beat = scheduler()
    slot = first_slot_loaded_by(beat)
    beat.publisher.drain = lambda now, **kwargs: None  # the send waits, as after a refused try
    clock.at(from_us(slot))
    beat.tick()
    del beat.publisher.drain
    assert beat.publisher.waiting == 1
    monkeypatch.setattr(publisher, "HAND_OVER_SECONDS", 0)
    beat.close()
    assert sent(broker) == []
    assert "stopping with 1 claimed sends the broker did not take" in caplog.text
