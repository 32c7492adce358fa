"""`llmscisci label` end to end with the embedded model: every variant, the run folder, eval, resume."""

from __future__ import annotations

import csv
import json

import pytest
from typer.testing import CliRunner

from llmscisci.cli import app

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def runs(tmp_path_factory, data_dir, embedded_model_dir):
    out = tmp_path_factory.mktemp("runs")
    runner = CliRunner()
    folders = {}
    for variant in ("icl", "guidelines", "structured"):
        res = runner.invoke(app, ["label", "--task", "easy", "--variant", variant, "--limit", "3",
                                  "--data-dir", str(data_dir), "--out", str(out), "--max-new-tokens",
                                  "64" if variant == "structured" else "24"])
        assert res.exit_code == 0, res.output
        (folders[variant],) = [p for p in out.iterdir() if p.name.startswith(f"label_easy_{variant}_")]
    return folders


@pytest.mark.parametrize("variant", ["icl", "guidelines", "structured"])
def test_run_folder_contents(runs, variant):
    run = runs[variant]
    assert {"config.json", "predictions.jsonl", "predictions.csv", "metrics.json"} <= {p.name for p in run.iterdir()}
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["variant"] == variant and cfg["model"] == "smollm2-135m" and cfg["seed"] == 2025
    assert cfg["split"]["seed"] == 2025 and cfg["split"]["grouped_by"] == "doi"
    assert "torch" in cfg["versions"] and cfg["prompt_hash"]
    preds = [json.loads(x) for x in (run / "predictions.jsonl").read_text().splitlines()]
    assert len(preds) == 3
    for p in preds:
        assert {"doi", "task", "prompt_hash", "raw", "labels", "valid", "repaired", "tokens_in", "tokens_out",
                "seconds"} <= set(p)
        assert p["tokens_in"] > 100 and p["tokens_out"] > 0
    rows = list(csv.DictReader((run / "predictions.csv").open()))
    assert len(rows) == 3 and "pred_code" in rows[0] and "ref_none" in rows[0]
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0 <= metrics["invalid_rate"] <= 1 and "macro_f1" in metrics["all"]
    if variant == "structured":
        assert metrics["invalid_rate"] == 0.0, [p["raw"] for p in preds]
        assert all(p["exact_format"] for p in preds)


def test_eval_recomputes_and_rerun_resumes(runs, data_dir):
    run = runs["guidelines"]
    before = json.loads((run / "metrics.json").read_text())
    runner = CliRunner()
    res = runner.invoke(app, ["eval", str(run)])
    assert res.exit_code == 0, res.output
    after = json.loads((run / "metrics.json").read_text())
    assert after["all"] == before["all"] and after["invalid_rate"] == before["invalid_rate"]
    n_lines = len((run / "predictions.jsonl").read_text().splitlines())
    res = runner.invoke(app, ["label", "--resume", str(run)])
    assert res.exit_code == 0, res.output
    assert len((run / "predictions.jsonl").read_text().splitlines()) == n_lines  # nothing generated again


def test_bad_input_is_one_line(tmp_path, data_dir):
    runner = CliRunner()
    res = runner.invoke(app, ["label", "--task", "nope", "--data-dir", str(data_dir), "--out", str(tmp_path)])
    assert res.exit_code != 0 and "unknown task" in str(res.exception)
    res = runner.invoke(app, ["label", "--variant", "poetry", "--data-dir", str(data_dir), "--out", str(tmp_path)])
    assert res.exit_code != 0 and "unknown variant" in str(res.exception)
    assert not any(tmp_path.iterdir())
