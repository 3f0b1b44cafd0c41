"""The worker site over plain HTTP: pages, the framed question, externalSubmit, /files/."""

from __future__ import annotations

import html
import http.cookiejar
import re
import urllib.error
import urllib.parse
import urllib.request

import pytest

from crowdkit.localturk import LocalTurk, parse_question_form_answers
from tests.localturk_support import Worker, hit_args


@pytest.fixture
def turk(tmp_path):
    with LocalTurk(tmp_path / "turk.db", port=0, files_dir=tmp_path / "files") as service:
        yield service


@pytest.fixture
def mturk(turk):
    return turk.boto3_client(max_attempts=1)


class Browser:
    """A cookie-keeping urllib client, standing in for a person's browser."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def get(self, path: str) -> tuple[int, str, str]:
        return self._open(urllib.request.Request(self.base_url + path))

    def post(self, path: str, fields: dict | list, headers: dict | None = None):
        data = urllib.parse.urlencode(fields).encode()
        return self._open(urllib.request.Request(self.base_url + path, data=data,
                                                 headers=headers or {}))

    def _open(self, req) -> tuple[int, str, str]:
        try:
            with self.opener.open(req) as resp:
                return resp.status, resp.geturl(), resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.geturl(), exc.read().decode()


def frame_src(page: str) -> str:
    return html.unescape(re.search(r'<iframe id="question" src="([^"]+)"', page).group(1))


def test_person_signs_in_previews_accepts_and_submits(turk, mturk):
    hit_id = mturk.create_hit(**hit_args(Title="Pick the image"))["HIT"]["HITId"]
    browser = Browser(turk.base_url)
    status, _, page = browser.get("/worker")
    assert status == 200 and 'name="workerId"' in page
    status, url, page = browser.post("/worker/login", {"workerId": "a1person", "country": "us"})
    assert url.endswith("/worker") and "A1PERSON" in page and "Pick the image" in page

    status, _, page = browser.get(f"/worker/hits/{hit_id}")
    preview = urllib.parse.parse_qs(urllib.parse.urlsplit(frame_src(page)).query)
    assert preview == {"assignmentId": ["ASSIGNMENT_ID_NOT_AVAILABLE"], "hitId": [hit_id]}

    status, url, page = browser.post(f"/worker/hits/{hit_id}/accept", {})
    assignment_id = url.rsplit("/", 1)[1]
    src = frame_src(page)
    params = urllib.parse.parse_qs(urllib.parse.urlsplit(src).query)
    assert params == {"assignmentId": [assignment_id], "hitId": [hit_id],
                      "workerId": ["A1PERSON"], "turkSubmitTo": [turk.base_url]}
    status, _, question = browser.get(src[len(turk.base_url):])
    assert status == 200 and 'id="answer"' in question  # the HTMLContent itself

    status, url, page = browser.post("/mturk/externalSubmit",
                                     {"assignmentId": assignment_id, "answer": "left"})
    assert status == 200 and "submitted" in page and "window.top.location" in page
    [assignment] = mturk.list_assignments_for_hit(HITId=hit_id)["Assignments"]
    assert assignment["AssignmentId"] == assignment_id
    assert parse_question_form_answers(assignment["Answer"]) == {"answer": "left"}
    status, _, page = browser.get("/worker")
    assert "Submitted" in page


def test_answer_xml_matches_mturks_format(turk, mturk):
    hit_id = mturk.create_hit(**hit_args())["HIT"]["HITId"]
    alice = Worker(turk.base_url, "A1ALICE")
    accepted = alice.accept(hit_id)
    body = urllib.parse.urlencode([
        ("assignmentId", accepted["AssignmentId"]),
        ("data", '{"trials": [1, 2]} <b>&amp;</b> é ☃\r\nline two'),
        ("comment", ""),
        ("data", "a second value with the same name"),
    ]).encode()
    urllib.request.urlopen(urllib.request.Request(turk.base_url + "/mturk/externalSubmit",
                                                  data=body))
    answer = mturk.get_assignment(AssignmentId=accepted["AssignmentId"])["Assignment"]["Answer"]
    ns = ("http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2005-10-01/"
          "QuestionFormAnswers.xsd")
    assert answer.startswith('<?xml version="1.0" encoding="ASCII"?>'
                             f'<QuestionFormAnswers xmlns="{ns}"><Answer>'
                             "<QuestionIdentifier>data</QuestionIdentifier><FreeText>")
    assert answer.isascii()
    assert parse_question_form_answers(answer) == {
        "data": '{"trials": [1, 2]} <b>&amp;</b> é ☃\r\nline two',  # first value kept
        "comment": "",
    }


def test_external_submit_accepts_multipart_forms(turk, mturk):
    hit_id = mturk.create_hit(**hit_args())["HIT"]["HITId"]
    accepted = Worker(turk.base_url, "A1ALICE").accept(hit_id)
    boundary = "XyZ"
    parts = [("assignmentId", accepted["AssignmentId"]), ("data", "multi\npart ü")]
    body = "".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
                   for k, v in parts) + f"--{boundary}--\r\n"
    req = urllib.request.Request(
        turk.base_url + "/mturk/externalSubmit", data=body.encode("utf-8"),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert urllib.request.urlopen(req).status == 200
    answer = mturk.get_assignment(AssignmentId=accepted["AssignmentId"])["Assignment"]["Answer"]
    assert parse_question_form_answers(answer) == {"data": "multi\npart ü"}


def test_submission_errors(turk, mturk):
    hit_id = mturk.create_hit(**hit_args())["HIT"]["HITId"]
    alice = Worker(turk.base_url, "A1ALICE")
    assert alice.submit("ASSIGNMENT_ID_NOT_AVAILABLE", answer="x")[0] == 400
    assert alice.submit("3NOSUCHASSIGNMENT", answer="x")[0] == 404
    assignment_id = alice.do_hit(hit_id, answer="x")
    status, out = alice.submit(assignment_id, answer="again")
    assert status == 409 and "submitted" in out["error"]
    req = urllib.request.Request(turk.base_url + "/mturk/externalSubmit", data=b"answer=x",
                                 headers={"Accept": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(req)
    assert excinfo.value.code == 400


def test_scripted_worker_flow_and_returns(turk, mturk):
    hit_id = mturk.create_hit(**hit_args(MaxAssignments=1))["HIT"]["HITId"]
    alice, bob = Worker(turk.base_url, "A1ALICE"), Worker(turk.base_url, "A1BOB")
    [listed] = alice.hits()
    assert listed["HITId"] == hit_id and listed["CanAccept"] and listed["Reward"] == "0.50"
    accepted = alice.accept(hit_id)
    assert accepted["QuestionURL"].startswith(f"{turk.base_url}/worker/question/{hit_id}?")
    assert accepted["SubmitURL"] == f"{turk.base_url}/mturk/externalSubmit"
    assert alice.hits() == [] and bob.hits() == []
    assert alice.try_accept(hit_id)[0] == 409  # one assignment per worker and HIT
    assert alice.give_back(accepted["AssignmentId"])[0] == 200
    assert [a["AssignmentStatus"] for a in alice.assignments()] == ["Returned"]
    assert [h["HITId"] for h in bob.hits()] == [hit_id]
    bob.do_hit(hit_id, answer="x")
    assert mturk.get_hit(HITId=hit_id)["HIT"]["HITStatus"] == "Reviewable"


def test_worker_ids_must_look_like_mturks(turk):
    status, out = Worker(turk.base_url, "bob smith").profile(country="US")
    assert status == 400 and "worker id" in out["error"]
    status, _, page = Browser(turk.base_url).post("/worker/login", {"workerId": "x!"})
    assert status == 400 and "worker id" in page


def test_profile_page_sets_locale_and_qualifications(turk, mturk):
    type_id = mturk.create_qualification_type(
        Name="Practice passed", Description="d", QualificationTypeStatus="Active")[
        "QualificationType"]["QualificationTypeId"]
    hit_id = mturk.create_hit(**hit_args(QualificationRequirements=[
        {"QualificationTypeId": type_id, "Comparator": "EqualTo", "IntegerValues": [1]},
        {"QualificationTypeId": "00000000000000000071", "Comparator": "EqualTo",
         "LocaleValues": [{"Country": "DE"}]}]))["HIT"]["HITId"]
    browser = Browser(turk.base_url)
    browser.post("/worker/login", {"workerId": "A1TESTER", "country": "US"})
    _, _, page = browser.get("/worker/profile")
    assert "Practice passed" in page and f"q_{type_id}" in page
    status, _, _ = browser.post("/worker/profile", {"country": "de", f"q_{type_id}": "1"})
    assert status == 200
    tester = Worker(turk.base_url, "A1TESTER")
    assert tester.try_accept(hit_id)[0] == 200
    status, _, page = browser.post("/worker/profile", {"country": "DE", f"q_{type_id}": "one"})
    assert status == 400 and "whole number" in page


def test_preview_refused_when_guarded(turk, mturk):
    hit_id = mturk.create_hit(**hit_args(QualificationRequirements=[
        {"QualificationTypeId": "00000000000000000071", "Comparator": "EqualTo",
         "LocaleValues": [{"Country": "US"}], "RequiredToPreview": True}]))["HIT"]["HITId"]
    browser = Browser(turk.base_url)
    browser.post("/worker/login", {"workerId": "A1AWAY", "country": "FR"})
    status, _, page = browser.get(f"/worker/hits/{hit_id}")
    assert status == 403 and "preview" in page
    [listed] = Worker(turk.base_url, "A1AWAY").hits()
    assert listed["CanPreview"] is False and listed["PreviewURL"] is None


def test_external_question_frame_redirects_with_mturk_parameters(turk, mturk):
    question = (
        '<ExternalQuestion xmlns="http://mechanicalturk.amazonaws.com/'
        'AWSMechanicalTurkDataSchemas/2006-07-14/ExternalQuestion.xsd">'
        "<ExternalURL>https://example.org/task?x=1</ExternalURL><FrameHeight>500</FrameHeight>"
        "</ExternalQuestion>")
    hit_id = mturk.create_hit(**hit_args(Question=question))["HIT"]["HITId"]
    accepted = Worker(turk.base_url, "A1ALICE").accept(hit_id)

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        opener.open(accepted["QuestionURL"])
    location = excinfo.value.headers["Location"]
    assert location.startswith("https://example.org/task?x=1&assignmentId=")
    assert "workerId=A1ALICE" in location and "turkSubmitTo=" in location


# --- new workers, requests and blocks -------------------------------------------------------
COMMON = [  # what studies usually ask for, hiding their HITs from anyone who lacks it
    {"QualificationTypeId": "00000000000000000040", "Comparator": "GreaterThanOrEqualTo",
     "IntegerValues": [1000], "ActionsGuarded": "DiscoverPreviewAndAccept"},
    {"QualificationTypeId": "000000000000000000L0", "Comparator": "GreaterThanOrEqualTo",
     "IntegerValues": [95], "ActionsGuarded": "DiscoverPreviewAndAccept"},
]


def test_a_new_worker_is_told_which_requirements_hide_the_hits(turk, mturk):
    mturk.create_hit(**hit_args(QualificationRequirements=COMMON))
    browser = Browser(turk.base_url)
    _, _, page = browser.post("/worker/login", {"workerId": "A1BRANDNEW", "country": "US"})
    assert "No HITs are available to you." in page
    assert "Hidden from you (1)" in page
    assert "Worker_NumberHITsApproved GreaterThanOrEqualTo 1000 (yours: 0): 1 HIT" in page
    assert "Worker_PercentAssignmentsApproved" not in page  # 100 % before any submission


def test_signing_in_as_an_experienced_worker_meets_the_usual_requirements(turk, mturk):
    hit_id = mturk.create_hit(**hit_args(QualificationRequirements=COMMON))["HIT"]["HITId"]
    browser = Browser(turk.base_url)
    _, _, page = browser.get("/worker")
    assert 'name="experienced"' in page
    _, _, page = browser.post("/worker/login", {"workerId": "A1VETERAN", "country": "US",
                                                "experienced": "1"})
    assert "Pick one of two images." in page and "Hidden from you" not in page
    browser.post("/worker/profile", {"country": "US", "q_00000000000000000040": "10"})
    browser.post("/worker/login", {"workerId": "A1VETERAN", "experienced": "1"})
    status, _ = Worker(turk.base_url, "A1VETERAN").try_accept(hit_id)
    assert status == 403  # a later sign-in keeps the profile the worker set


def test_a_worker_requests_a_qualification_from_the_hit_list(turk, mturk):
    type_id = mturk.create_qualification_type(
        Name="Trained", Description="Passed the training", QualificationTypeStatus="Active")[
        "QualificationType"]["QualificationTypeId"]
    hit_id = mturk.create_hit(**hit_args(QualificationRequirements=[
        {"QualificationTypeId": type_id, "Comparator": "Exists"}]))["HIT"]["HITId"]
    browser = Browser(turk.base_url)
    _, _, page = browser.post("/worker/login", {"workerId": "A1LEARNER"})
    action = f"/worker/qualifications/{type_id}/request"
    assert "Trained Exists (you do not have it)" in page and action in page
    _, url, page = browser.post(action, {"back": "/worker"})
    assert url.endswith("/worker") and action not in page  # asked: no second button
    [pending] = mturk.list_qualification_requests()["QualificationRequests"]
    _, _, page = browser.get("/worker/profile")
    assert "Pending" in page and "waiting for the requester" in page
    mturk.reject_qualification_request(QualificationRequestId=pending[
        "QualificationRequestId"], Reason="finish the training first")
    _, _, page = browser.get("/worker/profile")
    assert "Rejected: finish the training first" in page
    mturk.associate_qualification_with_worker(QualificationTypeId=type_id,
                                              WorkerId="A1LEARNER")
    assert Worker(turk.base_url, "A1LEARNER").try_accept(hit_id)[0] == 200


def test_a_blocked_worker_is_told_so(turk, mturk):
    mturk.create_hit(**hit_args())
    mturk.create_worker_block(WorkerId="A1BLOCKED", Reason="spam")
    browser = Browser(turk.base_url)
    _, _, page = browser.post("/worker/login", {"workerId": "A1BLOCKED"})
    assert 'id="blocked"' in page and "No HITs are available to you." in page


# --- /files/ -----------------------------------------------------------------------------
def fetch(url: str, method: str = "GET"):
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method)) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def test_files_are_served_immutably(turk):
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 16
    (turk.files_dir / "ab12.png").write_bytes(png)
    (turk.files_dir / "sub").mkdir()
    (turk.files_dir / "sub" / "c.json").write_text("{}")
    status, headers, body = fetch(turk.file_url("ab12.png"))
    assert (status, body, headers["Content-Type"]) == (200, png, "image/png")
    assert "max-age=31536000" in headers["Cache-Control"]
    status, headers, body = fetch(turk.file_url("ab12.png"), method="HEAD")
    assert status == 200 and body == b"" and headers["Content-Length"] == str(len(png))
    assert fetch(turk.file_url("sub/c.json"))[1]["Content-Type"] == "application/json"


@pytest.mark.parametrize("path", ["missing.png", "", "sub", "sub/", "../turk.db",
                                  "%2e%2e/turk.db", "..%2fturk.db", "/etc/passwd",
                                  "%2Fetc%2Fpasswd"])
def test_files_refuse_listings_traversal_and_missing(turk, path):
    (turk.files_dir / "sub").mkdir()
    assert (turk.files_dir.parent / "turk.db").exists()
    status, _, body = fetch(f"{turk.base_url}/files/{path}")
    assert status == 404, body
