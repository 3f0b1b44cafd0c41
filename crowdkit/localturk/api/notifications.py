"""HIT event notifications: UpdateNotificationSettings and SendTestEventNotification.

The messages themselves are made, recorded and delivered by crowdkit.localturk.events.
"""

from __future__ import annotations

import json
import re

from crowdkit.localturk import params as check
from crowdkit.localturk.api.base import Answer, Operation, Requester
from crowdkit.localturk.errors import RequestError, invalid
from crowdkit.localturk.events import EVENT_TYPES, TEST_IDS, TRANSPORTS, VERSIONS, event
from crowdkit.localturk.market import HIT_SELECT
from crowdkit.localturk.params import Params

# What a Destination looks like for each transport (MTurk API reference, Notification).
DESTINATIONS = {
    "Email": re.compile(r"^[^@\s]+@[^@\s]+$"),
    "SQS": re.compile(r"^https://\S+$"),
    "SNS": re.compile(r"^arn:aws:sns:[a-z0-9-]+:\d{12}:\S+$"),
}


def specification(params: Params, *, test: bool) -> dict:
    """A NotificationSpecification, checked; Ping only in SendTestEventNotification."""
    spec = check.required(params, "Notification")
    if not isinstance(spec, dict):
        raise invalid("Notification must be a NotificationSpecification structure.")
    transport = check.choice(spec, "Transport", TRANSPORTS)
    destination = check.text(spec, "Destination", 1000)
    if not DESTINATIONS[transport].match(destination):
        raise invalid(f"Destination {destination!r} is not a valid {transport} destination.")
    version = check.choice(spec, "Version", VERSIONS)
    event_types = spec.get("EventTypes")
    allowed = EVENT_TYPES if test else tuple(e for e in EVENT_TYPES if e != "Ping")
    if not isinstance(event_types, list) or not event_types or any(
            e not in allowed for e in event_types):
        raise invalid(f"EventTypes must be a non-empty list of {', '.join(allowed)}.")
    return {"Destination": destination, "Transport": transport, "Version": version,
            "EventTypes": list(dict.fromkeys(event_types))}


def update_notification_settings(api: Requester, params: Params) -> Answer:
    """MTurk API reference, UpdateNotificationSettings: a new specification replaces the
    old one; Active alone turns an existing one on or off; one of the two must be given."""
    hit_type_id = str(api.hit_type(check.text(params, "HITTypeId", 64))["hit_type_id"])
    if params.get("Notification") is None and params.get("Active") is None:
        raise invalid("Give a Notification, Active, or both.")
    active = check.boolean(params, "Active", True)
    if params.get("Notification") is not None:
        spec = specification(params, test=False)
        api.db.execute(
            "INSERT OR REPLACE INTO notification_settings (hit_type_id, destination, "
            "transport, version, event_types, active) VALUES (?, ?, ?, ?, ?, ?)",
            (hit_type_id, spec["Destination"], spec["Transport"], spec["Version"],
             json.dumps(spec["EventTypes"]), int(active)))
    else:
        if api.db.one("SELECT 1 FROM notification_settings WHERE hit_type_id = ?",
                      (hit_type_id,)) is None:
            raise RequestError(f"HIT type {hit_type_id} has no notification specification "
                               "to turn on or off; give a Notification.",
                               "AWS.MechanicalTurk.NotificationSpecificationDoesNotExist")
        api.db.execute("UPDATE notification_settings SET active = ? WHERE hit_type_id = ?",
                       (int(active), hit_type_id))
    if active:
        _baseline(api, hit_type_id)
    return {}


def _baseline(api: Requester, hit_type_id: str) -> None:
    """Mark what HITs of the type already are (expired, reviewable), so turning
    notifications on reports what happens from now on, not what happened before."""
    now = api.now()
    rows = api.db.all(HIT_SELECT + " WHERE h.disposed = 0 AND h.hit_type_id = ?",
                      (hit_type_id,))
    for state in api.market.states(rows, now):
        api.db.execute(
            "UPDATE hits SET expiry_notified = ?, reviewable_notified = ? WHERE hit_id = ?",
            (state.row["expiration"] if state.expired else None,
             int(state.reviewable), state.row["hit_id"]))


def send_test_event_notification(api: Requester, params: Params) -> Answer:
    """MTurk API reference, SendTestEventNotification: a message as if the event had
    happened, sent at once to the given specification's destination."""
    spec = specification(params, test=True)
    event_type = check.choice(params, "TestEventType", EVENT_TYPES)
    ids = dict(TEST_IDS)
    assignment_id = ids["AssignmentId"] if event_type.startswith("Assignment") else None
    api.market.events.record(
        spec["Transport"], spec["Destination"], spec["Version"],
        [event(event_type, api.now(), ids["HITTypeId"], ids["HITId"], assignment_id)],
        hit_type_id=None, test=True)
    return {}


OPERATIONS: dict[str, Operation] = {
    "UpdateNotificationSettings": update_notification_settings,
    "SendTestEventNotification": send_test_event_notification,
}
