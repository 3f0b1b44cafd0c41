"""Image files as the worker's page sees them: content-hash keys, digests, tagged copies.

Every image a HIT shows is hosted under `image_key(bytes)`: 32 hex digits of the file's
sha256 plus its extension, so nothing in a URL says what an image is. The design registers
each image it shows in an `ImageRegistry`, which hands out keys and remembers the file
behind each (the files publish must host).
"""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from pathlib import Path

from crowdkit.errors import ConfigError
from crowdkit.files import file_digest, write_atomically

CONTENT_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
                 ".gif": "image/gif", ".webp": "image/webp"}


def image_key(data: bytes, suffix: str) -> str:
    """The content-hash key of an image: 128 bits of its sha256 in hex, plus its extension.

    128 bits never collide within a study, and the shorter key keeps a 40-trial HIT with
    9 + 9 references well inside MTurk's 64 KB limit on the question.
    """
    return key_for_digest(hashlib.sha256(data).hexdigest(), suffix)


def key_for_digest(sha256_hex: str, suffix: str) -> str:
    return sha256_hex[:32] + suffix.lower()


def content_type(path: Path) -> str:
    return CONTENT_TYPES.get(path.suffix.lower(), "image/png")


class DigestCache:
    """File digests remembered by size and modification time, as git's index does.

    Publishing designs the study again to check that nothing changed; without this, every
    publish would read and hash every image. A file whose size or mtime changed is hashed
    afresh. `path` None keeps the cache in memory only.
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.entries: dict[str, list] = {}
        if path is not None and path.is_file():
            try:
                self.entries = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                self.entries = {}  # a damaged cache only costs a re-hash
        self.changed = False

    def sha256(self, file: Path) -> str:
        try:
            stat = file.stat()
            stamp = [stat.st_size, stat.st_mtime_ns]
            entry = self.entries.get(str(file))
            if entry is not None and entry[:2] == stamp:
                return str(entry[2])
            digest = file_digest(file)
        except OSError as exc:
            raise ConfigError(f"{file}: cannot read image: {exc.strerror}") from None
        self.entries[str(file)] = [*stamp, digest]
        self.changed = True
        return digest

    def save(self) -> None:
        if self.path is not None and self.changed:
            write_atomically(self.path, json.dumps(self.entries))
            self.changed = False


def read_image(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read image: {exc.strerror}") from None


def tagged_copy(data: bytes, suffix: str, nonce: str) -> bytes:
    """The same image with a comment added: identical pixels, different bytes.

    PNG gets a tEXt chunk before IEND; JPEG a COM segment after SOI. Nothing is re-encoded,
    so the copy decodes to exactly the same pixels as the original.
    """
    text = f"crowdkit {hashlib.sha256(nonce.encode()).hexdigest()[:16]}".encode()
    if suffix == ".png" and data.endswith(b"IEND\xaeB`\x82"):
        body = b"tEXt" + b"Comment\x00" + text
        chunk = struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body))
        return data[:-12] + chunk + data[-12:]
    if suffix in (".jpg", ".jpeg") and data[:2] == b"\xff\xd8":
        segment = b"\xff\xfe" + struct.pack(">H", len(text) + 2) + text
        return data[:2] + segment + data[2:]
    raise ConfigError(f"catch trials need PNG or JPEG images; cannot copy a {suffix} file")


class ImageRegistry:
    """The images a design shows, by key: what trial types ask for keys and copies.

    `key(path, sha256)` hashes a stimulus (checking it against the manifest's digest);
    `copy_key(path, nonce)` writes a pixel-identical copy under a new key into `copies_dir`.
    """

    def __init__(self, stimuli_dir: Path, copies_dir: Path, digests: DigestCache) -> None:
        self.stimuli_dir = stimuli_dir
        self.copies_dir = copies_dir
        self.digests = digests
        self.images: dict[str, Path] = {}
        self._key_of: dict[Path, str] = {}

    def key(self, relative_path: str, expected_sha256: str | None = None) -> str:
        path = self.stimuli_dir / relative_path
        key = self._key_of.get(path)
        if key is None:
            digest = self.digests.sha256(path)
            if expected_sha256 and expected_sha256 != digest:
                raise ConfigError(f"{path}: the file changed since the manifest was written "
                                  "(sha256 differs); re-render or fix the manifest")
            key = key_for_digest(digest, path.suffix)
            self._key_of[path] = key
            self.images[key] = path
        return key

    def copy_key(self, relative_path: str, nonce: str) -> str:
        """A pixel-identical copy of a stimulus under a new key (see `tagged_copy`)."""
        src = self.stimuli_dir / relative_path
        data = tagged_copy(read_image(src), src.suffix.lower(), nonce)
        key = image_key(data, src.suffix)
        path = self.copies_dir / key
        if not path.exists():
            write_atomically(path, data)
        self.images[key] = path
        return key
