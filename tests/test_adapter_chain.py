"""A policy trained on top of a merged warm start (GRPO after SFT) loads as base + both adapters."""

from __future__ import annotations

import json

import torch


def test_adapter_on_adapter_loads_merged(tiny_model_dir, tmp_path):
    from peft import LoraConfig, get_peft_model

    from llmscisci.backends.models import load_model_and_tokenizer, resolve_local_model

    base, _ = load_model_and_tokenizer(str(tiny_model_dir))
    a = get_peft_model(base, LoraConfig(r=2, target_modules="all-linear", init_lora_weights=False))
    a.save_pretrained(tmp_path / "warm")
    warm, _ = load_model_and_tokenizer(str(tmp_path / "warm"))  # merged
    b = get_peft_model(warm, LoraConfig(r=2, target_modules="all-linear", init_lora_weights=False))
    b.save_pretrained(tmp_path / "policy")
    cfg_p = tmp_path / "policy" / "adapter_config.json"
    cfg = json.loads(cfg_p.read_text())
    cfg["base_model_name_or_path"] = str(tmp_path / "warm")
    cfg_p.write_text(json.dumps(cfg))

    r = resolve_local_model(str(tmp_path / "policy"))
    assert r.inner_adapters == (str((tmp_path / "warm").resolve()),) and r.path_or_id == str(tiny_model_dir.resolve())
    loaded, _ = load_model_and_tokenizer(str(tmp_path / "policy"))
    x = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        assert torch.allclose(loaded(x).logits, b.merge_and_unload()(x).logits, atol=1e-4)
