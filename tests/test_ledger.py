"""The ledger: one writer at a time, atomic writes, verbatim answers, survives a kill."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from crowdkit.errors import CrowdkitError, LedgerBusy
from crowdkit.ledger import SCHEMA_VERSION, Ledger


def test_new_ledger_has_wal_foreign_keys_schema_version_and_a_pseudonym_key(tmp_path: Path):
    with Ledger.open(tmp_path / "study.db", write=True) as ledger:
        assert ledger.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert ledger.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert ledger.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert len(ledger.pseudonym_key()) == 32
        assert [e["kind"] for e in ledger.events()] == ["ledger.migrated"]


def test_reader_does_not_create_a_ledger(tmp_path: Path):
    with pytest.raises(CrowdkitError, match="no ledger yet"):
        Ledger.open(tmp_path / "study.db")
    assert not (tmp_path / "study.db").exists()


def test_a_ledger_from_a_newer_crowdkit_is_refused(tmp_path: Path):
    Ledger.open(tmp_path / "study.db", write=True).close()
    conn = sqlite3.connect(tmp_path / "study.db")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(CrowdkitError, match="newer than this crowdkit"):
        Ledger.open(tmp_path / "study.db", write=True)


def test_migrations_run_forward_from_an_older_version(tmp_path: Path, monkeypatch):
    from crowdkit import ledger as ledger_mod

    Ledger.open(tmp_path / "study.db", write=True).close()
    monkeypatch.setitem(ledger_mod.MIGRATIONS, SCHEMA_VERSION + 1,
                        "ALTER TABLE tasks ADD COLUMN note TEXT;")
    monkeypatch.setattr(ledger_mod, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with pytest.raises(CrowdkitError, match="needs an upgrade"):
        Ledger.open(tmp_path / "study.db")
    with Ledger.open(tmp_path / "study.db", write=True) as ledger:
        columns = [r[1] for r in ledger.conn.execute("PRAGMA table_info(tasks)")]
        assert "note" in columns
        assert ledger.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1


def test_event_log_is_append_only(tmp_path: Path):
    with Ledger.open(tmp_path / "study.db", write=True) as ledger:
        ledger.log_event("x", a=1)
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            ledger.conn.execute("UPDATE events SET kind = 'y'")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            ledger.conn.execute("DELETE FROM events")


def test_failed_transaction_leaves_nothing_behind(tmp_path: Path):
    with Ledger.open(tmp_path / "study.db", write=True) as ledger:
        with pytest.raises(ZeroDivisionError), ledger.transaction():
            ledger.set_meta("a", "1")
            ledger.log_event("half-way")
            1 / 0  # noqa: B018
        assert ledger.get_meta("a") is None
        assert [e["kind"] for e in ledger.events()] == ["ledger.migrated"]


def test_foreign_keys_refuse_an_assignment_for_an_unknown_hit(tmp_path: Path):
    with Ledger.open(tmp_path / "study.db", write=True) as ledger, \
            pytest.raises(sqlite3.IntegrityError):
        ledger.store_assignment(assignment_id="A1", hit_id="nohit", worker_id="W",
                                status="Submitted", answer_xml="<x/>")


def _ledger_with_a_hit(path: Path) -> Ledger:
    ledger = Ledger.open(path, write=True)
    with ledger.transaction():
        ledger.conn.execute(
            "INSERT INTO tasks VALUES ('t0', 0, '{}', '{}', 'now')")
    ledger.record_hit_intent(target="local", request_token="tok", task_id="t0", part=0,
                             max_assignments=2, reward="0.50")
    ledger.record_hit_created(target="local", request_token="tok", hit_id="H1",
                              hit_type_id="T", expiration=None)
    return ledger


def test_answers_are_stored_verbatim_and_never_twice(tmp_path: Path):
    answer = '<?xml version="1.0"?><QuestionFormAnswers>&lt;b&gt; é </QuestionFormAnswers>'
    with _ledger_with_a_hit(tmp_path / "study.db") as ledger:
        args = dict(assignment_id="A1", hit_id="H1", worker_id="W1", answer_xml=answer)
        assert ledger.store_assignment(status="Submitted", **args) == "new"
        assert ledger.store_assignment(status="Submitted", **args) == "unchanged"
        assert ledger.store_assignment(status="Approved", **args) == "changed"
        # MTurk never changes an answer; if it seems to, the first one is kept
        assert ledger.store_assignment(status="Approved", assignment_id="A1", hit_id="H1",
                                       worker_id="W1", answer_xml="<other/>") == "changed"
        rows = ledger.assignments()
        assert len(rows) == 1 and rows[0]["answer_xml"] == answer
        assert rows[0]["status"] == "Approved"
        assert ledger.events("assignment.answer_differs")


def test_hit_intent_then_created_is_recorded(tmp_path: Path):
    with _ledger_with_a_hit(tmp_path / "study.db") as ledger:
        (hit,) = ledger.hits("local")
        assert (hit["hit_id"], hit["status"], hit["reward"]) == ("H1", "created", "0.50")
        ledger.set_hit_status("H1", "expired")
        assert ledger.hits()[0]["status"] == "expired"


HOLD_LOCK = textwrap.dedent("""
    import sys, time
    from crowdkit.ledger import Ledger
    with Ledger.open(sys.argv[1], write=True, command="crowdkit publish") as ledger:
        print("locked", flush=True)
        time.sleep(60)
""")


def _spawn(script: str, *args: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", script, *args], stdout=subprocess.PIPE,
                            text=True, cwd=Path(__file__).resolve().parents[1])
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() in {"locked", "writing"}
    return proc


def test_a_second_writer_is_refused_with_a_clear_message(tmp_path: Path):
    db = tmp_path / "study.db"
    holder = _spawn(HOLD_LOCK, str(db))
    try:
        with pytest.raises(LedgerBusy, match=rf"pid {holder.pid}, `crowdkit publish`"):
            Ledger.open(db, write=True)
        with Ledger.open(db) as reader:  # readers are never blocked
            assert reader.get_meta("pseudonym_key")
    finally:
        holder.kill()
        holder.wait()
    Ledger.open(db, write=True).close()  # the dead writer's lock is gone


WRITE_FOREVER = textwrap.dedent("""
    import sys
    from crowdkit.ledger import Ledger
    ledger = Ledger.open(sys.argv[1], write=True)
    n = 0
    while True:
        with ledger.transaction():
            for i in range(50):
                ledger.conn.execute(
                    "INSERT INTO tasks VALUES (?, ?, '{}', '{}', 'now')",
                    (f"t{n}-{i}", n * 50 + i))
            ledger.log_event("batch.written", n=n)
        if n == 0:
            print("writing", flush=True)
        n += 1
""")


def test_a_killed_writer_leaves_the_ledger_consistent(tmp_path: Path):
    db = tmp_path / "study.db"
    writer = _spawn(WRITE_FOREVER, str(db))
    time.sleep(0.5)
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    with Ledger.open(db, write=True) as ledger:  # lock released, WAL recovered
        assert ledger.integrity_problems() == []
        batches = ledger.conn.execute(
            "SELECT substr(task_id, 1, instr(task_id, '-')) AS batch, COUNT(*) FROM tasks "
            "GROUP BY batch").fetchall()
        events = len(ledger.events("batch.written"))
        assert batches, "the writer should have committed something before the kill"
        # every committed batch is whole, and each has exactly one event: nothing half-way
        assert all(count == 50 for _, count in batches)
        assert events == len(batches)
