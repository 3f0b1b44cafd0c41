"""Analysis of one target: a study's [mturk] target by default, another with --target,
never several pooled without saying so, and the target named in the facts and the report."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from crowdkit import analysis
from crowdkit.collect import collect
from crowdkit.errors import ConfigError, CrowdkitError
from crowdkit.study import Study
from tests.collect_helpers import FakeMTurk, add_hits, payload, study_with_hits, task_keys
from tests.test_targets import both_targets, platform


@pytest.fixture
def study(tmp_path: Path) -> Study:
    study = study_with_hits(tmp_path / "study")  # local HITs HIT0000 ... HIT0003
    add_hits(study, {"t0000": "SBX0000", "t0001": "SBX0001"}, target="sandbox")
    return study


def test_analysis_uses_the_studys_target_and_says_which(study: Study):
    both_targets(study)
    default = analysis.analyze_file(study.root)  # [mturk] target: local
    assert default.facts.targets == ["local"] and default.participants["included"] >= 1
    assert default.source.endswith("data/local/trials.parquet")
    live_like = analysis.analyze_file(study.root, target="sandbox")
    assert live_like.facts.targets == ["sandbox"]
    counts = live_like.participants  # only the two sandbox workers, never the simulated
    assert counts["included"] + counts["excluded"] == 2
    assert default.participants["included"] + default.participants["excluded"] == 3
    assert "target sandbox" in " ".join(live_like.facts.lines())
    report = analysis.write_report(live_like, study.root / "report")
    assert "target sandbox" in report.read_text()


def test_a_target_without_data_names_the_ones_that_have_some(study: Study, tmp_path: Path):
    keys = task_keys(study)
    sandbox = FakeMTurk()
    sandbox.add("SBX0000", "AREAL1", payload(keys["t0000"]))
    collect(study, platform(study, sandbox, "sandbox"))
    with pytest.raises(CrowdkitError, match="no trials of the local target; the study has data "
                                            "for sandbox: pass --target sandbox"):
        analysis.analyze_file(study.root)


def test_a_pooled_file_is_refused_unless_a_target_is_chosen(study: Study, tmp_path: Path):
    both_targets(study)
    pooled = pd.concat([pd.read_parquet(study.data_dir / t / "trials.parquet")
                        for t in ("local", "sandbox")])
    path = tmp_path / "pooled.parquet"
    pooled.to_parquet(path)
    with pytest.raises(ConfigError, match="several targets \\(local, sandbox\\); pass --target"):
        analysis.analyze_file(path)
    chosen = analysis.analyze_file(path, target="sandbox")
    assert chosen.facts.targets == ["sandbox"]
    assert chosen.notes[0].startswith("only the sandbox target's rows are analysed")


def test_an_older_pooled_data_folder_is_read_for_the_studys_target(study: Study):
    both_targets(study)
    pooled = pd.concat([pd.read_parquet(study.data_dir / t / "trials.parquet")
                        for t in ("local", "sandbox")])
    for target in ("local", "sandbox"):
        for path in (study.data_dir / target).iterdir():
            path.unlink()
        (study.data_dir / target).rmdir()
    pooled.to_parquet(study.data_dir / "trials.parquet")  # as collect wrote it before
    result = analysis.analyze_file(study.root)
    assert result.facts.targets == ["local"]
    assert "rows of sandbox" in result.notes[0]
