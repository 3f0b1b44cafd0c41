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
