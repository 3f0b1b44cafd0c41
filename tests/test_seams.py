"""The three seams: a new reference source, trial types and crowd platforms plug in.

A made-up explanation method ("saliency") brings its images through the manifest and one
registration; it then runs through design, a dry-run publish and analysis like the paper's
conditions, without any other change.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crowdkit import analysis, sources
from crowdkit.collect import collect
from crowdkit.design import design_for, design_study
from crowdkit.errors import ConfigError
from crowdkit.ledger import Ledger
from crowdkit.manifest import ImageSet, MethodInfo, load_manifest, write_manifest
from crowdkit.platforms import PLATFORMS
from crowdkit.platforms.base import Platform
from crowdkit.platforms.mturk import MTurk
from crowdkit.publish import publish
from crowdkit.study import load_study
from crowdkit.trials import registry
from crowdkit.trials.base import TrialType
from tests.collect_helpers import QUALITY_TOML, FakeMTurk, add_hits, payload
from tests.factories import _image, make_study, mturk


@pytest.fixture
def saliency_study(tmp_path: Path):
    """A study whose conditions are natural exemplars and a made-up method's images."""
    root = make_study(tmp_path / "s", conditions='["natural", "saliency"]', tasks=4)
    (root / "study.toml").write_text((root / "study.toml").read_text() + QUALITY_TOML)
    stimuli = root / "stimuli"
    manifest = load_manifest(stimuli / "manifest.json")
    manifest.methods["saliency"] = MethodInfo(label="saliency maps", color="#117733")
    for unit in manifest.units:
        unit.references["saliency"] = ImageSet(
            max=[_image(stimuli, f"saliency/{unit.channel}/max_{i}.png", float(i))
                 for i in range(9)],
            min=[_image(stimuli, f"saliency/{unit.channel}/min_{i}.png", float(i))
                 for i in range(9)])
    write_manifest(manifest, stimuli / "manifest.json")
    yield load_study(root)
    sources.unregister("saliency")


def test_a_made_up_method_runs_through_design_publish_and_analysis(saliency_study):
    study = saliency_study
    manifest = load_manifest(study.manifest_path)
    design = design_for(study)
    assert sources.get("saliency").label == "saliency maps"  # registered from the manifest

    # design: the method's trials show its own images, and nothing else does
    saliency_paths = {study.stimuli_dir / r.path for u in manifest.units
                      for r in [*u.references["saliency"].max, *u.references["saliency"].min]}
    shown = {c: set() for c in ("natural", "saliency")}
    for task in design.tasks:
        for trial, key in zip(task.public.trials, task.key.trials, strict=True):
            if key.phase == "main":
                refs = [*trial.references.left, *trial.references.right]
                shown[key.condition] |= {design.images[k] for k in refs}
    assert shown["saliency"] and shown["saliency"] <= saliency_paths
    assert not shown["natural"] & saliency_paths
    assert {t.key.condition_order[0] for t in design.tasks} == {"natural", "saliency"}

    # a dry-run publish renders its pages, with the condition in the page data
    design_study(study)
    result = publish(study, MTurk(study.config, "sandbox"), dry_run=True)
    assert result.hits_total == 4
    conditions = set()
    for page in (study.root / "dry-run").glob("*.html"):
        data = page.read_text().split('id="task-data">', 1)[1].split("</script>", 1)[0]
        conditions |= {t["cond"] for t in json.loads(data)["trials"]}
    assert conditions == {"natural", "saliency"}

    # answers come back, and analysis reports the method beside natural exemplars
    add_hits(study, {t.key.task_id: f"HIT{i:04d}" for i, t in enumerate(design.tasks)})
    fake = FakeMTurk(page_size=100)
    with Ledger.open(study.db_path) as ledger:
        keys = {t.key.task_id: t.key for t in ledger.tasks()}
    for i, (_task_id, key) in enumerate(sorted(keys.items())):
        fake.add(f"HIT{i:04d}", f"AWORKER{i}", payload(key, correct=True))
    collect(study, mturk(study, fake))
    result = analysis.analyze_file(study.root)
    summary = {row["condition"]: row for row in analysis.records(result.summary)
               if row["expert_level"] == "all"}
    assert list(summary) == ["natural", "saliency"]
    assert summary["saliency"]["accuracy"] == 1.0
    assert analysis.condition_color("saliency", ["natural", "saliency"]) == "#117733"


def test_an_unknown_condition_names_the_known_ones(tmp_path: Path):
    root = make_study(tmp_path / "s", conditions='["natural", "gradcam"]')
    with pytest.raises(ConfigError, match="unknown condition 'gradcam'.*natural"):
        design_for(load_study(root))


def test_every_registered_trial_type_provides_its_page_part():
    for name in registry.names():
        trial_type = registry.get(name)
        assert isinstance(trial_type, TrialType) and trial_type.name == name
        for part in ("screen.html", "trial.js"):
            assert (trial_type.template_dir / part).is_file(), (name, part)


def test_every_platform_implements_the_protocol():
    import importlib
    import inspect

    wanted = {name for name, member in inspect.getmembers(Platform)
              if not name.startswith("_") and callable(member)}
    for name, path in PLATFORMS.items():
        module, _, cls = path.partition(":")
        platform = getattr(importlib.import_module(module), cls)
        missing = {m for m in wanted if not callable(getattr(platform, m, None))}
        assert missing == set(), (name, missing)
