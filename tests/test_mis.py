"""The machine observer (`crowdkit mis`): the MIS classifier from the paper's definition, the
designed trials answered in the tidy trials format, the embedding cache, screening every
unit on drawn tasks, and one-line errors."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from crowdkit.cli import app
from crowdkit.collect.dataset import TRIAL_COLUMNS
from crowdkit.design import design_study
from crowdkit.errors import CrowdkitError
from crowdkit.observers.mis import EmbeddedTask, choice, confidence, mis_score, p_top
from crowdkit.observers.run import MIS_COLUMNS, run_mis
from crowdkit.observers.similarity import EmbeddingCache, cosine, decode
from crowdkit.study import load_study
from tests.factories import make_study

MIS_TOML = '\n[mis]\nsimilarity = "features"\n'


class Identity:
    """A similarity over hand-made embeddings: the cosine of unit vectors."""

    name = "identity"
    fingerprint = "identity"
    note = None

    def embed(self, pixels: torch.Tensor) -> torch.Tensor:
        return pixels.flatten(1)

    def similarity(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return cosine(a, b)


def unit_vectors(*rows: list[float]) -> torch.Tensor:
    return torch.nn.functional.normalize(torch.tensor(rows, dtype=torch.float32), dim=1)


def test_the_classifier_is_the_papers_sigmoid_of_the_similarity_difference():
    # rows: 0 max-like, 1 min-like, 2 a max query, 3 a min query
    m = unit_vectors([1, 0], [0, 1], [0.9, 0.1], [0.2, 0.8])
    task = EmbeddedTask(top=2, bottom=3, max_refs=(0,), min_refs=(1,))
    s = cosine(m[:, None], m[None, :])
    delta = (s[2, 0] - s[2, 1]) - (s[3, 0] - s[3, 1])
    for alpha in (0.16, 1.0):
        (p,) = p_top(Identity(), m, [task], alpha=alpha)
        assert p == pytest.approx(1 / (1 + math.exp(-float(delta) / alpha)), abs=1e-6)
    swapped = EmbeddedTask(top=3, bottom=2, max_refs=(0,), min_refs=(1,))
    (p_swapped,) = p_top(Identity(), m, [swapped])
    assert p_swapped == pytest.approx(1 - p_top(Identity(), m, [task])[0], abs=1e-6)


def test_max_only_drops_the_negative_terms_and_no_references_is_no_evidence():
    m = unit_vectors([1, 0], [0, 1], [0.9, 0.1], [0.2, 0.8])
    max_only = EmbeddedTask(top=2, bottom=3, max_refs=(0,), min_refs=())
    none = EmbeddedTask(top=2, bottom=3, max_refs=(), min_refs=())
    p_max_only, p_none = p_top(Identity(), m, [max_only, none])
    s = cosine(m[:, None], m[None, :])
    assert p_max_only == pytest.approx(float(torch.sigmoid((s[2, 0] - s[3, 0]) / 0.16)))
    assert p_none == 0.5
    # without evidence the choice is a coin, but the same coin on every run
    assert {choice(0.5, f"t{i}") for i in range(20)} == {"top", "bottom"}
    assert choice(0.5, "t3") == choice(0.5, "t3")
    assert choice(0.51, "x") == "top" and choice(0.49, "x") == "bottom"
    assert [confidence(p) for p in (0.5, 0.7, 0.9)] == [1, 2, 3]


def test_the_mis_is_the_mean_probability_with_a_ci_over_tasks():
    score = mis_score("u", "natural", [0.9, 0.7, 0.8, 0.6], [True, True, True, True])
    assert score.mis == pytest.approx(0.75)
    half = 1.96 * pd.Series([0.9, 0.7, 0.8, 0.6]).std() / 2
    assert (score.ci_low, score.ci_high) == pytest.approx((0.75 - half, 0.75 + half))
    assert score.accuracy == 1.0 and score.tasks == 4


def test_decoding_hashes_pixels_so_a_padded_copy_shares_its_stimulus_embedding(tmp_path):
    from PIL import Image

    path = tmp_path / "a.png"
    Image.new("RGB", (16, 16), (10, 200, 30)).save(path)
    data = path.read_bytes()
    padded = data[:-12] + b"\x00\x00\x00\x04tEXtabcd\x00\x00\x00\x00" + data[-12:]
    assert decode(data)[0] == decode(padded)[0]
    cache = EmbeddingCache(tmp_path / "cache.pt")
    cache.add(["h1"], torch.ones(1, 3))
    cache.save()
    assert EmbeddingCache(tmp_path / "cache.pt").missing(["h1", "h2"]) == ["h2"]


@pytest.fixture(scope="module")
def designed(tmp_path_factory) -> Path:
    root = make_study(tmp_path_factory.mktemp("mis") / "study", tasks=6, trials=8, catch=4,
                      practice=2)
    with (root / "study.toml").open("a") as f:
        f.write(MIS_TOML)
    design_study(load_study(root))
    return root


def test_the_observer_answers_every_designed_trial_in_the_tidy_format(designed):
    study = load_study(designed)
    result = run_mis(study, device="cpu")
    trials = pd.read_parquet(designed / "data" / "machine_trials.parquet")
    assert list(trials.columns) == [*TRIAL_COLUMNS, "p_correct"]
    assert set(trials["participant_id"]) == {"machine:features:resnet18"}
    assert set(trials["phase"]) == {"practice", "main", "catch"}
    design = study.config.design
    assert (trials["phase"] == "main").sum() == design.tasks * design.trials_per_task
    assert (trials["correct"] == (trials["response"] == trials["max_position"])).all()
    chose_top = trials["response"] == "top"
    p_top_query = trials["p_correct"].where(trials["max_position"] == "top",
                                            1 - trials["p_correct"])
    assert ((p_top_query >= 0.5) == chose_top).all()  # the choice follows the probability
    assert trials["p_correct"].between(0, 1).all()
    scores = pd.read_csv(designed / "data" / "mis.csv")
    assert list(scores.columns) == MIS_COLUMNS
    main = trials[trials["phase"] == "main"]
    for row in scores.itertuples():
        mine = main[(main["unit"] == row.unit) & (main["condition"] == row.condition)]
        assert row.mis == pytest.approx(mine["p_correct"].mean())
        assert row.n_tasks == len(mine)
    assert any("RANDOM weights" in note for note in result.notes)
    assert result.embedded > 0


def test_the_cache_is_used_again(designed):
    again = run_mis(load_study(designed), device="cpu")
    assert again.embedded == 0  # every image came from the cache


class Unrelated:
    """A peaked similarity, as DreamSim's is: every distinct image its own random direction
    in 512 dimensions (unrelated images about 0 +- 0.04 alike), a copy exactly its original."""

    name = "unrelated"
    fingerprint = "unrelated"
    note = None

    def embed(self, pixels: torch.Tensor) -> torch.Tensor:
        out = []
        for image in pixels:
            seed = int(torch.round(image * 255).to(torch.int64).sum()) * 7919 + int(
                torch.round(image[:, 0, 0] * 255).to(torch.int64) @ torch.tensor([1, 256, 65536]))
            gen = torch.Generator().manual_seed(seed % (2 ** 62))
            out.append(torch.nn.functional.normalize(torch.randn(512, generator=gen), dim=0))
        return torch.stack(out)

    def similarity(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return cosine(a, b)


def test_catch_trials_served_as_padded_copies_are_right_far_more_often(designed, monkeypatch):
    """The catch queries the observer reads are the served files (padded copies); their
    pixels are the reference's, so under a peaked similarity the copy decides the trial."""
    from crowdkit.observers import similarity

    monkeypatch.setattr(similarity, "load_similarity", lambda spec, device: Unrelated())
    trials = run_mis(load_study(designed), device="cpu").trials
    catch = trials[trials["phase"] == "catch"]["correct"].mean()
    main = trials[trials["phase"] == "main"]["correct"].mean()
    assert catch == 1.0 and main < 0.8, (catch, main)


def test_all_units_scores_every_unit_on_drawn_tasks(designed):
    run_mis(load_study(designed), device="cpu", all_units=5)
    scores = pd.read_csv(designed / "data" / "mis.csv")
    drawn = scores[scores["tasks"] == "drawn"]
    assert set(drawn["unit"]) == {u for u in scores["unit"]} | set(drawn["unit"])
    from crowdkit.manifest import load_manifest

    every = {u.id for u in load_manifest(load_study(designed).manifest_path).units}
    assert set(drawn["unit"]) == every  # every unit of the manifest, not only the designed
    assert len(drawn) == 6 * 2 and (drawn["n_tasks"] == 5).all()  # 6 units x 2 conditions


def test_the_command_prints_a_summary_and_says_the_weights_are_random(designed):
    result = CliRunner().invoke(app, ["mis", str(designed), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "machine observer machine:features:resnet18 on cpu" in result.output
    assert "RANDOM weights" in result.output
    assert "catch natural: right on" in result.output


def test_no_design_and_unreachable_weights_are_one_line_errors(tmp_path, monkeypatch):
    root = make_study(tmp_path / "bare")
    with (root / "study.toml").open("a") as f:
        f.write(MIS_TOML)
    with pytest.raises(CrowdkitError, match="nothing has been designed"):
        run_mis(load_study(root), device="cpu")
    (root / "study.toml").write_text((root / "study.toml").read_text().replace(
        'similarity = "features"', 'similarity = "dreamsim"'))
    design_study(load_study(root))
    import builtins

    real_import = builtins.__import__

    def no_dreamsim(name, *args, **kwargs):
        if name == "dreamsim":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_dreamsim)
    result = CliRunner().invoke(app, ["mis", str(root), "--no-progress"])
    assert result.exit_code != 0
    assert "needs the dreamsim package" in str(result.exception or result.output)


def test_lpips_from_cached_embeddings_is_lpips_own_distance(monkeypatch):
    """LPIPS as an embedding: minus the distance between two cached feature stacks equals
    what lpips itself computes from the two images (random backbone: no download)."""
    lpips = pytest.importorskip("lpips")
    from crowdkit.observers.similarity import LpipsSimilarity

    real = lpips.LPIPS
    monkeypatch.setattr(lpips, "LPIPS", lambda **kw: real(pnet_rand=True, **kw))
    similarity = LpipsSimilarity(torch.device("cpu"))
    x = torch.rand(4, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    embedded = similarity.embed(x)
    with torch.no_grad():
        theirs = similarity.model(x[:2] * 2 - 1, x[2:] * 2 - 1).flatten()
    assert torch.allclose(-similarity.similarity(embedded[:2], embedded[2:]), theirs,
                          atol=1e-5)


def test_simulated_participants_answer_with_the_observers_probability_and_lapse():
    from crowdkit.trials.base import SimulatedParticipant

    person = SimulatedParticipant("careful", {"natural": 0.9}, 0.97, trial_p={"t1": 0.7},
                                  lapse=0.1)
    assert person.p_correct("natural", False, "t1") == pytest.approx(0.05 + 0.9 * 0.7)
    assert person.p_correct("natural", False, "t2") == 0.9  # no machine answer: --accuracy
    assert person.p_correct("natural", True, "t1") == 0.97  # catch trials test attention


def test_power_from_the_machine_observer_says_it_is_a_lower_bound(designed):
    result = CliRunner().invoke(app, ["power", str(designed), "--source", "machine",
                                      "--half-width", "0.1"])
    assert result.exit_code == 0, result.output
    assert "from machine data; design between participants" in result.output
    assert "lower bound" in result.output
    assert "natural vs synthetic:" in result.output
