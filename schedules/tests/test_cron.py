"""The cron module against Celery's own crontab, the oracle of what beat can schedule."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from celery.schedules import crontab

from schedules import cron

AFTER = datetime(2026, 11, 27, 12, 0, 30, tzinfo=UTC)

VALID = [
    # (input, normalised form)
    ("*/15 * * * *", "*/15 * * * *"),
    ("* * * * *", "* * * * *"),
    ("0 * * * *", "0 * * * *"),
    ("0 0 * * *", "0 0 * * *"),
    ("30 2 * * 1-5", "30 2 * * 1-5"),
    ("0 9 * * mon-fri", "0 9 * * 1-5"),
    ("0 9 * * MON,wed,Fri", "0 9 * * 1,3,5"),
    ("0 0 1 jan *", "0 0 1 1 *"),
    ("0 0 1 jan-mar,oct *", "0 0 1 1-3,10 *"),
    ("0 0 * * 7", "0 0 * * 0"),
    ("0 0 * * 5-7", "0 0 * * 0,5,6"),
    ("0 0 * * 0-7", "0 0 * * *"),
    ("0 0 * * 1-7/2", "0 0 * * 0,1,3,5"),
    ("0 0 * * sun", "0 0 * * 0"),
    ("0 0 29 2 *", "0 0 29 2 *"),
    ("0 0 31 * *", "0 0 31 * *"),
    ("0 0 30,31 2,3 *", "0 0 30,31 2,3 *"),
    ("0 0 13 * 5", "0 0 13 * 5"),
    ("0-59/5 * * * *", "0-59/5 * * * *"),
    ("5-55/10 8-18 * * 1-5", "5-55/10 8-18 * * 1-5"),
    ("0,30 */2 * * *", "0,30 */2 * * *"),
    ("59 23 31 12 *", "59 23 31 12 *"),
    ("  */5   *  * * *  ", "*/5 * * * *"),
    ("0 0 1 */3 *", "0 0 1 */3 *"),
    ("15 14 1 * *", "15 14 1 * *"),
    ("0 22 * * 1-5", "0 22 * * 1-5"),
    ("23 0-20/2 * * *", "23 0-20/2 * * *"),
    ("@hourly", "0 * * * *"),
    ("@daily", "0 0 * * *"),
    ("@midnight", "0 0 * * *"),
    ("@weekly", "0 0 * * 0"),
    ("@monthly", "0 0 1 * *"),
    ("@yearly", "0 0 1 1 *"),
    ("@annually", "0 0 1 1 *"),
    ("@HOURLY", "0 * * * *"),
]

INVALID = [
    # (input, words the message must contain)
    ("", "required"),
    ("   ", "required"),
    ("* * * *", "exactly 5 fields"),
    ("* * * * * *", "exactly 5 fields"),
    ("61 * * * *", "out of range 0-59"),
    ("60 * * * *", "out of range 0-59"),
    ("* 24 * * *", "out of range 0-23"),
    ("* * 0 * *", "out of range 1-31"),
    ("* * 32 * *", "out of range 1-31"),
    ("* * * 13 *", "out of range 1-12"),
    ("* * * 0 *", "out of range 1-12"),
    ("* * * * 8", "out of range 0-7"),
    ("*/0 * * * *", "step 0"),
    ("*/60 * * * *", "step 60"),
    ("5/15 * * * *", "needs a range"),
    ("10-5 * * * *", "backwards"),
    ("1,,2 * * * *", "not a valid cron value"),
    ("* * * * mon-", "not a valid cron value"),
    ("-1 * * * *", "not a valid cron value"),
    ("abc * * * *", "not a number"),
    ("* * * jan-foo *", "not a number or a name"),
    ("* * * * mon-jan", "not a number or a name"),
    ("jan * * * *", "not a number"),
    ("?  * * * *", "not a valid cron value"),
    ("L * * * *", "not a number"),
    ("0 0 L * *", "not a number"),
    ("0 0 1W * *", "not a number"),
    ("0 0 * * 1#2", "not a valid cron value"),
    ("\u0663 * * * *", "ASCII"),
    ("\uff11 * * * *", "ASCII"),
    ("0 0 30 2 *", "never fires"),
    ("0 0 31 4 *", "never fires"),
    ("0 0 31 2,4,6,9,11 *", "never fires"),
    ("@reboot", "@reboot is not supported"),
    ("@every 5m", "Unknown macro"),
    ("* " * 100, "at most 120 characters"),
    (None, "must be a string"),
    (15, "must be a string"),
    ("*/15 * * * * ; rm -rf /", "exactly 5 fields"),
]


def _celery_crontab(text: str) -> crontab:
    minute, hour, day_of_month, month_of_year, day_of_week = text.split()
    return crontab(
        minute=minute,
        hour=hour,
        day_of_month=day_of_month,
        month_of_year=month_of_year,
        day_of_week=day_of_week,
    )


@pytest.mark.parametrize(("expression", "normalised"), VALID)
def test_valid_expression_normalises_and_celery_schedules_it(expression, normalised):
    """Whatever the module accepts, Celery's crontab parses and computes three next runs for."""
    assert cron.normalise(expression) == normalised
    schedule = _celery_crontab(normalised)
    moment = AFTER
    for _ in range(3):
        start, delta, _ = schedule.remaining_delta(moment)
        following = start + delta
        assert following > moment
        moment = following
    assert cron.next_runs(expression, "UTC", AFTER, 3)[-1] == moment


@pytest.mark.parametrize(("expression", "message"), INVALID)
def test_invalid_expression_is_refused_with_reason(expression, message):
    """A refused expression says why, in words a person can act on."""
    with pytest.raises(cron.CronError) as excinfo:
        cron.parse(expression)
    assert message in str(excinfo.value)


@pytest.mark.parametrize(
    "expression", ["0 0 30 2 *", "0 0 31 4 *", "61 * * * *", "*/0 * * * *", "5/15 * * * *", "* * * * 7"]
)
def test_what_celery_cannot_schedule_is_refused_or_rewritten(expression):
    """The oracle the other way: if Celery's crontab rejects the raw text, the module refuses it
    or rewrites it into a form Celery accepts (day-of-week 7)."""
    with pytest.raises(ValueError):
        _celery_crontab(" ".join(expression.split()))
    try:
        normalised = cron.normalise(expression)
    except cron.CronError:
        return
    _celery_crontab(normalised)


def test_leap_day_schedule_fires_every_four_years():
    """29 February is accepted and runs on leap days only."""
    runs = cron.next_runs("0 0 29 2 *", "UTC", AFTER, 2)
    assert runs == [
        datetime(2028, 2, 29, tzinfo=UTC),
        datetime(2032, 2, 29, tzinfo=UTC),
    ]


def test_next_runs_follow_the_schedule_timezone_across_dst():
    """09:00 in Europe/Paris is 08:00 UTC before the 28 March 2027 switch, 07:00 UTC after."""
    after = datetime(2027, 3, 26, 12, 0, tzinfo=UTC)
    runs = cron.next_runs("0 9 * * *", "Europe/Paris", after, 3)
    assert [run.astimezone(UTC).isoformat() for run in runs] == [
        "2027-03-27T08:00:00+00:00",
        "2027-03-28T07:00:00+00:00",
        "2027-03-29T07:00:00+00:00",
    ]
    assert [run.astimezone(ZoneInfo("Europe/Paris")).hour for run in runs] == [9, 9, 9]


def test_next_run_is_strictly_after_the_given_moment():
    """A moment exactly on a slot gives the following slot, as beat would after running it."""
    on_slot = datetime(2026, 11, 27, 12, 15, tzinfo=UTC)
    assert cron.next_run_after("*/15 * * * *", "UTC", on_slot) == datetime(2026, 11, 27, 12, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expression", "words"),
    [
        ("*/15 * * * *", "Every 15 minutes"),
        ("0 9 * * 1-5", "At 09:00, Monday through Friday"),
        ("@daily", "At 00:00"),
        ("0 0 * * 7", "At 00:00, only on Sunday"),
    ],
)
def test_describe_in_words(expression, words):
    assert cron.describe(expression) == words


def test_describe_warns_when_both_day_fields_restrict():
    """Celery runs only when day of month AND day of week match; the words must say so."""
    words = cron.describe("0 0 13 * 5")
    assert words == (
        "At 00:00, on day 13 of the month, only on Friday (only when both the day of month and the day of week match)"
    )
    assert cron.next_runs("0 0 13 * 5", "UTC", AFTER, 1)[0].weekday() == 4


# Every field's extreme steps and ranges: whatever the parser accepts must also be described.
DESCRIBABLE = [
    "0 0 * * */7",
    "* * * * 3-3/7",
    "* * * * 0-7/7",
    "*/59 */23 */30 */11 */6",
    "0-59/59 0-23/23 1-31/30 1-12/11 0-6/6",
    "1-1/59 * * * *",
    "* * * * 1-7/7",
]


@pytest.mark.parametrize("expression", [*DESCRIBABLE, *(text for _, text in VALID)])
def test_every_accepted_expression_is_described(expression):
    """What the parser accepts has words (cron_descriptor refuses a day-of-week step of 7 alone)."""
    words = cron.describe(expression)
    assert words and words[0].isupper()


def test_day_of_week_step_of_seven_reads_as_the_days_it_runs():
    """``*/7`` on day of week runs on Sunday only, and says so."""
    assert cron.describe("0 0 * * */7") == "At 00:00, only on Sunday"
    assert cron.describe("* * * * 3-3/7") == "Every minute, only on Wednesday"


def test_next_runs_name_each_instant_once_across_a_spring_forward_gap():
    """Europe/Paris skips 02:00-03:00 on 28 March 2027: the hourly slot at 01:00 UTC is listed once."""
    after = datetime(2027, 3, 28, 0, 30, tzinfo=UTC)
    runs = cron.next_runs("0 * * * *", "Europe/Paris", after, 3)
    assert [run.astimezone(UTC).isoformat() for run in runs] == [
        "2027-03-28T01:00:00+00:00",
        "2027-03-28T02:00:00+00:00",
        "2027-03-28T03:00:00+00:00",
    ]
