"""Supervised fine-tuning (TRL SFTTrainer + LoRA) on the labelling prompts with reference answers.

Rows are prompt/completion pairs: the prompt is the variant's chat messages, the completion is the
reference labels rendered exactly as the variant asks; the loss covers the completion only.
"""

from __future__ import annotations

import time
from pathlib import Path

from llmscisci.train.common import (LORA_DEFAULTS, device_args, label_prompt, load_trainable, lora_config, require,
                                    split_record, task_items)
from llmscisci.train.distributed import save_adapter
from llmscisci.train.layout import TrainOutput, make_log_callback

DEFAULTS = {
    "model": {"name": "smollm2-135m", "device": "auto", "dtype": "auto", "trust_remote_code": False},
    "data": {"tasks": ["easy", "difficult"], "variant": "guidelines", "data_dir": "", "limit": 0,
             "rows": "labels"},
    "lora": dict(LORA_DEFAULTS),
    "train": {"epochs": 3.0, "max_steps": -1, "learning_rate": 2e-4, "batch_size": 4, "grad_accum": 1,
              "max_length": 768, "gradient_checkpointing": False, "seed": 2025, "logging_steps": 1,
              "warmup_steps": 0, "report_to": "none"},
    "output": {"dir": "runs/sft"},
}


def build_rows(cfg: dict) -> tuple[list[dict], list[dict], dict]:
    """(train rows, test rows, split record) of prompt/completion pairs from the reference labels."""
    from llmscisci.tasks.parse import render_answer

    variant = cfg["data"]["variant"]
    by_task = task_items(cfg["data"]["tasks"], cfg["data"]["data_dir"])
    rows = {"train": [], "test": []}
    for cb, items in by_task:
        for it in items:
            if it.labels is None:
                continue
            rows[it.split].append({
                "prompt": label_prompt(it, cb, variant),
                "completion": [{"role": "assistant", "content": render_answer(it.labels, cb, variant)}],
                "doi": it.doi, "task": it.task,
            })
    limit = int(cfg["data"].get("limit") or 0)
    if limit:
        rows["train"] = rows["train"][:limit]
    return rows["train"], rows["test"], split_record(by_task)


def train_sft(cfg: dict, rows: tuple | None = None, show_progress: bool = True) -> TrainOutput:
    """Run SFT with the resolved config; `rows` may be given (e.g. chain-of-thought rows for GRPO)."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    train_rows, test_rows, split = rows if rows is not None else build_rows(cfg)
    require(len(train_rows) > 0, "SFT: no training rows (check the data directory and tasks)")
    out = TrainOutput(cfg["output"]["dir"])
    model_name = cfg["model"]["name"]
    model, tok = load_trainable(model_name, cfg["model"]["device"], cfg["model"]["dtype"],
                                bool(cfg["model"]["trust_remote_code"]))
    t = cfg["train"]
    out.prepare(cfg, "sft", model_name, split)
    args = SFTConfig(
        output_dir=str(out.path / "checkpoints"),
        num_train_epochs=float(t["epochs"]),
        max_steps=int(t["max_steps"]),
        learning_rate=float(t["learning_rate"]),
        per_device_train_batch_size=int(t["batch_size"]),
        gradient_accumulation_steps=int(t["grad_accum"]),
        gradient_checkpointing=bool(t["gradient_checkpointing"]),
        max_length=int(t["max_length"]),
        logging_steps=int(t["logging_steps"]),
        warmup_steps=int(t["warmup_steps"]),
        seed=int(t["seed"]),
        save_strategy="no",
        report_to=t["report_to"],
        completion_only_loss=True,
        disable_tqdm=not show_progress,
        **device_args(cfg["model"]["device"]),
    )
    cols = ["prompt", "completion"]
    ds = Dataset.from_list([{k: r[k] for k in cols} for r in train_rows])
    trainer = SFTTrainer(model=model, args=args, train_dataset=ds, processing_class=tok,
                         peft_config=lora_config(cfg["lora"]), callbacks=[make_log_callback(out)])
    t0 = time.perf_counter()
    trainer.train()
    out.log({"step": trainer.state.global_step, "train_seconds": round(time.perf_counter() - t0, 2)})
    out.record_schedule(trainer)
    save_adapter(trainer, tok, out.path, model_name)
    out.cleanup()
    out.plot(title=f"SFT {model_name}")
    return out
