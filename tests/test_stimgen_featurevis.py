"""Feature visualizations: lucent's parameterisation and transforms reproduced, the paper's
objective, batched rendering equal to rendering each unit alone, and re-scoring."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from stimgen.featurevis import (
    FourierImages,
    PaperTransforms,
    RenderSettings,
    RenderTarget,
    diversity_penalty,
    group_objective,
    plan_chunks,
    render_chunk,
    render_targets,
    score_images,
)
from stimgen.models import load_model

with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)
    from lucent.optvis import objectives, param, transform

CPU = torch.device("cpu")
SETTINGS = dict(steps=4, image_size=40, crop=4, lr=0.05, diversity_weight=100.0, n_images=3,
                jitter=16, scales=(1.0, 0.975, 1.025, 0.95, 1.05),
                rotations=tuple(range(-5, 6)), final_jitter=8)


@pytest.fixture(scope="module")
def model():
    return load_model("inceptionv1", "random", seed=0, device=CPU)


def settings(**changes) -> RenderSettings:
    return RenderSettings(**{**SETTINGS, **changes})


def test_parameterisation_is_lucents_fft_image_with_decorrelated_colour():
    torch.manual_seed(5)
    _, lucent_image = param.image(32, batch=2)
    ours = FourierImages([5], n_per_group=2, size=32, device=CPU)
    assert torch.allclose(ours(), lucent_image(), atol=1e-6)


def test_transforms_are_lucents_with_the_papers_parameters():
    s = settings(image_size=64)
    theirs = transform.compose([
        transform.jitter(16), transform.random_scale(list(s.scales)),
        transform.random_rotate(list(s.rotations)), transform.jitter(8)])
    ours = PaperTransforms(s, np.random.RandomState(11), CPU)
    image = torch.rand(2, 3, 64, 64)
    np.random.seed(11)
    for _ in range(5):  # the draws stay in step across steps
        expected = theirs(image)
        assert torch.equal(ours(image), expected)


def test_diversity_penalty_is_lucids_diversity_term():
    features = torch.randn(4, 6, 5, 5)
    lucent_diversity = objectives.diversity("layer")(lambda _name: features)
    # lucent returns minus the similarity (it minimises); the penalty is the similarity.
    assert diversity_penalty(features).item() == pytest.approx(-lucent_diversity.item(),
                                                               rel=1e-5)
    assert diversity_penalty(features[:1]).item() == 0.0


def test_min_negates_the_channel_term_and_keeps_the_diversity_term():
    features = torch.randn(3, 8, 5, 5, generator=torch.Generator().manual_seed(0))
    mean, penalty = features[:, 2].mean(), diversity_penalty(features)
    up = RenderTarget("u", "layer", 2, "max", 0)
    down = RenderTarget("u", "layer", 2, "min", 0)
    loss_up, mean_up, penalty_up = group_objective(features, up, 100.0)
    loss_down, mean_down, penalty_down = group_objective(features, down, 100.0)
    assert loss_up.item() == pytest.approx((-mean + 100 * penalty).item(), rel=1e-6)
    assert loss_down.item() == pytest.approx((mean + 100 * penalty).item(), rel=1e-6)
    assert mean_up == mean_down == mean and penalty_up == penalty_down == penalty


def targets() -> list[RenderTarget]:
    return [
        RenderTarget("3a:70", "mixed3a_3x3_pre_relu_conv", 6, "max", 101),
        RenderTarget("3a:70", "mixed3a_3x3_pre_relu_conv", 6, "min", 102),
        RenderTarget("4a:257", "mixed4a_3x3_pre_relu_conv", 65, "max", 103),
        RenderTarget("3b:200", "mixed3b_3x3_pre_relu_conv", 72, "min", 104),
    ]


def test_batched_rendering_equals_rendering_each_unit_alone(model):
    s = settings()
    together = render_chunk(model, targets(), s, transform_seed=9)
    for target, batched in zip(targets(), together, strict=True):
        (alone,) = render_chunk(model, [target], s, transform_seed=9)
        assert batched.target == alone.target
        diff = np.abs(batched.images.astype(int) - alone.images.astype(int))
        assert diff.max() <= 1  # equal up to float rounding across batch sizes
        assert batched.activations == pytest.approx(alone.activations, rel=1e-3, abs=1e-4)
        assert batched.final_channel_mean == pytest.approx(alone.final_channel_mean, rel=1e-3,
                                                           abs=1e-4)


def test_chunking_does_not_change_the_result(model):
    s = settings(steps=2)
    order = {"mixed3a_3x3_pre_relu_conv": 0, "mixed3b_3x3_pre_relu_conv": 1,
             "mixed4a_3x3_pre_relu_conv": 2}
    one = [g for chunk in render_targets(model, targets(), s, transform_seed=1,
                                         layer_order=order, chunk_images=100) for g in chunk]
    pairs = [g for chunk in render_targets(model, targets(), s, transform_seed=1,
                                           layer_order=order, chunk_images=6) for g in chunk]
    assert [g.target for g in one] == [g.target for g in pairs]
    for a, b in zip(one, pairs, strict=True):
        assert np.abs(a.images.astype(int) - b.images.astype(int)).max() <= 1


def test_chunks_group_shallow_layers_first():
    order = {"mixed3a_3x3_pre_relu_conv": 0, "mixed3b_3x3_pre_relu_conv": 1,
             "mixed4a_3x3_pre_relu_conv": 2}
    chunks = plan_chunks(targets(), order, groups_per_chunk=2)
    assert [[t.key for t in c] for c in chunks] == [["3a:70", "3a:70"], ["3b:200", "4a:257"]]
    assert [t.direction for t in chunks[0]] == ["max", "min"]


def test_seeds_make_rendering_deterministic_and_distinct(model):
    s = settings(steps=2)
    a = render_chunk(model, targets()[:1], s, transform_seed=3)[0]
    b = render_chunk(model, targets()[:1], s, transform_seed=3)[0]
    assert np.array_equal(a.images, b.images)
    other = RenderTarget("3a:70", "mixed3a_3x3_pre_relu_conv", 6, "max", 999)
    c = render_chunk(model, [other], s, transform_seed=3)[0]
    assert not np.array_equal(a.images, c.images)


def test_max_images_activate_the_unit_more_than_min_images(model):
    s = settings(steps=12, diversity_weight=0.0, image_size=48)
    up, down = render_chunk(model, targets()[:2], s, transform_seed=0)
    assert min(up.activations) > max(down.activations)
    assert up.images.shape == (3, 40, 40, 3)  # 48 px cropped by 4 px per side


def test_rescoring_is_on_the_saved_pixels_without_transforms(model):
    s = settings(steps=2)
    group = render_chunk(model, targets()[:1], s, transform_seed=0)[0]
    again = score_images(model, group.images, [("mixed3a_3x3_pre_relu_conv", 6)] * 3)
    assert again == group.activations


def test_faster_redirected_relu_keeps_lucents_gradient():
    from lucent.modelzoo.inceptionv1.helper_layers import RedirectedReLU

    from stimgen.models import RedirectedReluLayer

    x = torch.randn(2, 3, 5, 5, requires_grad=True)
    grad = torch.randn(2, 3, 5, 5)
    (theirs,) = torch.autograd.grad(RedirectedReLU.apply(x), x, grad)
    (ours,) = torch.autograd.grad(RedirectedReluLayer()(x), x, grad)
    assert torch.equal(ours, theirs)
    assert torch.equal(RedirectedReluLayer()(x), x.clamp(min=0))


# -- the authors' settings (preset iclr2021) --------------------------------------------


def test_the_iclr2021_preset_is_the_authors_setting():
    from stimgen.config import SyntheticConfig

    paper = SyntheticConfig().settings()
    assert paper["diversity_layer"] == "mixed"  # the whole mixed layer, pre-ReLU
    assert (paper["relu_gradient"], paper["relu_redirect_steps"]) == ("lucid", 16)
    assert paper["transforms"] == "lucid"
    assert paper["n_images"] == 10  # optimised; a trial shows 9 of them
    # the behaviour before these were settings stays available
    before = SyntheticConfig(diversity_layer="unit", relu_gradient="lucent",
                             transforms="lucent").settings()
    assert (before["diversity_layer"], before["relu_gradient"], before["transforms"]) == (
        "unit", "lucent", "lucent")


def test_the_whole_mixed_layer_is_its_four_branch_convolutions_in_concatenation_order():
    from stimgen.featurevis import diversity_layers

    assert diversity_layers("mixed4a_3x3_pre_relu_conv", "mixed") == (
        "mixed4a_1x1_pre_relu_conv", "mixed4a_3x3_pre_relu_conv", "mixed4a_5x5_pre_relu_conv",
        "mixed4a_pool_reduce_pre_relu_conv")
    assert diversity_layers("mixed4a_3x3_pre_relu_conv", "unit") == (
        "mixed4a_3x3_pre_relu_conv",)
    assert diversity_layers("layer3.1.conv2", "mixed") == ("layer3.1.conv2",)  # other models


@pytest.mark.parametrize(("mode", "channels"), [("mixed", 192 + 204 + 48 + 64), ("unit", 204)])
def test_the_diversity_term_is_taken_on_the_layer_the_setting_names(model, monkeypatch, mode,
                                                                     channels):
    import stimgen.featurevis as featurevis

    seen: list[int] = []
    original = featurevis.diversity_penalty

    def spy(features: torch.Tensor) -> torch.Tensor:
        seen.append(features.shape[1])
        return original(features)

    monkeypatch.setattr(featurevis, "diversity_penalty", spy)
    target = RenderTarget("4a:257", "mixed4a_3x3_pre_relu_conv", 65, "max", 103)
    render_chunk(model, [target], settings(steps=2, diversity_layer=mode), transform_seed=1)
    assert seen == [channels, channels]  # mixed4a_pre_relu has 508 channels


def lucid_redirected_relu_grad(x: np.ndarray, grad: np.ndarray) -> np.ndarray:
    """lucid's `redirected_relu_grad` (lucid/misc/redirected_relu_grad.py) in numpy."""
    relu_grad = np.where(x < 0, 0.0, grad)
    redirected = np.where((x < 0) & (grad > 0), 0.0, grad)
    magnitude = np.linalg.norm(relu_grad.reshape(len(x), -1), axis=1)
    return np.where((magnitude > 0).reshape(-1, 1, 1, 1), relu_grad, redirected)


def test_the_lucid_rule_redirects_only_images_whose_whole_gradient_is_blocked():
    from stimgen.models import RedirectedReluLayer, relu_rule

    x = torch.randn(3, 2, 4, 4)
    x[1] = -x[1].abs() - 0.1  # image 1 is negative everywhere: ReLU blocks its gradient
    grad = torch.randn(3, 2, 4, 4)
    layer = RedirectedReluLayer()
    for rule, expected in (
        ("redirect", lucid_redirected_relu_grad(x.numpy(), grad.numpy())),
        ("relu", np.where(x.numpy() < 0, 0.0, grad.numpy())),
        ("leak", np.where(x.numpy() < 0, 0.1 * grad.numpy(), grad.numpy())),
    ):
        leaf = x.clone().requires_grad_(True)
        with relu_rule(layer, rule):
            out = layer(leaf)
        (ours,) = torch.autograd.grad(out, leaf, grad)
        assert np.allclose(ours.numpy(), expected), rule
    assert layer.rule == "leak"  # the rule comes back after the block
    redirected = lucid_redirected_relu_grad(x.numpy(), grad.numpy())
    assert np.count_nonzero(redirected[1]) > 0  # lucid lets some gradient through ...
    assert np.count_nonzero(np.where(x.numpy() < 0, 0.0, grad.numpy())[1]) == 0  # ReLU none


def test_the_redirected_gradient_is_used_for_the_first_steps_only(model):
    from stimgen.models import RedirectedReluLayer

    relu = next(m for m in model.module.modules() if isinstance(m, RedirectedReluLayer))
    rules: list[str] = []
    handle = relu.register_forward_hook(lambda m, _i, _o: rules.append(m.rule))
    try:
        target = RenderTarget("3a:70", "mixed3a_3x3_pre_relu_conv", 6, "max", 101)
        render_chunk(model, [target], settings(steps=4, relu_gradient="lucid",
                                               relu_redirect_steps=2), transform_seed=0)
        assert rules[:4] == ["redirect", "redirect", "relu", "relu"]
        rules.clear()
        render_chunk(model, [target], settings(steps=2, relu_gradient="lucent"),
                     transform_seed=0)
        assert rules[:2] == ["leak", "leak"]
    finally:
        handle.remove()
    assert settings(relu_gradient="lucid").relu_rule(15) == "redirect"
    assert settings(relu_gradient="lucid").relu_rule(16) == "relu"


def test_lucids_jitter_is_a_random_crop_and_its_scale_a_plain_resize():
    from stimgen.featurevis import LucidTransforms

    s = settings(image_size=64, transforms="lucid")
    image = torch.rand(2, 3, 64, 64)
    rng = np.random.RandomState(4)
    dx, dy = rng.randint(17), rng.randint(17)
    cropped = LucidTransforms(s, np.random.RandomState(4), CPU)._jitter(image, 16)
    assert torch.equal(cropped, image[:, :, dy:dy + 48, dx:dx + 48])  # no zero fill
    resized = LucidTransforms(s, np.random.RandomState(0), CPU)._scale(image, [0.95])
    assert resized.shape[2:] == (60, 60)  # int(0.95 x 64), no padding back to 64
    for seed in range(5):  # the chain shrinks the image by both jitters and scales it
        out = LucidTransforms(s, np.random.RandomState(seed), CPU)(image)
        assert 37 <= out.shape[-1] <= 42 and out.shape[-1] == out.shape[-2]  # (64-16)s-8
    # lucent's transforms keep the size (shift with zero fill, resize and pad)
    assert PaperTransforms(s, np.random.RandomState(0), CPU)(image).shape[-1] >= 64


def test_an_image_the_transforms_make_too_small_is_a_one_line_error(model):
    from crowdkit.errors import CrowdkitError

    target = RenderTarget("4a:257", "mixed4a_3x3_pre_relu_conv", 65, "max", 103)
    with pytest.raises(CrowdkitError, match='too small .* transforms = "lucent"'):
        render_chunk(model, [target], settings(steps=1, image_size=32, crop=2,
                                               transforms="lucid"), transform_seed=0)
