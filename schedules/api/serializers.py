"""The API's JSON shapes. Serializers check shape and render; they never write.

Schedule request fields are handed to the write path as the JSON values they are: it checks
types and values (``"900"``, ``1.5`` and ``true`` are not an interval; ``"yes"`` is not a
boolean) with the same messages the admin shows, so those rules live in one place.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus

from drf_spectacular.utils import OpenApiResponse, extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from .. import beat_rows, selectors, timing
from ..models import Dispatch, Service, TaskSchedule

# --- shared ---------------------------------------------------------------------------


class UtcDateTimeField(serializers.DateTimeField):
    """ISO 8601 in UTC with an explicit offset: ``2026-01-31T09:15:00+00:00``."""

    def to_representation(self, value):
        return value.astimezone(UTC).isoformat() if value is not None else None


class StrictCharField(serializers.CharField):
    """A JSON string and nothing else (DRF's CharField turns ``5`` into ``"5"``)."""

    default_error_messages = {"invalid": "Must be a string."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class _PassThrough:
    """Hands the JSON value on untouched; the write path checks its type and value."""

    def to_internal_value(self, data):
        return data


class _RawChar(_PassThrough, serializers.CharField):
    pass


class _RawInteger(_PassThrough, serializers.IntegerField):
    pass


class _RawBoolean(_PassThrough, serializers.BooleanField):
    pass


class _RawChoice(_PassThrough, serializers.ChoiceField):
    pass


JSON_TYPE_NAMES = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean"}


class RequestSerializer(serializers.Serializer):
    """A request body: a JSON object; unknown fields refused, read-only fields ignored."""

    ignored_fields: frozenset[str] = frozenset()

    def run_validation(self, data=serializers.empty):
        if data is None:  # DRF would answer "This field may not be null."
            self._refuse_non_object(data)
        return super().run_validation(data)

    @staticmethod
    def _refuse_non_object(data):
        got = JSON_TYPE_NAMES.get(type(data), "null")
        raise serializers.ValidationError({"non_field_errors": [f"Expected a JSON object, got {got}."]})

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            self._refuse_non_object(data)
        accepted = ", ".join(self.fields)
        unknown = sorted(set(data) - set(self.fields) - self.ignored_fields)
        if unknown:
            raise serializers.ValidationError(
                {name: [f"Unknown field; accepted fields are: {accepted}."] for name in unknown}
            )
        return super().to_internal_value({key: value for key, value in data.items() if key in self.fields})


# The schema's description of this component still names the handler's old home: the layout
# change that moved it leaves schema.yml as it was. Drop the override when the schema may change.
@extend_schema_serializer(description="Every error body (see luffy_admin/exception_handler.py).")
class ErrorSerializer(serializers.Serializer):
    """Every error body (see schedules/api/exception_handler.py)."""

    detail = serializers.CharField(help_text="For people. Example: Schedule not found")
    code = serializers.CharField(help_text="For programs. Example: not_found")
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Validation errors only: messages per field.",
    )


# How the schema documents the error answers most endpoints share.
ERROR_RESPONSES = {
    HTTPStatus.BAD_REQUEST: OpenApiResponse(ErrorSerializer, description="Invalid input; `errors` per field."),
    HTTPStatus.UNAUTHORIZED: OpenApiResponse(ErrorSerializer, description="No or invalid credentials."),
    HTTPStatus.NOT_FOUND: OpenApiResponse(ErrorSerializer, description="`Service not found` / `Schedule not found`."),
}
CONFLICT = {HTTPStatus.CONFLICT: OpenApiResponse(ErrorSerializer, description="An identical schedule exists.")}


# --- schedules ------------------------------------------------------------------------


@dataclass(frozen=True)
class ScheduleRead:
    """A schedule as the API shows it, assembled from our row and its beat rows."""

    id: object
    service_id: str
    task_name: str
    task_path: str
    schedule_type: str
    cron_expression: str | None
    interval_seconds: int | None
    timezone: str
    enabled: bool
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
        current = beat_rows.timing_of(schedule.periodic_task)
        periodic_task = schedule.periodic_task
        return cls(
            id=schedule.pk,
            service_id=schedule.service_id,
            task_name=schedule.task_name,
            task_path=periodic_task.task,
            schedule_type=current.schedule_type,
            cron_expression=current.cron_expression,
            interval_seconds=current.interval_seconds,
            timezone=current.timezone,
            enabled=periodic_task.enabled,
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
        read_only=True, allow_null=True, help_text="Normalised 5-field expression. Example: */15 * * * *"
    )
    interval_seconds = serializers.IntegerField(read_only=True, allow_null=True, help_text="Example: 900")
    timezone = serializers.CharField(read_only=True, help_text="IANA time zone of a cron schedule. Example: UTC")
    enabled = serializers.BooleanField(read_only=True)
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


SCHEDULE_READ_ONLY_FIELDS = frozenset(ScheduleSerializer._declared_fields) - {
    "task_name",
    "schedule_type",
    "cron_expression",
    "interval_seconds",
    "timezone",
    "enabled",
}


class ScheduleCreateSerializer(RequestSerializer):
    ignored_fields = SCHEDULE_READ_ONLY_FIELDS

    task_name = _RawChar(help_text="Catalogue task: see /tasks. Example: fetch_logs")
    schedule_type = _RawChoice(choices=timing.SCHEDULE_TYPES, required=False, help_text="Default: cron")
    cron_expression = _RawChar(
        required=False,
        allow_null=True,
        allow_blank=True,
        help_text="5 fields or a macro (@hourly, @daily, ...); required for cron. Example: */15 * * * *",
    )
    interval_seconds = _RawInteger(
        required=False,
        allow_null=True,
        help_text="Whole seconds within the task's bounds; required for interval. Example: 900",
    )
    timezone = _RawChar(required=False, help_text="IANA name for a cron schedule; default UTC. Example: Europe/Paris")
    enabled = _RawBoolean(required=False, help_text="Default: true")


class ScheduleUpdateSerializer(ScheduleCreateSerializer):
    """PUT or PATCH body: every field optional; only the fields given change (as the seed's PUT)."""

    task_name = _RawChar(required=False, help_text="Catalogue task: see /tasks. Example: fetch_logs")


class ToggleSerializer(RequestSerializer):
    enabled = _RawBoolean(required=False, help_text="Or ?enabled=true|false in the query string.")


class ToggleResponseSerializer(serializers.Serializer):
    message = serializers.CharField(help_text="Example: Schedule disabled successfully")
    schedule = ScheduleSerializer()


class MessageSerializer(serializers.Serializer):
    message = serializers.CharField(help_text="Example: Schedule deleted successfully")


class RunResponseSerializer(serializers.Serializer):
    task_id = serializers.CharField(help_text="Celery task id of the message sent.")


class AuditEventSerializer(serializers.Serializer):
    at = UtcDateTimeField()
    actor = serializers.CharField(help_text="Example: api-key:fastapi, user:alice")
    action = serializers.CharField(help_text="create, update, toggle, delete or run_now")
    before = serializers.JSONField(allow_null=True)
    after = serializers.JSONField(allow_null=True)


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


# --- services -------------------------------------------------------------------------


class TaskOutcomeSerializer(OutcomeSerializer):
    failing = serializers.BooleanField(help_text="Whether one of the task's schedules is failing.")


class ServiceSerializer(serializers.ModelSerializer):
    schedule_count = serializers.IntegerField(read_only=True)
    created_at = UtcDateTimeField(read_only=True)
    updated_at = UtcDateTimeField(read_only=True)

    class Meta:
        model = Service
        fields = ["id", "name", "description", "schedule_count", "created_at", "updated_at"]
        read_only_fields = fields


class ServiceDetailSerializer(ServiceSerializer):
    """``GET /services/{id}``: the service with the last outcome of each task it schedules."""

    last_outcomes = serializers.SerializerMethodField(
        help_text="Per task the service schedules: its newest run's state and time, and whether one of its "
        "schedules is failing; null for a task that has not run yet."
    )

    class Meta(ServiceSerializer.Meta):
        fields = [*ServiceSerializer.Meta.fields, "last_outcomes"]
        read_only_fields = fields

    @extend_schema_field(serializers.DictField(child=TaskOutcomeSerializer(allow_null=True)))
    def get_last_outcomes(self, service):
        return {
            task_name: None if outcome is None else TaskOutcomeSerializer(outcome).data
            for task_name, outcome in selectors.service_last_outcomes(service).items()
        }


SERVICE_READ_ONLY_FIELDS = frozenset({"schedule_count", "created_at", "updated_at"})


class ServiceCreateSerializer(RequestSerializer):
    ignored_fields = SERVICE_READ_ONLY_FIELDS

    id = StrictCharField(help_text="Slug: lowercase letters, digits, '-' and '_'. Example: web-app")
    name = StrictCharField(help_text="Example: Web application")
    description = StrictCharField(required=False, allow_blank=True, help_text="Example: Customer-facing storefront")


class ServiceUpdateSerializer(RequestSerializer):
    """PUT body (name required) or PATCH body (all optional); the id comes from the URL."""

    ignored_fields = SERVICE_READ_ONLY_FIELDS | {"id"}

    name = StrictCharField(help_text="Example: Web application")
    description = StrictCharField(required=False, allow_blank=True, help_text="Example: Customer-facing storefront")


# --- catalogue, cron preview, health ----------------------------------------------------


class CatalogueTaskSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="Example: fetch_logs")
    task_path = serializers.CharField(source="task", help_text="Example: src.services.tasks.fetch_and_process_logs")
    queue = serializers.CharField(help_text="Example: default")
    description = serializers.CharField()
    min_interval_seconds = serializers.IntegerField(help_text="Example: 60")
    max_interval_seconds = serializers.IntegerField(help_text="Example: 86400")


class CronPreviewSerializer(serializers.Serializer):
    valid = serializers.BooleanField()
    expression = serializers.CharField(help_text="Normalised when valid, as given otherwise.")
    description = serializers.CharField(allow_null=True, help_text="Example: Every 15 minutes")
    next_runs = serializers.ListField(child=UtcDateTimeField())
    error = serializers.CharField(allow_null=True, help_text="Why the expression is refused, when it is.")


class HealthSerializer(serializers.Serializer):
    status = serializers.CharField(help_text="ok, degraded (something but the database is down) or down")
    database = serializers.CharField(help_text="ok or down")
    broker = serializers.CharField(help_text="ok or down")
    beat = serializers.CharField(help_text="ok, down or unknown")
    monitor = serializers.CharField(help_text="The run monitor (manage.py monitor_runs): ok, stale or unknown")
