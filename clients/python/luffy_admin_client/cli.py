"""``luffy-admin``: the API from a shell. A table by default, ``--json`` for scripts.

The server and key come from ``--url`` / ``--key`` or ``LUFFY_ADMIN_URL`` / ``LUFFY_ADMIN_KEY``.
Errors print the server's ``detail`` on stderr and exit 1.
"""

import itertools
import sys
import typing

import click

from . import declarative
from .client import LuffyAdmin
from .errors import LuffyAdminError, NotFound, ValidationFailed
from .models import RunState, ScheduleSpec
from .output import Output

SCHEDULE_COLUMNS = ("id", "service_id", "task_name", "key", "description", "timezone", "enabled", "next_run")
SERVICE_COLUMNS = ("id", "name", "schedule_count", "description")
RUN_COLUMNS = ("sent_at", "trigger", "state", "runtime_seconds", "worker", "retries", "error", "task_id")
MAX_PAGE_SIZE = 200  # the server's bound on ?page_size=
RUN_STATES = typing.get_args(RunState)


class Context:
    def __init__(self, url: str | None, key: str | None, as_json: bool):
        self.url, self.key = url, key
        self.out = Output(as_json)
        self._client = None

    @property
    def client(self) -> LuffyAdmin:
        if self._client is None:
            try:
                self._client = LuffyAdmin(self.url, self.key)
            except ValueError as exc:
                raise click.UsageError(str(exc)) from None
        return self._client


pass_context = click.make_pass_decorator(Context)


class Group(click.Group):
    """Turns the client's errors into a message on stderr and exit status 1."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except LuffyAdminError as exc:
            click.echo(f"error: {exc.detail}", err=True)
            if isinstance(exc, ValidationFailed):
                for name, messages in exc.errors.items():
                    for message in messages:
                        click.echo(f"  {name}: {message}", err=True)
            sys.exit(1)
        except declarative.FileError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)


@click.group(cls=Group)
@click.option(
    "--url", envvar="LUFFY_ADMIN_URL", help="Server URL (env LUFFY_ADMIN_URL). Example: http://127.0.0.1:8000"
)
@click.option("--key", envvar="LUFFY_ADMIN_KEY", help="API key (env LUFFY_ADMIN_KEY); sent as 'Token <key>'.")
@click.option("--json", "as_json", is_flag=True, help="JSON output, for scripts.")
@click.pass_context
def main(ctx, url, key, as_json):
    """luffy-admin: services and their Celery beat schedules."""
    ctx.obj = Context(url, key, as_json)


# --- services ---------------------------------------------------------------------------


@main.group(cls=Group)
def services():
    """List, show, register (put) and delete services."""


@services.command("list")
@pass_context
def services_list(context):
    context.out.show(list(context.client.iter_services()), SERVICE_COLUMNS)


@services.command("get")
@click.argument("service_id")
@pass_context
def services_get(context, service_id):
    """Its fields, and per task its newest run (``failing`` when one of its schedules is)."""
    detail = context.client.get_service(service_id)
    if context.out.as_json:
        context.out.show(detail)
        return
    fields = detail.model_dump(mode="json", exclude={"last_outcomes"})
    for task_name, outcome in sorted(detail.last_outcomes.items()):
        fields[f"last_run.{task_name}"] = (
            f"{outcome.state} {outcome.at.isoformat()}{' (failing)' if outcome.failing else ''}" if outcome else "never"
        )
    context.out.show(fields)


@services.command("put")
@click.argument("service_id")
@click.option("--name", required=True)
@click.option("--description", default="")
@pass_context
def services_put(context, service_id, name, description):
    """Create the service or set its name and description (idempotent)."""
    context.out.show(context.client.ensure_service(service_id, name, description))


@services.command("delete")
@click.argument("service_id")
@click.option("--if-match", help="The ETag you read; refused (412) if it changed since.")
@pass_context
def services_delete(context, service_id, if_match):
    """Delete the service with its schedules."""
    context.client.delete_service(service_id, if_match=if_match)
    context.out.show({"deleted": service_id})


# --- schedules --------------------------------------------------------------------------


@main.group(cls=Group)
def schedules():
    """List, show, create, change, enable, disable, run and delete schedules."""


@schedules.command("list")
@click.option("--service", help="Only this service's.")
@click.option("--task", "task_name", help="Only this catalogue task.")
@click.option("--enabled/--disabled", default=None, help="Only enabled or disabled ones.")
@pass_context
def schedules_list(context, service, task_name, enabled):
    rows = list(context.client.iter_schedules(service=service, task_name=task_name, enabled=enabled))
    context.out.show(rows, SCHEDULE_COLUMNS)


@schedules.command("get")
@click.argument("schedule_id")
@pass_context
def schedules_get(context, schedule_id):
    context.out.show(context.client.get_schedule(schedule_id))


def _timing_options(command):
    for option in reversed(
        [
            click.option("--cron", "cron_expression", help="Cron expression or macro. Example: '*/15 * * * *'"),
            click.option("--interval", "interval_seconds", type=int, help="Every N seconds."),
            click.option("--timezone", help="IANA time zone of a cron schedule (default UTC)."),
            click.option("--key", "schedule_key", help="Your name for it, unique in the service."),
        ]
    ):
        command = option(command)
    return command


def _timing(cron_expression, interval_seconds) -> dict:
    if cron_expression is not None and interval_seconds is not None:
        raise click.UsageError("Give --cron or --interval, not both.")
    if interval_seconds is not None:
        return {"schedule_type": "interval", "interval_seconds": interval_seconds}
    if cron_expression is not None:
        return {"schedule_type": "cron", "cron_expression": cron_expression}
    return {}


@schedules.command("create")
@click.argument("service_id")
@click.option("--task", "task_name", required=True, help="Catalogue task. Example: fetch_logs")
@_timing_options
@click.option("--disabled", is_flag=True, help="Create it disabled.")
@pass_context
def schedules_create(
    context, service_id, task_name, cron_expression, interval_seconds, timezone, schedule_key, disabled
):
    fields = {"task_name": task_name, **_timing(cron_expression, interval_seconds), "enabled": not disabled}
    if timezone:
        fields["timezone"] = timezone
    if schedule_key:
        fields["key"] = schedule_key
    context.out.show(context.client.create_schedule(service_id, ScheduleSpec(**fields)))


@schedules.command("update")
@click.argument("schedule_id")
@click.option("--task", "task_name", help="Catalogue task.")
@_timing_options
@click.option("--if-match", help="The ETag you read; refused (412) if it changed since.")
@pass_context
def schedules_update(
    context, schedule_id, task_name, cron_expression, interval_seconds, timezone, schedule_key, if_match
):
    """Change the fields given; the others stay."""
    changes = _timing(cron_expression, interval_seconds)
    for name, value in (("task_name", task_name), ("timezone", timezone), ("key", schedule_key)):
        if value is not None:
            changes[name] = value
    if not changes:
        raise click.UsageError("Nothing to change.")
    context.out.show(context.client.update_schedule(schedule_id, if_match=if_match, **changes))


@schedules.command("enable")
@click.argument("schedule_id")
@pass_context
def schedules_enable(context, schedule_id):
    context.out.show(context.client.enable(schedule_id))


@schedules.command("disable")
@click.argument("schedule_id")
@pass_context
def schedules_disable(context, schedule_id):
    context.out.show(context.client.disable(schedule_id))


@schedules.command("run")
@click.argument("schedule_id")
@pass_context
def schedules_run(context, schedule_id):
    """Send the task now (once, even if the call is retried)."""
    context.out.show(context.client.run_schedule(schedule_id))


@schedules.command("history")
@click.argument("schedule_id")
@pass_context
def schedules_history(context, schedule_id):
    """Its changes, newest first."""
    events = [
        {"at": event.at.isoformat(), "actor": event.actor, "action": event.action} if not context.out.as_json else event
        for event in context.client.iter_history(schedule_id)
    ]
    context.out.show(events, ("at", "actor", "action"))


@schedules.command("runs")
@click.argument("schedule_id")
@click.option("--state", type=click.Choice(RUN_STATES), help="Only runs in this state.")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True, help="At most this many.")
@pass_context
def schedules_runs(context, schedule_id, state, limit):
    """Its runs and their outcomes, newest first (outcomes need the server's run monitor)."""
    runs = list(
        itertools.islice(context.client.iter_runs(schedule_id, state=state, page_size=min(limit, MAX_PAGE_SIZE)), limit)
    )
    if context.out.as_json:
        context.out.show(runs)
        return
    rows = [
        {
            **run.model_dump(mode="json"),
            "sent_at": run.sent_at.isoformat(),
            "error": f"{run.error.type}: {run.error.message}" if run.error else None,
        }
        for run in runs
    ]
    context.out.show(rows, RUN_COLUMNS)


@schedules.command("delete")
@click.argument("schedule_id")
@click.option("--if-match", help="The ETag you read; refused (412) if it changed since.")
@pass_context
def schedules_delete(context, schedule_id, if_match):
    context.client.delete_schedule(schedule_id, if_match=if_match)
    context.out.show({"deleted": schedule_id})


# --- the schedules file -----------------------------------------------------------------


def _service_change(client: LuffyAdmin, entry: declarative.ServiceEntry) -> str | None:
    try:
        current = client.get_service(entry.id)
    except NotFound:
        return "created"
    return None if (current.name, current.description) == (entry.name, entry.description) else "updated"


@main.command("apply")
@click.option("-f", "--file", "path", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Show what would change; change nothing.")
@click.option("--prune", is_flag=True, help="Delete the listed services' schedules the file does not list.")
@pass_context
def apply(context, path, dry_run, prune):
    """Make the server hold the file's services and schedules; prints the diff."""
    client = context.client
    lines, answers = [], {}
    for entry in declarative.load(path):
        service_change = _service_change(client, entry)
        if service_change and not dry_run:
            client.ensure_service(entry.id, entry.name, entry.description)
        # A dry run for a service not created yet is the server's too: it checks what it would write.
        result = client.apply_schedules(entry.id, entry.schedules, prune=prune, dry_run=dry_run)
        answer = result.model_dump(mode="json", exclude={"schedules"})
        answers[entry.id] = {**answer, "service": service_change}
        lines.extend(declarative.diff_lines(entry.id, answer, service_change=service_change))
    context.out.lines(lines, answers)


@main.command("export")
@click.option("--service", "service_id", help="Only this service.")
@click.option("-o", "--output", type=click.File("w"), default="-", help="File to write (default: stdout).")
@pass_context
def export(context, service_id, output):
    """Write the server's services and schedules as a schedules file."""
    client = context.client
    chosen = [client.get_service(service_id)] if service_id else list(client.iter_services())
    pairs = [(service.model_dump(mode="json"), client.service_schedules(service.id)) for service in chosen]
    output.write(declarative.dump(pairs))


# --- cron, catalogue, health ------------------------------------------------------------


@main.group(cls=Group)
def cron():
    """Cron expressions."""


@cron.command("preview")
@click.argument("expression")
@click.option("--timezone", default="UTC", show_default=True)
@click.option("--count", default=5, show_default=True)
@click.option("--service", "service_id", help="With --task: place H fields as for this service's schedule.")
@click.option("--task", "task_name", help="With --service. Example: fetch_logs")
@click.option("--key", help="Instead of --service/--task: any key to place H fields by.")
@pass_context
def cron_preview(context, expression, timezone, count, service_id, task_name, key):
    """Valid or why not, in words, and the next run times."""
    preview = context.client.cron_preview(
        expression, timezone=timezone, count=count, service_id=service_id, task_name=task_name, key=key
    )
    if context.out.as_json:
        context.out.show(preview)
    elif preview.valid:
        resolved = (
            f" ({preview.resolved_expression})" if preview.resolved_expression not in (None, preview.expression) else ""
        )
        click.echo(f"{preview.expression}{resolved}: {preview.description}")
        for moment in preview.next_runs:
            click.echo(f"  {moment.isoformat()}")
    else:
        click.echo(f"invalid: {preview.error}")
        sys.exit(1)


@main.command("tasks")
@pass_context
def tasks(context):
    """The task catalogue."""
    context.out.show(context.client.tasks(), ("name", "task_path", "queue", "min_interval_seconds"))


@main.command("load")
@click.option("--hours", type=click.IntRange(1, 48), help="How far ahead (server default 24).")
@click.option("--resolution", type=click.Choice(["minute", "hour"]), help="Bucket width (server default minute).")
@pass_context
def load(context, hours, resolution):
    """Upcoming sends: how many schedules, and the busiest minutes (or hours) ahead by task."""
    answer = context.client.load(hours=hours, resolution=resolution)
    if context.out.as_json:
        context.out.show(answer)
        return
    click.echo(
        f"{answer.schedules} enabled schedules, {answer.distinct_timings} distinct timings, "
        f"{answer.start.isoformat()} to {answer.end.isoformat()} by {answer.resolution}"
    )
    rows = [
        {
            "at": bucket.at.isoformat(),
            "total": bucket.total,
            "by_task": ", ".join(f"{task} {count}" for task, count in sorted(bucket.by_task.items())),
        }
        for bucket in answer.busiest
    ]
    context.out.show(rows, ("at", "total", "by_task"))


@main.command("health")
@pass_context
def health(context):
    context.out.show(context.client.health())
