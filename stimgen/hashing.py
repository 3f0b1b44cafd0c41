"""Content hashes, fingerprints and derived seeds: what makes a re-run find its earlier work.

No torch here: these helpers are shared by the rendering modules and the pure ones.
"""

from __future__ import annotations

import hashlib
import json


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fingerprint(value: object) -> str:
    """A stable hash of JSON-serialisable settings: equal inputs give equal cache keys."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


def derive_seed(*parts: object) -> int:
    """A 32-bit seed from a base seed and names, so each unit and direction has its own.

    Derived seeds do not depend on which other units are rendered alongside, which is what
    makes batched rendering reproduce single-unit rendering.
    """
    text = "\x1f".join(str(p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:4], "big")
