"""Models and units: the paper's channel numbering, both spellings, random draws, bad input."""

from __future__ import annotations

import urllib.error
from pathlib import Path

import pytest
import torch
from torch import nn

from crowdkit.errors import ConfigError, CrowdkitError
from stimgen.config import StimuliConfig
from stimgen.models import FeatureTap, load_model
from stimgen.units import InceptionNumbering, UnitResolver, select_units

CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def no_downloads(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may fetch weights: a download attempt fails as it would offline."""

    def offline(*_args: object, **_kwargs: object) -> None:
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)


@pytest.fixture(scope="module")
def inception():
    return load_model("inceptionv1", "random", seed=0, device=CPU)


def tiny_net() -> nn.Module:
    """A `package.module:function` model for the custom family."""
    return nn.Sequential(nn.Conv2d(3, 6, 3, stride=4), nn.ReLU(), nn.Conv2d(6, 5, 3))


def test_paper_numbering_follows_the_models_concatenation(inception):
    numbering = InceptionNumbering(inception.module)
    branch, channel = numbering.to_branch("4a", 257)
    assert (branch.layer, channel, branch.size) == ("mixed4a_3x3_pre_relu_conv", 65, 204)
    # The paper's number n of a mixed layer is channel n of the concatenated layer, which is
    # the ReLU of that branch's pre-ReLU convolution: check it on real activations.
    layers = ["mixed4a", *(b.layer for b in numbering.blocks["4a"])]
    with torch.no_grad(), FeatureTap(inception.module, layers) as tap:
        out = tap(inception.preprocess(torch.rand(1, 3, 64, 64)))
    for number in (0, 191, 192, 257, 395, 396, 443, 444, 507):
        branch, channel = numbering.to_branch("4a", number)
        assert torch.allclose(out["mixed4a"][:, number], out[branch.layer][:, channel].clamp(min=0))
        assert numbering.to_paper(branch.layer, channel) == (branch, number)
    assert numbering.size("4a") == out["mixed4a"].shape[1] == 508


def test_every_block_round_trips(inception):
    numbering = InceptionNumbering(inception.module)
    for block, branches in numbering.blocks.items():
        assert [b.name for b in branches] == ["1x1", "3x3", "5x5", "pool_reduce"]
        for number in range(numbering.size(block)):
            branch, channel = numbering.to_branch(block, number)
            assert 0 <= channel < branch.size
            assert numbering.to_paper(branch.layer, channel)[1] == number


@pytest.mark.parametrize("spec", ["4a:257", "mixed4a:257", "mixed4a_3x3_pre_relu_conv:65",
                                  "mixed4a_3x3_pre_relu:65"])
def test_both_spellings_name_the_same_unit_labelled_the_papers_way(inception, spec):
    unit = UnitResolver(inception).resolve(spec)
    assert (unit.id, unit.layer, unit.channel, unit.label) == (
        "4a:257", "mixed4a_3x3_pre_relu_conv", 65, "4a, 3x3")


def test_pool_branch_is_labelled_pool(inception):
    unit = UnitResolver(inception).resolve("3a:230")
    assert (unit.layer, unit.channel, unit.label) == ("mixed3a_pool_reduce_pre_relu_conv", 6,
                                                     "3a, pool")


@pytest.mark.parametrize(("spec", "message"), [
    ("4a:508", "'4a:508': channel 508 is out of range for 4a (0-507)"),
    ("mixed4a_3x3_pre_relu_conv:204",
     "channel 204 is out of range for mixed4a_3x3_pre_relu_conv (0-203)"),
    ("mixed4x_3x3_pre_relu_conv:1", "unknown layer 'mixed4x_3x3_pre_relu_conv'; did you mean"),
    ("4a", "is not a unit; write layer:channel"),
])
def test_bad_units_are_clear_errors(inception, spec, message):
    with pytest.raises(ConfigError) as err:
        UnitResolver(inception).resolve(spec)
    assert message in str(err.value)
    assert str(err.value).startswith("[stimuli] units:")


def test_papers_design_draws_one_random_unit_per_branch_plus_the_picked_ones(inception):
    blocks = ["3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b"]
    picked = ["3a:230", "3b:462", "4a:501", "4b:465", "4c:449", "4d:516", "4e:809", "5a:720",
              "5b:946"]
    cfg = StimuliConfig(units=picked, random_layers=[f"mixed{b}" for b in blocks])
    units = select_units(cfg, inception, seed=7)
    assert len(units) == 45 and len({u.id for u in units}) == 45
    assert [u.id for u in units[:9]] == picked
    assert all(u.selection == "picked" for u in units[:9])
    random = units[9:]
    assert all(u.selection == "random" for u in random)
    assert [u.label for u in random[:4]] == ["3a, 1x1", "3a, 3x3", "3a, 5x5", "3a, pool"]
    assert [u.id for u in select_units(cfg, inception, seed=7)] == [u.id for u in units]
    assert [u.id for u in select_units(cfg, inception, seed=8)] != [u.id for u in units]


def test_random_draws_never_repeat_a_picked_unit(inception):
    # 5x5 of 3a has 32 channels: pick 31 by hand, the draw must take the one left.
    picked = [f"3a:{n}" for n in range(192, 224) if n != 200]
    cfg = StimuliConfig(units=picked, random_layers=["3a"], random_per_branch=1)
    drawn = [u for u in select_units(cfg, inception, seed=1) if u.selection == "random"]
    assert "3a:200" in [u.id for u in drawn]
    cfg = StimuliConfig(units=[*picked, "3a:200"], random_layers=["3a"])
    with pytest.raises(ConfigError, match="3a_5x5 has only 0 channels left"):
        select_units(cfg, inception, seed=1)


def test_a_unit_listed_twice_is_an_error(inception):
    cfg = StimuliConfig(units=["4a:257", "mixed4a_3x3_pre_relu_conv:65"])
    with pytest.raises(ConfigError, match="same unit as '4a:257'"):
        select_units(cfg, inception, seed=0)


def test_units_can_be_marked_random_when_listed_by_hand(inception):
    cfg = StimuliConfig.model_validate({"units": ["4a:257", {"id": "3a:189",
                                                             "selection": "random"}]})
    assert [u.selection for u in select_units(cfg, inception, seed=0)] == ["picked", "random"]


def test_torchvision_models_by_name_with_module_names_as_layers():
    model = load_model("resnet18", "random", seed=0, device=CPU)
    assert (model.family, model.random_weights) == ("torchvision", True)
    unit = UnitResolver(model).resolve("layer1.0.conv1:3")
    assert (unit.id, unit.layer, unit.channel) == ("layer1.0.conv1:3", "layer1.0.conv1", 3)
    with pytest.raises(ConfigError, match="out of range for layer1.0.conv1 \\(0-63\\)"):
        UnitResolver(model).resolve("layer1.0.conv1:64")
    with pytest.raises(ConfigError, match="did you mean resnet18"):
        load_model("resnet81", "random", seed=0, device=CPU)


def test_custom_model_from_a_function_path():
    model = load_model("tests.test_stimgen_units:tiny_net", "random", seed=0, device=CPU)
    assert model.family == "custom"
    assert UnitResolver(model).resolve("2:4").layer == "2"
    with pytest.raises(ConfigError, match="has no function 'nope'"):
        load_model("tests.test_stimgen_units:nope", "random", seed=0, device=CPU)


def test_random_weights_are_seeded():
    a = load_model("inceptionv1", "random", seed=3, device=CPU)
    b = load_model("inceptionv1", "random", seed=3, device=CPU)
    c = load_model("inceptionv1", "random", seed=4, device=CPU)
    assert a.weights_sha256 == b.weights_sha256 != c.weights_sha256
    assert a.weights == "random (seed 3)"


def test_pretrained_without_network_is_one_line_pointing_to_offline_options():
    with pytest.raises(CrowdkitError) as err:
        load_model("inceptionv1", "pretrained", seed=0, device=CPU)
    message = str(err.value)
    assert "\n" not in message
    assert "could not get the pretrained InceptionV1 weights" in message
    assert 'weights = "random"' in message


def test_weights_from_a_local_file(inception, tmp_path: Path):
    path = tmp_path / "weights.pth"
    torch.save(inception.module.state_dict(), path)
    local = load_model("inceptionv1", str(path), seed=99, device=CPU)
    assert not local.random_weights
    x = inception.preprocess(torch.rand(2, 3, 64, 64))
    with torch.no_grad(), FeatureTap(local.module, ["mixed3a"]) as a, \
            FeatureTap(inception.module, ["mixed3a"]) as b:
        assert torch.equal(a(x)["mixed3a"], b(x)["mixed3a"])
    with pytest.raises(ConfigError, match="no such file"):
        load_model("inceptionv1", str(tmp_path / "missing.pth"), seed=0, device=CPU)
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="not a readable state dict"):
        load_model("inceptionv1", str(tmp_path / "junk.pth"), seed=0, device=CPU)


def test_tap_stops_the_forward_pass_at_the_deepest_layer_needed(inception):
    ran = []
    handle = inception.module.mixed3b_1x1_pre_relu_conv.register_forward_hook(
        lambda *_: ran.append("3b"))
    try:
        with torch.no_grad(), FeatureTap(inception.module, ["mixed3a_1x1_pre_relu_conv"]) as tap:
            tap(inception.preprocess(torch.rand(1, 3, 64, 64)))
    finally:
        handle.remove()
    assert ran == []


def test_iclr2021_preset_is_the_papers_setting_and_every_key_overrides_it():
    from stimgen.config import SyntheticConfig

    paper = SyntheticConfig().settings()
    assert (paper["image_size"], paper["crop"], paper["steps"]) == (256, 16, 2560)
    assert (paper["lr"], paper["diversity_weight"], paper["n_images"]) == (0.05, 100.0, 10)
    assert (paper["jitter"], paper["final_jitter"]) == (16, 8)
    assert sorted(paper["scales"]) == [0.95, 0.975, 1.0, 1.025, 1.05]
    assert paper["rotations"] == list(range(-5, 6))
    custom = SyntheticConfig(preset="custom", steps=24, image_size=96, crop=8).settings()
    assert {k: v for k, v in custom.items() if paper[k] != v} == {
        "steps": 24, "image_size": 96, "crop": 8}


def test_a_crop_that_leaves_no_image_is_refused_with_the_key():
    from crowdkit.study import parse_study_toml

    text = ('[study]\nname = "x"\n[hit]\ntitle = "t"\ndescription = "d"\nreward = "1.00"\n'
            "[stimuli.synthetic]\nimage_size = 64\ncrop = 30\n")
    with pytest.raises(ConfigError) as err:
        parse_study_toml(text)
    assert str(err.value) == ("study.toml: [stimuli] synthetic: crop = 30 leaves 4 px of an "
                              "image_size = 64 image")
