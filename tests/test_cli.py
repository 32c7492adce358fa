"""The command line: every subcommand has --help; bad input gives one line on stderr and exit 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

COMMANDS = ["label", "eval", "ask", "extract", "judge", "agree", "baseline", "sft", "dpo", "grpo", "grid",
            "report", "data", "code", "prevalence", "robustness"]


def run(*args, env=None):
    return subprocess.run([sys.executable, "-m", "llmscisci", *args], capture_output=True, text=True, env=env)


def test_every_shared_command_exists():
    from typer.testing import CliRunner

    from llmscisci.cli import app

    res = CliRunner().invoke(app, ["--help"])
    assert res.exit_code == 0
    for cmd in COMMANDS:
        assert cmd in res.output, cmd
        sub = CliRunner().invoke(app, [cmd, "--help"])
        assert sub.exit_code == 0, (cmd, sub.output)


@pytest.mark.parametrize("args,needle", [
    (["label", "--task", "nope.toml", "--data-dir", "."], "file not found: nope.toml"),
    (["label", "--task", "nope", "--data-dir", "."], "unknown task 'nope'"),
    (["eval", "/nonexistent/run"], "no predictions.jsonl"),
    (["baseline", "--method", "magic", "--data-dir", "."], "unknown --method"),
])
def test_one_line_errors(args, needle):
    proc = run(*args)
    assert proc.returncode == 2
    lines = [x for x in proc.stderr.strip().splitlines() if not x.startswith("WARNING")]
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], proc.stderr


def test_missing_data_dir(tmp_path):
    import os

    env = {k: v for k, v in os.environ.items() if k != "LLMSCISCI_DATA"}
    proc = run("label", "--task", "easy", "--data-dir", str(tmp_path / "nope"), env=env)
    assert proc.returncode == 2 and "does not exist" in proc.stderr and "Traceback" not in proc.stderr


def test_label_defaults_to_the_bundled_dataset(tmp_path):
    """With no --data-dir and no LLMSCISCI_DATA the study's data is the bundled copy: a dry run plans all
    70 easy items (an API model's dry run: nothing is sent, no key needed)."""
    import json
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("LLMSCISCI_DATA", "OPENAI_API_KEY")}
    proc = run("label", "--task", "easy", "--model", "openai:gpt-4o-mini", "--dry-run", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["dry_run"]["n_items"] == 70
