"""boto3's MTurk client for a target, paging, and MTurk's errors as crowdkit's types.

The same code path serves all three targets; only the endpoint and the credentials differ:
- local: the embedded twin (`crowdkit serve`) at `[mturk] local_endpoint`, with dummy
  credentials, so nothing about AWS needs to be set up to try a study;
- sandbox and live: MTurk's requester endpoints in us-east-1 (the only region MTurk has),
  with credentials from boto3's standard chain (environment, shared files, `[mturk] profile`).

botocore retries throttling and service faults with exponential backoff ("standard" mode),
so callers never see a transient error unless it persists through every attempt. What
still fails becomes one of crowdkit.platforms.base's errors (`classify`): this module is
the one place that reads MTurk's error codes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from crowdkit.errors import CrowdkitError, did_you_mean
from crowdkit.platforms.base import (
    AlreadyDone,
    AuthFailed,
    InvalidState,
    NotFound,
    PlatformError,
    Unreachable,
)

if TYPE_CHECKING:  # boto3 is imported when a client is made, not with this module
    from boto3.session import Session

TARGETS = ("local", "sandbox", "live")
REGION = "us-east-1"
ENDPOINTS = {
    "sandbox": "https://mturk-requester-sandbox.us-east-1.amazonaws.com",
    "live": "https://mturk-requester.us-east-1.amazonaws.com",
}
PREVIEW_URLS = {
    "sandbox": "https://workersandbox.mturk.com/mturk/preview?groupId={group}",
    "live": "https://worker.mturk.com/mturk/preview?groupId={group}",
}
DEFAULT_LOCAL_ENDPOINT = "http://127.0.0.1:8765"
DEFAULT_MAX_ATTEMPTS = 10
# A HIT id as MTurk writes it: 30 capitals and digits.
HIT_ID = re.compile(r"\b([A-Z0-9]{30})\b")
_AUTH_CODES = frozenset({"UnrecognizedClientException", "InvalidClientTokenId",
                         "AccessDeniedException", "ExpiredTokenException",
                         "InvalidSignatureException", "SignatureDoesNotMatch"})


def check_target(target: str) -> str:
    if target not in TARGETS:
        raise CrowdkitError(f"unknown target {target!r}{did_you_mean(target, TARGETS)}: use "
                            "local, sandbox or live")
    return target


def endpoint_url(target: str, local_endpoint: str = DEFAULT_LOCAL_ENDPOINT) -> str:
    """The requester API endpoint of a target."""
    check_target(target)
    return local_endpoint.rstrip("/") if target == "local" else ENDPOINTS[target]


def preview_url(target: str, group_id: str, local_endpoint: str | None = None) -> str:
    """Where a worker (or the researcher) sees the study's HITs: MTurk's preview of the HIT
    group, or the local worker site."""
    if target == "local":
        base = (local_endpoint or DEFAULT_LOCAL_ENDPOINT).rstrip("/")
        return f"{base}/worker"
    return PREVIEW_URLS[check_target(target)].format(group=group_id)


def mturk_client(
    target: str,
    *,
    local_endpoint: str = DEFAULT_LOCAL_ENDPOINT,
    profile: str | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    retry_mode: Literal["legacy", "standard", "adaptive"] = "standard",
    session: Session | None = None,
) -> Any:  # boto3's MTurk client: its methods and answers are untyped
    """A boto3 MTurk client for `target`, with retries on throttling and faults.

    The local service accepts any credentials; dummy ones are passed so a researcher's
    real AWS keys are never sent to it, and none need to exist.
    """
    import boto3
    from botocore.config import Config

    check_target(target)
    config = Config(
        region_name=REGION,
        retries={"mode": retry_mode, "total_max_attempts": max_attempts},
        connect_timeout=10,
        read_timeout=60,
        max_pool_connections=32,
    )
    if target == "local":
        session = session or boto3.session.Session(
            aws_access_key_id="local", aws_secret_access_key="local", region_name=REGION
        )
    else:
        session = session or boto3.session.Session(profile_name=profile, region_name=REGION)
        if session.get_credentials() is None:
            raise CrowdkitError(
                f"no AWS credentials found for the {target} target: set AWS_PROFILE or "
                "[mturk] profile, or run `aws configure` (see docs/publishing.md)"
            )
    return session.client(
        "mturk", region_name=REGION, endpoint_url=endpoint_url(target, local_endpoint),
        config=config,
    )


def local_service_answers(local_endpoint: str, timeout: float = 2.0) -> bool:
    """True when something accepts TCP connections at the local endpoint."""
    import socket

    parts = urlsplit(local_endpoint)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require_local_service(local_endpoint: str) -> None:
    """One line that says how to start the local service when nothing answers."""
    if not local_service_answers(local_endpoint):
        port = urlsplit(local_endpoint).port or 8765
        raise Unreachable(
            f"nothing answers at {local_endpoint}; start the local service in another "
            f"terminal with `crowdkit serve --port {port}` (or set [mturk] local_endpoint)"
        )


# ----------------------------------------------------------------------------------------
# Paging, times and errors
# ----------------------------------------------------------------------------------------


def paginate(call: Callable[..., dict[str, Any]], key: str, **kwargs: Any
             ) -> Iterator[dict[str, Any]]:
    """Every item of a NextToken-paged MTurk list call, 100 per request.

    MTurk answers the page after the last with no items (and possibly a NextToken again),
    so the loop stops at the first page that has no token or no items.
    """
    kwargs.setdefault("MaxResults", 100)
    while True:
        page = call(**kwargs)
        yield from page.get(key, [])
        token = page.get("NextToken")
        if not token or not page.get(key):
            return
        kwargs["NextToken"] = token


def mturk_time(value: object) -> datetime | None:
    """A time as MTurk answered it (a datetime from boto3, epoch seconds, or ISO 8601 text)
    as an aware UTC datetime; None when absent or unreadable. Unmarked times are UTC."""
    if value is None:
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    if not isinstance(value, datetime):
        try:
            value = datetime.fromisoformat(str(value))
        except ValueError:
            return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def iso(value: object) -> str | None:
    """MTurk's times as ISO 8601 UTC strings with milliseconds, as the ledger keeps them."""
    when = mturk_time(value)
    if when is None:
        return None if value is None else str(value)
    return when.astimezone(UTC).isoformat(timespec="milliseconds")


def error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def error_message(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Message", "") or exc)


def turk_error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("TurkErrorCode", "") or response.get("Error", {}).get(
        "TurkErrorCode", ""))


def error_text(exc: BaseException) -> str:
    """A failed MTurk call in one line: MTurk's error code and message, else the exception."""
    code = error_code(exc)
    return f"{code}: {error_message(exc)}" if code else f"{type(exc).__name__}: {exc}"


def is_token_already_used(exc: BaseException) -> bool:
    """MTurk's answer to a UniqueRequestToken it has already processed.

    CreateHIT answers AWS.MechanicalTurk.HitAlreadyExists with the HIT id in the message;
    SendBonus documents no code, only a message that says the token was already used, so
    its wording ("... token ... has already been processed/used") is read here, the one
    place crowdkit reads an MTurk message.
    """
    if turk_error_code(exc).endswith(("HitAlreadyExists", "DuplicateRequest")):
        return True
    message = error_message(exc).lower()
    return error_code(exc) in ("RequestError", "ParameterValidationError") and \
        "already" in message and ("token" in message or "exists" in message)


def classify(exc: BaseException, action: str) -> PlatformError:
    """A failed boto3 call as crowdkit's error type, with one line that says what failed."""
    from botocore.exceptions import BotoCoreError

    if isinstance(exc, PlatformError):
        return exc
    code, turk_code = error_code(exc), turk_error_code(exc)
    if isinstance(exc, BotoCoreError) or not code:
        return Unreachable(f"{action} failed: {exc}", detail=str(exc))
    message = f"{action} failed: {error_text(exc)}"
    detail = error_message(exc)
    if is_token_already_used(exc):
        return AlreadyDone(message, code=turk_code or code, detail=detail)
    if code in _AUTH_CODES:
        return AuthFailed(message + "; check the AWS credentials and that they may use MTurk "
                          "(docs/publishing.md)", code=code, detail=detail)
    if turk_code.endswith("DoesNotExist"):
        return NotFound(message, code=turk_code, detail=detail)
    if "Invalid" in turk_code and turk_code.endswith("State"):
        if "'Disposed'" in detail:
            return NotFound(message, code=turk_code, detail=detail)
        return InvalidState(message, code=turk_code, detail=detail)
    return PlatformError(message, code=turk_code or code, detail=detail)


@contextmanager
def calling(action: str) -> Iterator[None]:
    """Run MTurk calls, turning what fails into a crowdkit PlatformError."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        raise classify(exc, action) from exc
    except CrowdkitError:
        raise
    except Exception as exc:
        if getattr(exc, "response", None) is None:  # not an answer of the service
            raise
        raise classify(exc, action) from exc


def hit_ids_in(message: str) -> list[str]:
    """HIT ids MTurk names in an error message (HitAlreadyExists names the HIT)."""
    return HIT_ID.findall(message)
