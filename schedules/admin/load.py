"""The "Upcoming load" page: sends per minute for the next 24 h stacked by task, drawn as SVG here.

No JavaScript and nothing from a CDN: the chart is plain SVG written by the server, so it
renders in any browser the admin does (and in a screenshot).
"""

from datetime import timedelta

from django.template.response import TemplateResponse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from .. import load, selectors
from .display import utc_minute

HOURS = 24
# One colour per task, in the catalogue's order of appearance; readable on white.
COLOURS = ("#2f6db5", "#e07b1f", "#3a9a4a", "#b8323a", "#7b52ab", "#8c6a3c")
WIDTH, HEIGHT = 1400, 300
LEFT, RIGHT, TOP, BOTTOM = 56, 24, 26, 28


def _colour(tasks: list[str], task: str) -> str:
    return COLOURS[tasks.index(task) % len(COLOURS)]


def _frame(peak: int, x_labels: list[tuple[float, str]], label: str) -> list[SafeString]:
    """Axes, horizontal grid lines at 0, half and the peak, and the x labels."""
    plot_bottom = HEIGHT - BOTTOM
    parts = []
    for value in sorted({0, peak // 2, peak}):
        y = plot_bottom - (plot_bottom - TOP) * value / peak
        parts.append(
            format_html(
                '<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="#ccc"/>'
                '<text x="{}" y="{}" text-anchor="end" font-size="12">{}</text>',
                LEFT,
                WIDTH - RIGHT,
                f"{y:.1f}",
                f"{y:.1f}",
                LEFT - 6,
                f"{y + 4:.1f}",
                value,
            )
        )
    for x, text in x_labels:
        parts.append(
            format_html(
                '<text x="{}" y="{}" text-anchor="middle" font-size="12">{}</text>', f"{x:.1f}", HEIGHT - 8, text
            )
        )
    parts.append(format_html('<text x="{}" y="12" font-size="12">{}</text>', LEFT, label))  # above the plot
    return parts


def _bars(columns: list[tuple[int, dict[str, int]]], count: int, peak: int, tasks: list[str]) -> list[SafeString]:
    """Stacked bars: ``columns`` holds (position, {task: sends}) of ``count`` equal slots."""
    plot_width, plot_height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_width / count
    bar = max(slot * 0.8, 1)
    rects = []
    for position, by_task in columns:
        bottom = HEIGHT - BOTTOM
        for task in tasks:
            sends = by_task.get(task, 0)
            if not sends:
                continue
            height = plot_height * sends / peak
            bottom -= height
            rects.append((f"{LEFT + position * slot:.2f}", f"{bottom:.2f}", f"{bar:.2f}", f"{height:.2f}", task))
    return [
        format_html_join(
            "",
            '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}</title></rect>',
            ((x, y, w, h, _colour(tasks, task), task) for x, y, w, h, task in rects),
        )
    ]


def _svg(parts: list[SafeString], title: str) -> SafeString:
    return format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {} {}" width="100%" role="img" aria-label="{}">{}</svg>',
        WIDTH,
        HEIGHT,
        title,
        mark_safe("".join(parts)),  # each part was built with format_html
    )


def minute_chart(upcoming: load.Load) -> SafeString:
    minutes = HOURS * 60
    peak = max((bucket.total for bucket in upcoming.buckets), default=0) or 1
    plot_width = WIDTH - LEFT - RIGHT
    columns = [(int((bucket.at - upcoming.start).total_seconds()) // 60, bucket.by_task) for bucket in upcoming.buckets]
    x_labels = [
        (LEFT + plot_width * hour / HOURS, utc_minute(upcoming.start + timedelta(hours=hour))[11:])
        for hour in range(0, HOURS + 1, 3)
    ]
    return _svg(
        _frame(peak, x_labels, "sends per minute") + _bars(columns, minutes, peak, upcoming.tasks),
        "Sends per minute for the next 24 hours, stacked by task",
    )


def second_chart(upcoming: load.Load) -> SafeString:
    peak = max((second.total for second in upcoming.busiest_minute_seconds), default=0) or 1
    plot_width = WIDTH - LEFT - RIGHT
    columns = [(second.second, second.by_task) for second in upcoming.busiest_minute_seconds]
    x_labels = [(LEFT + plot_width * (second + 0.4) / 60, f":{second:02d}") for second in range(0, 60, 5)]
    return _svg(
        _frame(peak, x_labels, "sends per second") + _bars(columns, 60, peak, upcoming.tasks),
        "Sends per second within the busiest minute, stacked by task",
    )


def upcoming_load_view(model_admin, request):
    """The page: both charts, a legend, and the busiest minutes with their counts per task."""
    upcoming = selectors.upcoming_load(hours=HOURS, resolution="minute")
    context = {
        **model_admin.admin_site.each_context(request),
        "title": "Upcoming load",
        "subtitle": None,
        "opts": model_admin.model._meta,
        "upcoming": upcoming,
        "legend": [(task, _colour(upcoming.tasks, task)) for task in upcoming.tasks],
        "minute_chart": minute_chart(upcoming),
        "second_chart": second_chart(upcoming) if upcoming.busiest else None,
        "busiest": [
            (
                utc_minute(bucket.at),
                bucket.total,
                ", ".join(f"{task} {count}" for task, count in bucket.by_task.items()),
            )
            for bucket in upcoming.busiest
        ],
    }
    return TemplateResponse(request, "admin/schedules/taskschedule/upcoming_load.html", context)
