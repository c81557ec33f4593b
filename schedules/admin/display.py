"""How the admin shows things: UTC times, counts, and the columns every schedule list shares."""

from datetime import UTC, datetime

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from .. import beat_rows, selectors, timing
from ..models import Dispatch

State = Dispatch.State


def utc(moment: datetime | None) -> str:
    """Readable UTC, e.g. '2026-11-27 12:15:00 UTC'; '-' for never."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "-"


def utc_minute(moment: datetime | None) -> str:
    """Compact UTC for list columns whose header says (UTC), e.g. '2026-11-27 12:15'; '-' for never."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if moment else "-"


def plural(count: int, noun: str) -> str:
    """'1 schedule', '2 schedules'."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


# (icon, colour) per state: green done, red failed, amber in doubt, grey under way.
STATE_LOOK = {
    State.SENT: ("\u2192", "#6b7280"),  # →
    State.RECEIVED: ("\u2193", "#2563eb"),  # ↓
    State.STARTED: ("\u25b6", "#2563eb"),  # ▶
    State.RETRIED: ("\u21bb", "#d97706"),  # ↻
    State.SUCCEEDED: ("\u2714", "#15803d"),  # ✔
    State.FAILED: ("\u2716", "#b91c1c"),  # ✖
    State.REVOKED: ("\u2298", "#6b7280"),  # ⊘
    State.EXPIRED: ("\u231b", "#d97706"),  # ⌛
    State.LOST: ("?", "#d97706"),
}


def state_badge(state: str, title: str = "") -> SafeString:
    icon, colour = STATE_LOOK[state]
    return format_html(
        '<span class="run-state run-{}" style="color: {}" title="{}">{} {}</span>', state, colour, title, icon, state
    )


class ScheduleColumns:
    """Columns a schedule shows in the schedules list and on its service's page.

    Times are UTC to the minute, the zone in the header, so a row fits one line at 1400 px; the
    schedule's own page shows the seconds.
    ``LIST_CSS`` keeps cron expressions, zones and times from wrapping.
    """

    LIST_CSS = "schedules/schedule_lists.css"

    @admin.display(description="service", ordering="service_id")
    def service_link(self, schedule):
        url = reverse("admin:schedules_service_change", args=[schedule.service_id])
        return format_html('<a href="{}">{}</a>', url, schedule.service_id)

    @admin.display(description="task", ordering="task_name")
    def task(self, schedule):
        return schedule.task_name

    @admin.display(description="timing")
    def timing_spec(self, schedule):
        current = beat_rows.schedule_timing(schedule)
        if current.schedule_type == timing.CRON:
            return current.shown_cron_expression
        jitter = f", jitter {current.jitter_seconds} s" if current.jitter_seconds else ""
        return f"every {current.interval_seconds} s{jitter}"

    @admin.display(description="in words")
    def timing_words(self, schedule):
        return beat_rows.schedule_timing(schedule).description

    @admin.display(description="time zone")
    def timezone(self, schedule):
        return beat_rows.timing_of(schedule.periodic_task).timezone

    @admin.display(description="enabled", boolean=True, ordering="periodic_task__enabled")
    def enabled(self, schedule):
        return schedule.periodic_task.enabled

    @admin.display(description="last run (UTC)", ordering="periodic_task__last_run_at")
    def last_run(self, schedule):
        """When beat last sent it, and how the newest run went as an icon (annotated by
        selectors.with_run_outcomes), its state and time in the icon's tooltip. The icon sits in
        this column rather than one of its own so that rows stay one line at 1400 px."""
        when = utc_minute(schedule.periodic_task.last_run_at)
        if not schedule.last_run_state:
            return when
        icon, colour = STATE_LOOK[schedule.last_run_state]
        label = f"{schedule.last_run_state} since {utc(schedule.last_run_state_at)}"
        return format_html(
            '{} <span class="run-state run-{}" style="color: {}" title="{}" aria-label="{}">{}</span>',
            when,
            schedule.last_run_state,
            colour,
            label,
            label,
            icon,
        )

    @admin.display(description="next run (UTC)")
    def next_run(self, schedule):
        return utc_minute(selectors.schedule_next_run(schedule))
