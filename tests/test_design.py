"""Trial design: the paper's trial, balance, determinism and no answer leakage."""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from functools import cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageChops

from crowdkit.design import design_study, design_tasks, tagged_copy
from crowdkit.errors import ConfigError, CrowdkitError
from crowdkit.ledger import Ledger
from crowdkit.manifest import load_manifest
from crowdkit.study import StudyConfig, load_study, parse_study_toml
from tests.factories import STUDY_TOML, make_manifest, make_study

_CACHE_DIR = Path(tempfile.mkdtemp(prefix="crowdkit-design-"))


@cache
def cached_manifest(n_units: int, n_batches: int):
    stimuli = _CACHE_DIR / f"u{n_units}b{n_batches}"
    return make_manifest(stimuli, n_units=n_units, n_batches=n_batches), stimuli


def config(**kw: object) -> StudyConfig:
    values = dict(name="s", seed=1, conditions='["natural", "synthetic"]', assignment="between",
                  reference_mode="min+max", n_references=9, tasks=4, trials=8, catch=2,
                  practice=2, assignments=1)
    values.update(kw)
    return parse_study_toml(STUDY_TOML.format(**values))


def run_design(n_units: int = 6, n_batches: int = 3, **kw: object):
    manifest, stimuli = cached_manifest(n_units, n_batches)
    cfg = config(**kw)
    return cfg, manifest, stimuli, design_tasks(cfg, manifest, stimuli, stimuli / "catch")


def path_of(design, stimuli: Path, key: str) -> str:
    return str(design.images[key].relative_to(stimuli))


# -- the paper's trial ------------------------------------------------------------------


def test_paper_trial_uses_ranks_0_to_8_and_1_to_9_as_references_and_extremes_as_queries():
    cfg, manifest, stimuli, design = run_design(conditions='["natural"]', catch=0, practice=0)
    for task in design.tasks:
        for trial, key in zip(task.public.trials, task.key.trials, strict=True):
            batch = f"u{key.channel}/b{key.batch}"
            right = [path_of(design, stimuli, k) for k in trial.references.right]
            left = [path_of(design, stimuli, k) for k in trial.references.left]
            assert right == [f"{batch}/max_{r}.png" for r in range(9)]  # max on the right
            assert left == [f"{batch}/min_{r}.png" for r in range(1, 10)]
            top = path_of(design, stimuli, trial.queries.top)
            bottom = path_of(design, stimuli, trial.queries.bottom)
            expected = {"top": f"{batch}/max_9.png", "bottom": f"{batch}/min_0.png"}
            if key.max_position == "bottom":
                expected = {"top": f"{batch}/min_0.png", "bottom": f"{batch}/max_9.png"}
            assert {"top": top, "bottom": bottom} == expected


def test_fewer_references_keep_the_ones_nearest_the_extremes():
    cfg, manifest, stimuli, design = run_design(conditions='["natural"]', n_references=3,
                                                catch=0, practice=0)
    trial, key = design.tasks[0].public.trials[0], design.tasks[0].key.trials[0]
    batch = f"u{key.channel}/b{key.batch}"
    assert [path_of(design, stimuli, k) for k in trial.references.right] == [
        f"{batch}/max_{r}.png" for r in (6, 7, 8)]
    assert [path_of(design, stimuli, k) for k in trial.references.left] == [
        f"{batch}/min_{r}.png" for r in (1, 2, 3)]
    assert key.n_references == 3


def test_synthetic_condition_shows_feature_visualizations_but_natural_queries():
    cfg, manifest, stimuli, design = run_design(conditions='["synthetic"]', catch=0, practice=0)
    trial, key = design.tasks[0].public.trials[0], design.tasks[0].key.trials[0]
    refs = [path_of(design, stimuli, k) for k in trial.references.right]
    # synthetic lists ascend like the batches: the 9 most extreme of 10 on each side
    assert refs == [f"u{key.channel}/synthetic/max_{i}.png" for i in range(1, 10)]
    left = [path_of(design, stimuli, k) for k in trial.references.left]
    assert left == [f"u{key.channel}/synthetic/min_{i}.png" for i in range(9)]
    queries = {path_of(design, stimuli, trial.queries.top),
               path_of(design, stimuli, trial.queries.bottom)}
    assert queries == {f"u{key.channel}/b{key.batch}/max_9.png",
                       f"u{key.channel}/b{key.batch}/min_0.png"}


def test_max_only_shows_one_group_and_none_shows_no_references():
    _, _, _, design = run_design(conditions='["natural"]', reference_mode="max-only",
                                 catch=0, practice=0)
    for trial in design.tasks[0].public.trials:
        assert trial.references.left == [] and len(trial.references.right) == 9
    _, _, _, design = run_design(conditions='["none"]', catch=0, practice=0)
    for trial, key in zip(design.tasks[0].public.trials, design.tasks[0].key.trials, strict=True):
        assert trial.references.left == [] and trial.references.right == []
        assert key.n_references == 0


def test_catch_query_is_a_pixel_identical_copy_of_a_shown_reference_under_a_new_key():
    _, _, stimuli, design = run_design(catch=3)
    n_catch = 0
    for task in design.tasks:
        for trial, key in zip(task.public.trials, task.key.trials, strict=True):
            if key.phase != "catch":
                continue
            n_catch += 1
            min_pos = "bottom" if key.max_position == "top" else "top"
            max_q = getattr(trial.queries, key.max_position)
            min_q = getattr(trial.queries, min_pos)
            shown = trial.references.right + trial.references.left
            assert max_q not in shown and min_q not in shown  # no URL gives it away
            assert any(_same_pixels(design.images[max_q], design.images[r])
                       for r in trial.references.right)
            assert any(_same_pixels(design.images[min_q], design.images[r])
                       for r in trial.references.left)
    assert n_catch == 3 * 4


def _same_pixels(a: Path, b: Path) -> bool:
    with Image.open(a) as ia, Image.open(b) as ib:
        return ImageChops.difference(ia.convert("RGB"), ib.convert("RGB")).getbbox() is None


def test_tagged_copy_keeps_jpeg_pixels_and_changes_bytes(tmp_path: Path):
    src = tmp_path / "a.jpg"
    Image.new("RGB", (16, 16), (200, 30, 40)).save(src, quality=90)
    copy = tmp_path / "b.jpg"
    copy.write_bytes(tagged_copy(src.read_bytes(), ".jpg", "x"))
    assert copy.read_bytes() != src.read_bytes()
    assert _same_pixels(src, copy)


# -- balance ------------------------------------------------------------------------------


design_params = st.fixed_dictionaries({
    "n_units": st.integers(3, 8),
    "n_batches": st.integers(1, 3),
    "conditions": st.sampled_from(['["natural"]', '["natural", "synthetic"]',
                                   '["none", "natural", "synthetic"]']),
    "assignment": st.sampled_from(["between", "within"]),
    "tasks": st.integers(1, 9),
    "trials": st.integers(3, 14),
    "catch": st.integers(0, 4),
    "practice": st.integers(0, 3),
    "seed": st.integers(0, 10_000),
})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(design_params)
def test_design_is_balanced(params):
    n_units, n_batches = params.pop("n_units"), params.pop("n_batches")
    cfg, manifest, _, design = run_design(n_units, n_batches, **params)
    d = cfg.design
    main_units = n_units - (1 if d.practice_trials else 0)
    assert len(design.tasks) == d.tasks

    # Conditions: between -> task counts per condition differ by at most one;
    # within -> every task has every condition, block orders counterbalanced.
    orders = Counter(tuple(t.key.condition_order) for t in design.tasks)
    if d.assignment == "between":
        per_condition = Counter(o[0] for o in orders.elements())
        counts = [per_condition.get(c, 0) for c in d.conditions]
        assert max(counts) - min(counts) <= 1
    else:
        assert all(sorted(o) == sorted(d.conditions) for o in orders)
        assert max(orders.values()) - min(orders.values(), default=0) <= 1

    # Units: per condition, every main unit appears as evenly as the counts allow.
    per_unit: dict[str, Counter[str]] = {c: Counter() for c in d.conditions}
    for task in design.tasks:
        keys = task.key.trials
        test = [k for k in keys if k.phase != "practice"]
        assert len([k for k in test if k.phase == "main"]) == d.trials_per_task
        # catch trials only in blocks that show references (never in a `none` block)
        with_refs = [c for c in task.key.condition_order if c != "none"]
        catches = [k for k in test if k.phase == "catch"]
        assert len(catches) == (d.catch_trials_per_task if with_refs else 0)
        assert all(k.condition != "none" for k in catches)
        assert [k.phase for k in keys[: len(keys) - len(test)]] == ["practice"] * d.practice_trials
        for k in test:
            if k.phase == "main":
                per_unit[k.condition][k.unit_id] += 1
        # max on top in exactly half of the test trials (for an even count)
        tops = sum(k.max_position == "top" for k in test)
        assert tops in {len(test) // 2, (len(test) + 1) // 2}
        mains = [k for k in test if k.phase == "main"]
        assert sum(k.max_position == "top" for k in mains) in {len(mains) // 2,
                                                                (len(mains) + 1) // 2}
        # a task repeats a unit within a block only when the block has more trials than units
        for block in {k.block for k in mains}:
            units = [k.unit_id for k in mains if k.block == block]
            if len(units) <= main_units:
                assert len(set(units)) == len(units)
        # practice feedback tells the truth; test trials carry none
        for trial, key in zip(task.public.trials, keys, strict=True):
            if key.phase == "practice":
                assert trial.feedback is not None
                assert trial.feedback.correct == key.max_position
            else:
                assert trial.feedback is None
    for counts in per_unit.values():
        if counts:
            seen = [counts.get(u.id, 0) for u in manifest.units
                    if u.id in {k for c in per_unit.values() for k in c}]
            assert max(seen) - min(seen) <= 1


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(design_params)
def test_catch_trials_are_spread_through_each_block(params):
    n_units, n_batches = params.pop("n_units"), params.pop("n_batches")
    _, _, _, design = run_design(n_units, n_batches, **params)
    for task in design.tasks:
        for block in {k.block for k in task.key.trials if k.phase != "practice"}:
            trials = [k for k in task.key.trials if k.phase != "practice" and k.block == block]
            catch_at = [i for i, k in enumerate(trials) if k.phase == "catch"]
            k, total = len(catch_at), len(trials)
            for j, i in enumerate(catch_at):  # catch j lies in segment j of k equal segments
                assert (j * total) // k <= i < ((j + 1) * total) // k


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(design_params)
def test_same_seed_gives_identical_tasks(params):
    n_units, n_batches = params.pop("n_units"), params.pop("n_batches")
    a = run_design(n_units, n_batches, **params)[3]
    b = run_design(n_units, n_batches, **params)[3]
    assert [t.model_dump() for t in a.tasks] == [t.model_dump() for t in b.tasks]
    assert a.design_hash == b.design_hash


def test_a_different_seed_gives_a_different_design():
    a = run_design(seed=1)[3]
    b = run_design(seed=2)[3]
    assert a.design_hash != b.design_hash


def test_within_design_counterbalances_block_order():
    _, _, _, design = run_design(assignment="within", tasks=6, trials=8, catch=2)
    orders = Counter(tuple(t.key.condition_order) for t in design.tasks)
    assert orders == {("natural", "synthetic"): 3, ("synthetic", "natural"): 3}
    for task in design.tasks:
        test = [k for k in task.key.trials if k.phase != "practice"]
        assert [k.condition for k in test] == sorted(
            (k.condition for k in test), key=task.key.condition_order.index)


def test_practice_units_are_kept_apart_from_main_units():
    _, _, _, design = run_design(practice=3)
    practice = {k.unit_id for t in design.tasks for k in t.key.trials if k.phase == "practice"}
    main = {k.unit_id for t in design.tasks for k in t.key.trials if k.phase != "practice"}
    assert practice and not practice & main


# -- no answer leakage ----------------------------------------------------------------------


def test_public_task_does_not_tell_the_max_query_apart():
    _, _, stimuli, design = run_design(catch=3, practice=2, tasks=6, trials=10)
    for task in design.tasks:
        public = task.public.model_dump()
        for trial, key in zip(public["trials"], task.key.trials, strict=True):
            if key.phase == "practice":
                continue
            text = json.dumps(trial).lower()
            for word in ("max", "min", "catch", "main", "correct", "unit", "batch", "layer"):
                assert word not in text, (word, text)
            assert set(trial) == {"trial_id", "phase", "condition", "references", "queries",
                                  "feedback"}
            assert trial["phase"] == "test" and trial["feedback"] is None
            for k in (trial["queries"]["top"], trial["queries"]["bottom"]):
                assert len(k) == len("0" * 32 + ".png") and str(stimuli) not in k
            shown = trial["references"]["left"] + trial["references"]["right"]
            all_refs = [r for t in public["trials"]
                        for r in t["references"]["left"] + t["references"]["right"]]
            assert trial["queries"]["top"] not in all_refs
            assert trial["queries"]["bottom"] not in all_refs
            assert len(shown) == len(set(shown))
    # trial ids do not encode order or phase: they are unique opaque tokens
    ids = [t.trial_id for task in design.tasks for t in task.public.trials]
    assert len(set(ids)) == len(ids) and all(len(i) == 12 for i in ids)


# -- errors ---------------------------------------------------------------------------------


def test_unknown_condition_is_a_clear_error():
    with pytest.raises(ConfigError, match="unknown condition 'optimized'"):
        run_design(conditions='["optimized"]')


def test_missing_synthetic_images_is_a_clear_error(tmp_path: Path):
    manifest = make_manifest(tmp_path / "stimuli", n_units=3, n_batches=1, synthetic=False)
    with pytest.raises(ConfigError, match="lacks synthetic images"):
        design_tasks(config(), manifest, tmp_path / "stimuli", tmp_path / "catch")


def test_too_few_images_per_batch_is_a_clear_error(tmp_path: Path):
    manifest = make_manifest(tmp_path / "stimuli", n_units=3, n_batches=1, per_side=5)
    with pytest.raises(ConfigError, match="too few images for n_references = 9"):
        design_tasks(config(), manifest, tmp_path / "stimuli", tmp_path / "catch")


def test_missing_image_file_names_the_file(small_study: Path):
    (small_study / "stimuli/u1/b0/max_3.png").unlink()
    with pytest.raises(ConfigError, match="image file missing: u1/b0/max_3.png"):
        load_manifest(small_study / "stimuli/manifest.json")


def test_unknown_practice_unit_is_a_clear_error():
    manifest, stimuli = cached_manifest(6, 3)
    cfg = config()
    cfg.design.practice_units = ["9z:1"]
    with pytest.raises(ConfigError, match="practice_units: unit '9z:1' is not in the manifest"):
        design_tasks(cfg, manifest, stimuli, stimuli / "catch")


# -- into the ledger ------------------------------------------------------------------------


def test_design_study_writes_tasks_and_answer_keys_to_the_ledger(small_study: Path):
    study = load_study(small_study)
    assert design_study(study).startswith("designed 4 tasks")
    with Ledger.open(study.db_path) as ledger:
        tasks = ledger.tasks()
        images = ledger.images()
    assert [t.public.task_id for t in tasks] == ["t0000", "t0001", "t0002", "t0003"]
    used = {k for t in tasks for tr in t.public.trials
            for k in [*tr.references.left, *tr.references.right,
                      tr.queries.top, tr.queries.bottom]}
    assert used == set(images)
    assert all((small_study / images[k]["path"]).is_file() for k in used)
    assert design_study(study).startswith("unchanged")


def test_design_cannot_change_once_hits_exist(small_study: Path):
    study = load_study(small_study)
    design_study(study)
    with Ledger.open(study.db_path, write=True) as ledger:
        ledger.record_hit_intent(target="local", request_token="tok", task_id="t0000", part=0,
                                 max_assignments=1, reward="0.50")
        before = (ledger.design_hash(), [t.public.model_dump() for t in ledger.tasks()])
    toml = small_study / "study.toml"
    toml.write_text(toml.read_text().replace("seed = 7", "seed = 8"))
    with pytest.raises(CrowdkitError,
                       match=r"the design changed .* but 1 HITs were already made from the "
                             r"old one; start a new study directory") as excinfo:
        design_study(load_study(small_study))
    # a refused action (exit 1), not a malformed study.toml (ConfigError, exit 2)
    assert excinfo.type is CrowdkitError and excinfo.value.exit_code == 1
    with Ledger.open(study.db_path) as ledger:  # the old design and its tasks are kept
        assert (ledger.design_hash(), [t.public.model_dump() for t in ledger.tasks()]) == before


def test_factory_study_is_valid(tmp_path: Path):
    root = make_study(tmp_path / "x", n_units=3, n_batches=1)
    assert load_study(root).name == "teststudy"


def test_within_design_shows_a_unit_with_different_queries_in_each_block():
    # 5 main units, 5 trials per block: every unit appears in both blocks of every task.
    _, _, _, design = run_design(n_units=6, n_batches=2, assignment="within", tasks=4,
                                 trials=10, catch=0, practice=2)
    for task in design.tasks:
        queries = [k for t in task.public.trials if t.phase == "test"
                   for k in (t.queries.top, t.queries.bottom)]
        assert len(queries) == len(set(queries)), "a query pair repeats within a task"


def test_designing_again_hashes_only_images_that_changed(small_study: Path, monkeypatch):
    from crowdkit import images as images_module

    calls: list[Path] = []
    real = images_module.file_digest
    monkeypatch.setattr(images_module, "file_digest", lambda p: calls.append(p) or real(p))
    study = load_study(small_study)
    design_study(study)
    first = len(calls)
    assert first > 0
    design_study(study)
    assert len(calls) == first  # nothing re-read: every image's size and mtime are unchanged

    # an edited image is hashed again, so the design sees its new content
    victim = calls[0]
    victim.write_bytes(victim.read_bytes() + b"\0")
    assert design_study(load_study(small_study)).startswith("designed")
    assert calls[first:] == [victim]
