"""The HTTP side of localturk: one stdlib server for the requester API, the worker site,
study files and a few test controls, plus `LocalTurk`, the in-process service.

Routes:
  POST /  with X-Amz-Target: MTurkRequesterServiceV20170117.<Operation>   requester API
  GET  /files/<path>                                   files_dir, immutable, no listings
  PUT  /files/<sha256 hex>.<ext>                       content-addressed upload (publish)
  /worker..., /mturk/externalSubmit                    the worker site (worker_site.py)
  GET  /_localturk/health, GET|POST /_localturk/clock, POST /_localturk/faults,
  GET  /_localturk/notifications                                        test controls
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import mimetypes
import re
import socket
import threading
import uuid
from collections.abc import Callable
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit

from crowdkit.errors import CrowdkitError
from crowdkit.files import write_atomically
from crowdkit.localturk.api import OPERATIONS, RequesterAPI
from crowdkit.localturk.db import TurkDB
from crowdkit.localturk.errors import RequestError, TurkError, UnknownOperation
from crowdkit.localturk.events import Delivery, EventLog
from crowdkit.localturk.faults import FaultConfig, FaultInjector
from crowdkit.localturk.market import Market
from crowdkit.localturk.web import Request, Response
from crowdkit.localturk.worker_site import WorkerSite

if TYPE_CHECKING:  # boto3 is imported only when a client is asked for
    from botocore.config import Config

LOG = logging.getLogger("crowdkit.localturk")
# What socketserver hands a server per connection: a TCP server's is always the socket.
_Connection = socket.socket | tuple[bytes, socket.socket]

TARGET_PREFIX = "MTurkRequesterServiceV20170117"
DEFAULT_PORT = 8765
IMMUTABLE = "public, max-age=31536000, immutable"
_CONTENT_KEY = re.compile(r"^([0-9a-f]{32,64})\.([a-z0-9]{1,8})$")
MAX_UPLOAD_BYTES = 64 * 1024 * 1024
_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
          ".webp": "image/webp", ".gif": "image/gif", ".svg": "image/svg+xml",
          ".json": "application/json", ".js": "text/javascript", ".css": "text/css",
          ".html": "text/html; charset=utf-8", ".txt": "text/plain; charset=utf-8"}


def default_db_path() -> Path:
    """Where `crowdkit serve` keeps its state unless told otherwise."""
    return Path.home() / ".crowdkit" / "localturk.db"


class LocalTurkError(CrowdkitError):
    """The service could not start (port taken, unusable paths)."""


class App:
    """Routes one request to the requester API, the worker site, files or test controls."""

    def __init__(self, db: TurkDB, files_dir: Path | None, faults: FaultInjector,
                 events: EventLog | None = None) -> None:
        self.db = db
        self.events = events or EventLog(db)
        self.market = Market(db, self.events)
        self.api = RequesterAPI(self.market)
        self.worker_site = WorkerSite(self.market)
        self.files_dir = files_dir
        self.faults = faults

    def dispatch(self, req: Request) -> Response:
        if req.method == "POST" and "x-amz-target" in req.headers:
            return self.requester(req)
        if req.path.startswith("/files/") and req.method in ("GET", "HEAD"):
            return self.file(req.path[len("/files/"):], head=req.method == "HEAD")
        if req.path.startswith("/files/") and req.method == "PUT":
            return self.put_file(req.path[len("/files/"):], req.body)
        if req.path.startswith("/_localturk/"):
            return self.control(req)
        if req.path in ("", "/"):
            return Response.redirect("/worker")
        response = self.worker_site.handle(req)
        return response or Response.text(f"not found: {req.path}\n", 404)

    def requester(self, req: Request) -> Response:
        prefix, _, operation = req.headers["x-amz-target"].partition(".")
        try:
            if prefix != TARGET_PREFIX or operation not in OPERATIONS:
                raise UnknownOperation(req.headers["x-amz-target"])
            try:
                params = json.loads(req.body or b"{}")
            except ValueError as exc:
                raise RequestError("The request body is not valid JSON.",
                                   "AWS.MechanicalTurk.InvalidRequest") from exc
            if not isinstance(params, dict):
                raise RequestError("The request body must be a JSON object.",
                                   "AWS.MechanicalTurk.InvalidRequest")
            lose_answer = self.faults.before(operation)
            result = self.api.call(operation, params)
            if lose_answer:
                raise self.faults.lost_response()
            return self._amz(200, result)
        except TurkError as exc:
            return self._amz(exc.status, exc.body())

    @staticmethod
    def _amz(status: int, value: dict) -> Response:
        return Response(status, json.dumps(value).encode("utf-8"), {
            "Content-Type": "application/x-amz-json-1.1",
            "x-amzn-RequestId": str(uuid.uuid4()),
        })

    def file(self, relative: str, *, head: bool = False) -> Response:
        """A file of files_dir, or 404: no listings, nothing outside the folder.

        HEAD (how `publish` asks whether an image is already there) answers the size from
        the file's metadata instead of reading the whole file."""
        missing = Response.text("not found\n", 404)
        relative = unquote(relative)
        if self.files_dir is None or not relative or "\x00" in relative:
            return missing
        root = self.files_dir.resolve()
        target = (root / relative).resolve()
        if not target.is_relative_to(root) or not target.is_file():
            return missing
        ctype = _TYPES.get(target.suffix.lower()) or mimetypes.guess_type(target.name)[0]
        headers = {"Content-Type": ctype or "application/octet-stream",
                   "Cache-Control": IMMUTABLE}
        if head:
            return Response(200, b"", {**headers, "Content-Length": str(target.stat().st_size)})
        return Response(200, target.read_bytes(), headers)

    def put_file(self, name: str, body: bytes) -> Response:
        """Store a content-addressed file (how `crowdkit publish --target local` hosts images).

        Only names "<hex sha256 prefix, 32+ digits>.<ext>" whose digits match the body are
        accepted, so an upload can never replace a file with other content or leave the folder.
        """
        match = _CONTENT_KEY.match(unquote(name))
        if self.files_dir is None or match is None:
            return Response.json({"error": "name must be <sha256 hex>.<ext>"}, 400)
        if len(body) > MAX_UPLOAD_BYTES:
            return Response.json({"error": "file too large"}, 413)
        if not hashlib.sha256(body).hexdigest().startswith(match.group(1)):
            return Response.json({"error": "the name's digest does not match the body"}, 400)
        write_atomically(self.files_dir / match.group(0), body)
        return Response.json({"ok": True, "key": match.group(0)}, 201)

    def control(self, req: Request) -> Response:
        """Test controls: health, the marketplace clock, fault settings."""
        path = req.path.rstrip("/")
        if path == "/_localturk/health":
            return Response.json({"ok": True, "now": self.db.now()})
        if path == "/_localturk/clock":
            if req.method == "POST":
                try:
                    seconds = float(req.data().get("advance", 0))
                    self.db.advance_clock(seconds)
                except (TypeError, ValueError) as exc:
                    return Response.json({"error": f"advance: {exc}"}, 400)
            return Response.json({"now": self.db.now()})
        if path == "/_localturk/notifications":
            return Response.json({"Notifications": self.events.messages()})
        if path == "/_localturk/faults" and req.method == "POST":
            data = req.data()
            try:
                config = FaultConfig(**{k: v for k, v in data.items()
                                        if k in FaultConfig.__dataclass_fields__})
            except (TypeError, ValueError) as exc:
                return Response.json({"error": str(exc)}, 400)
            self.faults.configure(config)
            return Response.json({"ok": True})
        return Response.text(f"not found: {req.path}\n", 404)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "localturk"
    timeout = 60  # close idle keep-alive connections
    server: _Server  # the server that made this handler: it carries the app

    def setup(self) -> None:
        super().setup()
        # headers and body go out as two writes; without this, Nagle's algorithm and the
        # client's delayed ACK add 40 ms to every answer
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        if self.server.verbose:
            LOG.info(format, *args)

    def _run(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        req = Request(self.command, parts.path, parse_qsl(parts.query, keep_blank_values=True),
                      {k.lower(): v for k, v in self.headers.items()}, body)
        try:
            resp = self.server.app.dispatch(req)
        except Exception:  # a bug must not kill the server; log it and answer 500
            LOG.exception("localturk internal error on %s %s", self.command, parts.path)
            resp = Response.text("localturk internal error\n", 500)
        self.send_response(resp.status)
        # a HEAD answer may state the length of the body it leaves out
        for name, value in {"Content-Length": str(len(resp.body)), **resp.headers}.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(resp.body)

    do_GET = do_POST = do_HEAD = do_PUT = _run


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: App, verbose: bool) -> None:
        self.app = app
        self.verbose = verbose
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: _Connection, client_address: object) -> None:
        if isinstance(request, socket.socket):
            with self._open_lock:
                self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: _Connection) -> None:
        if isinstance(request, socket.socket):
            with self._open_lock:
                self._open.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Hang up on idle keep-alive clients so their threads end with the server."""
        with self._open_lock:
            for sock in list(self._open):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


class LocalTurk:
    """The local MTurk-compatible service, started in this process.

        with LocalTurk("turk.db", port=0) as turk:
            mturk = turk.boto3_client()
            mturk.create_hit(...)

    `endpoint_url` is what boto3's endpoint_url wants; `worker_url` is the worker site;
    files put in `files_dir` are served under `base_url + "/files/"`. With
    `notification_url`, every HIT event notification message is also POSTed there.
    """

    def __init__(
        self,
        db_path: Path | str,
        port: int = 0,
        files_dir: Path | str | None = None,
        fault: FaultConfig | None = None,
        *,
        host: str = "127.0.0.1",
        starting_balance: Decimal | str = "10000.00",
        clock: Callable[[], float] | None = None,
        verbose: bool = False,
        notification_url: str | None = None,
    ) -> None:
        from crowdkit.units import parse_money

        self.db_path = Path(db_path)
        self.host = host
        self.port = port
        self.files_dir = Path(files_dir) if files_dir is not None else (
            self.db_path.parent / f"{self.db_path.stem}-files")
        self.faults = FaultInjector(fault)
        try:
            self.starting_balance = parse_money(starting_balance)
        except ValueError as exc:
            raise LocalTurkError(f"starting balance: {exc}") from exc
        self._clock = clock
        self._verbose = verbose
        if notification_url is not None and not re.match(r"^https?://\S+$", notification_url):
            raise LocalTurkError(f"notification URL {notification_url!r} is not an http(s) "
                                 "URL")
        self.notification_url = notification_url
        self._events: EventLog | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.db: TurkDB | None = None

    # --- lifecycle -------------------------------------------------------------------
    def start(self) -> LocalTurk:
        try:
            self.files_dir.mkdir(parents=True, exist_ok=True)
            self.db = TurkDB(self.db_path, starting_balance=self.starting_balance,
                             clock=self._clock)
        except OSError as exc:
            raise LocalTurkError(f"localturk cannot use {exc.filename or self.db_path}: "
                                 f"{exc.strerror or exc}") from exc
        self._events = EventLog(self.db, Delivery(self.db, self.notification_url))
        app = App(self.db, self.files_dir, self.faults, self._events)
        try:
            self._server = _Server((self.host, self.port), app, self._verbose)
        except OSError as exc:
            self.db.close()
            raise LocalTurkError(
                f"localturk cannot listen on {self.host}:{self.port} ({exc.strerror or exc}); "
                "is another service using the port? Pick another with --port"
            ) from exc
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.1},
                                        name=f"localturk:{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.close_connections()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join(timeout=10)
            self._server = None
        if self._events is not None:
            self._events.delivery.close()
            self._events = None
        if self.db is not None:
            self.db.close()
            self.db = None

    def __enter__(self) -> LocalTurk:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def wait(self) -> None:
        """Block until Ctrl-C (for `crowdkit serve`)."""
        try:
            while self._thread is not None and self._thread.is_alive():
                self._thread.join(0.5)
        except KeyboardInterrupt:
            pass

    # --- addresses --------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        return f"http://{host}:{self.port}"

    @property
    def endpoint_url(self) -> str:
        """The requester API: pass it as boto3's endpoint_url."""
        return self.base_url

    @property
    def worker_url(self) -> str:
        return f"{self.base_url}/worker"

    def file_url(self, name: str) -> str:
        return f"{self.base_url}/files/{name}"

    # --- conveniences ---------------------------------------------------------------
    def boto3_client(self, *, max_attempts: int | None = None, config: Config | None = None
                     ) -> Any:  # boto3's MTurk client: its methods and answers are untyped
        """A boto3 MTurk client for this service (dummy credentials, us-east-1).

        max_attempts is the total number of attempts per call (1 = no retries), for fault
        tests; by default botocore retries throttling and 5xx answers as against MTurk."""
        import boto3
        from botocore.config import Config

        if max_attempts is not None:
            extra = Config(retries={"total_max_attempts": max_attempts, "mode": "standard"})
            config = extra if config is None else config.merge(extra)
        return boto3.session.Session(
            aws_access_key_id="localturk", aws_secret_access_key="localturk",
            region_name="us-east-1",
        ).client("mturk", endpoint_url=self.endpoint_url, config=config)

    def now(self) -> float:
        return self._running_db().now()

    def advance_clock(self, seconds: float) -> float:
        """Move the marketplace's time forward: HITs expire, auto-approval happens."""
        return self._running_db().advance_clock(seconds)

    def set_faults(self, config: FaultConfig) -> None:
        self.faults.configure(config)

    def notifications(self) -> list[dict[str, Any]]:
        """Every HIT event notification message recorded so far, oldest first, after the
        ones on their way to `notification_url` have been tried."""
        if self._events is None:
            raise LocalTurkError("localturk is not running; use it as `with LocalTurk(...)`")
        self._events.delivery.drain()
        return self._events.messages()

    def _running_db(self) -> TurkDB:
        if self.db is None:
            raise LocalTurkError("localturk is not running; use it as `with LocalTurk(...)`")
        return self.db
