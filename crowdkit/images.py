"""Image files as the worker's page sees them: opaque keys, padded copies, digests.

Every image a HIT shows is hosted under `image_key(bytes)`: 32 hex digits of the served
file's sha256 plus its extension, so nothing in a URL says what an image is. A study's
ledger holds a secret; with it, each image is served as a copy padded to the length of
every other image of its pixel size and type, with filler keyed by the secret
(`ImageRegistry`, `served_bytes`), so nothing a worker downloads -- name, bytes or size --
tells a catch trial's copy, or the max query, apart. Studies published before ledgers had
a secret serve the stimuli as they are, and `tagged_copy`'s copies. The design registers
each image it shows in an `ImageRegistry`, which hands out keys and remembers the file
behind each (the files publish must host).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import struct
import zlib
from pathlib import Path
from typing import Any

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
        # path -> [size, mtime, sha256]; "dims:" + path -> [size, mtime, width, height];
        # "served" -> {what a served image is made of: its key}
        self.entries: dict[str, Any] = {}
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

    @property
    def served(self) -> dict[str, str]:
        """What served image each (file, nonce, length, secret) made: its key."""
        table = self.entries.setdefault("served", {})
        assert isinstance(table, dict)
        return table

    def remember_served(self, made_of: str, key: str) -> None:
        self.served[made_of] = key
        self.changed = True

    def size(self, file: Path) -> int:
        try:
            return file.stat().st_size
        except OSError as exc:
            raise ConfigError(f"{file}: cannot read image: {exc.strerror}") from None

    def dimensions(self, file: Path) -> tuple[int, int]:
        """(width, height) in pixels, remembered like digests (0, 0 when unreadable)."""
        try:
            stat = file.stat()
        except OSError as exc:
            raise ConfigError(f"{file}: cannot read image: {exc.strerror}") from None
        stamp = [stat.st_size, stat.st_mtime_ns]
        entry = self.entries.get("dims:" + str(file))
        if entry is not None and entry[:2] == stamp:
            return int(entry[2]), int(entry[3])
        width, height = pixel_size(file)
        self.entries["dims:" + str(file)] = [*stamp, width, height]
        self.changed = True
        return width, height

    def save(self) -> None:
        if self.path is not None and self.changed:
            write_atomically(self.path, json.dumps(self.entries))
            self.changed = False


PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"
TAG_BYTES = 16  # the keyed part of the filler: what makes a copy's bytes its own
MAX_COM = 65533  # the most a JPEG comment segment holds
# The smallest filler a served image gets: PNG a chunk (12 bytes) with the tag; JPEG one
# comment segment (4 bytes) with the tag.
FILLER_BYTES = {".png": 12 + TAG_BYTES, ".jpg": 4 + TAG_BYTES, ".jpeg": 4 + TAG_BYTES}


def read_image(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read image: {exc.strerror}") from None


def pixel_size(path: Path) -> tuple[int, int]:
    """An image's width and height from its header; (0, 0) when it cannot be read."""
    with path.open("rb") as f:
        head = f.read(24)
    if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
        width, height = struct.unpack(">II", head[16:24])
        return int(width), int(height)
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return image.size
    except (OSError, UnidentifiedImageError):
        return 0, 0


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

    `key(path, sha256)` registers a stimulus (checking it against the manifest's digest);
    `copy_key(path, nonce)` a pixel-identical copy of one under a new key.

    Without a secret (studies published before ledgers had one) a key is the content hash
    of the file and a copy is `tagged_copy`'s, written into `out_dir`. With the ledger's
    secret every image is served as a padded copy written into `out_dir` (`served_bytes`):
    the filler that makes its bytes its own is keyed with the secret, its key is the content
    hash of those bytes, and every image of one pixel size and type has the same length
    (`plan_padding` sets the lengths), so neither a name, nor the bytes, nor the size of a
    file tells a worker which is a copy of which, or which is the max query.
    """

    def __init__(self, stimuli_dir: Path, out_dir: Path, digests: DigestCache,
                 secret: bytes | None = None) -> None:
        self.stimuli_dir = stimuli_dir
        self.copies_dir = out_dir
        self.digests = digests
        self.secret = secret
        self.images: dict[str, Path] = {}
        self.lengths: dict[Path, int] = {}  # the served length of each planned file
        self._key_of: dict[tuple[Path, str], str] = {}

    def plan_padding(self, relative_paths: list[str]) -> None:
        """Set every file's served length: the longest file of its pixel size and type (of
        all the manifest names, so a study that grows keeps its keys), plus the filler."""
        groups: dict[tuple[str, int, int], list[tuple[Path, int]]] = {}
        for rel in relative_paths:
            path = self.stimuli_dir / rel
            size = self.digests.size(path)
            width, height = self.digests.dimensions(path)
            groups.setdefault((path.suffix.lower(), width, height), []).append((path, size))
        for (suffix, _, _), members in groups.items():
            target = max(size for _, size in members) + FILLER_BYTES.get(suffix, 0)
            for path, _ in members:
                self.lengths[path] = target

    def key(self, relative_path: str, expected_sha256: str | None = None) -> str:
        path = self.stimuli_dir / relative_path
        key = self._key_of.get((path, ""))
        if key is None:
            digest = self.digests.sha256(path)
            if expected_sha256 and expected_sha256 != digest:
                raise ConfigError(f"{path}: the file changed since the manifest was written "
                                  "(sha256 differs); re-render or fix the manifest")
            if self.secret is None:
                key = key_for_digest(digest, path.suffix)
                self.images[key] = path
            else:
                key = self._served(path, digest, "")
            self._key_of[(path, "")] = key
        return key

    def copy_key(self, relative_path: str, nonce: str) -> str:
        """A pixel-identical copy of a stimulus under a new key (see `tagged_copy`)."""
        src = self.stimuli_dir / relative_path
        if self.secret is not None:
            key = self._served(src, self.digests.sha256(src), nonce)
            self._key_of[(src, nonce)] = key
            return key
        data = tagged_copy(read_image(src), src.suffix.lower(), nonce)
        key = image_key(data, src.suffix)
        path = self.copies_dir / key
        if not path.exists():
            write_atomically(path, data)
        self.images[key] = path
        return key

    def _served(self, src: Path, digest: str, nonce: str) -> str:
        """The key of `src` served as itself (`nonce` "") or as a copy; writes the file.

        The key is the content hash of the served bytes, which depend on the file, the
        nonce, the length and the secret only; which key those made is remembered in the
        digest cache, so a design run reads no image it has served before.
        """
        assert self.secret is not None
        suffix = src.suffix.lower()
        length = self.lengths.get(src) or self.digests.size(src) + FILLER_BYTES.get(suffix, 0)
        made_of = hmac.new(self.secret, f"{digest}:{nonce}:{length}".encode(),
                           hashlib.sha256).hexdigest()
        key = self.digests.served.get(made_of)
        if key is None or not (self.copies_dir / key).is_file():
            tag = hmac.new(self.secret, f"filler:{made_of}".encode(),
                           hashlib.sha256).digest()[:TAG_BYTES]
            data = served_bytes(read_image(src), suffix, tag, length)
            key = image_key(data, suffix)
            if not (self.copies_dir / key).is_file():
                write_atomically(self.copies_dir / key, data)
            self.digests.remember_served(made_of, key)
        self.images[key] = self.copies_dir / key
        return key


def served_bytes(data: bytes, suffix: str, tag: bytes, length: int) -> bytes:
    """`data` with filler that starts with `tag`, exactly `length` bytes long, same pixels.

    PNG: one private ancillary chunk (`ckPd`, which decoders skip) before IEND. JPEG:
    comment segments (COM, at most 65,533 bytes each) after SOI. Other types are served
    as they are (no padding): only PNG and JPEG stimuli hide their size.
    """
    pad = length - len(data)
    end = data.rfind(PNG_END) if suffix == ".png" else -1
    if end > 0 and pad >= FILLER_BYTES[".png"]:
        body = b"ckPd" + tag + bytes(pad - 12 - len(tag))
        chunk = struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body))
        return data[:end] + chunk + data[end:]
    if suffix in (".jpg", ".jpeg") and data[:2] == b"\xff\xd8" and pad >= FILLER_BYTES[suffix]:
        return data[:2] + _comment_segments(tag, pad) + data[2:]
    if suffix in FILLER_BYTES:
        raise ConfigError(f"cannot pad this {suffix} file (not a whole {suffix[1:].upper()}, "
                          "or longer than the planned length)")
    return data


def _comment_segments(tag: bytes, total: int) -> bytes:
    """JPEG COM segments of exactly `total` bytes in all, the first starting with `tag`."""
    count = -(-total // (4 + MAX_COM))
    payload = total - 4 * count
    sizes = [payload // count + (1 if i < payload % count else 0) for i in range(count)]
    out = []
    for i, size in enumerate(sizes):
        text = (tag + bytes(size - len(tag))) if i == 0 else bytes(size)
        out.append(b"\xff\xfe" + struct.pack(">H", size + 2) + text)
    return b"".join(out)
