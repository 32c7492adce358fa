"""GRPO (TRL GRPOTrainer + LoRA) on programmatic rewards, with an optional SFT warm start.

The base 135M model almost never writes the `<think>...</think><label>[...]</label>` format, so every
group's rewards would be equal and GRPO would learn nothing: a short SFT on the chain-of-thought rows
first teaches the format. The reward mix is named in the config (see llmscisci.rewards.registry);
the KL term to the warm-start policy (`grpo.beta`) and several prompts per step are settings. The
rewards' ground truth is the reference labels, or another label file's (`data.truth_labels`; the seed
used GPT-4's labels).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from llmscisci.train.common import device_args, load_trainable, lora_config, require
from llmscisci.train.distributed import is_main, save_adapter
from llmscisci.train.layout import TrainOutput, make_log_callback

DEFAULTS = {
    "model": {"name": "smollm2-135m", "device": "auto", "dtype": "auto", "trust_remote_code": False},
    "data": {"cot": "", "tasks": ["easy", "difficult"], "data_dir": "", "limit": 0, "truth_labels": ""},
    "rewards": {"mix": "format:1,label:1,stepwise:1"},
    "warm_start": {"sft_steps": 0, "learning_rate": 5e-4, "batch_size": 4},
    "lora": {"r": 4, "alpha": 4, "dropout": 0.05, "target_modules": "all-linear"},
    "grpo": {"num_generations": 4, "prompts_per_step": 1, "beta": 0.0, "loss_type": "dapo",
             "temperature": 1.0, "max_completion_length": 128, "scale_rewards": "group", "use_vllm": False,
             "samples_per_step": 2, "trl_defaults_of": ""},
    "train": {"epochs": 1.0, "max_steps": -1, "learning_rate": 5e-6, "max_grad_norm": 20.0, "seed": 2025,
              "logging_steps": 1, "gradient_checkpointing": False, "report_to": "none"},
    "output": {"dir": "runs/grpo"},
}


def cot_rows(cfg: dict) -> tuple[list[dict], list[dict]]:
    """(train, test) chain-of-thought rows: from a `grpo build` folder, else built from the annotators."""
    from llmscisci.train import cot

    if cfg["data"]["cot"]:
        dd = cot.load_cot(cfg["data"]["cot"])
        train, test = dd["train"].to_list(), dd["test"].to_list()
    else:
        from llmscisci.paths import data_dir as resolve

        src = resolve(cfg["data"]["data_dir"] or None)
        built = cot.build_cot(cfg["data"]["tasks"], src)
        rows = built[0] if isinstance(built, tuple) else built
        train = [r for r in rows if r.get("split") == "train"]
        test = [r for r in rows if r.get("split") == "test"]
    if cfg["data"].get("truth_labels"):
        train, test = truth_from_labels(train, test, cfg["data"]["truth_labels"])
    limit = int(cfg["data"]["limit"] or 0)
    if limit:
        train = train[:limit]
    return train, test


def truth_from_labels(train: list[dict], test: list[dict], path: str | Path) -> tuple[list[dict], list[dict]]:
    """The rows with their `labels` (the rewards' ground truth) taken from a label file, e.g. the seed's
    GPT-4 file (`y_easy_gpt4`, `y_diff_gpt4`); rows the file has no labels for are dropped."""
    from llmscisci.data.labelfiles import load_labels
    from llmscisci.errors import UserError

    labelset = load_labels(path)
    out = []
    for rows in (train, test):
        kept = []
        for r in rows:
            rec = labelset.records.get((r["doi"], r["task"]))
            if rec is not None and rec.labels is not None:
                kept.append({**r, "labels": [int(v) for v in rec.labels], "truth_source": str(path)})
        out.append(kept)
    if not out[0]:
        raise UserError(f"{path}: no labels for any training row (DOIs and tasks must match the data)")
    return out[0], out[1]


def prevalence(rows: list[dict]) -> dict[str, list[float]]:
    """Train-split positive share per label, per task (for the balanced reward), Laplace-smoothed as
    everywhere else (`rewards.core.prevalence`: `grpo probe`, `grpo score`, the benchmark)."""
    from llmscisci.rewards.core import prevalence as smoothed

    out: dict[str, list] = {}
    for r in rows:
        out.setdefault(r["task"], []).append(r["labels"])
    return {t: list(smoothed(v)) for t, v in out.items()}


def grpo_args(cfg: dict, output_dir: str, weights: list[float]):
    from trl import GRPOConfig

    g, t = cfg["grpo"], cfg["train"]
    n_gen = int(g["num_generations"])
    return GRPOConfig(
        output_dir=output_dir,
        num_generations=n_gen,
        per_device_train_batch_size=n_gen * int(g["prompts_per_step"]),
        beta=float(g["beta"]),
        loss_type=g["loss_type"],
        temperature=float(g["temperature"]),
        max_completion_length=int(g["max_completion_length"]),
        scale_rewards=g["scale_rewards"],
        use_vllm=bool(g["use_vllm"]),
        reward_weights=weights,
        num_train_epochs=float(t["epochs"]),
        max_steps=int(t["max_steps"]),
        learning_rate=float(t["learning_rate"]),
        max_grad_norm=float(t["max_grad_norm"]),
        seed=int(t["seed"]),
        logging_steps=int(t["logging_steps"]),
        gradient_checkpointing=bool(t["gradient_checkpointing"]),
        save_strategy="no",
        report_to=t["report_to"],
        **device_args(cfg["model"]["device"]),
    )


class SampleLog:
    """Wraps one reward function to keep a few completions per step (samples.jsonl) with all rewards."""

    def __init__(self, func, mix, path: Path, per_step: int, state):
        self.func, self.mix, self.path, self.per_step, self.state = func, mix, path, per_step, state
        self.__name__ = func.__name__

    def __call__(self, prompts=None, completions=None, **kw):
        values = self.func(prompts=prompts, completions=completions, **kw)
        if self.per_step and completions and is_main():  # one writer under accelerate launch
            from llmscisci.rewards.trl import completion_text

            n = min(self.per_step, len(completions))
            scores = self.mix.score(completions[:n], **{k: v[:n] for k, v in kw.items() if isinstance(v, list)})
            with self.path.open("a", encoding="utf-8") as fh:
                for i in range(n):
                    fh.write(json.dumps({"step": self.state.get("step", 0), "doi": (kw.get("doi") or [None] * n)[i],
                                         "completion": completion_text(completions[i]),
                                         "rewards": {k: v[i] for k, v in scores.items()}}) + "\n")
        return values


def train_grpo(cfg: dict) -> TrainOutput:
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOTrainer

    from llmscisci.rewards.registry import RewardContext, build_mix
    from llmscisci.rewards.tokens import token_counter

    train_rows, test_rows = cot_rows(cfg)
    require(len(train_rows) > 0, "GRPO: no training rows")
    out = TrainOutput(cfg["output"]["dir"])
    model_name = cfg["model"]["name"]
    split = {"train": sorted({r["doi"] for r in train_rows}), "test": sorted({r["doi"] for r in test_rows})}
    out.prepare(cfg, "grpo", model_name, split)
    ws = cfg["warm_start"]
    if int(ws["sft_steps"]) > 0:
        from llmscisci.train.sft import DEFAULTS as SFT_DEFAULTS
        from llmscisci.train.sft import train_sft

        sft_cfg = json.loads(json.dumps(SFT_DEFAULTS))
        sft_cfg["model"] = dict(cfg["model"])
        sft_cfg["lora"] = {"r": 16, "alpha": 32, "dropout": 0.05, "target_modules": "all-linear"}
        sft_cfg["train"].update({"max_steps": int(ws["sft_steps"]), "learning_rate": float(ws["learning_rate"]),
                                 "batch_size": int(ws["batch_size"]), "seed": int(cfg["train"]["seed"])})
        sft_cfg["output"]["dir"] = str(out.path / "warm_start")
        sft_rows = [{"prompt": r["prompt"], "completion": r["completion"], "doi": r["doi"], "task": r["task"]}
                    for r in train_rows]
        train_sft(sft_cfg, rows=(sft_rows, [], split))
        model_name = str(out.path / "warm_start")
    model, tok = load_trainable(model_name, cfg["model"]["device"], cfg["model"]["dtype"],
                                bool(cfg["model"]["trust_remote_code"]))
    counter, method = token_counter(tok)
    ctx = RewardContext(n_labels=len(train_rows[0]["labels"]), none_index=-1, prevalence=prevalence(train_rows),
                        count_tokens=counter, token_method=method)
    mix = build_mix(cfg["rewards"]["mix"], ctx)
    state: dict = {"step": 0}
    funcs = list(mix.funcs)
    funcs[0] = SampleLog(funcs[0], mix, out.path / "samples.jsonl", int(cfg["grpo"]["samples_per_step"]), state)
    ds = Dataset.from_list([{"prompt": r["prompt"], "labels": r["labels"], "doi": r["doi"], "task": r["task"]}
                            for r in train_rows])
    if is_main():
        (out.path / "rewards.json").write_text(json.dumps(mix.describe(), indent=2, default=str), encoding="utf-8")

    class StepTracker(TrainerCallback):
        def on_step_begin(self, args, state_, control, **kw):
            state["step"] = state_.global_step + 1

    trainer = GRPOTrainer(model=model, reward_funcs=funcs, args=grpo_args(cfg, str(out.path / "checkpoints"), mix.weights),
                          train_dataset=ds, processing_class=tok, peft_config=lora_config(cfg["lora"]),
                          callbacks=[make_log_callback(out), StepTracker()])
    t0 = time.perf_counter()
    trainer.train()
    out.log({"step": trainer.state.global_step, "train_seconds": round(time.perf_counter() - t0, 2)})
    out.record_schedule(trainer)
    save_adapter(trainer, tok, out.path, model_name if int(ws["sft_steps"]) <= 0 else str(out.path / "warm_start"))
    keys = ["loss", "reward", "reward_std", "kl", "completions/mean_length"] + \
           [f"rewards/{f.__name__}/mean" for f in mix.funcs]
    out.cleanup()
    out.plot(keys=keys, title=f"GRPO {cfg['rewards']['mix']}")
    return out


def heldout_rewards(run_dir: str | Path, mix_spec: str, train_prevalence: dict | None = None) -> dict:
    """Mean of each reward over a labelling run's held-out generations (its raw outputs, not regenerated)."""
    from llmscisci.rewards.registry import RewardContext, build_mix
    from llmscisci.runs import RunFolder

    preds = [p for p in RunFolder(run_dir).records() if p.reference is not None]
    if not preds:
        return {}
    mix = build_mix(mix_spec, RewardContext(n_labels=len(preds[0].reference), none_index=-1,
                                           prevalence=train_prevalence))
    scores = mix.score([p.raw or "" for p in preds], labels=[p.reference for p in preds],
                       task=[p.task for p in preds])
    return {k: float(np.mean([v for v in vals if v is not None])) if any(v is not None for v in vals) else None
            for k, vals in scores.items()}
