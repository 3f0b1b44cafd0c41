"""A new researcher's first run, as they meet it on the command line (real subprocesses):
init writes a study that runs, the help is whole, mistakes get a suggestion, counts read
well and a "no" ends every command the same way."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from crowdkit.localturk import LocalTurk
from crowdkit.units import plural

ROOT = Path(__file__).resolve().parents[1]


def crowdkit(*args: str, stdin: str = "", cwd: Path = ROOT,
             home: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = None if home is None else {**os.environ, "HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "crowdkit", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=600, input=stdin, env=env)


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def small(study_toml: Path) -> None:
    """The quickstart at the demo's `--small` size, so that the test takes seconds."""
    from crowdkit.demo import shrink

    study_toml.write_text(shrink(study_toml.read_text(encoding="utf-8")), encoding="utf-8")


@pytest.mark.slow
def test_init_stimuli_publish_local_runs_with_no_other_step(tmp_path: Path):
    root = tmp_path / "qs"
    done = crowdkit("init", str(root))
    assert done.returncode == 0, done.stderr
    assert f"wrote 60 sample photographs to {root}/images" in done.stdout
    assert len(list((root / "images").glob("*.jpg"))) == 60
    small(root / "study.toml")
    done = crowdkit("stimuli", str(root))
    assert done.returncode == 0, done.stderr
    assert (root / "stimuli" / "manifest.json").is_file()
    # nothing runs at the study's local endpoint (a free port here, 8765 for a user): the
    # command runs the local service itself, with `crowdkit serve`'s state file
    toml = root / "study.toml"
    endpoint = f"http://127.0.0.1:{free_port()}"
    toml.write_text(toml.read_text().replace(
        "[mturk]\n", f'[mturk]\nlocal_endpoint = "{endpoint}"\n'))
    home = tmp_path / "home"
    done = crowdkit("publish", str(root), "--target", "local", home=home)
    assert done.returncode == 0, done.stderr
    assert "local: 4 HITs for this study (4 created now" in done.stdout
    state = home / ".crowdkit" / "localturk.db"
    assert f"nothing answered at {endpoint}" in done.stderr and str(state) in done.stderr
    with LocalTurk(state, port=0) as service:  # what a later `crowdkit serve` shows
        hits = service.boto3_client().list_hits(MaxResults=100)["HITs"]
        assert len(hits) == 4
        assert service.files_dir is not None and any(service.files_dir.iterdir())
    # and the rest of the local loop needs no second terminal either
    done = crowdkit("simulate", str(root), "--participants", "2", home=home)
    assert done.returncode == 0, done.stderr
    done = crowdkit("collect", str(root), home=home)
    assert done.returncode == 0, done.stderr
    assert (root / "data" / "local" / "trials.parquet").is_file()


def test_a_service_on_another_machine_is_not_started_here():
    from crowdkit.platforms.mturk.embedded import can_start_here

    assert can_start_here("http://127.0.0.1:8765") and can_start_here("http://localhost:9")
    assert not can_start_here("http://10.0.0.5:8765")
    assert not can_start_here("https://127.0.0.1:8765")


def test_a_missing_dataset_says_how_to_get_one(tmp_path: Path):
    root = tmp_path / "s"
    assert crowdkit("init", str(root), "--example", "iclr2021-exp1").returncode == 0
    done = crowdkit("stimuli", str(root))
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "is not a directory; point [stimuli] dataset at a folder" in done.stderr
    assert "ImageNet's validation set" in done.stderr and "crowdkit init" in done.stderr


def test_init_leaves_a_researchers_own_images_alone(tmp_path: Path):
    from crowdkit.examples import create_study

    (tmp_path / "s" / "images").mkdir(parents=True)
    (tmp_path / "s" / "images" / "mine.jpg").write_bytes(b"not really a jpeg")
    result = create_study(tmp_path / "s", "quickstart")
    assert result.sample_dir is None
    assert [p.name for p in (tmp_path / "s" / "images").iterdir()] == ["mine.jpg"]


def test_version():
    done = crowdkit("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == "crowdkit 0.1.0"


def test_help_shows_each_commands_summary_in_full():
    import typer

    from crowdkit.cli import app

    done = crowdkit("--help")
    assert done.returncode == 0
    flat = " ".join(done.stdout.split())
    assert "..." not in done.stdout.split("Commands:")[1]
    for name, command in typer.main.get_command(app).commands.items():
        summary = " ".join((command.help or "").split("\n\n")[0].split())
        assert summary and f"{name} {summary}" in flat, name


def test_every_option_of_every_command_has_help_text():
    import typer

    from crowdkit.cli import app

    missing = []
    for name, command in typer.main.get_command(app).commands.items():
        for param in command.params:
            if not getattr(param, "help", None):
                missing.append(f"{name} {param.name}")
    assert missing == []


def test_a_mistyped_target_gets_the_closest_suggested(tmp_path: Path):
    from tests.factories import make_study

    root = make_study(tmp_path / "s")
    for command in ("publish", "status", "collect"):
        done = crowdkit(command, str(root), "--target", "sanbox")
        assert done.returncode == 1, command
        assert done.stderr.strip() == ("error: unknown target 'sanbox' (did you mean "
                                       "'sandbox'?): use local, sandbox or live"), command
    done = crowdkit("init", str(tmp_path / "t"), "--example", "quickstrat")
    assert "(did you mean 'quickstart'?)" in done.stderr


def test_the_demos_closing_tip_names_the_port_it_used(tmp_path: Path, caplog):
    from crowdkit.demo import DemoResult, _closing_lines

    result = DemoResult(study_dir=tmp_path / "d", worker_url="http://127.0.0.1:40123/worker")
    with caplog.at_level(logging.INFO, logger="crowdkit.demo"):
        _closing_lines(result, serve=False, seconds=3)
    tip = next(r.getMessage() for r in caplog.records if "take a HIT" in r.getMessage())
    assert "crowdkit demo" in tip and "--serve --port 40123" in tip
    assert "crowdkit serve --port 40123 --db" in tip


def test_no_broken_symlink_in_the_repository():
    tracked = subprocess.run(["git", "ls-files", "-s"], capture_output=True, text=True,
                             cwd=ROOT).stdout.splitlines()
    links = [line.split("\t", 1)[1] for line in tracked if line.startswith("120000")]
    broken = [link for link in links if not os.path.exists(ROOT / link)]
    assert broken == []


def test_counts_read_in_the_right_number():
    assert plural(1, "assignment") == "1 assignment"
    assert plural(0, "participant") == "0 participants"
    assert plural(2, "bonus", "bonuses") == "2 bonuses"


def test_one_participant_reads_in_the_singular(tmp_path: Path):
    from crowdkit.simulate import SimulatedAssignment, SimulationResult

    one = SimulationResult([SimulatedAssignment("W1", "careful", "H", "A")], [])
    assert one.summary() == "1 simulated participant submitted (1 careful)"


@pytest.mark.slow
def test_no_to_a_confirmation_ends_expire_and_review_alike(tmp_path: Path):
    from crowdkit.collect import collect
    from crowdkit.publish import publish
    from crowdkit.simulate import SimulationSettings, simulate
    from crowdkit.store import LocalStore
    from crowdkit.study import load_study
    from tests.factories import make_study, mturk

    root = make_study(tmp_path / "s")
    with LocalTurk(tmp_path / "t.db", port=0) as service:
        with (root / "study.toml").open("a") as fh:
            fh.write(f'\n[mturk]\nlocal_endpoint = "{service.endpoint_url}"\n')
        study = load_study(root)
        platform = mturk(study, service.boto3_client())
        publish(study, platform, store=LocalStore(service.files_dir, service.base_url))
        simulate(study, SimulationSettings(participants=1, careless=0, fraudulent=0),
                 endpoint=service.base_url)
        collect(study, platform)
        outcomes = {}
        for command in ("review", "expire"):
            done = crowdkit(command, str(root), stdin="n\n")
            outcomes[command] = done.returncode
            last = done.stderr.strip().splitlines()[-1]
            assert last.startswith("not confirmed; "), (command, done.stderr)
            assert last.endswith("(pass --yes to skip the question)")
            assert "error:" not in done.stderr
        assert outcomes == {"review": 1, "expire": 1}
        from crowdkit.ledger import Ledger

        with Ledger.open(study.db_path) as ledger:
            assert ledger.reviews() == {}
            assert all(h["status"] == "created" for h in ledger.hits("local"))
