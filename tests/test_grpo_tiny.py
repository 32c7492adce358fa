"""GRPO wiring on a tiny random model: config -> TRL, reward mix, per-step log, samples, adapter."""

from __future__ import annotations

import json

from llmscisci.train.config import load_config


def test_grpo_one_step_on_tiny_model(tiny_model_dir, data_dir, tmp_path):
    from llmscisci.train.grpo import DEFAULTS, train_grpo

    cfg = load_config(None, DEFAULTS, [
        "data.tasks=[\"easy\"]", "data.limit=4", "train.max_steps=1", "grpo.num_generations=2",
        "grpo.max_completion_length=8", "grpo.beta=0.04", "rewards.mix=\"format:1,stepwise:1,balanced:1\"",
        "lora.r=2", "lora.alpha=4",
    ])
    cfg["model"]["name"] = str(tiny_model_dir)
    cfg["data"]["data_dir"] = str(data_dir)
    cfg["output"]["dir"] = str(tmp_path / "grpo")
    out = train_grpo(cfg)
    log = [r for r in out.read_log() if "reward" in r]
    assert log and all(f"rewards/reward_{n}/mean" in log[0] for n in ("format", "stepwise", "balanced"))
    assert (out.path / "adapter_model.safetensors").is_file()
    mix = json.loads((out.path / "rewards.json").read_text())
    assert [t["name"] for t in mix["terms"]] == ["format", "stepwise", "balanced"]
    assert (out.path / "samples.jsonl").read_text().strip()
