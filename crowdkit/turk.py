"""A thin MTurk layer over boto3: one client per target, retries, idempotent create, paging.

The same code path serves all three targets; only the endpoint and the credentials differ:
- local: the embedded service (`crowdkit serve`) at `[mturk] local_endpoint`, with dummy
  credentials, so nothing about AWS needs to be set up to try a study;
- sandbox and live: MTurk's requester endpoints in us-east-1 (the only region MTurk has),
  with credentials from boto3's standard chain (environment, shared files, `[mturk] profile`).

botocore retries throttling and service faults with exponential backoff ("standard" mode),
so callers never see a transient error unless it persists through every attempt.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from crowdkit.errors import CrowdkitError

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
# MTurk's system qualification types.
PERCENT_APPROVED = "000000000000000000L0"
NUMBER_APPROVED = "00000000000000000040"
LOCALE = "00000000000000000071"
MASTERS = {
    "live": "2F1QJWKUDD8XADTFD2Q0G6UTO95ALH",
    "sandbox": "2ARFPLSP75KLA8M8DH1HTEQVJT3SY6",
    "local": "2ARFPLSP75KLA8M8DH1HTEQVJT3SY6",  # localturk knows the sandbox id
}
DEFAULT_MAX_ATTEMPTS = 10
# A HIT id as MTurk writes it: 30 capitals and digits.
_HIT_ID = re.compile(r"\b([A-Z0-9]{30})\b")


def check_target(target: str) -> str:
    if target not in TARGETS:
        raise CrowdkitError(f"unknown target {target!r}: use local, sandbox or live")
    return target


def endpoint_url(target: str, local_endpoint: str = "http://127.0.0.1:8765") -> str:
    """The requester API endpoint of a target."""
    check_target(target)
    return local_endpoint.rstrip("/") if target == "local" else ENDPOINTS[target]


def preview_url(target: str, group_id: str, local_endpoint: str | None = None) -> str:
    """Where a worker (or the researcher) sees the study's HITs: MTurk's preview of the HIT
    group, or the local worker site."""
    if target == "local":
        base = (local_endpoint or "http://127.0.0.1:8765").rstrip("/")
        return f"{base}/worker"
    return PREVIEW_URLS[check_target(target)].format(group=group_id)


def mturk_client(
    target: str,
    *,
    local_endpoint: str = "http://127.0.0.1:8765",
    profile: str | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    retry_mode: str = "standard",
    session: Any = None,
) -> Any:
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


def study_client(study: Any, target: str) -> Any:
    """The MTurk client for a study's target; for local, first check the service answers."""
    mturk = study.config.mturk
    if target == "local":
        require_local_service(mturk.local_endpoint)
    return mturk_client(target, local_endpoint=mturk.local_endpoint, profile=mturk.profile)


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
        raise CrowdkitError(
            f"nothing answers at {local_endpoint}; start the local service in another "
            f"terminal with `crowdkit serve --port {port}` (or set [mturk] local_endpoint)"
        )


# ----------------------------------------------------------------------------------------
# Paging and errors
# ----------------------------------------------------------------------------------------


def paginate(call: Callable[..., dict], key: str, **kwargs: Any) -> Iterator[dict]:
    """Every item of a NextToken-paged MTurk list call, 100 per request."""
    kwargs.setdefault("MaxResults", 100)
    while True:
        page = call(**kwargs)
        yield from page.get(key, [])
        token = page.get("NextToken")
        if not token or not page.get(key):
            return
        kwargs["NextToken"] = token


def error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def error_message(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Message", "") or exc)


def mturk_time(value: Any) -> datetime | None:
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


def turk_error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("TurkErrorCode", "") or response.get("Error", {}).get(
        "TurkErrorCode", ""))


def error_text(exc: BaseException) -> str:
    """A failed MTurk call in one line: MTurk's error code and message, else the exception."""
    code = error_code(exc)
    return f"{code}: {error_message(exc)}" if code else f"{type(exc).__name__}: {exc}"


def client_factory(study: Any) -> Callable[[str], Any]:
    """target -> the study's MTurk client for it (`study_client`), made once per target."""
    clients: dict[str, Any] = {}

    def client_for(target: str) -> Any:
        if target not in clients:
            clients[target] = study_client(study, target)
        return clients[target]

    return client_for


def is_token_already_used(exc: BaseException) -> bool:
    """MTurk's answer to a UniqueRequestToken it has already processed.

    The documented code is AWS.MechanicalTurk.HitAlreadyExists with the HIT id in the
    message (for bonuses and extensions, ...DuplicateRequest); other wordings ("... token ...
    has already been processed") are accepted too.
    """
    if turk_error_code(exc).endswith(("HitAlreadyExists", "DuplicateRequest")):
        return True
    message = error_message(exc).lower()
    return error_code(exc) == "RequestError" and "already" in message and (
        "token" in message or "exists" in message
    )


@contextmanager
def user_errors(target: str, action: str) -> Iterator[None]:
    """Turn what MTurk or the network answers into one line a researcher can act on."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        code = error_code(exc)
        hint = ""
        if code in ("UnrecognizedClientException", "InvalidClientTokenId",
                    "AccessDeniedException", "ExpiredTokenException"):
            hint = "; check the AWS credentials and that they may use MTurk (docs/publishing.md)"
        raise CrowdkitError(f"{target}: {action} failed: {code}: {error_message(exc)}{hint}"
                            ) from exc
    except BotoCoreError as exc:
        raise CrowdkitError(f"{target}: {action} failed: {exc}") from exc


def request_token(study_name: str, task_id: str, part: int) -> str:
    """The UniqueRequestToken of one HIT: derived from the study and the task, so every
    re-run asks for the same HIT and MTurk refuses to make a second one."""
    digest = hashlib.sha256(f"{study_name}\0{task_id}\0{part}".encode()).hexdigest()
    return f"ck-{digest[:48]}"


# ----------------------------------------------------------------------------------------
# Idempotent HIT creation
# ----------------------------------------------------------------------------------------


def find_hits_by_annotation(client: Any, tokens: set[str]) -> dict[str, dict]:
    """The account's HITs whose RequesterAnnotation is one of `tokens` (one listing pass).

    crowdkit writes each HIT's request token into its annotation, so a HIT can be found
    even after MTurk has forgotten the token (tokens expire after 24 hours).
    """
    found: dict[str, dict] = {}
    if not tokens:
        return found
    for hit in paginate(client.list_hits, "HITs"):
        annotation = hit.get("RequesterAnnotation")
        if annotation in tokens:
            found.setdefault(annotation, hit)
    return found


def create_hit_idempotent(client: Any, *, request_token: str, **params: Any
                          ) -> tuple[dict, bool]:
    """CreateHITWithHITType that returns the existing HIT when the token was already used.

    Returns (HIT, existed): `existed` is True when an earlier call had made it. The token also
    goes into RequesterAnnotation so `find_hits_by_annotation` can find the HIT by listing
    when the error message names no HIT id.
    """
    try:
        response = client.create_hit_with_hit_type(
            UniqueRequestToken=request_token, RequesterAnnotation=request_token, **params
        )
        return response["HIT"], False
    except Exception as exc:  # botocore ClientError or a modelled MTurk exception
        if not is_token_already_used(exc):
            raise
        existing = resolve_existing_hit(client, request_token, error_message(exc))
        if existing is None:
            raise CrowdkitError(
                f"MTurk says request token {request_token} was already used, but no HIT "
                "with that token could be found; check the account's HITs"
            ) from exc
        return existing, True


def resolve_existing_hit(client: Any, token: str, message: str) -> dict | None:
    """The HIT a used token made: by the id in MTurk's message, else by listing."""
    for hit_id in _HIT_ID.findall(message):
        try:
            hit = client.get_hit(HITId=hit_id)["HIT"]
        except Exception:  # noqa: BLE001 - not a HIT id after all; try the next one
            continue
        if hit.get("RequesterAnnotation") in (None, token):
            return hit
    return find_hits_by_annotation(client, {token}).get(token)


# ----------------------------------------------------------------------------------------
# Qualification types
# ----------------------------------------------------------------------------------------


def find_qualification_type(client: Any, name: str) -> str | None:
    """The id of the caller's qualification type named exactly `name`, if any."""
    for qt in paginate(client.list_qualification_types, "QualificationTypes",
                       Query=name, MustBeRequestable=False, MustBeOwnedByCaller=True):
        if qt.get("Name") == name and qt.get("QualificationTypeStatus", "Active") == "Active":
            return qt["QualificationTypeId"]
    return None


def ensure_qualification_type(client: Any, name: str, description: str) -> str:
    """Find the qualification type by exact name, or create it; safe to repeat."""
    found = find_qualification_type(client, name)
    if found:
        return found
    try:
        response = client.create_qualification_type(
            Name=name, Description=description, QualificationTypeStatus="Active",
            Keywords="crowdkit",
        )
        return response["QualificationType"]["QualificationTypeId"]
    except Exception as exc:
        # Created by a run that died before recording it, or by a concurrent run.
        found = find_qualification_type(client, name)
        if found:
            return found
        raise CrowdkitError(
            f"could not create the qualification type {name!r}: {error_message(exc)}"
        ) from exc
