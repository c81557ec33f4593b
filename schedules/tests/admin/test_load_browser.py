"""The "Upcoming load" page in a real browser: the herd of 1,000 services on */15, then spread by H/15.

Headless Chromium as in test_browser.py. The screenshots of the chart before and after the
switch go to test-output/browser/; docs/load-before.png and docs/load-after.png are copies of them.
"""

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from playwright.sync_api import expect, sync_playwright

from schedules import services
from schedules.models import TaskSchedule

from .test_browser import CHROMIUM, CHROMIUM_ARGS, _log_in

SCREENSHOTS = Path(settings.BASE_DIR) / "test-output" / "browser"
SERVICES = 1000

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(CHROMIUM is None, reason="Chromium is missing: apt-get install chromium"),
]


def _look_at_the_load(live_server, screenshot: Path) -> list[tuple[str, int]]:
    """Open the page as the operator, save a screenshot, return the busiest minutes and their counts.

    A browser session of its own each time: the ORM may not run inside Playwright's event loop.
    """
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(30_000)
        _log_in(page, live_server)
        page.click("text=Upcoming load")
        expect(page.locator("h1")).to_have_text("Upcoming load")
        expect(page.locator("#minute-chart svg rect").first).to_be_visible()
        page.screenshot(path=screenshot, full_page=True)
        rows = page.locator("#busiest-minutes tbody tr").all_inner_texts()
        browser.close()
    return [(row.split("\t")[0], int(row.split("\t")[1])) for row in rows]


def test_switching_a_thousand_services_to_h15_flattens_the_chart(live_server, actor):
    """Before: every one of 1,000 fetch_logs schedules fires at :00, :15, :30 and :45, the busiest
    minutes hold all 1,000. After switching them to H/15 through the write path, no minute holds
    more than twice the mean of an hour's minutes."""
    get_user_model().objects.create_superuser("operator", "operator@example.com", "a-long-test-password")
    for number in range(SERVICES):
        service = services.service_create(actor=actor, service_id=f"demo-{number:04d}", name=f"Demo {number}")
        services.schedule_create(actor=actor, service=service, task_name="fetch_logs", cron_expression="*/15 * * * *")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    before = _look_at_the_load(live_server, SCREENSHOTS / "load-before.png")

    assert [count for _, count in before] == [SERVICES] * 5
    assert all(re.search(r":(00|15|30|45)$", minute) for minute, _ in before)

    for schedule in TaskSchedule.objects.select_related("periodic_task__crontab", "periodic_task__interval"):
        services.schedule_update(actor=actor, schedule=schedule, cron_expression="H/15 * * * *")

    after = _look_at_the_load(live_server, SCREENSHOTS / "load-after.png")

    per_hour_minute = SERVICES * 4 / 60  # each service fires 4 times an hour
    assert max(count for _, count in after) <= 2 * per_hour_minute
