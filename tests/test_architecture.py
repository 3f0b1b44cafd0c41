"""The shape of the code, checked statically: no import cycles, a fake that stands alone, a
library that does not print, modules of a readable size, and an architecture document that
names every module.

Everything here reads the source under crowdkit/ and stimgen/ with `ast`; nothing is
imported, so a module that fails to import, or is slow to, is still checked. Each failure
message lists every offender, so a refactoring can use a failing test as its to-do list.
"""

from __future__ import annotations

import ast
import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("crowdkit", "stimgen")
ARCHITECTURE_DOC = ROOT / "docs" / "architecture.md"
MAX_LINES = 600
LOCALTURK = "crowdkit.localturk"
# What the local MTurk twin may use from the rest of crowdkit: plain helpers, never the
# requester client it stands in for.
LOCALTURK_MAY_IMPORT = {"crowdkit.errors", "crowdkit.files", "crowdkit.units"}
# Only the command line talks to the terminal.
TERMINAL_LIBRARIES = {"typer", "click"}


# --------------------------------------------------------------------------- the modules


@dataclass(frozen=True)
class Module:
    name: str  # dotted: a package's __init__.py is the package itself
    path: Path  # relative to ROOT
    tree: ast.Module
    lines: int

    @property
    def is_package(self) -> bool:
        return self.path.name == "__init__.py"

    @property
    def package(self) -> str:
        """The package that relative imports in this module start from."""
        return self.name if self.is_package else self.name.rpartition(".")[0]


def module_name(path: Path) -> str:
    parts = list(path.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules() -> tuple[Module, ...]:
    """Every .py file under the packages, in path order."""
    out = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT)
            if "__pycache__" in relative.parts:
                continue
            text = path.read_text(encoding="utf-8")
            out.append(Module(module_name(relative), relative,
                              ast.parse(text, filename=str(relative)), len(text.splitlines())))
    return tuple(out)


@cache
def by_name() -> dict[str, Module]:
    """Dotted name -> module. Where a package and a same-named .py file both exist (halfway
    through turning a module into a package), Python imports the package, and so do we."""
    out: dict[str, Module] = {}
    for module in modules():
        if module.name not in out or module.is_package:
            out[module.name] = module
    return out


def is_cli(module: Module) -> bool:
    """The command line: crowdkit/cli.py today, the crowdkit/cli/ package tomorrow."""
    parts = module.path.parts
    return (module.path == Path("crowdkit/cli.py") or parts[:2] == ("crowdkit", "cli")
            or module.path == Path("crowdkit/__main__.py"))


# --------------------------------------------------------------------------- imports


@dataclass(frozen=True)
class Import:
    source: Module
    target: str  # the crowdkit or stimgen module it loads
    line: int
    name: str  # what the statement names: "crowdkit.localturk.FaultConfig"

    def __str__(self) -> str:
        # from a package, say what: `from crowdkit import turk` may name a module that moved
        package = by_name()[self.target].is_package
        named = f" (for {self.name})" if package and self.name != self.target else ""
        return f"{self.source.path}:{self.line} imports {self.target}{named}"


def internal(name: str) -> str | None:
    """The module of ours that importing `name` loads: its longest known prefix, if any."""
    known = by_name()
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in known:
            return candidate
    return None


def from_base(module: Module, node: ast.ImportFrom) -> str:
    """The absolute module a `from ... import` starts from, relative imports resolved."""
    if not node.level:
        return node.module or ""
    package = module.package.split(".")
    base = package[:len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imported_names(module: Module) -> Iterator[tuple[str, int]]:
    """Every dotted name an import statement of the module loads, with its line.

    All of them: at the top, inside functions and under `if TYPE_CHECKING:` alike, since
    each is a dependency a refactoring has to keep acyclic. `from pkg import name` gives
    "pkg.name", which `internal` resolves to the module pkg.name where there is one
    (`from crowdkit import turk`), else to pkg itself.
    """
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = from_base(module, node)
            for alias in node.names:
                yield (base if alias.name == "*" else f"{base}.{alias.name}"), node.lineno


def imports(module: Module) -> list[Import]:
    """The module's imports of crowdkit and stimgen modules (not of itself), one per
    module and line."""
    out: dict[tuple[str, int], Import] = {}
    for name, line in imported_names(module):
        target = internal(name)
        if target is not None and target != module.name:
            out.setdefault((target, line), Import(module, target, line, name))
    return list(out.values())


# --------------------------------------------------------------------------- cycles


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in by_name()}
    for module in by_name().values():
        graph[module.name].update(i.target for i in imports(module))
    return graph


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """The graph's strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph[node]):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(out)


def shortest_cycle(graph: dict[str, set[str]], start: str, within: set[str]) -> list[str]:
    """A shortest import path from `start` back to itself, inside one component."""
    previous: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for succ in sorted(graph[node] & within):
            if succ == start:
                path = [node]
                while path[-1] != start:
                    path.append(previous[path[-1]])
                return [*reversed(path), start]
            if succ not in previous:
                previous[succ] = node
                queue.append(succ)
    raise AssertionError(f"{start} is on no cycle")  # cannot happen inside a component


def rotated(cycle: list[str]) -> list[str]:
    """The same cycle starting at its first module in sorted order, so that a -> b -> a and
    b -> a -> b are listed once."""
    ring = cycle[:-1]
    start = ring.index(min(ring))
    ring = ring[start:] + ring[:start]
    return [*ring, ring[0]]


def describe_cycles(graph: dict[str, set[str]], components: list[list[str]]) -> list[str]:
    """For each component: its modules, a shortest cycle through each, and the imports
    inside it -- the edges one of which each cycle has to lose."""
    lines = []
    for component in components:
        members = set(component)
        lines.append(f"import cycle among {len(component)} modules: {', '.join(component)}")
        cycles = {" -> ".join(rotated(shortest_cycle(graph, m, members))) for m in component}
        lines += [f"  cycle: {c}" for c in sorted(cycles)]
        lines += [f"  {i}" for m in component for i in imports(by_name()[m])
                  if i.target in members]
    return lines


def test_no_import_cycles():
    graph = import_graph()
    components = strongly_connected(graph)
    assert components == [], "\n" + "\n".join(describe_cycles(graph, components))


def test_the_cycle_finder_finds_cycles():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}}
    assert strongly_connected(graph) == [["a", "b", "c"]]  # a self-import is no cycle here
    assert shortest_cycle(graph, "b", {"a", "b", "c"}) == ["b", "c", "a", "b"]
    assert rotated(["b", "c", "a", "b"]) == ["a", "b", "c", "a"]


# --------------------------------------------------------------------------- localturk


def in_package(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def test_localturk_depends_on_nothing_it_fakes():
    """localturk stands in for MTurk; if it imported crowdkit's MTurk client, publish or
    collect, a bug in those would be mirrored by the fake instead of caught by it."""
    offenders = [str(i) for module in modules() if in_package(module.name, LOCALTURK)
                 for i in imports(module)
                 if in_package(i.target, "crowdkit") and not in_package(i.target, LOCALTURK)
                 and i.target not in LOCALTURK_MAY_IMPORT]
    allowed = ", ".join(sorted(LOCALTURK_MAY_IMPORT))
    assert offenders == [], (f"crowdkit/localturk/ may import only {allowed} from the rest of "
                             "crowdkit:\n" + "\n".join(offenders))


# --------------------------------------------------------------------------- printing


def call_name(node: ast.Call) -> tuple[str, str]:
    """(receiver, function) of a call: ("", "print") for print(), ("sys.stderr", "write")."""
    func = node.func
    if isinstance(func, ast.Name):
        return "", func.id
    if isinstance(func, ast.Attribute):
        return ast.unparse(func.value), func.attr
    return "", ""


def printing(module: Module) -> Iterator[str]:
    """What in the module writes to the terminal, or gets ready to.

    print() and rich's console.print(), sys.stdout/sys.stderr.write(), echo() (typer's,
    click's, or an `echo` callback handed in), and importing typer or click at all.
    """
    for node in ast.walk(module.tree):
        where = f"{module.path}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Call):
            receiver, name = call_name(node)
            if name in ("print", "echo"):
                yield f"{where} calls {receiver + '.' if receiver else ''}{name}()"
            elif name == "write" and receiver in ("sys.stdout", "sys.stderr"):
                yield f"{where} calls {receiver}.write()"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in TERMINAL_LIBRARIES:
                    yield f"{where} imports {alias.name}"
        elif (isinstance(node, ast.ImportFrom) and not node.level
              and (node.module or "").split(".")[0] in TERMINAL_LIBRARIES):
            yield f"{where} imports from {node.module}"


def is_public(name: str) -> bool:
    return not name.startswith("_") or (name.startswith("__") and name.endswith("__"))


Function = ast.FunctionDef | ast.AsyncFunctionDef


def public_functions(module: Module) -> Iterator[tuple[str, Function]]:
    """Module-level functions and the methods of module-level classes that are public."""
    functions = (ast.FunctionDef, ast.AsyncFunctionDef)
    for node in module.tree.body:
        if isinstance(node, functions) and is_public(node.name):
            yield node.name, node
        elif isinstance(node, ast.ClassDef) and is_public(node.name):
            for item in node.body:
                if isinstance(item, functions) and is_public(item.name):
                    yield f"{node.name}.{item.name}", item


def echo_parameters(module: Module) -> Iterator[str]:
    """Public functions that take an `echo` callback: the library's output belongs in its
    return values and the progress protocol, not in a printer the caller passes in."""
    for qualname, function in public_functions(module):
        args = function.args
        every = [*args.posonlyargs, *args.args, *args.kwonlyargs]
        if any(arg.arg == "echo" for arg in every):
            yield f"{module.path}:{function.lineno} {qualname}() takes an `echo` parameter"


def line_number(offence: str) -> int:
    """The line of "path:line what", for listing a module's offences in order."""
    return int(offence.split(" ", 1)[0].rsplit(":", 1)[1])


def test_no_library_module_prints():
    offenders = [line for module in modules() if not is_cli(module)
                 for line in sorted([*printing(module), *echo_parameters(module)],
                                    key=line_number)]
    assert offenders == [], ("only the command line (crowdkit/cli.py or crowdkit/cli/, and "
                             "crowdkit/__main__.py) prints:\n" + "\n".join(offenders))


def test_the_print_finder_finds_printing():
    source = ("import typer\nfrom click import echo\nimport sys\n"
              "def run(x, *, echo=print):\n    print(x)\n    echo(x)\n"
              "    sys.stderr.write(x)\n    console.print(x)\n"
              "def _quiet(echo):\n    pass\n"
              "class Job:\n    def go(self, echo):\n        pass\n")
    module = Module("m", Path("m.py"), ast.parse(source), 0)
    found = sorted(line.split(" ", 1)[1] for line in [*printing(module),
                                                       *echo_parameters(module)])
    assert found == ["Job.go() takes an `echo` parameter", "calls console.print()",
                     "calls echo()", "calls print()", "calls sys.stderr.write()",
                     "imports from click", "imports typer", "run() takes an `echo` parameter"]


# --------------------------------------------------------------------------- size


def test_no_module_is_too_long():
    long = sorted((m for m in modules() if m.lines > MAX_LINES
                   and "hit_templates" not in m.path.parts), key=lambda m: -m.lines)
    assert long == [], (f"modules over {MAX_LINES} lines:\n"
                        + "\n".join(f"{m.path}: {m.lines} lines" for m in long))


# --------------------------------------------------------------------------- documentation


def spellings(module: Module) -> list[str]:
    """How docs/architecture.md may name a module: dotted, or by its path (a package also
    by its directory)."""
    out = [module.name, module.path.as_posix()]
    if module.is_package:
        out.append(module.path.parent.as_posix() + "/")
    return out


def names(text: str, spelling: str) -> bool:
    """Whether `text` names `spelling` itself, not merely a longer name that starts with it:
    `crowdkit.analysis` is not named by `crowdkit.analysis.stats`."""
    pattern = rf"(?<![\w./]){re.escape(spelling)}(?![\w/]|\.\w)"
    return re.search(pattern, text) is not None


def test_the_architecture_document_names_every_module():
    every = sorted(modules(), key=lambda m: m.path)
    if not ARCHITECTURE_DOC.is_file():
        listing = "\n".join(m.name for m in every)
        raise AssertionError(f"{ARCHITECTURE_DOC.relative_to(ROOT)} does not exist; it must "
                             f"name every module of {' and '.join(PACKAGES)}:\n{listing}")
    text = ARCHITECTURE_DOC.read_text(encoding="utf-8")
    missing = [f"{m.name} ({m.path})" for m in every
               if not any(names(text, s) for s in spellings(m))]
    assert missing == [], (f"{ARCHITECTURE_DOC.relative_to(ROOT)} does not name these modules "
                           "(by dotted name or path):\n" + "\n".join(missing))


def test_a_module_is_named_only_by_its_own_name():
    assert names("see `crowdkit.sources`.", "crowdkit.sources")
    assert names("crowdkit/sources.py holds", "crowdkit/sources.py")
    assert not names("crowdkit.analysis.stats", "crowdkit.analysis")
    assert not names("crowdkit/localturk/api.py", "crowdkit/localturk/")
    assert not names("mycrowdkit.sources", "crowdkit.sources")


def test_relative_imports_resolve_from_the_right_package():
    def base(name: str, path: str, statement: str) -> str:
        module = Module(name, Path(path), ast.parse(""), 0)
        return from_base(module, ast.parse(statement).body[0])

    api = ("crowdkit.localturk.api", "crowdkit/localturk/api.py")
    package = ("crowdkit.localturk", "crowdkit/localturk/__init__.py")
    assert base(*api, "from .db import TurkDB") == "crowdkit.localturk.db"
    assert base(*api, "from . import db") == "crowdkit.localturk"
    assert base(*api, "from ..errors import CrowdkitError") == "crowdkit.errors"
    assert base(*package, "from .api import Api") == "crowdkit.localturk.api"
    assert base(*package, "from .. import files") == "crowdkit"
    assert base(*api, "from crowdkit import turk") == "crowdkit"
