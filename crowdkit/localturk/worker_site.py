"""The worker's side of localturk: a small MTurk-like site, and the same flow as JSON.

People use the HTML pages (sign in with a worker id, browse, preview, accept, work in a
frame, submit, ask for a qualification); simulated participants and tests use the JSON
routes under /worker/api/. A new worker is not left with an empty list and no reason: the
HIT list says which requirements hide HITs from them (with their own value), and the sign-in
form can start a worker with a profile that meets the usual requirements.
The HIT's page is framed exactly as MTurk frames it: its URL carries assignmentId, hitId,
workerId and turkSubmitTo, and the page posts its form to turkSubmitTo + /mturk/externalSubmit.
"""

from __future__ import annotations

import html
import json
import re
import sqlite3
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from crowdkit.localturk import quals
from crowdkit.localturk.market import (
    HOLDS_SLOT,
    Access,
    HitState,
    Market,
    WorkerError,
    normalize_worker_id,
)
from crowdkit.localturk.web import Request, Response, with_query
from crowdkit.localturk.workers import EXPERIENCED
from crowdkit.localturk.xml import parse_question

COOKIE = "localturk_worker"
PREVIEW_ASSIGNMENT = "ASSIGNMENT_ID_NOT_AVAILABLE"
_HIT_PAGE = re.compile(r"^/worker/hits/([A-Z0-9]+)(/accept)?$")
_ASSIGNMENT_PAGE = re.compile(r"^/worker/assignments/([A-Z0-9]+)(/return)?$")
_QUESTION = re.compile(r"^/worker/question/([A-Z0-9]+)$")
_REQUEST = re.compile(r"^/worker/qualifications/([A-Z0-9]+)/request$")
_STYLE = """
body{font-family:system-ui,sans-serif;margin:0;color:#222}
header{background:#232f3e;color:#fff;padding:.6em 1em;display:flex;gap:1em;align-items:center}
header a,header button{color:#fff}
header form{display:inline;margin:0}
main{padding:1em}
table{border-collapse:collapse;width:100%}
td,th{border-bottom:1px solid #ddd;padding:.4em;text-align:left;vertical-align:top}
.error{background:#fde;padding:.6em;border:1px solid #c99}
.note{color:#666;font-size:.9em}
iframe{width:100%;border:1px solid #999}
"""


def iso(t: float | None) -> str | None:
    if t is None:
        return None
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


class WorkerSite:
    """Routes of the worker site; `handle` returns None for paths it does not own."""

    def __init__(self, market: Market) -> None:
        self.market = market

    def handle(self, req: Request) -> Response | None:
        path = req.path
        try:
            if path.startswith("/worker/api/"):
                return self._api(req)
            if path == "/mturk/externalSubmit":
                return self._external_submit(req)
            if path.startswith("/worker/question/"):
                return self._question(req)
            if path == "/worker" or path.startswith("/worker/"):
                return self._page(req)
        except WorkerError as exc:
            if path.startswith("/worker/api/") or req.wants_json():
                return Response.json({"error": exc.message}, exc.status)
            return Response.html(self._layout("Problem", f'<p class="error">{_e(exc.message)}'
                                              '</p><p><a href="/worker">Back to the HIT list'
                                              "</a></p>", self._worker(req)), exc.status)
        return None

    # --- shared ---------------------------------------------------------------------
    @staticmethod
    def _worker(req: Request) -> str | None:
        value = req.cookies.get(COOKIE)
        try:
            return normalize_worker_id(value) if value else None
        except WorkerError:
            return None

    def question_url(self, req: Request, hit_id: str, assignment_id: str,
                     worker_id: str | None) -> str:
        """The frame's URL with MTurk's query parameters (no workerId in a preview)."""
        params = {"assignmentId": assignment_id, "hitId": hit_id}
        if assignment_id != PREVIEW_ASSIGNMENT and worker_id:
            params["workerId"] = worker_id
            params["turkSubmitTo"] = req.origin
        return with_query(f"{req.origin}/worker/question/{hit_id}", params)

    def _layout(self, title: str, body: str, worker_id: str | None) -> str:
        who = ""
        if worker_id:
            who = (f'<span>Worker <b>{_e(worker_id)}</b></span><a href="/worker">HITs</a>'
                   '<a href="/worker/profile">Profile</a>'
                   '<form method="post" action="/worker/logout"><button>Sign out</button></form>')
        return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{_e(title)} - "
                f"localturk</title><style>{_STYLE}</style></head><body><header>"
                f"<b>localturk</b>{who}</header><main><h1>{_e(title)}</h1>{body}</main>"
                "</body></html>")

    # --- HTML pages -------------------------------------------------------------------
    def _page(self, req: Request) -> Response | None:
        path, post = req.path.rstrip("/") or "/worker", req.method == "POST"
        if path == "/worker/login" and post:
            return self._login(req)
        if path == "/worker/logout" and post:
            return Response.redirect("/worker", cookie=f"{COOKIE}=; Path=/; Max-Age=0")
        worker_id = self._worker(req)
        if worker_id is None:
            if path == "/worker" and req.method == "GET":
                return Response.html(self._login_page())
            return Response.redirect("/worker")
        if path == "/worker" and req.method == "GET":
            return Response.html(self._dashboard(req, worker_id))
        if path == "/worker/profile":
            if post:
                self._save_profile(req, worker_id)
                return Response.redirect("/worker/profile")
            return Response.html(self._profile_page(worker_id))
        if (match := _REQUEST.match(path)) and post:
            self.market.request_qualification(worker_id, match.group(1))
            back = req.data().get("back") or ""
            return Response.redirect(back if back.startswith("/worker") else "/worker/profile")
        if match := _HIT_PAGE.match(path):
            hit_id, accept = match.groups()
            if accept and post:
                row = self.market.accept(worker_id, hit_id)
                return Response.redirect(f"/worker/assignments/{row['assignment_id']}")
            return Response.html(self._preview_page(req, worker_id, hit_id))
        if match := _ASSIGNMENT_PAGE.match(path):
            assignment_id, give_back = match.groups()
            if give_back and post:
                self.market.return_assignment(worker_id, assignment_id)
                return Response.redirect("/worker")
            return Response.html(self._work_page(req, worker_id, assignment_id))
        return None

    def _login(self, req: Request) -> Response:
        form = req.data()
        worker_id = normalize_worker_id(form.get("workerId", ""))
        new = self.market.db.one("SELECT 1 FROM workers WHERE worker_id = ?",
                                 (worker_id,)) is None
        self.market.ensure_worker(worker_id)
        # only a worker's first sign-in starts their profile; later ones keep what they have
        experienced: dict[str, int | None] | None = (
            dict(EXPERIENCED) if form.get("experienced") and new else None)
        if form.get("country") or experienced:
            self.market.set_profile(worker_id, form.get("country"), form.get("subdivision"),
                                    experienced)
        cookie = f"{COOKIE}={worker_id}; Path=/; SameSite=Lax"
        return Response.redirect("/worker", cookie=cookie)

    def _login_page(self) -> str:
        body = """
<p>Pick any worker id to act as that worker. Nothing is checked: this is a local test site.</p>
<form method="post" action="/worker/login">
<p><label>Worker id <input name="workerId" value="A1TESTWORKER" required
  pattern="[Aa][A-Za-z0-9]{1,63}"></label>
<span class="note">'A' followed by capitals and digits, as on MTurk</span></p>
<p><label>Country <input name="country" value="US" size="2" maxlength="2"></label>
<label>Subdivision <input name="subdivision" size="3" maxlength="3"></label>
<span class="note">ISO 3166 codes, e.g. US and CA; used by locale requirements</span></p>
<p><label><input type="checkbox" name="experienced" value="1" checked> Start as an
  experienced worker</label>
<span class="note">5,000 approved HITs and a 99 % approval rate, which the usual
  requirements ask for (a brand-new worker has neither). Change it on the profile page.</span></p>
<p><button type="submit">Sign in</button></p></form>"""
        return self._layout("Sign in", body, None)

    def _dashboard(self, req: Request, worker_id: str) -> str:
        parts = []
        notes = self.market.notifications(worker_id)
        if notes:
            parts.append("<h2>Messages</h2>" + "".join(
                f"<p><b>{_e(n['subject'])}</b> ({iso(n['time'])})<br>{_e(n['message'])}</p>"
                for n in notes[:10]))
        mine = [a for a in self.market.worker_assignments(worker_id)
                if a["status"] in HOLDS_SLOT]
        if mine:
            rows = "".join(self._assignment_row(a) for a in mine[:50])
            parts.append("<h2>Your assignments</h2><table><tr><th>HIT</th><th>Reward</th>"
                         f"<th>Status</th><th></th></tr>{rows}</table>")
        hits = self.market.hits_for_worker(worker_id)
        rows = "".join(self._hit_row(state, access) for state, access in hits)
        parts.append(f"<h2>Available HITs ({len(hits)})</h2>" + (
            "<table><tr><th>Title</th><th>Reward</th><th>Available</th><th>Expires</th>"
            f"<th></th></tr>{rows}</table>" if hits else "<p>No HITs are available to you.</p>"))
        parts.append(self._why_not(worker_id))
        return self._layout("HITs", "".join(parts), worker_id)

    def _why_not(self, worker_id: str) -> str:
        """Why HITs the worker cannot see are hidden: a block, or requirements guarding
        discovery that they do not meet (each named with the worker's own value)."""
        if self.market.blocked(worker_id):
            return ('<p class="error" id="blocked">The requester has blocked you: you cannot '
                    "find or accept their HITs.</p>")
        hidden = self.market.hidden_hits(worker_id)
        if not hidden:
            return ""
        reasons: dict[str, int] = {}
        for _, access in hidden:
            for text in access["unmet"]:
                reasons[text] = reasons.get(text, 0) + 1
        items = "".join(f"<li>{_e(text)}: {n} HIT{'s' if n > 1 else ''}</li>"
                        for text, n in reasons.items())
        return (f'<div id="hidden"><h2>Hidden from you ({len(hidden)})</h2><p>These HITs '
                "require qualifications you do not meet, so MTurk would not show them to "
                f"you:</p><ul>{items}</ul><p class='note'>Set your values on the "
                "<a href='/worker/profile'>profile page</a> to test as another kind of "
                "worker.</p></div>")

    @staticmethod
    def _assignment_row(a: sqlite3.Row) -> str:
        action = ""
        if a["status"] == "Accepted":
            action = f'<a href="/worker/assignments/{a["assignment_id"]}">Continue</a>'
        return (f"<tr><td>{_e(a['title'])}</td><td>${_e(a['reward'])}</td>"
                f"<td>{_e(a['status'])}</td><td>{action}</td></tr>")

    @staticmethod
    def _request_buttons(type_ids: list[str], back: str) -> str:
        """A button per qualification type the worker may ask the requester for."""
        return "".join(
            f'<form method="post" action="/worker/qualifications/{_e(t)}/request">'
            f'<input type="hidden" name="back" value="{_e(back)}">'
            '<button class="request">Request qualification</button></form>'
            for t in type_ids)

    def _hit_row(self, state: HitState, access: Access) -> str:
        row = state.row
        if access["accept"]:
            action = (f'<form method="post" action="/worker/hits/{row["hit_id"]}/accept">'
                      '<button>Accept</button></form>')
        else:
            action = '<span class="note">Not qualified: ' + _e("; ".join(access["unmet"]))
            action += "</span>" + self._request_buttons(access["requestable"], "/worker")
        preview = (f'<a href="/worker/hits/{row["hit_id"]}">{_e(row["title"])}</a>'
                   if access["preview"] else _e(row["title"]))
        return (f"<tr><td>{preview}<br><span class='note'>{_e(row['description'])}</span></td>"
                f"<td>${_e(row['reward'])}</td><td>{state.available}</td>"
                f"<td>{iso(row['expiration'])}</td><td>{action}</td></tr>")

    def _preview_page(self, req: Request, worker_id: str, hit_id: str) -> str:
        self.market.settle()
        row = self.market.worker_hit(hit_id)
        state = self.market.state(row, self.market.db.now())
        access = self.market.access(worker_id, state.requirements)
        if not access["preview"]:
            raise WorkerError("your qualifications do not allow you to preview this HIT: "
                              + "; ".join(access["unmet"]), 403)
        accept = ""
        if self.market.blocked(worker_id):
            accept = '<p class="note">The requester has blocked you from their HITs.</p>'
        elif state.assignable and access["accept"]:
            accept = (f'<form method="post" action="/worker/hits/{hit_id}/accept">'
                      '<button id="accept">Accept</button></form>')
        elif not access["accept"]:
            accept = ('<p class="note">Not qualified: ' + _e("; ".join(access["unmet"]))
                      + "</p>" + self._request_buttons(access["requestable"],
                                                       f"/worker/hits/{hit_id}"))
        else:
            accept = '<p class="note">No assignments are available.</p>'
        body = (self._hit_summary(row) + accept
                + self._frame(self.question_url(req, hit_id, PREVIEW_ASSIGNMENT, None), row))
        return self._layout(f"Preview: {row['title']}", body, worker_id)

    def _work_page(self, req: Request, worker_id: str, assignment_id: str) -> str:
        self.market.settle()
        a = self.market.assignment(assignment_id)
        if a is None or a["worker_id"] != worker_id:
            raise WorkerError(f"assignment {assignment_id} does not exist", 404)
        row = self.market.require_hit(a["hit_id"])  # HITs are never deleted, only disposed
        if a["status"] != "Accepted":
            body = f"<p>This assignment is {_e(a['status'].lower())}.</p>"
            return self._layout(row["title"], body, worker_id)
        give_back = (f'<form method="post" action="/worker/assignments/{assignment_id}/return">'
                     '<button>Return this HIT</button></form>')
        body = (self._hit_summary(row)
                + f"<p>Submit before {iso(a['deadline'])} (UTC).</p>{give_back}"
                + self._frame(self.question_url(req, row["hit_id"], assignment_id, worker_id),
                              row))
        return self._layout(row["title"], body, worker_id)

    @staticmethod
    def _hit_summary(row: sqlite3.Row) -> str:
        minutes = max(1, row["assignment_duration"] // 60)
        return (f"<p>{_e(row['description'])}</p><p>Reward <b>${_e(row['reward'])}</b>; "
                f"time allowed {minutes} min; HIT {_e(row['hit_id'])}</p>")

    @staticmethod
    def _frame(url: str, row: sqlite3.Row) -> str:
        height = parse_question(row["question"], strict=False).frame_height or 800
        return f'<iframe id="question" src="{_e(url)}" height="{height}"></iframe>'

    def _profile_page(self, worker_id: str) -> str:
        worker = self.market.ensure_worker(worker_id)
        types = [(t, n) for t, (n, _) in quals.SYSTEM_TYPES.items() if t != quals.LOCALE]
        types += [(r["qualification_type_id"], r["name"]) for r in self.market.db.all(
            "SELECT qualification_type_id, name FROM qualification_types ORDER BY rowid")]
        rows = []
        for type_id, name in types:
            held = self.market.db.one(
                "SELECT integer_value FROM qualifications WHERE qualification_type_id = ? AND "
                "worker_id = ? AND status = 'Granted'", (type_id, worker_id))
            value = "" if held is None else held["integer_value"]
            rows.append(f"<tr><td>{_e(name)}<br><span class='note'>{_e(type_id)}</span></td>"
                        f"<td><input name='q_{_e(type_id)}' value='{_e(value)}' size='6'></td>"
                        "</tr>")
        body = f"""
<form method="post" action="/worker/profile">
<p><label>Country <input name="country" value="{_e(worker['country'] or '')}" size="2"
  maxlength="2"></label> <label>Subdivision <input name="subdivision"
  value="{_e(worker['subdivision'] or '')}" size="3" maxlength="3"></label></p>
<h2>Qualifications (for testing)</h2>
<p class="note">A number grants the qualification with that value; empty means you do not
hold it. Empty NumberHITsApproved and PercentAssignmentsApproved are computed from your
local history.</p>
<table><tr><th>Qualification</th><th>Value</th></tr>{''.join(rows)}</table>
<p><button type="submit">Save</button></p></form>{self._requests_section(worker_id)}"""
        return self._layout("Profile", body, worker_id)

    def _requests_section(self, worker_id: str) -> str:
        """The requester's qualification types as a worker can ask for them: a Request
        button, or why not (already asked, a test localturk cannot show, inactive)."""
        types = self.market.db.all("SELECT * FROM qualification_types ORDER BY rowid")
        if not types:
            return ""
        latest: dict[str, sqlite3.Row] = {}
        for asked in self.market.worker_requests(worker_id):
            latest.setdefault(asked["qualification_type_id"], asked)
        rows = []
        for t in types:
            type_id = t["qualification_type_id"]
            request = latest.get(type_id)
            status = "" if request is None else request["status"]
            if request is not None and request["status"] == "Rejected" and request["reason"]:
                status += f": {request['reason']}"
            why_not = self.market.can_request(worker_id, type_id)
            action = (self._request_buttons([type_id], "/worker/profile")
                      if why_not is None else f'<span class="note">{_e(why_not)}</span>')
            rows.append(f"<tr><td>{_e(t['name'])}<br><span class='note'>{_e(t['description'])}"
                        f"</span></td><td>{_e(status)}</td><td>{action}</td></tr>")
        return ("<h2>Requesting qualifications</h2><table><tr><th>Qualification</th>"
                f"<th>Your request</th><th></th></tr>{''.join(rows)}</table>")

    def _save_profile(self, req: Request, worker_id: str) -> None:
        form = req.data()
        values: dict[str, int | None] = {}
        for key, text in form.items():
            if key.startswith("q_"):
                text = text.strip()
                if text and not re.match(r"^-?\d+$", text):
                    raise WorkerError(f"the value of {key[2:]} must be a whole number")
                values[key[2:]] = int(text) if text else None
        self.market.set_profile(worker_id, form.get("country"), form.get("subdivision"),
                                values)

    # --- the HIT's page and its submission --------------------------------------------
    def _question(self, req: Request) -> Response:
        match = _QUESTION.match(req.path)
        if match is None:
            raise WorkerError(f"no such page: {req.path}", 404)
        row = self.market.worker_hit(match.group(1))
        question = parse_question(row["question"], strict=False)
        if question.external_url is not None:  # an ExternalQuestion
            return Response(302, b"", {"Location": with_query(question.external_url,
                                                              dict(req.query))})
        return Response.html(question.html or "")

    def _external_submit(self, req: Request) -> Response:
        fields = req.form()
        assignment_id = next((v for k, v in fields if k == "assignmentId"), "")
        if not assignment_id:
            raise WorkerError("the submission has no assignmentId field", 400)
        row = self.market.submit(assignment_id, fields)
        if req.wants_json():
            return Response.json({"AssignmentId": row["assignment_id"],
                                  "AssignmentStatus": row["status"]})
        target = f"/worker?submitted={quote(row['assignment_id'])}"
        body = (f"<p>Thank you: assignment {_e(row['assignment_id'])} is submitted.</p>"
                f'<p><a href="{target}" target="_top">Back to the HIT list</a></p>'
                f"<script>window.top.location.href = {json.dumps(target)};</script>")
        return Response.html(self._layout("Submitted", body, None))

    # --- JSON API for simulated workers ----------------------------------------------
    def _api(self, req: Request) -> Response | None:
        route = (req.method, req.path.rstrip("/"))
        data = req.data() if req.method == "POST" else dict(req.query)
        worker_id = normalize_worker_id(str(data.get("workerId", "")))
        if route == ("GET", "/worker/api/hits"):
            hits = [self._hit_json(req, s, a) for s, a in self.market.hits_for_worker(worker_id)]
            return Response.json({"WorkerId": worker_id, "HITs": hits})
        if route == ("POST", "/worker/api/accept"):
            row = self.market.accept(worker_id, str(data.get("hitId", "")))
            return Response.json(self._assignment_json(req, row))
        if route == ("POST", "/worker/api/return"):
            self.market.return_assignment(worker_id, str(data.get("assignmentId", "")))
            return Response.json({"AssignmentId": data.get("assignmentId"),
                                  "AssignmentStatus": "Returned"})
        if route == ("GET", "/worker/api/assignments"):
            rows = self.market.worker_assignments(worker_id)
            return Response.json({"WorkerId": worker_id,
                                  "Assignments": [self._assignment_json(req, r) for r in rows]})
        if route == ("POST", "/worker/api/request-qualification"):
            request = self.market.request_qualification(
                worker_id, str(data.get("qualificationTypeId", "")))
            return Response.json({"QualificationRequestId": request["request_id"],
                                  "QualificationTypeId": request["qualification_type_id"],
                                  "Status": request["status"]})
        if route == ("POST", "/worker/api/profile"):
            qualifications = data.get("qualifications") or {}
            if not isinstance(qualifications, dict):
                raise WorkerError("qualifications must be an object of type id -> value")
            self.market.set_profile(worker_id, data.get("country"), data.get("subdivision"),
                                    qualifications)
            return Response.json({"WorkerId": worker_id})
        raise WorkerError(f"no such worker API route: {req.method} {req.path}", 404)

    def _hit_json(self, req: Request, state: HitState, access: Access) -> dict[str, Any]:
        row = state.row
        return {
            "HITId": row["hit_id"], "HITTypeId": row["hit_type_id"], "Title": row["title"],
            "Description": row["description"], "Keywords": row["keywords"],
            "Reward": row["reward"], "AssignmentDurationInSeconds": row["assignment_duration"],
            "Expiration": iso(row["expiration"]),
            "NumberOfAssignmentsAvailable": state.available,
            "CanPreview": access["preview"], "CanAccept": access["accept"],
            "UnmetRequirements": access["unmet"],
            "PreviewURL": (self.question_url(req, row["hit_id"], PREVIEW_ASSIGNMENT, None)
                           if access["preview"] else None),
        }

    def _assignment_json(self, req: Request, row: sqlite3.Row) -> dict[str, Any]:
        out = {
            "AssignmentId": row["assignment_id"], "HITId": row["hit_id"],
            "WorkerId": row["worker_id"], "AssignmentStatus": row["status"],
            "AcceptTime": iso(row["accept_time"]), "Deadline": iso(row["deadline"]),
            "SubmitTime": iso(row["submit_time"]),
        }
        if row["status"] == "Accepted":
            out["QuestionURL"] = self.question_url(req, row["hit_id"], row["assignment_id"],
                                                   row["worker_id"])
            out["SubmitURL"] = f"{req.origin}/mturk/externalSubmit"
        return out
