"""The static leaderboard page (``xtreme-eval report --out DIR`` -> DIR/index.html), opened in
a real headless Chromium (Debian's ``chromium`` + ``chromium-driver``, driven by Selenium).

Checked in the browser: the leaderboard's rows, sorting by a header (numbers, missing last;
names in natural order), partial rows marked, a task's heatmap, the efficacy view, that no
element is wider than the viewport at 1400 and 800 px, that the page logs no console error,
and that hostile system names render as text and run no script. Screenshots are saved
under pytest's tmp folder (their paths are printed) or ``$XTREME_TEST_ARTIFACTS``.

CI installs chromium (``.ci/run``); there a missing browser fails this test instead of skipping it.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest

from harness_ext.cli import main
from helpers.synthetic_results import HOSTILE_FAMILY, HOSTILE_NAMES, write_sweep
from xtreme_tasks.table import TASKS

CHROMIUM = os.environ.get("XTREME_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("XTREME_CHROMEDRIVER", "/usr/bin/chromedriver")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--disable-extensions", "--hide-scrollbars")

#: every element whose box sticks out of the viewport (left or right), as "tag#id.class: left..right"
TOO_WIDE_JS = """
const out = [];
const w = document.documentElement.clientWidth;
for (const e of document.querySelectorAll('body *')) {
  const r = e.getBoundingClientRect();
  if (r.width === 0 && r.height === 0) continue;
  if (r.right > w + 0.5 || r.left < -0.5) out.push(e.tagName + '#' + e.id + '.' + e.className + ': ' + r.left + '..' + r.right);
}
if (document.documentElement.scrollWidth > w) out.push('document scrollWidth ' + document.documentElement.scrollWidth);
return out.slice(0, 10);
"""


def _missing(what: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{what}: CI must run the browser test (.ci/run installs chromium chromium-driver)")
    pytest.skip(f"{what} (apt-get install chromium chromium-driver; pip install selenium)")


@pytest.fixture(scope="module")
def browser():
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _missing("selenium is not installed")
    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).exists():
            _missing(f"{path} not found")
    profile = tempfile.mkdtemp(prefix="xtreme-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> Path:
    folder = Path(os.environ["XTREME_TEST_ARTIFACTS"]) if os.environ.get("XTREME_TEST_ARTIFACTS") else (
        tmp_path_factory.mktemp("page-screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def sweep_page(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sweep-page")
    runs, checkpoints = write_sweep(root)
    out = root / "report"
    assert main(["report", str(runs), "--out", str(out), "-c", str(checkpoints), "--resamples", "200"]) == 0
    return out / "index.html"


def open_page(driver, page: Path, width: int) -> None:
    driver.set_window_size(width, 1000)
    inner = driver.execute_script("return window.innerWidth")
    driver.set_window_size(width + (width - inner), 1000)  # the viewport itself is `width` wide
    driver.get(page.resolve().as_uri())
    driver.get_log("browser")  # start each page with an empty console log


def console_errors(driver) -> list[str]:
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def board_names(driver) -> list[str]:
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('#leaderboard tbody tr .sysname')).map(e => e.textContent)")


def column(driver, key: str) -> list[str]:
    return driver.execute_script(
        "const i = Array.from(document.querySelectorAll('#leaderboard thead th')).findIndex(t => t.dataset.key === arguments[0]);"
        "return Array.from(document.querySelectorAll('#leaderboard tbody tr')).map(r => r.children[i].textContent)", key)


def click_header(driver, key: str) -> None:
    driver.find_element("css selector", f'#leaderboard th[data-key="{key}"] button').click()


def check_fits(driver, where: str) -> None:
    assert driver.execute_script(TOO_WIDE_JS) == [], f"{where}: elements wider than the viewport"


def screenshot(driver, artifacts: Path, name: str) -> Path:
    path = artifacts / f"{name}.png"
    driver.save_screenshot(str(path))
    assert path.stat().st_size > 10_000
    print(f"screenshot: {path}")
    return path


# ----------------------------------------------------------------------------- without a browser


def test_page_is_one_file_with_no_network_and_inert_data(sweep_page):
    text = sweep_page.read_text(encoding="utf-8")
    assert "Content-Security-Policy" in text and "default-src 'none'" in text
    # no external resource of any kind: the page works from file:// and offline
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", text, re.I)
    assert "@import" not in text and "url(" not in text
    # the data is JSON that cannot close its <script>: only the page's own two script elements exist
    assert text.count("<script") == 2 and text.count("</script>") == 2
    for name in HOSTILE_NAMES:
        assert name not in text
    md = (sweep_page.parent / "report.md").read_text(encoding="utf-8")
    # no raw HTML and no link: every '<' and '[' from a name is backslash-escaped (CommonMark: a plain character)
    assert not re.search(r"(?<!\\)<(img|script|/script)", md) and not re.search(r"(?<!\\)\[x\]\(javascript:", md)
    assert r"\<img src=x onerror=" in md and r"\[x](javascript:" in md  # shown, escaped


# ----------------------------------------------------------------------------- in Chromium


def test_leaderboard_sorting_partial_rows_and_hostile_names(browser, sweep_page, artifacts):
    open_page(browser, sweep_page, 1400)
    names = board_names(browser)
    # complete rows by XTREME score (best first), then the partial row
    assert names[:4] == ["tiny512-mnli", "tiny512", "tiny128-mnli", "tiny128"]
    assert names[-1] == "tiny8-partial" and set(HOSTILE_NAMES) <= set(names) and len(names) == 12
    assert browser.execute_script("return document.querySelector('#view-all').getAttribute('aria-pressed')") == "true"
    # the partial row: one short badge, and its numbers, marked partial (not '-' everywhere)
    row = browser.find_element("css selector", '#leaderboard tr[data-key="tiny8-partial"]')
    assert row.find_element("css selector", ".badge").text == "partial"
    partial = row.find_elements("css selector", "td.partial")
    assert partial and all(cell.text.endswith("\u2020") for cell in partial)
    assert "not an XTREME score" in partial[0].get_attribute("title")
    limited = browser.find_element("css selector", '#leaderboard tr[data-key="tiny64-limit"]')
    assert limited.find_element("css selector", ".badge").text == "--limit"
    # every number traceable: its results file, --limit, date, versions
    xtreme_cell = limited.find_elements("css selector", "td")[1]
    hover = xtreme_cell.get_attribute("title")
    assert "tiny64-limit" in hover and "results.json" in hover and "--limit: 8" in hover
    assert "lm-eval 0.4.13" in hover and "xtreme-harness 0.1.0" in hover and "2026-01-01" in hover
    # test-set warnings are marked on the task cell
    assert "\u26a0" in column(browser, "task:udpos")[0]

    # sort by size: numbers, biggest first; a second click reverses; missing values never first
    click_header(browser, "size")
    sizes = column(browser, "size")
    assert sizes[:2] == ["512M", "512M"] and sizes[-1] == "7M"
    click_header(browser, "size")
    assert column(browser, "size")[0] == "7M"
    # by name: natural order (tiny32 before tiny128, not text order)
    click_header(browser, "name")
    names = board_names(browser)
    assert names.index("tiny32") < names.index("tiny64-limit") < names.index("tiny128") < names.index("tiny512")
    # by XTREME score: numeric, and the row without one is last in both directions
    click_header(browser, "xtreme")
    scores = column(browser, "xtreme")
    numbers = [float(s) for s in scores if s != "-"]
    assert numbers == sorted(numbers, reverse=True) and scores[-1] == "-"
    click_header(browser, "xtreme")
    scores = column(browser, "xtreme")
    assert [float(s) for s in scores if s != "-"] == sorted(numbers) and scores[-1] == "-"
    # a task column sorts its partial number with the others (shown, so sortable)
    click_header(browser, "task:xnli")
    assert all(v != "-" for v in column(browser, "task:xnli"))

    # hostile names: shown as text, nothing ran, no element came from them
    assert browser.execute_script("return window.__pwned") is None
    assert browser.execute_script("return document.querySelectorAll('img[src=\"x\"], body script:not([id])').length") <= 1
    assert browser.execute_script("return document.querySelectorAll('script').length") == 2
    check_fits(browser, "leaderboard at 1400 px")
    screenshot(browser, artifacts, "leaderboard-1400")
    assert console_errors(browser) == []


def test_heatmap_and_efficacy_views(browser, sweep_page, artifacts):
    open_page(browser, sweep_page, 1400)
    browser.find_element("id", "tabbtn-langs").click()
    from selenium.webdriver.support.ui import Select

    Select(browser.find_element("id", "task-select")).select_by_value("udpos")
    tables = browser.find_elements("css selector", '#heat table[data-task="udpos"]')
    assert tables
    headers = browser.execute_script(
        "return Array.from(document.querySelectorAll('#heat table')).flatMap(t => Array.from(t.querySelectorAll('th'))"
        ".map(h => h.textContent)).filter(h => h !== 'System' && h !== 'Avg')")
    spec = TASKS["udpos"]
    assert headers == ["en"] + [l for l in spec.languages if l != "en"]  # XTREME's order, English first
    assert browser.execute_script("return document.querySelector('#heat th.en').textContent") == "en"
    first = browser.find_element("css selector", '#heat tr td.num.en')
    assert re.fullmatch(r"\d+\.\d\u26a0", first.text)  # value in the cell, the EWT-only test set marked
    assert "test set: EWT only" in first.get_attribute("title")
    colours = browser.execute_script(
        "return Array.from(document.querySelectorAll('#heat td.num:not(.missing)')).slice(1).map(td => td.style.backgroundColor)")
    assert len(set(colours)) > 3  # coloured by score
    check_fits(browser, "UD-POS heatmap at 1400 px")
    screenshot(browser, artifacts, "heatmap-udpos-1400")

    browser.find_element("id", "tabbtn-eff").click()
    plot = browser.find_element("id", "efficacy-plot")
    assert browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 100", plot)
    texts = [t.text for t in browser.find_elements("css selector", "#eff h2")]
    assert any("by model size" in t for t in texts) and any("Gain over baseline" in t for t in texts)
    cells = browser.execute_script("return Array.from(document.querySelectorAll('#eff td')).map(td => td.textContent)")
    assert any(re.fullmatch(r"[+-]\d+\.\d\d \[[+-]\d+\.\d\d, [+-]\d+\.\d\d\]\*?", c) for c in cells)  # gain [CI]
    assert HOSTILE_FAMILY in cells  # the family name, as text
    assert "runs made with --limit" not in browser.find_element("id", "eff").text  # the limited row is no comparison
    check_fits(browser, "efficacy at 1400 px")
    screenshot(browser, artifacts, "efficacy-1400")
    assert browser.execute_script("return window.__pwned") is None
    assert console_errors(browser) == []


@pytest.mark.parametrize("width", [1400, 800])
def test_no_element_wider_than_the_viewport(browser, sweep_page, artifacts, width):
    open_page(browser, sweep_page, width)
    assert browser.execute_script("return document.documentElement.clientWidth") == width
    check_fits(browser, f"leaderboard at {width} px")
    for view in ("summary", "tasks", "all"):
        browser.find_element("id", f"view-{view}").click()
        check_fits(browser, f"leaderboard view {view} at {width} px")
    browser.find_element("id", "tabbtn-langs").click()
    from selenium.webdriver.support.ui import Select

    for task in ("panx", "tatoeba", "xquad"):  # the most languages, and one with an extra language
        Select(browser.find_element("id", "task-select")).select_by_value(task)
        check_fits(browser, f"{task} heatmap at {width} px")
    for tab in ("eff", "src"):
        browser.find_element("id", f"tabbtn-{tab}").click()
        check_fits(browser, f"{tab} at {width} px")
    screenshot(browser, artifacts, f"sources-{width}")
    assert console_errors(browser) == []


@pytest.mark.slow
def test_page_from_the_demo(browser, tmp_path, shared_data, artifacts):
    """The demo's own runs make a page too (tiny checkpoints named by their folders, partial rows)."""
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--data-dir", str(shared_data), "--limit", "3",
                 "--only", "xnli", "--only", "udpos"]) == 0
    page = out / "site" / "index.html"
    assert main(["report", str(out / "results"), "--out", str(tmp_path / "report")]) == 0
    for width in (1400, 800):
        open_page(browser, page, width)
        assert sorted(board_names(browser)) == ["tiny-pos", "tiny-xnli"]  # short names, full paths in the hover
        row = browser.find_element("css selector", "#leaderboard tbody tr")
        assert str(out / "checkpoints") in row.find_element("css selector", "td.name").get_attribute("title")
        assert "partial" in row.find_element("css selector", ".badge").text and "--limit" in row.text
        check_fits(browser, f"demo page at {width} px")
        browser.find_element("id", "tabbtn-langs").click()
        check_fits(browser, f"demo heatmap at {width} px")
        screenshot(browser, artifacts, f"demo-{width}")
        assert console_errors(browser) == []
    assert (tmp_path / "report" / "index.html").read_text().count("tiny-xnli") >= 1
