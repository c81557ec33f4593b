"""Cron expressions: parse, validate, normalise, describe in words, compute next runs.

The one place for cron rules. It accepts exactly what Celery's ``crontab`` (which
django-celery-beat's ``CrontabSchedule`` builds) can schedule, and refuses everything that
would be stored and then break or silently misbehave in beat: out-of-range values, zero or
oversized steps, ``N/step`` (Celery cannot parse it), non-ASCII digits, ``@reboot``, and
expressions that never fire (``0 0 30 2 *``).

Normalised form: names become numbers (``mon`` -> ``1``, ``jan`` -> ``1``), day-of-week 7
(Sunday, as in Vixie cron) becomes 0 because Celery's parser stops at 6, and whitespace
collapses to single spaces. That form is what ``CrontabSchedule`` stores.

``H`` (Jenkins' hashed fields): ``H``, ``H/15``, ``H(0-29)``, ``H(0-29)/10`` in any field pick
stable values from a per-schedule key, so schedules written alike spread over the field
instead of firing together. ``resolve`` turns them into plain values at write time: beat, of
either kind, only ever sees an ordinary crontab (``H/15`` -> ``7,22,37,52``).
"""

import calendar
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from cron_descriptor import CasingTypeEnum, ExpressionDescriptor
from django_celery_beat.tzcrontab import TzAwareCrontab

MAX_EXPRESSION_LENGTH = 120

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

_MONTH_NAMES = {name.lower(): number for number, name in enumerate(calendar.month_abbr) if name}
_DAY_NAMES = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}


@dataclass(frozen=True)
class _Field:
    label: str
    low: int
    high: int
    names: dict[str, int]
    star_high: int


# Day-of-week accepts 7 (Sunday) on input; it is folded to 0 before Celery sees it.
FIELDS = (
    _Field("minute", 0, 59, {}, 59),
    _Field("hour", 0, 23, {}, 23),
    _Field("day of month", 1, 31, {}, 31),
    _Field("month", 1, 12, _MONTH_NAMES, 12),
    _Field("day of week", 0, 7, _DAY_NAMES, 6),
)

_ITEM = re.compile(
    r"^(?:(?P<star>\*)|(?P<start>[0-9A-Za-z]+)(?:-(?P<end>[0-9A-Za-z]+))?)(?:/(?P<step>[0-9]+))?$",
    re.ASCII,
)


_HASH_ITEM = re.compile(r"^H(?:\((?P<low>[0-9]+)-(?P<high>[0-9]+)\))?(?:/(?P<step>[0-9]+))?$", re.ASCII)
# Jenkins reads a plain H in day of month as 1-28, so the schedule fires in every month.
HASH_LAST_DAY_OF_MONTH = 28
HASH_FORMS = "H, H/15, H(0-29) or H(0-29)/10"


class CronError(ValueError):
    """An expression beat must never store; the message says why, for a person."""


@dataclass(frozen=True)
class CronExpression:
    minute: str
    hour: str
    day_of_month: str
    month_of_year: str
    day_of_week: str

    @property
    def text(self) -> str:
        return " ".join(self.fields)

    @property
    def fields(self) -> tuple[str, str, str, str, str]:
        return (self.minute, self.hour, self.day_of_month, self.month_of_year, self.day_of_week)

    def crontab(self, timezone: str | ZoneInfo = "UTC") -> TzAwareCrontab:
        """The schedule object django-celery-beat builds from a CrontabSchedule row."""
        zone = timezone if isinstance(timezone, ZoneInfo) else ZoneInfo(timezone)
        return TzAwareCrontab(
            minute=self.minute,
            hour=self.hour,
            day_of_month=self.day_of_month,
            month_of_year=self.month_of_year,
            day_of_week=self.day_of_week,
            tz=zone,
        )


def _value(token: str, field: _Field) -> int:
    if token.isdigit():
        number = int(token)
    elif token.lower() in field.names:
        number = field.names[token.lower()]
    else:
        raise CronError(f"{field.label}: {token!r} is not a number" + (" or a name" if field.names else "") + ".")
    if not field.low <= number <= field.high:
        raise CronError(f"{field.label}: {number} is out of range {field.low}-{field.high}.")
    return number


def _parse_field(raw: str, field: _Field) -> tuple[str, set[int], int]:
    """Return the field's normalised text, the values it matches and its highest bound."""
    parts, values, highest = [], set(), field.low
    for item in raw.split(","):
        match = _ITEM.match(item)
        if not match:
            raise CronError(f"{field.label}: {item!r} is not a valid cron value.")
        step = match["step"]
        if step is not None:
            span = field.high - field.low
            if not 1 <= int(step) <= span:
                raise CronError(f"{field.label}: step {step} must be between 1 and {span}.")
            if match["start"] is not None and match["end"] is None:
                raise CronError(
                    f"{field.label}: {item!r} needs a range before the step, "
                    f"e.g. '{match['start']}-{field.high}/{step}'."
                )
        if match["star"]:
            low, high = field.low, field.star_high
            text = "*"
        else:
            low = _value(match["start"], field)
            high = _value(match["end"], field) if match["end"] is not None else low
            if high < low:
                raise CronError(f"{field.label}: range {low}-{high} runs backwards.")
            text = f"{low}-{high}" if match["end"] is not None else str(low)
        stride = int(step) if step is not None else 1
        if step is not None:
            text += f"/{step}"
        parts.append(text)
        values.update(range(low, high + 1, stride))
        highest = max(highest, high)
    return ",".join(parts), values, highest


def _fold_sunday(text: str, values: set[int], highest: int) -> tuple[str, set[int], int]:
    """Day-of-week 7 means Sunday; Celery's parser stops at 6, so spell the days out."""
    if highest < 7:
        return text, values, highest
    days = {day % 7 for day in values}
    if days == set(range(7)):
        return "*", days, 6
    return ",".join(str(day) for day in sorted(days)), days, 6


def stable_hash(key: str, salt: str) -> int:
    """A number that depends only on ``key`` and ``salt``: the same in every process and run.

    Python's ``hash()`` of a string changes with each interpreter (PYTHONHASHSEED), so it would
    move a schedule's minutes on every restart; sha256 does not.
    """
    return int.from_bytes(hashlib.sha256(f"{key}\0{salt}".encode()).digest()[:8], "big")


def _hash_item(item: str, field: _Field, key: str, salt: str) -> tuple[str, list[int]]:
    """One ``H`` item: its canonical text and the values it resolves to for ``key``."""
    match = _HASH_ITEM.match(item)
    if not match:
        raise CronError(f"{field.label}: {item!r} is not a valid H form; use {HASH_FORMS}.")
    if match["low"] is not None:
        low, high = _value(match["low"], field), _value(match["high"], field)
        if high < low:
            raise CronError(f"{field.label}: range {low}-{high} runs backwards.")
        text = f"H({low}-{high})"
    else:
        low = field.low
        high = HASH_LAST_DAY_OF_MONTH if field.label == "day of month" else field.star_high
        text = "H"
    if match["step"] is None:
        return text, [low + stable_hash(key, salt) % (high - low + 1)]
    step, span = int(match["step"]), high - low
    if span == 0:
        raise CronError(f"{field.label}: {text} has a single value; drop the step.")
    if not 1 <= step <= span:
        raise CronError(f"{field.label}: step {step} must be between 1 and {span}.")
    # Jenkins: the hash picks the first slot within one step, then every step to the end.
    return f"{text}/{step}", list(range(low + stable_hash(key, salt) % step, high + 1, step))


def _resolve_field(raw: str, field: _Field, key: str | None) -> tuple[str, str]:
    """A field's written text (H items kept) and its plain text (H items replaced by values)."""
    written, plain = [], []
    for position, item in enumerate(raw.split(",")):
        if not item.startswith("H"):
            written.append(item)
            plain.append(item)
            continue
        if key is None:
            raise CronError(
                "H picks stable values from the schedule's service and task; it has no value "
                "without them (the preview takes service_id and task_name, or key)."
            )
        text, values = _hash_item(item, field, key, f"{field.label}:{position}")
        written.append(text)
        plain.append(",".join(str(value) for value in values))
    return ",".join(written), ",".join(plain)


def _field_has_hash(raw: str) -> bool:
    # Items, not letters: "THU" is a day name, not a hash.
    return any(item.startswith("H") for item in raw.split(","))


def has_hash(expression) -> bool:
    """Whether the expression uses ``H`` (and so resolves per schedule)."""
    return isinstance(expression, str) and any(_field_has_hash(raw) for raw in expression.split())


def resolve(expression, key: str | None) -> tuple[CronExpression, str | None]:
    """The plain crontab an expression stands for under ``key``, and its written form.

    The written form is the normalised expression with its ``H`` items kept (``H/15 * * * 1``),
    or None when it has none (then the plain form is all there is to keep).
    """
    parsed = parse(expression, key=key)
    if not has_hash(expression):
        return parsed, None
    written = [
        _resolve_field(raw, field, key)[0] if _field_has_hash(raw) else text
        for raw, field, text in zip(expression.split(), FIELDS, parsed.fields, strict=True)
    ]
    return parsed, " ".join(written)


def parse(expression, *, key: str | None = None) -> CronExpression:
    """Parse and validate a 5-field expression or a macro; raise CronError saying why not.

    ``H`` items resolve from ``key`` (see ``resolve``); without one they are refused.
    """
    if not isinstance(expression, str):
        raise CronError("A cron expression must be a string such as '*/15 * * * *'.")
    if len(expression) > MAX_EXPRESSION_LENGTH:
        raise CronError(f"A cron expression may be at most {MAX_EXPRESSION_LENGTH} characters.")
    stripped = expression.strip()
    if not stripped:
        raise CronError("A cron expression is required, e.g. '*/15 * * * *'.")
    if stripped.startswith("@"):
        macro = stripped.lower()
        if macro == "@reboot":
            raise CronError("@reboot is not supported: beat has no notion of a reboot.")
        if macro not in MACROS:
            raise CronError(f"Unknown macro {stripped!r}; use one of {', '.join(MACROS)}.")
        stripped = MACROS[macro]
    if not stripped.isascii():
        raise CronError("A cron expression may contain only ASCII characters.")
    raw_fields = stripped.split()
    if len(raw_fields) != 5:
        raise CronError(
            f"A cron expression has exactly 5 fields (minute hour day-of-month month "
            f"day-of-week); got {len(raw_fields)}."
        )
    plain = [
        _resolve_field(raw, field, key)[1] if _field_has_hash(raw) else raw
        for raw, field in zip(raw_fields, FIELDS, strict=True)
    ]
    parsed = [_parse_field(raw, field) for raw, field in zip(plain, FIELDS, strict=False)]
    parsed[4] = _fold_sunday(*parsed[4])
    days_of_month, months = parsed[2][1], parsed[3][1]
    # February counts 29 days: a leap-day schedule fires every four years, which is legal.
    longest = max(calendar.monthrange(2024, month)[1] for month in months)
    if min(days_of_month) > longest:
        raise CronError(f"This expression never fires: day {min(days_of_month)} never occurs in the selected month(s).")
    return CronExpression(*(text for text, _, _ in parsed))


def normalise(expression) -> str:
    return parse(expression).text


def restricts_both_days(expression: CronExpression) -> bool:
    return expression.day_of_month != "*" and expression.day_of_week != "*"


def describe(expression) -> str:
    """The expression in words, e.g. 'Every 15 minutes'."""
    parsed = parse(expression) if not isinstance(expression, CronExpression) else expression
    try:
        words = _words(parsed.text)
    except Exception:  # cron_descriptor refuses some steps Celery runs (a day-of-week step of 7)
        words = _words(_spelled_out(parsed))
    if restricts_both_days(parsed):
        # Vixie cron runs when either day field matches; Celery runs only when both do.
        words += " (only when both the day of month and the day of week match)"
    return words


def _words(text: str) -> str:
    return str(ExpressionDescriptor(text, use_24hour_time_format=True, casing_type=CasingTypeEnum.Sentence))


def _spelled_out(expression: CronExpression) -> str:
    """The same expression with every stepped field listed value by value (``*/7`` -> ``0``)."""
    fields = []
    for text, field in zip(expression.fields, FIELDS, strict=True):
        if "/" in text:
            _, values, _ = _parse_field(text, field)
            text = ",".join(str(value) for value in sorted(values))
        fields.append(text)
    return " ".join(fields)


def next_run_after(expression, timezone, after: datetime) -> datetime:
    """The first slot strictly after ``after``, as Celery's crontab computes it."""
    parsed = parse(expression) if not isinstance(expression, CronExpression) else expression
    return next_slot(parsed.crontab(timezone), after)


def next_slot(schedule: TzAwareCrontab, after: datetime) -> datetime:
    """``next_run_after`` for a crontab built once and reused (beat computes many slots)."""
    slot, after = after, after.astimezone(UTC)
    # Across a spring-forward gap Celery names a wall-clock time that does not exist
    # (02:00+01:00 in Europe/Paris), then the real one at the same instant (03:00+02:00):
    # one instant, one slot. Compared in UTC, as times in one zone compare by wall clock.
    while slot.astimezone(UTC) <= after:
        start, delta, _ = schedule.remaining_delta(slot.astimezone(schedule.tz))
        slot = start + delta
    return slot


def next_runs(expression, timezone, after: datetime, count: int) -> list[datetime]:
    parsed = parse(expression) if not isinstance(expression, CronExpression) else expression
    runs, moment = [], after
    for _ in range(count):
        moment = next_run_after(parsed, timezone, moment)
        runs.append(moment)
    return runs
