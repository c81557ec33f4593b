"""The deployment files say what the README and docs/operations.md promise."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from django.conf import settings

ROOT = Path(settings.BASE_DIR)


@pytest.fixture(scope="module")
def compose() -> dict:
    """docker-compose's own reading of the file when it is installed, else the YAML as written
    with each ``${NAME:-default}`` at its default (what compose does with NAME unset)."""
    if shutil.which("docker-compose"):
        output = subprocess.run(
            ["docker-compose", "config"],
            cwd=ROOT,
            env={"DJANGO_SECRET_KEY": "validation-only", "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return yaml.safe_load(output)
    written = (ROOT / "docker-compose.yml").read_text()
    return yaml.safe_load(re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", written))


def test_compose_runs_two_fleet_beats_each_with_a_health_check(compose):
    beats = {
        name: service for name, service in compose["services"].items() if "beat" in str(service.get("command", ""))
    }
    assert sorted(beats) == ["beat", "beat-standby"]
    for service in beats.values():
        command = " ".join(service["command"]) if isinstance(service["command"], list) else service["command"]
        assert "-S django" not in command
        assert service["healthcheck"]["test"]
        assert service["environment"]["DATABASE_URL"].startswith("postgres://")


def test_compose_publishes_plain_http_on_loopback_only(compose):
    [port] = compose["services"]["web"]["ports"]
    published = port.get("host_ip") if isinstance(port, dict) else port.rsplit(":", 2)[0]
    assert published == "127.0.0.1"


def test_image_leaves_out_the_virtualenv_secrets_history_and_data():
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", ".env", ".git", "var/"} <= set(ignored)


def test_gunicorn_runs_threads_with_a_timeout_in_one_config_file():
    config: dict = {}
    exec((ROOT / "gunicorn.conf.py").read_text(), config)
    assert (config["worker_class"], config["threads"] > 1, config["timeout"]) == ("gthread", True, 30)
    for user in ("scripts/run.sh", "docker-compose.yml"):
        assert "gunicorn.conf.py" in (ROOT / user).read_text()
