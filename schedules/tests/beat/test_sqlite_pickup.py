"""The polling fallback on SQLite, the embedded default (`make run`): every kind of change reaches
a running fleet scheduler there too. The suite runs on PostgreSQL, so the pickup tests run again
in a pytest of their own on a SQLite file."""

import os
import re
import subprocess
import sys
from pathlib import Path

from django.conf import settings

# Saves, deletes (also next to a save in one poll), SQL updates, django-celery-beat's admin
# actions, timing-row edits, and a first load with an empty change-stamp table.
PICKUP_TESTS = "picked_up or empty_change_stamp"


def test_every_change_kind_reaches_a_polling_beat_on_sqlite(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-k",
            PICKUP_TESTS,
            "schedules/tests/beat/test_scheduler.py",
        ],
        cwd=Path(settings.BASE_DIR),
        env=dict(os.environ, DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}", LUFFY_VAR_DIR=str(tmp_path / "var")),
        capture_output=True,
        text=True,
        timeout=300,
    )
    summary = result.stdout.strip().splitlines()[-1]
    assert result.returncode == 0, result.stdout[-4000:]
    # Every polling variant ran and passed; only the NOTIFY variants (PostgreSQL's) were skipped.
    passed = int(re.search(r"(\d+) passed", summary).group(1))
    assert passed >= 12, summary
    assert "failed" not in summary and "error" not in summary, summary
