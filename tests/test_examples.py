"""The shipped examples: the paper's Experiment I designs, renders and prices as documented."""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path

from crowdkit.examples import init_study
from crowdkit.platforms.mturk import MTurk
from crowdkit.publish import publish
from crowdkit.study import load_study
from tests.factories import make_manifest

# What examples/iclr2021-exp1/study.toml says in its [hit] comments.
ICLR_EXPECTED_TOTAL = Decimal("168.00")


def test_iclr2021_example_dry_run_prints_its_expected_cost_and_fits_mturk(tmp_path: Path):
    root = tmp_path / "exp1"
    init_study(root, "iclr2021-exp1")
    # the paper's 68 units (45 main, 20 practice and catch, 3 rated); 2 batches suffice
    with (Path(__file__).parent / "data" / "iclr2021_experiment_I_units.csv").open() as f:
        ids = [row["unit"] for row in csv.DictReader(f)]
    make_manifest(root / "stimuli", n_batches=2, unit_ids=ids)
    study = load_study(root)
    lines: list[str] = []
    result = publish(study, MTurk(study.config, "sandbox"), dry_run=True, on_plan=lines.extend)
    text = "\n".join(lines)

    assert result.hits_total == 40
    assert result.cost.total == ICLR_EXPECTED_TOTAL
    assert "$    168.00" in text and "$    140.00" in text  # total, and the rewards
    questions = sorted((root / "dry-run").glob("*.xml"))
    assert len(questions) == 40 and len(list((root / "dry-run").glob("*.html"))) == 40
    assert max(len(q.read_bytes()) for q in questions) < 65_536
    assert "ICLR_EXPECTED_TOTAL" not in (root / "study.toml").read_text()
    assert "$168.00" in (root / "study.toml").read_text()
