"""Natural images: a folder searched recursively, cropped the way the paper cropped them.

Preprocessing is Resize(256) then CenterCrop(224) on the decoded RGB image; `load_crop`
is the one function that does it, so the crop the scan scores and the crop that is saved
are the same pixels. Unreadable files are skipped and counted, never fatal.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset
from torchvision import transforms

from crowdkit.errors import ConfigError
from stimgen.hashing import fingerprint

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp"}
PREPROCESSING = "Resize(256), CenterCrop(224)"
CROP_SIZE = 224

_CROP = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(CROP_SIZE)])
# Errors a broken or foreign file raises while decoding.
DECODE_ERRORS = (OSError, UnidentifiedImageError, ValueError, SyntaxError,
                  Image.DecompressionBombError)


# How to get a dataset, for the errors about a missing one.
GET_A_DATASET = (
    "point [stimuli] dataset at a folder of natural images (the paper used ImageNet's "
    "validation set, 50,000 images, from image-net.org); to try crowdkit out, "
    "`crowdkit init NEW_DIR` writes 60 sample photographs into NEW_DIR/images"
)


def list_images(root: Path) -> list[str]:
    """Image files under `root`, as sorted relative POSIX paths (ImageNet's val layout works)."""
    if not root.is_dir():
        raise ConfigError(f"[stimuli] dataset: {root} is not a directory; {GET_A_DATASET}")
    found: list[str] = []
    for directory, subdirs, files in os.walk(root, followlinks=True):
        subdirs.sort()
        for name in files:
            if Path(name).suffix.lower() in IMAGE_EXTENSIONS and not name.startswith("."):
                found.append(Path(directory, name).relative_to(root).as_posix())
    found.sort()
    if not found:
        raise ConfigError(
            f"[stimuli] dataset: no images in {root} (looked for "
            f"{', '.join(sorted(IMAGE_EXTENSIONS))}, in sub-folders too); {GET_A_DATASET}"
        )
    return found


def load_crop(path: Path) -> Image.Image:
    """The crop the model sees: RGB, Resize(256), CenterCrop(224)."""
    with Image.open(path) as image:
        return _CROP(image.convert("RGB"))


@dataclass(frozen=True)
class ImageFolder:
    """A dataset root and its files; `fingerprint` changes when any file changes."""

    root: Path
    files: list[str]

    @classmethod
    def scan(cls, root: Path) -> ImageFolder:
        return cls(root, list_images(root))

    def __len__(self) -> int:
        return len(self.files)

    def path(self, index: int) -> Path:
        return self.root / self.files[index]

    def fingerprint(self) -> str:
        stats = []
        for rel in self.files:
            try:
                st = (self.root / rel).stat()
                stats.append((rel, st.st_size, st.st_mtime_ns))
            except OSError:
                stats.append((rel, -1, -1))
        # Names, sizes and times, not the root: a study directory that moves keeps its cache.
        return fingerprint({"files": stats, "preprocessing": PREPROCESSING})


class CropDataset(Dataset):
    """(index, uint8 CHW crop, readable) for dataset indices `start` up to `stop` (None: the
    end), for a DataLoader.

    Crops travel as uint8 (4x less to copy than float); unreadable files come back as a
    blank crop flagged unreadable, so one broken file never stops a scan.
    """

    def __init__(self, folder: ImageFolder, start: int = 0, stop: int | None = None) -> None:
        self.folder = folder
        self.start = start
        self.stop = len(folder) if stop is None else min(stop, len(folder))

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def __getitem__(self, i: int) -> tuple[int, torch.Tensor, bool]:
        index = self.start + i
        try:
            crop = load_crop(self.folder.path(index))
        except DECODE_ERRORS:
            return index, torch.zeros(3, CROP_SIZE, CROP_SIZE, dtype=torch.uint8), False
        array = np.asarray(crop, dtype=np.uint8)
        return index, torch.from_numpy(array.copy()).permute(2, 0, 1), True
