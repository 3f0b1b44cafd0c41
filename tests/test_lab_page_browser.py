"""A lab design's page in headless Chromium: ratings first, practice before each condition,
feedback after every trial, a score at the end of every block and a break between two blocks
of the same condition; a person gets through it and it submits every answer once."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from crowdkit.design import design_for
from crowdkit.payload import Payload
from crowdkit.preview import PreviewServer
from crowdkit.study import load_study
from tests.browser import CHROMIUM
from tests.collect_helpers import QUALITY_TOML
from tests.factories import make_study
from tests.hit_page_helpers import launch_chromium

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM}"),
]
sync_api = pytest.importorskip("playwright.sync_api")

LAB_KEYS = """n_practice_units = 1
blocks_per_condition = 2
baseline = ["pre"]
baseline_trials = 2
baseline_blocks = 2
practice_placement = "per_condition"
repeated_trials = 2
feedback = "all"
block_score = true
"""
EXTRA_TOML = """
[design.ratings]
units = ["3a:6"]

[page]
feedback_ms = 60
inter_trial_ms = 20
"""
KEYS = {"top": "1", "bottom": "q"}


def lab_task(root: Path):
    """A small lab session: a rating, practice before each condition, a baseline in two
    blocks, two blocks per condition with catch trials, two repeats."""
    make_study(root, n_units=8, tasks=1, trials=4, catch=2, practice=1,
               assignment="within")
    toml = (root / "study.toml").read_text().replace("n_practice_units = 1\n", LAB_KEYS)
    (root / "study.toml").write_text(toml + EXTRA_TOML + QUALITY_TOML)
    study = load_study(root)
    design = design_for(study)
    return study, design, design.tasks[0]


def test_a_lab_session_gives_feedback_scores_and_breaks_and_submits_everything(tmp_path):
    study, design, task = lab_task(tmp_path / "study")
    right = {k.trial_id: k.max_position for k in task.key.trials if k.phase != "rating"}
    shown = [t.trial_id for t in task.public.trials if t.phase != "rating"]  # page order
    messages: list[str] = []
    feedback: list[str] = []
    with PreviewServer(task.public, study.config, design.images) as server, \
            sync_api.sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(server.worker_url)
        page.click("#start")
        answered = 0
        for _ in range(200):
            page.wait_for_function(
                "['message', 'trial', 'rating', 'questionnaire'].some(n => "
                "!document.getElementById('screen-' + n).hidden && (n !== 'trial' || "
                "document.getElementById('stage').classList.contains('ready')))")
            if page.is_visible("#screen-message"):
                messages.append(" ".join(page.text_content("#message-text").split()))
                page.click("#message-continue")
            elif page.is_visible("#screen-rating"):
                page.wait_for_selector("#rating-slider:focus")
                page.keyboard.press("ArrowLeft")
                page.keyboard.press("Enter")
                page.wait_for_selector("#screen-rating", state="hidden")
            elif page.is_visible("#screen-trial"):
                page.keyboard.press(KEYS[right[shown[answered]]])
                shown_feedback = page.wait_for_function(  # read while it is on screen
                    "(() => { const good = document.querySelector('#feedback .feedback-good');"
                    " return good && good.textContent; })()")
                feedback.append(str(shown_feedback.json_value()).strip())
                page.wait_for_function("!document.getElementById('stage')"
                                       ".classList.contains('ready') || "
                                       "!document.querySelector('#feedback .feedback-good')")
                answered += 1
            else:
                page.check("input[name=cnn][value='1']")
                page.check("input[name=fv][value='0']")
                page.click("#submit")
                break
        page.wait_for_selector("text=Submission received")
        browser.close()
    posted = server.submissions[0]
    assert posted.error is None, posted.error
    payload = Payload.model_validate(json.loads(posted.form["data"]), context={"key": task.key})
    # every trial answered once (every practice answer was right: no second round)
    assert sorted(r.trial_id for r in payload.trials) == sorted(
        t.trial_id for t in task.public.trials)
    assert answered == len(shown) and feedback == ["Correct!"] * answered
    scores = [m for m in messages if "You picked the right image in" in m]
    test_blocks = {k.block for k in task.key.trials if k.phase in ("main", "catch", "repeated")}
    assert len(scores) == len(test_blocks) > 6  # a score after every test block
    for text in scores:
        counts = re.search(r"right image in (\d+) of (\d+)", text)
        assert counts and counts.group(1) == counts.group(2)  # every answer was right
    assert sum(m.startswith("Practice") for m in messages) == 3  # none_pre, natural, synthetic
    assert messages[0].startswith("Your impression")  # the ratings come first
    assert errors == []


def test_without_scores_two_blocks_of_one_condition_are_split_by_a_break(tmp_path):
    study, design, task = lab_task(tmp_path / "study")
    toml = study.toml_path.read_text().replace("block_score = true\n", "").replace(
        'feedback = "all"\n', "")
    study.toml_path.write_text(toml)
    from crowdkit.study import load_study as reload

    study = reload(study.root)
    design = design_for(study)
    task = design.tasks[0]
    right = {k.trial_id: k.max_position for k in task.key.trials if k.phase != "rating"}
    shown = [t.trial_id for t in task.public.trials if t.phase != "rating"]
    messages: list[str] = []
    with PreviewServer(task.public, study.config, design.images) as server, \
            sync_api.sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(server.worker_url)
        page.click("#start")
        answered = 0
        for _ in range(200):
            page.wait_for_function(
                "['message', 'trial', 'rating', 'questionnaire'].some(n => "
                "!document.getElementById('screen-' + n).hidden && (n !== 'trial' || "
                "document.getElementById('stage').classList.contains('ready')))")
            if page.is_visible("#screen-message"):
                messages.append(" ".join(page.text_content("#message-text").split()))
                page.click("#message-continue")
            elif page.is_visible("#screen-rating"):
                page.wait_for_selector("#rating-slider:focus")
                page.keyboard.press("ArrowRight")
                page.keyboard.press("Enter")
                page.wait_for_selector("#screen-rating", state="hidden")
            elif page.is_visible("#screen-trial"):
                page.keyboard.press(KEYS[right[shown[answered]]])
                page.wait_for_function("!document.getElementById('stage')"
                                       ".classList.contains('ready')")
                answered += 1
            else:
                page.check("input[name=cnn][value='1']")
                page.check("input[name=fv][value='0']")
                page.click("#submit")
                break
        page.wait_for_selector("text=Submission received")
        browser.close()
    assert server.submissions[0].error is None
    # the two none_pre blocks: a break that says the next part is the same kind
    assert any("works the same way" in m for m in messages)
    assert any("of a different kind" in m for m in messages)
    assert not any("You picked the right image" in m for m in messages)
