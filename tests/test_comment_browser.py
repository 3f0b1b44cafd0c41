"""The worker's comment in headless Chromium: cut by characters, never inside an emoji, and
whatever a person types parses as an honest answer."""

from __future__ import annotations

import pytest

from crowdkit.answers import decode_data, validate_payload
from crowdkit.preview import PreviewServer
from tests.hit_page_helpers import CHROMIUM, build_sample_task, launch_chromium, study_config

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM}; `make browser`"),
]
sync_api = pytest.importorskip("playwright.sync_api")

EMOJI = "\U0001F600"
COMMENTS = {
    "an emoji across the 5000th character": "x" * 4999 + EMOJI * 3,
    "right-to-left text and markup": "\u202eتجربة <img src=x onerror=alert(1)> =1+1",
}


@pytest.mark.parametrize("name", list(COMMENTS))
def test_the_comment_is_cut_by_characters_and_parses(tmp_path, name):
    text = COMMENTS[name]
    sample = build_sample_task(tmp_path / "images", practice=0, blocks=(("natural", 1),),
                               catch_positions=())
    config = study_config(page="feedback_ms = 150\ninter_trial_ms = 30")
    with sync_api.sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        with PreviewServer(sample.task, config, sample.images) as server:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(server.worker_url)
            page.click("#start")
            page.wait_for_selector("#screen-message:visible")
            page.click("#message-continue")
            page.wait_for_selector("#stage.ready")
            page.click('.answer[data-response="top"][data-confidence="2"]')
            page.wait_for_selector("#screen-questionnaire:visible")
            page.check('input[name="cnn"][value="0"]')
            page.check('input[name="fv"][value="0"]')
            page.fill("#comments", text)
            page.click("#submit")
            page.wait_for_selector("text=Submission received")
            posted = server.submissions[0].form["data"]
        browser.close()
    payload = validate_payload(decode_data(posted))  # what collect does with it
    assert payload.questionnaire is not None
    feedback = payload.questionnaire.feedback
    assert feedback == text[:5000]  # 5000 characters, code points: the emoji kept whole
    assert "\ufffd" not in feedback and not any("\ud800" <= c <= "\udfff" for c in feedback)
