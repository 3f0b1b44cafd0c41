"""Helpers shared by the localturk tests: a tiny HIT page and a urllib 'worker'."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request

from crowdkit.localturk import html_question

FORM_PAGE = """<!DOCTYPE html>
<html><body>
<form id="task" method="post">
  <input type="hidden" name="assignmentId" id="assignmentId">
  <input name="answer" id="answer">
  <button type="submit" id="submit">Submit</button>
</form>
<script>
  const q = new URLSearchParams(location.search);
  document.getElementById("assignmentId").value = q.get("assignmentId");
  document.getElementById("task").action = q.get("turkSubmitTo") + "/mturk/externalSubmit";
</script>
</body></html>"""


def hit_args(**overrides) -> dict:
    """CreateHIT arguments for a small, valid HIT."""
    args = {
        "MaxAssignments": 2,
        "LifetimeInSeconds": 3600,
        "AssignmentDurationInSeconds": 600,
        "AutoApprovalDelayInSeconds": 86400,
        "Reward": "0.50",
        "Title": "Which image activates the unit more?",
        "Description": "Pick one of two images.",
        "Keywords": "images, psychology",
        "Question": html_question(FORM_PAGE, 600),
    }
    args.update(overrides)
    return args


class Worker:
    """A scripted worker driving the worker site's JSON routes over plain HTTP."""

    def __init__(self, base_url: str, worker_id: str) -> None:
        self.base_url = base_url
        self.worker_id = worker_id

    def _call(self, method: str, path: str, data: dict | None = None) -> tuple[int, dict]:
        body = None if data is None else json.dumps(data).encode()
        req = urllib.request.Request(self.base_url + path, data=body, method=method,
                                     headers={"Content-Type": "application/json",
                                              "Accept": "application/json"})
        try:
            with urllib.request.urlopen(req) as resp:
                return resp.status, json.load(resp)
        except urllib.error.HTTPError as exc:
            return exc.code, json.load(exc)

    def hits(self) -> list[dict]:
        status, out = self._call("GET", f"/worker/api/hits?workerId={self.worker_id}")
        assert status == 200, out
        return out["HITs"]

    def try_accept(self, hit_id: str) -> tuple[int, dict]:
        return self._call("POST", "/worker/api/accept",
                          {"workerId": self.worker_id, "hitId": hit_id})

    def accept(self, hit_id: str) -> dict:
        status, out = self.try_accept(hit_id)
        assert status == 200, out
        return out

    def give_back(self, assignment_id: str) -> tuple[int, dict]:
        return self._call("POST", "/worker/api/return",
                          {"workerId": self.worker_id, "assignmentId": assignment_id})

    def profile(self, **data) -> tuple[int, dict]:
        return self._call("POST", "/worker/api/profile", {"workerId": self.worker_id, **data})

    def assignments(self) -> list[dict]:
        status, out = self._call("GET", f"/worker/api/assignments?workerId={self.worker_id}")
        assert status == 200, out
        return out["Assignments"]

    def submit(self, assignment_id: str, **fields: str) -> tuple[int, dict]:
        form = urllib.parse.urlencode({"assignmentId": assignment_id, **fields}).encode()
        req = urllib.request.Request(self.base_url + "/mturk/externalSubmit", data=form,
                                     headers={"Accept": "application/json"})
        try:
            with urllib.request.urlopen(req) as resp:
                return resp.status, json.load(resp)
        except urllib.error.HTTPError as exc:
            return exc.code, json.load(exc)

    def do_hit(self, hit_id: str, **fields: str) -> str:
        """Accept and submit a HIT; returns the assignment id."""
        assignment = self.accept(hit_id)
        status, out = self.submit(assignment["AssignmentId"], **fields)
        assert status == 200, out
        return assignment["AssignmentId"]
