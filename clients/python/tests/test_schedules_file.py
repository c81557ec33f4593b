"""The server's `manage.py schedules apply|export` and the CLI's `apply|export`: one format, one diff."""

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from client_helpers import FILE, FIRST_APPLY, cli_runner
from schedules.models import AuditEvent, TaskSchedule

ROOT = Path(__file__).resolve().parents[3]


def _manage(*args) -> list[str]:
    out = StringIO()
    call_command("schedules", *args, stdout=out)
    return out.getvalue().splitlines()


@pytest.fixture
def cli(base_url, api_key, monkeypatch):
    return cli_runner(base_url, api_key, monkeypatch)


@pytest.fixture
def files(tmp_path):
    first = tmp_path / "schedules.yaml"
    first.write_text(FILE)
    changed = tmp_path / "changed.yaml"
    changed.write_text(FILE.replace("*/15 * * * *", "*/5 * * * *").replace("enabled: false", "enabled: true"))
    return str(first), str(changed)


def test_server_and_client_share_the_file_schema():
    """One JSON Schema: the server's copy is the client's file, byte for byte."""
    client_copy = ROOT / "clients/python/luffy_admin_client/schedules_file.schema.json"
    assert (ROOT / "schedules/schedules_file.schema.json").read_text() == client_copy.read_text()


def test_manage_apply_prints_what_the_cli_prints(cli, files):
    """The same file and state: the server command's lines are the CLI's, for dry runs and writes."""
    first, changed = files
    assert _manage("apply", "-f", first) == FIRST_APPLY
    assert AuditEvent.objects.filter(actor="system:manage.py schedules apply", action="create").count() == 5

    server_dry = _manage("apply", "-f", changed, "--dry-run", "--prune")
    client_dry = cli("apply", "-f", changed, "--dry-run", "--prune").stdout.splitlines()
    assert (
        server_dry
        == client_dry
        == [
            "web-app: 0 created, 2 updated, 0 deleted, 1 unchanged [dry run]",
            "  ~ fetch_logs [logs] cron '*/15 * * * *' UTC -> fetch_logs [logs] cron '*/5 * * * *' UTC",
            "  ~ index_code every 86400s (disabled) -> index_code every 86400s",
            "billing: 0 created, 0 updated, 0 deleted, 0 unchanged [dry run]",
        ]
    )
    assert _manage("apply", "-f", changed) == [line.replace(" [dry run]", "") for line in server_dry]
    assert _manage("apply", "-f", changed) == cli("apply", "-f", changed).stdout.splitlines()


def test_manage_export_then_apply_is_a_no_op_and_matches_the_cli_export(cli, files, tmp_path):
    first, _ = files
    _manage("apply", "-f", first)
    exported = tmp_path / "exported.yaml"
    _manage("export", "-o", str(exported))
    assert exported.read_text() == cli("export").stdout
    before = list(TaskSchedule.objects.values_list("id", "updated_at").order_by("id"))
    assert _manage("apply", "-f", str(exported), "--prune") == [
        "billing: 0 created, 0 updated, 0 deleted, 0 unchanged",
        "web-app: 0 created, 0 updated, 0 deleted, 3 unchanged",
    ]
    assert list(TaskSchedule.objects.values_list("id", "updated_at").order_by("id")) == before
    assert _manage("export", "--service", "billing") == [
        "version: 1",
        "services:",
        "- id: billing",
        "  name: Billing",
        "  schedules: []",
    ]


def test_manage_apply_refuses_a_bad_file_or_a_bad_schedule(transactional_db, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 2\nservices: []\n")
    with pytest.raises(CommandError, match="version: 1 was expected"):
        _manage("apply", "-f", str(bad))
    bad.write_text(FILE.replace("*/15 * * * *", "61 * * * *"))
    with pytest.raises(CommandError, match=r"^\[0\]\.cron_expression: minute: 61 is out of range 0-59\.$"):
        _manage("apply", "-f", str(bad))
    with pytest.raises(CommandError, match="No service 'nope'"):
        _manage("export", "--service", "nope")
