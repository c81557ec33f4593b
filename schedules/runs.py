"""Run outcomes from Celery task events: the rules, with no database.

A worker reports a task's life in events (``task-received``, ``task-started``,
``task-succeeded``, ...). Events can repeat and arrive out of order, so every event becomes a
``RunPatch`` that only ever moves a run forward: states are ranked, and a patch changes the
state only to a higher rank; first times (received, started) are kept once set; a terminal
state (succeeded, failed, revoked, expired) is final. Patches for one task merge in memory by
the same rules ``services.run_events_apply`` applies in SQL, so a batch of any order and any
repeats gives the same record as the events one by one.
"""

import ast
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from .models import Dispatch

State = Dispatch.State

# `lost` sits just above `sent`: the monitor marks it on a run never received, and any later
# word from a worker (received, started, ...) still wins over it.
RANK = {
    State.SENT: 0,
    State.LOST: 1,
    State.RECEIVED: 2,
    State.STARTED: 3,
    State.RETRIED: 4,
    State.SUCCEEDED: 5,
    State.FAILED: 5,
    State.REVOKED: 5,
    State.EXPIRED: 5,
}
TERMINAL = frozenset(state for state, rank in RANK.items() if rank == max(RANK.values()))

EVENT_STATES = {
    "task-sent": State.SENT,
    "task-received": State.RECEIVED,
    "task-started": State.STARTED,
    "task-succeeded": State.SUCCEEDED,
    "task-failed": State.FAILED,
    "task-retried": State.RETRIED,
    "task-revoked": State.REVOKED,
}
# Celery sends an exception as its repr: "ValueError('bad input')".
EXCEPTION_REPR = re.compile(r"^([A-Za-z_][\w.]*)\((.*)\)$", re.DOTALL)


@dataclass(frozen=True)
class RunPatch:
    """What the events seen so far say about one task id."""

    task_id: str
    state: str = State.SENT
    received_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    runtime_seconds: float | None = None
    worker: str = ""
    retries: int = 0
    error_type: str = ""
    error_message: str = ""
    # When the newest event of the patch happened (for the monitor's lag), not stored per run.
    event_at: datetime | None = None

    @property
    def rank(self) -> int:
        return RANK[self.state]

    def merge(self, later: "RunPatch") -> "RunPatch":
        """This patch followed by ``later`` (which may describe an earlier moment)."""
        advances = later.rank > self.rank
        outcome = later if advances else self
        return replace(
            self,
            state=outcome.state,
            finished_at=outcome.finished_at or self.finished_at,
            runtime_seconds=outcome.runtime_seconds if outcome.runtime_seconds is not None else self.runtime_seconds,
            error_type=outcome.error_type or self.error_type,
            error_message=outcome.error_message or self.error_message,
            received_at=self.received_at or later.received_at,
            started_at=self.started_at or later.started_at,
            worker=self.worker or later.worker,
            retries=max(self.retries, later.retries),
            event_at=max(filter(None, (self.event_at, later.event_at)), default=None),
        )

    def with_runtime(self) -> "RunPatch":
        """Fill the runtime of a finished run from its start when the event did not carry one
        (``task-failed`` has no runtime)."""
        if self.runtime_seconds is None and self.finished_at and self.started_at:
            return replace(self, runtime_seconds=max((self.finished_at - self.started_at).total_seconds(), 0.0))
        return self


def split_exception(text: str) -> tuple[str, str]:
    """``"ValueError('bad input')"`` -> ``("ValueError", "bad input")``, cut to the columns' sizes."""
    match = EXCEPTION_REPR.match(text or "")
    error_type, message = (match.group(1), match.group(2)) if match else ("", text or "")
    try:
        # The usual single message argument reads as the message itself, unquoted.
        literal = ast.literal_eval(message)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        literal = None
    if isinstance(literal, str):
        message = literal
    return error_type[:200], message[: Dispatch.ERROR_MESSAGE_MAX]


def patch_of(event: dict) -> RunPatch | None:
    """The patch a Celery task event stands for; None for events that say nothing about a run."""
    state = EVENT_STATES.get(event.get("type"))
    task_id = event.get("uuid")
    if state is None or not isinstance(task_id, str):
        return None
    at = datetime.fromtimestamp(float(event.get("timestamp") or 0), tz=UTC) if event.get("timestamp") else None
    fields = {"task_id": task_id, "state": state, "event_at": at, "worker": str(event.get("hostname") or "")[:200]}
    if state == State.RECEIVED:
        fields.update(received_at=at, retries=int(event.get("retries") or 0))
    elif state == State.STARTED:
        fields["started_at"] = at
    elif state == State.SUCCEEDED:
        runtime = event.get("runtime")
        fields.update(finished_at=at, runtime_seconds=float(runtime) if runtime is not None else None)
    elif state in (State.FAILED, State.RETRIED):
        error_type, message = split_exception(str(event.get("exception") or ""))
        fields.update(error_type=error_type, error_message=message)
        if state == State.FAILED:
            fields["finished_at"] = at
    elif state == State.REVOKED:
        # A worker drops a message whose `expires` has passed and reports it revoked, expired.
        fields.update(finished_at=at, state=State.EXPIRED if event.get("expired") else State.REVOKED)
    if not fields["worker"] or state == State.SENT:
        fields.pop("worker")  # task-sent's hostname is the sender's, not a worker's
    return RunPatch(**fields)


class PatchBuffer:
    """Patches collected between two writes, one per task id."""

    def __init__(self):
        self.patches: dict[str, RunPatch] = {}
        self.events = 0

    def add(self, event: dict) -> None:
        patch = patch_of(event)
        if patch is None:
            return
        self.events += 1
        current = self.patches.get(patch.task_id)
        self.patches[patch.task_id] = patch if current is None else current.merge(patch)

    def __len__(self):
        return len(self.patches)

    def take(self) -> list[RunPatch]:
        patches = [patch.with_runtime() for patch in self.patches.values()]
        self.patches = {}
        self.events = 0
        return patches
