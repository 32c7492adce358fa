"""Training configurations: TOML + overrides, and that they reach TRL's arguments (no GPU needed)."""

from __future__ import annotations

import pytest

from llmscisci.errors import UserError
from llmscisci.train.config import load_config


def test_overrides_and_unknown_keys(tmp_path):
    from llmscisci.train.dpo import DEFAULTS

    f = tmp_path / "c.toml"
    f.write_text('[dpo]\nloss_type = "robust"\nbeta = 0.3\nlabel_smoothing = 0.05\n', encoding="utf-8")
    cfg = load_config(f, DEFAULTS, ["train.learning_rate=1e-4", "lora.target_modules=all-linear"])
    assert cfg["dpo"]["loss_type"] == "robust" and cfg["train"]["learning_rate"] == 1e-4
    assert DEFAULTS["dpo"]["loss_type"] == "sigmoid"  # defaults untouched
    with pytest.raises(UserError, match="unknown setting 'dpo.betta'"):
        load_config(None, DEFAULTS, ["dpo.betta=1"])
    f.write_text("[dpo\n", encoding="utf-8")
    with pytest.raises(UserError, match="invalid TOML"):
        load_config(f, DEFAULTS)
    with pytest.raises(UserError, match="file not found"):
        load_config(tmp_path / "none.toml", DEFAULTS)


@pytest.mark.parametrize("name", ["sigmoid", "hinge", "robust", "wpo"])
def test_seed_configs_reach_dpo_arguments(name):
    from pathlib import Path

    from llmscisci.train.dpo import DEFAULTS, dpo_args

    cfg = load_config(Path(__file__).parents[1] / "configs" / f"seed_dpo_{name}.toml", DEFAULTS)
    args = dpo_args(cfg, "/tmp/x", 300)
    expected = {"sigmoid": ("sigmoid", 0.3, 0.0, False), "hinge": ("hinge", 0.05, 0.0, False),
                "robust": ("robust", 0.3, 0.05, False), "wpo": ("sigmoid", 0.1, 0.0, True)}[name]
    assert (args.loss_type[0], args.beta, args.label_smoothing, args.use_weighting) == expected
    assert args.gradient_checkpointing is True and args.num_train_epochs == 10.0
    assert args.max_length == 300
    # what the seed left at TRL's DPOConfig defaults of its time, and its logging interval
    assert (args.learning_rate, args.per_device_train_batch_size, args.logging_steps) == (1e-6, 8, 10)
    assert cfg["lora"]["r"] == 256 and cfg["lora"]["alpha"] == 128


def test_bf16_follows_the_device(monkeypatch):
    import torch

    from llmscisci.train.common import device_args

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert device_args("auto") == {"use_cpu": True, "bf16": False}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert device_args("auto") == {"use_cpu": False, "bf16": True}
    assert device_args("cpu") == {"use_cpu": True, "bf16": False}
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert device_args("cuda") == {"use_cpu": False, "bf16": False}


def test_sft_config_turns_gradient_checkpointing_off(tmp_path):
    from pathlib import Path

    from llmscisci.train.sft import DEFAULTS

    cfg = load_config(Path(__file__).parents[1] / "configs" / "sft.toml", DEFAULTS)
    assert cfg["train"]["gradient_checkpointing"] is False
    assert cfg["data"]["variant"] == "guidelines"


def test_lora_config_fields():
    from llmscisci.train.common import lora_config

    lc = lora_config({"r": 4, "alpha": 4, "dropout": 0.05, "target_modules": "all-linear"})
    assert (lc.r, lc.lora_alpha, lc.lora_dropout, lc.target_modules) == (4, 4, 0.05, "all-linear")


def test_curves_plot_metrics_not_bookkeeping(tmp_path):
    from llmscisci.train.layout import plot_curves

    bookkeeping = [{"step": i, "num_tokens": 100.0 * i, "epoch": i / 10} for i in range(1, 40)]
    assert plot_curves(bookkeeping + [{"step": 40, "train_seconds": 12.0}], tmp_path / "a.png") is None
    log = [{"step": i, "loss": 1.0 / i, "num_tokens": 100.0 * i} for i in range(1, 40)]  # long: smoothed
    assert plot_curves(log, tmp_path / "b.png") == tmp_path / "b.png" and (tmp_path / "b.png").stat().st_size > 0


def test_every_user_toml_reader_gives_one_line_errors(tmp_path):
    """Configs, grids and price tables are read by one function: the same three errors, naming the file."""
    from llmscisci.backends.pricing import load_table
    from llmscisci.tasks.grid import load_grid

    bad = tmp_path / "bad.toml"
    bad.write_text("a = [unclosed\n")
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00")
    readers = {"config": lambda p: load_config(p, {}), "grid file": load_grid, "price table": load_table}
    for what, read in readers.items():
        for path, message in ((tmp_path / "missing.toml", "file not found"), (bad, "invalid TOML"),
                              (binary, "cannot read")):
            with pytest.raises(UserError, match=message) as exc:
                read(path)
            assert str(exc.value).startswith(f"{what} {path}") and "\n" not in str(exc.value)
