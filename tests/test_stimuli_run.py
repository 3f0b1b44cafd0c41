"""A long `crowdkit stimuli` as a researcher meets it: what it will do and how long it will
take said before it starts, progress a batch job's log can show, Ctrl-C that says what was
kept, and a warning for units whose stimuli do not separate."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from crowdkit.manifest import load_manifest
from crowdkit.progress import Logged
from crowdkit.stimuli import render_study_stimuli
from crowdkit.study import load_study
from stimgen.job import StimuliPlan, overlap_warnings
from tests.factories import interruptible, make_manifest
from tests.test_stimgen_pipeline import RecordingProgress, make_study_dir, no_downloads

__all__ = ["no_downloads"]  # the autouse fixture: no weights are downloaded here either

ROOT = Path(__file__).resolve().parents[1]


class Stop(Exception):
    """Raised from on_plan to end a rendering once its plan is known."""


def test_the_plan_is_told_before_any_work_and_a_rerun_says_everything_is_reused(tmp_path):
    root = make_study_dir(tmp_path / "study")
    events: list[object] = []
    progress = RecordingProgress()

    def recording(description: str, total: int):
        events.append(description)
        return progress(description, total)

    render_study_stimuli(load_study(root), progress=recording, on_plan=events.append)
    plan = events[0]
    assert isinstance(plan, StimuliPlan), events
    assert all(isinstance(e, str) for e in events[1:])
    assert (plan.device, plan.units, plan.random_units) == ("cpu", 3, 1)
    assert (plan.dataset_images, plan.scan_images, plan.natural_units) == (14, 14, 3)
    assert (plan.synthetic_targets, plan.steps, plan.image_size) == (6, 3, 32)
    assert plan.estimate_s is not None and plan.estimate_s > 0
    text = "\n".join(plan.lines())
    assert "about to render on cpu: inceptionv1, weights random" in text
    assert "6 unit-directions to render (2 images of 32 px, 3 steps each)" in text
    assert "estimated time: about 0:" in text and "images/s scanned" in text
    assert any(w.startswith("random weights:") for w in plan.warnings)

    again: list[StimuliPlan] = []
    render_study_stimuli(load_study(root), on_plan=again.append)
    assert (again[0].scan_images, again[0].natural_units, again[0].synthetic_targets) == (
        0, 0, 0)
    assert again[0].estimate_s is None
    assert "everything is reused from an earlier run" in again[0].lines()


def test_the_papers_preset_on_a_cpu_is_warned_before_it_starts(tmp_path):
    root = make_study_dir(tmp_path / "study")
    toml = (root / "study.toml").read_text().replace("[stimuli.synthetic]\n",
                                                     '[stimuli.synthetic]\npreset = "iclr2021"\n')
    (root / "study.toml").write_text(toml)
    plans: list[StimuliPlan] = []

    def stop(plan: StimuliPlan) -> None:
        plans.append(plan)
        raise Stop

    with pytest.raises(Stop):
        render_study_stimuli(load_study(root), on_plan=stop, estimate=False)
    [warning] = [w for w in plans[0].warnings if w.startswith("no GPU found")]
    assert "preset iclr2021" in warning and "many hours" in warning
    assert "'cpu'" in warning  # the study asked for the CPU itself
    assert not (root / "stimuli" / "manifest.json").exists()


def test_a_batch_jobs_log_gets_plain_progress_lines_and_the_warnings(tmp_path):
    root = make_study_dir(tmp_path / "study")
    run = subprocess.run([sys.executable, "-m", "crowdkit", "stimuli", str(root)],
                         capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert run.returncode == 0, run.stderr
    out = run.stdout.splitlines()
    assert out[0].startswith("about to render on cpu")
    assert any(line.startswith("estimated time: about") for line in out)
    started = out.index("scanning 3 units: 0/14")
    assert started > 0 and any(line.startswith("scanning 3 units: 14/14, done in")
                               for line in out)
    assert any(line.startswith("rendering 6 unit-directions: 18/18, done in") for line in out)
    assert "warning: random weights:" in run.stderr.splitlines()[0]
    for warning in overlap_warnings(load_manifest(root / "stimuli" / "manifest.json")):
        assert f"warning: {warning}" in run.stderr


def test_logged_progress_says_done_total_and_time_left(caplog):
    now = [0.0]
    progress = Logged(logging.getLogger("test.progress"), every_s=10, clock=lambda: now[0])
    with (caplog.at_level(logging.INFO, logger="test.progress"),
          progress("rendering", total=100) as advance):
        now[0] = 5.0
        advance(10)  # within ten seconds of the first line: not logged
        now[0] = 20.0
        advance(30)
        now[0] = 50.0
        advance(60)
    assert [r.getMessage() for r in caplog.records] == [
        "rendering: 0/100", "rendering: 40/100, 0:30 left", "rendering: 100/100, done in 0:50"]


def test_ctrl_c_says_what_was_kept_and_how_to_resume_and_exits_130(tmp_path):
    root = make_study_dir(tmp_path / "study", steps=4000)  # long enough to interrupt
    process = subprocess.Popen([sys.executable, "-m", "crowdkit", "stimuli", str(root),
                                "--no-estimate"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, cwd=ROOT,
                               preexec_fn=interruptible)
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("rendering 6 unit-directions: 0/"):
            break
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=300)
    assert process.returncode == 130, err
    lines = err.strip().splitlines()
    assert lines[-2].startswith("interrupted; kept: natural exemplars of 3 units; "
                                "feature visualizations of 0 of 6 unit-directions")
    assert lines[-1] == f"run `crowdkit stimuli {root}` again to continue where it stopped"
    assert "Traceback" not in err
    assert not (root / "stimuli" / "manifest.json").exists()


def test_units_whose_stimuli_do_not_separate_are_named_with_their_contact_sheet(tmp_path):
    manifest = make_manifest(tmp_path / "stimuli", n_units=2)  # equal synthetic activations
    manifest.parameters["contact_sheets"] = {"3a:0": "contact_sheets/3a-0.png"}
    warnings = overlap_warnings(manifest)
    assert len(warnings) == 2
    assert warnings[0].startswith("unit 3a:0: its feature visualizations do not separate: "
                                  "max images mean 4.50, min images mean 4.50")
    assert "look at stimuli/contact_sheets/3a-0.png" in warnings[0]
    assert "natural exemplars" not in " ".join(warnings)  # those are 100 apart

    for unit in manifest.units:
        assert unit.synthetic is not None
        for ref in unit.synthetic.max:
            ref.activation = (ref.activation or 0) + 20
    assert overlap_warnings(manifest) == []

    dead = manifest.units[1].natural.batches[0]
    dead.max[0].activation = dead.min[-1].activation  # a unit that never responds
    [warning] = overlap_warnings(manifest)
    assert warning.startswith("unit 4a:1: its natural exemplars do not separate")
