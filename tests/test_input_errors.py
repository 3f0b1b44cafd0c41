"""Bad input gets one line, early: study.toml and manifest mistakes name the file and key when
the study is loaded, never a traceback, and never after images are uploaded."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from crowdkit.design import design_for
from crowdkit.errors import ConfigError
from crowdkit.manifest import load_manifest
from crowdkit.study import load_study
from tests.factories import make_study

ROOT = Path(__file__).resolve().parents[1]


def set_key(root: Path, section: str, line: str) -> None:
    """Put `line` into `[section]` of the study's study.toml (adding the section if need be)."""
    path = root / "study.toml"
    text = path.read_text()
    header = f"[{section}]\n"
    if header in text:
        text = text.replace(header, header + line + "\n", 1)
    else:
        text += f"\n{header}{line}\n"
    path.write_text(text)


def one_line_error(root: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_study(root)
    assert len(caught.value.lines) == 1, caught.value.lines
    return caught.value.lines[0]


@pytest.mark.parametrize(("section", "line", "expected"), [
    ("hit", 'reward = "0.00"', "[hit] reward: MTurk pays at least $0.01 per assignment"),
    ("hit", 'lifetime = "0s"', "[hit] lifetime: MTurk takes 30s to 365d, got 0s"),
    ("hit", 'lifetime = "400d"', "[hit] lifetime: MTurk takes 30s to 365d, got 400d"),
    ("hit", 'assignment_duration = "10s"', "[hit] assignment_duration: MTurk takes 30s to 365d"),
    ("hit", 'auto_approval_delay = "31d"', "[hit] auto_approval_delay: MTurk takes 0s to 30d"),
    ("hit", f'keywords = ["{"k" * 1001}"]', "[hit] keywords: MTurk takes at most 1000"),
    ("qualifications", 'locales = ["USA"]', "[qualifications] locales: 'USA' is not a locale"),
    ("qualifications", 'locales = ["US-"]', "[qualifications] locales: 'US-' is not a locale"),
    ("mturk", 'local_endpoint = "http://127.0.0.1:99999"',
     "[mturk] local_endpoint: expected an http URL"),
    ("mturk", 'local_endpoint = "127.0.0.1:8765"', "[mturk] local_endpoint: expected an http URL"),
])
def test_values_mturk_refuses_are_refused_when_the_study_is_loaded(
        tmp_path: Path, section: str, line: str, expected: str):
    root = make_study(tmp_path / "s")
    if section == "hit":
        text = (root / "study.toml").read_text()
        key = line.split(" = ")[0]
        text = "\n".join(t for t in text.splitlines() if not t.startswith(key + " "))
        (root / "study.toml").write_text(text + "\n")
    set_key(root, section, line)
    assert one_line_error(root).startswith(f"{root}/study.toml: {expected}")


def test_limits_mturk_accepts_load(tmp_path: Path):
    root = make_study(tmp_path / "s")
    set_key(root, "qualifications", 'locales = ["US", "us-ny", "CA"]')
    set_key(root, "mturk", 'local_endpoint = "http://localhost:9000/"')
    config = load_study(root).config
    assert config.qualifications.locales == ["US", "us-ny", "CA"]


def test_a_byte_that_is_not_utf8_in_study_toml_is_one_line(tmp_path: Path):
    root = make_study(tmp_path / "s")
    path = root / "study.toml"
    path.write_bytes(path.read_bytes().replace(b"Which", b"Wh\xefch", 1))
    assert one_line_error(root).startswith(f"{path}: not UTF-8 text (byte 0xef at offset ")


def test_a_deeply_nested_toml_array_is_one_line(tmp_path: Path):
    root = make_study(tmp_path / "s")
    set_key(root, "page", "instructions = " + "[" * 5000 + "]" * 5000)
    assert one_line_error(root) == f"{root}/study.toml: arrays or tables are nested too deeply " \
                                   "to read"


def test_a_missing_templates_dir_names_the_file(tmp_path: Path):
    root = make_study(tmp_path / "s")
    set_key(root, "page", 'templates_dir = "mine"')
    assert one_line_error(root) == (f"{root}/study.toml: [page] templates_dir: no folder at "
                                    f"{root}/mine")


# ---------------------------------------------------------------------------- the design


def design_error(root: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        design_for(load_study(root))
    return caught.value.lines


def test_an_unknown_condition_names_study_toml(tmp_path: Path):
    root = make_study(tmp_path / "s", conditions='["natural", "gradcam"]')
    assert design_error(root)[0].startswith(
        f"{root}/study.toml: [design] conditions: unknown condition 'gradcam'")


def test_an_unknown_practice_unit_names_study_toml(tmp_path: Path):
    root = make_study(tmp_path / "s")
    set_key(root, "design", 'practice_units = ["9z:999"]')
    text = (root / "study.toml").read_text().replace("n_practice_units = 1\n", "")
    (root / "study.toml").write_text(text)
    assert design_error(root) == [f"{root}/study.toml: [design] practice_units: unit '9z:999' "
                                  "is not in the manifest (known: 3a:0, 3a:3, 4a:1, 4a:4, 5a:2, "
                                  "5a:5)"]


def test_too_few_images_names_the_manifest(tmp_path: Path):
    root = make_study(tmp_path / "s", per_side=5)
    lines = design_error(root)
    assert lines[0].startswith(f"{root}/stimuli/manifest.json: unit ")
    assert "has too few images for n_references = 9" in lines[0]


# ---------------------------------------------------------------------------- the manifest


def test_a_byte_that_is_not_utf8_in_the_manifest_is_one_line(tmp_path: Path):
    root = make_study(tmp_path / "s")
    path = root / "stimuli" / "manifest.json"
    path.write_bytes(path.read_bytes().replace(b'"test"', b'"t\xffst"', 1))
    with pytest.raises(ConfigError, match=r"manifest.json: not UTF-8 text \(byte 0xff at"):
        load_manifest(path)


def test_a_deeply_nested_manifest_is_one_line(tmp_path: Path):
    path = tmp_path / "manifest.json"
    path.write_text('{"parameters": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(ConfigError, match="nested too deeply"):
        load_manifest(path, check_files=False)


def test_a_duplicate_batch_index_is_refused(tmp_path: Path):
    root = make_study(tmp_path / "s")
    path = root / "stimuli" / "manifest.json"
    raw = json.loads(path.read_text())
    raw["units"][2]["natural"]["batches"][1]["index"] = 0
    path.write_text(json.dumps(raw))
    with pytest.raises(ConfigError) as caught:
        load_manifest(path)
    assert caught.value.lines == [f"{path}: units.2.natural: batch index 0 appears twice"]


# ---------------------------------------------------------------------------- the CLI


def test_the_cli_prints_one_line_and_nothing_is_written(tmp_path: Path):
    root = make_study(tmp_path / "s")
    set_key(root, "mturk", 'local_endpoint = "http://127.0.0.1:99999"')
    result = subprocess.run([sys.executable, "-m", "crowdkit", "publish", str(root),
                             "--dry-run"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "[mturk] local_endpoint" in result.stderr
    assert not (root / "study.db").exists()
