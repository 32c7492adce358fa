"""The docs cannot drift from the CLI: every `llmscisci ...` command shown in README.md and docs/*.md
names a subcommand and options that exist; the commands marked `<!-- doc-test -->` (cheap ones) are
run, and so are the marked Python examples (a page's in order, in one namespace); the README stays a five-minute read; and the MkDocs site builds with --strict (no broken link)."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main

from console import run_console
from llmscisci.cli import app

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
MARK = "<!-- doc-test -->"
README_LIMIT = 15 * 1024


def _blocks(text: str) -> list[tuple[bool, str]]:
    """(marked, body) of every fenced code block."""
    out = []
    for m in re.finditer(r"(?m)^(?P<mark><!-- doc-test -->\n)?```[^\n]*\n(?P<body>.*?)^```", text, re.S):
        out.append((bool(m.group("mark")), m.group("body")))
    return out


def _commands(text: str) -> list[tuple[bool, str]]:
    """(marked, command line) of every `llmscisci ...` line in code blocks (continuations joined) and
    of inline `llmscisci ...` spans."""
    found = []
    for marked, body in _blocks(text):
        joined = re.sub(r"\\\n\s*", " ", body)
        for line in joined.splitlines():
            for part in line.split("&&"):  # `bash scripts/setup.sh && .venv/bin/llmscisci label ...`
                part = re.sub(r"^\s*(\$|>)\s*", "", part).strip()
                part = re.sub(r"^(\S*/)?llmscisci(?= |$)", "llmscisci", part)
                if part.startswith("llmscisci ") or part == "llmscisci":
                    found.append((marked, part))
    without_blocks = re.sub(r"(?ms)^```.*?^```", "", text)
    for span in re.findall(r"`(llmscisci [^`]+)`", without_blocks):
        found.append((False, span))
    return found


def _argv(line: str) -> list[str]:
    line = line.split(" #", 1)[0]  # a trailing comment
    for sep in (" | ", " > ", " && ", " 2>", " ; "):
        line = line.split(sep, 1)[0]
    try:
        return shlex.split(line)[1:]
    except ValueError:  # an unbalanced quote in prose
        return shlex.split(line.replace("'", "").replace('"', ""))[1:]


def _check(argv: list[str]) -> str | None:
    """None if the subcommand and every option exist, else what is wrong."""
    cmd = typer.main.get_command(app)  # typer's own click: groups have .commands
    path = ["llmscisci"]
    args = list(argv)
    while hasattr(cmd, "commands") and args and not args[0].startswith("-"):
        name = args.pop(0)
        if name not in cmd.commands:
            if re.fullmatch(r"[A-Z_.<>\[\]|-]+|\.\.\.", name):  # a placeholder (COMMAND, ...)
                return None
            return f"{' '.join(path)} has no subcommand {name!r}"
        cmd = cmd.commands[name]
        path.append(name)
    known = {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)} | {"--help"}
    for a in args:
        if a.startswith("--") and len(a) > 2:
            opt = a.split("=", 1)[0]
            if opt not in known and not re.fullmatch(r"--[A-Z_]+", opt):
                return f"{' '.join(path)} has no option {opt}"
        elif re.fullmatch(r"-[a-zA-Z]", a) and a not in known:
            return f"{' '.join(path)} has no option {a}"
    return None


ALL = [(p, marked, line) for p in PAGES for marked, line in _commands(p.read_text("utf-8"))]


def test_the_docs_show_commands():
    assert len(ALL) > 50  # the parser finds them (README and the per-workflow pages)
    assert _check(["label", "--no-such-flag"]) == "llmscisci label has no option --no-such-flag"
    assert _check(["nosuch"]) == "llmscisci has no subcommand 'nosuch'"
    assert _check(["grpo", "build", "--source", "annotators"]) is None


def test_every_documented_command_exists():
    wrong = [f"{p.relative_to(ROOT)}: {line}\n    -> {why}"
             for p, _m, line in ALL if (why := _check(_argv(line)))]
    assert wrong == [], "\n".join(wrong)


MARKED = [(p, line) for p, marked, line in ALL if marked]


def test_some_commands_are_marked_to_run():
    assert len(MARKED) >= 3


@pytest.mark.parametrize("page,line", MARKED, ids=[line for _p, line in MARKED])
def test_marked_commands_run(page, line, capsys, monkeypatch):
    """Marked commands are cheap and write nothing; they run from the repository root, as shown."""
    monkeypatch.delenv("LLMSCISCI_DATA", raising=False)  # the bundled dataset, as a newcomer has it
    monkeypatch.chdir(ROOT)
    code, out, err = run_console(_argv(line), capsys, monkeypatch)
    assert code == 0, f"{page.name}: {line}\n{err}"
    assert out.strip() or err.strip()


def _python_examples(text: str) -> list[str]:
    """The marked ```python blocks of a page, in order."""
    return [m.group("body") for m in re.finditer(r"(?m)^<!-- doc-test -->\n```python\n(?P<body>.*?)^```", text, re.S)]


PY_PAGES = [p for p in PAGES if _python_examples(p.read_text("utf-8"))]


def test_some_python_examples_are_marked_to_run():
    assert ROOT / "docs" / "python-api.md" in PY_PAGES
    assert _python_examples("<!-- doc-test -->\n```python\nx = 1\n```\n```python\ny\n```\n") == ["x = 1\n"]


@pytest.mark.parametrize("page", PY_PAGES, ids=[p.name for p in PY_PAGES])
def test_marked_python_examples_run(page, tmp_path, monkeypatch):
    """A page's marked Python examples run top to bottom, as a reader pastes them (in a fresh folder)."""
    monkeypatch.delenv("LLMSCISCI_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__doc_example__"}
    for i, code in enumerate(_python_examples(page.read_text("utf-8")), 1):
        try:
            exec(compile(code, f"{page.name}, example {i}", "exec"), namespace)
        except Exception as exc:  # noqa: BLE001 - name the example that failed
            raise AssertionError(f"{page.name}, example {i} failed: {exc!r}\n{code}") from exc


def test_readme_is_a_five_minute_read():
    text = (ROOT / "README.md").read_text("utf-8")
    assert len(text.encode("utf-8")) <= README_LIMIT
    for page in re.findall(r"\]\((docs/[^)#]+)", text):
        assert (ROOT / page).is_file(), page


def test_the_site_builds_strictly(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-f",
                           str(ROOT / "mkdocs.yml"), "-d", str(tmp_path / "site")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "site" / "index.html").is_file()


def test_no_workspace_paths():
    """Every documented command runs on a fresh clone: no path into a developer's workspace."""
    found = [f"{p.relative_to(ROOT)}:{i}: {line.strip()}" for p in PAGES
             for i, line in enumerate(p.read_text("utf-8").splitlines(), start=1) if "../shared" in line]
    assert found == [], "\n".join(found)
