"""stimgen stands apart from crowdkit: it never imports crowdkit's study (so there is no
import cycle through `crowdkit.study -> stimgen.config`), uses only crowdkit's plain helpers,
never prints, and imports without torch.

The import and printing checks read stimgen/*.py with `ast`; nothing is imported, so every
import counts: at the top, inside functions, and under `if TYPE_CHECKING:`.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STIMGEN = ROOT / "stimgen"
# The crowdkit modules stimgen may use: helpers that import nothing of stimgen.
MAY_IMPORT = {"crowdkit.errors", "crowdkit.files", "crowdkit.manifest", "crowdkit.progress"}


def sources() -> list[Path]:
    paths = sorted(p for p in STIMGEN.rglob("*.py") if "__pycache__" not in p.parts)
    assert STIMGEN / "pipeline.py" in paths
    return paths


def module_of(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path, root: Path = ROOT) -> Iterator[tuple[str, int]]:
    """Every dotted name the file's import statements load, relative imports resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module_of(path, root).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                yield f"{base}.{alias.name}", node.lineno
                yield base, node.lineno


def crowdkit_imports(path: Path) -> set[tuple[str, int]]:
    return {(name, line) for name, line in imported(path)
            if name == "crowdkit" or name.startswith("crowdkit.")}


def allowed(name: str) -> bool:
    return any(name == m or name.startswith(m + ".") for m in MAY_IMPORT)


def test_stimgen_never_imports_crowdkit_study():
    offenders = [f"{p.relative_to(ROOT)}:{line} imports {name}" for p in sources()
                 for name, line in sorted(crowdkit_imports(p))
                 if name == "crowdkit.study" or name.startswith("crowdkit.study.")]
    assert offenders == [], "\n".join(offenders)


def test_stimgen_imports_only_crowdkits_plain_helpers():
    # `from crowdkit.files import write_atomically` yields crowdkit.files and
    # crowdkit.files.write_atomically; a bare `crowdkit` comes only from `import crowdkit`
    # or `from crowdkit import x`, which the x form reports on its own.
    offenders = sorted({f"{p.relative_to(ROOT)}:{line} imports {name}" for p in sources()
                        for name, line in crowdkit_imports(p)
                        if name != "crowdkit" and not allowed(name)})
    bare = sorted(f"{p.relative_to(ROOT)}:{line}" for p in sources()
                  for name, line in imported(p) if name == "crowdkit")
    assert offenders == [] and bare == [], "\n".join(offenders + bare)


def test_the_import_finder_sees_every_kind_of_import(tmp_path):
    package = tmp_path / "stimgen"
    package.mkdir()
    source = ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
              "    from crowdkit.study import Study\n"
              "def f():\n    import crowdkit.study as s\n    from crowdkit import study\n"
              "from crowdkit.files import write_atomically\nfrom . import config\n")
    (package / "pipeline.py").write_text(source)
    found = set(imported(package / "pipeline.py", root=tmp_path))
    assert {("crowdkit.study.Study", 3), ("crowdkit.study", 5), ("crowdkit.study", 6),
            ("crowdkit.files", 7), ("stimgen.config", 8)} <= found


# What writes to a terminal: print(), typer/click, rich consoles and bars, sys.stdout.write.
TERMINAL_MODULES = ("typer", "click", "rich")


def terminal_use(path: Path) -> Iterator[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    where = path.relative_to(ROOT)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            receiver = ast.unparse(func.value) if isinstance(func, ast.Attribute) else ""
            if name in ("print", "echo", "Console"):
                yield f"{where}:{node.lineno} calls {name}()"
            elif name == "write" and receiver in ("sys.stdout", "sys.stderr"):
                yield f"{where}:{node.lineno} calls {receiver}.write()"
    for name, line in imported(path):
        if name.split(".")[0] in TERMINAL_MODULES:
            yield f"{where}:{line} imports {name}"


def test_stimgen_never_prints_or_draws_bars():
    offenders = sorted({line for p in sources() for line in terminal_use(p)})
    assert offenders == [], "\n".join(offenders)


def test_importing_stimgen_and_the_study_glue_loads_no_torch():
    code = ("import sys, stimgen, stimgen.config, stimgen.job, crowdkit.stimuli\n"
            "heavy = sorted(m for m in ('torch', 'torchvision', 'lucent', 'rich.progress')"
            " if m in sys.modules)\n"
            "assert not heavy, heavy\n")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
