"""The HTML report in a real browser: headless Chromium (Debian's chromium + chromium-driver) via selenium.

It must load with no console errors and show its tables and images. A full-page screenshot is kept under
test-artifacts/. In CI (CI=true) a missing browser is a failure, elsewhere the test skips;
scripts/ci_browser.sh installs the browser.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from test_report import make_tree  # the fixture tree of run folders (tests/test_report.py)

from llmscisci.report import write_report

CHROMIUM = Path(os.environ.get("LLMSCISCI_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("LLMSCISCI_CHROMEDRIVER", "/usr/bin/chromedriver"))
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", "--window-size=1280,900")


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def _require_browser() -> None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.is_file()]
    if not missing:
        return
    msg = f"headless browser not installed ({', '.join(missing)} missing); run scripts/ci_browser.sh"
    if _in_ci():
        pytest.fail(msg)
    pytest.skip(msg)


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    _require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for a in ARGS:
        opts.add_argument(a)
    opts.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=str(CHROMEDRIVER))
    drv = webdriver.Chrome(service=service, options=opts)
    drv.set_page_load_timeout(60)
    try:
        yield drv
    finally:
        drv.quit()


def _load(drv, path: Path) -> list[dict]:
    """Open a file and return the console messages it produced (level SEVERE = errors)."""
    drv.get_log("browser")  # drop anything logged before
    drv.get(path.resolve().as_uri())
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(drv, 30).until(lambda d: d.execute_script("return document.readyState") == "complete")
    return drv.get_log("browser")


def _errors(logs: list[dict]) -> list[dict]:
    return [e for e in logs if e.get("level") == "SEVERE"]


def test_console_error_check_is_not_vacuous(driver, tmp_path):
    page = tmp_path / "broken.html"
    page.write_text('<!DOCTYPE html><html><head><link rel="icon" href="data:,"></head>'
                    '<body><img src="missing.png"><script>console.error("boom")</script></body></html>')
    assert _errors(_load(driver, page))


def test_report_renders_in_chromium(driver, tmp_path, data_dir):
    from selenium.webdriver.common.by import By
    from test_robustness import draw_coded40, write_robustness_json

    tree = make_tree(tmp_path)
    write_robustness_json(tree, data_dir, draw_coded40(data_dir, tmp_path / "coded40.jsonl"))
    w = write_report(tree, tmp_path / "report", n_boot=300)
    logs = _load(driver, w.html)
    assert _errors(logs) == [], logs
    assert driver.title.startswith("llmscisci report")

    images = driver.execute_script(
        "return Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.naturalHeight])")
    assert len(images) == len(w.figures) >= 6
    assert all(done and wd > 0 and ht > 0 for done, wd, ht in images), images

    tables = driver.find_elements(By.TAG_NAME, "table")
    assert len(tables) == w.n_tables
    # collapsed sections open on click; then every table is on screen with its rows
    for summary in driver.find_elements(By.TAG_NAME, "summary"):
        summary.click()
    assert all(t.is_displayed() for t in tables)
    assert all(len(t.find_elements(By.CSS_SELECTOR, "tbody tr")) > 0 for t in tables)
    headings = [h.text for h in driver.find_elements(By.CSS_SELECTOR, "h2, summary")]
    assert "Results" in headings and "Training curves" in headings
    assert "Robustness of conclusions" in headings
    alts = driver.execute_script("return Array.from(document.images).map(i => i.alt)")
    assert sum("one panel per estimand" in a for a in alts) == 5  # a forest plot per difficult category
    # a figure is drawn at a readable size, not squashed
    widths = driver.execute_script(
        "return Array.from(document.images).map(i => i.getBoundingClientRect().width)")
    assert min(widths) > 300

    ARTIFACTS.mkdir(exist_ok=True)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, min(int(height) + 100, 20000))
    driver.execute_script("window.scrollTo(0, 0)")
    shot = ARTIFACTS / "report_browser.png"
    assert driver.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    shutil.copyfile(w.html, ARTIFACTS / "report_browser.html")
    assert _errors(driver.get_log("browser")) == []


def _corpus_run(root: Path) -> Path:
    """A run on one's own corpus (no reference labels), items in two groups, some answers invalid."""
    import json

    run = root / "runs" / "label_topic"
    run.mkdir(parents=True)
    book = {"task": "topic", "text_column": "abstract", "none": "other", "source": "topics.toml",
            "categories": [{"short": s, "name": s.title()} for s in ("bib", "alt", "other")]}
    (run / "config.json").write_text(json.dumps({"kind": "label", "task": "topic", "variant": "structured",
                                                 "model": "fake", "codebook": book, "hash": "h",
                                                 "items": [f"a{i}" for i in range(30)]}), "utf-8")
    with (run / "predictions.jsonl").open("w", encoding="utf-8") as fh:
        for i in range(30):
            labels = None if i % 7 == 0 else ([1, 0, 0] if i % 3 == 0 else [0, 1, 0])
            fh.write(json.dumps({"doi": f"a{i}", "task": "topic", "split": "train", "labels": labels,
                                 "valid": labels is not None, "reference": None, "raw": "x",
                                 "meta": {"group": "journals" if i < 15 else "preprints"}}) + "\n")
    return run


def test_custom_corpus_report_shows_the_label_distribution(driver, tmp_path):
    from selenium.webdriver.common.by import By

    w = write_report(_corpus_run(tmp_path), tmp_path / "report", n_boot=300)
    assert _errors(_load(driver, w.html)) == []
    for summary in driver.find_elements(By.TAG_NAME, "summary"):
        summary.click()
    headings = [h.text for h in driver.find_elements(By.CSS_SELECTOR, "h2, summary")]
    assert "Label distribution" in headings and any(h.startswith("Output validity") for h in headings)
    section = driver.find_element(By.XPATH, "//h2[normalize-space()='Label distribution']/..")
    tables = section.find_elements(By.TAG_NAME, "table")
    assert len(tables) == 2 and all(t.is_displayed() for t in tables)  # per category; per group
    rows = [[c.text for c in r.find_elements(By.TAG_NAME, "td")] for r in tables[0].find_elements(By.CSS_SELECTOR, "tbody tr")]
    from statsmodels.stats.proportion import proportion_confint

    lo, hi = proportion_confint(8, 25, method="wilson")  # 25 valid answers, 8 of them bib
    assert rows[0] == ["bib", "8", f"{32.0:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]"], rows
    heads = [h.text for h in tables[1].find_elements(By.TAG_NAME, "th")]
    assert any("journals" in h for h in heads) and any("preprints" in h for h in heads)
    assert "25 valid of 30 answers" in section.text
