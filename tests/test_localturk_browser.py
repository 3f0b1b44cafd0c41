"""A real browser does a HIT on the worker site: sign in, accept, fill the framed form, submit."""

from __future__ import annotations

import pytest

from crowdkit.localturk import LocalTurk, parse_question_form_answers
from tests.browser import CHROMIUM, CHROMIUM_ARGS
from tests.localturk_support import hit_args

pytestmark = pytest.mark.browser


def test_browser_accepts_and_submits_a_hit(tmp_path):
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (run `make browser`)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with LocalTurk(tmp_path / "turk.db", port=0) as turk:
        mturk = turk.boto3_client(max_attempts=1)
        hit_id = mturk.create_hit(**hit_args(Title="Pick the image"))["HIT"]["HITId"]
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM),
                                                 args=CHROMIUM_ARGS)
            try:
                page = browser.new_page()
                page.set_default_timeout(30_000)
                page.goto(turk.worker_url)
                page.fill("input[name=workerId]", "A1BROWSER")
                page.click("button[type=submit]")
                page.click(f"form[action='/worker/hits/{hit_id}/accept'] button")
                page.wait_for_url("**/worker/assignments/*")
                frame = page.frame_locator("iframe#question")
                frame.locator("#answer").fill("left <image> & é")
                frame.locator("#submit").click()
                page.wait_for_url("**/worker?submitted=*")  # the page leaves the frame
                assert "Submitted" in page.content()
            finally:
                browser.close()
        [assignment] = mturk.list_assignments_for_hit(HITId=hit_id)["Assignments"]
        assert assignment["WorkerId"] == "A1BROWSER"
        answers = parse_question_form_answers(assignment["Answer"])
        assert answers == {"answer": "left <image> & é"}


def test_browser_new_worker_sees_why_and_starts_experienced(tmp_path):
    """A first sign-in of a brand-new worker shows which requirements hide the study's HITs;
    the sign-in form's experienced start (checked by default) makes them visible."""
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (run `make browser`)")
    sync_api = pytest.importorskip("playwright.sync_api")
    requirements = [
        {"QualificationTypeId": "00000000000000000040", "Comparator": "GreaterThanOrEqualTo",
         "IntegerValues": [1000], "ActionsGuarded": "DiscoverPreviewAndAccept"},
        {"QualificationTypeId": "00000000000000000071", "Comparator": "EqualTo",
         "LocaleValues": [{"Country": "US"}], "ActionsGuarded": "DiscoverPreviewAndAccept"}]
    with LocalTurk(tmp_path / "turk.db", port=0) as turk:
        mturk = turk.boto3_client(max_attempts=1)
        hit_id = mturk.create_hit(**hit_args(Title="Pick the image",
                                             QualificationRequirements=requirements))[
            "HIT"]["HITId"]
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM),
                                                 args=CHROMIUM_ARGS)
            try:
                page = browser.new_page()
                page.set_default_timeout(30_000)
                page.goto(turk.worker_url)
                page.fill("input[name=workerId]", "A1NEWBIE")
                page.uncheck("input[name=experienced]")
                page.click("button[type=submit]")
                hidden = page.locator("#hidden").inner_text()
                assert "Worker_NumberHITsApproved GreaterThanOrEqualTo 1000 (yours: 0)" in hidden
                assert "Pick the image" not in page.content()
                page.click("text=Sign out")
                page.fill("input[name=workerId]", "A1STARTER")  # country US, experienced
                page.click("button[type=submit]")
                page.click(f"form[action='/worker/hits/{hit_id}/accept'] button")
                page.wait_for_url("**/worker/assignments/*")
            finally:
                browser.close()
        assert mturk.get_hit(HITId=hit_id)["HIT"]["NumberOfAssignmentsPending"] == 1
