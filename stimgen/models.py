"""Models and their feature maps.

Three families load here: lucent's InceptionV1 (the paper's model), any torchvision
classification model by name, and any `package.module:function` that returns an
`nn.Module`. `FeatureTap` reads named layers and stops the forward pass as soon as the last
of them has run, which is where most of the CPU time of a scan or a render is saved.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import http.client
import importlib
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

import torch
from torch import Tensor, nn

from crowdkit.errors import ConfigError, CrowdkitError
from crowdkit.files import file_digest

INCEPTION = "inceptionv1"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

Family = Literal["lucent", "torchvision", "custom"]
Normalization = Literal["inceptionv1", "imagenet"]

OFFLINE_HINT = (
    'set weights = "random" in [stimuli] for seeded random weights (offline), '
    'or weights = "PATH" to a local state-dict file'
)


@dataclass
class LoadedModel:
    """A model ready to read features from: eval mode, on its device, weights identified."""

    module: nn.Module
    name: str
    family: Family
    weights: str
    weights_sha256: str
    random_weights: bool
    normalization: Normalization
    device: torch.device

    def preprocess(self, images: Tensor) -> Tensor:
        """Map RGB in [0, 1] (N, 3, H, W) to the input range the model was trained on."""
        if self.normalization == "inceptionv1":
            # lucid's InceptionV1 takes [-117, 138] (lucent's preprocess_inceptionv1).
            x = images * 255 - 117
        else:
            mean = torch.tensor(IMAGENET_MEAN, device=images.device).view(1, 3, 1, 1)
            std = torch.tensor(IMAGENET_STD, device=images.device).view(1, 3, 1, 1)
            x = (images - mean) / std
        return x.contiguous(memory_format=torch.channels_last)

    @property
    def preprocessing(self) -> str:
        if self.normalization == "inceptionv1":
            return "RGB in [0, 1] * 255 - 117 (lucid InceptionV1)"
        return f"RGB in [0, 1], normalised with mean {IMAGENET_MEAN}, std {IMAGENET_STD}"

    def fingerprint(self) -> dict[str, str]:
        return {"name": self.name, "weights_sha256": self.weights_sha256,
                "normalization": self.normalization}


def resolve_device(name: str | None) -> torch.device:
    """`auto` -> CUDA when available, else CPU; a CUDA request without CUDA is an error."""
    name = (name or "auto").strip()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ConfigError(
            f"device {name!r} is not a device name; use auto, cpu, cuda or cuda:N"
        ) from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise CrowdkitError(
                f"device {name!r} was asked for, but CUDA is not available here; "
                "use --device cpu"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise CrowdkitError(
                f"device {name!r}: this machine has {torch.cuda.device_count()} CUDA device(s)"
            )
    elif device.type != "cpu" and device.type != "mps":
        raise ConfigError(f"device {name!r} is not supported; use auto, cpu, cuda or cuda:N")
    return device


def load_model(
    name: str,
    weights: str,
    *,
    seed: int,
    device: torch.device,
    base_dir: Path | None = None,
) -> LoadedModel:
    """Load `name` with `weights` ("pretrained", "random" or a file path) onto `device`."""
    name = name.strip()
    if name.lower() == INCEPTION:
        family: Family = "lucent"
        normalization: Normalization = "inceptionv1"
        factory, pretrained = _inception_factory()
        name = INCEPTION
    elif ":" in name:
        family, normalization = "custom", "imagenet"
        factory, pretrained = _custom_factory(name)
    else:
        family, normalization = "torchvision", "imagenet"
        factory, pretrained = _torchvision_factory(name)

    kind = weights.strip()
    if kind == "random":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            module = factory()
            if family == "custom":
                _reset_parameters(module)
        label, random_weights = f"random (seed {seed})", True
        sha = _state_sha256(module)
    elif kind == "pretrained":
        module, sha = pretrained()
        label, random_weights = "pretrained", False
    else:
        path = Path(kind).expanduser()
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            module = factory()
        _load_state_file(module, path)
        label, random_weights, sha = str(path), False, file_digest(path)

    _disable_inplace_relu(module)
    if family == "lucent":
        _speed_up_redirected_relu(module)
    module = module.to(device).eval()
    if device.type != "mps":
        module = module.to(memory_format=torch.channels_last)
    return LoadedModel(module, name, family, label, sha, random_weights, normalization, device)


def _inception_factory() -> tuple[Callable[[], nn.Module], Callable[[], tuple[nn.Module, str]]]:
    from lucent.modelzoo.inceptionv1 import InceptionV1 as lucent_inception
    from lucent.modelzoo.inceptionv1.InceptionV1 import model_urls

    def pretrained() -> tuple[nn.Module, str]:
        url = model_urls[INCEPTION]
        module = _download(lambda: lucent_inception(pretrained=True), "InceptionV1", url)
        return module, _cached_download_sha(url, module)

    return (lambda: lucent_inception(pretrained=False)), pretrained


def _torchvision_factory(
    name: str,
) -> tuple[Callable[[], nn.Module], Callable[[], tuple[nn.Module, str]]]:
    import torchvision.models as tv

    known = tv.list_models(module=tv)
    if name not in known:
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else (
            '; use "inceptionv1", a torchvision classification model such as "resnet50", '
            'or "package.module:function"')
        raise ConfigError(f"[stimuli] model: unknown model {name!r}{hint}")

    def pretrained() -> tuple[nn.Module, str]:
        default = tv.get_model_weights(name).DEFAULT
        module = _download(lambda: tv.get_model(name, weights=default), name, default.url)
        return module, _cached_download_sha(default.url, module)

    return (lambda: tv.get_model(name, weights=None)), pretrained


def _custom_factory(
    spec: str,
) -> tuple[Callable[[], nn.Module], Callable[[], tuple[nn.Module, str]]]:
    module_name, _, function_name = spec.partition(":")
    try:
        function = getattr(importlib.import_module(module_name), function_name)
    except ImportError as exc:
        raise ConfigError(f"[stimuli] model: cannot import {module_name!r}: {exc}") from None
    except AttributeError:
        raise ConfigError(
            f"[stimuli] model: {module_name!r} has no function {function_name!r}"
        ) from None

    def build() -> nn.Module:
        module = function()
        if not isinstance(module, nn.Module):
            raise ConfigError(
                f"[stimuli] model: {spec} returned {type(module).__name__}, not an nn.Module"
            )
        return module

    def as_returned() -> tuple[nn.Module, str]:
        module = build()
        return module, _state_sha256(module)

    return build, as_returned


def _download(build: Callable[[], nn.Module], what: str, url: str) -> nn.Module:
    """Run a library's own weight download; no network becomes a one-line error."""
    try:
        return build()
    except (OSError, http.client.HTTPException, RuntimeError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CrowdkitError(
            f"could not get the pretrained {what} weights from {url} ({reason}); {OFFLINE_HINT}"
        ) from None


def _cached_download_sha(url: str, module: nn.Module) -> str:
    path = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)
    return file_digest(path) if path.is_file() else _state_sha256(module)


def _load_state_file(module: nn.Module, path: Path) -> None:
    if not path.is_file():
        raise ConfigError(f"[stimuli] weights: no such file: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        raise ConfigError(
            f"[stimuli] weights: {path} is not a readable state dict: {exc}") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ConfigError(f"[stimuli] weights: {path} does not hold a state dict")
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise ConfigError(f"[stimuli] weights: {path} does not fit the model: {first}") from None


def _state_sha256(module: nn.Module) -> str:
    """A hash of the weights themselves, for weights that never lived in a file."""
    digest = hashlib.sha256()
    for key, tensor in sorted(module.state_dict().items()):
        digest.update(key.encode("utf-8"))
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _reset_parameters(module: nn.Module) -> None:
    for sub in module.modules():
        reset = getattr(sub, "reset_parameters", None)
        if callable(reset):
            reset()


def _disable_inplace_relu(module: nn.Module) -> None:
    """In-place ReLUs would overwrite the pre-ReLU maps a tap has just read."""
    for sub in module.modules():
        if isinstance(sub, nn.ReLU | nn.ReLU6 | nn.LeakyReLU | nn.Hardtanh | nn.SiLU):
            sub.inplace = False


RELU_RULES = ("leak", "redirect", "relu")


class _RedirectedReLU(torch.autograd.Function):
    """ReLU forward; the backward pass follows one of three rules (`RELU_RULES`):

    - "leak": lucent's RedirectedReLU, 0.1 x the gradient where the input is negative,
      computed with `torch.where` instead of boolean indexing, which made the original the
      slowest op of a CPU render. Same values.
    - "redirect": lucid's `redirected_relu_grad`, as the paper's authors used it: per image,
      the plain ReLU gradient, unless it is zero everywhere for that image; then the
      gradient passes except where it would push an already negative input lower.
    - "relu": the plain ReLU gradient (zero where the input is negative).
    """

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: Tensor, rule: str) -> Tensor:
        ctx.save_for_backward(x)
        ctx.rule = rule  # type: ignore[attr-defined]  # autograd's ctx takes attributes
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx,
                 grad: Tensor) -> tuple[Tensor, None]:
        # torch's stubs give backward the forward's FunctionCtx, which has no saved_tensors;
        # the ctx autograd passes in at run time does
        (x,) = ctx.saved_tensors  # type: ignore[attr-defined]
        rule = ctx.rule  # type: ignore[attr-defined]
        negative = x < 0
        if rule == "leak":
            return torch.where(negative, grad * 1e-1, grad), None
        relu_grad = torch.where(negative, torch.zeros_like(grad), grad)
        if rule == "relu" or x.dim() < 2:
            return relu_grad, None
        redirected = torch.where(negative & (grad > 0), torch.zeros_like(grad), grad)
        blocked = relu_grad.flatten(1).abs().amax(dim=1) == 0
        blocked = blocked.view(-1, *([1] * (x.dim() - 1)))
        return torch.where(blocked, redirected, relu_grad), None


class RedirectedReluLayer(nn.Module):
    """InceptionV1's ReLU, whose backward rule `relu_rule` sets (lucent's leak by default)."""

    def __init__(self) -> None:
        super().__init__()
        self.rule = "leak"

    def forward(self, x: Tensor) -> Tensor:
        return _RedirectedReLU.apply(x, self.rule)


@contextlib.contextmanager
def relu_rule(model: nn.Module, rule: str) -> Iterator[None]:
    """Give every ReLU of `model` that has a rule (lucent's InceptionV1) the backward rule
    `rule` for the forward passes inside the block; the previous rules come back after."""
    if rule not in RELU_RULES:
        raise ValueError(f"unknown ReLU gradient rule {rule!r}")
    layers = [m for m in model.modules() if isinstance(m, RedirectedReluLayer)]
    before = [m.rule for m in layers]
    for layer in layers:
        layer.rule = rule
    try:
        yield
    finally:
        for layer, old in zip(layers, before, strict=True):
            layer.rule = old


def _speed_up_redirected_relu(model: nn.Module) -> None:
    from lucent.modelzoo.inceptionv1.helper_layers import RedirectedReluLayer as Original

    for name, sub in list(model.named_modules()):
        if isinstance(sub, Original):
            parent_name, _, attr = name.rpartition(".")
            setattr(model.get_submodule(parent_name) if parent_name else model, attr,
                    RedirectedReluLayer())


class StopForward(Exception):
    """Raised by a tap's hook once every layer it needs has run."""


@dataclass(frozen=True)
class LayerInfo:
    name: str
    channels: int
    order: int  # position in execution order among the probed layers


class FeatureTap:
    """Read the outputs of named layers and stop the forward pass after the last of them.

    `reduce` is applied inside the hook, so statistics are taken before anything later in
    the network can touch the tensor. Each layer's first call in a forward pass counts.
    """

    def __init__(
        self,
        model: nn.Module,
        layers: Iterable[str],
        *,
        reduce: Callable[[Tensor], Tensor] | None = None,
    ) -> None:
        self.model = model
        self.layers = list(dict.fromkeys(layers))
        self.reduce = reduce
        modules = dict(model.named_modules())
        for layer in self.layers:
            if layer not in modules:
                raise ConfigError(unknown_layer_message(layer, list(modules)))
        self._outputs: dict[str, Tensor] = {}
        self._order: list[str] = []
        self._handles = [
            modules[layer].register_forward_hook(self._hook(layer)) for layer in self.layers
        ]

    def _hook(self, layer: str) -> Callable[..., None]:
        def hook(_module: nn.Module, _inputs: object, output: object) -> None:
            if layer in self._outputs:
                return
            if not isinstance(output, Tensor) or output.dim() not in (2, 4):
                raise ConfigError(
                    f"layer {layer!r} does not output a feature map (N, C, H, W) or (N, C)"
                )
            self._outputs[layer] = self.reduce(output) if self.reduce else output
            self._order.append(layer)
            if len(self._outputs) == len(self.layers):
                raise StopForward

        return hook

    def __call__(self, x: Tensor) -> dict[str, Tensor]:
        self._outputs, self._order = {}, []
        with contextlib.suppress(StopForward):
            self.model(x)
        missing = [layer for layer in self.layers if layer not in self._outputs]
        if missing:
            raise ConfigError(f"layer {missing[0]!r} never ran in the model's forward pass")
        return self._outputs

    @property
    def execution_order(self) -> list[str]:
        return list(self._order)

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def __enter__(self) -> FeatureTap:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def spatial_mean(output: Tensor) -> Tensor:
    """The unit statistic: each channel's mean over space, (N, C, H, W) -> (N, C)."""
    return output.float().mean(dim=(2, 3)) if output.dim() == 4 else output.float()


def probe_layers(
    model: LoadedModel, layers: Iterable[str], size: int = 224
) -> dict[str, LayerInfo]:
    """Channel counts and execution order of `layers`, from one forward pass on a blank image."""
    layers = list(dict.fromkeys(layers))
    if not layers:
        return {}
    x = model.preprocess(torch.full((1, 3, size, size), 0.5, device=model.device))
    with torch.inference_mode(), FeatureTap(model.module, layers) as tap:
        outputs = tap(x)
        order = tap.execution_order
    return {
        name: LayerInfo(name, int(outputs[name].shape[1]), order.index(name))
        for name in layers
    }


def unknown_layer_message(layer: str, known: list[str]) -> str:
    close = difflib.get_close_matches(layer, [k for k in known if k], n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return f"unknown layer {layer!r}{hint}"
