"""localturk: an MTurk-compatible service on one machine (requester API + worker site).

    from crowdkit.localturk import FaultConfig, LocalTurk

    with LocalTurk("turk.db", port=0, fault=FaultConfig(throttle_rate=0.1)) as turk:
        mturk = turk.boto3_client()          # or boto3 with endpoint_url=turk.endpoint_url
        print(turk.worker_url)               # where people (or simulated workers) work

See docs/localturk.md for the supported operations and the differences from MTurk.
"""

from crowdkit.localturk.faults import FaultConfig
from crowdkit.localturk.fees import assignment_fee, bonus_fee
from crowdkit.localturk.server import DEFAULT_PORT, LocalTurk, LocalTurkError, default_db_path
from crowdkit.localturk.xml import (
    html_question,
    parse_question,
    parse_question_form_answers,
    question_form_answers,
)

__all__ = [
    "DEFAULT_PORT",
    "FaultConfig",
    "LocalTurk",
    "LocalTurkError",
    "assignment_fee",
    "bonus_fee",
    "default_db_path",
    "html_question",
    "parse_question",
    "parse_question_form_answers",
    "question_form_answers",
]
