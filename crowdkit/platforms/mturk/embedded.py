"""The local twin, started for one command when nothing answers at the local endpoint.

Why: a fresh `crowdkit init` + `crowdkit stimuli` + `crowdkit publish --target local`
should run with no other step, not stop and ask for `crowdkit serve` in a second terminal.
When the study's target is local, its `[mturk] local_endpoint` is on this machine (a
loopback address) and nothing listens there, the command starts the same service that
`crowdkit serve` runs, on that port and with `crowdkit serve`'s default state file, so
the HITs it creates are the ones a later `crowdkit serve` shows to workers. The service
stops when the command ends.

An endpoint on another machine is never started here: the library's own message (start
`crowdkit serve` there) stands.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

from crowdkit.platforms.base import Unreachable
from crowdkit.platforms.mturk.client import local_service_answers

LOG = logging.getLogger("crowdkit.platforms.mturk")
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def can_start_here(local_endpoint: str) -> bool:
    """True when the endpoint is plain HTTP on this machine, so a service can bind it."""
    parts = urlsplit(local_endpoint)
    return parts.scheme == "http" and (parts.hostname or "") in LOOPBACK


@contextmanager
def local_service_for_command(target: str, local_endpoint: str) -> Iterator[str | None]:
    """Run the local service for the `with` block when the command needs one and none runs.

    Yields a note for the user when it started one (where its state lies, and how to
    reach the HITs afterwards), None when nothing had to be started: another target, a
    service already answering, or an endpoint on another machine. A port this process
    cannot bind ends in one line that says what to do instead.
    """
    if (target != "local" or not can_start_here(local_endpoint)
            or local_service_answers(local_endpoint, timeout=0.5)):
        yield None
        return
    from crowdkit.localturk import LocalTurk, LocalTurkError, default_db_path

    parts = urlsplit(local_endpoint)
    port = parts.port or 80
    state = default_db_path()
    turk = LocalTurk(state, port=port, host=parts.hostname or "127.0.0.1")
    try:
        turk.start()
    except LocalTurkError as exc:
        cause = exc.__cause__
        reason = getattr(cause, "strerror", None) or str(cause or exc)
        raise Unreachable(
            f"nothing answers at {local_endpoint}, and the local service cannot listen "
            f"there ({reason}); free the port, start `crowdkit serve --port {port}` in "
            "another terminal, or set [mturk] local_endpoint") from None
    try:
        LOG.info("started the local MTurk service at %s for this command (state %s)",
                 turk.endpoint_url, state)
        yield (f"nothing answered at {local_endpoint}, so the local MTurk service runs "
               f"inside this command until it ends (state: {state}; images: "
               f"{turk.files_dir}); afterwards `crowdkit serve` shows these HITs to "
               "workers and `crowdkit simulate` answers them")
    finally:
        turk.stop()
