"""Crash and resume: publish killed at any moment, then run again, ends with one HIT per task
part -- in the local service and in the ledger. Also throttling and lost answers.

The killed runs are real subprocesses that die by SIGKILL (no cleanup, no flush), either at
a named point (the CROWDKIT_CRASH_AT hook) or at a random moment mid-batch.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from crowdkit.design import design_study
from crowdkit.ledger import Ledger
from crowdkit.localturk import FaultConfig, LocalTurk
from crowdkit.platforms import mturk as turk
from crowdkit.publish import CRASH_ENV, publish
from crowdkit.store import LocalStore
from crowdkit.study import load_study
from tests.factories import make_study, mturk

REPO = Path(__file__).resolve().parent.parent
PUBLISH_SCRIPT = """
import sys
from crowdkit.platforms.mturk import MTurk, mturk_client
from crowdkit.publish import publish
from crowdkit.store import LocalStore
from crowdkit.study import load_study

root, endpoint, files_dir = sys.argv[1:4]
study = load_study(root)
publish(study, MTurk(study.config, "local",
                     client=mturk_client("local", local_endpoint=endpoint)),
        store=LocalStore(files_dir, endpoint), workers=2)
print("finished")
"""
N_TASKS = 6
ASSIGNMENTS = 12  # two HITs of 6 per task
N_HITS = N_TASKS * 2


@pytest.fixture
def study(tmp_path):
    study = load_study(make_study(tmp_path / "s", tasks=N_TASKS, assignments=ASSIGNMENTS))
    design_study(study)  # once, so each killed run starts creating HITs at once
    return study


def start_publish(study, service, crash_at: str | None = None) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop(CRASH_ENV, None)
    if crash_at:
        env[CRASH_ENV] = crash_at
    return subprocess.Popen(
        [sys.executable, "-c", PUBLISH_SCRIPT, str(study.root), service.endpoint_url,
         str(service.files_dir)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)


def publish_here(study, service):
    return publish(study, mturk(study, service.boto3_client()),
                   store=LocalStore(service.files_dir, service.base_url))


def assert_exactly_one_hit_per_part(study, service):
    hits = list(turk.paginate(service.boto3_client().list_hits, "HITs"))
    assert len(hits) == N_HITS
    with Ledger.open(study.db_path) as ledger:
        rows = ledger.hits("local")
    assert len(rows) == N_HITS
    assert all(r["status"] == "created" for r in rows)
    assert {r["hit_id"] for r in rows} == {h["HITId"] for h in hits}
    assert len({(r["task_id"], r["part"]) for r in rows}) == N_HITS
    assert sorted(h["RequesterAnnotation"].split(";study=")[0] for h in hits) == sorted(
        r["request_token"] for r in rows)


@pytest.mark.parametrize("crash_at", [
    "intents-recorded:1",  # every intent written, no call made
    "hit-returned:1",      # the first HIT exists remotely, its id is not in the ledger
    "hit-returned:5",      # mid-batch, between call and record
    "hit-recorded:7",      # mid-batch, after a record
])
def test_killed_at_a_point_then_rerun_gives_exactly_one_hit_per_part(study, tmp_path, crash_at):
    with LocalTurk(tmp_path / "turk.db", port=0) as service:
        proc = start_publish(study, service, crash_at)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == -signal.SIGKILL, err
        assert "finished" not in out
        result = publish_here(study, service)
        assert result.created + result.resumed + result.already == N_HITS
        assert_exactly_one_hit_per_part(study, service)


def test_sigkill_at_a_random_moment_mid_batch(study, tmp_path):
    slow = FaultConfig(latency_s=0.05, operations=frozenset({"CreateHITWithHITType"}))
    with LocalTurk(tmp_path / "turk.db", port=0, fault=slow) as service:
        client = service.boto3_client()
        proc = start_publish(study, service)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if len(client.list_hits(MaxResults=100).get("HITs", [])) >= 3:
                break
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        made = len(list(turk.paginate(client.list_hits, "HITs")))
        assert 3 <= made < N_HITS  # killed mid-batch
        service.set_faults(FaultConfig())
        publish_here(study, service)
        assert_exactly_one_hit_per_part(study, service)


def test_resume_after_mturk_forgot_the_tokens_finds_hits_by_annotation(study, tmp_path):
    with LocalTurk(tmp_path / "turk.db", port=0) as service:
        proc = start_publish(study, service, "hit-returned:4")
        proc.communicate(timeout=120)
        assert proc.returncode == -signal.SIGKILL
        service.advance_clock(25 * 3600)  # request tokens last 24 hours
        result = publish_here(study, service)
        assert result.resumed >= 1
        # HITs made 25 h ago have a 3-day lifetime: still there, never duplicated.
        assert_exactly_one_hit_per_part(study, service)


def test_throttling_at_30_percent_still_ends_with_exactly_n_hits(study, tmp_path):
    throttled = FaultConfig(throttle_rate=0.3, seed=3)
    with LocalTurk(tmp_path / "turk.db", port=0, fault=throttled) as service:
        client = turk.mturk_client("local", local_endpoint=service.endpoint_url)
        result = publish(study, mturk(study, client),
                         store=LocalStore(service.files_dir, service.base_url))
        assert result.created == N_HITS
        service.set_faults(FaultConfig())
        assert_exactly_one_hit_per_part(study, service)


def test_lost_answers_resolve_to_the_existing_hit(study, tmp_path):
    lossy = FaultConfig(lost_response_rate=0.4, seed=5,
                        operations=frozenset({"CreateHITWithHITType"}))
    with LocalTurk(tmp_path / "turk.db", port=0, fault=lossy) as service:
        result = publish_here(study, service)
        assert result.created + result.resumed == N_HITS
        assert result.resumed >= 1  # some answers were lost and their HITs found again
        service.set_faults(FaultConfig())
        assert_exactly_one_hit_per_part(study, service)
