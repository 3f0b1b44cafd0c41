"""End to end against the local service: simulated workers -> collect -> review, over HTTP."""

from __future__ import annotations

import random
import statistics
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from crowdkit.cli import app
from crowdkit.collect import collect, parse_answer
from crowdkit.errors import CrowdkitError
from crowdkit.ledger import Ledger
from crowdkit.localturk import LocalTurk
from crowdkit.payload import Payload
from crowdkit.review import review
from crowdkit.simulate import (
    EXPERIENCED,
    SimulationSettings,
    WorkerSite,
    answer_task,
    oracle,
    page_task,
    simulate,
)
from crowdkit.store import LocalStore
from crowdkit.study import load_study
from tests.collect_helpers import answer_xml, designed_study, task_keys
from tests.factories import mturk


@pytest.fixture
def world(tmp_path: Path):
    """A designed study published by `crowdkit publish` to a running LocalTurk (4 HITs x 3
    assignments, with the study's participation qualification)."""
    from crowdkit.publish import publish

    study = designed_study(tmp_path / "study", assignments=3)
    with study.toml_path.open("a") as f:
        f.write('\n[review]\nbonus = "0.20"\nbonus_rule = "passing"\n')
    with LocalTurk(tmp_path / "turk.db", port=0) as turk:
        with study.toml_path.open("a") as f:
            f.write(f'\n[mturk]\nlocal_endpoint = "{turk.base_url}"\n')
        study = load_study(study.root)
        publish(study, mturk(study, turk.boto3_client()), yes=True,
                store=LocalStore(turk.files_dir, turk.base_url))
        yield study, turk


def test_simulated_crowd_collected_judged_and_reviewed(world) -> None:
    study, turk = world
    settings = SimulationSettings(participants=12, careless=3, fraudulent=3, seed=3,
                                  accuracy={"natural": 1.0, "synthetic": 0.0},
                                  catch_accuracy=1.0)
    sim = simulate(study, settings, endpoint=turk.base_url)
    assert len(sim.submitted) == 12 and sim.no_hit == []
    kinds = {a.assignment_id: a.kind for a in sim.submitted}

    client = turk.boto3_client()
    result = collect(study, mturk(study, client))
    records = {r.assignment_id: r for r in result.dataset.records}
    assert set(records) == set(kinds)
    for assignment_id, kind in kinds.items():
        rec = records[assignment_id]
        if kind == "careful":
            assert rec.parsed.valid and not rec.excluded, (kind, rec.reasons)
        elif kind in ("same-side", "fast", "catch-fail"):
            assert rec.parsed.valid and rec.excluded, kind
            expected = {"same-side": "response_variety", "fast": "fast_responses",
                        "catch-fail": "catch_accuracy"}[kind]
            assert expected in rec.reasons, (kind, rec.reasons)
        else:
            assert not rec.parsed.valid and rec.reasons == ["valid_answer"], kind

    # Accuracy per condition is what was put in: careful workers always right on natural
    # trials and always wrong on synthetic ones; catch trials always right.
    trials = pd.read_parquet(study.target_data_dir("local") / "trials.parquet")
    careful = trials[trials.assignment_id.isin(
        [a for a, k in kinds.items() if k == "careful"])]
    main = careful[careful.phase == "main"]
    assert main[main.condition == "natural"].correct.all()
    assert not main[main.condition == "synthetic"].correct.any()
    assert careful[careful.phase == "catch"].correct.all()
    assert (careful.rt_ms > 250).all()

    # Everyone who took part now holds the study's qualification in the service.
    with Ledger.open(study.db_path) as ledger:
        qual = ledger.study_qualification_type_id("local")
    holders = {q["WorkerId"] for q in client.list_workers_with_qualification_type(
        QualificationTypeId=qual, MaxResults=100)["Qualifications"]}
    assert holders == {a.worker_id for a in sim.submitted}

    # Review: fraud rejected, the rest approved, passing workers paid, all in the service.
    outcome = review(study, mturk(study, client))
    assert outcome.rejected == 3 and outcome.approved == 9
    assert outcome.bonuses == sum(1 for a, k in kinds.items() if k == "careful")
    for assignment_id, kind in kinds.items():
        status = client.get_assignment(AssignmentId=assignment_id)["Assignment"][
            "AssignmentStatus"]
        assert status == ("Approved" if kind in ("careful", "same-side", "fast", "catch-fail")
                          else "Rejected")
    assert review(study, mturk(study, client)) is None


def test_simulated_payloads_are_what_the_page_submits(world) -> None:
    study, turk = world
    site = WorkerSite(turk.base_url)
    site.set_profile("ASIMCHECK1", "US", EXPERIENCED)  # meets the study's requirements
    hits = site.hits("ASIMCHECK1")
    assignment = site.accept("ASIMCHECK1", hits[0]["HITId"])
    task = page_task(site.page(assignment["QuestionURL"]))
    with Ledger.open(study.db_path) as ledger:
        truth = oracle(ledger.tasks())
    keys = task_keys(study)
    data = answer_task(task, truth, "careful", SimulationSettings(), random.Random(0))
    # The page's task is the public task; the payload parses cleanly against the key.
    assert [t["id"] for t in task["trials"]] == [t.trial_id for t in
                                                 keys[task["task"]].trials]
    Payload.model_validate(data, strict=True)
    assert parse_answer(answer_xml(data), keys[task["task"]]).valid


def test_reaction_times_are_realistic_and_careless_kinds_behave() -> None:
    task = {"task": "t0", "settings": {"attempts": 3}, "trials": [
        {"id": f"x{i}", "phase": "test", "cond": "natural"} for i in range(400)]}
    truth = {f"x{i}": "top" if i % 2 else "bottom" for i in range(400)}
    careful = answer_task(task, truth, "careful", SimulationSettings(), random.Random(1))
    rts = [t["rt_ms"] for t in careful["trials"]]
    assert 3000 < statistics.median(rts) < 5000 and min(rts) >= 250
    accuracy = statistics.mean(t["response"] == truth[t["trial_id"]] for t in careful["trials"])
    assert 0.85 < accuracy < 0.95  # natural: 0.9 by default
    same = answer_task(task, truth, "same-side", SimulationSettings(), random.Random(1))
    assert {t["response"] for t in same["trials"]} == {"top"}
    fast = answer_task(task, truth, "fast", SimulationSettings(), random.Random(1))
    assert max(t["rt_ms"] for t in fast["trials"]) < 300


def test_more_careless_and_fraudulent_than_participants_is_refused() -> None:
    with pytest.raises(CrowdkitError, match="more than"):
        SimulationSettings(participants=2, careless=2, fraudulent=1).kinds()


def test_the_commands_run_the_whole_loop(world) -> None:
    study, turk = world
    runner = CliRunner()
    out = runner.invoke(app, ["simulate", str(study.root), "--participants", "5",
                              "--fraudulent", "1", "--seed", "9"])
    assert out.exit_code == 0, out.output
    assert "5 simulated participants submitted" in out.output
    out = runner.invoke(app, ["collect", str(study.root)])
    assert out.exit_code == 0, out.output
    assert "5 assignments (5 new" in out.output and "1 invalid" in out.output
    assert (study.target_data_dir("local") / "participants.csv").is_file()
    out = runner.invoke(app, ["review", str(study.root), "--dry-run"])
    assert out.exit_code == 0 and "approve 4, reject 1" in out.output, out.output
    out = runner.invoke(app, ["review", str(study.root), "--yes"])
    assert out.exit_code == 0 and "approved 4, rejected 1" in out.output, out.output
    out = runner.invoke(app, ["review", str(study.root), "--yes"])
    assert out.exit_code == 0 and "nothing was done" in out.output, out.output
    again = runner.invoke(app, ["collect", str(study.root)])
    assert "0 new, 5 changed" in again.output  # the approvals and the rejection


def test_published_study_participants_cannot_come_back(world) -> None:
    """Once collect has granted the study's qualification, the same workers no longer see
    the study's HITs (though slots are left)."""
    study, turk = world
    client = turk.boto3_client()
    settings = SimulationSettings(participants=3, seed=5)
    first = simulate(study, settings, endpoint=turk.base_url)
    assert len(first.submitted) == 3
    result = collect(study, mturk(study, client))
    assert result.granted == 3
    assert all(r.parsed.valid and not r.excluded for r in result.dataset.records)
    again = simulate(study, settings, endpoint=turk.base_url)  # the same three workers
    assert again.submitted == [] and len(again.no_hit) == 3
