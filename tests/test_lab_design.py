"""The paper's lab designs: Experiment I's blocks, baseline, catch, repeats, batches and
feedback; Experiment II's reference sets; which feature visualizations a trial shows; and
the iclr2021 examples, which must select all of it."""

from __future__ import annotations

import csv
import tempfile
from collections import Counter, defaultdict
from functools import cache
from pathlib import Path

import pytest

from crowdkit.design import design_tasks
from crowdkit.errors import ConfigError, CrowdkitError
from crowdkit.examples import example_toml
from crowdkit.study import StudyConfig, parse_study_toml
from crowdkit.templates import (
    check_public_task,
    html_question_xml,
    page_data,
    question_size,
    render_task_html,
)
from tests.factories import STUDY_TOML, make_manifest

DATA = Path(__file__).resolve().parent / "data"
UNITS_CSV = DATA / "iclr2021_experiment_I_units.csv"
_CACHE = Path(tempfile.mkdtemp(prefix="crowdkit-lab-"))
BASE = "https://example.org/img/"


def paper_units() -> list[dict[str, str]]:
    with UNITS_CSV.open(newline="") as f:
        return list(csv.DictReader(f))


@cache
def paper_manifest():
    """A generated manifest with the paper's 68 unit ids and 20 batches each."""
    stimuli = _CACHE / "paper"
    ids = [row["unit"] for row in paper_units()]
    return make_manifest(stimuli, n_batches=20, unit_ids=ids), stimuli


@cache
def small_manifest():
    stimuli = _CACHE / "small"
    return make_manifest(stimuli, n_units=12, n_batches=4), stimuli


LAB = """
practice_units = ["3a:0", "4a:1", "5a:2"]
blocks_per_condition = 3
baseline = ["pre", "post"]
baseline_trials = 6
baseline_blocks = 2
practice_placement = "per_condition"
catch_units = "practice"
repeated_trials = 6
batch_assignment = "per_task"
"""


def lab_config(extra: str = LAB, *, assignment: str = "within", tasks: int = 4, trials: int = 12,
               catch: int = 6, practice: int = 2, conditions: str = '["natural", "synthetic"]',
               ) -> StudyConfig:
    toml = STUDY_TOML.format(name="lab", seed=1, conditions=conditions, assignment=assignment,
                             reference_mode="min+max", n_references=9, tasks=tasks,
                             trials=trials, catch=catch, practice=practice, assignments=1)
    return parse_study_toml(toml.replace("n_practice_units = 1", extra))


def design(config: StudyConfig, manifest_and_dir=None):
    manifest, stimuli = manifest_and_dir or small_manifest()
    return design_tasks(config, manifest, stimuli, stimuli / "catch")


def blocks_of(task) -> list[tuple[str, str, int]]:
    """(phase kind, condition, trials) per block, in order; a block with catch trials is
    "main+catch"."""
    by_block: dict[int, list] = defaultdict(list)
    for key in task.key.trials:
        by_block[key.block].append(key)
    out = []
    for _, keys in sorted(by_block.items()):
        phases = sorted({k.phase for k in keys})
        out.append(("+".join(phases), keys[0].condition, len(keys)))
    return out


# -- which images a trial shows ----------------------------------------------------------


@pytest.mark.parametrize(("selection", "max_ranks", "min_ranks"), [
    ("strongest", range(1, 10), range(0, 9)),  # the 9 most extreme of the 10
    ("fixed", range(0, 9), range(1, 10)),  # the paper's positions, as beside a batch's queries
])
def test_image_selection_picks_which_synthetic_images_a_trial_shows(selection, max_ranks,
                                                                     min_ranks):
    config = lab_config(f'image_selection = "{selection}"', assignment="between",
                        conditions='["synthetic"]', catch=0, practice=0)
    manifest, stimuli = small_manifest()
    result = design(config)
    for task in result.tasks:
        for trial, key in zip(task.public.trials, task.key.trials, strict=True):
            unit = f"u{key.channel}/synthetic"
            right = [str(result.images[k].relative_to(stimuli)) for k in trial.references.right]
            left = [str(result.images[k].relative_to(stimuli)) for k in trial.references.left]
            assert right == [f"{unit}/max_{r}.png" for r in max_ranks]
            assert left == [f"{unit}/min_{r}.png" for r in min_ranks]


def test_fixed_positions_need_one_image_more_than_they_show(tmp_path):
    manifest = make_manifest(tmp_path / "stimuli", n_units=4, n_synthetic=9)
    config = lab_config('image_selection = "fixed"', assignment="between", practice=0)
    with pytest.raises(ConfigError, match="needs 10 max and 10 min"):
        design_tasks(config, manifest, tmp_path / "stimuli", tmp_path / "catch")


# -- Experiment I in the lab -------------------------------------------------------------


def test_a_lab_task_runs_practice_baseline_alternating_blocks_baseline_and_repeats():
    config = lab_config()
    task = design(config).tasks[0]
    natural_first = task.key.condition_order[1] == "natural"
    a, b = ("natural", "synthetic") if natural_first else ("synthetic", "natural")
    kinds = blocks_of(task)
    assert kinds[:13] == [
        ("practice", "none_pre", 2),
        ("main", "none_pre", 2), ("main", "none_pre", 1),  # 3 of the 6 before ...
        ("practice", a, 2), ("practice", b, 2),
        ("catch+main", a, 3), ("catch+main", b, 3),  # 2 main + 1 catch trial each
        ("catch+main", a, 3), ("catch+main", b, 3),
        ("catch+main", a, 3), ("catch+main", b, 3),
        ("main", "none_post", 2), ("main", "none_post", 1),  # ... and 3 after
    ]
    assert [(kind, n) for kind, _, n in kinds[13:]] == [("repeated", 2)] * 3
    assert [k.block for k in task.key.trials] == sorted(k.block for k in task.key.trials)
    assert task.key.condition_order == ["none_pre", a, b, "none_post"]


def test_block_orders_are_counterbalanced_across_tasks():
    tasks = design(lab_config(tasks=6)).tasks
    firsts = Counter(t.key.condition_order[1] for t in tasks)
    assert firsts == {"natural": 3, "synthetic": 3}


def test_catch_trials_come_from_the_practice_units_at_batch_0_three_per_block():
    config = lab_config()
    for task in design(config).tasks:
        catches = [k for k in task.key.trials if k.phase == "catch"]
        assert len(catches) == 6
        assert {k.unit_id for k in catches} <= {"3a:0", "4a:1", "5a:2"}
        assert {k.batch for k in catches} == {0}
        assert {k.condition for k in catches} <= {"natural", "synthetic"}
        per_block = Counter(k.block for k in catches)
        assert set(per_block.values()) == {1}  # 6 catch trials over 6 blocks
        assert not [k for k in task.key.trials
                    if k.condition.startswith("none") and k.phase == "catch"]


def test_repeated_trials_show_an_earlier_main_trial_again_with_fresh_positions():
    config = lab_config()
    for task in design(config).tasks:
        keys = task.key.trials
        repeats = [k for k in keys if k.phase == "repeated"]
        assert len(repeats) == 6
        groups = Counter("none" if k.condition.startswith("none") else k.condition
                         for k in repeats)
        assert groups == {"none": 2, "natural": 2, "synthetic": 2}
        for key in repeats:
            first = keys[key.repeat_of]
            assert first.phase == "main" and first.trial_index == key.repeat_of
            assert (first.unit_id, first.batch, first.condition) == (
                key.unit_id, key.batch, key.condition)
            shown = task.public.trials[key.trial_index]
            original = task.public.trials[key.repeat_of]
            assert shown.references == original.references
            assert {shown.queries.top, shown.queries.bottom} == {
                original.queries.top, original.queries.bottom}
            assert shown.trial_id != original.trial_id
        assert Counter(k.max_position for k in repeats) == {"top": 3, "bottom": 3}
        assert all(k.repeat_of is None for k in keys if k.phase != "repeated")


def test_main_trials_take_batches_per_participant_and_condition():
    config = lab_config()
    for t, task in enumerate(design(config).tasks):
        batches: dict[str, set[int]] = defaultdict(set)
        for k in task.key.trials:
            if k.phase == "main":
                batches[k.condition].add(k.batch)
        # 4 batches: batch 0 for practice and catch, then 1 + (t + k) mod 3
        assert batches["none_pre"] == batches["none_post"] == {1 + t % 3}
        assert batches["natural"] == {1 + (t + 1) % 3}
        assert batches["synthetic"] == {1 + (t + 2) % 3}
        assert {k.batch for k in task.key.trials if k.phase == "practice"} == {0}


def test_the_page_is_told_blocks_only_in_lab_designs():
    lab = design(lab_config()).tasks[0].public
    assert all(t.block is not None for t in lab.trials)
    assert '"block"' in lab.model_dump_json()
    plain = design(lab_config("n_practice_units = 1", assignment="between")).tasks[0]
    assert all(t.block is None for t in plain.public.trials)
    assert '"block"' not in plain.public.model_dump_json()  # earlier ledgers' designs
    assert '"repeat_of"' not in plain.key.model_dump_json()  # keep their hash


def test_feedback_after_every_trial_puts_the_answers_in_the_page_only_when_asked():
    told = lab_config(LAB + 'feedback = "all"\nblock_score = true')
    task = design(told).tasks[0]
    assert all(t.feedback is not None for t in task.public.trials)
    data = page_data(task.public, told, BASE)
    assert all("answer" in item for item in data["trials"])
    assert data["settings"]["block_score"] is True
    silent = lab_config()
    quiet = design(silent).tasks[0]
    assert all(t.feedback is None for t in quiet.public.trials if t.phase == "test")
    assert "block_score" not in page_data(quiet.public, silent, BASE)["settings"]
    with pytest.raises(CrowdkitError, match="carries feedback"):
        check_public_task(task.public)  # a page without the study's say-so refuses it


def test_a_block_score_needs_feedback():
    with pytest.raises(ConfigError, match='block_score needs feedback = "all"'):
        lab_config(LAB + "block_score = true")


@pytest.mark.parametrize(("extra", "message"), [
    ('baseline = ["pre"]', "baseline needs baseline_trials"),
    ("baseline_trials = 4", "baseline_trials needs baseline"),
    ('baseline = ["pre", "pre"]\nbaseline_trials = 2', "lists a part twice"),
])
def test_baseline_keys_must_agree(extra, message):
    with pytest.raises(ConfigError, match=message):
        lab_config(extra)


def test_the_baseline_conditions_are_not_listed_as_conditions():
    config = lab_config("n_practice_units = 1", conditions='["natural", "none_pre"]')
    with pytest.raises(ConfigError, match="none_pre is the baseline's"):
        design(config)


def test_catch_trials_from_practice_units_need_practice_units():
    config = lab_config('catch_units = "practice"', practice=0)
    with pytest.raises(ConfigError, match='catch_units: "practice"'):
        design(config)


# -- Experiment II: reference sets within participants -----------------------------------


EXPERIMENT_II = """
n_practice_units = 1
reference_sets = [{mode = "min+max", n = 9}, {mode = "max-only", n = 9},
                  {mode = "max-only", n = 1}]
"""


def test_experiment_ii_shows_every_reference_set_of_every_condition_within_participants():
    config = lab_config(EXPERIMENT_II, conditions='["natural", "synthetic", "none"]',
                        trials=14, catch=7)
    for task in design(config).tasks:
        arms = {(k.condition, k.reference_mode if k.n_references else "-", k.n_references)
                for k in task.key.trials if k.phase == "main"}
        assert arms == {("natural", "min+max", 9), ("natural", "max-only", 9),
                        ("natural", "max-only", 1), ("synthetic", "min+max", 9),
                        ("synthetic", "max-only", 9), ("synthetic", "max-only", 1),
                        ("none", "-", 0)}
        for trial, key in zip(task.public.trials, task.key.trials, strict=True):
            if key.phase != "main" or key.condition == "none":
                continue
            right, left = trial.references.right, trial.references.left
            assert len(right) == key.n_references
            assert len(left) == (key.n_references if key.reference_mode == "min+max" else 0)
    html = render_task_html(design(config).tasks[0].public, config, BASE)
    assert "respond <b>weakly</b>" in html  # some trials show both sides


def test_experiment_ii_orders_of_its_seven_arms_vary_across_tasks():
    config = lab_config(EXPERIMENT_II, conditions='["natural", "synthetic", "none"]',
                        trials=14, catch=0, tasks=8)
    firsts = {t.key.trials[2].condition + str(t.key.trials[2].n_references)
              for t in design(config).tasks}
    assert len(firsts) > 1


# -- the examples ------------------------------------------------------------------------


def test_the_examples_list_the_papers_units_with_their_roles():
    rows = paper_units()
    main = [r["unit"] for r in rows if r["role"] == "main"]
    practice = [r["unit"] for r in rows if r["role"] == "practice_or_catch"]
    rating = [r["unit"] for r in rows if r["role"] == "warm_up_and_rating"]
    assert (len(main), len(practice), len(rating)) == (45, 20, 3)
    for name in ("iclr2021-exp1", "iclr2021-exp1-lab"):
        config = parse_study_toml(example_toml(name))
        entries = config.stimuli.unit_entries()
        assert [e.id for e in entries] == main + practice + rating
        selections = {e.id: e.selection for e in entries}
        for row in rows:
            expected = "random" if row["selection"] == "random" else "picked"
            assert selections[row["unit"]] == expected, row
        assert config.stimuli.random_layers == []  # the paper's own units, not new draws
        assert config.design.practice_units == practice
        assert config.design.ratings.units == rating == ["3a:43", "4b:504", "5b:17"]


def test_the_examples_select_the_authors_stimuli_settings():
    for name in ("iclr2021-exp1", "iclr2021-exp1-lab"):
        config = parse_study_toml(example_toml(name))
        settings = config.stimuli.synthetic.settings()
        assert config.stimuli.synthetic.preset == "iclr2021"
        assert (settings["n_images"], settings["diversity_layer"], settings["relu_gradient"],
                settings["relu_redirect_steps"], settings["transforms"]) == (
            10, "mixed", "lucid", 16, "lucid")
        assert config.stimuli.bin_order == "shuffled"
        assert config.design.image_selection == "fixed"
        assert config.design.n_references == 9  # 9 of the 10 images per side


def test_the_hand_picked_unit_of_each_layer_is_in_its_pool_branch():
    import torch

    from stimgen.models import load_model
    from stimgen.units import InceptionNumbering

    numbering = InceptionNumbering(load_model("inceptionv1", "random", seed=0,
                                              device=torch.device("cpu")).module)
    for row in paper_units():
        block, number = row["unit"].split(":")
        branch, _ = numbering.to_branch(block, int(number))
        assert branch.name.replace("pool_reduce", "pool") == row["branch"], row
        if row["selection"] == "picked":
            assert row["branch"] == "pool"


def test_the_lab_example_is_the_authors_session():
    config = parse_study_toml(example_toml("iclr2021-exp1-lab"))
    result = design(config, paper_manifest())
    assert len(result.tasks) == 10
    for task in result.tasks:
        kinds = blocks_of(task)
        assert kinds[0] == ("rating", "synthetic", 3)
        assert kinds[1] == ("practice", "none_pre", 5)
        assert [n for k, c, n in kinds if c == "none_pre" and k == "main"] in ([12, 11],
                                                                                [11, 12])
        mains = [(c, n) for k, c, n in kinds if k == "catch+main"]
        assert [n for _, n in mains] == [18] * 6
        assert [c for c, _ in mains] in (["natural", "synthetic"] * 3,
                                         ["synthetic", "natural"] * 3)
        assert [n for k, c, n in kinds if c == "none_post" and k == "main"] == [11, 11]
        assert [n for k, _, n in kinds if k == "repeated"] == [6, 6, 6]
        keys = task.key.trials
        main = Counter(k.condition for k in keys if k.phase == "main")
        assert main == {"natural": 45, "synthetic": 45, "none_pre": 23, "none_post": 22}
        for condition in ("natural", "synthetic"):  # every main unit once per condition
            assert len({k.unit_id for k in keys
                        if k.phase == "main" and k.condition == condition}) == 45
        none_units = [k.unit_id for k in keys if k.phase == "main" and
                      k.condition.startswith("none")]
        assert len(set(none_units)) == 45
        assert Counter(k.phase for k in keys)["catch"] == 18
        assert all(t.feedback is not None for t in task.public.trials if t.phase == "test")


def test_the_mturk_example_is_between_participants_with_ratings_first_and_fits_a_hit():
    config = parse_study_toml(example_toml("iclr2021-exp1"))
    result = design(config, paper_manifest())
    base = "https://my-crowdkit-stimuli.s3.us-east-1.amazonaws.com/crowdkit/iclr2021-exp1/"
    for task in result.tasks:
        assert len(task.key.condition_order) == 1
        phases = [k.phase for k in task.key.trials]
        assert phases[:3] == ["rating"] * 3 and phases[3:7] == ["practice"] * 4
        assert Counter(phases) == {"rating": 3, "practice": 4, "main": 36, "catch": 6}
        xml = html_question_xml(render_task_html(task.public, config, base))
        assert question_size(xml) <= 65535  # MTurk's HTMLQuestion limit


def test_a_lab_arm_without_references_gets_no_catch_trials():
    """A catch trial in a `none` block would be the only trial there with references, which
    gives it away: its share goes to the arms that show references, as in the plain design."""
    config = lab_config("blocks_per_condition = 2", conditions='["natural", "synthetic", "none"]',
                        tasks=3, trials=12, catch=6, practice=0)
    assert config.design.lab
    for task in design(config).tasks:
        blocks = blocks_of(task)
        assert all(kind == "main" for kind, condition, _ in blocks if condition == "none")
        catch = sum(1 for key in task.key.trials if key.phase == "catch")
        assert catch == 6, blocks
