"""The documentation keeps up with the code: every study.toml key is documented."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from crowdkit.study import StudyConfig

DOCS = Path(__file__).resolve().parents[1] / "docs"


def keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    out = []
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out += keys(ann, f"{prefix}{name}.")
        else:
            out.append(prefix + name)
    return out


@pytest.mark.parametrize("key", keys(StudyConfig))
def test_every_study_toml_key_is_documented(key: str):
    text = "\n".join(p.read_text() for p in DOCS.glob("*.md"))
    leaf = key.rsplit(".", 1)[-1]
    assert f"`{leaf}`" in text, f"study.toml key {key} is not documented in docs/"
