"""localturk keeps its marketplace in SQLite: a restart (in-process or `crowdkit serve`)
loses nothing and moves no clock backwards."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from decimal import Decimal
from pathlib import Path

import pytest

from crowdkit.localturk import LocalTurk, parse_question_form_answers
from tests.factories import interruptible
from tests.localturk_support import Worker, hit_args

ROOT = Path(__file__).resolve().parents[1]


def test_state_survives_a_restart(tmp_path):
    db = tmp_path / "turk.db"
    with LocalTurk(db, port=0) as turk:
        mturk = turk.boto3_client(max_attempts=1)
        type_id = mturk.create_qualification_type(
            Name="Took part", Description="d", QualificationTypeStatus="Active")[
            "QualificationType"]["QualificationTypeId"]
        mturk.associate_qualification_with_worker(QualificationTypeId=type_id,
                                                  WorkerId="A1ALICE", IntegerValue=3)
        hit_id = mturk.create_hit(**hit_args(UniqueRequestToken="task-1"))["HIT"]["HITId"]
        alice = Worker(turk.base_url, "A1ALICE")
        alice.profile(country="GB")
        done = alice.do_hit(hit_id, answer="kept")
        in_progress = Worker(turk.base_url, "A1BOB").accept(hit_id)["AssignmentId"]
        mturk.approve_assignment(AssignmentId=done)
        mturk.send_bonus(WorkerId="A1ALICE", AssignmentId=done, BonusAmount="0.30", Reason="r")
        turk.advance_clock(300)
        clock_before = turk.now()
        balance_before = mturk.get_account_balance()

    with LocalTurk(db, port=0) as turk:
        mturk = turk.boto3_client(max_attempts=1)
        assert turk.now() >= clock_before  # the advanced clock was kept
        assert mturk.get_account_balance()["AvailableBalance"] == balance_before[
            "AvailableBalance"]
        assert Decimal(balance_before["AvailableBalance"]) == Decimal("10000.00") - Decimal(
            "0.60") * 2 - Decimal("0.30") - Decimal("0.06")
        [assignment] = mturk.list_assignments_for_hit(HITId=hit_id)["Assignments"]
        assert assignment["AssignmentStatus"] == "Approved"
        assert parse_question_form_answers(assignment["Answer"]) == {"answer": "kept"}
        assert [b["BonusAmount"] for b in mturk.list_bonus_payments(HITId=hit_id)[
            "BonusPayments"]] == ["0.30"]
        assert [q["IntegerValue"] for q in mturk.list_workers_with_qualification_type(
            QualificationTypeId=type_id)["Qualifications"]] == [3]
        with pytest.raises(mturk.exceptions.RequestError):  # the token is remembered
            mturk.create_hit(**hit_args(UniqueRequestToken="task-1"))
        bob = Worker(turk.base_url, "A1BOB")  # work in progress can still be submitted
        assert bob.submit(in_progress, answer="after restart")[0] == 200


def start_serve(db: Path, *extra: str) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "crowdkit", "serve", "--port", "0", "--db", str(db), *extra],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        preexec_fn=interruptible)
    line = proc.stdout.readline()
    match = re.search(r"(http://127\.0\.0\.1:\d+)", line)
    assert match, line + proc.stderr.read()
    return proc, match.group(1)


def stop_serve(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 0


def test_crowdkit_serve_keeps_state_across_restarts(tmp_path):
    import boto3

    db = tmp_path / "serve.db"

    def client(url: str):
        return boto3.session.Session(
            aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1",
        ).client("mturk", endpoint_url=url)

    proc, url = start_serve(db, "--balance", "50.00")
    try:
        hit_id = client(url).create_hit(**hit_args())["HIT"]["HITId"]
        page = urllib.request.urlopen(url + "/worker/api/hits?workerId=A1ALICE").read()
        assert [h["HITId"] for h in json.loads(page)["HITs"]] == [hit_id]
    finally:
        stop_serve(proc)
    proc, url = start_serve(db)
    try:
        mturk = client(url)
        assert [h["HITId"] for h in mturk.list_hits()["HITs"]] == [hit_id]
        assert mturk.get_account_balance()["AvailableBalance"] == "48.80"
    finally:
        stop_serve(proc)


def test_crowdkit_serve_reports_a_taken_port(tmp_path):
    with LocalTurk(tmp_path / "a.db", port=0) as turk:
        out = subprocess.run(
            [sys.executable, "-m", "crowdkit", "serve", "--port", str(turk.port),
             "--db", str(tmp_path / "b.db")], cwd=ROOT, capture_output=True, text=True,
            timeout=60)
    assert out.returncode == 1
    assert out.stderr.startswith("error: localturk cannot listen on 127.0.0.1:")
    assert "Traceback" not in out.stderr


def test_a_database_of_an_earlier_localturk_opens_and_gains_the_new_columns(tmp_path):
    """`crowdkit serve` keeps ~/.crowdkit/localturk.db across versions: a schema-1 database
    (no review status, notification or deleted-type columns) opens, and its HITs work."""
    import sqlite3

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as old:
        old.executescript("""
            CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE hit_types (hit_type_id TEXT PRIMARY KEY, title TEXT NOT NULL,
                description TEXT NOT NULL, keywords TEXT NOT NULL, reward TEXT NOT NULL,
                assignment_duration INTEGER NOT NULL, auto_approval_delay INTEGER NOT NULL,
                qualification_requirements TEXT NOT NULL, created REAL NOT NULL);
            CREATE TABLE hits (hit_id TEXT PRIMARY KEY, hit_type_id TEXT NOT NULL,
                question TEXT NOT NULL, max_assignments INTEGER NOT NULL,
                expiration REAL NOT NULL, requester_annotation TEXT, created REAL NOT NULL,
                disposed INTEGER NOT NULL DEFAULT 0);
            INSERT INTO meta VALUES ('schema_version', '1'), ('clock_offset', '0'),
                                    ('funds', '100.00');
            INSERT INTO hit_types VALUES ('3OLDTYPE', 'Old', 'd', '', '0.50', 600, 86400,
                                          '[]', 0);
        """)
        old.execute("INSERT INTO hits VALUES ('3OLDHIT', '3OLDTYPE', ?, 1, 4e9, NULL, 1, 0)",
                    (hit_args()["Question"],))
    with LocalTurk(path, port=0) as turk:
        mturk = turk.boto3_client(max_attempts=1)
        hit = mturk.get_hit(HITId="3OLDHIT")["HIT"]
        assert (hit["Title"], hit["HITStatus"]) == ("Old", "Assignable")
        Worker(turk.base_url, "A1LATER").do_hit("3OLDHIT", answer="x")
        mturk.update_hit_review_status(HITId="3OLDHIT")
        assert mturk.get_hit(HITId="3OLDHIT")["HIT"]["HITStatus"] == "Reviewing"
        assert turk.db.meta("schema_version") == "2"
