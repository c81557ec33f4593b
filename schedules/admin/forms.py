"""Admin forms. They check with the write path's own functions and never write.

``ScheduleForm`` edits a TaskSchedule whose timing lives in its PeriodicTask, so its
timing fields are plain form fields; ``clean()`` runs ``services.schedule_validate``, which
``schedule_create`` / ``schedule_update`` run again when the admin saves.
The two django-celery-beat forms add ``cron.parse`` to beat's own pages, so an operator
cannot store there a crontab that beat would choke on.
"""

from django import forms
from django.core.exceptions import ValidationError
from django_celery_beat.admin import PeriodicTaskForm
from django_celery_beat.models import CrontabSchedule

from .. import catalogue, cron, services, timing
from ..beat_rows import CRONTAB_FIELDS, crontab_expression, crontab_row_expression
from ..errors import ConflictError
from ..models import TaskSchedule


def _task_choices():
    return [
        (task.name, f"{task.name}: {task.description}" if task.description else task.name)
        for task in sorted(catalogue.get_catalogue().values(), key=lambda task: task.name)
    ]


class ScheduleForm(forms.ModelForm):
    task_name = forms.ChoiceField(
        label="Task",
        choices=_task_choices,
        help_text="Catalogue task beat sends, with the service id as its argument. Example: fetch_logs",
    )
    schedule_type = forms.ChoiceField(
        label="Type",
        choices=[(timing.CRON, "Cron expression"), (timing.INTERVAL, "Fixed interval")],
        initial=timing.CRON,
        widget=forms.RadioSelect,
        help_text="A cron expression runs at wall-clock times; an interval runs every N seconds.",
    )
    cron_expression = forms.CharField(
        label="Cron expression",
        required=False,
        max_length=cron.MAX_EXPRESSION_LENGTH,
        help_text=(
            "For cron: minute hour day-of-month month day-of-week, in the time zone below. "
            "Examples: */15 * * * * (every 15 minutes), 0 2 * * 1-5 (02:00 on weekdays), @daily. "
            "H picks a stable value per service and task, spreading services apart: H/15 * * * * "
            "(every 15 minutes from a minute of its own), H(0-29) 2 * * *. "
            "Leave empty for an interval, or for the task's default expression when it has one."
        ),
    )
    interval_seconds = forms.IntegerField(
        label="Interval (seconds)",
        required=False,
        help_text="For an interval: run every N seconds. Example: 900 (every 15 minutes). Leave empty for cron.",
    )
    jitter_seconds = forms.IntegerField(
        label="Jitter (seconds)",
        required=False,
        help_text="For an interval, optional: shift its runs by a stable offset of up to this many seconds "
        "(at most a tenth of the interval), so services do not all run together. Example: 60",
    )
    timezone = forms.CharField(
        label="Time zone",
        initial=timing.UTC,
        max_length=timing.MAX_TIMEZONE_LENGTH,
        help_text="IANA name the cron expression is read in. Example: Europe/Paris. Interval schedules use UTC.",
    )
    enabled = forms.BooleanField(
        label="Enabled",
        required=False,
        initial=True,
        help_text="Beat sends only enabled schedules. Enabling never runs at once: "
        "the next run is the first slot after now.",
    )

    class Meta:
        model = TaskSchedule
        fields = ["service"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.instance._state.adding:
            self.initial.update(services.schedule_snapshot(self.instance))

    @property
    def schedule_values(self) -> dict:
        """The cleaned values, as keyword arguments of schedule_create / schedule_update."""
        data = self.cleaned_data
        return {
            "task_name": data["task_name"],
            "schedule_type": data["schedule_type"],
            "cron_expression": data["cron_expression"] or None,
            "interval_seconds": data["interval_seconds"],
            "jitter_seconds": data["jitter_seconds"],
            "timezone": data["timezone"],
            "enabled": data["enabled"],
        }

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        adding = self.instance._state.adding
        try:
            services.schedule_validate(
                service=data["service"] if adding else self.instance.service,
                schedule=None if adding else self.instance,
                **self.schedule_values,
            )
        except ValidationError as exc:
            self.add_error(None, exc)
        except ConflictError as exc:
            self.add_error(None, exc.detail)
        return data


def _cron_error(value: str, position: int) -> str | None:
    """Why one crontab field is refused, checked alone (the others set to '*')."""
    if not value or any(char.isspace() for char in value):
        return "One cron field per box, without spaces. Example: */15"
    probe = ["*"] * len(CRONTAB_FIELDS)
    probe[position] = value
    try:
        cron.parse(crontab_expression(probe))
    except cron.CronError as exc:
        return str(exc)
    return None


class StrictCrontabScheduleForm(forms.ModelForm):
    """django-celery-beat's crontab page, refusing what Celery cannot schedule."""

    class Meta:
        model = CrontabSchedule
        fields = ["minute", "hour", "day_of_week", "day_of_month", "month_of_year", "timezone"]

    def clean(self):
        data = super().clean()
        values = [data.get(name) for name in CRONTAB_FIELDS]
        if any(value is None for value in values):
            return data
        field_errors = False
        for position, (name, value) in enumerate(zip(CRONTAB_FIELDS, values, strict=False)):
            message = _cron_error(value, position)
            if message:
                self.add_error(name, message)
                field_errors = True
        if field_errors:
            return data
        try:
            parsed = cron.parse(crontab_expression(values))
        except cron.CronError as exc:
            raise ValidationError(str(exc)) from None
        # Store the form Celery reads (names as numbers, Sunday as 0).
        data.update(zip(CRONTAB_FIELDS, parsed.fields, strict=False))
        return data


class StrictPeriodicTaskForm(PeriodicTaskForm):
    """django-celery-beat's periodic task page, refusing a crontab beat cannot schedule."""

    def clean_crontab(self):
        crontab = self.cleaned_data.get("crontab")
        if crontab is not None:
            try:
                cron.parse(crontab_row_expression(crontab))
            except cron.CronError as exc:
                raise ValidationError(f"Beat cannot schedule this crontab: {exc} Fix the crontab first.") from None
        return crontab
