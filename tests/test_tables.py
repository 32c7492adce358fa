"""Results tables fit 80 columns and pipes with every number whole; `--json` puts only JSON on stdout,
`--json-out PATH` writes it to a file."""

from __future__ import annotations

import io
import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
from console import run_console
from rich.console import Console
from rich.table import Table

from llmscisci.backends import registry
from llmscisci.cli.tables import fit_table, print_table
from llmscisci.metrics.evaluate import format_table

REPO = Path(__file__).resolve().parents[1]
NUMBER = re.compile(r"\d+\.\d+")


def _render(table, width: int = 80, terminal: bool = True) -> str:
    buf = io.StringIO()
    console = Console(file=buf, width=width if terminal else None, force_terminal=terminal, color_system=None)
    print_table(console, table)
    return buf.getvalue()


def _metrics() -> dict:
    s = {"hamming_loss": 0.123456, "subset_accuracy": 0.654321, "micro_f1": 0.777777, "macro_f1": 0.612345, "n": 70}
    t = {"hamming_loss": 0.2, "subset_accuracy": 0.6, "micro_f1": 0.712, "macro_f1": 0.5, "n": 14}
    return {"n_items": 70, "n_scored": 70, "invalid_rate": 0.0142857, "repaired_rate": 0.1,
            "all": s, "test": t, "n_planned": 90, "partial": True,
            "baselines": {"majority": {"all": s, "test": t}, "prior": {"all": t, "test": s}}}


@pytest.mark.parametrize("terminal", [True, False])
def test_label_table_fits_80_columns_with_every_number_whole(terminal):
    text = _render(format_table(_metrics()), terminal=terminal)
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= 80
    for value in (0.123456, 0.654321, 0.777777, 0.612345, 0.2, 0.6, 0.712, 0.5):
        assert f"{value:.3f}" in text, (value, text)
    assert "PARTIAL: 70 of 90 planned items" in " ".join(text.split())


def test_a_wide_table_is_split_into_parts_that_fit():
    t = Table(title="pairs")
    t.add_column("coder A")
    t.add_column("coder B")
    heads = [f"κ category number {i}" for i in range(12)]
    for h in heads:
        t.add_column(h, justify="right")
    values = [[f"{random.Random(r * 31 + j).uniform(-1, 1):.3f}" for j in range(12)] for r in range(4)]
    for r, row in enumerate(values):
        t.add_row(f"annotator_{r}", f"model_with_a_long_name_{r}", *row)
    parts = fit_table(t, 80)
    assert len(parts) > 1
    for terminal in (True, False):
        text = _render(t, terminal=terminal)
        assert "…" not in text and max(len(line) for line in text.splitlines()) <= 80
        found = NUMBER.findall(text)
        for row in values:
            for v in row:
                assert v.lstrip("-") in found or v in found, (v, text)


def _coder_files(tmp_path: Path, data_dir: Path) -> list[Path]:
    """Three coders of the easy task: an annotator and two noisy copies, so the kappas differ."""
    rows = [json.loads(x) for x in (data_dir / "labels" / "annotator_a.jsonl").read_text("utf-8").splitlines()]
    rows = [r for r in rows if r["task"] == "easy"]
    files = []
    for k, noise in enumerate((0.0, 0.15, 0.3)):
        rng = random.Random(k)
        out = tmp_path / f"coder_{k}.jsonl"
        with out.open("w", encoding="utf-8") as fh:
            for r in rows:
                labels = [1 - v if rng.random() < noise else v for v in r["labels"]]
                fh.write(json.dumps({"doi": r["doi"], "task": "easy", "labels": labels}) + "\n")
        files.append(out)
    return files


def test_agree_fits_a_pipe_and_json_is_alone_on_stdout(tmp_path, data_dir, capsys, monkeypatch):
    files = _coder_files(tmp_path, data_dir)
    code, out, err = run_console(["agree", *files, "--task", "easy", "--json"], capsys, monkeypatch)
    assert code == 0, err
    result = json.loads(out)  # nothing else on stdout
    report = result["tasks"]["easy"]
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    env["PYTHONPATH"] = str(REPO / "src")
    proc = subprocess.run([sys.executable, "-m", "llmscisci", "agree", *map(str, files), "--task", "easy"],
                          capture_output=True, text=True, env=env, timeout=120)  # stdout is a pipe
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= 80
    kappas = [s["value"] for p in report["pairs"] for s in p["kappa"].values() if s["value"] is not None]
    assert len(set(round(k, 3) for k in kappas)) > 3  # the check below is not vacuous
    found = set(NUMBER.findall(text))
    for k in kappas:
        assert f"{abs(k):.3f}" in found, (k, text)

    target = tmp_path / "agree.json"
    code, out, err = run_console(["agree", *files, "--task", "easy", "--json-out", target], capsys, monkeypatch)
    assert code == 0, err
    assert json.loads(target.read_text("utf-8"))["tasks"]["easy"]["pairs"] == report["pairs"]


class FakeBackend:
    context_length = None

    def check_context(self, messages, max_new_tokens):
        return True, 10

    def describe(self):
        return {"name": "fake"}

    def generate(self, conversations, params=None, schema=None, on_result=None):
        from llmscisci.backends.base import Generation

        gens = []
        for i, _ in enumerate(conversations):
            gen = Generation(text=json.dumps({f: j == 1 for j, f in enumerate(schema.model_fields)}))
            if on_result:
                on_result(i, gen)
            gens.append(gen)
        return gens


def test_label_and_eval_json(tmp_path, data_dir, capsys, monkeypatch):
    monkeypatch.setattr(registry, "load_backend", lambda name, options=None: FakeBackend())
    code, out, err = run_console(["label", "--task", "easy", "--data-dir", data_dir, "--limit", "3",
                                  "--out", tmp_path / "runs", "--json"], capsys, monkeypatch)
    assert code == 0, err
    result = json.loads(out)
    assert result["task"] == "easy" and result["metrics"]["n_items"] == 3
    run = Path(result["run_dir"])
    code, out, err = run_console(["eval", run, "--json", "--json-out", tmp_path / "m.json"], capsys, monkeypatch)
    assert code == 0, err
    assert json.loads(out)["n_items"] == 3
    assert json.loads((tmp_path / "m.json").read_text("utf-8"))["all"] == json.loads(out)["all"]
    assert "Labelling metrics" in err  # the human table went to stderr


def test_baseline_json_is_alone_on_stdout(tmp_path, data_dir, capsys, monkeypatch):
    code, out, err = run_console(["baseline", "--task", "easy", "--method", "majority", "--data-dir", data_dir,
                                  "--out", tmp_path, "--json"], capsys, monkeypatch)
    assert code == 0, err
    result = json.loads(out)
    assert result["method"] == "majority" and result["metrics"]["n_items"] == 70
    assert "Labelling metrics" in err
