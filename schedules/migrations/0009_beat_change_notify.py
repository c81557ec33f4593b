"""Triggers that tell a listening fleet beat what changed in django-celery-beat's tables.

PostgreSQL only (a no-op elsewhere: beat polls there). Each statement that inserts, updates
or deletes rows sends ``NOTIFY luffy_beat`` on commit with ``<kind>:<id>,<id>,...`` (kind
``task`` for periodic tasks; ``crontab``, ``interval``, ``solar``, ``clocked`` for timing rows),
500 ids per notification, or ``<kind>:*`` for a TRUNCATE or more than 10,000 rows at once. They
are statement-level with transition tables, so a bulk update costs one trigger call, not one
per row. A scheduler writing run state (``last_run_at``, ``total_run_count``) is no change.
"""

from django.db import migrations

CHANNEL = "luffy_beat"
TABLES = {
    "task": "django_celery_beat_periodictask",
    "crontab": "django_celery_beat_crontabschedule",
    "interval": "django_celery_beat_intervalschedule",
    "solar": "django_celery_beat_solarschedule",
    "clocked": "django_celery_beat_clockedschedule",
}

FUNCTION = f"""
CREATE OR REPLACE FUNCTION luffy_beat_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    kind text := TG_ARGV[0];
    ids bigint[];
BEGIN
    -- plpgsql plans each statement when it first runs it: a branch naming a transition table
    -- the firing trigger lacks is never planned.
    IF TG_OP = 'TRUNCATE' THEN
        PERFORM pg_notify('{CHANNEL}', kind || ':*');
        RETURN NULL;
    ELSIF TG_OP = 'INSERT' THEN
        SELECT array_agg(id ORDER BY id) INTO ids FROM new_rows;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT array_agg(id ORDER BY id) INTO ids FROM old_rows;
    ELSE
        -- Rows whose two versions differ beyond run state. Grouped, not joined: transition
        -- tables have no statistics, and a nested-loop join over a bulk update is quadratic.
        SELECT array_agg(id ORDER BY id) INTO ids FROM (
            SELECT id FROM (
                SELECT id, to_jsonb(n) - 'last_run_at' - 'total_run_count' AS version FROM new_rows n
                UNION ALL
                SELECT id, to_jsonb(o) - 'last_run_at' - 'total_run_count' FROM old_rows o
            ) AS versions
            GROUP BY id
            HAVING count(DISTINCT version) > 1
        ) AS changed;
    END IF;
    IF ids IS NULL THEN
        RETURN NULL;
    END IF;
    IF cardinality(ids) > 10000 THEN
        PERFORM pg_notify('{CHANNEL}', kind || ':*');
        RETURN NULL;
    END IF;
    -- A payload must stay under 8,000 bytes.
    FOR i IN 1 .. cardinality(ids) BY 500 LOOP
        PERFORM pg_notify('{CHANNEL}', kind || ':' || array_to_string(ids[i : i + 499], ','));
    END LOOP;
    RETURN NULL;
END
$$;
"""


def _triggers(kind: str, table: str) -> list[str]:
    events = {
        "delete": "REFERENCING OLD TABLE AS old_rows",
        "update": "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
    }
    if kind == "task":
        events["insert"] = "REFERENCING NEW TABLE AS new_rows"
    statements = [
        f"CREATE TRIGGER luffy_beat_notify_{event} AFTER {event.upper()} ON {table} {transition} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION luffy_beat_notify('{kind}')"
        for event, transition in events.items()
    ]
    statements.append(
        f"CREATE TRIGGER luffy_beat_notify_truncate AFTER TRUNCATE ON {table} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION luffy_beat_notify('{kind}')"
    )
    return statements


def install(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(FUNCTION)
    for kind, table in TABLES.items():
        for statement in _triggers(kind, table):
            schema_editor.execute(statement)


def uninstall(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in TABLES.values():
        for event in ("insert", "update", "delete", "truncate"):
            schema_editor.execute(f"DROP TRIGGER IF EXISTS luffy_beat_notify_{event} ON {table}")
    schema_editor.execute("DROP FUNCTION IF EXISTS luffy_beat_notify()")


class Migration(migrations.Migration):
    dependencies = [
        ("schedules", "0008_api_key_scopes_and_run_permission"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(install, uninstall)]
