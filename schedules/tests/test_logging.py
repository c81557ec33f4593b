"""What `make run` and production logs show at INFO."""

import logging

import pytest

QUIET_LOGGERS = ["celery.beat", "celery.worker.strategy", "celery.app.trace", "schedules.beat.publisher"]


@pytest.mark.parametrize("logger_name", QUIET_LOGGERS)
def test_heartbeat_lines_stay_out_of_an_info_log(caplog, logger_name):
    """Beat sends the heartbeat every 10 s: at INFO its lines would bury the real sends."""
    logger = logging.getLogger(logger_name)
    with caplog.at_level(logging.INFO):
        logger.info("Scheduler: Sending due task %s (%s)", "luffy-admin:beat-heartbeat", "luffy_admin.beat_heartbeat")
        logger.info(
            "Scheduler: Sending due task %s (%s)", "luffy:web-app:1", "src.services.tasks.fetch_and_process_logs"
        )
    assert [record.getMessage() for record in caplog.records] == [
        "Scheduler: Sending due task luffy:web-app:1 (src.services.tasks.fetch_and_process_logs)"
    ]


def test_heartbeat_lines_show_at_debug(caplog):
    logger = logging.getLogger("celery.beat")
    with caplog.at_level(logging.DEBUG, logger="celery.beat"):
        logger.info("Task %s[%s] received", "luffy_admin.beat_heartbeat", "abc")
    assert [(record.levelname, record.getMessage()) for record in caplog.records] == [
        ("DEBUG", "Task luffy_admin.beat_heartbeat[abc] received")
    ]
