"""`crowdkit status DIR --serve`: a local page that follows a running study by itself.

The page (on 127.0.0.1) asks `/data.json` every few seconds and draws: HITs and
assignments by state, submissions over time, exclusions by rule, running accuracy per
condition, money spent and committed, the median time per assignment and the hourly pay
it makes, and the time left. Every number comes from the library: HITs, assignments,
money and time left from `crowdkit.status.study_status` (the platform, as `crowdkit
status` shows them), exclusions and accuracy from the answers already collected into the
ledger (`crowdkit.collect.dataset.build_dataset`, what `crowdkit collect` judges), and
times from the ledger's assignments. Nothing here prints; the CLI says where the page is.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any

from crowdkit.collect.dataset import build_dataset
from crowdkit.ledger import Ledger
from crowdkit.platforms.base import Platform
from crowdkit.progress import format_clock
from crowdkit.status import format_duration_left, study_status
from crowdkit.study import Study
from crowdkit.units import money_str, stored_time

PAGE = "dashboard.html"
DEFAULT_REFRESH_S = 10


def dashboard_data(study: Study, platform: Platform) -> dict[str, Any]:
    """Everything the page shows, as one JSON-ready dict (see the module docstring)."""
    status = study_status(study, platform)
    totals = status.to_json()["total"]
    data: dict[str, Any] = {
        "study": study.name, "target": platform.target, "at": _now(),
        "hits": {"total": totals["hits"], "open": totals["open_hits"],
                 "by_state": dict(Counter(h.status for h in status.hits))},
        "assignments": {k: totals[k] for k in ("max_assignments", "available", "pending",
                                                "submitted", "approved", "rejected")},
        "money": {"spent": totals["spent"], "bonuses": totals["bonuses_paid"],
                  "committed": totals["committed"]},
        "time_left": format_duration_left(status.seconds_left),
        "seconds_left": status.seconds_left,
    }
    if study.db_path.exists():
        with Ledger.open(study.db_path) as ledger:
            hit_ids = {h.hit_id for h in status.hits}
            rows = [a for a in ledger.assignments() if a["hit_id"] in hit_ids]
            dataset = build_dataset(study, ledger, assignments=rows, target=platform.target)
        data["submissions"] = submissions_over_time(rows)
        data["work"] = work_time(rows, study.config.hit.reward)
        data.update(_judged(dataset))
    return data


def submissions_over_time(rows: list[Any]) -> list[dict[str, Any]]:
    """Cumulative submissions, one point per submission time (ISO 8601, in order)."""
    times = sorted(t for t in (stored_time(r["submit_time"]) for r in rows) if t is not None)
    return [{"at": t.isoformat(), "n": i + 1} for i, t in enumerate(times)]


def work_time(rows: list[Any], reward: Decimal) -> dict[str, Any]:
    """Median minutes from accept to submit, and the hourly pay the reward makes at it."""
    minutes = []
    for row in rows:
        accepted, submitted = stored_time(row["accept_time"]), stored_time(row["submit_time"])
        if accepted is not None and submitted is not None and submitted >= accepted:
            minutes.append((submitted - accepted).total_seconds() / 60)
    if not minutes:
        return {"median_minutes": None, "median": None, "hourly_pay": None, "n": 0}
    median = statistics.median(minutes)
    hourly = (reward * Decimal(60) / Decimal(str(max(median, 1 / 60))))
    return {"median_minutes": round(median, 2), "median": format_clock(median * 60),
            "hourly_pay": money_str(hourly), "n": len(minutes)}


def _judged(dataset: Any) -> dict[str, Any]:  # a crowdkit.collect.dataset.Dataset
    """Exclusions by rule and running accuracy per condition of the included answers."""
    reasons: Counter[str] = Counter()
    for record in dataset.records:
        reasons.update(record.reasons)
    excluded = sum(1 for r in dataset.records if r.excluded)
    per: dict[str, dict[str, list[bool]]] = {}
    for row in dataset.trial_rows():
        if row["phase"] == "main" and not row["excluded"] and row.get("correct") is not None:
            per.setdefault(row["condition"], {}).setdefault(row["participant_id"], []).append(
                bool(row["correct"]))
    accuracy = []
    for condition, people in sorted(per.items()):
        scores = [sum(v) / len(v) for v in people.values()]
        accuracy.append({"condition": condition, "participants": len(scores),
                         "trials": sum(len(v) for v in people.values()),
                         "accuracy": round(sum(scores) / len(scores), 3)})
    return {"exclusions": {"assignments": len(dataset.records), "excluded": excluded,
                           "by_rule": dict(sorted(reasons.items()))},
            "accuracy": accuracy}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def page_html(refresh_s: float = DEFAULT_REFRESH_S) -> str:
    """The page: static HTML and a script that fetches /data.json every `refresh_s`."""
    text = resources.files("crowdkit").joinpath(PAGE).read_text("utf-8")
    return text.replace("{{refresh_ms}}", str(int(refresh_s * 1000)))


@dataclass
class Dashboard:
    """A running dashboard: where it is, and how to wait for it."""

    url: str
    server: ThreadingHTTPServer

    def wait(self) -> None:
        """Until Ctrl-C (the CLI's way to stop it)."""
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


@contextmanager
def serve_dashboard(study: Study, platform: Platform, *, port: int = 8767,
                    refresh_s: float = DEFAULT_REFRESH_S) -> Iterator[Dashboard]:
    """Serve the page on 127.0.0.1:`port` (0: any free port) while the context lasts.

    Each /data.json is computed afresh, but at most once per `refresh_s` however many
    tabs ask, so the platform is asked no more often than the page refreshes.
    """
    html = page_html(refresh_s).encode("utf-8")
    lock = threading.Lock()
    cache: dict[str, Any] = {}

    def data() -> bytes:
        with lock:
            if "body" not in cache or time.monotonic() - cache["at"] >= refresh_s:
                try:
                    cache["body"] = json.dumps(dashboard_data(study, platform)).encode()
                except Exception as exc:  # noqa: BLE001 - the page shows it and retries
                    cache["body"] = json.dumps({"error": str(exc)}).encode()
                cache["at"] = time.monotonic()
            return bytes(cache["body"])

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if self.path.split("?")[0] == "/data.json":
                self._send(200, "application/json", data())
            elif self.path.split("?")[0] in ("/", "/index.html"):
                self._send(200, "text/html; charset=utf-8", html)
            else:
                self._send(404, "text/plain", b"not found")

        def _send(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Dashboard(f"http://127.0.0.1:{server.server_address[1]}/", server)
    finally:
        server.shutdown()
        server.server_close()
