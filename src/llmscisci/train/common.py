"""Pieces every trainer shares: model loading for training, LoRA config, data rows, device settings."""

from __future__ import annotations

import json
from pathlib import Path

from llmscisci.data.codebook import load_codebook
from llmscisci.data.items import Item, load_items
from llmscisci.data.split import SPLIT_INFO
from llmscisci.errors import UserError
from llmscisci.paths import data_dir as resolve_data_dir
from llmscisci.prompts.label import build_messages, check_generating, check_variant

LORA_DEFAULTS = {"r": 16, "alpha": 32, "dropout": 0.05, "target_modules": "all-linear"}


def lora_config(cfg: dict):
    from peft import LoraConfig

    tm = cfg.get("target_modules", "all-linear")
    return LoraConfig(r=int(cfg["r"]), lora_alpha=int(cfg["alpha"]), lora_dropout=float(cfg["dropout"]),
                      target_modules=tm, task_type="CAUSAL_LM")


def load_trainable(model_name: str, device: str = "auto", dtype: str = "auto", trust_remote_code: bool = False,
                   load_in_4bit: bool = False):
    """Model + tokenizer to train. A trained adapter folder is merged into its base first, so a new
    LoRA can start from it (SFT warm start -> DPO/GRPO)."""
    from llmscisci.backends.base import BackendOptions
    from llmscisci.backends.models import ensure_pad_token, load_model_and_tokenizer

    opts = BackendOptions(device=device, dtype=dtype, trust_remote_code=trust_remote_code, load_in_4bit=load_in_4bit)
    model, tok = load_model_and_tokenizer(model_name, opts)  # an adapter folder comes back merged
    ensure_pad_token(tok)  # Llama 3: <|finetune_right_pad_id|>, as the seed padded
    model.config.use_cache = False
    return model, tok


def device_args(device: str = "auto") -> dict:
    """TrainingArguments fields for the device: CPU here, bf16 on a CUDA GPU."""
    import torch

    cuda = torch.cuda.is_available() and device in ("auto", "cuda")
    return {"use_cpu": not cuda and device != "mps", "bf16": bool(cuda and torch.cuda.is_bf16_supported())}


def task_items(tasks: list[str], data_dir: str | None) -> list[tuple]:
    """[(codebook, items)] for the configured tasks, from the data directory."""
    src = resolve_data_dir(data_dir or None)
    out = []
    for t in tasks:
        cb = load_codebook(t)
        out.append((cb, load_items(cb, data_dir=src)))
    return out


def split_record(items_by_task: list[tuple]) -> dict:
    train = sorted({it.doi for _, items in items_by_task for it in items if it.split == "train"})
    test = sorted({it.doi for _, items in items_by_task for it in items if it.split == "test"})
    return {**SPLIT_INFO, "train": train, "test": test}


def label_prompt(item: Item, codebook, variant: str) -> list[dict]:
    check_variant(variant)
    check_generating(variant, "training")
    return build_messages(item.text, codebook, variant)


def fix_adapter_base(out: Path, base_model: str) -> None:
    """Record the base model by its toolkit name, so the adapter folder resolves on any machine."""
    p = Path(out) / "adapter_config.json"
    if p.is_file():
        cfg = json.loads(p.read_text("utf-8"))
        cfg["base_model_name_or_path"] = base_model
        p.write_text(json.dumps(cfg, indent=2), encoding="utf-8")


def require(cond: bool, message: str) -> None:
    if not cond:
        raise UserError(message)
