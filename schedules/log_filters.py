"""Logging filters: beat's heartbeat is plumbing, so its lines stay out of an INFO log.

Beat sends the heartbeat every few seconds and a worker runs it; at INFO those lines would
bury the sends an operator looks for. Attached in settings.LOGGING to the loggers that write
them (Celery's beat, worker and trace loggers, and the fleet scheduler's), the filter turns
the heartbeat's records into DEBUG records and lets them through only where DEBUG is on.
"""

import logging

HEARTBEAT_TASK = "luffy_admin.beat_heartbeat"


class HeartbeatAtDebug(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or HEARTBEAT_TASK not in record.getMessage():
            return True
        record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
