"""The bulk replace: make a service's schedules be a desired list (PUT /services/{id}/schedules,
``manage.py schedules apply``)."""

import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from .. import selectors, timing
from ..errors import ConflictError
from ..models import Service
from .audit import Actor, schedule_snapshot
from .rules import SCHEDULE_FIELDS, SCHEDULE_IDENTITY, lock_service, require_bool, require_key_format, require_task
from .schedule import schedule_create, schedule_delete_rows, schedule_update
from .service import service_create

CREATED, UPDATED, DELETED, UNCHANGED = "created", "updated", "deleted", "unchanged"
CHANGE_ACTIONS = (CREATED, UPDATED, DELETED, UNCHANGED)


@dataclass(frozen=True)
class ScheduleChange:
    """What a replace did (or, on a dry run, would do) to one schedule."""

    action: str
    schedule_id: uuid.UUID | None
    before: dict | None
    after: dict | None


@dataclass(frozen=True)
class ScheduleSetResult:
    changes: list[ScheduleChange]
    dry_run: bool

    @property
    def summary(self) -> dict[str, int]:
        return {action: sum(change.action == action for change in self.changes) for action in CHANGE_ACTIONS}


def _prefixed(index: int, exc: ValidationError) -> ValidationError:
    """A desired schedule's errors, named by its place in the list: ``[2].cron_expression``."""
    by_field = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
    return ValidationError({f"[{index}].{name}": errors for name, errors in by_field.items()})


def _desired_state(item: dict, *, service_id: str) -> dict:
    """One desired schedule, validated and normalised to a snapshot (``@hourly`` -> ``0 * * * *``)."""
    unknown = set(item) - set(SCHEDULE_FIELDS)
    if unknown:
        raise ValidationError({name: ["Unknown field."] for name in sorted(unknown)})
    task = require_task(item.get("task_name"))
    new_timing = timing.validate_timing(
        task=task,
        schedule_type=item.get("schedule_type", timing.CRON),
        cron_expression=item.get("cron_expression"),
        interval_seconds=item.get("interval_seconds"),
        timezone=item.get("timezone", timing.UTC),
        key=timing.schedule_key(service_id, task.name),
        jitter_seconds=item.get("jitter_seconds"),
    )
    key = require_key_format(item.get("key"))
    return {
        "task_name": task.name,
        "schedule_type": new_timing.schedule_type,
        "cron_expression": new_timing.shown_cron_expression,
        "interval_seconds": new_timing.interval_seconds,
        "jitter_seconds": new_timing.jitter_seconds,
        "timezone": new_timing.timezone,
        "enabled": require_bool(item.get("enabled", True), "enabled"),
        "key": key,
    }


def _identity(state: dict) -> tuple:
    return tuple(state[name] for name in SCHEDULE_IDENTITY)


def _desired_states(desired: list[dict], *, service_id: str) -> list[dict]:
    states = []
    for index, item in enumerate(desired):
        try:
            states.append(_desired_state(item, service_id=service_id))
        except ValidationError as exc:
            raise _prefixed(index, exc) from None
    seen_keys, seen_identities = {}, {}
    for index, state in enumerate(states):
        if state["key"] is not None:
            if state["key"] in seen_keys:
                first = seen_keys[state["key"]]
                raise ValidationError({f"[{index}].key": [f"Key {state['key']!r} is also [{first}]'s."]})
            seen_keys[state["key"]] = index
        elif _identity(state) in seen_identities:
            raise ValidationError(
                {f"[{index}]": [f"The same schedule as [{seen_identities[_identity(state)]}]; list it once."]}
            )
        else:
            seen_identities[_identity(state)] = index
    return states


def _match(states: list[dict], existing: dict[uuid.UUID, dict]) -> tuple[list[tuple[dict, Any]], list[Any]]:
    """Pair each desired state with the stored schedule it stands for: by key first, then by
    task and timing among the schedules without a key (or with the same key). Returns the pairs
    (``None`` where a schedule is to be created) and the stored ids nothing matched."""
    unmatched = dict(existing)
    partner: dict[int, Any] = {}
    for index, state in enumerate(states):
        if state["key"] is not None:
            found = next((pk for pk, stored in unmatched.items() if stored["key"] == state["key"]), None)
            if found is not None:
                partner[index] = found
                del unmatched[found]
    for index, state in enumerate(states):
        if index in partner:
            continue
        found = next(
            (
                pk
                for pk, stored in unmatched.items()
                if _identity(stored) == _identity(state) and stored["key"] in (None, state["key"])
            ),
            None,
        )
        if found is not None:
            partner[index] = found
            del unmatched[found]
    return [(state, partner.get(index)) for index, state in enumerate(states)], list(unmatched)


@transaction.atomic
def _schedule_set_replace(*, actor: Actor, service: Service, desired: list[dict], prune: bool) -> list[ScheduleChange]:
    service = lock_service(service.pk)
    states = _desired_states(desired, service_id=service.id)
    stored = {schedule.pk: schedule for schedule in selectors.schedule_list(service=service).order_by("created_at")}
    snapshots = {pk: schedule_snapshot(schedule) for pk, schedule in stored.items()}
    pairs, leftovers = _match(states, snapshots)

    cap = settings.LUFFY_MAX_SCHEDULES_PER_SERVICE
    total = len(states) + (0 if prune else len(leftovers))
    if total > cap:
        raise ConflictError(
            f"Service {service.id!r} would have {total} schedules; one service may have at most {cap} "
            "(LUFFY_MAX_SCHEDULES_PER_SERVICE)."
        )

    changes = []
    # Deletes first: they free the keys and timings the updates and creates may take.
    for pk in leftovers:
        if prune:
            schedule_delete_rows(actor=actor, schedule=stored[pk])
            changes.append(ScheduleChange(DELETED, pk, snapshots[pk], None))
        else:
            changes.append(ScheduleChange(UNCHANGED, pk, snapshots[pk], snapshots[pk]))
    for state, pk in pairs:
        if pk is None:
            continue
        if state == snapshots[pk]:
            changes.append(ScheduleChange(UNCHANGED, pk, snapshots[pk], state))
        else:
            schedule_update(actor=actor, schedule=stored[pk], **state)
            changes.append(ScheduleChange(UPDATED, pk, snapshots[pk], state))
    for state, pk in pairs:
        if pk is None:
            created = schedule_create(actor=actor, service=service, **state)
            changes.append(ScheduleChange(CREATED, created.pk, None, state))
    return changes


def schedule_set_replace(
    *, actor: Actor, service: Service, desired: list[dict], prune: bool = True, dry_run: bool = False
) -> ScheduleSetResult:
    """Make the service's schedules be ``desired`` (request-shaped dicts), in one transaction.

    Each desired schedule matches a stored one by ``key``, else by task and timing; matched ones
    are updated when they differ, the rest created, and stored ones nothing matched deleted
    (kept, as unchanged, with ``prune=False``). Every change is audited as a single write
    would be, and the per-service cap holds for the resulting set. ``dry_run`` does it all in
    a savepoint and rolls it back, so the answer is exactly what the write would do.
    """
    with transaction.atomic():
        changes = _schedule_set_replace(actor=actor, service=service, desired=desired, prune=prune)
        if dry_run:
            transaction.set_rollback(True)
            # The ids of schedules a dry run created were rolled back with them.
            changes = [ScheduleChange(c.action, None, c.before, c.after) if c.action == CREATED else c for c in changes]
    return ScheduleSetResult(changes=changes, dry_run=dry_run)


def schedule_set_preview_for_new_service(
    *, actor: Actor, service_id: str, name: str, description: str, desired: list[dict]
) -> ScheduleSetResult:
    """The dry run of a replace for a service that does not exist yet.

    The service is created, its schedules replaced, and all of it rolled back. The answer then
    refuses and normalises the schedules exactly as the real apply will, instead of listing
    unchecked input as created.
    """
    with transaction.atomic():
        service = service_create(actor=actor, service_id=service_id, name=name, description=description)
        result = schedule_set_replace(actor=actor, service=service, desired=desired, dry_run=True)
        transaction.set_rollback(True)
    return result
