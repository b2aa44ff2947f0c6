"""Open an HTML report in headless Chromium (the system's, driven by Playwright) and check it."""

import os
import shutil

import pytest


def chromium_path() -> str | None:
    """The system Chrome/Chromium (``BROWSER_PATH`` wins), or None."""
    if os.environ.get("BROWSER_PATH"):
        return os.environ["BROWSER_PATH"]
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def require_chromium() -> str:
    path = chromium_path()
    if path is None:
        pytest.skip("no Chrome/Chromium on this machine (`make chromium` installs Debian's); the browser check needs one")
    return path


def check_report(html_path, screenshot_path) -> dict:
    """Load the report from disk; return console errors, page errors, the number of figure divs and
    of rendered plots, and the screenshot's size. Network is off: the file must be self-contained."""
    from playwright.sync_api import sync_playwright

    exe = require_chromium()
    errors, page_errors, requests = [], [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: page_errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url) if not r.url.startswith(("file:", "data:", "blob:")) else None)
            page.goto(f"file://{os.path.abspath(html_path)}")
            page.wait_for_load_state("load")
            n_divs = page.locator("div.plotly-graph-div").count()
            page.wait_for_function(f"document.querySelectorAll('div.plotly-graph-div .main-svg').length >= {2 * n_divs}",
                                   timeout=30_000)
            rendered = page.evaluate("""() => [...document.querySelectorAll('div.plotly-graph-div')].filter(
                d => d.querySelector('.main-svg') && d.getBoundingClientRect().height > 50
                     && d.querySelectorAll('.trace, .hm, .heatmaplayer image, .barlayer .point').length > 0).length""")
            page.screenshot(path=str(screenshot_path), full_page=True)
        finally:
            browser.close()
    return {"console_errors": errors, "page_errors": page_errors, "figures": n_divs, "rendered": rendered,
            "external_requests": requests}
