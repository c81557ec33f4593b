"""Schedules' shapes: reads, create/update bodies, the bulk replace, toggle, runs and history."""

from dataclasses import dataclass
from datetime import datetime

from drf_spectacular.utils import (
    PolymorphicProxySerializer,
    extend_schema_field,
)
from rest_framework import serializers

from ... import beat_rows, selectors, services, timing
from ...models import Dispatch, TaskSchedule
from .base import RawBoolean, RawChar, RawChoice, RawInteger, RequestSerializer, UtcDateTimeField


@dataclass(frozen=True)
class ScheduleRead:
    """A schedule as the API shows it, assembled from our row and its beat rows."""

    id: object
    service_id: str
    task_name: str
    task_path: str
    schedule_type: str
    cron_expression: str | None
    resolved_cron_expression: str | None
    interval_seconds: int | None
    jitter_seconds: int | None
    timezone: str
    enabled: bool
    key: str | None
    last_run: datetime | None
    next_run: datetime | None
    description: str
    total_run_count: int
    created_at: datetime
    updated_at: datetime
    last_outcome: dict | None
    failing: bool

    @classmethod
    def of(cls, schedule: TaskSchedule) -> "ScheduleRead":
        current = beat_rows.schedule_timing(schedule)
        periodic_task = schedule.periodic_task
        return cls(
            id=schedule.pk,
            service_id=schedule.service_id,
            task_name=schedule.task_name,
            task_path=periodic_task.task,
            schedule_type=current.schedule_type,
            cron_expression=current.shown_cron_expression,
            resolved_cron_expression=current.cron_expression,
            interval_seconds=current.interval_seconds,
            jitter_seconds=current.jitter_seconds,
            timezone=current.timezone,
            enabled=periodic_task.enabled,
            key=schedule.key,
            last_run=periodic_task.last_run_at,
            next_run=selectors.schedule_next_run(schedule),
            description=current.description,
            total_run_count=periodic_task.total_run_count,
            created_at=schedule.created_at,
            updated_at=schedule.updated_at,
            # Annotated by selectors.with_run_outcomes.
            last_outcome=(
                {"state": schedule.last_run_state, "at": schedule.last_run_state_at}
                if schedule.last_run_state
                else None
            ),
            failing=schedule.last_finished_state == Dispatch.State.FAILED,
        )


class OutcomeSerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=Dispatch.State.choices, help_text="The run's state. Example: failed")
    at = UtcDateTimeField(help_text="When the run reached it (finished, started, received or sent).")


class ScheduleSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    service_id = serializers.CharField(read_only=True, help_text="Example: web-app")
    task_name = serializers.CharField(read_only=True, help_text="Catalogue task. Example: fetch_logs")
    task_path = serializers.CharField(
        read_only=True,
        help_text="Celery task name beat sends. Example: src.services.tasks.fetch_and_process_logs",
    )
    schedule_type = serializers.ChoiceField(choices=timing.SCHEDULE_TYPES, read_only=True)
    cron_expression = serializers.CharField(
        read_only=True,
        allow_null=True,
        help_text="Normalised 5-field expression as written, H fields included. Example: H/15 * * * *",
    )
    resolved_cron_expression = serializers.CharField(
        read_only=True,
        allow_null=True,
        help_text="The plain crontab beat runs: H fields resolved for this service and task. "
        "Example: 7,22,37,52 * * * *",
    )
    interval_seconds = serializers.IntegerField(read_only=True, allow_null=True, help_text="Example: 900")
    jitter_seconds = serializers.IntegerField(
        read_only=True,
        allow_null=True,
        help_text="Interval only: slots shift by a stable offset of 0 to this many seconds. Example: 60",
    )
    timezone = serializers.CharField(read_only=True, help_text="IANA time zone of a cron schedule. Example: UTC")
    enabled = serializers.BooleanField(read_only=True)
    key = serializers.CharField(
        read_only=True, allow_null=True, help_text="The caller's name for it, unique in the service. Example: nightly"
    )
    last_run = UtcDateTimeField(read_only=True, allow_null=True, help_text="When beat last sent it.")
    next_run = UtcDateTimeField(
        read_only=True, allow_null=True, help_text="When beat will send it next; null while disabled."
    )
    description = serializers.CharField(read_only=True, help_text="The timing in words. Example: Every 15 minutes")
    total_run_count = serializers.IntegerField(read_only=True)
    created_at = UtcDateTimeField(read_only=True)
    updated_at = UtcDateTimeField(read_only=True)
    last_outcome = OutcomeSerializer(
        read_only=True, allow_null=True, help_text="The newest run's state and when; null before the first run."
    )
    failing = serializers.BooleanField(read_only=True, help_text="Whether the newest finished run failed.")

    def to_representation(self, instance):
        return super().to_representation(ScheduleRead.of(instance))


SCHEDULE_READ_ONLY_FIELDS = frozenset(ScheduleSerializer._declared_fields) - set(services.SCHEDULE_FIELDS)


class ScheduleCreateSerializer(RequestSerializer):
    ignored_fields = SCHEDULE_READ_ONLY_FIELDS

    task_name = RawChar(help_text="Catalogue task: see /tasks. Example: fetch_logs")
    schedule_type = RawChoice(choices=timing.SCHEDULE_TYPES, required=False, help_text="Default: cron")
    cron_expression = RawChar(
        required=False,
        allow_null=True,
        allow_blank=True,
        help_text="5 fields or a macro (@hourly, @daily, ...); H, H/15, H(0-29), H(0-29)/10 pick stable "
        "values for the service and task. Required for cron unless the task has a default. Example: H/15 * * * *",
    )
    interval_seconds = RawInteger(
        required=False,
        allow_null=True,
        help_text="Whole seconds within the task's bounds; required for interval. Example: 900",
    )
    jitter_seconds = RawInteger(
        required=False,
        allow_null=True,
        help_text="Interval only, optional: shift the slots by a stable offset of up to this many "
        "seconds, at most a tenth of the interval. Example: 60",
    )
    timezone = RawChar(required=False, help_text="IANA name for a cron schedule; default UTC. Example: Europe/Paris")
    enabled = RawBoolean(required=False, help_text="Default: true")
    key = RawChar(
        required=False,
        allow_null=True,
        help_text="Optional name, unique in the service, that a bulk replace matches on; letters, digits, "
        "'.', '-', '_'. Example: nightly-logs",
    )


class ScheduleUpdateSerializer(ScheduleCreateSerializer):
    """PUT or PATCH body: every field optional; only the fields given change (as the seed's PUT)."""

    task_name = RawChar(required=False, help_text="Catalogue task: see /tasks. Example: fetch_logs")
    schedule_type = RawChoice(
        choices=timing.SCHEDULE_TYPES,
        required=False,
        help_text="Missing: unchanged. Switching type clears the other type's field.",
    )
    timezone = RawChar(required=False, help_text="IANA name for a cron schedule; missing: unchanged. Example: UTC")
    enabled = RawBoolean(required=False, help_text="Missing: unchanged.")
    key = RawChar(required=False, allow_null=True, help_text="Missing: unchanged; null removes it. Example: nightly")


class ScheduleStateSerializer(serializers.Serializer):
    """What a caller can set on a schedule: the audit trail's before/after, a replace's changes."""

    task_name = serializers.CharField(help_text="Example: fetch_logs")
    schedule_type = serializers.ChoiceField(choices=timing.SCHEDULE_TYPES)
    cron_expression = serializers.CharField(allow_null=True, help_text="Example: */15 * * * *")
    interval_seconds = serializers.IntegerField(allow_null=True, help_text="Example: 900")
    jitter_seconds = serializers.IntegerField(
        allow_null=True, required=False, help_text="Absent from events recorded before jitter existed. Example: 60"
    )
    timezone = serializers.CharField(help_text="Example: UTC")
    enabled = serializers.BooleanField()
    key = serializers.CharField(
        allow_null=True, required=False, help_text="Absent from events recorded before keys existed."
    )


class ScheduleChangeSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=services.CHANGE_ACTIONS)
    schedule_id = serializers.UUIDField(
        allow_null=True, help_text="Null for a schedule a dry run would create (nothing was stored)."
    )
    before = ScheduleStateSerializer(allow_null=True, help_text="Null when created.")
    after = ScheduleStateSerializer(allow_null=True, help_text="Null when deleted.")


class ScheduleSetSummarySerializer(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    deleted = serializers.IntegerField()
    unchanged = serializers.IntegerField()


class ScheduleSetSerializer(serializers.Serializer):
    """The answer to a bulk replace: what changed, and the service's schedules after it."""

    dry_run = serializers.BooleanField(help_text="True: nothing was written; `schedules` is the set as it stands.")
    summary = ScheduleSetSummarySerializer()
    changes = ScheduleChangeSerializer(many=True)
    schedules = ScheduleSerializer(many=True)


class ToggleSerializer(RequestSerializer):
    enabled = RawBoolean(required=False, help_text="Or ?enabled=true|false in the query string.")


class ToggleResponseSerializer(serializers.Serializer):
    message = serializers.CharField(help_text="Example: Schedule disabled successfully")
    schedule = ScheduleSerializer()


class MessageSerializer(serializers.Serializer):
    message = serializers.CharField(help_text="Example: Schedule deleted successfully")


class RunResponseSerializer(serializers.Serializer):
    task_id = serializers.CharField(help_text="Celery task id of the message sent.")


class RunRecordSerializer(serializers.Serializer):
    """A run-now event's ``after``: the message sent (or, with ``sent: false``, not sent)."""

    task_id = serializers.CharField(help_text="Celery task id. Example: 6f1c2d3e-...")
    sent = serializers.BooleanField(required=False, help_text="false when the broker refused it after the fact.")
    error = serializers.CharField(required=False, help_text="Why it was not sent.")


@extend_schema_field(
    PolymorphicProxySerializer(
        component_name="AuditState",
        serializers=[ScheduleStateSerializer, RunRecordSerializer],
        resource_type_field_name=None,
        many=False,
    )
)
class AuditStateField(serializers.JSONField):
    """A schedule's state, or for a run-now's ``after`` the message sent."""


class AuditEventSerializer(serializers.Serializer):
    at = UtcDateTimeField()
    actor = serializers.CharField(help_text="Example: api-key:fastapi, user:alice")
    action = serializers.ChoiceField(choices=["create", "update", "toggle", "delete", "run_now"])
    before = AuditStateField(allow_null=True, help_text="Null for a create.")
    after = AuditStateField(allow_null=True, help_text="Null for a delete.")


class DispatchSerializer(serializers.Serializer):
    slot = UtcDateTimeField(help_text="The run time the message stands for.")
    task_id = serializers.CharField(help_text="Celery task id of the message beat sent.")
    sent_at = UtcDateTimeField(help_text="When beat sent it.")


class RunErrorSerializer(serializers.Serializer):
    type = serializers.CharField(help_text="Exception class. Example: TimeoutError")
    message = serializers.CharField(help_text="Its message, up to 1,000 characters. Example: upstream timed out")


class RunSerializer(serializers.Serializer):
    task_id = serializers.CharField(help_text="Celery task id. Example: 0f8fad5b-d9cb-469f-a165-70867728950e")
    trigger = serializers.ChoiceField(choices=Dispatch.Trigger.choices, help_text="schedule or run_now")
    slot = UtcDateTimeField(help_text="The run time the message stands for.")
    sent_at = UtcDateTimeField(help_text="When it was sent.")
    state = serializers.ChoiceField(choices=Dispatch.State.choices, help_text="Example: succeeded")
    received_at = UtcDateTimeField(allow_null=True, help_text="When a worker took it.")
    started_at = UtcDateTimeField(allow_null=True, help_text="When a worker started it.")
    finished_at = UtcDateTimeField(allow_null=True, help_text="When it succeeded, failed, was revoked or expired.")
    runtime_seconds = serializers.FloatField(allow_null=True, help_text="Example: 12.5")
    worker = serializers.CharField(allow_null=True, help_text="Celery host name. Example: celery@worker-1")
    retries = serializers.IntegerField(help_text="Example: 0")
    error = serializers.SerializerMethodField(help_text="A failure's (or last retry's) exception; else null.")

    def to_representation(self, instance):
        body = super().to_representation(instance)
        body["worker"] = instance.worker or None  # the record keeps "" until a worker reports
        return body

    @extend_schema_field(RunErrorSerializer(allow_null=True))
    def get_error(self, run):
        return {"type": run.error_type, "message": run.error_message} if run.error_type or run.error_message else None
