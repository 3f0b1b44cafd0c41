"""HIT event notifications: UpdateNotificationSettings and SendTestEventNotification, the
messages recorded, and their delivery to a local HTTP endpoint."""

from __future__ import annotations

import json
import threading
import urllib.request
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from botocore.exceptions import ClientError

from crowdkit.localturk import LocalTurk
from tests.localturk_support import Worker, hit_args

SQS = "https://sqs.us-east-1.amazonaws.com/123456789012/mturk-events"
ALL_EVENTS = ["AssignmentAccepted", "AssignmentAbandoned", "AssignmentReturned",
              "AssignmentSubmitted", "AssignmentRejected", "AssignmentApproved", "HITCreated",
              "HITExpired", "HITReviewable", "HITExtended", "HITDisposed"]


class Receiver:
    """A local HTTP endpoint that keeps what is POSTed to it."""

    def __init__(self) -> None:
        self.received: list[tuple[dict, dict]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.received.append((dict(self.headers), json.loads(body)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/events"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def event_types(messages: list[dict]) -> list[str]:
    return [e["EventType"] for m in messages for e in m["Message"]["Events"]]


@pytest.fixture
def receiver():
    with Receiver() as endpoint:
        yield endpoint


@pytest.fixture
def turk(tmp_path, receiver):
    with LocalTurk(tmp_path / "turk.db", port=0, notification_url=receiver.url) as service:
        yield service


def hit_type(mturk) -> str:
    args = hit_args()
    return mturk.create_hit_type(**{k: args[k] for k in (
        "Title", "Description", "Reward", "AssignmentDurationInSeconds",
        "AutoApprovalDelayInSeconds")})["HITTypeId"]


def test_events_of_a_hit_type_reach_the_endpoint_in_mturks_message_format(turk, receiver):
    # MTurk API reference, UpdateNotificationSettings and the Notification data structure;
    # the message is the JSON document MTurk's SQS and SNS notifications carry
    mturk = turk.boto3_client(max_attempts=1)
    type_id = hit_type(mturk)
    mturk.update_notification_settings(HITTypeId=type_id, Active=True, Notification={
        "Destination": SQS, "Transport": "SQS", "Version": "2014-08-15",
        "EventTypes": ALL_EVENTS})
    hit_id = mturk.create_hit_with_hit_type(HITTypeId=type_id, MaxAssignments=2,
                                            LifetimeInSeconds=600,
                                            Question=hit_args()["Question"])["HIT"]["HITId"]
    returner, slow, doer = (Worker(turk.base_url, w) for w in ("A1RET", "A1SLOW", "A1DOER"))
    returner.give_back(returner.accept(hit_id)["AssignmentId"])
    slow.accept(hit_id)
    done = doer.do_hit(hit_id, answer="x")
    turk.advance_clock(601)  # the HIT expires; the slow worker's time runs out
    mturk.approve_assignment(AssignmentId=done)
    mturk.delete_hit(HITId=hit_id)
    messages = turk.notifications()
    assert event_types(messages) == [
        "HITCreated", "AssignmentAccepted", "AssignmentReturned", "AssignmentAccepted",
        "AssignmentAccepted", "AssignmentSubmitted", "AssignmentAbandoned", "HITExpired",
        "HITReviewable", "AssignmentApproved", "HITDisposed"]
    first = messages[0]["Message"]
    assert set(first) == {"EventDocId", "EventDocVersion", "SourceAccount", "CustomerId",
                          "Events"}
    assert first["EventDocVersion"] == "2014-08-15"
    [created] = first["Events"]
    assert (created["HITId"], created["HITTypeId"]) == (hit_id, type_id)
    datetime.strptime(created["EventTimestamp"], "%Y-%m-%dT%H:%M:%SZ")
    submitted = messages[5]["Message"]["Events"][0]
    assert submitted["AssignmentId"] == done
    assert [body for _, body in receiver.received] == [m["Message"] for m in messages]
    headers = receiver.received[0][0]
    assert (headers["X-Localturk-Transport"], headers["X-Localturk-Destination"]) == (
        "SQS", SQS)
    assert all(m["Delivery"] == "delivered: HTTP 200" for m in messages)


def test_only_the_chosen_events_of_active_settings_are_sent(turk, receiver):
    mturk = turk.boto3_client(max_attempts=1)
    type_id = hit_type(mturk)
    hit_id = mturk.create_hit_with_hit_type(HITTypeId=type_id, MaxAssignments=1,
                                            LifetimeInSeconds=60,
                                            Question=hit_args()["Question"])["HIT"]["HITId"]
    turk.advance_clock(61)  # expired before notifications were on: not reported later
    with pytest.raises(mturk.exceptions.RequestError):  # Active alone needs a specification
        mturk.update_notification_settings(HITTypeId=type_id, Active=True)
    mturk.update_notification_settings(HITTypeId=type_id, Notification={
        "Destination": "arn:aws:sns:us-east-1:123456789012:mturk", "Transport": "SNS",
        "Version": "2014-08-15", "EventTypes": ["HITExtended"]})
    later = datetime.fromtimestamp(turk.now() + 3600)
    mturk.update_expiration_for_hit(HITId=hit_id, ExpireAt=later)
    mturk.update_notification_settings(HITTypeId=type_id, Active=False)
    mturk.create_additional_assignments_for_hit(HITId=hit_id, NumberOfAdditionalAssignments=1)
    assert event_types(turk.notifications()) == ["HITExtended"]
    with pytest.raises(ClientError):  # Ping is for SendTestEventNotification only
        mturk.update_notification_settings(HITTypeId=type_id, Notification={
            "Destination": SQS, "Transport": "SQS", "Version": "2014-08-15",
            "EventTypes": ["Ping"]})
    with pytest.raises(ClientError):
        mturk.update_notification_settings(HITTypeId=type_id, Notification={
            "Destination": "not a queue", "Transport": "SQS", "Version": "2014-08-15",
            "EventTypes": ["HITExpired"]})


def test_a_test_event_is_sent_at_once(turk, receiver):
    # MTurk API reference, SendTestEventNotification: "the service attempts to send the
    # test notification immediately"
    mturk = turk.boto3_client(max_attempts=1)
    mturk.send_test_event_notification(TestEventType="AssignmentSubmitted", Notification={
        "Destination": "me@example.org", "Transport": "Email", "Version": "2014-08-15",
        "EventTypes": ["AssignmentSubmitted"]})
    [message] = turk.notifications()
    assert message["Test"] is True and message["Transport"] == "Email"
    [test_event] = message["Message"]["Events"]
    assert test_event["EventType"] == "AssignmentSubmitted" and "AssignmentId" in test_event
    assert [body for _, body in receiver.received] == [message["Message"]]
    listed = json.load(urllib.request.urlopen(turk.base_url + "/_localturk/notifications"))
    assert listed["Notifications"][0]["Message"] == message["Message"]


def test_without_an_endpoint_messages_are_recorded_only(tmp_path):
    with LocalTurk(tmp_path / "turk.db", port=0) as turk:
        mturk = turk.boto3_client(max_attempts=1)
        mturk.send_test_event_notification(TestEventType="Ping", Notification={
            "Destination": SQS, "Transport": "SQS", "Version": "2014-08-15",
            "EventTypes": ["Ping"]})
        [message] = turk.notifications()
        assert message["Delivery"] == "recorded"


def test_the_notification_url_must_be_http(tmp_path):
    from crowdkit.localturk import LocalTurkError

    with pytest.raises(LocalTurkError, match="not an http"):
        LocalTurk(tmp_path / "turk.db", notification_url="sqs://queue")
