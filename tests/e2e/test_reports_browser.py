"""The report page in a real Chromium: charts drawn from the page's data under the CSP, the
range changed without a reload, a chart's numbers shown as a table, a CSV downloaded."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import expect

from inbox import demo_history
from tests.e2e.conftest import SCREENSHOTS, sign_in

pytestmark = pytest.mark.browser


def test_the_report_page_draws_its_charts_changes_range_shows_a_table_and_exports(
    page, live_server, inbox, problems
):
    agent = User.objects.get(username="agent")
    demo_history.make_history(inbox, [agent], per_day=3, days=10)

    sign_in(page, live_server)
    page.locator("#nav-reports").click()
    page.wait_for_url(re.compile(r"/reports/"))
    for chart in ("volume", "first_response", "heatmap", "agents"):
        expect(page.locator(f'[data-chart="{chart}"] canvas').first).to_be_attached()
    seven_days = page.locator(".report-card .card-value").nth(1).inner_text()

    # A wider range: htmx swaps the figures, the URL follows, the charts are drawn again.
    page.locator("label.chip", has_text="Last 30 days").click()
    page.wait_for_url(re.compile(r"range=30d"))
    expect(page.locator(".report-period")).to_be_visible()
    expect(page.locator('[data-chart="volume"] canvas').first).to_be_attached()
    assert int(
        page.locator(".report-card .card-value").nth(1).inner_text().replace(",", "")
    ) >= int(seven_days.replace(",", ""))

    # A chart's numbers as a table.
    numbers = page.locator("#table-first_response")
    expect(numbers.locator("table")).to_be_hidden()
    numbers.locator("summary").click()
    expect(numbers.locator("table")).to_be_visible()
    expect(numbers.locator("tbody tr")).to_have_count(5)

    with page.expect_download() as download_info:
        numbers.locator("a.csv-link").click()
    download = download_info.value
    assert download.suggested_filename.startswith("finder-report-first-response-")
    with open(download.path(), "rb") as downloaded:
        body = downloaded.read()
    assert body.startswith("\ufeff".encode()) and "Waited" in body.decode("utf-8-sig")

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "reports_page_full.png"), full_page=True)
    assert problems == []
