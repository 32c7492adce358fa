"""The `score` prompt variant: labels from yes/no log-odds (local models, OpenAI-compatible logprobs),
contextual calibration and thresholds fitted on a calibration source only."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from llmscisci.backends.base import BackendOptions
from llmscisci.backends.local import LocalBackend
from llmscisci.backends.models import load
from llmscisci.data.codebook import load_codebook
from llmscisci.prompts import label as prompts

TEXTS = [
    "The code was available and easy to run. Hyperparameters were given in the paper.",
    "Datasets, pretrained models and checkpoints were provided by the authors.",
    "The paper was clearly written; the method was easy to follow.",
]


@pytest.fixture(scope="module")
def loaded(tiny_model_dir):
    return load(str(tiny_model_dir), BackendOptions(device="cpu"))


def reference_log_odds(backend: LocalBackend, conv) -> float:
    """One conversation, no padding, no cache: a plain forward pass and the last position's logits."""
    ids = torch.tensor([backend.prompt_ids(conv)])
    with torch.inference_mode():
        logp = torch.log_softmax(backend.model(input_ids=ids).logits[0, -1].float(), -1)
    yes, no = backend.answer_token_ids()
    return float(torch.logsumexp(logp[yes], -1) - torch.logsumexp(logp[no], -1))


def test_local_scores_match_plain_forward_with_and_without_prefix_cache(loaded):
    cb = load_codebook("easy")
    convs = [c for t in TEXTS for c in prompts.item_score_messages(t, cb, "score")]
    for kw in ({}, {"prefix_cache": False}):
        be = LocalBackend("tiny", BackendOptions(device="cpu", batch_size=3), loaded=loaded, **kw)
        seen = []
        gens = be.score_yes_no(convs, on_result=lambda i, g: seen.append(i))
        assert sorted(seen) == list(range(len(convs)))
        expected = [reference_log_odds(be, c) for c in convs]
        assert [g.extra["log_odds"] for g in gens] == pytest.approx(expected, abs=1e-4)
        assert all(g.error is None and g.text in ("yes", "no") for g in gens)
    yes, no = be.answer_token_ids()
    assert yes and no and not set(yes) & set(no)


def tiny_label(tiny_model_dir, tmp_path, *args):
    from typer.testing import CliRunner

    from llmscisci.cli import app

    return CliRunner().invoke(app, ["label", "--task", "easy", "--variant", "score", "--model", str(tiny_model_dir),
                                    "--device", "cpu", "--out", str(tmp_path), "--json", *args])


def test_score_run_gives_valid_labels_for_every_item_and_keeps_log_odds(tiny_model_dir, tmp_path):
    res = tiny_label(tiny_model_dir, tmp_path, "--limit", "4")
    assert res.exit_code == 0, res.output
    run_dir = next(tmp_path.glob("label_easy_score_*"))
    preds = [json.loads(line) for line in (run_dir / "predictions.jsonl").read_text().splitlines()]
    cb = load_codebook("easy")
    scored = [cb.shorts[k] for k in prompts.score_categories(cb)]
    assert len(preds) == 4
    for p in preds:
        assert p["valid"] and p["error"] is None and len(p["labels"]) == cb.n
        assert set(p["scores"]) == set(scored) == set(json.loads(p["raw"])["log_odds"])
    cfg = json.loads((run_dir / "config.json").read_text())
    cal = cfg["calibration"]
    assert cal["categories"] == scored and len(cal["content_free"]) == len(scored)
    assert cal["thresholds"] == [0.0] * len(scored) and cal["source"] is None
    # calibrated = raw - content-free, labels = calibrated > threshold (none by the label policy)
    for p in preds:
        raw = json.loads(p["raw"])["log_odds"]
        for j, short in enumerate(scored):
            assert p["scores"][short] == pytest.approx(raw[short] - cal["content_free"][j], abs=1e-3)
            assert p["labels"][cb.shorts.index(short)] == int(p["scores"][short] > 0)
