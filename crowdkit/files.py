"""Small file helpers every stage shares: atomic writes and content digests."""

from __future__ import annotations

import hashlib
from pathlib import Path


def write_atomically(path: Path, data: str | bytes) -> None:
    """Write all of `data` or nothing: a crash never leaves half a file at `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    if isinstance(data, str):
        partial.write_text(data, encoding="utf-8")
    else:
        partial.write_bytes(data)
    partial.replace(path)


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """The hex digest of a file, read in chunks so large files need little memory."""
    digest = hashlib.new(algorithm)
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
