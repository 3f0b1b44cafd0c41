"""Errors of the requester API, shaped like MTurk's so boto3 raises the same exceptions.

boto3 reads the JSON body's ``__type`` as the error code and maps ``RequestError`` and
``ServiceFault`` to ``client.exceptions.RequestError`` / ``ServiceFault`` (both carry
``Message`` and ``TurkErrorCode``). Invalid parameters (a Question that is not valid XML or
HTML5, a Reward such as "abc", a value out of range, a missing member) are answered, as
MTurk answers them, with ``ParameterValidationError``: not in MTurk's model, so boto3
raises a plain ``ClientError`` with that code. ``ThrottlingException`` is not modelled
either; boto3's retry handler backs off on it, as it does against the real service.
"""

from __future__ import annotations

import time


def _stamp(message: str) -> str:
    """MTurk ends every error message with the server time in milliseconds, in brackets."""
    return f"{message} ({int(time.time() * 1000)})"


class TurkError(Exception):
    """An error answer of the requester API."""

    status = 400
    type_name = "RequestError"

    def body(self) -> dict:
        raise NotImplementedError


class RequestError(TurkError):
    """The caller's fault: bad parameters, a missing entity, an action the state forbids."""

    def __init__(self, message: str, turk_code: str = "AWS.MechanicalTurk.RequestError") -> None:
        super().__init__(message)
        self.message = message
        self.turk_code = turk_code

    def body(self) -> dict:
        return {
            "__type": self.type_name,
            "Message": _stamp(self.message),
            "TurkErrorCode": self.turk_code,
        }


class ParameterValidationError(RequestError):
    """A parameter MTurk's validation refuses. The body carries a TurkErrorCode too (naming
    the kind of problem), which boto3 leaves out of the error it raises."""

    type_name = "ParameterValidationError"


class ServiceFault(RequestError):
    """The service's fault (HTTP 500): the caller may retry."""

    status = 500
    type_name = "ServiceFault"

    def __init__(
        self,
        message: str = "We encountered an internal error. Please try again.",
        turk_code: str = "AWS.MechanicalTurk.InternalError",
    ) -> None:
        super().__init__(message, turk_code)


class ThrottlingException(TurkError):
    """Too many requests: AWS's generic throttling error, which boto3 retries with backoff."""

    type_name = "ThrottlingException"

    def __init__(self, message: str = "Rate exceeded") -> None:
        super().__init__(message)
        self.message = message

    def body(self) -> dict:
        return {"__type": self.type_name, "message": self.message}


class UnknownOperation(TurkError):
    """The X-Amz-Target names no operation this service implements."""

    type_name = "UnknownOperationException"

    def __init__(self, target: str) -> None:
        super().__init__(target)
        self.message = (
            f"localturk does not implement {target!r}; see docs/localturk.md for the "
            "supported operations"
        )

    def body(self) -> dict:
        return {"__type": self.type_name, "message": self.message}


def missing(name: str) -> ParameterValidationError:
    return ParameterValidationError(f"The request is missing the required parameter {name}.",
                                    "AWS.MissingParameters")


def out_of_range(name: str, value: object, rule: str) -> ParameterValidationError:
    return ParameterValidationError(f"Value ({value}) for parameter {name} is invalid. {rule}",
                                    "AWS.ParameterOutOfRange")


def invalid(message: str) -> ParameterValidationError:
    """Parameters that are each valid but not together (exactly one of two, and so on)."""
    return ParameterValidationError(message, "AWS.MechanicalTurk.InvalidParameterValue")


def not_found(kind: str, entity_id: str, code: str | None = None) -> RequestError:
    """MTurk's answer for an id that names nothing (or nothing of this requester's)."""
    return RequestError(f"{kind} {entity_id} does not exist.",
                        code or f"AWS.MechanicalTurk.{kind}DoesNotExist")


# The kinds of entity whose status an action can be refused for, as MTurk spells their
# TurkErrorCodes: AWS.MechanicalTurk.InvalidHITState, InvalidAssignmentState, ...
STATE_CODES = {
    "HIT": "AWS.MechanicalTurk.InvalidHITState",
    "assignment": "AWS.MechanicalTurk.InvalidAssignmentState",
    "QualificationRequest": "AWS.MechanicalTurk.InvalidQualificationRequestState",
}


def wrong_state(kind: str, state: str, allowed: str) -> RequestError:
    """The wording MTurk uses when an action does not fit the entity's status (two spaces
    after the first sentence, as in MTurk's own messages)."""
    return RequestError(
        f"This {kind} is currently in the state '{state}'.  "
        f"This operation can be called with a status of: {allowed}",
        STATE_CODES[kind],
    )
