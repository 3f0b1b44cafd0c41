"""The live view (`crowdkit status DIR --serve`): its numbers are the library's, its page
renders and refreshes itself in headless Chromium, and the command serves it."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from crowdkit.dashboard import dashboard_data, serve_dashboard
from crowdkit.localturk import LocalTurk
from crowdkit.status import study_status
from crowdkit.study import load_study
from tests.browser import CHROMIUM
from tests.factories import interruptible, make_study, mturk

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory):
    """A study half-way: published on the local twin, 3 of its 4 HITs taken (one careless
    participant among them), collected."""
    from crowdkit.collect import collect
    from crowdkit.publish import publish
    from crowdkit.simulate import SimulationSettings, simulate
    from crowdkit.store import LocalStore

    tmp = tmp_path_factory.mktemp("live")
    root = make_study(tmp / "s")
    with LocalTurk(tmp / "t.db", port=0) as service:
        with (root / "study.toml").open("a") as fh:
            fh.write(f'\n[mturk]\nlocal_endpoint = "{service.endpoint_url}"\n'
                     '[quality]\nmin_total_time = "1s"\nmin_instruction_time = "1s"\n')
        study = load_study(root)
        platform = mturk(study, service.boto3_client())
        publish(study, platform, store=LocalStore(service.files_dir, service.base_url))
        simulate(study, SimulationSettings(participants=3, careless=1, fraudulent=0, seed=5),
                 endpoint=service.base_url)
        collect(study, platform, warn_auto_approval=False)
        yield study, platform, service


def test_the_numbers_are_the_librarys(running):
    study, platform, _ = running
    data = dashboard_data(study, platform)
    total = study_status(study, platform).to_json()["total"]
    assert data["hits"]["total"] == total["hits"] == 4
    assert data["assignments"]["submitted"] == total["submitted"] == 3
    assert data["money"] == {"spent": total["spent"], "bonuses": total["bonuses_paid"],
                             "committed": total["committed"]}
    assert data["time_left"] != "expired" and data["seconds_left"] > 0
    assert [p["n"] for p in data["submissions"]] == [1, 2, 3]
    assert data["exclusions"]["assignments"] == 3 and data["exclusions"]["excluded"] >= 1
    assert sum(data["exclusions"]["by_rule"].values()) >= 1
    assert data["accuracy"] and all(0 <= a["accuracy"] <= 1 for a in data["accuracy"])
    assert data["work"]["n"] == 3 and data["work"]["median_minutes"] is not None
    assert float(data["work"]["hourly_pay"]) > 0


def test_the_page_renders_and_refreshes_itself_in_chromium(running):
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (run `make browser`)")
    sync_api = pytest.importorskip("playwright.sync_api")
    from tests.hit_page_helpers import launch_chromium

    study, platform, _ = running
    with serve_dashboard(study, platform, port=0, refresh_s=1) as dashboard, \
            sync_api.sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            page = browser.new_page()
            page.set_default_timeout(60_000)
            fetched: list[str] = []
            page.on("response", lambda r: fetched.append(r.url)
                    if r.url.endswith("data.json") else None)
            page.goto(dashboard.url)
            page.locator("#hits-total").filter(has_text="4 (4 open)").wait_for()
            assert page.locator("#title").inner_text() == "crowdkit: teststudy (local)"
            assignments = page.locator("#assignments-table").inner_text()
            assert "submitted\t3" in assignments
            assert "spent" in page.locator("#money-table").inner_text()
            times = page.locator("#time-table").inner_text()
            assert "median per assignment" in times and "effective hourly pay\t$" in times
            assert "excluded" in page.locator("#exclusions-table").inner_text()
            accuracy = page.locator("#accuracy-table").inner_text()
            assert "condition\taccuracy\tparticipants\ttrials" in accuracy
            assert page.locator("#submissions-chart polyline").count() == 1
            assert "3 submissions from" in page.locator("#submissions-note").inner_text()
            assert page.locator("#error").is_hidden()
            page.wait_for_function("document.getElementById('updated').textContent !== ''")
            while len(fetched) < 2:  # it asks again by itself
                page.wait_for_timeout(200)
        finally:
            browser.close()


def test_status_serve_from_the_command_line(running, tmp_path):
    study, _, service = running
    process = subprocess.Popen([sys.executable, "-m", "crowdkit", "status", str(study.root),
                                "--serve", "--port", "0", "--refresh", "1"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               cwd=ROOT, preexec_fn=interruptible)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("live view of teststudy (local) at http://127.0.0.1:")
        url = line.split(" at ", 1)[1].split(" ", 1)[0]
        with urllib.request.urlopen(url + "data.json", timeout=60) as response:
            data = json.loads(response.read())
        assert data["hits"]["total"] == 4 and data["assignments"]["submitted"] == 3
        with urllib.request.urlopen(url, timeout=60) as response:
            assert b"crowdkit: live view" in response.read()
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
    assert process.returncode == 0
