"""`crowdkit publish`, `status` and `expire` from the command line (real subprocesses)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from crowdkit.ledger import Ledger
from crowdkit.localturk import LocalTurk
from crowdkit.publish import publish
from crowdkit.store import LocalStore
from crowdkit.study import load_study
from tests.factories import make_study, mturk

ROOT = Path(__file__).resolve().parents[1]


def crowdkit(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "crowdkit", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=120, input=stdin)


def test_dry_run_from_the_command_line(tmp_path):
    root = make_study(tmp_path / "s")
    done = crowdkit("publish", str(root), "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "total" in done.stdout and "dry run: 4 HITs rendered" in done.stdout
    assert len(list((root / "dry-run").glob("*.html"))) == 4


def test_a_local_endpoint_nobody_can_serve_is_one_line(tmp_path):
    """Nothing answers at the endpoint and the port is taken (bound, not listening), so
    the command cannot run the local service itself either: one line says what to do."""
    import socket

    root = make_study(tmp_path / "s")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        with (root / "study.toml").open("a") as fh:
            fh.write(f'\n[mturk]\nlocal_endpoint = "http://127.0.0.1:{port}"\n')
        done = crowdkit("publish", str(root))
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0, done.stderr
    assert f"nothing answers at http://127.0.0.1:{port}" in done.stderr
    assert f"crowdkit serve --port {port}" in done.stderr


def test_status_json_and_expire_from_the_command_line(tmp_path):
    root = make_study(tmp_path / "s")
    with LocalTurk(tmp_path / "t.db", port=0) as service:
        with (root / "study.toml").open("a") as fh:
            fh.write(f'\n[mturk]\nlocal_endpoint = "{service.endpoint_url}"\n')
        study = load_study(root)
        publish(study, mturk(study, service.boto3_client()),
                store=LocalStore(service.files_dir, service.base_url))
        done = crowdkit("status", str(root), "--json")
        assert done.returncode == 0, done.stderr
        total = json.loads(done.stdout)["total"]
        assert total["hits"] == 4 and total["available"] == 4
        refused = crowdkit("expire", str(root), stdin="n\n")
        assert refused.returncode == 1 and "not confirmed" in refused.stderr
        done = crowdkit("expire", str(root), "--yes")
        assert done.returncode == 0, done.stderr
        assert "expired 4 HITs" in done.stdout
        total = json.loads(crowdkit("status", str(root), "--json").stdout)["total"]
        assert total["available"] == 0 and total["open_hits"] == 0


def test_publish_to_a_running_local_service_uploads_images_over_http(tmp_path):
    root = make_study(tmp_path / "s", assignments=10)
    with LocalTurk(tmp_path / "t.db", port=0, files_dir=tmp_path / "served") as service:
        with (root / "study.toml").open("a") as fh:
            fh.write(f'\n[mturk]\nlocal_endpoint = "{service.endpoint_url}"\n')
        done = crowdkit("publish", str(root))
        assert done.returncode == 0, done.stderr
        assert "local: 8 HITs for this study (8 created now" in done.stdout
        assert f"open: {service.worker_url}" in done.stdout
        served = {p.name for p in (tmp_path / "served").iterdir()}
        with Ledger.open(root / "study.db") as ledger:
            assert served == set(ledger.images())
        again = crowdkit("publish", str(root))
        assert "nothing to create" in again.stdout and "8 already there" in again.stdout
