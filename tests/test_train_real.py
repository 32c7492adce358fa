"""Real training runs on the embedded model (slow, CPU): SFT, DPO and GRPO each show a measured signal.

Kept small (a handful of steps on short sequences) so the whole file stays within a few minutes.
"""

from __future__ import annotations

import json

import pytest

from llmscisci.train.config import load_config

pytestmark = pytest.mark.slow


def _label(model, data_dir, out, split="test", limit=8, variant="guidelines", max_new_tokens=24):
    from llmscisci.backends.base import BackendOptions, GenParams
    from llmscisci.backends.registry import load_backend
    from llmscisci.data import load_codebook, load_items
    from llmscisci.tasks.label import LabelSpec, run_label

    cb = load_codebook("easy")
    items = load_items(cb, data_dir=data_dir)
    spec = LabelSpec(codebook=cb, variant=variant, model=str(model), split=split, limit=limit,
                     params=GenParams(max_new_tokens=max_new_tokens))
    return run_label(spec, items, load_backend(str(model), BackendOptions(batch_size=8)), out, show_progress=False)


def test_sft_loss_falls_and_format_improves(tmp_path, data_dir, embedded_model_dir):
    from llmscisci.train.sft import DEFAULTS, train_sft

    cfg = load_config(None, DEFAULTS, [
        "data.tasks=[\"easy\"]", "data.limit=16", "train.max_steps=8", "train.batch_size=2",
        "train.learning_rate=1e-3", "train.max_length=512", "train.logging_steps=1",
    ])
    cfg["data"]["data_dir"] = str(data_dir)
    cfg["output"]["dir"] = str(tmp_path / "sft")
    out = train_sft(cfg, show_progress=False)
    losses = [r["loss"] for r in out.read_log() if "loss" in r]
    assert len(losses) >= 6
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3, losses
    for f in ("adapter_config.json", "adapter_model.safetensors", "train_config.json", "split.json", "curves.png"):
        assert (out.path / f).is_file(), f
    assert json.loads((out.path / "adapter_config.json").read_text())["base_model_name_or_path"] == "smollm2-135m"
    base = _label("smollm2-135m", data_dir, tmp_path / "runs")
    tuned = _label(out.path, data_dir, tmp_path / "runs")
    b, t = base.metrics(), tuned.metrics()
    print(f"exact-format rate base {b['exact_format_rate']:.2f} -> SFT {t['exact_format_rate']:.2f}; "
          f"macro-F1 (test) base {b['test']['macro_f1']:.3f} -> SFT {t['test']['macro_f1']:.3f}")
    assert t["exact_format_rate"] > b["exact_format_rate"]


def test_dpo_overfits_a_tiny_preference_set(tmp_path, data_dir, embedded_model_dir):
    from llmscisci.data import load_codebook, load_items, load_labels
    from llmscisci.train import preferences as P
    from llmscisci.train.dpo import DEFAULTS, train_dpo

    cb = load_codebook("easy")
    items = [it for it in load_items(cb, data_dir=data_dir) if it.split == "train"][:4]
    ref = {it.doi: list(it.labels) for it in items}
    good, bad = tmp_path / "good.jsonl", tmp_path / "bad.jsonl"
    good.write_text("".join(json.dumps({"doi": d, "task": "easy", "labels": v}) + "\n" for d, v in ref.items()))
    bad.write_text("".join(json.dumps({"doi": d, "task": "easy", "labels": [0, 0, 0, 0, 1]}) + "\n" for d in ref))
    sets = [load_labels(good, name="good"), load_labels(bad, name="bad")]
    rows = P.by_correctness(items, cb, "guidelines", sets)
    assert len(rows) == 4
    P.save_preferences(rows, tmp_path / "prefs", {"strategy": "by-correctness"})
    cfg = load_config(None, DEFAULTS, ["train.max_steps=8", "train.batch_size=2", "train.learning_rate=5e-4",
                                       "dpo.loss_type=sigmoid", "dpo.beta=0.1", "train.max_length=512"])
    cfg["data"]["preferences"] = str(tmp_path / "prefs")
    cfg["output"]["dir"] = str(tmp_path / "dpo")
    out = train_dpo(cfg)
    log = [r for r in out.read_log() if "loss" in r]
    losses = [r["loss"] for r in log]
    acc = [r["rewards/accuracies"] for r in log]
    print("DPO loss", [round(x, 3) for x in losses], "accuracies", acc)
    assert losses[-1] < losses[0]
    assert sum(acc[-2:]) / 2 > sum(acc[:2]) / 2 or acc[-1] == 1.0 > acc[0]
    assert {"rewards/chosen", "rewards/rejected", "rewards/margins"} <= set(log[-1])
    assert (out.path / "curves.png").is_file()


def test_grpo_after_sft_warm_start(tmp_path, data_dir, embedded_model_dir):
    from llmscisci.rewards import core
    from llmscisci.train.grpo import DEFAULTS, cot_rows, train_grpo

    cfg = load_config(None, DEFAULTS, [
        "data.tasks=[\"easy\"]", "data.limit=12", "warm_start.sft_steps=10", "warm_start.batch_size=2",
        "warm_start.learning_rate=1e-3", "train.max_steps=3", "grpo.num_generations=4", "grpo.prompts_per_step=1",
        "grpo.max_completion_length=96", "grpo.beta=0.04", "train.learning_rate=1e-4",
        "rewards.mix=\"format:1,label:1,stepwise:1,balanced:1\"",
    ])
    cfg["data"]["data_dir"] = str(data_dir)
    cfg["output"]["dir"] = str(tmp_path / "grpo")
    out = train_grpo(cfg)
    log = [r for r in out.read_log() if "reward" in r]
    assert log, out.read_log()
    for name in ("format", "label", "stepwise", "balanced"):
        assert any(f"rewards/reward_{name}/mean" in r and f"rewards/reward_{name}/std" in r for r in log), name
    assert any(r.get("reward_std", 0) > 0 for r in log), [r.get("reward_std") for r in log]
    assert any("kl" in r for r in log)
    samples = [json.loads(x) for x in (out.path / "samples.jsonl").read_text().splitlines()]
    assert samples and "format" in samples[0]["rewards"]

    # the warm start taught the format: format reward on held-out prompts, base vs warm start
    from llmscisci.backends.base import GenParams
    from llmscisci.backends.registry import load_backend

    _, test = cot_rows(cfg)
    prompts = [r["prompt"] for r in test[:6]]
    params = GenParams(max_new_tokens=128)
    before = [core.format_reward(g.text) for g in load_backend("smollm2-135m").generate(prompts, params)]
    after = [core.format_reward(g.text) for g in load_backend(str(out.path / "warm_start")).generate(prompts, params)]
    print("held-out format reward: base", sum(before) / len(before), "-> warm start", sum(after) / len(after))
    assert sum(after) > sum(before)
