"""Timing validation shared by the API, the admin and the write path."""

import pytest

from schedules import timing


@pytest.mark.parametrize("name", ["UTC", "Europe/Paris", "America/Argentina/Buenos_Aires", "Etc/GMT+3"])
def test_real_iana_zones_are_time_zones(name):
    assert timing.is_timezone(name)


@pytest.mark.parametrize("name", ["localtime", "Factory", "posixrules", "Europe/Nowhere", "", "utc ", 3])
def test_host_files_and_placeholders_are_not_time_zones(name):
    """``localtime`` is the host's own file and ``Factory`` IANA's "zone not set": neither is a
    place, and what they mean changes with the host."""
    assert not timing.is_timezone(name)
