"""The worker's page in headless Chromium: a person can complete it, and it submits the truth.

Each test serves a sample task with `PreviewServer`, drives the page like a worker, and reads
back what the page posted to /mturk/externalSubmit, validated with `Payload`.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field

import pytest

from crowdkit.payload import Payload
from crowdkit.preview import FAKE_ASSIGNMENT_ID, PreviewServer
from tests.hit_page_helpers import (
    ARTIFACTS,
    CHROMIUM,
    SampleTask,
    build_sample_task,
    designed_sample,
    launch_chromium,
    study_config,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM}; `make browser`"),
]
sync_api = pytest.importorskip("playwright.sync_api")

FAST_PAGE = "feedback_ms = 150\ninter_trial_ms = 30"
TELLTALE = re.compile(r"max|min|catch", re.IGNORECASE)
KEY_OF = {("top", 1): "1", ("top", 2): "2", ("top", 3): "3",
          ("bottom", 1): "q", ("bottom", 2): "w", ("bottom", 3): "e"}


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


@dataclass
class Worker:
    """Drives one page like a worker, remembering what it did and how long it waited."""

    page: object
    server: PreviewServer
    use_keyboard: bool = False
    did: list[tuple[str, int, str, int]] = field(default_factory=list)
    rt_bounds: list[tuple[float, float]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _mark: float = 0.0

    def __post_init__(self) -> None:
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def act(self, action) -> None:
        """Run one action, marking the time before it: the next trial starts after it."""
        self._mark = time.perf_counter()
        action()

    def next_screen(self) -> None:
        if self.use_keyboard:
            self.page.wait_for_selector("#message-continue:focus")
            self.act(lambda: self.page.keyboard.press("Enter"))
        else:
            self.act(lambda: self.page.click("#message-continue"))

    def trial(self, label: str, trial_id: str, response: str, confidence: int, *,
              round_: int = 1, wait_s: float = 0.05) -> None:
        """Answer one trial once every image is on screen, after waiting `wait_s`."""
        since = self._mark
        self.page.wait_for_function(
            "label => document.getElementById('trial-counter').textContent === label"
            " && document.getElementById('stage').classList.contains('ready')",
            arg=label,
        )
        time.sleep(wait_s)
        if self.use_keyboard:
            self.act(lambda: self.page.keyboard.press(KEY_OF[response, confidence]))
        else:
            self.act(lambda: self.page.click(
                f'.answer[data-response="{response}"][data-confidence="{confidence}"]'))
        self.did.append((trial_id, round_, response, confidence))
        self.rt_bounds.append((wait_s * 1000, (time.perf_counter() - since) * 1000))

    def submission(self):
        self.page.wait_for_selector("text=Submission received")
        assert len(self.server.submissions) == 1
        return self.server.submissions[0]


def other(position: str) -> str:
    return "bottom" if position == "top" else "top"


def check_payload(worker: Worker, sample: SampleTask) -> Payload:
    """The posted form: the assignment, and `data` holding exactly what the worker did."""
    posted = worker.submission()
    assert posted.error is None, posted.error
    assert posted.form["assignmentId"] == FAKE_ASSIGNMENT_ID
    payload = Payload.model_validate(json.loads(posted.form["data"]))
    assert payload.task_id == sample.task.task_id
    assert [(t.trial_id, t.round, t.response, t.confidence) for t in payload.trials] == worker.did
    for response, (low, high) in zip(payload.trials, worker.rt_bounds, strict=True):
        assert low <= response.rt_ms <= high, (response, low, high)
    assert 0 < payload.timing.instructions_ms < payload.timing.total_ms
    assert payload.timing.total_ms > sum(t.rt_ms for t in payload.trials)
    assert worker.errors == []
    return payload


def test_full_run_from_preview_to_submission(browser, tmp_path):
    sample = build_sample_task(tmp_path / "images", image_size=64)
    config = study_config(page=FAST_PAGE)
    with PreviewServer(sample.task, config, sample.images) as server:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))

        # MTurk's preview: what the task is, time, pay and an example; nothing to start.
        page.goto(server.preview_url)
        preview = page.locator("#screen-preview")
        assert preview.is_visible()
        for text in ("Which image does the network respond to?", "about 12 minutes", "$1.25",
                     "Look at example images and pick the matching one."):
            assert text in preview.inner_text()
        page.wait_for_function("[...document.querySelectorAll('#screen-preview img')]"
                               ".every(img => img.complete && img.naturalWidth > 0)")
        assert page.locator("#screen-preview .query.solution").count() == 1
        assert not page.locator("#start").is_visible()
        assert page.locator("button:visible, input:visible").count() == 0
        first = sample.practice_trials[0]
        example_keys = {*first.references.left, *first.references.right,
                        first.queries.top, first.queries.bottom}
        assert {url.rsplit("/", 1)[1] for url in requested if "/images/" in url} == example_keys

        # The accepted HIT: instructions, every image loaded, then start.
        worker = Worker(page, server)
        page.goto(server.worker_url)
        page.wait_for_selector("#start:enabled")
        assert page.inner_text("#load-status") == "All images are loaded."
        assert page.locator("#screen-instructions .example .query.solution").count() == 1
        worker.act(lambda: page.click("#start"))
        assert "2 practice trials" in page.inner_text("#message-text")
        worker.next_screen()

        # Practice round 1: the first answer wrong, the second right; feedback for each.
        p1, p2 = sample.practice_trials
        right1, right2 = sample.max_position[p1.trial_id], sample.max_position[p2.trial_id]
        worker.trial("Practice 1 of 2", p1.trial_id, other(right1), 2)
        feedback = page.wait_for_selector("#feedback .feedback-bad")
        assert feedback.inner_text() == f"Not quite: the answer was the {right1} image."
        assert page.locator(f"#query-{right1}.solution").count() == 1
        worker.trial("Practice 2 of 2", p2.trial_id, right2, 3)
        assert page.wait_for_selector("#feedback .feedback-good").inner_text() == "Correct!"
        page.wait_for_selector("#screen-message:visible")
        assert "practise once more" in page.inner_text("#message-text")
        worker.next_screen()
        # Round 2: both right, so the practice ends.
        worker.trial("Practice 1 of 2", p1.trial_id, right1, 3, round_=2)
        worker.trial("Practice 2 of 2", p2.trial_id, right2, 1, round_=2)
        page.wait_for_selector("#screen-message:visible")
        assert "every practice trial right" in page.inner_text("#message-text")
        worker.next_screen()
        assert "the 6 trials of the task" in page.inner_text("#message-text")
        worker.next_screen()

        # Test trials, main and catch alike, with a break where the reference type changes.
        choices = [("top", 1), ("bottom", 3), ("bottom", 2), ("top", 3), ("top", 2), ("bottom", 1)]
        for i, (trial, (response, confidence)) in enumerate(
                zip(sample.test_trials, choices, strict=True)):
            if i == 3:
                page.wait_for_selector("#screen-message:visible")
                assert "Part 1 of 2 is done" in page.inner_text("#message-text")
                worker.next_screen()
            if i == 0:
                page.wait_for_selector("#stage.ready")
                ARTIFACTS.mkdir(exist_ok=True)
                page.screenshot(path=str(ARTIFACTS / "trial.png"))
            worker.trial(f"Trial {i + 1} of 6", trial.trial_id, response, confidence,
                         wait_s=0.02 * (i + 1))

        # The questionnaire, then the form POST to turkSubmitTo/mturk/externalSubmit.
        page.wait_for_selector("#screen-questionnaire:visible")
        page.check('input[name="cnn"][value="2"]')
        page.check('input[name="fv"][value="1"]')
        page.fill("#comments", "Fun task <b>really</b> & short")
        page.click("#submit")
        payload = check_payload(worker, sample)

    assert payload.practice_rounds == 2
    assert payload.questionnaire.model_dump() == {
        "cnn_experience": 2, "fv_experience": 1, "feedback": "Fun task <b>really</b> & short"}
    assert (payload.client.window_width, payload.client.window_height) == (1280, 800)
    assert "Chrome" in payload.client.user_agent
    assert (ARTIFACTS / "trial.png").stat().st_size > 10_000


def test_keyboard_only_run_with_one_sided_and_empty_references(browser, tmp_path):
    sample = build_sample_task(tmp_path / "images", practice=1, max_only=True,
                               blocks=(("natural", 2), ("none", 2)), catch_positions=(0,))
    config = study_config(page=FAST_PAGE, design='reference_mode = "max-only"')
    with PreviewServer(sample.task, config, sample.images) as server:
        page = browser.new_page(viewport={"width": 1100, "height": 700})
        worker = Worker(page, server, use_keyboard=True)
        page.goto(server.worker_url)
        page.wait_for_selector("#start:focus")
        worker.act(lambda: page.keyboard.press("Enter"))
        worker.next_screen()

        practice = sample.practice_trials[0]
        worker.trial("Practice 1 of 1", practice.trial_id,
                     sample.max_position[practice.trial_id], 2)
        page.wait_for_selector("#screen-message:visible")
        assert "every practice trial right" in page.inner_text("#message-text")
        worker.next_screen()
        worker.next_screen()

        keys = [("top", 3), ("bottom", 1), ("bottom", 2), ("top", 1)]
        for i, (trial, (response, confidence)) in enumerate(
                zip(sample.test_trials, keys, strict=True)):
            if i == 2:
                worker.next_screen()  # the break before the "none" block
            label = f"Trial {i + 1} of 4"
            page.wait_for_function(
                "label => document.getElementById('trial-counter').textContent === label"
                " && document.getElementById('stage').classList.contains('ready')", arg=label)
            visible = page.evaluate("['group-left', 'group-right'].map(id => getComputedStyle("
                                    "document.getElementById(id)).visibility)")
            assert visible == (["hidden", "visible"] if trial.condition == "natural"
                               else ["hidden", "hidden"])
            worker.trial(label, trial.trial_id, response, confidence)

        page.wait_for_selector("#screen-questionnaire:visible")
        page.wait_for_selector('input[name="cnn"]:focus')
        for key in ("ArrowDown", "ArrowDown", "Tab", "ArrowDown", "Tab"):
            page.keyboard.press(key)
        page.keyboard.type("all by keyboard")
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.id") == "submit"
        page.keyboard.press("Enter")
        payload = check_payload(worker, sample)

    assert payload.practice_rounds == 1
    assert payload.questionnaire.model_dump() == {
        "cnn_experience": 2, "fv_experience": 1, "feedback": "all by keyboard"}


def test_nothing_in_the_dom_or_the_network_tells_the_max_query_apart(browser, tmp_path):
    """A task of the real design, blocks and catch trials included, checked trial by trial."""
    sample, config = designed_sample(tmp_path / "study", assignment="within", practice=0)
    tests = sample.test_trials
    assert sample.catch_ids and len({t.condition for t in tests}) == 2
    config.page.feedback_ms, config.page.inter_trial_ms = 150, 30
    with PreviewServer(sample.task, config, sample.images) as server:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        requests = []
        page.on("request", lambda r: requests.append(
            (r.url, r.method, r.resource_type, tuple(sorted(r.headers.items())))))
        worker = Worker(page, server, use_keyboard=True)
        page.goto(server.worker_url)
        worker.act(lambda: page.click("#start"))
        worker.next_screen()
        base = f"{server.base_url}/images/"
        for i, trial in enumerate(tests):
            if i > 0 and trial.condition != tests[i - 1].condition:
                worker.next_screen()
            label = f"Trial {i + 1} of {len(tests)}"
            page.wait_for_function(
                "label => document.getElementById('trial-counter').textContent === label"
                " && document.getElementById('stage').classList.contains('ready')", arg=label)
            check_trial_dom(page, sample, trial, base)
            worker.trial(label, trial.trial_id, "top", 2)
        page.wait_for_selector("#screen-questionnaire:visible")
        page.check('input[name="cnn"][value="0"]')
        page.check('input[name="fv"][value="0"]')
        page.click("#submit")
        check_payload(worker, sample)

    images = [r for r in requests if r[0].startswith(base)]
    assert all(re.fullmatch(re.escape(base) + r"[0-9a-f]{32}\.png", r[0]) for r in images)
    assert {r[0] for r in requests} - {r[0] for r in images} == {server.worker_url,
                                                                 f"{base[:-8]}/mturk/externalSubmit"}
    screen_order = [base + key for t in sample.task.trials for key in (
        *t.references.left, *t.references.right, t.queries.top, t.queries.bottom)]
    first_requests = list(dict.fromkeys(r[0] for r in images))
    assert first_requests == list(dict.fromkeys(screen_order)), "requested in screen order"
    for trial in tests:
        top, bottom = base + trial.queries.top, base + trial.queries.bottom
        seen = {position: sorted(r[1:] for r in images if r[0] == url)
                for position, url in (("top", top), ("bottom", bottom))}
        assert seen["top"] == seen["bottom"] and seen["top"], "requested the same way"


def check_trial_dom(page, sample: SampleTask, trial, base: str) -> None:
    """On screen now: the two queries differ in the key of their image and nothing else."""
    facts = page.evaluate("""() => {
        const top = document.getElementById('query-top');
        const bottom = document.getElementById('query-bottom');
        const attrs = (el) => Object.fromEntries([...el.attributes].map(a => [a.name, a.value]));
        const style = (el) => { const s = getComputedStyle(el);
            return Object.fromEntries([...s].map(p => [p, s.getPropertyValue(p)])); };
        const all = [...document.querySelectorAll('*')].flatMap(el =>
            [...el.attributes].map(a => a.name + '=' + a.value));
        return {
            top: attrs(top), bottom: attrs(bottom),
            topStyle: style(top), bottomStyle: style(bottom),
            topFirst: !!(top.compareDocumentPosition(bottom) & Node.DOCUMENT_POSITION_FOLLOWING),
            topAbove: top.getBoundingClientRect().bottom <= bottom.getBoundingClientRect().top,
            everyAttribute: all,
            data: document.getElementById('task-data').textContent,
            counter: document.getElementById('trial-counter').textContent,
        };
    }""")
    max_position = sample.max_position[trial.trial_id]
    min_position = other(max_position)

    def neutral(attributes: dict[str, str], position: str) -> dict[str, str]:
        key = getattr(trial.queries, position)
        assert attributes["src"] == base + key
        out = {name: value.replace(key, "KEY") for name, value in attributes.items()}
        return {name: re.sub(position, "POSITION", value, flags=re.IGNORECASE)
                for name, value in out.items()}

    assert neutral(facts[max_position], max_position) == neutral(facts[min_position], min_position)
    assert facts["topStyle"] == facts["bottomStyle"]
    assert facts["topFirst"] and facts["topAbove"], "DOM order follows the screen"
    telltale = [a for a in facts["everyAttribute"] if TELLTALE.search(a)]
    assert telltale == [], telltale
    assert not TELLTALE.search(facts["data"])
    assert re.fullmatch(r"Trial \d+ of \d+", facts["counter"])


def test_a_window_too_small_refuses_to_start_and_says_why(browser, tmp_path):
    sample = build_sample_task(tmp_path / "images", practice=1, blocks=(("natural", 1),))
    config = study_config(page=FAST_PAGE)
    with PreviewServer(sample.task, config, sample.images) as server:
        page = browser.new_page(viewport={"width": 900, "height": 560})
        page.goto(server.worker_url)
        page.wait_for_function("document.getElementById('load-status').textContent"
                               " === 'All images are loaded.'")
        warning = page.locator("#too-small")
        assert warning.is_visible()
        assert "at least 1000 × 600 pixels" in warning.inner_text()
        assert "This window is now 900 × 560 pixels." in warning.inner_text()
        assert page.locator("#start").is_disabled()
        page.click("#start", force=True)
        assert page.locator("#screen-instructions").is_visible()

        page.set_viewport_size({"width": 1024, "height": 640})
        page.wait_for_selector("#start:enabled")
        assert not warning.is_visible()
        page.click("#start")
        assert page.locator("#screen-message").is_visible()

