"""Data-parallel training under `accelerate launch`: the same `llmscisci sft|dpo|grpo train` command,
started once per process.

The trainers (TRL on transformers' Trainer) already shard the data over the processes and average the
gradients; what this module adds is the toolkit's side of it: only the main process (rank 0) writes the
output folder (train_config.json, train_log.jsonl, curves, samples, the adapter), the others wait for it
where they read what it wrote (a warm start's adapter), and the run's config records the effective batch
size (per-device batch x processes x gradient accumulation) and the learning-rate schedule actually used.
Without a launcher there is one process, the main one, and nothing changes.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["barrier", "is_main", "rank", "save_adapter", "schedule_record", "world_size"]


def rank() -> int:
    """This process's global rank (0 without a launcher; `accelerate launch` and torchrun set RANK)."""
    return int(os.environ.get("RANK", "0") or 0)


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def is_main() -> bool:
    return rank() == 0


def barrier() -> None:
    """Wait until every process got here (a no-op in a single process)."""
    if world_size() > 1:
        from accelerate import PartialState

        PartialState().wait_for_everyone()


def save_adapter(trainer, tok, path: str | Path, base_model: str) -> None:
    """The trained adapter and tokenizer written once, by the main process; the others wait for it."""
    from llmscisci.train.common import fix_adapter_base

    if is_main():
        trainer.model.save_pretrained(str(path))
        tok.save_pretrained(str(path))
        fix_adapter_base(Path(path), base_model)
    barrier()


def schedule_record(trainer) -> dict:
    """What the optimiser saw: processes, batch sizes (per device and effective), learning-rate schedule."""
    a, st = trainer.args, trainer.state
    procs = int(getattr(a, "world_size", 1) or 1)
    per_device = int(a.per_device_train_batch_size)
    accum = int(a.gradient_accumulation_steps)
    sched = getattr(a.lr_scheduler_type, "value", a.lr_scheduler_type)
    return {
        "processes": procs,
        "parallel_mode": getattr(a.parallel_mode, "value", str(a.parallel_mode)),
        "per_device_batch_size": per_device,
        "grad_accum": accum,
        "effective_batch_size": per_device * procs * accum,
        "learning_rate": float(a.learning_rate),
        "lr_scheduler": str(sched),
        "warmup_steps": float(a.warmup_steps or 0),
        "optimizer_steps": int(st.max_steps),
        "epochs": float(st.num_train_epochs or 0),
    }
