"""Hand-written manifests: researchers who bring their own images get clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crowdkit.errors import ConfigError
from crowdkit.manifest import load_manifest
from tests.factories import make_manifest


def write(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data))
    return path


def minimal(path_prefix: str = "img") -> dict:
    side = [{"path": f"{path_prefix}/{i}.png"} for i in range(3)]
    return {"schema_version": 1, "model": {"name": "my-method"},
            "units": [{"id": "u1", "layer": "conv5", "channel": 3,
                       "natural": {"batches": [{"index": 0, "max": side, "min": side}]}}]}


def test_a_minimal_hand_written_manifest_loads(tmp_path: Path):
    m = load_manifest(write(tmp_path / "manifest.json", minimal()), check_files=False)
    assert m.units[0].natural.batches[0].max[-1].path == "img/2.png"
    assert m.generator == "hand-written"


def test_generated_manifest_round_trips(tmp_path: Path):
    made = make_manifest(tmp_path, n_units=2, n_batches=1)
    assert load_manifest(tmp_path / "manifest.json") == made


@pytest.mark.parametrize("mutate,message", [
    (lambda d: d["units"][0].pop("layer"), "units.0.layer: Field required"),
    (lambda d: d["units"][0].update(chanel=1), "units.0.chanel: unknown key"),
    (lambda d: d.update(schema_version=2), "schema_version: Input should be 1"),
    (lambda d: d["units"][0]["natural"]["batches"][0]["max"][0].update(path="/etc/passwd"),
     "must be relative to stimuli/"),
    (lambda d: d["units"][0]["natural"]["batches"][0]["min"][0].update(path="../x.png"),
     "must be relative to stimuli/"),
    (lambda d: d["units"].append(dict(d["units"][0])), "unit id 'u1' appears twice"),
    (lambda d: d["units"][0].update(channel=-1), "units.0.channel: Input should be greater"),
    (lambda d: d["units"][0]["natural"]["batches"][0].update(max=[]),
     "batches.0.max: List should have at least 2 items"),
])
def test_bad_manifests_name_the_field(tmp_path: Path, mutate, message: str):
    data = minimal()
    mutate(data)
    with pytest.raises(ConfigError) as info:
        load_manifest(write(tmp_path / "manifest.json", data), check_files=False)
    assert any(message in line for line in info.value.lines), info.value.lines
    assert all(line.startswith(str(tmp_path / "manifest.json")) for line in info.value.lines)


def test_invalid_json_and_missing_manifest(tmp_path: Path):
    (tmp_path / "manifest.json").write_text("{")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_manifest(tmp_path / "manifest.json")
    with pytest.raises(ConfigError, match="render one with `crowdkit stimuli`"):
        load_manifest(tmp_path / "none.json")


def test_missing_images_are_reported(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"image file missing: img/0.png \(and 2 more\)"):
        load_manifest(write(tmp_path / "manifest.json", minimal()))
