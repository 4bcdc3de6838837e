"""End to end in a real browser: the four servers, ``streamlit run`` of the app, and headless Chromium.

Open the shop, type a customer, see the cards, buy one, and see it gone from the refreshed grid; a screenshot of
the page is saved under the test's tmp dir (``shop.png``, then ``shop-after-buy.png``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from browser import FLAGS, ensure_chromium
from tinyrun import TinyRun

import recsys.ui
from recsys.serving.servers import ServingStack, free_port

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.slow
APP = Path(recsys.ui.__file__).with_name("app.py")
CARD = "[class*='st-key-card-']"  # Streamlit gives an element with key K the CSS class st-key-K
VIEWPORT = {"width": 1400, "height": 1700}  # tall enough for the whole grid in one screenshot


@pytest.fixture(scope="module")
def shop_url(ui_run: TinyRun, ui_stack: ServingStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``streamlit run`` of the app on a free loopback port, as ``make ui`` starts it; stopped afterwards."""
    port = free_port()
    log = tmp_path_factory.mktemp("streamlit") / "streamlit.log"
    env = {
        **os.environ,
        "RECSYS_HOME": str(ui_run.settings.home.resolve()),
        "RECSYS_UI_ENDPOINT_URL": ui_stack.url,
    }
    command = [sys.executable, "-m", "streamlit", "run", str(APP), "--server.headless", "true",
               "--server.address", "127.0.0.1", "--server.port", str(port),
               "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    try:
        _wait_healthy(f"http://127.0.0.1:{port}/_stcore/health", process, log)
        yield f"http://127.0.0.1:{port}/"
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _wait_healthy(url: str, process: subprocess.Popen, log: Path, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"streamlit exited with code {process.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    pytest.fail(f"streamlit not healthy after {timeout_s:.0f} s:\n{log.read_text(errors='replace')[-3000:]}")


def card_ids(page: Page) -> list[int]:
    """The article ids of the cards on the page, in order."""
    classes = page.locator(CARD).evaluate_all("cards => cards.map(c => c.className)")
    return [int(re.search(r"st-key-card-(\S+)", c).group(1)) for c in classes]  # type: ignore[union-attr]


def test_choose_a_customer_buy_and_the_article_leaves_the_grid(
    shop_url: str, ui_run: TinyRun, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from playwright.sync_api import expect, sync_playwright

    chromium = ensure_chromium()
    customer = ui_run.recent_buyers(1, skip=12)[0]
    profile = tmp_path_factory.mktemp("chromium-profile")  # a fresh user data dir: no state from other runs
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=str(chromium), headless=True, args=list(FLAGS), viewport=VIEWPORT
        )
        try:
            page = browser.new_page()
            page.goto(shop_url, timeout=60_000)
            expect(page.get_by_text("Recommendations").first).to_be_visible(timeout=60_000)
            box = page.get_by_label("Customer id")
            box.fill(customer)
            box.press("Enter")
            cards = page.locator(CARD)
            expect(cards).to_have_count(12, timeout=60_000)
            expect(page.get_by_text("Recent purchases")).to_be_visible()
            before = card_ids(page)
            first = cards.first
            name = first.locator(".rs-name").inner_text()
            assert name and first.locator(".rs-swatch").count() == 1
            page.screenshot(path=str(tmp_path / "shop.png"))

            bought = before[0]
            page.locator(f".st-key-buy-{bought} button").click()
            expect(page.get_by_text(f"(article {bought})")).to_be_visible(timeout=60_000)  # the success message
            expect(page.locator(f".st-key-card-{bought}")).to_have_count(0, timeout=60_000)
            expect(cards).to_have_count(12, timeout=60_000)
            after = card_ids(page)
            assert bought not in after and after != before
            expect(page.locator(".rs-line b").first).to_have_text(name)  # newest of the recent purchases
            page.screenshot(path=str(tmp_path / "shop-after-buy.png"))
        finally:
            browser.close()
    assert (tmp_path / "shop.png").stat().st_size > 10_000
