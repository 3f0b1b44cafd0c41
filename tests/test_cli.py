"""The command line: every command is there, start-up stays light, errors are one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.factories import make_study

ROOT = Path(__file__).resolve().parents[1]
# Every command the design names. The help test also takes whatever the app registers, so a
# new command cannot be left out of it; this list is what notices a command that disappears.
DESIGN_COMMANDS = ["init", "stimuli", "design", "preview", "publish", "status", "collect",
                   "review", "analyze", "expire", "serve", "simulate", "demo"]
STUDY_COMMANDS = ["stimuli", "design", "preview", "publish", "status", "collect", "review",
                  "analyze", "expire", "simulate"]


def crowdkit(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "crowdkit", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=120)


def registered_commands() -> set[str]:
    """The command names the Typer app registers (as click sees them, groups included)."""
    import typer

    from crowdkit.cli import app

    return set(typer.main.get_command(app).commands)


def help_commands(help_text: str) -> list[str]:
    """The command names `crowdkit --help` lists under its "Commands:" heading."""
    lines = help_text.splitlines()
    start = lines.index("Commands:") + 1
    names = []
    for line in lines[start:]:
        if not line.startswith("  "):
            break
        if not line.startswith("   "):  # a wrapped description is indented further
            names.append(line.split()[0])
    return names


def test_the_app_registers_every_command_of_the_design():
    missing = sorted(set(DESIGN_COMMANDS) - registered_commands())
    assert missing == [], f"commands of the design the app no longer registers: {missing}"


def test_help_lists_every_command():
    result = crowdkit("--help")
    assert result.returncode == 0, result.stderr
    listed = help_commands(result.stdout)
    expected = registered_commands() | set(DESIGN_COMMANDS)
    assert sorted(set(listed)) == sorted(expected), result.stdout
    assert len(listed) == len(set(listed)), result.stdout  # each command once


def test_help_imports_no_heavy_library():
    code = ("import sys; sys.argv = ['crowdkit', '--help']\n"
            "from crowdkit.cli import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "import json; heavy = ['torch', 'pandas', 'boto3', 'botocore', 'matplotlib',"
            " 'numpy', 'PIL', 'pydantic']\n"
            "print(json.dumps([m for m in heavy if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=120).stdout
    assert json.loads(out.strip().splitlines()[-1]) == []


@pytest.mark.parametrize("command", STUDY_COMMANDS)
def test_every_study_command_validates_study_toml_first(tmp_path: Path, command: str):
    (tmp_path / "study.toml").write_text('[study]\nname = "x"\n[hit]\ntitle = "t"\n'
                                         'description = "d"\nreward = 1.5\n')
    args = [command, str(tmp_path)]
    if command == "simulate":
        args += ["--participants", "1"]
    result = crowdkit(*args)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip() == (
        f"error: {tmp_path}/study.toml: [hit] reward: expected money as a decimal string "
        'such as "1.25" (quoted), got 1.5')
    assert sorted(p.name for p in tmp_path.iterdir()) == ["study.toml"]  # nothing written


def test_missing_study_is_one_line_without_traceback(tmp_path: Path):
    result = crowdkit("status", str(tmp_path / "nothing"))
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "crowdkit init" in result.stderr


def test_init_then_design_gives_a_balanced_design_in_the_ledger(tmp_path: Path):
    result = crowdkit("init", str(tmp_path / "s"), "--example", "iclr2021-exp1")
    assert result.returncode == 0, result.stderr
    again = crowdkit("init", str(tmp_path / "s"))
    assert again.returncode == 1 and "already exists" in again.stderr

    root = make_study(tmp_path / "t", tasks=6, trials=5, catch=1)
    result = crowdkit("design", str(root))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("designed 6 tasks, 30 main, 6 catch and 12 practice trials")
    assert (root / "study.db").is_file()
