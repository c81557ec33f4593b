"""The task catalogue: which luffy tasks an operator may schedule, read from settings.

A request names a catalogue entry (``fetch_logs``); the Celery task name, the queue and
the interval bounds always come from here, so no caller can make beat send arbitrary tasks.
A task may carry a ``default_cron_expression`` (``H/15 * * * *``): a schedule created without
any timing gets it, so services registered in bulk spread over the hour by themselves.
"""

from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from . import cron

REQUIRED_KEYS = ("name", "task", "queue")
OPTIONAL_KEYS = ("description", "min_interval_seconds", "max_interval_seconds", "default_cron_expression")
DEFAULT_MIN_INTERVAL_SECONDS = 60
DEFAULT_MAX_INTERVAL_SECONDS = 86400


@dataclass(frozen=True)
class CatalogueTask:
    name: str
    task: str
    queue: str
    description: str
    min_interval_seconds: int
    max_interval_seconds: int
    default_cron_expression: str | None = None


def load_catalogue(entries, *, known_queues) -> dict[str, CatalogueTask]:
    """Turn the settings list into catalogue entries, or raise ImproperlyConfigured saying why."""
    if not isinstance(entries, (list, tuple)) or not entries:
        raise ImproperlyConfigured("LUFFY_TASK_CATALOGUE must be a non-empty list of tasks.")
    catalogue: dict[str, CatalogueTask] = {}
    for position, entry in enumerate(entries):
        where = f"LUFFY_TASK_CATALOGUE[{position}]"
        if not isinstance(entry, dict):
            raise ImproperlyConfigured(f"{where} must be a mapping, not {type(entry).__name__}.")
        missing = [key for key in REQUIRED_KEYS if not entry.get(key)]
        if missing:
            raise ImproperlyConfigured(f"{where} lacks {', '.join(missing)}.")
        unknown = sorted(set(entry) - set(REQUIRED_KEYS) - set(OPTIONAL_KEYS))
        if unknown:
            raise ImproperlyConfigured(f"{where} has unknown keys: {', '.join(unknown)}.")
        name = entry["name"]
        if name in catalogue:
            raise ImproperlyConfigured(f"{where}: task name {name!r} appears twice in the catalogue.")
        if entry["queue"] not in known_queues:
            raise ImproperlyConfigured(
                f"{where}: queue {entry['queue']!r} of task {name!r} is not one of "
                f"LUFFY_QUEUES ({', '.join(known_queues)})."
            )
        low = entry.get("min_interval_seconds", DEFAULT_MIN_INTERVAL_SECONDS)
        high = entry.get("max_interval_seconds", DEFAULT_MAX_INTERVAL_SECONDS)
        if not all(type(bound) is int for bound in (low, high)) or not 1 <= low <= high:
            raise ImproperlyConfigured(
                f"{where}: interval bounds of {name!r} must be integers with "
                f"1 <= min_interval_seconds <= max_interval_seconds (got {low!r}..{high!r})."
            )
        default = entry.get("default_cron_expression")
        if default is not None:
            try:
                # Any key will do: whether an H form is valid does not depend on the key.
                cron.resolve(default, f"catalogue:{name}")
            except cron.CronError as exc:
                raise ImproperlyConfigured(f"{where}: default_cron_expression of {name!r}: {exc}") from None
        catalogue[name] = CatalogueTask(
            name=name,
            task=entry["task"],
            queue=entry["queue"],
            description=entry.get("description", ""),
            min_interval_seconds=low,
            max_interval_seconds=high,
            default_cron_expression=default,
        )
    return catalogue


def get_catalogue() -> dict[str, CatalogueTask]:
    """The catalogue as configured now (read per call so ``override_settings`` works in tests)."""
    return load_catalogue(settings.LUFFY_TASK_CATALOGUE, known_queues=settings.LUFFY_QUEUES)


def get_task(name: str) -> CatalogueTask | None:
    return get_catalogue().get(name)


def task_names() -> list[str]:
    return sorted(get_catalogue())
