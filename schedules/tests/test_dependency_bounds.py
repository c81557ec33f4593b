"""The bounds settings.py puts on database sessions and broker sockets (the fault tests in
test_web_faults.py show what they do; these show every connection gets them)."""

import pytest
from celery import current_app
from django.db import connection

pytestmark = pytest.mark.django_db


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL session settings")
def test_database_sessions_carry_the_statement_timeout_and_keepalives():
    """Outside the web process (which tightens it, see test_web_faults.py) the timeout is generous."""
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone() == ("30s",)
    parameters = connection.connection.get_dsn_parameters()
    assert (parameters["connect_timeout"], parameters["keepalives"], parameters["keepalives_idle"]) == ("2", "1", "30")


@pytest.mark.skipif(not current_app.conf.broker_url.startswith("redis://"), reason="Redis transport options")
def test_broker_connections_have_connect_and_read_timeouts():
    with current_app.connection_for_write() as broker:
        client = broker.default_channel.client
        options = client.connection_pool.connection_kwargs
        assert (options["socket_connect_timeout"], options["socket_timeout"]) == (2, 2)
    assert current_app.conf.broker_connection_timeout == 2
