"""DPO preference tuning (TRL DPOTrainer + PEFT LoRA) and its evaluation, policy vs reference.

With LoRA the reference model is the base with adapters disabled: no second copy in memory. Loss
types are TRL's, by name (sigmoid, hinge, ipo, robust with label smoothing, ...); WPO weighting is
`use_weighting`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from llmscisci.train.common import LORA_DEFAULTS, device_args, load_trainable, lora_config, require
from llmscisci.train.distributed import is_main, save_adapter
from llmscisci.train.layout import TrainOutput, make_log_callback

DEFAULTS = {
    "model": {"name": "smollm2-135m", "device": "auto", "dtype": "auto", "trust_remote_code": False,
              "load_in_4bit": False},
    "data": {"preferences": "runs/prefs", "limit": 0},
    "lora": dict(LORA_DEFAULTS),
    "dpo": {"loss_type": "sigmoid", "beta": 0.1, "label_smoothing": 0.0, "use_weighting": False,
            "precompute_ref_log_probs": False, "separate_reference": False,
            "full_finetune": False},
    "train": {"epochs": 1.0, "max_steps": -1, "learning_rate": 5e-5, "batch_size": 2, "grad_accum": 1,
              "max_length": 0, "gradient_checkpointing": False, "seed": 2025, "logging_steps": 1,
              "report_to": "none"},
    "output": {"dir": "runs/dpo", "merge": False},
}
LOGGED = ("loss", "rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins")


def dpo_args(cfg: dict, output_dir: str, max_length: int):
    """The DPOConfig a configuration resolves to (tested without a GPU)."""
    from trl import DPOConfig

    t, d = cfg["train"], cfg["dpo"]
    dev = device_args(cfg["model"]["device"])
    return DPOConfig(
        output_dir=output_dir,
        num_train_epochs=float(t["epochs"]),
        max_steps=int(t["max_steps"]),
        learning_rate=float(t["learning_rate"]),
        per_device_train_batch_size=int(t["batch_size"]),
        per_device_eval_batch_size=int(t["batch_size"]),
        gradient_accumulation_steps=int(t["grad_accum"]),
        gradient_checkpointing=bool(t["gradient_checkpointing"]),
        logging_steps=int(t["logging_steps"]),
        seed=int(t["seed"]),
        save_strategy="no",
        report_to=t["report_to"],
        loss_type=d["loss_type"] if isinstance(d["loss_type"], list) else [d["loss_type"]],
        beta=float(d["beta"]),
        label_smoothing=float(d["label_smoothing"]),
        use_weighting=bool(d["use_weighting"]),
        precompute_ref_log_probs=bool(d["precompute_ref_log_probs"]),
        max_length=max_length or None,
        disable_tqdm=False,
        **dev,
    )


def _load(cfg: dict, model_name: str):
    """The model and tokenizer with every loading setting of the configuration (device, dtype,
    trust_remote_code, 4-bit): the policy and a separate reference copy load alike."""
    m = cfg["model"]
    return load_trainable(model_name, m["device"], m["dtype"], bool(m["trust_remote_code"]), bool(m["load_in_4bit"]))


def reference_setup(cfg: dict, model, model_name: str):
    """(policy, reference model or None, peft config or None). With LoRA the reference is the base with
    the adapter disabled (no copy). The memory-hungry alternatives, kept to measure what LoRA saves
    (bench/dpo_step.py): a second copy as reference, loaded with the policy's settings, with every
    weight trained (TRL without PEFT; the output folder then holds the whole model) or with the LoRA
    adapter applied by hand."""
    peft_config = lora_config(cfg["lora"])
    full, separate = cfg["dpo"]["full_finetune"], cfg["dpo"]["separate_reference"]
    if not (full or separate):
        return model, None, peft_config
    ref_model, _ = _load(cfg, model_name)
    if not full:
        from peft import get_peft_model

        model = get_peft_model(model, peft_config)
    return model, ref_model, None


def train_dpo(cfg: dict) -> TrainOutput:
    from datasets import Dataset

    from llmscisci.train.preferences import load_preferences
    from trl import DPOTrainer

    prefs_dir = Path(cfg["data"]["preferences"])
    dd = load_preferences(prefs_dir)
    card = json.loads((prefs_dir / "card.json").read_text("utf-8")) if (prefs_dir / "card.json").is_file() else {}
    require("train" in dd, f"{prefs_dir}: the preference set has no training rows")
    rows = dd["train"]
    limit = int(cfg["data"].get("limit") or 0)
    if limit:
        rows = rows.select(range(min(limit, len(rows))))
    require(len(rows) > 0, f"{prefs_dir}: the preference set has no training rows")
    train_ds = Dataset.from_dict({k: rows[k] for k in ("prompt", "chosen", "rejected")})
    model_name = cfg["model"]["name"]
    model, tok = _load(cfg, model_name)
    max_length = int(cfg["train"]["max_length"] or card.get("lengths", {}).get("max_length") or 0)
    out = TrainOutput(cfg["output"]["dir"])
    out.prepare({**cfg, "resolved_max_length": max_length, "preference_card": card}, "dpo", model_name,
                card.get("split"))
    args = dpo_args(cfg, str(out.path / "checkpoints"), max_length)
    model, ref_model, peft_config = reference_setup(cfg, model, model_name)
    trainer = DPOTrainer(model=model, ref_model=ref_model, args=args, train_dataset=train_ds,
                         processing_class=tok, peft_config=peft_config, callbacks=[make_log_callback(out)])
    t0 = time.perf_counter()
    trainer.train()
    out.log({"step": trainer.state.global_step, "train_seconds": round(time.perf_counter() - t0, 2)})
    out.record_schedule(trainer)
    save_adapter(trainer, tok, out.path, model_name)
    if cfg["output"]["merge"] and not cfg["dpo"]["full_finetune"] and is_main():  # a full fine-tune is whole
        merged = trainer.model.merge_and_unload()
        merged.save_pretrained(str(out.path / "merged"))
        tok.save_pretrained(str(out.path / "merged"))
    out.cleanup()
    out.plot(keys=list(LOGGED), title=f"DPO {cfg['dpo']['loss_type']} beta={cfg['dpo']['beta']}")
    return out


def completion_logps(model, tok, rows, device="cpu") -> list[tuple[float, float]]:
    """Sum of log-probs of the chosen and of the rejected answer given the prompt, per row."""
    import torch

    def lp(prompt_msgs, answer_msgs):
        prompt = tok.apply_chat_template(prompt_msgs, tokenize=False, add_generation_prompt=True)
        full = tok.apply_chat_template(prompt_msgs + answer_msgs, tokenize=False)
        p_ids = tok(prompt, add_special_tokens=False)["input_ids"]
        f_ids = tok(full, add_special_tokens=False)["input_ids"]
        ids = torch.tensor([f_ids], device=device)
        with torch.no_grad():
            logits = model(ids).logits[0, :-1].float()
        logp = torch.log_softmax(logits, -1).gather(1, ids[0, 1:, None])[:, 0]
        return float(logp[len(p_ids) - 1:].sum())

    return [(lp(r["prompt"], r["chosen"]), lp(r["prompt"], r["rejected"])) for r in rows]


def implicit_reward_accuracy(adapter_dir: str | Path, rows, beta: float) -> dict:
    """DPO implicit reward r = beta * (log pi - log pi_ref) on held-out pairs: accuracy and mean margin."""
    from llmscisci.backends.base import BackendOptions
    from llmscisci.backends.models import load_model_and_tokenizer

    model, tok = load_model_and_tokenizer(str(adapter_dir), BackendOptions(device="cpu"), merge_adapter=False)
    model.eval()
    rows = list(rows)
    if not rows:
        return {"n": 0, "accuracy": None, "mean_margin": None}
    pol = completion_logps(model, tok, rows)
    with model.disable_adapter():
        ref = completion_logps(model, tok, rows)
    margins = [beta * ((pc - rc) - (pr - rr)) for (pc, pr), (rc, rr) in zip(pol, ref)]
    return {"n": len(rows), "accuracy": sum(m > 0 for m in margins) / len(margins),
            "mean_margin": sum(margins) / len(margins), "beta": beta}
