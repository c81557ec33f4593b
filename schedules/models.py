"""Services, their schedules and the audit trail.

Timing and run state are not stored here: each TaskSchedule owns one django-celery-beat
PeriodicTask, which beat reads. Only ``schedules/services/`` writes these models.
"""

import uuid

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django_celery_beat.models import PeriodicTask
from rest_framework_api_key.models import APIKey

from . import messages
from .validators import multiline_text, plain_text

SERVICE_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}\Z"
SCHEDULE_KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}\Z"
service_id_validator = RegexValidator(SERVICE_ID_PATTERN, message=messages.SERVICE_ID)
schedule_key_validator = RegexValidator(SCHEDULE_KEY_PATTERN, message=messages.SCHEDULE_KEY)


def is_service_id(value) -> bool:
    """Whether ``value`` is a well-formed service id (it may still name no service)."""
    return isinstance(value, str) and service_id_validator.regex.match(value) is not None


class Service(models.Model):
    id = models.CharField(
        primary_key=True,
        max_length=63,
        validators=[service_id_validator],
        verbose_name="service id",
        help_text="Slug the luffy platform knows the service by. Example: web-app",
    )
    name = models.CharField(
        max_length=200,
        validators=[plain_text],
        verbose_name="name",
        help_text="Human name of the service. Example: Web application",
    )
    description = models.TextField(
        blank=True,
        default="",
        validators=[multiline_text],
        verbose_name="description",
        help_text="What the service is, for operators. Example: Customer-facing storefront",
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name="created at")
    updated_at = models.DateTimeField(auto_now=True, verbose_name="updated at")

    class Meta:
        ordering = ["id"]
        verbose_name = "service"
        verbose_name_plural = "services"

    def __str__(self):
        return self.id


class TaskSchedule(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    service = models.ForeignKey(
        Service,
        on_delete=models.CASCADE,
        related_name="schedules",
        verbose_name="service",
        help_text="The service the task runs for; beat sends its id as the task's argument.",
    )
    task_name = models.CharField(
        max_length=100,
        verbose_name="task",
        help_text="Catalogue task to run. Example: fetch_logs",
    )
    # PROTECT: deleting a shared CrontabSchedule or IntervalSchedule in django-celery-beat's
    # admin would CASCADE to this PeriodicTask and silently drop the service's schedule.
    # Only services.schedule_delete removes the PeriodicTask, after this row.
    periodic_task = models.OneToOneField(
        PeriodicTask,
        on_delete=models.PROTECT,
        related_name="luffy_schedule",
        verbose_name="beat entry",
        help_text="The django-celery-beat row beat reads; holds timing, enabled and run state.",
    )
    # Null, not "", is "no key": the unique constraint below then leaves keyless schedules alone.
    key = models.CharField(  # noqa: DJ001
        max_length=100,
        null=True,
        blank=True,
        validators=[schedule_key_validator],
        verbose_name="key",
        help_text="Optional name the caller gives the schedule, unique within its service; a bulk replace "
        "matches on it. Example: nightly-logs",
    )
    # Beat runs the resolved crontab in the PeriodicTask's row; this keeps what the author
    # wrote, so an H expression reads (and re-resolves on a task change) as written.
    cron_expression_written = models.CharField(
        max_length=120,
        blank=True,
        default="",
        verbose_name="cron expression as written",
        help_text="The expression with its H fields, when it has any; empty otherwise. Example: H/15 * * * *",
    )
    jitter_seconds = models.PositiveIntegerField(
        null=True,
        blank=True,
        verbose_name="jitter (seconds)",
        help_text="Interval schedules: the most its slots are shifted, by a stable per-schedule "
        "offset; at most a tenth of the interval. Example: 60",
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name="created at")
    updated_at = models.DateTimeField(auto_now=True, verbose_name="updated at")

    class Meta:
        ordering = ["service_id", "task_name", "created_at"]
        verbose_name = "schedule"
        verbose_name_plural = "schedules"
        indexes = [models.Index(fields=["task_name"])]
        constraints = [
            models.UniqueConstraint(
                fields=["service", "key"], condition=models.Q(key__isnull=False), name="schedules_one_key_per_service"
            )
        ]
        # Sending a task now reaches luffy's workers at once: its own right, apart from "change".
        permissions = [("run_schedule", "Can run a schedule now")]

    def __str__(self):
        return f"{self.service_id} / {self.task_name}"


class AuditEvent(models.Model):
    """One change made through the write path: who, when, what, before and after."""

    class Action(models.TextChoices):
        CREATE = "create", "create"
        UPDATE = "update", "update"
        TOGGLE = "toggle", "toggle"
        DELETE = "delete", "delete"
        RUN_NOW = "run_now", "run now"

    class Target(models.TextChoices):
        SERVICE = "service", "service"
        SCHEDULE = "schedule", "schedule"

    at = models.DateTimeField(auto_now_add=True, db_index=True, verbose_name="when")
    actor = models.CharField(
        max_length=200,
        verbose_name="who",
        help_text="User or API key that made the change. Example: user:alice, api-key:fastapi",
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name="user",
    )
    action = models.CharField(max_length=20, choices=Action.choices, verbose_name="action")
    target = models.CharField(max_length=20, choices=Target.choices, verbose_name="target")
    # Plain values, not foreign keys: the trail outlives what it describes.
    service_id = models.CharField(max_length=63, db_index=True, verbose_name="service id")
    schedule_id = models.UUIDField(null=True, blank=True, db_index=True, verbose_name="schedule id")
    before = models.JSONField(null=True, blank=True, verbose_name="before")
    after = models.JSONField(null=True, blank=True, verbose_name="after")

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = "audit event"
        verbose_name_plural = "audit events"

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor} {self.action} {self.target}"


class BeatHeartbeat(models.Model):
    """The last heartbeat a worker ran: beat sent it, the broker carried it, a worker ran it.

    One row, written by the ``luffy_admin.beat_heartbeat`` task; ``/health`` reads its age.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    received_at = models.DateTimeField(
        verbose_name="received at",
        help_text="When a worker last ran beat's heartbeat task. Example: 2026-01-31T12:00:05Z",
    )
    worker = models.CharField(
        max_length=200,
        verbose_name="worker",
        help_text="Celery host name of the worker that ran it. Example: demo@web-1",
    )

    class Meta:
        verbose_name = "beat heartbeat"
        verbose_name_plural = "beat heartbeat"

    def __str__(self):
        return f"{self.received_at:%Y-%m-%d %H:%M:%S} by {self.worker}"


class Dispatch(models.Model):
    """One run: a slot beat sent (or a run-now), and then what the workers did with it.

    The send part is written by whoever sends: the fleet scheduler (``schedules/beat/``)
    claims the row with raw SQL before it publishes, so every column past the first four has a
    database default or is nullable; under ``-S django`` the beat process records it from
    Celery's publish signal (``schedules/run_signals.py``); run-now from
    ``services.schedule_run_now``. The outcome part is written by the event monitor
    (``manage.py monitor_runs``) through ``services.run_events_apply``. The unique (name, slot)
    pair is what keeps a slot single across a failover. Plain values, not a foreign key: the
    record outlives a deleted schedule until pruned.
    """

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", "schedule"
        RUN_NOW = "run_now", "run now"

    class State(models.TextChoices):
        SENT = "sent", "sent"
        RECEIVED = "received", "received"
        STARTED = "started", "started"
        SUCCEEDED = "succeeded", "succeeded"
        FAILED = "failed", "failed"
        RETRIED = "retried", "retried"
        REVOKED = "revoked", "revoked"
        EXPIRED = "expired", "expired"
        LOST = "lost", "lost"

    ERROR_MESSAGE_MAX = 1000

    periodic_task_name = models.CharField(
        max_length=200,
        verbose_name="beat entry",
        help_text="Name of the django-celery-beat entry sent. Example: luffy:web-app:5b0e...",
    )
    slot = models.DateTimeField(
        verbose_name="slot",
        help_text="The run time the message stands for. Example: 2026-01-01T10:15:00Z",
    )
    task_id = models.CharField(
        max_length=36,
        db_index=True,
        verbose_name="task id",
        help_text="Celery task id of the message. Example: 0f8fad5b-d9cb-469f-a165-70867728950e",
    )
    sent_at = models.DateTimeField(
        db_index=True,
        verbose_name="sent at",
        help_text="When beat claimed and sent the slot. Example: 2026-01-01T10:15:00.012Z",
    )
    trigger = models.CharField(
        max_length=10,
        choices=Trigger.choices,
        db_default=Trigger.SCHEDULE,
        verbose_name="trigger",
        help_text="What sent it: beat's schedule or a run-now. Example: schedule",
    )
    state = models.CharField(
        max_length=10,
        choices=State.choices,
        db_default=State.SENT,
        verbose_name="state",
        help_text="The furthest state the workers reported. Example: succeeded",
    )
    received_at = models.DateTimeField(
        null=True, blank=True, verbose_name="received at", help_text="When a worker took the message."
    )
    started_at = models.DateTimeField(
        null=True, blank=True, verbose_name="started at", help_text="When a worker started the task."
    )
    finished_at = models.DateTimeField(
        null=True, blank=True, verbose_name="finished at", help_text="When it succeeded, failed or was revoked."
    )
    runtime_seconds = models.FloatField(
        null=True, blank=True, verbose_name="runtime (s)", help_text="How long the task ran. Example: 12.5"
    )
    worker = models.CharField(
        max_length=200,
        db_default="",
        blank=True,
        verbose_name="worker",
        help_text="Celery host name of the worker. Example: celery@worker-1",
    )
    retries = models.PositiveIntegerField(
        db_default=0, verbose_name="retries", help_text="How many times the task was retried. Example: 0"
    )
    error_type = models.CharField(
        max_length=200,
        db_default="",
        blank=True,
        verbose_name="error type",
        help_text="Exception class of a failure. Example: TimeoutError",
    )
    error_message = models.CharField(
        max_length=ERROR_MESSAGE_MAX,
        db_default="",
        blank=True,
        verbose_name="error message",
        help_text="The exception's message, cut to 1,000 characters. Example: upstream timed out",
    )

    class Meta:
        ordering = ["-slot"]
        verbose_name = "run"
        verbose_name_plural = "runs"
        constraints = [
            models.UniqueConstraint(fields=["periodic_task_name", "slot"], name="schedules_dispatch_one_per_slot")
        ]
        indexes = [
            # A schedule's last finished run (its `failing` flag).
            models.Index(fields=["periodic_task_name", "finished_at"], name="schedules_run_finished"),
            # The monitor's "sent long ago and never received" sweep.
            models.Index(fields=["state", "sent_at"], name="schedules_run_state_sent"),
        ]

    def __str__(self):
        return f"{self.periodic_task_name} @ {self.slot:%Y-%m-%d %H:%M:%S}"


class IdempotencyRecord(models.Model):
    """The first answer to a POST sent with an ``Idempotency-Key``, replayed to its retries.

    Keys are the caller's, so they are scoped by caller (``actor``). ``fingerprint`` is a hash of
    the method, path and body: the same key with another request is refused. Kept
    ``IDEMPOTENCY_TTL`` (24 h) and pruned by the write path as new ones are stored.
    """

    actor = models.CharField(max_length=200, verbose_name="who", help_text="Example: api-key:fastapi")
    key = models.CharField(
        max_length=255,
        verbose_name="idempotency key",
        help_text="The caller's Idempotency-Key header. Example: 1f0c6c1e-4d4b-4c5e-9d6f-1c2b3a4d5e6f",
    )
    fingerprint = models.CharField(
        max_length=64, verbose_name="request fingerprint", help_text="SHA-256 of method, path and body."
    )
    status = models.PositiveSmallIntegerField(verbose_name="status", help_text="HTTP status answered. Example: 201")
    response = models.JSONField(
        verbose_name="response body", help_text='The JSON answered. Example: {"task_id": "..."}'
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True, verbose_name="created at")

    class Meta:
        verbose_name = "idempotency record"
        verbose_name_plural = "idempotency records"
        constraints = [models.UniqueConstraint(fields=["actor", "key"], name="schedules_idempotency_one_per_key")]

    def __str__(self):
        return f"{self.actor} {self.key}"


class MonitorHeartbeat(models.Model):
    """The run monitor's sign of life (one row): ``/health`` and ``/metrics`` read its age and lag."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    seen_at = models.DateTimeField(
        verbose_name="seen at",
        help_text="When the monitor last wrote to the database while listening. Example: 2026-01-31T12:00:05Z",
    )
    lag_seconds = models.FloatField(
        default=0,
        verbose_name="lag (s)",
        help_text="Age of the newest event when its batch was written. Example: 0.4",
    )

    class Meta:
        verbose_name = "run monitor heartbeat"
        verbose_name_plural = "run monitor heartbeat"

    def __str__(self):
        return f"{self.seen_at:%Y-%m-%d %H:%M:%S}"


class ApiKeyScope(models.Model):
    """What one API key may do: ``read``, ``write`` (implies read) and ``run`` (send a task now).

    A row beside djangorestframework-api-key's own ``APIKey`` (one-to-one) rather than a
    subclass of ``AbstractAPIKey``: the library's table, manager and admin stay as they are
    and existing keys need no copying. A key without a row may do nothing.
    """

    READ, WRITE, RUN = "read", "write", "run"
    NAMES = (READ, WRITE, RUN)

    api_key = models.OneToOneField(
        APIKey,
        primary_key=True,
        on_delete=models.CASCADE,
        related_name="scope",
        verbose_name="API key",
    )
    read = models.BooleanField(default=True, verbose_name="read", help_text="GET anything the API shows. Example: true")
    write = models.BooleanField(
        default=False,
        verbose_name="write",
        help_text="Create, change, toggle and delete services and schedules; implies read. Example: true",
    )
    run = models.BooleanField(
        default=False,
        verbose_name="run",
        help_text="Send a schedule's task now (POST /schedules/{id}/run). Example: false",
    )

    class Meta:
        verbose_name = "API key scope"
        verbose_name_plural = "API key scopes"

    def __str__(self):
        return ",".join(self.names()) or "none"

    def names(self) -> list[str]:
        """The scopes granted, implied ones included, in a fixed order."""
        return [name for name in self.NAMES if self.allows(name)]

    def allows(self, scope: str) -> bool:
        if scope == self.READ:
            return self.read or self.write
        return getattr(self, scope)
