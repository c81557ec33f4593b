"""``H`` in cron expressions (Jenkins' hashed fields): forms, stable resolution, spread, refusals."""

import os
import subprocess
import sys
from collections import Counter
from statistics import mean

import pytest
from celery.schedules import crontab

from schedules import cron, timing

KEY = timing.schedule_key("web-app", "fetch_logs")
# Celery's crontab takes its fields in this order.
CELERY_ORDER = ("minute", "hour", "day_of_week", "day_of_month", "month_of_year")

RESOLVED = [
    # (written, resolved for web-app / fetch_logs, written form kept)
    ("H * * * *", "4 * * * *", "H * * * *"),
    ("H/15 * * * *", "4,19,34,49 * * * *", "H/15 * * * *"),
    ("H(0-29) * * * *", "4 * * * *", "H(0-29) * * * *"),
    ("H(0-29)/10 * * * *", "4,14,24 * * * *", "H(0-29)/10 * * * *"),
    ("H H * * *", "4 4 * * *", "H H * * *"),
    ("0 H(9-17)/4 * * mon-fri", "0 9,13,17 * * 1-5", "0 H(9-17)/4 * * 1-5"),
    ("0 0 H * *", "0 0 7 * *", "0 0 H * *"),
    ("0 0 H/10 * *", "0 0 9,19 * *", "0 0 H/10 * *"),
    ("0 0 * * H", "0 0 * * 6", "0 0 * * H"),
    ("0 0 * H *", "0 0 * 7 *", "0 0 * H *"),
    ("H,30 * * * *", "4,30 * * * *", "H,30 * * * *"),
    ("  H/15   *  * * * ", "4,19,34,49 * * * *", "H/15 * * * *"),
]


@pytest.mark.parametrize(("written", "resolved", "kept"), RESOLVED)
def test_hash_forms_resolve_to_a_plain_crontab_celery_runs(written, resolved, kept):
    """Every H form resolves to plain values Celery's crontab accepts; the written form is kept."""
    parsed, written_form = cron.resolve(written, KEY)
    assert (parsed.text, written_form) == (resolved, kept)
    assert parsed.crontab() == crontab(*(getattr(parsed, name) for name in CELERY_ORDER))


def test_an_expression_without_hash_keeps_no_written_form():
    """Only H expressions need their written form kept; names still normalise."""
    assert cron.resolve("0 9 * * THU", KEY) == (cron.parse("0 9 * * 4"), None)


def test_hash_resolution_is_the_same_in_another_process():
    """sha256, not hash(): a new interpreter with another hash seed resolves to the same values."""
    code = "from schedules import cron; print(cron.resolve('H/15 H * * *', 'web-app:fetch_logs')[0].text)"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    other = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert other.stdout.strip() == cron.resolve("H/15 H * * *", KEY)[0].text == "4,19,34,49 4 * * *"


def test_hash_depends_on_service_and_task():
    """Another service, or another task of the same service, lands elsewhere."""
    assert cron.resolve("H/15 * * * *", timing.schedule_key("api", "generate_rca"))[0].text == "10,25,40,55 * * * *"
    minutes = {cron.resolve("H * * * *", timing.schedule_key("web-app", task))[0].minute for task in ("a", "b", "c")}
    assert len(minutes) > 1


def _per_minute(expression: str, services: int) -> Counter:
    counts = Counter()
    for number in range(services):
        parsed, _ = cron.resolve(expression, timing.schedule_key(f"service-{number}", "fetch_logs"))
        counts.update(parsed.crontab().minute)
    return counts


def test_thousand_services_on_h15_spread_within_twice_the_mean():
    """1,000 services on H/15: every minute of the hour is used and none gets twice the mean,
    where */15 puts all 1,000 on the same four minutes."""
    spread = _per_minute("H/15 * * * *", 1000)
    herd = _per_minute("*/15 * * * *", 1000)
    assert len(spread) == 60 and max(spread.values()) < 2 * mean(spread.values())
    assert herd == {0: 1000, 15: 1000, 30: 1000, 45: 1000}


REFUSED = [
    ("H/0 * * * *", "minute: step 0 must be between 1 and 59."),
    ("H/60 * * * *", "minute: step 60 must be between 1 and 59."),
    ("H(30-10) * * * *", "minute: range 30-10 runs backwards."),
    ("H(0-60) * * * *", "minute: 60 is out of range 0-59."),
    ("0 H(0-24) * * *", "hour: 24 is out of range 0-23."),
    ("H(5-5)/2 * * * *", "minute: H(5-5) has a single value; drop the step."),
    ("Hx * * * *", "minute: 'Hx' is not a valid H form; use H, H/15, H(0-29) or H(0-29)/10."),
    ("H(0-29)/ * * * *", "minute: 'H(0-29)/' is not a valid H form; use H, H/15, H(0-29) or H(0-29)/10."),
    ("h * * * *", "minute: 'h' is not a number."),
    ("0 0 H(30-31) 2 *", "This expression never fires: day 30 never occurs in the selected month(s)."),
]


@pytest.mark.parametrize(("expression", "reason"), REFUSED)
def test_bad_hash_forms_are_refused_with_a_reason(expression, reason):
    """A malformed or impossible H says why, as other cron errors do."""
    with pytest.raises(cron.CronError) as refused:
        cron.resolve(expression, KEY)
    assert str(refused.value) == reason


def test_hash_without_a_key_is_refused():
    """H has no value without a schedule to hash (e.g. beat's own crontab page)."""
    with pytest.raises(cron.CronError) as refused:
        cron.parse("H/15 * * * *")
    assert str(refused.value) == (
        "H picks stable values from the schedule's service and task; it has no value without them "
        "(the preview takes service_id and task_name, or key)."
    )
