"""report.html opens in headless Chromium from file://, renders, and fetches nothing."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from crowdkit import analysis
from tests.browser import CHROMIUM, CHROMIUM_ARGS
from tests.test_analysis import rich_trials

pytestmark = pytest.mark.browser


def study_trials() -> pd.DataFrame:
    """Every figure's columns (see `rich_trials`), and catch trials in each condition."""
    main = rich_trials()
    last = main.groupby(["participant_id", "condition"]).tail(1)
    catch = last.assign(phase="catch", correct=True)
    return analysis.normalize_trials(pd.concat([main, catch], ignore_index=True))


@pytest.fixture
def report(tmp_path: Path) -> Path:
    result = analysis.analyze(study_trials(), by=["layer"], source="generated trials")
    return analysis.write_report(result, tmp_path / "report")


def test_report_renders_tables_and_figures_without_network(report: Path) -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (run `make browser`)")
    sync_api = pytest.importorskip("playwright.sync_api")
    requested: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.on("request", lambda request: requested.append(request.url))
            page.goto(report.as_uri(), wait_until="load")
            images = page.evaluate(
                """() => Array.from(document.images).map(img => ({
                    alt: img.alt, complete: img.complete,
                    width: img.naturalWidth, height: img.naturalHeight }))"""
            )
            tables = page.evaluate(
                """() => Array.from(document.querySelectorAll('table')).map(t => ({
                    caption: t.caption ? t.caption.innerText : '',
                    rows: t.tBodies[0].rows.length,
                    height: t.getBoundingClientRect().height }))"""
            )
            first_table = page.locator("table").first.inner_text()
        finally:
            browser.close()

    assert [image["alt"] for image in images] == [
        "Accuracy per condition",
        "Accuracy per layer",
        "Accuracy per expert level",
        "Reaction time and confidence",
    ]
    assert all(image["complete"] and image["width"] > 0 and image["height"] > 0 for image in images)
    captions = [table["caption"] for table in tables]
    assert captions[0].startswith("Accuracy on main trials")
    assert {"Accuracy by expert level", "Accuracy by layer", "Catch-trial accuracy"} <= set(
        captions
    )
    assert all(table["rows"] > 0 and table["height"] > 0 for table in tables)
    assert "natural" in first_table and "synthetic" in first_table
    assert requested, "the page itself should have been requested"
    outside = [url for url in requested if not url.startswith(("file:", "data:"))]
    assert outside == [], f"report.html fetched {outside}"
