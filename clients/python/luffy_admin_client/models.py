"""The API's JSON shapes as Pydantic v2 models.

Each model names the ``schema.yml`` component it mirrors (``COMPONENT``); a test compares field
names, types and required-ness against the committed schema, so they cannot drift. Responses
ignore fields a newer server adds; requests refuse unknown fields, as the server does.
"""

from datetime import datetime
from typing import ClassVar, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, PrivateAttr

ScheduleType = Literal["cron", "interval"]


class _Response(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    COMPONENT: ClassVar[str]


RunState = Literal["sent", "received", "started", "succeeded", "failed", "retried", "revoked", "expired", "lost"]


class Outcome(_Response):
    """A schedule's newest run: its state and when it reached it."""

    COMPONENT: ClassVar[str] = "Outcome"

    state: RunState
    at: datetime


class _Versioned(_Response):
    """A resource read with its version (the ``ETag`` header), for ``if_match=``."""

    _etag: str | None = PrivateAttr(default=None)

    @property
    def etag(self) -> str | None:
        return self._etag


class Service(_Versioned):
    COMPONENT: ClassVar[str] = "Service"

    id: str
    name: str
    description: str
    schedule_count: int
    created_at: datetime
    updated_at: datetime


class TaskOutcome(_Response):
    """A task's newest run across the service's schedules of it, and whether one is failing."""

    COMPONENT: ClassVar[str] = "TaskOutcome"

    state: RunState
    at: datetime
    failing: bool


class ServiceDetail(Service):
    """``get_service``: the service with, per task it schedules, the newest run's outcome (None
    for a task that has not run yet)."""

    COMPONENT: ClassVar[str] = "ServiceDetail"

    last_outcomes: dict[str, TaskOutcome | None]


class Schedule(_Versioned):
    COMPONENT: ClassVar[str] = "Schedule"

    id: UUID
    service_id: str
    task_name: str
    task_path: str
    schedule_type: ScheduleType
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
    last_outcome: Outcome | None
    failing: bool


class ScheduleSpec(BaseModel):
    """A schedule as a caller wants it: a create body, and one item of ``apply_schedules``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    COMPONENT: ClassVar[str] = "ScheduleCreateRequest"

    task_name: str
    schedule_type: ScheduleType = "cron"
    cron_expression: str | None = None
    interval_seconds: int | None = None
    jitter_seconds: int | None = None
    timezone: str = "UTC"
    enabled: bool = True
    key: str | None = None


class ScheduleState(_Response):
    """What a caller can set on a schedule, as a replace's changes and the audit trail show it."""

    COMPONENT: ClassVar[str] = "ScheduleState"

    task_name: str
    schedule_type: ScheduleType
    cron_expression: str | None
    interval_seconds: int | None
    jitter_seconds: int | None = None
    timezone: str
    enabled: bool
    key: str | None = None


class ScheduleChange(_Response):
    COMPONENT: ClassVar[str] = "ScheduleChange"

    action: Literal["created", "updated", "deleted", "unchanged"]
    schedule_id: UUID | None
    before: ScheduleState | None
    after: ScheduleState | None


class ScheduleSetSummary(_Response):
    COMPONENT: ClassVar[str] = "ScheduleSetSummary"

    created: int
    updated: int
    deleted: int
    unchanged: int

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.deleted)


class ScheduleSet(_Response):
    """The answer to ``apply_schedules``: what changed, and the service's schedules after it."""

    COMPONENT: ClassVar[str] = "ScheduleSet"

    dry_run: bool
    summary: ScheduleSetSummary
    changes: list[ScheduleChange]
    schedules: list[Schedule]


class RunRecord(_Response):
    COMPONENT: ClassVar[str] = "RunRecord"

    task_id: str
    sent: bool | None = None
    error: str | None = None


class AuditEvent(_Response):
    COMPONENT: ClassVar[str] = "AuditEvent"

    at: datetime
    actor: str
    action: Literal["create", "update", "toggle", "delete", "run_now"]
    before: ScheduleState | RunRecord | None
    after: ScheduleState | RunRecord | None


class Dispatch(_Response):
    COMPONENT: ClassVar[str] = "Dispatch"

    slot: datetime
    task_id: str
    sent_at: datetime


class RunError(_Response):
    """A failed run's (or its last retry's) exception."""

    COMPONENT: ClassVar[str] = "RunError"

    type: str
    message: str


class Run(_Response):
    """One send of a schedule (by beat or a run-now) and what the workers reported about it."""

    COMPONENT: ClassVar[str] = "Run"

    task_id: str
    trigger: Literal["schedule", "run_now"]
    slot: datetime
    sent_at: datetime
    state: RunState
    received_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    runtime_seconds: float | None
    worker: str | None
    retries: int
    error: RunError | None


class CatalogueTask(_Response):
    COMPONENT: ClassVar[str] = "CatalogueTask"

    name: str
    task_path: str
    queue: str
    description: str
    min_interval_seconds: int
    max_interval_seconds: int
    default_cron_expression: str | None


class CronPreview(_Response):
    COMPONENT: ClassVar[str] = "CronPreview"

    valid: bool
    expression: str
    resolved_expression: str | None
    description: str | None
    next_runs: list[datetime]
    error: str | None


class Health(_Response):
    COMPONENT: ClassVar[str] = "Health"

    status: Literal["ok", "degraded", "down"]
    database: Literal["ok", "down"]
    broker: Literal["ok", "down"]
    beat: Literal["ok", "stale", "unknown"]
    monitor: Literal["ok", "stale", "unknown"]


class LoadBucket(_Response):
    """Sends in one minute (or hour) ahead, in all and per task."""

    COMPONENT: ClassVar[str] = "LoadBucket"

    at: datetime
    total: int
    by_task: dict[str, int]


class LoadSecond(_Response):
    """Sends in one second of the busiest minute."""

    COMPONENT: ClassVar[str] = "LoadSecond"

    second: int
    total: int
    by_task: dict[str, int]


class Load(_Response):
    """The upcoming load: sends per bucket ahead, the busiest buckets, the busiest minute by second."""

    COMPONENT: ClassVar[str] = "Load"

    start: datetime
    end: datetime
    resolution: str
    tasks: list[str]
    schedules: int
    distinct_timings: int
    buckets: list[LoadBucket]
    busiest: list[LoadBucket]
    busiest_minute_seconds: list[LoadSecond]


class RunResponse(_Response):
    COMPONENT: ClassVar[str] = "RunResponse"

    task_id: str


class ErrorBody(_Response):
    COMPONENT: ClassVar[str] = "Error"

    detail: str
    code: str
    errors: dict[str, list[str]] | None = None
    existing_id: str | None = None


# Every model the drift test checks against schema.yml.
MODELS = (
    Service,
    TaskOutcome,
    ServiceDetail,
    Outcome,
    Schedule,
    ScheduleSpec,
    ScheduleState,
    ScheduleChange,
    ScheduleSetSummary,
    ScheduleSet,
    RunRecord,
    AuditEvent,
    Dispatch,
    RunError,
    Run,
    CatalogueTask,
    CronPreview,
    Health,
    LoadBucket,
    LoadSecond,
    Load,
    RunResponse,
    ErrorBody,
)
