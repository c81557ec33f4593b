"""How the admin shows runs: state badges, the "Failing" filter, the runs table and its chart.

The chart is an inline SVG drawn here, on the server: no JavaScript, nothing from a CDN.
"""

from django.contrib import admin
from django.db.models import Q
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from ..models import Dispatch
from .display import STATE_LOOK, state_badge, utc

State = Dispatch.State

RUNS_SHOWN = 50


class FailingFilter(admin.SimpleListFilter):
    """Schedules whose newest finished run failed (the API's ``failing``)."""

    title = "failing"
    parameter_name = "failing"

    def lookups(self, request, model_admin):
        return [("yes", "Failing"), ("no", "Not failing")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(last_finished_state=State.FAILED)
        if self.value() == "no":
            # No finished run yet (NULL) is not failing either; a plain exclude() would drop it.
            return queryset.filter(Q(last_finished_state__isnull=True) | ~Q(last_finished_state=State.FAILED))
        return queryset


def _error(run: Dispatch) -> str:
    return f"{run.error_type}: {run.error_message}" if run.error_type else run.error_message


def runs_table(runs: list[Dispatch]) -> SafeString | str:
    if not runs:
        return "- (none yet)"
    rows = format_html_join(
        "",
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
        '<td class="run-error">{}</td></tr>',
        (
            (
                utc(run.slot),
                run.get_trigger_display(),
                state_badge(run.state),
                "-" if run.sent_at is None else f"{(run.sent_at - run.slot).total_seconds():.3f} s",
                "-" if run.runtime_seconds is None else f"{run.runtime_seconds:.3f} s",
                run.worker or "-",
                run.retries,
                _error(run) or "",
            )
            for run in runs
        ),
    )
    return format_html(
        '<table class="runs"><thead><tr><th>slot</th><th>trigger</th><th>state</th><th>late by</th>'
        "<th>runtime</th><th>worker</th><th>retries</th><th>error</th></tr></thead><tbody>{}</tbody></table>",
        rows,
    )


# --- the chart ---------------------------------------------------------------------------

WIDTH, PANEL, GAP, LEFT = 720, 90, 34, 70


def _panel(runs: list[Dispatch], values: list[float | None], *, top: int, title: str, colour_of) -> str:
    """One bar panel: a bar per run (oldest left), scaled to the panel's largest value."""
    peak = max((value for value in values if value is not None), default=0.0) or 1.0
    step = (WIDTH - LEFT - 10) / max(len(runs), 1)
    parts = [
        format_html(
            '<text x="0" y="{}" class="chart-title">{}</text>'
            '<text x="{}" y="{}" class="chart-axis" text-anchor="end">{}</text>'
            '<text x="{}" y="{}" class="chart-axis" text-anchor="end">0 s</text>'
            '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#9ca3af"/>',
            top - 8,
            title,
            LEFT - 6,
            top + 10,
            f"{peak:.3g} s",
            LEFT - 6,
            top + PANEL,
            LEFT,
            top + PANEL,
            WIDTH - 10,
            top + PANEL,
        )
    ]
    for index, (run, value) in enumerate(zip(runs, values, strict=True)):
        if value is None:
            continue
        height = max(PANEL * max(value, 0.0) / peak, 1.0)
        parts.append(
            format_html(
                '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}: {}</title></rect>',
                f"{LEFT + index * step + 1:.1f}",
                f"{top + PANEL - height:.1f}",
                f"{max(step - 2, 1):.1f}",
                f"{height:.1f}",
                colour_of(run),
                utc(run.slot),
                f"{value:.3f} s",
            )
        )
    return "".join(parts)


def runs_chart(runs: list[Dispatch]) -> SafeString | str:
    """Runtime (coloured by state) and lateness (sent minus slot) of ``runs``, oldest left."""
    if not runs:
        return "-"
    ordered = list(reversed(runs))
    runtime = _panel(
        ordered,
        [run.runtime_seconds for run in ordered],
        top=18,
        title="runtime",
        colour_of=lambda run: STATE_LOOK[run.state][1],
    )
    lateness = _panel(
        ordered,
        [(run.sent_at - run.slot).total_seconds() for run in ordered],
        top=18 + PANEL + GAP,
        title="lateness (sent minus slot)",
        colour_of=lambda run: "#6b7280",
    )
    height = 18 + 2 * PANEL + GAP + 6
    # Only numbers and escaped text (format_html) go into the panels.
    return mark_safe(
        f'<svg class="runs-chart" role="img" aria-label="Runtime and lateness of the last {len(runs)} runs" '
        f'xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" '
        f'font-family="sans-serif" font-size="11">{runtime}{lateness}</svg>'
    )
