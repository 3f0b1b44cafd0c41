"""Rating trials end to end: designed, published to the local twin, answered by simulated
workers, collected into tidy rows and analysed; checked against tampering; and the slider
worked by a real browser, with the mouse and with the keyboard."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from crowdkit import analysis
from crowdkit.answers import ProblemKind, parse_answer
from crowdkit.collect import collect
from crowdkit.design import design_for
from crowdkit.ledger import Ledger
from crowdkit.localturk import LocalTurk, question_form_answers
from crowdkit.simulate import SimulationSettings, simulate
from crowdkit.store import LocalStore
from crowdkit.study import load_study
from tests.browser import CHROMIUM
from tests.collect_helpers import QUALITY_TOML, designed_study
from tests.factories import make_study, mturk

RATINGS_TOML = """
[design.ratings]
units = ["3a:6", "4a:7"]
at = "both"
low = -50
high = 50
labels = ["not at all", "very"]
"""


def rating_study(root: Path):
    return designed_study(root, QUALITY_TOML + RATINGS_TOML, n_units=8)


def test_rating_trials_open_and_close_each_task_and_skip_the_rated_units(tmp_path: Path):
    study = rating_study(tmp_path / "study")
    design = design_for(study)
    for task in design.tasks:
        keys = task.key.trials
        assert [k.phase for k in keys[:2]] == ["rating", "rating"]
        assert [k.phase for k in keys[-2:]] == ["rating", "rating"]
        assert {k.rating_time for k in keys[:2]} == {"start"}
        assert {k.rating_time for k in keys[-2:]} == {"end"}
        assert {k.unit_id for k in keys if k.phase == "rating"} == {"3a:6", "4a:7"}
        assert not {k.unit_id for k in keys if k.phase != "rating"} & {"3a:6", "4a:7"}
        first = task.public.trials[0]
        assert first.type == "rating" and first.scale == (-50, 50)
        # 9 feature visualizations of the unit, beside 9 natural images of its batch 0
        paths = [str(design.images[k].relative_to(study.stimuli_dir))
                 for k in first.images.explanation]
        unit = keys[0].channel
        assert paths == [f"u{unit}/synthetic/max_{r}.png" for r in range(1, 10)]
        given = [str(design.images[k].relative_to(study.stimuli_dir))
                 for k in first.images.given]
        assert given == [f"u{unit}/b0/max_{r}.png" for r in range(9)]


def test_an_unknown_rating_unit_is_a_one_line_error(tmp_path: Path):
    from crowdkit.errors import ConfigError

    make_study(tmp_path / "study")
    with (tmp_path / "study" / "study.toml").open("a") as f:
        f.write('\n[design.ratings]\nunits = ["9z:1"]\n')
    with pytest.raises(ConfigError, match=r"\[design.ratings\] units: unit '9z:1'"):
        design_for(load_study(tmp_path / "study"))


def test_a_rating_off_the_slider_is_refused_as_tampering(tmp_path: Path):
    study = rating_study(tmp_path / "study")
    with Ledger.open(study.db_path) as ledger:
        task = ledger.tasks()[0]
    answers = []
    for key in task.key.trials:
        if key.phase == "rating":
            answers.append({"trial_id": key.trial_id, "rating": 10, "rt_ms": 900.0})
        else:
            answers.append({"trial_id": key.trial_id, "response": "top", "confidence": 2,
                            "rt_ms": 900.0})
    data = {"task_id": task.key.task_id, "trials": answers,
            "timing": {"instructions_ms": 9000, "total_ms": 90000}, "questionnaire": None}

    def parsed(payload: dict) -> object:
        xml = question_form_answers([("data", json.dumps(payload))])
        return parse_answer(xml, task.key)

    assert parsed(data).valid
    answers[0]["rating"] = 51  # the scale ends at 50
    problem = parsed(data).problem
    assert problem is not None and problem.kind is ProblemKind.ABSURD_VALUE
    assert problem.kind.tampering and "off the slider's scale -50 to 50" in str(problem)


def test_a_quickstart_sized_study_with_ratings_runs_offline(tmp_path: Path):
    """publish -> simulate -> collect -> analyze, all against the local twin."""
    from crowdkit.publish import publish

    study = rating_study(tmp_path / "study")
    with LocalTurk(tmp_path / "turk.db", port=0) as turk:
        with study.toml_path.open("a") as f:
            f.write(f'\n[mturk]\nlocal_endpoint = "{turk.base_url}"\n')
        study = load_study(study.root)
        publish(study, mturk(study, turk.boto3_client()), yes=True,
                store=LocalStore(turk.files_dir, turk.base_url))
        settings = SimulationSettings(participants=4, seed=5, catch_accuracy=1.0)
        assert len(simulate(study, settings, endpoint=turk.base_url).submitted) == 4
        result = collect(study, mturk(study, turk.boto3_client()))
    assert all(r.parsed.valid and not r.excluded for r in result.dataset.records), [
        (r.parsed.reason, r.reasons) for r in result.dataset.records]
    trials = pd.read_parquet(next(study.root.glob("data/**/trials.parquet")))
    rated = trials[trials["phase"] == "rating"]
    assert len(rated) == 4 * 4  # 2 units, at the start and at the end, 4 participants
    assert rated["correct"].isna().all() and rated["rating"].between(-50, 50).all()
    assert set(rated["rating_time"]) == {"start", "end"}
    assert set(rated["unit"]) == {"3a:6", "4a:7"} and set(rated["condition"]) == {"synthetic"}
    assert (rated["rt_ms"] > 0).all()
    others = trials[trials["phase"] != "rating"]
    assert others["correct"].notna().all() and others["rating"].isna().all()
    report = analysis.analyze_file(study.root)
    pooled = report.ratings[(report.ratings["unit"] == "all")
                            & (report.ratings["expert_level"] == "all")]
    assert sorted(pooled["rating_time"]) == ["end", "start"]
    assert set(pooled["n_participants"]) == {4}
    assert len(report.rating_comparisons[report.rating_comparisons["unit"] == "all"]) == 1
    assert not report.summary.empty  # the 2-AFC trials are analysed beside them


# -- the slider in a real browser --------------------------------------------------------


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM}")
def test_a_person_can_work_the_slider_with_the_mouse_and_the_keyboard(tmp_path: Path):
    sync_api = pytest.importorskip("playwright.sync_api")
    from crowdkit.payload import Payload
    from crowdkit.preview import PreviewServer
    from tests.hit_page_helpers import launch_chromium

    study = designed_study(tmp_path / "study", QUALITY_TOML + RATINGS_TOML.replace(
        'at = "both"', 'at = "start"') + "\n[page]\nfeedback_ms = 100\ninter_trial_ms = 20\n",
        n_units=8, practice=0, catch=0, trials=2, tasks=1)
    design = design_for(study)
    task = design.tasks[0]
    with PreviewServer(task.public, study.config, design.images) as server, \
            sync_api.sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(server.worker_url)
        page.click("#start")
        page.click("#message-continue")  # what the ratings are
        # rating 1, by keyboard: the slider has focus, Continue waits for a move
        page.wait_for_selector("#rating-slider:focus")
        assert page.is_disabled("#rating-submit")
        assert page.text_content("#rating-question").startswith("How intuitive")
        assert page.text_content(".rating-low") == "not at all"
        for _ in range(7):
            page.keyboard.press("ArrowRight")
        page.keyboard.press("Enter")
        # rating 2, by mouse: a click near the slider's left end, then Continue
        page.wait_for_function(
            "document.getElementById('rating-counter').textContent === 'Rating 2 of 2'")
        page.wait_for_selector("#rating-slider:focus")
        box = page.locator("#rating-slider").bounding_box()
        page.mouse.click(box["x"] + 0.1 * box["width"], box["y"] + box["height"] / 2)
        clicked = int(page.input_value("#rating-slider"))
        page.click("#rating-submit")
        page.click("#message-continue")  # the task's trials
        for i in range(2):
            page.wait_for_function(
                f"document.getElementById('trial-counter').textContent === 'Trial {i + 1} of 2'"
                " && document.getElementById('stage').classList.contains('ready')")
            page.keyboard.press("1")
        page.check("input[name=cnn][value='0']")
        page.check("input[name=fv][value='0']")
        page.click("#submit")
        page.wait_for_selector("text=Submission received")
        browser.close()
    posted = server.submissions[0]
    assert posted.error is None, posted.error
    payload = Payload.model_validate(json.loads(posted.form["data"]),
                                     context={"key": task.key})
    ratings = [r for r in payload.trials if hasattr(r, "rating")]
    assert [r.trial_id for r in ratings] == [t.trial_id for t in task.public.trials[:2]]
    assert ratings[0].rating == 7  # seven steps right of the middle, 0
    assert ratings[1].rating == clicked and -50 <= clicked < -30
    assert all(r.rt_ms > 0 for r in ratings)
    assert errors == []
