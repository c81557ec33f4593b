"""The schedules file on the server side (``manage.py schedules apply|export``).

The format is the Python client's (``clients/python``: ``luffy_admin_client/declarative.py``
and its JSON Schema, of which ``schedules_file.schema.json`` is a copy): the server does not
depend on the callers' package, and tests hold the two equal (schema, diff lines, export).
Applying goes through the write path (``services.service_put``, ``services.schedule_set_replace``).
"""

import json
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import yaml

from . import selectors, services

SCHEMA = json.loads((Path(__file__).parent / "schedules_file.schema.json").read_text())
VERSION = 1
# A file's schedule fields with what they mean when left out (the API's defaults).
SPEC_DEFAULTS = {
    "schedule_type": "cron",
    "cron_expression": None,
    "interval_seconds": None,
    "timezone": "UTC",
    "enabled": True,
    "key": None,
}


class FileError(ValueError):
    """The file is not YAML, or not a schedules file; the message says where."""


@dataclass(frozen=True)
class ServiceEntry:
    id: str
    name: str
    description: str
    schedules: list[dict]


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
            schedules=[
                {
                    "task_name": item["task_name"],
                    **{name: item.get(name, default) for name, default in SPEC_DEFAULTS.items()},
                }
                for item in service.get("schedules", [])
            ],
        )
        for service in document["services"]
    ]


def _service_change(entry: ServiceEntry) -> str | None:
    current = selectors.service_get(entry.id)
    if current is None:
        return "created"
    return None if (current.name, current.description) == (entry.name, entry.description) else "updated"


def _answer(result: services.ScheduleSetResult) -> dict:
    return {
        "dry_run": result.dry_run,
        "summary": result.summary,
        "changes": [{"action": c.action, "before": c.before, "after": c.after} for c in result.changes],
    }


def apply(*, actor: services.Actor, entries: list[ServiceEntry], prune: bool, dry_run: bool) -> list[str]:
    """Make the database hold the file's services and schedules; the diff as the CLI prints it."""
    lines = []
    for entry in entries:
        service_change = _service_change(entry)
        if dry_run and service_change == "created":
            result = services.schedule_set_preview_for_new_service(
                actor=actor,
                service_id=entry.id,
                name=entry.name,
                description=entry.description,
                desired=entry.schedules,
            )
        else:
            if service_change and not dry_run:
                services.service_put(actor=actor, service_id=entry.id, name=entry.name, description=entry.description)
            result = services.schedule_set_replace(
                actor=actor,
                service=selectors.service_get(entry.id),
                desired=entry.schedules,
                prune=prune,
                dry_run=dry_run,
            )
        answer = _answer(result)
        lines.extend(diff_lines(entry.id, answer, service_change=service_change))
    return lines


def export(*, service_id: str | None = None) -> str:
    chosen = selectors.service_list()
    if service_id is not None:
        chosen = chosen.filter(pk=service_id)
    document = {
        "version": VERSION,
        "services": [
            {
                "id": service.id,
                "name": service.name,
                **({"description": service.description} if service.description else {}),
                "schedules": [
                    _schedule_entry(services.schedule_snapshot(schedule))
                    for schedule in selectors.schedule_list(service=service)
                ],
            }
            for service in chosen
        ],
    }
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


def _schedule_entry(state: dict) -> dict:
    """One schedule as the file writes it: key and task first, defaults left out."""
    entry = {"key": state["key"], "task_name": state["task_name"]}
    entry.update({name: state[name] for name in SPEC_DEFAULTS if name != "key"})
    return {
        name: value
        for name, value in entry.items()
        if value is not None and not (name in SPEC_DEFAULTS and SPEC_DEFAULTS[name] == value)
    }


def _describe(state: dict) -> str:
    key = f" [{state['key']}]" if state.get("key") else ""
    if state["schedule_type"] == "cron":
        timing = f"cron '{state['cron_expression']}' {state['timezone']}"
    else:
        timing = f"every {state['interval_seconds']}s"
    return f"{state['task_name']}{key} {timing}{'' if state['enabled'] else ' (disabled)'}"


def diff_lines(service_id: str, answer: dict, *, service_change: str | None = None) -> list[str]:
    """A header with the counts, then ``+`` created, ``~`` updated, ``-`` deleted."""
    summary = answer["summary"]
    counts = ", ".join(f"{summary[action]} {action}" for action in services.CHANGE_ACTIONS)
    header = f"{service_id}: {counts}"
    if service_change:
        header += f" (service {service_change})"
    if answer["dry_run"]:
        header += " [dry run]"
    lines = [header]
    for change in answer["changes"]:
        if change["action"] == services.CREATED:
            lines.append(f"  + {_describe(change['after'])}")
        elif change["action"] == services.UPDATED:
            lines.append(f"  ~ {_describe(change['before'])} -> {_describe(change['after'])}")
        elif change["action"] == services.DELETED:
            lines.append(f"  - {_describe(change['before'])}")
    return lines
