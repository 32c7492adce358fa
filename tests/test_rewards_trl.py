"""TRL's reward-function signature, the registry (names, weights, TOML tables, parameters) and the
`grpo probe` command."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from llmscisci.cli import app
from llmscisci.errors import UserError
from llmscisci.rewards import build_mix, completion_text, parse_mix, truth_of
from llmscisci.rewards.registry import REWARDS, SEED_MIX, RewardContext, reward_table

GOOD = "<think>code is public</think>\n<label>[1, 0, 1, 0, 0]</label>"
HALF = "<think>x</think><label>[1, 1, 0, 0, 0]</label>"
BAD = "I think it is code."
LABELS = [[1, 0, 1, 0, 0]] * 3


def conv(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


# --- the signature -----------------------------------------------------------------------------------
def test_trl_signature_plain_and_conversational():
    mix = build_mix("format:1,label:1,stepwise:1,hamming:1")
    extra = {"trainer_state": object(), "log_extra": lambda *a: None, "log_metric": lambda *a: None,
             "completion_ids": [[1, 2]] * 3, "doi": ["d1", "d2", "d3"], "task": ["easy"] * 3}
    for completions in ([GOOD, HALF, BAD], [conv(GOOD), conv(HALF), conv(BAD)]):
        prompts = [[{"role": "user", "content": "p"}]] * 3
        out = {f.__name__: f(prompts=prompts, completions=completions, labels=LABELS, **extra) for f in mix.funcs}
        assert out["reward_format"] == [1.0, 1.0, 0.0]
        assert out["reward_label"] == [0.5, 0.5, 0.0]
        assert out["reward_stepwise"] == [1.0, 1.0, 0.0]  # no format: 0, as in the seed
        assert out["reward_hamming"] == pytest.approx([1.0, 0.6, 0.0])
        assert all(isinstance(v, float) for vs in out.values() for v in vs)
    # positional prompts/completions work as well
    assert mix.funcs[0]([None], [GOOD]) == [1.0]


def test_completion_shapes_and_truth_cells():
    assert completion_text(GOOD) == GOOD
    assert completion_text(conv(GOOD)) == GOOD
    assert completion_text({"role": "assistant", "content": GOOD}) == GOOD
    assert completion_text([{"role": "assistant", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]) == "ab"
    assert completion_text([{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]) == "a"
    assert completion_text(None) == "" and completion_text(5) == "5"
    assert truth_of([1, 0, True]) == (1, 0, 1)
    assert truth_of("[1, 0, 1, 0, 0]") == (1, 0, 1, 0, 0)
    assert truth_of((0, 1)) == (0, 1)
    assert truth_of([2, 0]) is None and truth_of("x") is None and truth_of(None) is None and truth_of([]) is None
    import numpy as np

    assert truth_of(np.array([1, 0, 0])) == (1, 0, 0)


def test_rewards_needing_labels_say_so_and_skip_empty_cells():
    mix = build_mix("hamming")
    with pytest.raises(ValueError, match="labels"):
        mix.funcs[0](prompts=[None], completions=[GOOD])
    assert mix.funcs[0](prompts=[None, None], completions=[GOOD, GOOD], labels=[None, [1, 0, 1, 0, 0]]) == [None, 1.0]
    with pytest.raises(ValueError, match="2 labels for 1"):
        mix.funcs[0](prompts=[None], completions=[GOOD], labels=LABELS[:2])
    # label/stepwise use the row's vector length when there is one, the context's otherwise
    lab = build_mix("label", RewardContext(n_labels=3)).funcs[0]
    assert lab(completions=["<think>x</think><label>[1, 0, 1]</label>"]) == [0.5]
    assert lab(completions=["<think>x</think><label>[1, 0, 1]</label>"], labels=[[1, 0, 1, 0, 0]]) == [0.0]


def test_trl_calls_our_rewards_the_way_grpotrainer_does():
    """Run TRL's own reward step (GRPOTrainer._calculate_rewards) on our functions."""
    import torch
    from trl import GRPOTrainer

    mix = build_mix("format:1,label:1,stepwise:1,hamming:1")
    fake = SimpleNamespace(
        reward_funcs=mix.funcs, reward_processing_classes=[None] * len(mix.funcs),
        reward_func_names=[f.__name__ for f in mix.funcs], environments=None,
        accelerator=SimpleNamespace(device=torch.device("cpu"), is_main_process=True),
        state=SimpleNamespace(global_step=0), args=SimpleNamespace(report_to=[]),
        _log_completion_extra=lambda *a, **k: None, _log_metric=lambda *a, **k: None,
    )
    inputs = [{"prompt": [{"role": "user", "content": "p"}], "labels": [1, 0, 1, 0, 0], "doi": "d", "task": "easy"}] * 3
    prompts = [x["prompt"] for x in inputs]
    completions = [conv(GOOD), conv(HALF), conv(BAD)]
    rewards = GRPOTrainer._calculate_rewards(fake, inputs, prompts, completions, [[0]] * 3)
    expected = torch.tensor([[1.0, 0.5, 1.0, 1.0], [1.0, 0.5, 1.0, 0.6], [0.0, 0.0, 0.0, 0.0]])
    assert torch.allclose(rewards, expected)


# --- the registry ------------------------------------------------------------------------------------
def test_parse_mix_strings_and_tables():
    assert parse_mix(SEED_MIX) == [("format", 1.0, {}), ("label", 1.0, {}), ("stepwise", 1.0, {})]
    assert parse_mix(" format , hamming:0.5 ") == [("format", 1.0, {}), ("hamming", 0.5, {})]
    table = {"rewards": {"format": 1, "cot_length_norm": {"weight": 0.2, "target": 64}}}
    assert parse_mix(table) == [("format", 1.0, {}), ("cot_length_norm", 0.2, {"target": 64})]
    for bad, msg in [("nope:1", "unknown reward 'nope'"), ("format:x", "weight must be a number"),
                     ("format,format", "listed twice"), ("", "no rewards"), (",", "no rewards"),
                     ({"format": True}, "weight must be a number"), ({}, "no rewards"),
                     ("format:inf", "finite")]:
        with pytest.raises(UserError, match=msg):
            parse_mix(bad)


def test_params_are_checked_and_change_bounds():
    mix = build_mix({"conditional": {"alpha": 0.5, "mode": "capped", "cap": 100}})
    assert mix.terms[0].bounds == (0.0, 51.0)
    assert build_mix("conditional").terms[0].bounds == (0.0, math.inf)  # the seed's: unbounded
    assert build_mix("conditional_norm").terms[0].bounds == (0.0, 1.25)
    assert build_mix({"cot_length": {"mode": "norm"}}).terms[0].bounds == (0.0, 1.0)
    for bad, msg in [({"format": {"alpha": 1}}, "unknown parameter"), ({"cot_length": {"mode": "log"}}, "mode must be"),
                     ({"cot_length": {"cap": 0}}, "cap must be"), ({"conditional": {"alpha": -1}}, "alpha must be"),
                     ({"conditional": {"tau": "x"}}, "tau must be")]:
        with pytest.raises(UserError, match=msg):
            build_mix(bad)
    with pytest.raises(UserError, match="prevalences"):
        build_mix("balanced")


def test_mix_total_weights_components_like_trl():
    mix = build_mix("format:2,hamming:0.5")
    s = mix.score([GOOD, HALF], labels=LABELS[:2])
    assert s["total"] == pytest.approx([2 + 0.5, 2 + 0.3])
    assert mix.weights == [2.0, 0.5] and mix.names == ["format", "hamming"]
    assert mix.bounds() == (0.0, 2.5)
    neg = build_mix("format:-1,group_f1:1")
    assert neg.bounds() == (-2.0, 1.0)
    d = build_mix("cot_length").describe()
    assert d["terms"][0]["bounds"] == [0.0, "inf"] and d["total_bounds"] == [0.0, "inf"]
    json.dumps(d)  # serialisable for a run's config


def test_balanced_uses_prevalence_per_task():
    ctx = RewardContext(prevalence={"easy": (0.9, 0.1), "difficult": (0.1, 0.9)})
    f = build_mix("balanced", ctx).funcs[0]
    c = "<think>x</think><label>[0, 0]</label>"
    easy, diff = f(completions=[c, c], labels=[[0, 1], [0, 1]], task=["easy", "difficult"])
    assert easy == pytest.approx(0.5) and diff == pytest.approx((1 / 0.9) / (1 / 0.9 + 1 / 0.9))
    with pytest.raises(ValueError, match="no prevalence for task 'other'"):
        f(completions=[c], labels=[[0, 1]], task=["other"])


def test_reward_table_documents_every_reward():
    rows = reward_table()
    assert [r["name"] for r in rows] == list(REWARDS)
    assert all(r["description"] and len(r["bounds"]) == 2 for r in rows)


# --- the probe command -------------------------------------------------------------------------------
def run(args, **kw):
    return CliRunner().invoke(app, args, env={"COLUMNS": "250", **kw.pop("env", {})}, **kw)


def test_probe_prints_each_reward_on_the_probes():
    res = run(["grpo", "probe"])
    assert res.exit_code == 0, res.output
    for name in ("perfect", "bare_list", "label_before_think", "huge_think", "non_ascii", "format", "stepwise", "total"):
        assert name in res.output
    cells = {}
    for ln in res.output.splitlines():
        parts = [c.strip() for c in ln.split("│")]
        if len(parts) == 7:  # │ probe │ format │ label │ stepwise │ total │
            cells[parts[1]] = parts[2:6]
    # the seed's mix pays nothing for the right list without the format, and a wrong answer in full
    for name in ("bare_list", "no_think", "unclosed_label"):
        assert cells[name] == ["0", "0", "0", "0"], name
    assert cells["perfect"] == cells["wrong_valid"] == ["1", "0.5", "1", "2.5"]
    assert cells["empty"] == ["0", "0", "0", "0"]


def test_probe_json_values(tmp_path):
    res = run(["grpo", "probe", "--rewards", "format:1,hamming:2", "--json", "--truth", "[0, 1, 0, 0, 0]",
               "--completion", "<think>a</think><label>[0, 1, 0, 0, 0]</label>"])
    assert res.exit_code == 0, res.output
    rows = [json.loads(ln) for ln in res.output.splitlines() if ln.startswith("{")]
    by = {r["probe"]: r for r in rows}
    assert by["perfect"]["total"] == 3.0
    assert by["wrong_valid"]["hamming"] == pytest.approx(0.6)  # truth [0,1,0,0,0] vs [0,0,0,0,1]
    assert by["user_1"]["total"] == 3.0
    assert by["empty"]["total"] == 0.0


def test_probe_config_table_and_prevalence(tmp_path, data_dir):
    cfg = tmp_path / "grpo.toml"
    cfg.write_text('[rewards]\nformat = 1\nbalanced = 1\ncot_length_norm = { weight = 0.5, target = 10 }\n', "utf-8")
    res = run(["grpo", "probe", "--config", str(cfg), "--task", "difficult", "--json", "--data-dir", str(data_dir)])
    assert res.exit_code == 0, res.output
    by = {r["probe"]: r for r in (json.loads(ln) for ln in res.output.splitlines() if ln.startswith("{"))}
    assert by["perfect"]["balanced"] == 1.0
    assert by["huge_think"]["cot_length_norm"] == 1.0
    assert 0 < by["all_zeros"]["balanced"] < 1


@pytest.mark.parametrize("args,msg", [
    (["--rewards", "nope"], "unknown reward 'nope'"),
    (["--truth", "[1, 0]"], "--truth must be a JSON list of 5"),
    (["--truth", "oops"], "--truth must be"),
    (["--config", "/nonexistent.toml"], "not found"),
    (["--task", "nosuch"], "unknown task"),
    (["--huge-words", "-1"], "--huge-words"),
])
def test_probe_bad_input_is_a_user_error(args, msg):
    res = run(["grpo", "probe", *args])
    assert isinstance(res.exception, UserError) and msg in str(res.exception)


def test_probe_bad_input_is_one_line_from_the_entry_point():
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", "from llmscisci.cli import main; main()", "grpo", "probe",
                           "--rewards", "nope"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error:") and "unknown reward 'nope'" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_probe_config_without_rewards_table(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[model]\nname = 'x'\n", "utf-8")
    res = run(["grpo", "probe", "--config", str(cfg)])
    assert res.exit_code != 0 and isinstance(res.exception, UserError) and "[rewards]" in str(res.exception)
