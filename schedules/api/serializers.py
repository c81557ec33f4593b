"""The API's JSON shapes. Serializers check shape and render; they never write.

Schedule request fields are handed to the write path as the JSON values they are: it checks
types and values (``"900"``, ``1.5`` and ``true`` are not an interval; ``"yes"`` is not a
boolean) with the same messages the admin shows, so those rules live in one place.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus

from drf_spectacular.utils import (
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema_field,
    extend_schema_serializer,
)
from rest_framework import serializers

from .. import beat_rows, selectors, services, timing
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
        help_text="Validation errors only: messages per field; a bulk replace names an item's field "
        "`[2].cron_expression`.",
    )
    existing_id = serializers.CharField(
        required=False,
        help_text="Conflicts only: the id of the schedule (or service) the request would duplicate. "
        "Example: 0d5f7b7e-8a55-4a43-9d2a-3c1e0b6f2a10",
    )


# What each error status means, as the schema documents it; `errors_for` picks an operation's.
ERROR_DESCRIPTIONS = {
    HTTPStatus.BAD_REQUEST: "Invalid input; `errors` per field.",
    HTTPStatus.UNAUTHORIZED: "No or invalid credentials; `detail` names the accepted schemes when another was sent.",
    HTTPStatus.FORBIDDEN: "Logged in, but not staff.",
    HTTPStatus.NOT_FOUND: "`Service not found` / `Schedule not found`.",
    HTTPStatus.CONFLICT: "It would duplicate a schedule or service (`existing_id` names it), or exceed the "
    "per-service schedule cap.",
    HTTPStatus.PRECONDITION_FAILED: "`If-Match` does not name the current version (ETag): someone changed it since "
    "you read it. The answer's `ETag` header is the current one.",
    HTTPStatus.UNPROCESSABLE_ENTITY: "The `Idempotency-Key` was already used with a different request.",
    HTTPStatus.SERVICE_UNAVAILABLE: "The task broker is unreachable; nothing was sent.",
}


def errors_for(*statuses: HTTPStatus) -> dict:
    """The error answers an operation can give, for ``extend_schema(responses=...)``."""
    return {status: OpenApiResponse(ErrorSerializer, description=ERROR_DESCRIPTIONS[status]) for status in statuses}


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


SCHEDULE_READ_ONLY_FIELDS = frozenset(ScheduleSerializer._declared_fields) - {
    "task_name",
    "schedule_type",
    "cron_expression",
    "interval_seconds",
    "jitter_seconds",
    "timezone",
    "enabled",
    "key",
}


class ScheduleCreateSerializer(RequestSerializer):
    ignored_fields = SCHEDULE_READ_ONLY_FIELDS

    task_name = _RawChar(help_text="Catalogue task: see /tasks. Example: fetch_logs")
    schedule_type = _RawChoice(choices=timing.SCHEDULE_TYPES, required=False, help_text="Default: cron")
    cron_expression = _RawChar(
        required=False,
        allow_null=True,
        allow_blank=True,
        help_text="5 fields or a macro (@hourly, @daily, ...); H, H/15, H(0-29), H(0-29)/10 pick stable "
        "values for the service and task. Required for cron unless the task has a default. Example: H/15 * * * *",
    )
    interval_seconds = _RawInteger(
        required=False,
        allow_null=True,
        help_text="Whole seconds within the task's bounds; required for interval. Example: 900",
    )
    jitter_seconds = _RawInteger(
        required=False,
        allow_null=True,
        help_text="Interval only, optional: shift the slots by a stable offset of up to this many "
        "seconds, at most a tenth of the interval. Example: 60",
    )
    timezone = _RawChar(required=False, help_text="IANA name for a cron schedule; default UTC. Example: Europe/Paris")
    enabled = _RawBoolean(required=False, help_text="Default: true")
    key = _RawChar(
        required=False,
        allow_null=True,
        help_text="Optional name, unique in the service, that a bulk replace matches on; letters, digits, "
        "'.', '-', '_'. Example: nightly-logs",
    )


class ScheduleUpdateSerializer(ScheduleCreateSerializer):
    """PUT or PATCH body: every field optional; only the fields given change (as the seed's PUT)."""

    task_name = _RawChar(required=False, help_text="Catalogue task: see /tasks. Example: fetch_logs")
    schedule_type = _RawChoice(
        choices=timing.SCHEDULE_TYPES,
        required=False,
        help_text="Missing: unchanged. Switching type clears the other type's field.",
    )
    timezone = _RawChar(required=False, help_text="IANA name for a cron schedule; missing: unchanged. Example: UTC")
    enabled = _RawBoolean(required=False, help_text="Missing: unchanged.")
    key = _RawChar(required=False, allow_null=True, help_text="Missing: unchanged; null removes it. Example: nightly")


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
    enabled = _RawBoolean(required=False, help_text="Or ?enabled=true|false in the query string.")


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
    default_cron_expression = serializers.CharField(
        allow_null=True,
        help_text="What a schedule created without any timing runs, if set; H spreads services. Example: H/15 * * * *",
    )


class CronPreviewSerializer(serializers.Serializer):
    valid = serializers.BooleanField()
    expression = serializers.CharField(help_text="Normalised when valid (H fields kept), as given otherwise.")
    resolved_expression = serializers.CharField(
        allow_null=True, help_text="The plain crontab beat would run (H resolved); null when not valid."
    )
    description = serializers.CharField(allow_null=True, help_text="Example: Every 15 minutes")
    next_runs = serializers.ListField(child=UtcDateTimeField())
    error = serializers.CharField(allow_null=True, help_text="Why the expression is refused, when it is.")


# One enum each in the schema (SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"]): the database and
# broker checks; beat's and the run monitor's heartbeats.
UP_DOWN = ["ok", "down"]
LIVENESS = ["ok", "stale", "unknown"]


class HealthSerializer(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=["ok", "degraded", "down"],
        help_text="down: the database is unreachable; degraded: the database is up but the broker is down or "
        "beat's heartbeat is stale; ok otherwise.",
    )
    database = serializers.ChoiceField(choices=UP_DOWN)
    broker = serializers.ChoiceField(choices=UP_DOWN)
    beat = serializers.ChoiceField(
        choices=LIVENESS,
        help_text="ok: a heartbeat ran recently; stale: the last one is too old; unknown: none recorded yet.",
    )
    monitor = serializers.ChoiceField(
        choices=LIVENESS,
        help_text="The run monitor (manage.py monitor_runs): ok, stale or unknown, as for beat.",
    )


class LoadBucketSerializer(serializers.Serializer):
    at = UtcDateTimeField(help_text="Start of the bucket. Example: 2026-01-31T12:15:00+00:00")
    total = serializers.IntegerField(help_text="Sends in the bucket. Example: 1000")
    by_task = serializers.DictField(child=serializers.IntegerField(), help_text='Example: {"fetch_logs": 1000}')


class LoadSecondSerializer(serializers.Serializer):
    second = serializers.IntegerField(help_text="Second of the busiest minute (0-59).")
    total = serializers.IntegerField()
    by_task = serializers.DictField(child=serializers.IntegerField())


class LoadSerializer(serializers.Serializer):
    start = UtcDateTimeField(help_text="Now, to the minute.")
    end = UtcDateTimeField()
    resolution = serializers.CharField(help_text="minute or hour")
    tasks = serializers.ListField(child=serializers.CharField(), help_text="Tasks with enabled schedules.")
    schedules = serializers.IntegerField(help_text="Enabled schedules counted.")
    distinct_timings = serializers.IntegerField(help_text="Distinct timings their slots were computed for.")
    buckets = LoadBucketSerializer(many=True, help_text="Buckets with at least one send, in time order.")
    busiest = LoadBucketSerializer(many=True, help_text="The busiest minutes (up to 5), busiest first.")
    busiest_minute_seconds = LoadSecondSerializer(
        many=True, help_text="The busiest minute second by second (seconds with a send)."
    )
