"""`llmscisci extract` with the real embedded model (smollm2-135m): 1 block per prompt variant."""

from __future__ import annotations

import json
import sys

import pytest

from llmscisci.cli import main
from llmscisci.prompts.extract import VARIANTS
from llmscisci.runs import read_jsonl

SNAPSHOT = "read_index_2025-03-04.html"


@pytest.mark.slow
def test_extract_smollm2_all_variants(request, data_dir, tmp_path, capsys, monkeypatch):
    """Each variant writes a complete run folder over 1 block; the structured variant always parses."""
    try:
        model_dir = request.getfixturevalue("embedded_model_dir")
    except pytest.FixtureLookupError:
        pytest.skip("pending: the embedded_model_dir fixture (local backend) is not in tests/conftest.py yet")
    for variant in VARIANTS:
        out = tmp_path / variant
        # free-text answers get a short budget (speed; a cut answer is recorded, not fatal); the
        # structured one keeps the default so its JSON can close
        budget = ["--max-new-tokens", "160" if variant == "structured" else "48"]
        monkeypatch.setattr(sys, "argv", [
            "llmscisci", "extract", str(data_dir / "rescience" / SNAPSHOT), "--variant", variant,
            "--model", str(model_dir), "--limit", "1", "--data-dir", str(data_dir), "--out", str(out),
            "--device", "cpu", "--quiet", *budget])
        try:
            main()
        except SystemExit as exc:
            assert not exc.code, capsys.readouterr().err
        (run_dir,) = out.iterdir()
        assert {"config.json", "predictions.jsonl", "predictions.csv", "metrics.json", "baseline.csv"} <= {
            p.name for p in run_dir.iterdir()}
        preds = read_jsonl(run_dir / "predictions.jsonl")
        assert [p["unit"] for p in preds] == ["block-0000"]
        assert all(p["error"] is None and p["raw"] and p["tokens_out"] > 0 for p in preds)
        m = json.loads((run_dir / "metrics.json").read_text())
        assert m["model"]["truth_records"] == 1 and m["baseline"]["record"]["recall"] == 1.0
        assert m["units_done"] == 1 and set(m["gap"]) == set(m["headline"]["model"])
        cfg = json.loads((run_dir / "config.json").read_text())
        assert cfg["variant"] == variant and cfg["structured"] == (variant == "structured")
        if variant == "structured":
            # a cut answer (token cap) is closed at its last complete value: valid, flagged repaired
            assert all(p["valid"] for p in preds), [p["raw"] for p in preds]
            assert m["model"]["valid_rate"] == 1.0
    capsys.readouterr()
