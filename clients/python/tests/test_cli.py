"""The luffy-admin command against a live server: tables by default, --json for scripts."""

import json
import re

import pytest

from client_helpers import FILE, FIRST_APPLY, cli_runner, record_run
from schedules.models import TaskSchedule
from schedules.tests.api.helpers import FAILS


@pytest.fixture
def cli(base_url, api_key, monkeypatch):
    return cli_runner(base_url, api_key, monkeypatch)


@pytest.fixture
def schedules_file(tmp_path):
    path = tmp_path / "schedules.yaml"
    path.write_text(FILE)
    return str(path)


def test_services_commands(cli):
    """put registers (idempotent), list shows a table, get shows fields, --json is the API's body, delete."""
    cli("services", "put", "web-app", "--name", "Web application", "--description", "Storefront")
    cli("services", "put", "web-app", "--name", "Web application", "--description", "Storefront")
    table = cli("services", "list").stdout.splitlines()
    assert table[0].split() == ["ID", "NAME", "SCHEDULE_COUNT", "DESCRIPTION"]
    assert table[1].split() == ["web-app", "Web", "application", "0", "Storefront"]
    shown = dict(line.split(None, 1) for line in cli("services", "get", "web-app").stdout.splitlines())
    assert (shown["name"], shown["description"], shown["schedule_count"]) == ("Web application", "Storefront", "0")
    body = json.loads(cli("--json", "services", "get", "web-app").stdout)
    assert (body["id"], body["name"], body["schedule_count"]) == ("web-app", "Web application", 0)
    cli("services", "delete", "web-app")
    assert json.loads(cli("--json", "services", "list").stdout) == []


def test_schedules_commands(cli, default_queue):
    """create, list, get, update, disable, enable, run, history, delete: what an operator types."""
    cli("services", "put", "web-app", "--name", "Web application")
    created = json.loads(
        cli("--json", "schedules", "create", "web-app", "--task", "fetch_logs", "--cron", "@daily", "--key", "d").stdout
    )
    schedule_id = created["id"]
    assert (created["cron_expression"], created["key"], created["description"]) == ("0 0 * * *", "d", "At 00:00")
    interval = json.loads(
        cli(
            "--json", "schedules", "create", "web-app", "--task", "index_code", "--interval", "3600", "--disabled"
        ).stdout
    )
    assert (interval["interval_seconds"], interval["enabled"]) == (3600, False)

    table = cli("schedules", "list", "--service", "web-app").stdout.splitlines()
    assert table[0].split()[:4] == ["ID", "SERVICE_ID", "TASK_NAME", "KEY"]
    assert len(table) == 3
    assert [row["id"] for row in json.loads(cli("--json", "schedules", "list", "--disabled").stdout)] == [
        interval["id"]
    ]
    shown = dict(line.split(None, 1) for line in cli("schedules", "get", schedule_id).stdout.splitlines())
    assert (shown["description"], shown["key"], shown["enabled"]) == ("At 00:00", "d", "yes")

    updated = json.loads(cli("--json", "schedules", "update", schedule_id, "--cron", "0 6 * * *").stdout)
    assert updated["description"] == "At 06:00"
    assert json.loads(cli("--json", "schedules", "disable", schedule_id).stdout)["enabled"] is False
    assert json.loads(cli("--json", "schedules", "enable", schedule_id).stdout)["enabled"] is True
    assert "task_id" in cli("schedules", "run", schedule_id).stdout
    assert default_queue.llen("default") == 1
    history = cli("schedules", "history", schedule_id).stdout.splitlines()
    assert [line.split()[-1] for line in history[1:]] == ["run_now", "toggle", "toggle", "update", "create"]
    cli("schedules", "delete", interval["id"])
    assert [str(pk) for pk in TaskSchedule.objects.values_list("id", flat=True)] == [schedule_id]


def test_errors_print_the_detail_and_exit_1(cli):
    """A refused request: the server's detail (and field errors) on stderr, exit status 1."""
    cli("services", "put", "web-app", "--name", "Web application")
    missing = cli("schedules", "get", "00000000-0000-0000-0000-000000000001", status=1)
    assert missing.stderr == "error: Schedule not found\n"
    bad = cli("schedules", "create", "web-app", "--task", "fetch_logs", "--cron", "61 * * * *", status=1)
    assert bad.stderr == (
        "error: cron_expression: minute: 61 is out of range 0-59.\n"
        "  cron_expression: minute: 61 is out of range 0-59.\n"
    )
    cli("schedules", "create", "web-app", "--task", "fetch_logs", "--cron", "@hourly")
    duplicate = cli("schedules", "create", "web-app", "--task", "fetch_logs", "--cron", "0 * * * *", status=1)
    assert duplicate.stderr.startswith("error: Service 'web-app' already has this fetch_logs schedule (id ")


def test_apply_prints_the_diff_and_twice_changes_nothing(cli, schedules_file):
    """apply creates services and schedules; a dry run first shows exactly that (as the server
    will store it: '@hourly' reads '0 * * * *'); again: all unchanged."""
    dry = cli("apply", "-f", schedules_file, "--dry-run").stdout.splitlines()
    assert dry == [f"{line} [dry run]" if line.endswith("(service created)") else line for line in FIRST_APPLY]
    assert TaskSchedule.objects.count() == 0
    assert cli("apply", "-f", schedules_file).stdout.splitlines() == FIRST_APPLY
    assert cli("apply", "-f", schedules_file).stdout.splitlines() == [
        "web-app: 0 created, 0 updated, 0 deleted, 3 unchanged",
        "billing: 0 created, 0 updated, 0 deleted, 0 unchanged",
    ]
    answers = json.loads(cli("--json", "apply", "-f", schedules_file).stdout)
    assert answers["web-app"]["summary"] == {"created": 0, "updated": 0, "deleted": 0, "unchanged": 3}


def test_a_dry_run_for_a_new_service_is_checked_by_the_server(cli, tmp_path):
    """The service does not exist yet: the server still checks what apply would write, so a bad
    cron fails the dry run as it would fail the apply, instead of showing as created."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(FILE.replace('"*/15 * * * *"', '"61 * * * *"'))
    dry = cli("apply", "-f", str(bad), "--dry-run", status=1)
    assert dry.stderr.startswith("error: [0].cron_expression: minute: 61 is out of range 0-59."), dry.stderr
    assert json.loads(cli("--json", "services", "list").stdout) == []


def test_apply_updates_and_prunes_only_with_prune(cli, schedules_file, tmp_path):
    """A changed file updates in place; schedules it drops stay unless --prune."""
    cli("apply", "-f", schedules_file)
    changed = tmp_path / "changed.yaml"
    changed.write_text(
        FILE.replace('cron_expression: "*/15 * * * *"', 'cron_expression: "*/5 * * * *"').split(
            "      - task_name: generate_rca"
        )[0]
    )
    assert cli("apply", "-f", str(changed)).stdout.splitlines() == [
        "web-app: 0 created, 1 updated, 0 deleted, 2 unchanged",
        "  ~ fetch_logs [logs] cron '*/15 * * * *' UTC -> fetch_logs [logs] cron '*/5 * * * *' UTC",
    ]
    assert cli("apply", "-f", str(changed), "--prune").stdout.splitlines() == [
        "web-app: 0 created, 0 updated, 2 deleted, 1 unchanged",
        "  - generate_rca cron '0 * * * *' Europe/Paris",
        "  - index_code every 86400s (disabled)",
    ]


def test_export_then_apply_is_a_no_op(cli, schedules_file, tmp_path):
    """What export writes, applied back (with --prune), changes nothing."""
    cli("apply", "-f", schedules_file)
    exported = tmp_path / "exported.yaml"
    cli("export", "-o", str(exported))
    assert cli("apply", "-f", str(exported), "--prune").stdout.splitlines() == [
        "billing: 0 created, 0 updated, 0 deleted, 0 unchanged",
        "web-app: 0 created, 0 updated, 0 deleted, 3 unchanged",
    ]
    one = cli("export", "--service", "billing").stdout
    assert one == "version: 1\nservices:\n- id: billing\n  name: Billing\n  schedules: []\n"


def test_a_file_that_is_not_a_schedules_file_is_refused(cli, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: 1\nservices:\n  - id: Web App\n    name: x\n    schedules: [{cron_expression: '* * * * *'}]\n"
    )
    result = cli("apply", "-f", str(bad), status=1)
    assert result.stderr.splitlines() == [
        f"error: {bad}: services/0/id: 'Web App' does not match '^[a-z0-9][a-z0-9_-]{{0,62}}$'",
        f"{bad}: services/0/schedules/0: 'task_name' is a required property",
    ]


def test_cron_preview(cli):
    valid = cli("cron", "preview", "0 9 * * 1-5", "--timezone", "Europe/Paris", "--count", "2").stdout.splitlines()
    assert valid[0] == "0 9 * * 1-5: At 09:00, Monday through Friday" and len(valid) == 3
    assert cli("cron", "preview", "0 0 30 2 *", status=1).stdout.startswith("invalid: ")
    placed = cli("cron", "preview", "H * * * *", "--service", "web-app", "--task", "fetch_logs", "--count", "1")
    assert re.fullmatch(r"H \* \* \* \* \(\d{1,2} \* \* \* \*\): .+", placed.stdout.splitlines()[0])
    keyed = json.loads(cli("--json", "cron", "preview", "H * * * *", "--key", "web-app:fetch_logs").stdout)
    assert keyed["valid"] and keyed["resolved_expression"].endswith(" * * * *")


def test_services_get_shows_each_tasks_last_run(cli):
    """`services get`: a `last_run.<task>` line per task it schedules (state, time, failing), or never."""
    cli("services", "put", "web-app", "--name", "Web application", "--description", "Storefront")
    created = json.loads(
        cli("--json", "schedules", "create", "web-app", "--task", "fetch_logs", "--cron", "@hourly").stdout
    )
    cli("schedules", "create", "web-app", "--task", "index_code", "--cron", "0 3 * * *")
    record_run(created["id"], minute=0, events=FAILS)
    shown = dict(line.split(None, 1) for line in cli("services", "get", "web-app").stdout.splitlines())
    assert shown["last_run.fetch_logs"] == "failed 2026-01-31T12:00:04+00:00 (failing)"
    assert shown["last_run.index_code"] == "never"
    assert shown["schedule_count"] == "2"
    body = json.loads(cli("--json", "services", "get", "web-app").stdout)
    assert body["last_outcomes"] == {
        "fetch_logs": {"state": "failed", "at": "2026-01-31T12:00:04Z", "failing": True},
        "index_code": None,
    }


def test_url_and_key_flags_override_the_environment(cli, base_url, api_key, monkeypatch):
    monkeypatch.setenv("LUFFY_ADMIN_KEY", "wrong.key")
    assert cli("tasks", status=1).stderr == "error: Invalid API key.\n"
    assert "fetch_logs" in cli("--url", base_url, "--key", api_key, "tasks").stdout
