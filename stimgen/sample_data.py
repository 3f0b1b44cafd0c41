"""A small natural-image set with no download, for demos, tests and benchmarks.

The images are crops, flips and colour variants of the two photographs scikit-learn ships
(`china.jpg` and `flower.jpg`). They are not ImageNet, but they are real photographs with
real texture and colour, so a network's activations spread over them and exemplars differ.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

from crowdkit.errors import CrowdkitError

PHOTOGRAPHS = ("china.jpg", "flower.jpg")


def _photographs() -> list[Image.Image]:
    """scikit-learn's two sample photographs, read from its package without importing it."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise CrowdkitError("the sample images need scikit-learn: pip install scikit-learn")
    folder = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "images"
    photos = []
    for name in PHOTOGRAPHS:
        with Image.open(folder / name) as image:
            photos.append(image.convert("RGB"))
    return photos


def write_sample_images(
    dest_dir: Path | str,
    n: int,
    seed: int = 0,
    *,
    size: tuple[int, int] = (500, 375),
    quality: int = 90,
) -> list[Path]:
    """Write `n` varied JPEG photographs of `size` (ImageNet's typical 500 x 375) to `dest_dir`.

    Each is a random crop (a third of the frame or more) of one of the two photographs,
    maybe mirrored, with random brightness, contrast, saturation and a channel permutation.
    The same `seed` writes the same files. Returns the paths in order.
    """
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    photos = _photographs()
    paths = []
    for i in range(n):
        photo = photos[int(rng.integers(len(photos)))]
        width, height = photo.size
        crop_w = int(width * rng.uniform(0.35, 1.0))
        crop_h = min(height, int(crop_w * rng.uniform(0.6, 0.9)))
        left = int(rng.integers(0, width - crop_w + 1))
        top = int(rng.integers(0, height - crop_h + 1))
        image = photo.crop((left, top, left + crop_w, top + crop_h)).resize(
            size, Image.Resampling.BILINEAR)
        if rng.random() < 0.5:
            image = ImageOps.mirror(image)
        image = ImageEnhance.Brightness(image).enhance(rng.uniform(0.6, 1.4))
        image = ImageEnhance.Contrast(image).enhance(rng.uniform(0.6, 1.5))
        image = ImageEnhance.Color(image).enhance(rng.uniform(0.2, 1.8))
        channels = image.split()
        image = Image.merge("RGB", [channels[j] for j in rng.permutation(3)])
        path = dest / f"sample_{i:05d}.jpg"
        image.save(path, format="JPEG", quality=quality)
        paths.append(path)
    return paths
