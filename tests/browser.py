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


#: The page width the browser tests use (a laptop screen).
WIDTH = 1280

#: Elements wider than the page: their right edge beyond the viewport with no ancestor that scrolls
#: or clips them (a table scrolling inside its own box is fine), and the page's own scroll width.
OVERFLOW_JS = """() => {
  const W = document.documentElement.clientWidth;
  const inBox = el => {
    for (let a = el.parentElement; a && a !== document.body && a !== document.documentElement; a = a.parentElement) {
      if (['auto', 'scroll', 'hidden', 'clip'].includes(getComputedStyle(a).overflowX)) return true;
    }
    return false;
  };
  const out = [];
  for (const el of document.body.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if ((r.width === 0 && r.height === 0) || r.right <= W + 1 || inBox(el)) continue;
    const cls = typeof el.className === 'string' && el.className.trim() ? '.' + el.className.trim().split(/\\s+/).join('.') : '';
    out.push(`${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}${cls} (right edge ${Math.round(r.right)} px)`);
  }
  return {scroll_width: document.documentElement.scrollWidth, width: W, elements: out.slice(0, 12)};
}"""


def overflow(page) -> list[str]:
    """What is wider than the page (empty when nothing is): the page's scroll width and the elements."""
    got = page.evaluate(OVERFLOW_JS)
    out = list(got["elements"])
    if got["scroll_width"] > got["width"] + 1:
        out.insert(0, f"the page scrolls sideways: {got['scroll_width']} px wide at {got['width']} px")
    return out


def launch(p):
    """The system Chromium, headless, without any network of its own."""
    return p.chromium.launch(executable_path=require_chromium(), headless=True, args=[
        "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"])


def check_report(html_path, screenshot_path) -> dict:
    """Load the report from disk at :data:`WIDTH` px; return console errors, page errors, the number of
    figure divs and of rendered plots, what is wider than the page (``overflowing``), and write a
    screenshot. Network is off: the file must be self-contained."""
    from playwright.sync_api import sync_playwright

    require_chromium()
    errors, page_errors, requests = [], [], []
    with sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_page(viewport={"width": WIDTH, "height": 900})
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
            wide = overflow(page)
            page.screenshot(path=str(screenshot_path), full_page=True)
        finally:
            browser.close()
    return {"console_errors": errors, "page_errors": page_errors, "figures": n_divs, "rendered": rendered,
            "external_requests": requests, "overflowing": wide}
