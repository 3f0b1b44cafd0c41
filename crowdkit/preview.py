"""`crowdkit preview`: serve one rendered HIT on 127.0.0.1 to click through in a browser.

The server plays MTurk's part: it opens the page with fake worker, HIT and assignment ids
and a `turkSubmitTo` that points back at itself, serves the images by key, and answers the
page's POST to /mturk/externalSubmit by showing the parsed, validated submission instead of
sending it anywhere. `PreviewServer` is a context manager, so tests run it in-process.
"""

from __future__ import annotations

import contextlib
import html
import json
import mimetypes
import threading
from collections.abc import Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

from pydantic import ValidationError

from crowdkit.design import design_for
from crowdkit.errors import CrowdkitError
from crowdkit.payload import Payload
from crowdkit.study import Study, StudyConfig
from crowdkit.tasks import PublicTask
from crowdkit.templates import (
    QUESTION_LIMIT_BYTES,
    html_question_xml,
    question_size,
    render_task_html,
    trial_image_keys,
)
from crowdkit.trials.base import ResponseBase

FAKE_WORKER_ID = "APREVIEWWORKER0000"
FAKE_HIT_ID = "3PREVIEWHIT000000000000000000"
FAKE_ASSIGNMENT_ID = "3PREVIEWASSIGNMENT000000000000"
NOT_ACCEPTED = "ASSIGNMENT_ID_NOT_AVAILABLE"
DEFAULT_PORT = 8766
MAX_POST_BYTES = 2_000_000


class Submission:
    """One POST to /mturk/externalSubmit: the raw form, and the payload if it validated."""

    def __init__(self, form: dict[str, str], payload: Payload | None, error: str | None) -> None:
        self.form = form
        self.payload = payload
        self.error = error


class PreviewServer:
    """Serve one task's page, its images and a fake externalSubmit on 127.0.0.1.

    Use as a context manager; `worker_url` opens the page as a worker who accepted the HIT,
    `preview_url` as one who has not (MTurk's preview), and `submissions` collects what the
    page posted.
    """

    def __init__(
        self,
        task: PublicTask,
        config: StudyConfig,
        images: Mapping[str, Path],
        *,
        study_root: Path | None = None,
        port: int = 0,
    ) -> None:
        self.task = task
        self.config = config
        self.images = dict(images)
        self.study_root = study_root
        self.port = port
        self.page = ""
        self.submissions: list[Submission] = []
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def hit_url(self, assignment_id: str) -> str:
        query = urlencode({
            "assignmentId": assignment_id,
            "hitId": FAKE_HIT_ID,
            "workerId": FAKE_WORKER_ID,
            "turkSubmitTo": self.base_url,
        })
        return f"{self.base_url}/hit?{query}"

    @property
    def worker_url(self) -> str:
        return self.hit_url(FAKE_ASSIGNMENT_ID)

    @property
    def preview_url(self) -> str:
        return f"{self.base_url}/hit?" + urlencode({"assignmentId": NOT_ACCEPTED,
                                                     "hitId": FAKE_HIT_ID})

    @property
    def image_count(self) -> int:
        """How many distinct images the task shows."""
        return len({key for trial in self.task.trials for key in trial_image_keys(trial)})

    @property
    def question_bytes(self) -> int:
        """The page's size as MTurk counts it (with this server's image base URL)."""
        return question_size(html_question_xml(self.page))

    def __enter__(self) -> PreviewServer:
        try:
            self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), _handler_for(self))
        except OSError as exc:
            raise CrowdkitError(
                f"cannot serve the preview on 127.0.0.1:{self.port}: {exc.strerror}; "
                "pick another port with --port"
            ) from None
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        try:
            self.page = render_task_html(
                self.task, self.config, f"{self.base_url}/images/", study_root=self.study_root
            )
        except BaseException:
            self._httpd.server_close()
            raise
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="crowdkit-preview", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def wait(self) -> None:
        """Block until interrupted (Ctrl+C), for the CLI."""
        if self._thread is not None:
            self._thread.join()

    def record(self, form: dict[str, str]) -> Submission:
        try:
            # each answer by its trial's type: the public task names them, as a key would
            payload = Payload.model_validate_json(form.get("data", ""),
                                                  context={"key": self.task})
            error = None
            if payload.task_id != self.task.task_id:
                error = f"task_id {payload.task_id!r} is not this task's ({self.task.task_id!r})"
        except ValidationError as exc:
            payload, error = None, _validation_summary(exc)
        submission = Submission(form, payload, error)
        self.submissions.append(submission)
        return submission


def _validation_summary(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors()[:10]:
        where = ".".join(str(p) for p in err["loc"]) or "data"
        lines.append(f"{where}: {err['msg']}")
    return "; ".join(lines)


def _handler_for(server: PreviewServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "crowdkit-preview"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass  # the CLI prints the URLs; per-request lines would bury them

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            path = urlsplit(self.path).path
            if path == "/":
                self._send(HTTPStatus.OK, "text/html; charset=utf-8", _index_page(server))
            elif path == "/hit":
                self._send(HTTPStatus.OK, "text/html; charset=utf-8", server.page.encode())
            elif path.startswith("/images/"):
                self._send_image(path.removeprefix("/images/"))
            else:
                self._send(HTTPStatus.NOT_FOUND, "text/plain", b"not found\n")

        def do_POST(self) -> None:  # noqa: N802
            if urlsplit(self.path).path != "/mturk/externalSubmit":
                self._send(HTTPStatus.NOT_FOUND, "text/plain", b"not found\n")
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_POST_BYTES:
                self._send(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "text/plain", b"too large\n")
                return
            body = self.rfile.read(length).decode("utf-8", errors="replace")
            form = {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}
            submission = server.record(form)
            status = HTTPStatus.OK if submission.error is None else HTTPStatus.BAD_REQUEST
            self._send(status, "text/html; charset=utf-8", _submission_page(submission))

        def _send_image(self, key: str) -> None:
            path = server.images.get(key)
            if path is None or not path.is_file():
                self._send(HTTPStatus.NOT_FOUND, "text/plain", b"no such image\n")
                return
            kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            self._send(HTTPStatus.OK, kind, path.read_bytes(), cache=True)

        def _send(self, status: int, kind: str, body: bytes, *, cache: bool = False) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "public" if cache else "no-store")
            self.end_headers()
            self.wfile.write(body)

    return Handler


_STYLE = (
    "<style>body{font:16px/1.5 system-ui,sans-serif;margin:2rem auto;width:48rem}"
    "pre{background:#f4f4f4;padding:1rem;overflow:auto}td,th{padding:.2rem .6rem;"
    "text-align:left}.bad{color:#b42318}</style>"
)


def _index_page(server: PreviewServer) -> bytes:
    esc = html.escape
    body = (
        f"<!DOCTYPE html><meta charset=utf-8><title>crowdkit preview</title>{_STYLE}"
        f"<h1>Preview of task {esc(server.task.task_id)}</h1>"
        f"<p>{len(server.task.trials)} trials, {server.image_count} images; the page is "
        f"{server.question_bytes:,} bytes as an HTMLQuestion (MTurk allows "
        f"{QUESTION_LIMIT_BYTES:,}).</p><ul>"
        f'<li><a href="{esc(server.preview_url)}">As MTurk shows it before a worker accepts</a>'
        f'<li><a href="{esc(server.worker_url)}">As a worker who accepted it</a> '
        "(fake ids; the submission is shown here, not sent anywhere)</ul>"
    )
    return body.encode()


def _submission_page(submission: Submission) -> bytes:
    """What the researcher sees on submit: the parsed payload, or what is wrong with it."""
    esc = html.escape
    parts = [f"<!DOCTYPE html><meta charset=utf-8><title>Submission</title>{_STYLE}"]
    if submission.error:
        parts.append('<h1 class="bad">The submission is not valid</h1>')
        parts.append(f"<p>{esc(submission.error)}</p>")
    else:
        p = submission.payload
        assert p is not None
        parts.append("<h1>Submission received (not sent anywhere)</h1><table>")
        rows = [
            ("assignmentId", submission.form.get("assignmentId", "")),
            ("task", p.task_id),
            ("responses", str(len(p.trials))),
            ("practice rounds", str(p.practice_rounds)),
            ("instructions", f"{p.timing.instructions_ms / 1000:.1f} s"),
            ("total", f"{p.timing.total_ms / 1000:.1f} s"),
        ]
        parts += [f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows]
        parts.append("</table><h2>Responses</h2><table><tr><th>trial<th>round<th>answer"
                     "<th>rt (ms)</tr>")
        parts += [
            f"<tr><td>{esc(t.trial_id)}<td>{t.round}<td>{esc(_answer_text(t))}"
            f"<td>{t.rt_ms:.0f}</tr>"
            for t in p.trials
        ]
        parts.append("</table>")
    data = submission.form.get("data", "")
    with contextlib.suppress(ValueError):
        data = json.dumps(json.loads(data), indent=2)
    parts.append(f"<h2>The data field</h2><pre>{esc(data)}</pre>")
    return "".join(parts).encode()


def _answer_text(response: ResponseBase) -> str:
    """What an answer says besides its id, round and time (2-AFC: response and confidence)."""
    fields = response.model_dump(exclude={"trial_id", "round", "rt_ms"})
    return ", ".join(f"{name} {value}" for name, value in fields.items())


def preview_server(study: Study, *, task_index: int = 0, port: int = DEFAULT_PORT) -> PreviewServer:
    """A PreviewServer for one task of the study's design (not yet started)."""
    design = design_for(study)
    if not 0 <= task_index < len(design.tasks):
        raise CrowdkitError(
            f"--task {task_index}: the design has tasks 0 to {len(design.tasks) - 1}"
        )
    task = design.tasks[task_index].public
    return PreviewServer(task, study.config, design.images, study_root=study.root, port=port)
