"""An operator's session in a real browser: headless Chromium against a live server.

Uses Debian's ``chromium`` package (``make test`` installs it when run as root); Playwright
drives it over CDP and never downloads a browser. Screenshots go to ``test-output/browser/``.
"""

import re
import shutil
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django_celery_beat.models import PeriodicTask
from playwright.sync_api import expect, sync_playwright

from schedules import beat_rows, runs, services
from schedules.models import AuditEvent, TaskSchedule

CHROMIUM = shutil.which("chromium")
SCREENSHOTS = Path(settings.BASE_DIR) / "test-output" / "browser"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LIST_TIME = re.compile(r"^\s*\d{4}-\d\d-\d\d \d\d:\d\d\s*$")  # UTC to the minute, as the schedule lists show it
# Cells of the schedules list whose text takes more than one line, and whether the table overflows.
WRAPPED_CELLS = """() => {
    const wrapped = [];
    for (const cell of document.querySelectorAll('#result_list tbody tr > *')) {
        const range = document.createRange();
        range.selectNodeContents(cell);
        const lineHeight = parseFloat(getComputedStyle(cell).lineHeight);
        if (range.getBoundingClientRect().height > 1.5 * lineHeight) {
            wrapped.push([cell.className, cell.textContent.trim()]);
        }
    }
    const results = document.querySelector('#changelist .results');
    return {wrapped, overflow: results.scrollWidth - results.clientWidth};
}"""


pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(CHROMIUM is None, reason="Chromium is missing: apt-get install chromium"),
]


def _log_in(page, live_server):
    """Log in as the operator (create it first: the ORM cannot run inside Playwright's event loop)."""
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "operator")
    page.fill("#id_password", "a-long-test-password")
    page.click("input[type=submit]")
    expect(page.locator("#site-name")).to_have_text("luffy-admin")


def test_operator_schedules_a_service_in_the_admin(live_server):
    """Log in (the product's section first), add a service, hit and fix a cron error, read words
    and next run, disable it."""
    get_user_model().objects.create_superuser("operator", "operator@example.com", "a-long-test-password")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(15_000)

        _log_in(page, live_server)
        sections = page.locator("#content-main div.module caption")
        expect(sections).to_have_text(
            ["Service schedules", "API Key Permissions", "Authentication and Authorization", "Axes", "Periodic Tasks"]
        )
        page.screenshot(path=SCREENSHOTS / "0-index.png", full_page=True)

        page.goto(f"{live_server.url}/admin/schedules/service/add/")
        page.fill("#id_id", "web-app")
        page.fill("#id_name", "Web application")
        page.fill("#id_description", "Customer-facing storefront")
        page.click("input[name=_save]")
        expect(page).to_have_url(re.compile(r"/admin/schedules/service/web-app/change/$"))
        expect(page.locator(".messagelist")).to_contain_text("was added successfully")

        page.click("#add-schedule")
        expect(page.locator("#id_service")).to_have_value("web-app")
        page.select_option("#id_task_name", "fetch_logs")
        page.fill("#id_cron_expression", "61 * * * *")
        page.click("input[name=_save]")
        cron_row = page.locator(".field-cron_expression")
        expect(cron_row.locator(".errorlist")).to_have_text("minute: 61 is out of range 0-59.")
        page.screenshot(path=SCREENSHOTS / "1-invalid-cron.png", full_page=True)

        page.fill("#id_cron_expression", "*/15 * * * *")
        page.click("input[name=_save]")
        expect(page).to_have_url(re.compile(r"/admin/schedules/service/web-app/change/$"))

        page.click("#add-schedule")
        page.select_option("#id_task_name", "generate_rca")
        page.check("#id_schedule_type input[value=interval]")
        expect(page.locator("#id_cron_expression")).to_be_disabled()
        page.fill("#id_interval_seconds", "3600")
        page.click("input[name=_save]")
        expect(page).to_have_url(re.compile(r"/admin/schedules/service/web-app/change/$"))

        rows = page.locator("#schedules-group tbody tr.has_original")
        expect(rows).to_have_count(2)
        fetch_logs = rows.filter(has_text="fetch_logs")
        expect(fetch_logs.locator(".field-timing_words")).to_have_text("Every 15 minutes")
        expect(fetch_logs.locator(".field-next_run")).to_have_text(LIST_TIME)
        expect(rows.filter(has_text="generate_rca").locator(".field-timing_words")).to_have_text("Every hour")
        page.screenshot(path=SCREENSHOTS / "2-service-page.png", full_page=True)

        page.goto(f"{live_server.url}/admin/schedules/taskschedule/?task=fetch_logs")
        page.check("#result_list tbody input.action-select")
        page.select_option("select[name=action]", "disable_schedules")
        page.click("button[name=index]")
        expect(page.locator(".messagelist")).to_contain_text("1 schedule disabled: web-app / fetch_logs.")
        row = page.locator("#result_list tbody tr")
        expect(row.locator(".field-enabled img")).to_have_attribute("alt", "False")
        expect(row.locator(".field-next_run")).to_have_text("-")
        page.screenshot(path=SCREENSHOTS / "3-disabled.png", full_page=True)

        page.click("#result_list tbody .field-service_link a")
        disabled = page.locator("#schedules-group tbody tr.has_original").filter(has_text="fetch_logs")
        expect(disabled.locator(".field-next_run")).to_have_text("-")
        page.screenshot(path=SCREENSHOTS / "4-service-page.png", full_page=True)
        browser.close()

    schedule = TaskSchedule.objects.get(task_name="fetch_logs")
    assert beat_rows.timing_of(schedule.periodic_task).cron_expression == "*/15 * * * *"
    assert PeriodicTask.objects.get(pk=schedule.periodic_task_id).enabled is False
    assert list(AuditEvent.objects.filter(schedule_id=schedule.pk).order_by("at").values_list("actor", "action")) == [
        ("user:operator", "create"),
        ("user:operator", "toggle"),
    ]


def test_schedule_list_rows_stay_one_line_at_1400_px(live_server, service, make_service, make_schedule):
    """At 1400 px the schedules list fits its width and every row is one line high; narrower, the
    timing in words wraps while service ids, cron expressions, time zones and times do not."""
    billing = make_service("billing", name="Billing")
    weekdays = make_schedule(cron_expression="0 9 * * 1-5", timezone="Europe/Paris")
    make_schedule(task_name="index_code", schedule_type="interval", interval_seconds=3600)
    make_schedule(billing, task_name="generate_rca", cron_expression="*/15 * * * *")
    # What beat writes back after a send (as in test_api), so the last-run column has a time.
    PeriodicTask.objects.filter(pk=weekdays.periodic_task_id).update(
        last_run_at=datetime(2026, 11, 27, 8, 0, 3, tzinfo=UTC)
    )
    get_user_model().objects.create_superuser("operator", "operator@example.com", "a-long-test-password")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(15_000)
        _log_in(page, live_server)
        page.goto(f"{live_server.url}/admin/schedules/taskschedule/")
        rows = page.locator("#result_list tbody tr")
        expect(rows).to_have_count(3)
        weekday_row = rows.filter(has_text="0 9 * * 1-5")
        expect(weekday_row.locator(".field-timing_words")).to_have_text("At 09:00, Monday through Friday")
        expect(weekday_row.locator(".field-last_run")).to_have_text("2026-11-27 08:00")
        expect(weekday_row.locator(".field-next_run")).to_have_text(LIST_TIME)
        page.screenshot(path=SCREENSHOTS / "5-schedule-list.png", full_page=True)
        layout = page.evaluate(WRAPPED_CELLS)
        # Narrower, something has to give: only the timing in words may wrap.
        page.set_viewport_size({"width": 1000, "height": 900})
        narrow = page.evaluate(WRAPPED_CELLS)
        page.screenshot(path=SCREENSHOTS / "6-schedule-list-narrow.png", full_page=True)
        browser.close()

    assert layout == {"wrapped": [], "overflow": 0}
    assert narrow["wrapped"], "at 1000 px some cell should wrap; the check would see nothing"
    assert {css_class for css_class, _ in narrow["wrapped"]} == {"field-timing_words"}


def _record_runs(schedule, count: int, *, fail_every: int | None) -> None:
    """``count`` runs a minute apart, with runtimes and lateness that vary, failing every
    ``fail_every``-th one, as the monitor would record them."""
    start = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
    buffer = runs.PatchBuffer()
    for index in range(count):
        slot = start + timedelta(minutes=index)
        sent = slot + timedelta(milliseconds=40 + 35 * (index % 7))
        task_id = str(uuid.uuid4())
        services.run_record_sent(
            periodic_task_name=schedule.periodic_task.name, slot=slot, task_id=task_id, sent_at=sent
        )
        started = sent.timestamp() + 0.2
        runtime = 3.0 + (index * 7919 % 11) * 0.8
        failed = fail_every is not None and index % fail_every == fail_every - 1
        events = [("task-received", sent.timestamp() + 0.1, {}), ("task-started", started, {})]
        if failed:
            events.append(("task-failed", started + runtime, {"exception": "TimeoutError('upstream timed out')"}))
        else:
            events.append(("task-succeeded", started + runtime, {"runtime": runtime}))
        for kind, at, fields in events:
            buffer.add({"type": kind, "uuid": task_id, "timestamp": at, "hostname": "celery@worker-1", **fields})
    services.run_events_apply(patches=buffer.take())


def test_schedule_page_charts_its_runs_and_the_failing_filter_finds_failing_schedules(
    live_server, service, make_schedule
):
    """The schedule's page draws runtime and lateness of its last runs as an SVG (a bar per run
    and measure) above the runs table with the error; the list's "Failing" filter keeps only
    the schedule whose last run failed. The chart's screenshot (test-output/browser/runs-chart.png)
    is what docs/runs-chart.png shows."""
    flaky = make_schedule(cron_expression="* * * * *")
    steady = make_schedule(task_name="index_code", cron_expression="0 3 * * *")
    _record_runs(flaky, 30, fail_every=3)
    _record_runs(steady, 5, fail_every=None)
    get_user_model().objects.create_superuser("operator", "operator@example.com", "a-long-test-password")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(15_000)
        _log_in(page, live_server)

        page.goto(f"{live_server.url}/admin/schedules/taskschedule/{flaky.pk}/change/")
        chart = page.locator("svg.runs-chart")
        expect(chart).to_be_visible()
        expect(chart.locator("rect")).to_have_count(60)
        expect(chart.locator("rect[fill='#b91c1c']")).to_have_count(10)
        box = chart.bounding_box()
        assert box["width"] >= 700 and box["height"] >= 200
        table = page.locator("table.runs tbody tr")
        expect(table).to_have_count(30)
        expect(table.first.locator(".run-state")).to_have_text("\u2716 failed")
        expect(table.first.locator(".run-error")).to_have_text("TimeoutError: upstream timed out")
        page.locator("fieldset", has=chart).screenshot(path=SCREENSHOTS / "runs-chart.png")

        page.goto(f"{live_server.url}/admin/schedules/taskschedule/")
        expect(page.locator("#result_list tbody tr")).to_have_count(2)
        page.locator("#changelist-filter a", has_text="Failing").first.click()
        rows = page.locator("#result_list tbody tr")
        expect(rows).to_have_count(1)
        expect(rows.locator(".field-task")).to_have_text("fetch_logs")
        expect(rows.locator(".field-last_run .run-state")).to_have_text("\u2716")
        expect(rows.locator(".field-last_run .run-state")).to_have_attribute("title", re.compile(r"^failed since "))
        browser.close()
