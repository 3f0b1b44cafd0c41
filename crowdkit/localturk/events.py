"""HIT event notifications: each HIT type's settings, the messages MTurk would send, delivery.

UpdateNotificationSettings keeps one notification specification per HIT type. When an event
it names happens to a HIT of that type (a worker accepts, returns, abandons or submits an
assignment; it is approved or rejected; the HIT is created, extended, expires, becomes
reviewable or is disposed of), localturk writes the message MTurk would send: the JSON
document its SQS and SNS notifications carry (EventDocId, EventDocVersion, CustomerId,
Events). SQS, SNS and e-mail cannot be reached from here, so every message is recorded (the
`event_messages` table, `GET /_localturk/notifications`) and, when the service has a
notification endpoint (`LocalTurk(notification_url=...)`, `crowdkit serve
--notification-url`), POSTed there by a background thread once the change that caused it has
been committed.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime

from crowdkit.localturk.db import TurkDB

LOG = logging.getLogger("crowdkit.localturk")

EVENT_TYPES = (
    "AssignmentAccepted", "AssignmentAbandoned", "AssignmentReturned", "AssignmentSubmitted",
    "AssignmentRejected", "AssignmentApproved", "HITCreated", "HITExpired", "HITReviewable",
    "HITExtended", "HITDisposed", "Ping",
)
TRANSPORTS = ("Email", "SQS", "SNS")
# The API reference names 2014-08-15; botocore's documentation 2006-05-05. Both are taken.
VERSIONS = ("2014-08-15", "2006-05-05")
CUSTOMER_ID = "A1LOCALTURKREQUESTER"  # the one requester of this marketplace
TEST_IDS = {"HITTypeId": "TESTHITTYPEID", "HITId": "TESTHITID",
            "AssignmentId": "TESTASSIGNMENTID"}


def timestamp(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def event(event_type: str, when: float, hit_type_id: str, hit_id: str,
          assignment_id: str | None = None) -> dict[str, str]:
    """One entry of a message's Events list."""
    out = {"EventType": event_type, "EventTimestamp": timestamp(when),
           "HITTypeId": hit_type_id, "HITId": hit_id}
    if assignment_id is not None:
        out["AssignmentId"] = assignment_id
    return out


def message(version: str, events: list[dict[str, str]]) -> dict[str, object]:
    return {"EventDocId": uuid.uuid4().hex, "EventDocVersion": version,
            "SourceAccount": "000000000000", "CustomerId": CUSTOMER_ID, "Events": events}


class Delivery:
    """POSTs recorded messages to one HTTP endpoint from a background thread, in order."""

    def __init__(self, db: TurkDB, endpoint: str | None) -> None:
        self.db = db
        self.endpoint = endpoint
        self._queue: queue.Queue[tuple[int, bytes, str, str] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._start = threading.Lock()  # one thread, so messages leave in order

    def send(self, message_id: int, body: bytes, transport: str, destination: str) -> None:
        if self.endpoint is None:
            return
        with self._start:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True,
                                                name="localturk-notifications")
                self._thread.start()
        self._queue.put((message_id, body, transport, destination))

    def drain(self) -> None:
        """Wait until every message handed over so far has been tried."""
        if self._thread is not None:
            self._queue.join()

    def close(self) -> None:
        with self._start:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                self._post(*item)
            finally:
                self._queue.task_done()

    def _post(self, message_id: int, body: bytes, transport: str, destination: str) -> None:
        assert self.endpoint is not None
        request = urllib.request.Request(self.endpoint, data=body, method="POST", headers={
            "Content-Type": "application/json", "X-Localturk-Transport": transport,
            "X-Localturk-Destination": destination})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                outcome = f"delivered: HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            outcome = f"failed: HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            outcome = f"failed: {getattr(exc, 'reason', exc)}"
        if outcome.startswith("failed"):
            LOG.warning("localturk notification %s to %s %s", message_id, self.endpoint,
                        outcome)
        try:
            self.db.execute("UPDATE event_messages SET delivery = ? WHERE id = ?",
                            (outcome, message_id))
        except Exception:  # noqa: BLE001 - the service stopped meanwhile; nothing to record
            LOG.debug("notification %s: outcome not recorded", message_id)


class EventLog:
    """Turns marketplace events into recorded (and delivered) notification messages."""

    def __init__(self, db: TurkDB, delivery: Delivery | None = None) -> None:
        self.db = db
        self.delivery = delivery or Delivery(db, None)

    def watching(self) -> bool:
        """Whether any HIT type has notifications on (most of the time none has)."""
        return self.db.one("SELECT 1 FROM notification_settings WHERE active = 1 LIMIT 1"
                           ) is not None

    def watched_types_sql(self) -> str:
        """A subquery of the HIT types whose notifications are on (for the clock's sweep)."""
        return "(SELECT hit_type_id FROM notification_settings WHERE active = 1)"

    def emit(self, event_type: str, when: float, hit_type_id: str, hit_id: str,
             assignment_id: str | None = None) -> None:
        """Record the event's message if the HIT type's active settings ask for it."""
        row = self.db.one("SELECT * FROM notification_settings WHERE hit_type_id = ? AND "
                          "active = 1", (hit_type_id,))
        if row is None or event_type not in json.loads(row["event_types"]):
            return
        self.record(row["transport"], row["destination"], row["version"],
                    [event(event_type, when, hit_type_id, hit_id, assignment_id)],
                    hit_type_id=hit_type_id, test=False)

    def record(self, transport: str, destination: str, version: str,
               events: list[dict[str, str]], *, hit_type_id: str | None, test: bool) -> None:
        body = json.dumps(message(version, events)).encode("utf-8")
        cursor = self.db.execute(
            "INSERT INTO event_messages (time, hit_type_id, transport, destination, test, "
            "body, delivery) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (self.db.now(), hit_type_id, transport, destination, int(test),
             body.decode("utf-8"), "recorded" if self.delivery.endpoint is None else "queued"))
        message_id = int(cursor.lastrowid or 0)
        self.db.after_commit(lambda: self.delivery.send(message_id, body, transport,
                                                        destination))

    def messages(self) -> list[dict[str, object]]:
        """Every recorded message, oldest first, with its delivery outcome."""
        return [{"Id": r["id"], "Time": r["time"], "HITTypeId": r["hit_type_id"],
                 "Transport": r["transport"], "Destination": r["destination"],
                 "Test": bool(r["test"]), "Delivery": r["delivery"],
                 "Message": json.loads(r["body"])}
                for r in self.db.all("SELECT * FROM event_messages ORDER BY id")]
