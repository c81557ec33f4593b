"""The API docs page (Swagger UI) works in a real browser under the Content-Security-Policy."""

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect, sync_playwright

from .admin.test_browser import CHROMIUM, CHROMIUM_ARGS

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(CHROMIUM is None, reason="Chromium is missing: apt-get install chromium"),
]


def test_swagger_ui_renders_the_schema_with_no_policy_violation(live_server):
    """Log in, open /api/docs/: the API's title and operations show, the console reports no CSP refusal."""
    get_user_model().objects.create_superuser("operator", "operator@example.com", "a-long-test-password")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.set_default_timeout(15_000)
        console = []
        page.on("console", lambda message: console.append(message.text))

        page.goto(f"{live_server.url}/admin/login/")
        page.fill("#id_username", "operator")
        page.fill("#id_password", "a-long-test-password")
        page.click("input[type=submit]")
        page.goto(f"{live_server.url}/api/docs/")

        expect(page.locator(".swagger-ui .info .title")).to_contain_text("luffy-admin task scheduling API")
        expect(page.locator(".opblock-summary-path").first).to_be_visible()
        browser.close()
    assert [text for text in console if "Content Security Policy" in text] == []
