"""The benchmarks' own PostgreSQL database and Django set up on it (the scripts share these)."""

import os
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent


def bench_database_url(database: str) -> str:
    parts = urlsplit(os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/luffy_admin")
    return urlunsplit(parts._replace(path=f"/{database}"))


def setup_django(database_url: str):
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "luffy_admin.settings")
    os.environ.setdefault("DJANGO_LOG_LEVEL", "WARNING")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def ensure_database(database_url: str):
    import psycopg2

    parts = urlsplit(database_url)
    admin = psycopg2.connect(
        host=parts.hostname,
        port=parts.port or 5432,
        user=parts.username or "postgres",
        password=parts.password,
        dbname="postgres",
    )
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [parts.path.lstrip("/")])
        if cursor.fetchone() is None:
            cursor.execute(f'CREATE DATABASE "{parts.path.lstrip("/")}"')
    admin.close()
