"""crowdkit.files: atomic writes never leave half a file, even with writers racing."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest

from crowdkit.files import file_digest, write_atomically


def test_write_atomically_writes_text_and_bytes_and_leaves_no_temp_file(tmp_path: Path):
    write_atomically(tmp_path / "a" / "x.txt", "héllo")
    write_atomically(tmp_path / "a" / "y.bin", b"\0\1")
    assert (tmp_path / "a" / "x.txt").read_text(encoding="utf-8") == "héllo"
    assert (tmp_path / "a" / "y.bin").read_bytes() == b"\0\1"
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["x.txt", "y.bin"]


def test_a_failed_write_keeps_the_old_file(tmp_path: Path):
    target = tmp_path / "x.txt"
    write_atomically(target, "old")
    with pytest.raises(TypeError):
        write_atomically(target, 42)  # type: ignore[arg-type]
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["x.txt"]


def test_racing_writers_each_leave_a_whole_file(tmp_path: Path):
    target = tmp_path / "x.bin"
    payloads = [bytes([i]) * 200_000 for i in range(8)]
    errors: list[BaseException] = []

    def write(data: bytes) -> None:
        try:
            for _ in range(5):
                write_atomically(target, data)
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(p,)) for p in payloads]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert target.read_bytes() in payloads
    assert file_digest(target) == hashlib.sha256(target.read_bytes()).hexdigest()
