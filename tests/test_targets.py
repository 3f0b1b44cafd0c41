"""Each target's data apart: collect writes data/<target>/, analysis reads one target and
says which, the report shows it; exports are safe to open; a pass whose calls failed exits
non-zero; a worker is marked as a participant as soon as their answer is seen."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

from crowdkit import analysis
from crowdkit.collect import collect
from crowdkit.errors import CrowdkitError
from crowdkit.ledger import Ledger
from crowdkit.platforms.mturk import MTurk
from crowdkit.study import Study
from tests.collect_helpers import FakeMTurk, add_hits, payload, study_with_hits, task_keys


@pytest.fixture
def study(tmp_path: Path) -> Study:
    study = study_with_hits(tmp_path / "study")  # local HITs HIT0000 ... HIT0003
    add_hits(study, {"t0000": "SBX0000", "t0001": "SBX0001"}, target="sandbox")
    return study


def platform(study: Study, fake: FakeMTurk, target: str) -> MTurk:
    return MTurk(study.config, target, client=fake)


def both_targets(study: Study) -> tuple[FakeMTurk, FakeMTurk]:
    keys = task_keys(study)
    local, sandbox = FakeMTurk(), FakeMTurk()
    for i, worker in enumerate(("ASIM1", "ASIM2", "ASIM3")):
        local.add(f"HIT000{i}", worker, payload(keys[f"t000{i}"]))
    sandbox.add("SBX0000", "AREAL1", payload(keys["t0000"], correct=False), assignment_id="S1")
    sandbox.add("SBX0001", "AREAL2", payload(keys["t0001"], correct=False), assignment_id="S2")
    collect(study, platform(study, local, "local"))
    collect(study, platform(study, sandbox, "sandbox"))
    return local, sandbox


def test_each_target_has_its_own_files(study: Study):
    both_targets(study)
    local = pd.read_parquet(study.data_dir / "local" / "trials.parquet")
    sandbox = pd.read_parquet(study.data_dir / "sandbox" / "trials.parquet")
    assert set(local["target"]) == {"local"} and local["assignment_id"].nunique() == 3
    assert set(sandbox["target"]) == {"sandbox"} and sandbox["assignment_id"].nunique() == 2
    people = pd.read_csv(study.data_dir / "sandbox" / "participants.csv")
    assert set(people["target"]) == {"sandbox"} and len(people) == 2
    assert not (study.data_dir / "trials.parquet").exists()  # nothing pooled


def test_collect_on_sandbox_never_needs_the_local_service(study: Study):
    keys = task_keys(study)
    sandbox = FakeMTurk()
    sandbox.add("SBX0000", "AREAL1", payload(keys["t0000"]))
    text = (study.root / "study.toml").read_text()
    (study.root / "study.toml").write_text(text + '\n[mturk]\nlocal_endpoint = '
                                           '"http://127.0.0.1:9"\n')  # nothing answers there
    from crowdkit.study import load_study

    result = collect(load_study(study.root), platform(study, sandbox, "sandbox"))
    assert len(result.dataset.records) == 1 and result.failures == []


def test_a_target_without_hits_is_one_line(tmp_path: Path):
    study = study_with_hits(tmp_path / "study")
    with pytest.raises(CrowdkitError, match="no HITs on live; this study has HITs on local: "
                                            "pass --target local"):
        collect(study, platform(study, FakeMTurk(), "live"))


# ----------------------------------------------------------------------- safe exports


def test_csv_cells_cannot_become_formulas_and_parquet_keeps_the_text(study: Study):
    keys = task_keys(study)
    fake = FakeMTurk()
    texts = {"AW1": '=HYPERLINK("http://x","y")', "AW2": "+1 great", "AW3": "@cmd",
             "AW4": "-2 stars\x00", "AW5": "\tindented", "AW6": "<img src=x onerror=alert(1)>"}
    for i, (worker, text) in enumerate(texts.items()):
        data = payload(keys[f"t000{i % 4}"])
        data["questionnaire"]["feedback"] = text
        fake.add(f"HIT000{i % 4}", worker, data)
    result = collect(study, platform(study, fake, "local"))
    assert all(r.parsed.valid for r in result.dataset.records)
    raw = (study.data_dir / "local" / "participants.csv").read_text()
    assert "\x00" not in raw
    table = pd.read_csv(study.data_dir / "local" / "participants.csv", keep_default_na=False)
    feedback = dict(zip(table["assignment_id"], table["feedback"], strict=True))
    cells = set(feedback.values())
    assert "'=HYPERLINK(\"http://x\",\"y\")" in cells and "'+1 great" in cells
    assert "'@cmd" in cells and "'-2 stars" in cells and "'\tindented" in cells
    assert "<img src=x onerror=alert(1)>" in cells  # markup is text: inert in a spreadsheet
    assert not any(c.startswith(("=", "+", "-", "@", "\t", "\r")) for c in cells)
    trials = pd.read_csv(study.data_dir / "local" / "trials.csv")
    assert pd.api.types.is_float_dtype(trials["rt_ms"])  # numbers stay numbers


def test_markup_stays_inert_in_the_report(tmp_path: Path):
    rows = [(f"<img src=x onerror=alert({i})>", "natural" if i % 2 else "<b>synthetic</b>",
             "main", bool(i % 3)) for i in range(12)]
    frame = pd.DataFrame(rows, columns=["participant_id", "condition", "phase", "correct"])
    frame["exclusion_reasons"] = "<script>alert(1)</script>"
    result = analysis.analyze(analysis.normalize_trials(frame))
    html = analysis.write_report(result, tmp_path / "report").read_text()
    assert "<img src=x" not in html and "<script>alert" not in html and "<b>synthetic" not in html
    assert "&lt;b&gt;synthetic&lt;/b&gt;" in html


# ----------------------------------------------------------------------- failures and grants


def test_failed_listings_make_collect_exit_non_zero(study: Study, monkeypatch, capsys):
    keys = task_keys(study)
    fake = FakeMTurk()
    fake.add("HIT0000", "AW1", payload(keys["t0000"]))
    fake.fail.add("list_assignments_for_hit")  # the first HIT's listing fails after retries
    import crowdkit.cli as cli

    monkeypatch.setattr(cli, "_platform", lambda s, target: MTurk(s.config, "local",
                                                                  client=fake))
    monkeypatch.setattr(sys, "argv", ["crowdkit", "collect", str(study.root), "--no-progress"])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == 4
    err = capsys.readouterr().err
    assert "warning: HIT HIT0000: listing assignments failed" in err
    assert f"run `crowdkit collect {study.root}` again to do the rest" in err
    # the next run, with the platform answering again, finishes and exits 0
    monkeypatch.setattr(sys, "argv", ["crowdkit", "collect", str(study.root), "--no-progress"])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == 0


def test_workers_are_marked_as_their_page_comes_in(study: Study):
    with Ledger.open(study.db_path, write=True) as ledger:
        ledger.record_qualification_type("local", "crowdkit:teststudy", "study", "QSTUDY")
    keys = task_keys(study)
    fake = FakeMTurk(page_size=1)
    fake.add("HIT0000", "AFIRST", payload(keys["t0000"]))
    fake.add("HIT0001", "ASECOND", payload(keys["t0001"]))
    collect(study, platform(study, fake, "local"))
    calls = [(name, kwargs.get("HITId") or kwargs.get("WorkerId")) for name, kwargs in fake.calls
             if name in ("list_assignments_for_hit", "associate_qualification_with_worker")]
    first_grant = calls.index(("associate_qualification_with_worker", "AFIRST"))
    second_listing = calls.index(("list_assignments_for_hit", "HIT0001"))
    assert first_grant < second_listing  # granted before the next HIT was even listed
    assert sorted(fake.grants) == [("QSTUDY", "AFIRST"), ("QSTUDY", "ASECOND")]
