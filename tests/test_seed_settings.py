"""The seed's training settings as it ran them: GRPO pinned to the TRL defaults of its time, the
rewards' ground truth from a label file, one smoothed prevalence, and a DPO reference loaded with
the policy's settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmscisci.train.config import load_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
FIXTURE_DATA = Path(__file__).resolve().parent / "fixtures" / "data"  # sources and seed formats


def test_seed_grpo_config_pins_the_trl_defaults_of_its_time():
    from llmscisci.train.grpo import DEFAULTS, grpo_args

    cfg = load_config(CONFIGS / "seed_grpo.toml", DEFAULTS)
    args = grpo_args(cfg, "/tmp/x", [1.0, 1.0, 1.0])
    assert (args.beta, args.loss_type, str(args.scale_rewards)) == (0.04, "grpo", "group")
    assert (args.per_device_train_batch_size, args.num_generations) == (8, 4)
    assert (args.temperature, args.max_completion_length) == (0.9, 256)
    assert (args.learning_rate, args.max_grad_norm, args.num_train_epochs) == (5e-6, 20.0, 1.0)
    assert cfg["grpo"]["trl_defaults_of"] == "0.15"
    assert cfg["rewards"]["mix"] == "format:1,label:1,stepwise:1"
    assert (cfg["lora"]["r"], cfg["lora"]["alpha"], cfg["lora"]["dropout"]) == (4, 4, 0.05)
    # what TRL defaults to today differs: the pins are needed
    from trl import GRPOConfig

    today = {k: GRPOConfig.__dataclass_fields__[k].default for k in ("beta", "loss_type")}
    assert (today["beta"], today["loss_type"]) != (args.beta, args.loss_type)


def test_truth_labels_replace_the_reference(data_dir):
    from llmscisci.train.grpo import truth_from_labels

    gpt4 = FIXTURE_DATA / "seed_formats" / "gpt4_effortly_labels_beta.sample.csv"
    rows = [{"doi": "10.5281/zenodo.9000001", "task": "easy", "labels": [0, 0, 0, 0, 1], "prompt": "p"},
            {"doi": "10.5281/zenodo.9000002", "task": "difficult", "labels": [0, 0, 0, 0, 1], "prompt": "q"},
            {"doi": "10.5281/zenodo.0000000", "task": "easy", "labels": [1, 0, 0, 0, 0], "prompt": "r"}]
    from llmscisci.data.labelfiles import load_labels

    theirs = load_labels(gpt4).records  # y_easy_gpt4 / y_diff_gpt4, mapped to the codebooks' order
    train, test = truth_from_labels(rows[:2], rows[2:], gpt4)
    assert [r["labels"] for r in train] == [list(theirs[(r["doi"], r["task"])].labels) for r in rows[:2]]
    assert [r["labels"] for r in train] != [r["labels"] for r in rows[:2]]
    assert train[0]["prompt"] == "p" and train[0]["truth_source"] == str(gpt4)
    assert test == []  # no GPT-4 label for that DOI: dropped
    from llmscisci.errors import UserError

    with pytest.raises(UserError, match="no labels for any training row"):
        truth_from_labels(rows[2:], [], gpt4)


def test_grpo_train_checks_the_truth_file_before_loading_anything(tmp_path, capsys, monkeypatch):
    from console import run_console

    import llmscisci.train.grpo as G

    monkeypatch.setattr(G, "train_grpo", lambda cfg: pytest.fail("training started"))
    code, _, err = run_console(["grpo", "train", "--truth-labels", tmp_path / "none.csv"], capsys, monkeypatch)
    assert code == 2 and "--truth-labels" in err and "file not found" in err
    seen = {}

    def record(cfg):
        seen["cfg"] = cfg
        raise SystemExit(0)

    monkeypatch.setattr(G, "train_grpo", record)
    f = tmp_path / "gpt4.csv"
    f.write_text("doi,task,labels\n", encoding="utf-8")
    run_console(["grpo", "train", "--truth-labels", f], capsys, monkeypatch)
    assert seen["cfg"]["data"]["truth_labels"] == str(f)


def test_grpo_prevalence_is_the_smoothed_one():
    from llmscisci.rewards.core import prevalence as smoothed
    from llmscisci.train.grpo import prevalence

    rows = [{"task": "easy", "labels": [1, 0, 0]}, {"task": "easy", "labels": [1, 0, 1]},
            {"task": "difficult", "labels": [0, 1]}]
    got = prevalence(rows)
    assert got["easy"] == pytest.approx(list(smoothed([[1, 0, 0], [1, 0, 1]])))
    assert got["easy"] == pytest.approx([3 / 4, 1 / 4, 2 / 4])  # (count + 1) / (N + 2): never exactly 0 or 1
    assert got["difficult"] == pytest.approx([1 / 3, 2 / 3])


@pytest.mark.parametrize("setting", ["separate_reference", "full_finetune"])
def test_dpo_reference_copy_loads_with_the_policys_settings(monkeypatch, setting):
    import llmscisci.train.dpo as D

    calls = []
    monkeypatch.setattr(D, "load_trainable", lambda *a: calls.append(a) or (object(), object()))
    monkeypatch.setattr("peft.get_peft_model", lambda model, cfg: ("peft", model))
    cfg = load_config(None, D.DEFAULTS, [f"dpo.{setting}=true", "model.trust_remote_code=true",
                                         "model.load_in_4bit=true", "model.dtype=\"bfloat16\""])
    policy, tok = D._load(cfg, "some/model")
    model, ref, peft_config = D.reference_setup(cfg, policy, "some/model")
    assert ref is not None and peft_config is None
    assert calls[0] == calls[1] == ("some/model", "auto", "bfloat16", True, True)
    assert (model == ("peft", policy)) is (setting == "separate_reference")


def test_grpo_rows_take_their_truth_from_the_configured_label_file(data_dir):
    import copy

    from llmscisci.data.labelfiles import load_labels
    from llmscisci.train.grpo import DEFAULTS, cot_rows

    cfg = copy.deepcopy(DEFAULTS)
    cfg["data"]["data_dir"] = str(data_dir)
    cfg["data"]["truth_labels"] = str(data_dir / "labels" / "annotator_b.jsonl")
    train, test = cot_rows(cfg)
    theirs = load_labels(data_dir / "labels" / "annotator_b.jsonl").records
    assert train and all(r["labels"] == list(theirs[(r["doi"], r["task"])].labels) for r in train + test)
    assert {r["split"] for r in train} == {"train"} and {r["split"] for r in test} == {"test"}
