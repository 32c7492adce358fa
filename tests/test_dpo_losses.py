"""Every DPO loss type runs and logs on a tiny random model (1-2 steps, no download)."""

from __future__ import annotations

import pytest

from llmscisci.data import load_codebook, load_items, load_labels
from llmscisci.train import preferences as P
from llmscisci.train.config import load_config


@pytest.fixture(scope="module")
def prefs(tmp_path_factory, data_dir):
    import json

    tmp = tmp_path_factory.mktemp("prefs")
    cb = load_codebook("easy")
    items = [it for it in load_items(cb, data_dir=data_dir) if it.split == "train"][:4]
    good, bad = tmp / "good.jsonl", tmp / "bad.jsonl"
    good.write_text("".join(json.dumps({"doi": it.doi, "task": "easy", "labels": list(it.labels)}) + "\n" for it in items))
    bad.write_text("".join(json.dumps({"doi": it.doi, "task": "easy", "labels": [0, 0, 0, 0, 1]}) + "\n" for it in items))
    rows = P.by_correctness(items, cb, "guidelines", [load_labels(good), load_labels(bad)])
    P.save_preferences(rows, tmp / "set", {"strategy": "by-correctness"})
    return tmp / "set"


def _config(prefs, model_dir, out_dir, *overrides):
    from llmscisci.train.dpo import DEFAULTS

    cfg = load_config(None, DEFAULTS, ["train.batch_size=2", "train.max_length=0", *overrides])
    cfg["model"]["name"] = str(model_dir)
    cfg["data"]["preferences"] = str(prefs)
    cfg["output"]["dir"] = str(out_dir)
    return cfg


@pytest.mark.parametrize("loss,extra", [
    ("sigmoid", []), ("hinge", ["dpo.beta=0.05"]), ("ipo", []),
    ("robust", ["dpo.label_smoothing=0.05"]), ("sigmoid", ["dpo.use_weighting=true"]),
    ("apo_zero", []),
])
def test_loss_type_trains_and_logs(loss, extra, prefs, tiny_model_dir, tmp_path):
    from llmscisci.train.dpo import train_dpo

    out = train_dpo(_config(prefs, tiny_model_dir, tmp_path / "out", f"dpo.loss_type={loss}", "train.max_steps=2",
                            "lora.r=4", "lora.alpha=8", *extra))
    log = [r for r in out.read_log() if "loss" in r]
    assert len(log) == 2
    assert all(r["loss"] == r["loss"] for r in log)  # finite, not NaN
    assert {"rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins"} <= set(log[0])
    assert (out.path / "adapter_model.safetensors").is_file()
    assert not (out.path / "checkpoints").exists()


def test_separate_reference_and_merge(prefs, tiny_model_dir, tmp_path):
    from llmscisci.train.dpo import train_dpo

    out = train_dpo(_config(prefs, tiny_model_dir, tmp_path / "out", "train.max_steps=1",
                            "dpo.separate_reference=true", "output.merge=true"))
    assert (out.path / "merged" / "config.json").is_file()
    assert (out.path / "adapter_config.json").is_file()


def test_full_finetune_with_separate_reference(prefs, tiny_model_dir, tmp_path):
    """The no-PEFT alternative the memory benchmark compares against: every weight trains."""
    from safetensors.torch import load_file

    from llmscisci.train.dpo import train_dpo

    out = train_dpo(_config(prefs, tiny_model_dir, tmp_path / "out", "train.max_steps=1", "dpo.full_finetune=true",
                            "train.learning_rate=1e-2"))
    assert not (out.path / "adapter_config.json").exists()
    before, after = load_file(str(tiny_model_dir / "model.safetensors")), load_file(str(out.path / "model.safetensors"))
    changed = [k for k in before if k in after and not (before[k] == after[k]).all()]
    assert len(changed) > len(before) // 2  # not an adapter: most tensors moved
