"""The package's shape: imports go one way (cli -> api -> train -> tasks/coding -> rewards/report ->
prompts/backends/metrics -> data/runs/paths/console/errors), with no cycle between modules or between
top-level packages, counting imports inside functions (a lazy import is still a dependency); no module
over 600 lines; `llmscisci --help` loads no torch; every package says what it exports."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
ROOT = SRC / "llmscisci"

# bottom to top; a module may import its own layer's lower names and any lower layer, never a higher one
LAYERS = [
    ("errors", "lazy", "console", "paths", "runs", "records", "data"),
    ("prompts", "backends", "metrics"),
    ("rewards", "report"),
    ("tasks", "coding"),
    ("train",),
    ("api",),
    ("cli", "__main__"),
]
LAYER = {name: i for i, group in enumerate(LAYERS) for name in group}
MAX_LINES = 600


def modules() -> dict[str, tuple[Path, bool]]:
    out = {}
    for p in sorted(ROOT.rglob("*.py")):
        parts = list(p.relative_to(SRC).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        if is_pkg:
            parts = parts[:-1]
        out[".".join(parts)] = (p, is_pkg)
    return out


def _type_only(tree: ast.AST) -> set[int]:
    """ids of the import nodes inside `if TYPE_CHECKING:` blocks: annotations only, never executed."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            out |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return out


def import_graph() -> dict[str, set[str]]:
    """module -> the package modules it imports anywhere in its body (top level or inside functions;
    imports under `if TYPE_CHECKING:` are annotations, not dependencies)."""
    mods = modules()

    def resolve(name: str) -> str:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name

    edges: dict[str, set[str]] = defaultdict(set)
    for mod, (path, is_pkg) in mods.items():
        pkg = mod if is_pkg else mod.rpartition(".")[0]
        tree = ast.parse(path.read_text("utf-8"))
        skip = _type_only(tree)
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                    full = ".".join(base + ([node.module] if node.module else []))
                else:
                    full = node.module or ""
                targets = [f"{full}.{a.name}" for a in node.names]
            else:
                continue
            for t in targets:
                if t.split(".")[0] == "llmscisci":
                    target = resolve(t)
                    if target and target != mod:
                        edges[mod].add(target)
    return edges


def top(mod: str) -> str:
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 else "llmscisci"


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []
    counter = [0]
    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in list(graph):
        if v not in index:
            visit(v)
    return found


def test_the_graph_sees_imports_inside_functions(tmp_path):
    # the analysis itself must count a lazy import: tasks.finish imports the metrics inside a function
    graph = import_graph()
    assert "llmscisci.metrics.evaluate" in graph["llmscisci.tasks.finish"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_every_top_level_package_has_a_layer():
    tops = {top(m) for m in modules()} - {"llmscisci"}
    assert tops <= set(LAYER), f"give these a layer in LAYERS: {sorted(tops - set(LAYER))}"


def test_no_cycle_between_modules():
    assert cycles(import_graph()) == []


def test_no_cycle_between_top_level_packages():
    pkg_graph: dict[str, set[str]] = defaultdict(set)
    for mod, targets in import_graph().items():
        for t in targets:
            if top(mod) != top(t) and "llmscisci" not in (top(mod), top(t)):
                pkg_graph[top(mod)].add(top(t))
    assert cycles(pkg_graph) == []


def test_no_import_from_a_higher_layer():
    upward = [f"{m} -> {t}" for m, targets in sorted(import_graph().items()) for t in sorted(targets)
              if top(m) in LAYER and top(t) in LAYER and LAYER[top(t)] > LAYER[top(m)]]
    assert upward == []


def test_no_module_over_600_lines():
    long = {str(p.relative_to(SRC)): n for p, _ in modules().values()
            if (n := len(p.read_text("utf-8").splitlines())) > MAX_LINES}
    assert long == {}


def test_every_module_opens_with_a_docstring():
    missing = [m for m, (p, is_pkg) in modules().items()
               if p.stat().st_size and ast.get_docstring(ast.parse(p.read_text("utf-8"))) is None]
    assert missing == []


@pytest.mark.parametrize("package", ["llmscisci.backends", "llmscisci.coding", "llmscisci.data",
                                     "llmscisci.metrics", "llmscisci.prompts", "llmscisci.report",
                                     "llmscisci.rewards", "llmscisci.tasks", "llmscisci.train",
                                     "llmscisci.api"])
def test_packages_export_their_public_names(package):
    mod = importlib.import_module(package)
    names = getattr(mod, "__all__", None)
    assert names, f"{package} has no __all__"
    for name in names:
        assert getattr(mod, name) is not None, f"{package}.{name}"


def test_help_loads_no_torch():
    """`llmscisci --help` and every subcommand's --help import no torch/transformers (options are checked,
    and help shown, before anything heavy loads)."""
    code = (
        "import sys, typer.main\n"
        "from typer.testing import CliRunner\n"
        "from llmscisci.cli import app\n"
        "def walk(cmd, path):\n"
        "    yield path\n"
        "    for name, sub in getattr(cmd, 'commands', {}).items():\n"
        "        yield from walk(sub, path + [name])\n"
        "paths = list(walk(typer.main.get_command(app), []))\n"
        "for path in paths:\n"
        "    r = CliRunner().invoke(app, [*path, '--help'])\n"
        "    assert r.exit_code == 0, (path, r.output)\n"
        "assert len(paths) > 20, paths\n"
        "heavy = sorted(m for m in ('torch', 'transformers', 'trl', 'peft', 'datasets') if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**__import__("os").environ, "PYTHONPATH": str(SRC)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""


# every command module is a thin layer over llmscisci.api: options parsed, one API call, the result printed
NOT_THIN: set[str] = set()  # none: every command module is thin
THIN = tuple(sorted(str(p.relative_to(ROOT)) for p in (ROOT / "cli").glob("*.py")
                    if str(p.relative_to(ROOT)) not in NOT_THIN))
MAX_COMMAND_LINES = 60


def function_lengths(path: Path) -> dict[str, int]:
    """Lines of every function in `path`, from its `def` to its last line (signature and docstring in)."""
    tree = ast.parse(path.read_text("utf-8"))
    return {node.name: node.end_lineno - node.lineno + 1 for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}


def test_function_lengths_are_measured(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("@dec\ndef a(\n    x,\n):\n    return x\n\n\ndef b():\n    pass\n")
    assert function_lengths(f) == {"a": 4, "b": 2}


@pytest.mark.parametrize("name", THIN)
def test_command_functions_are_thin(name):
    long = {fn: n for fn, n in function_lengths(ROOT / name).items() if n > MAX_COMMAND_LINES}
    assert long == {}, f"{name}: over {MAX_COMMAND_LINES} lines (move the logic into llmscisci.api)"


def test_every_command_module_is_listed():
    assert {"cli/label.py", "cli/code.py", "cli/code_plan.py", "cli/data.py", "cli/baseline.py", "cli/dpo_cmds.py",
            "cli/grpo_cmds.py", "cli/train.py", "cli/export.py", "cli/grid.py"} <= set(THIN)
    assert all((ROOT / name).is_file() for name in NOT_THIN)  # an exception that is gone is dropped here
