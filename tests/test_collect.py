"""`crowdkit collect` against a scripted MTurk: storage, paging, re-runs, exports, privacy."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from crowdkit import analysis
from crowdkit.collect import (
    TRIAL_COLUMNS,
    auto_approval_warnings,
    collect,
    collect_once,
    hits_done,
    pseudonym,
)
from crowdkit.errors import CrowdkitError, LedgerBusy
from crowdkit.ledger import Ledger
from crowdkit.study import Study
from tests.collect_helpers import (
    HITS,
    FakeMTurk,
    add_hits,
    answer_xml,
    designed_study,
    payload,
    study_with_hits,
    task_keys,
)
from tests.factories import mturk


@pytest.fixture
def study(tmp_path: Path) -> Study:
    return study_with_hits(tmp_path / "study")


@pytest.fixture
def turk(study: Study) -> FakeMTurk:
    """Three good workers on t0000 (one HIT's three slots, across two pages) and more."""
    keys = task_keys(study)
    fake = FakeMTurk(page_size=2)
    for worker in ("AGOOD1", "AGOOD2", "AGOOD3"):
        fake.add("HIT0000", worker, payload(keys["t0000"]))
    fake.add("HIT0001", "ACARELESS", payload(keys["t0001"], response="top"))
    fake.add("HIT0002", "ATAMPER", None, xml=answer_xml("{not json"))
    fake.add("HIT0003", "AGOOD1", payload(keys["t0003"]))  # a second HIT of the same worker
    return fake


def local_data(study: Study) -> Path:
    """Where collect writes the local target's data."""
    return study.target_data_dir("local")


def run(study: Study, fake: FakeMTurk, **kwargs):
    return collect(study, mturk(study, fake), **kwargs)


def ledger_snapshot(study: Study) -> dict[str, list[tuple]]:
    conn = sqlite3.connect(study.db_path)
    tables = ["assignments", "events", "qualification_grants", "meta", "reviews", "bonuses"]
    out = {t: [tuple(r) for r in conn.execute(f"SELECT * FROM {t} ORDER BY 1")] for t in tables}
    conn.close()
    return out


def test_every_assignment_is_stored_verbatim_following_the_paging(study: Study,
                                                                  turk: FakeMTurk) -> None:
    result = run(study, turk)
    assert result.fetch.new == 6
    with Ledger.open(study.db_path) as ledger:
        stored = {r["assignment_id"]: r for r in ledger.assignments()}
    assert set(stored) == set(turk.assignments)
    for assignment_id, remote in turk.assignments.items():
        assert stored[assignment_id]["answer_xml"] == remote["Answer"]
        assert stored[assignment_id]["worker_id"] == remote["WorkerId"]
    # HIT0000 has 3 assignments and the fake pages 2 at a time: two calls for it.
    calls = [c for n, c in turk.calls if n == "list_assignments_for_hit"
             and c["HITId"] == "HIT0000"]
    assert len(calls) == 2 and calls[1]["NextToken"] == "2"
    assert set(calls[0]["AssignmentStatuses"]) == {"Submitted", "Approved", "Rejected"}


def test_invalid_answers_are_kept_and_marked_with_a_reason(study: Study,
                                                           turk: FakeMTurk) -> None:
    run(study, turk)
    with Ledger.open(study.db_path) as ledger:
        rows = {r["worker_id"]: r for r in ledger.assignments()}
    bad = rows["ATAMPER"]
    assert bad["answer_xml"] == answer_xml("{not json")
    assert bad["parse_status"] == "invalid"
    assert bad["parse_error"].startswith("invalid JSON")
    assert rows["AGOOD2"]["parse_status"] == "ok" and rows["AGOOD2"]["parse_error"] is None
    participants = pd.read_csv(local_data(study) / "participants.csv", keep_default_na=False)
    row = participants[participants.assignment_id == bad["assignment_id"]].iloc[0]
    assert row.valid == False  # noqa: E712 (a numpy bool)
    assert row.excluded == True  # noqa: E712
    assert row.exclusion_reasons == "valid_answer"
    assert row.invalid_reason.startswith("invalid JSON")


def test_rerunning_collect_changes_nothing(study: Study, turk: FakeMTurk) -> None:
    run(study, turk)
    files = {p.name: p.read_bytes() for p in local_data(study).iterdir()}
    before = ledger_snapshot(study)
    second = run(study, turk)
    assert second.fetch.new == second.fetch.changed == 0
    assert second.written == [] and second.parse_updates == 0
    assert ledger_snapshot(study) == before
    assert {p.name: p.read_bytes() for p in local_data(study).iterdir()} == files


def test_a_status_change_is_picked_up_and_settled_hits_are_not_listed_again(
        study: Study, turk: FakeMTurk) -> None:
    run(study, turk)
    for row in turk.assignments.values():
        if row["HITId"] == "HIT0000":
            row["AssignmentStatus"] = "Approved"
    second = run(study, turk)
    assert second.fetch.changed == 3
    listed_before = turk.count("list_assignments_for_hit")
    third = run(study, turk)
    assert third.fetch.hits_skipped == 1  # HIT0000: all three slots final
    hit0000_calls = [c for n, c in turk.calls[-(turk.count("list_assignments_for_hit")
                                                  - listed_before):]
                     if n == "list_assignments_for_hit" and c["HITId"] == "HIT0000"]
    assert hit0000_calls == []


def test_tidy_trials_have_the_design_columns_and_correctness_from_the_key(
        study: Study, turk: FakeMTurk) -> None:
    run(study, turk)
    trials = pd.read_parquet(local_data(study) / "trials.parquet")
    assert list(trials.columns) == TRIAL_COLUMNS
    assert trials["correct"].dtype == bool and trials["excluded"].dtype == bool
    keys = task_keys(study)
    good = trials[trials.task_id == "t0000"]
    assert len(good) == 3 * len(keys["t0000"].trials)
    assert good["correct"].all()
    careless = trials[trials.task_id == "t0001"]
    expected = [t.max_position == "top" for t in sorted(keys["t0001"].trials,
                                                         key=lambda t: t.trial_index)]
    assert careless["correct"].tolist() == expected
    # Always "top": the answers do not vary, and half the catch trials are wrong.
    assert set(careless["exclusion_reasons"]) == {"catch_accuracy;response_variety"}
    assert careless["excluded"].all()
    assert trials[trials.task_id == "t0002"].empty  # invalid: no trial rows
    assert set(trials.phase) == {"practice", "main", "catch"}
    assert set(trials["study"]) == {"teststudy"} and set(trials["target"]) == {"local"}


def test_tidy_file_round_trips(study: Study, turk: FakeMTurk) -> None:
    result = run(study, turk)
    assert sorted(p.name for p in result.written) == ["codebook.json", "codebook.md",
                                                      "participants.csv", "trials.csv",
                                                      "trials.parquet"]
    from_parquet = pd.read_parquet(local_data(study) / "trials.parquet")
    from_csv = analysis.load_trials(local_data(study) / "trials.csv")
    assert len(from_csv) == len(from_parquet)
    for column in TRIAL_COLUMNS:
        # an empty cell (repeat_of of a trial that repeats nothing) is "" on both sides
        left = from_parquet[column].astype(object).where(from_parquet[column].notna(),
                                                         "").tolist()
        # analysis names InceptionV1's layers as the paper does; the module stays in `module`
        read = "module" if column == "layer" and "module" in from_csv else column
        right = from_csv[read].astype(object).fillna("").tolist()
        if column in ("correct", "excluded"):
            right = [bool(v) for v in right]
        if column == "rt_ms":
            right = [float(v) for v in right]
        assert [str(v) for v in left] == [str(v) for v in right], column
    # the analysis finds in either file what collect stored: four participants with trials
    # (the invalid answer has none), the careless one excluded for its two failed rules,
    # and the good answers all right
    for source in (local_data(study) / "trials.csv", local_data(study) / "trials.parquet"):
        analysed = analysis.analyze(analysis.load_trials(source))
        assert analysed.design == "between", source
        counts = analysed.participants
        assert counts["included"] + counts["excluded"] == 4, source
        assert counts["exclusion_reasons"].get("catch_accuracy") == 1, source
        assert counts["exclusion_reasons"].get("response_variety") == 1, source
        assert set(analysed.summary["condition"]) == {"natural"}, source
        assert (analysed.summary["accuracy"] == 1.0).all(), source


def test_the_csv_and_the_parquet_file_give_the_same_analysis(study: Study,
                                                             turk: FakeMTurk) -> None:
    run(study, turk)
    from_csv = analysis.analyze(analysis.load_trials(local_data(study) / "trials.csv"))
    from_parquet = analysis.analyze(analysis.load_trials(local_data(study) / "trials.parquet"))
    assert from_csv.to_json() == from_parquet.to_json()


def test_a_workers_first_assignment_is_analysed_and_only_the_later_one_left_out(
        study: Study, turk: FakeMTurk) -> None:
    run(study, turk)
    with Ledger.open(study.db_path) as ledger:
        agood1 = pseudonym(ledger.pseudonym_key(), "AGOOD1")
    analysed = analysis.analyze(analysis.load_trials(study.root))
    # [quality] first_assignment_only: "only a worker's first assignment in the study counts"
    assert agood1 in set(analysed.participant_accuracy["participant_id"])
    natural = analysed.summary[(analysed.summary["condition"] == "natural")
                               & (analysed.summary["expert_level"] == "all")].iloc[0]
    assert (natural["n_participants"], natural["n_trials"]) == (3, 3 * 8)


def test_exports_carry_pseudonyms_and_never_worker_ids(study: Study, turk: FakeMTurk) -> None:
    run(study, turk)
    text = "".join(p.read_text(errors="replace") for p in local_data(study).glob("*.csv"))
    text += (local_data(study) / "trials.parquet").read_bytes().decode("latin-1")
    for worker in ("AGOOD1", "AGOOD2", "AGOOD3", "ACARELESS", "ATAMPER"):
        assert worker not in text
    with Ledger.open(study.db_path) as ledger:
        key = ledger.pseudonym_key()
    participants = pd.read_csv(local_data(study) / "participants.csv")
    assert pseudonym(key, "AGOOD1") in set(participants.participant_id)
    # One worker, two assignments: the same pseudonym, and only the first counts.
    first = participants[participants.participant_id == pseudonym(key, "AGOOD1")]
    assert len(first) == 2
    assert sorted(first.rule_first_assignment) == ["fail", "pass"]
    assert pseudonym(b"another study's key" * 2, "AGOOD1") != pseudonym(key, "AGOOD1")


def test_participation_qualification_is_granted_once_per_worker(study: Study,
                                                                turk: FakeMTurk) -> None:
    with Ledger.open(study.db_path, write=True) as ledger:
        ledger.record_qualification_type("local", "crowdkit study teststudy", "study", "QSTUDY")
    run(study, turk)
    run(study, turk)
    assert sorted(turk.grants) == sorted(
        ("QSTUDY", w) for w in ("AGOOD1", "AGOOD2", "AGOOD3", "ACARELESS", "ATAMPER"))
    with Ledger.open(study.db_path) as ledger:
        grants = ledger.qualification_grants("local")
    assert {g["status"] for g in grants} == {"done"} and len(grants) == 5


def test_a_failed_grant_is_reported_and_retried(study: Study, turk: FakeMTurk) -> None:
    with Ledger.open(study.db_path, write=True) as ledger:
        ledger.record_qualification_type("local", "crowdkit study teststudy", "study", "QSTUDY")
    turk.fail.add("associate_qualification_with_worker")
    first = run(study, turk)
    assert first.granted == 4 and len(first.fetch.errors) == 1
    assert (local_data(study) / "trials.parquet").is_file()  # the failure stopped nothing
    second = run(study, turk)
    assert second.granted == 1 and second.fetch.errors == []
    assert len(set(turk.grants)) == 5


def test_expert_qualification_holders_are_experts(study: Study, turk: FakeMTurk) -> None:
    with Ledger.open(study.db_path, write=True) as ledger:
        ledger.record_qualification_type("local", "lab experts", "expert", "QEXPERT")
    turk.qualified["QEXPERT"] = ["AGOOD2"]
    result = run(study, turk)
    levels = {r.worker_id: (r.expert_level, r.expert_source) for r in result.dataset.records}
    assert levels["AGOOD2"] == ("expert", "qualification")
    assert levels["AGOOD3"] == ("lay", "qualification+questionnaire")


def test_a_failing_hit_is_reported_and_the_others_still_collected(study: Study,
                                                                  turk: FakeMTurk) -> None:
    turk.fail.add("list_assignments_for_hit")
    result = collect(study, mturk(study, turk))
    assert len(result.fetch.errors) == 1 and "ServiceUnavailable" in result.fetch.errors[0]
    assert any(line.startswith("HIT") for line in result.warnings)
    assert result.fetch.new == 6 - len([a for a in turk.assignments.values()
                                        if a["HITId"] == "HIT0000"])


def test_collect_takes_the_write_lock(study: Study, turk: FakeMTurk) -> None:
    with (Ledger.open(study.db_path, write=True, command="crowdkit publish"),
          pytest.raises(LedgerBusy, match="crowdkit publish")):
        run(study, turk)


def test_collect_without_hits_says_to_publish(tmp_path: Path) -> None:
    study = designed_study(tmp_path / "bare")
    with pytest.raises(CrowdkitError, match="crowdkit publish"):
        run(study, FakeMTurk())


def test_watch_polls_until_every_hit_is_done(study: Study) -> None:
    keys = task_keys(study)
    fake = FakeMTurk(page_size=100)
    arrivals = [(hit, f"AW{hit[-1]}{n}") for hit in HITS.values() for n in range(3)]
    polls: list[float] = []

    def sleep(seconds: float) -> None:
        polls.append(seconds)
        for _ in range(4):  # four more workers submit between polls
            if arrivals:
                hit, worker = arrivals.pop(0)
                task = next(t for t, h in HITS.items() if h == hit)
                fake.add(hit, worker, payload(keys[task]))

    result = run(study, fake, watch=True, interval=5, sleep=sleep)
    assert polls == [5, 5, 5]
    assert len(result.dataset.records) == 12
    with Ledger.open(study.db_path) as ledger:
        assert hits_done(ledger) == (12, 12, True)


def test_expired_hits_count_as_done(tmp_path: Path) -> None:
    study = designed_study(tmp_path / "expired")
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    add_hits(study, {"t0000": "HITX"}, expiration=past)
    with Ledger.open(study.db_path) as ledger:
        assert hits_done(ledger) == (0, 3, True)


def test_auto_approval_deadlines_are_warned_about(study: Study) -> None:
    keys = task_keys(study)
    fake = FakeMTurk()
    soon = datetime.now(UTC) + timedelta(hours=5)
    fake.add("HIT0000", "AW1", payload(keys["t0000"]), auto_approval=soon)
    fake.add("HIT0001", "AW2", payload(keys["t0001"]),
             auto_approval=datetime.now(UTC) + timedelta(days=3))
    lines = collect(study, mturk(study, fake)).warnings
    assert len(lines) == 1 and "1 submitted assignment will be approved" in lines[0]
    with Ledger.open(study.db_path) as ledger:
        assert auto_approval_warnings(ledger, within_hours=100) != []
        assert auto_approval_warnings(ledger, within_hours=1) == []


def test_collect_once_reports_what_it_wrote(study: Study, turk: FakeMTurk) -> None:
    with Ledger.open(study.db_path, write=True) as ledger:
        result = collect_once(study, ledger, mturk(study, turk))
    assert {p.name for p in result.written} == {"trials.csv", "trials.parquet",
                                                "participants.csv", "codebook.md",
                                                "codebook.json"}
    assert "6 assignments (6 new" in result.summary()
