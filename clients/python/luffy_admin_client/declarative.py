"""The schedules file: services and their schedules in YAML, checked by a JSON Schema.

``load`` reads and checks one; ``dump`` writes what a server holds (defaults left out), so an
``export`` applied back changes nothing. ``diff_lines`` renders a replace's answer; the server's
``manage.py schedules apply`` prints the same lines (a test holds them equal).
"""

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import jsonschema
import yaml

from .models import Schedule, ScheduleSpec

SCHEMA = json.loads(resources.files(__package__).joinpath("schedules_file.schema.json").read_text())
VERSION = 1
# Left out of an export when they hold these (the server's defaults).
DEFAULTS = {"schedule_type": "cron", "timezone": "UTC", "enabled": True, "key": None}


class FileError(ValueError):
    """The file is not YAML, or not a schedules file; the message says where."""


@dataclass(frozen=True)
class ServiceEntry:
    id: str
    name: str
    description: str
    schedules: list[ScheduleSpec]


def parse(text: str, *, source: str = "<file>") -> list[ServiceEntry]:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise FileError(f"{source}: not YAML: {exc}") from None
    errors = sorted(jsonschema.Draft202012Validator(SCHEMA).iter_errors(document), key=lambda e: list(e.path))
    if errors:
        raise FileError("\n".join(f"{source}: {'/'.join(map(str, e.path)) or '(top)'}: {e.message}" for e in errors))
    return [
        ServiceEntry(
            id=service["id"],
            name=service["name"],
            description=service.get("description", ""),
            schedules=[ScheduleSpec.model_validate(item) for item in service.get("schedules", [])],
        )
        for service in document["services"]
    ]


def load(path: str | Path) -> list[ServiceEntry]:
    return parse(Path(path).read_text(), source=str(path))


def schedule_entry(schedule: Schedule | dict) -> dict:
    """One schedule as the file writes it: what a caller sets, defaults left out."""
    values = schedule.model_dump(mode="json") if isinstance(schedule, Schedule) else schedule
    entry = {"key": values["key"], "task_name": values["task_name"]}
    entry.update(
        {name: values[name] for name in ("schedule_type", "cron_expression", "interval_seconds", "timezone", "enabled")}
    )
    return {
        name: value
        for name, value in entry.items()
        if value is not None and not (name in DEFAULTS and DEFAULTS[name] == value)
    }


def dump(services: list[tuple[dict, list]]) -> str:
    """``services``: (service fields, its schedules) pairs, as the API reads them."""
    document = {
        "version": VERSION,
        "services": [
            {
                "id": service["id"],
                "name": service["name"],
                **({"description": service["description"]} if service.get("description") else {}),
                "schedules": [schedule_entry(schedule) for schedule in schedules],
            }
            for service, schedules in services
        ],
    }
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


def _describe(state: dict) -> str:
    key = f" [{state['key']}]" if state.get("key") else ""
    if state["schedule_type"] == "cron":
        timing = f"cron '{state['cron_expression']}' {state['timezone']}"
    else:
        timing = f"every {state['interval_seconds']}s"
    return f"{state['task_name']}{key} {timing}{'' if state['enabled'] else ' (disabled)'}"


def diff_lines(service_id: str, answer: dict, *, service_change: str | None = None) -> list[str]:
    """A replace's answer (``{"dry_run", "summary", "changes"}``) as lines: a header with the
    counts, then ``+`` created, ``~`` updated, ``-`` deleted (unchanged ones are only counted)."""
    summary = answer["summary"]
    counts = ", ".join(f"{summary[action]} {action}" for action in ("created", "updated", "deleted", "unchanged"))
    header = f"{service_id}: {counts}"
    if service_change:
        header += f" (service {service_change})"
    if answer["dry_run"]:
        header += " [dry run]"
    lines = [header]
    for change in answer["changes"]:
        if change["action"] == "created":
            lines.append(f"  + {_describe(change['after'])}")
        elif change["action"] == "updated":
            lines.append(f"  ~ {_describe(change['before'])} -> {_describe(change['after'])}")
        elif change["action"] == "deleted":
            lines.append(f"  - {_describe(change['before'])}")
    return lines
