"""Helpers the client's tests share: one test body drives a sync or an async client; a schedules
file; the CLI runner; run records as beat and the run monitor write them."""

import asyncio
import inspect

from click.testing import CliRunner

from luffy_admin_client.cli import main
from schedules.models import TaskSchedule
from schedules.tests.api import helpers as api_helpers


async def settle(value):
    """A sync client's answer as is, an async client's awaited; iterators of either collected."""
    if inspect.isawaitable(value):
        return await value
    if hasattr(value, "__aiter__"):
        return [item async for item in value]
    if inspect.isgenerator(value):
        return list(value)
    return value


def run(scenario):
    """Run ``scenario`` (a coroutine function) to its end; sync and async tests share one body."""
    return asyncio.run(scenario())


# A schedules file, and what its first apply prints.
FILE = """\
version: 1
services:
  - id: web-app
    name: Web application
    description: Storefront
    schedules:
      - key: logs
        task_name: fetch_logs
        cron_expression: "*/15 * * * *"
      - task_name: generate_rca
        cron_expression: "@hourly"
        timezone: Europe/Paris
      - task_name: index_code
        schedule_type: interval
        interval_seconds: 86400
        enabled: false
  - id: billing
    name: Billing
"""

FIRST_APPLY = [
    "web-app: 3 created, 0 updated, 0 deleted, 0 unchanged (service created)",
    "  + fetch_logs [logs] cron '*/15 * * * *' UTC",
    "  + generate_rca cron '0 * * * *' Europe/Paris",
    "  + index_code every 86400s (disabled)",
    "billing: 0 created, 0 updated, 0 deleted, 0 unchanged (service created)",
]


def cli_runner(base_url, api_key, monkeypatch):
    """Runs ``luffy-admin ARGS`` with the server and key from the environment, as a shell would."""
    monkeypatch.setenv("LUFFY_ADMIN_URL", base_url)
    monkeypatch.setenv("LUFFY_ADMIN_KEY", api_key)
    runner = CliRunner()

    def invoke(*args, status=0):
        result = runner.invoke(main, list(args), catch_exceptions=False)
        assert result.exit_code == status, (result.stdout, result.stderr)
        return result

    return invoke


def record_run(schedule_id, **run) -> str:
    """A run of the schedule with this id, as beat and the run monitor write it (see ``api.helpers.record_run``)."""
    return api_helpers.record_run(TaskSchedule.objects.select_related("periodic_task").get(pk=schedule_id), **run)
