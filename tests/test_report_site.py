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
from helpers.synthetic_results import HOSTILE_FAMILY, HOSTILE_NAMES, write_sweep, write_xtreme_r_system
from xtreme_tasks.table import BENCHMARKS, TASKS

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


#: XTREME-R runs beside the sweep's XTREME runs: (system, folder, skill)
R_SYSTEMS = (("tiny32", "tiny32", 0.35), ("tiny128", "tiny128", 0.5), ("tiny512", "tiny512", 0.65),
             (HOSTILE_NAMES[0], "hostile-base", 0.3))


@pytest.fixture(scope="module")
def both_page(tmp_path_factory):
    """The sweep's twelve XTREME rows plus XTREME-R runs of four of its systems and a partial
    XTREME-R run (XCOPA without et, LAReQA, UD-POS) in the same results folder.
    Returns (index.html, the rows as ``all_scores`` scores them)."""
    from harness_ext.reports.results import all_scores, collect

    root = tmp_path_factory.mktemp("both-page")
    runs, checkpoints = write_sweep(root)
    for name, folder, skill in R_SYSTEMS:
        write_xtreme_r_system(runs, name, skill, folder=folder)
    write_xtreme_r_system(runs, "tiny8-partial", 0.3, folder="tiny8-partial", tasks=("xcopa", "lareqa", "udpos"),
                          drop=("xtreme-xcopa-et",))
    out = root / "report"
    assert main(["report", str(runs), "--out", str(out), "-c", str(checkpoints), "--resamples", "50"]) == 0
    return out / "index.html", all_scores(collect([runs]))


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
    assert not browser.find_element("id", "benches").is_displayed()  # XTREME rows only: no benchmark switch
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


# ----------------------------------------------------------------------------- XTREME and XTREME-R on one page


def header_keys(driver) -> list[str]:
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('#leaderboard thead th')).map(t => t.dataset.key)")


def use_benchmark(driver, key: str) -> None:
    driver.find_element("id", f"bench-{key}").click()
    assert driver.execute_script("return document.querySelector('#leaderboard').dataset.benchmark") == key


def test_page_titles_and_boards_without_a_browser(sweep_page, both_page):
    import json

    def data(page: Path) -> dict:
        text = page.read_text(encoding="utf-8")
        return json.loads(re.search(r'<script type="application/json" id="xtreme-data">(.*?)</script>', text, re.S)[1])

    only = data(sweep_page)
    assert only["title"] == "XTREME leaderboard" and [b["key"] for b in only["boards"]] == ["xtreme"]
    page, scores = both_page
    both = data(page)
    assert both["title"] == "XTREME and XTREME-R leaderboards"
    assert [b["key"] for b in both["boards"]] == ["xtreme", "xtreme-r"]
    xtreme, r = both["boards"]
    assert len(xtreme["rows"]) == 12 and len(r["rows"]) == 5
    assert all(row["cells"]["benchmark"]["t"] == "XTREME-R" for row in r["rows"])
    assert [c["label"] for c in r["columns"] if c["group"] == "task"] == [BENCHMARKS["xtreme-r"].spec(t).title
                                                                          for t in BENCHMARKS["xtreme-r"].tasks]
    # the plain per-benchmark tables stay beside the page
    assert {"leaderboard.html", "leaderboard_xtreme-r.html", "leaderboard_xtreme-r.csv",
            "languages_xtreme-r_xcopa.md"} <= {p.name for p in page.parent.iterdir()}


def test_both_benchmarks_each_row_under_its_own(browser, both_page, artifacts):
    page, scores = both_page
    open_page(browser, page, 1400)
    assert browser.find_element("id", "benches").is_displayed()
    assert [b.text for b in browser.find_elements("css selector", "#benches button")] == [
        "XTREME (12 rows)", "XTREME-R (5 rows)"]
    # opens on XTREME, as a page of XTREME rows only
    assert browser.execute_script("return document.querySelector('#leaderboard').dataset.benchmark") == "xtreme"
    assert len(board_names(browser)) == 12 and "task:pawsx" in header_keys(browser) and "task:xcopa" not in header_keys(browser)

    use_benchmark(browser, "xtreme-r")
    browser.find_element("id", "view-all").click()
    rows = {k: v for k, v in scores.items() if v.benchmark == "xtreme-r"}
    complete = sorted((v for v in rows.values() if v.overall is not None), key=lambda v: -v.overall)
    names = board_names(browser)
    assert len(names) == 5 and names[-1] == "tiny8-partial"
    assert names[:4] == [v.name for v in complete]  # complete rows by XTREME-R score (hostile name as text)
    assert column(browser, "xtreme")[:4] == [f"{v.overall:.2f}" for v in complete]  # the XTREME-R score, hand rules
    keys = header_keys(browser)
    r = BENCHMARKS["xtreme-r"]
    assert keys[1:1 + len(r.categories) + 1] == ["xtreme"] + [f"cat:{c}" for c in r.categories]
    assert [k for k in keys if k.startswith("task:")] == [f"task:{t}" for t in r.tasks]
    assert "task:pawsx" not in keys and "task:bucc2018" not in keys
    labels = browser.execute_script("return Array.from(document.querySelectorAll('#leaderboard thead th')).map(t => t.textContent)")
    assert labels[1] == "XTREME-R" and "Multi-choice" in labels and {"XCOPA", "Mewsli-X", "LAReQA (XQuAD-R)"} <= set(labels)
    tiny512 = scores["tiny512@xtreme-r"]
    row = browser.find_element("css selector", '#leaderboard tr[data-key="tiny512@xtreme-r"]')
    cells = dict(zip(keys, [td.text for td in row.find_elements("css selector", "td")]))
    assert cells["cat:multi_choice"] == f"{tiny512.categories['multi_choice']:.2f}"
    assert cells["task:lareqa"] == f"{tiny512.task_scores['lareqa']:.2f}"
    assert cells["benchmark"] == "XTREME-R"
    # a row never mixes the versions: its sources are its XTREME-R run only
    hover = row.find_elements("css selector", "td")[1].get_attribute("title")
    assert "xtreme-r" in hover and "results.json" in hover and "/xnli/" not in hover
    # the partial XTREME-R row: badge, marked numbers, no XTREME-R score
    partial = browser.find_element("css selector", '#leaderboard tr[data-key="tiny8-partial@xtreme-r"]')
    assert partial.find_element("css selector", ".badge").text == "partial"
    marked = partial.find_elements("css selector", "td.partial")
    assert marked and all(c.text.endswith("\u2020") for c in marked)
    assert "not an XTREME-R score" in marked[0].get_attribute("title")
    assert cells_of(browser, "tiny8-partial@xtreme-r", keys)["xtreme"] == "-"
    notes = browser.find_element("id", "board-notes").text
    assert "XCOPA counts in Classification and Multi-choice" in notes and "not an XTREME-R score" in notes
    assert browser.execute_script("return window.__pwned") is None
    check_fits(browser, "XTREME-R leaderboard at 1400 px")
    screenshot(browser, artifacts, "leaderboard-xtreme-r-1400")
    browser.find_element("id", "tabbtn-src").click()
    sources = browser.find_element("id", "sources").text
    assert "tiny512 \u2014 XTREME-R" in sources and "XCOPA: results:" in sources and "/pawsx/" not in sources
    # back to XTREME: its own rows and columns again
    browser.find_element("id", "tabbtn-board").click()
    use_benchmark(browser, "xtreme")
    assert len(board_names(browser)) == 12 and "task:xcopa" not in header_keys(browser)
    assert console_errors(browser) == []


def cells_of(driver, key: str, keys: list[str]) -> dict[str, str]:
    row = driver.find_element("css selector", f'#leaderboard tr[data-key="{key}"]')
    return dict(zip(keys, [td.text for td in row.find_elements("css selector", "td")]))


def test_xtreme_r_board_sorts(browser, both_page):
    open_page(browser, both_page[0], 1400)
    use_benchmark(browser, "xtreme-r")
    browser.find_element("id", "view-all").click()
    click_header(browser, "task:xcopa")  # every row has XCOPA (the partial one: a partial mean)
    values = [float(v.rstrip("\u2020")) for v in column(browser, "task:xcopa")]
    assert values == sorted(values, reverse=True)
    click_header(browser, "task:xcopa")
    assert [float(v.rstrip("\u2020")) for v in column(browser, "task:xcopa")] == sorted(values)
    # Mewsli-X: the partial row has none, last in both directions
    click_header(browser, "task:mewslix")
    mewslix = column(browser, "task:mewslix")
    assert mewslix[-1] == "-" and [float(v) for v in mewslix[:-1]] == sorted((float(v) for v in mewslix[:-1]), reverse=True)
    click_header(browser, "task:mewslix")
    mewslix = column(browser, "task:mewslix")
    assert mewslix[-1] == "-" and [float(v) for v in mewslix[:-1]] == sorted(float(v) for v in mewslix[:-1])
    click_header(browser, "name")
    names = [n for n in board_names(browser) if n.startswith("tiny")]
    assert names == ["tiny8-partial", "tiny32", "tiny128", "tiny512"]  # natural order
    # each board keeps its own order: XTREME is untouched, XTREME-R's comes back
    use_benchmark(browser, "xtreme")
    assert board_names(browser)[:4] == ["tiny512-mnli", "tiny512", "tiny128-mnli", "tiny128"]
    use_benchmark(browser, "xtreme-r")
    assert [n for n in board_names(browser) if n.startswith("tiny")] == names
    assert browser.find_element("css selector", '#leaderboard th[data-key="name"]').get_attribute("aria-sort") == "ascending"
    assert console_errors(browser) == []


def test_xtreme_r_heatmaps(browser, both_page, artifacts):
    from selenium.webdriver.support.ui import Select

    open_page(browser, both_page[0], 1400)
    use_benchmark(browser, "xtreme-r")
    browser.find_element("id", "tabbtn-langs").click()
    r = BENCHMARKS["xtreme-r"]
    options = [o.get_attribute("value") for o in browser.find_elements("css selector", "#task-select option")]
    assert options == list(r.tasks)  # XTREME-R's tasks, in its order (no PAWS-X, no BUCC)

    def headers() -> list[str]:
        return browser.execute_script(
            "return Array.from(document.querySelectorAll('#heat table')).flatMap(t => Array.from(t.querySelectorAll('th'))"
            ".map(h => h.textContent)).filter(h => h !== 'System' && h !== 'Avg')")

    Select(browser.find_element("id", "task-select")).select_by_value("xcopa")
    assert headers() == list(r.languages["xcopa"])  # no English in XCOPA
    colours = browser.execute_script(
        "return Array.from(document.querySelectorAll('#heat td.num:not(.missing)')).map(td => td.style.backgroundColor)")
    assert len(set(colours)) > 3
    assert browser.find_elements("css selector", '#heat tr td.num.missing')  # tiny8-partial has no et
    assert "XCOPA (XTREME-R)" in browser.find_element("id", "heat-legend").text
    screenshot(browser, artifacts, "heatmap-xcopa-1400")
    Select(browser.find_element("id", "task-select")).select_by_value("udpos")
    langs = list(r.languages["udpos"])
    assert headers() == ["en"] + [l for l in langs if l != "en"]  # the added languages are official here
    added = browser.execute_script("return Array.from(document.querySelectorAll('#heat th.added')).map(h => h.textContent)")
    assert added == ["lt", "pl", "uk", "wo", "ro"] and "added in XTREME-R" in browser.find_element("id", "heat-legend").text
    for task in ("mewslix", "lareqa"):
        Select(browser.find_element("id", "task-select")).select_by_value(task)
        assert headers()[0] == "en" and sorted(headers()) == sorted(r.languages[task])
        assert len(browser.find_elements("css selector", f'#heat table[data-task="{task}"] tbody tr')) >= 4
    screenshot(browser, artifacts, "heatmap-lareqa-1400")
    # the XTREME board's heatmaps are XTREME's: no added languages marked, PAWS-X listed
    use_benchmark(browser, "xtreme")
    options = [o.get_attribute("value") for o in browser.find_elements("css selector", "#task-select option")]
    assert "pawsx" in options and "xcopa" not in options
    Select(browser.find_element("id", "task-select")).select_by_value("udpos")
    assert not browser.find_elements("css selector", "#heat th.added")
    assert console_errors(browser) == []


@pytest.mark.parametrize("width", [1400, 800])
def test_xtreme_r_board_fits(browser, both_page, artifacts, width):
    from selenium.webdriver.support.ui import Select

    open_page(browser, both_page[0], width)
    check_fits(browser, f"both-benchmark page at {width} px")
    use_benchmark(browser, "xtreme-r")
    for view in ("summary", "tasks", "all"):
        browser.find_element("id", f"view-{view}").click()
        check_fits(browser, f"XTREME-R view {view} at {width} px")
    screenshot(browser, artifacts, f"leaderboard-xtreme-r-{width}")
    browser.find_element("id", "tabbtn-langs").click()
    for task in ("panx", "tatoeba", "udpos", "xquad", "xcopa", "mewslix", "lareqa"):
        Select(browser.find_element("id", "task-select")).select_by_value(task)
        check_fits(browser, f"XTREME-R {task} heatmap at {width} px")
    for tab in ("eff", "src"):
        browser.find_element("id", f"tabbtn-{tab}").click()
        check_fits(browser, f"{tab} at {width} px")
    assert console_errors(browser) == []


def test_xtreme_r_only_page_has_its_board_and_efficacy(tmp_path):
    """Only XTREME-R runs: the page is that version's (no switch), and the efficacy view compares
    its rows (keyed by system name, as checkpoints.yaml names them)."""
    import json

    runs = tmp_path / "runs"
    for name, skill in (("tiny32", 0.3), ("tiny32-mnli", 0.4), ("tiny128", 0.5), ("tiny128-mnli", 0.6)):
        write_xtreme_r_system(runs, name, skill)
    lines = ["version: 1", "systems:"]
    for name in ("tiny32", "tiny32-mnli", "tiny128", "tiny128-mnli"):
        size = 32_000_000 if name.startswith("tiny32") else 128_000_000
        extra = ", intermediate_task: mnli" if name.endswith("mnli") else ""
        lines.append(f"  {name}: {{family: tiny, size: {size}{extra}, checkpoints: {{xnli: org/model}}}}")
    (tmp_path / "checkpoints.yaml").write_text("\n".join(lines) + "\n")
    assert main(["report", str(runs), "--out", str(tmp_path / "out"), "-c", str(tmp_path / "checkpoints.yaml"),
                 "--resamples", "20"]) == 0
    text = (tmp_path / "out" / "index.html").read_text(encoding="utf-8")
    data = json.loads(re.search(r'<script type="application/json" id="xtreme-data">(.*?)</script>', text, re.S)[1])
    assert data["title"] == "XTREME-R leaderboard" and [b["key"] for b in data["boards"]] == ["xtreme-r"]
    assert data["efficacy"]["svg"]
    gains = data["efficacy"]["tables"][1]
    assert "XTREME-R" in gains["header"] and [r[0]["t"] for r in gains["rows"]] == ["tiny32-mnli", "tiny128-mnli"]
