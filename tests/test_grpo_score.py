"""`llmscisci grpo score`: a file of completions scored with a reward mix, row by row, in input order,
with a summary of what the mix pays; the seed's six rewards reproduce the seed's values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from console import run_console as run

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "seed" / "reward_vectors.jsonl"
SEED_SIX = "format,label,stepwise,hamming,cot_length,conditional"
FIELD = {"cot_length": "cot_length_words", "conditional": "conditional_words"}


def rows_of(path: Path) -> list[dict]:
    return [json.loads(ln) for ln in path.read_text("utf-8").split("\n") if ln]


def test_score_reproduces_the_seed_vectors(tmp_path, capsys, monkeypatch):
    dest = tmp_path / "s.jsonl"
    code, out, err = run(["grpo", "score", FIXTURE, "--rewards", SEED_SIX, "--tokenizer", "words", "--out", dest],
                         capsys, monkeypatch)
    assert code == 0, err
    seed, got = rows_of(FIXTURE), rows_of(dest)
    assert [r["id"] for r in got] == [r["id"] for r in seed]  # input order, other fields kept
    assert all(g["cot_length_words"] == s["cot_length_words"] and g["truth"] == s["truth"] for g, s in zip(got, seed))
    for name in SEED_SIX.split(","):
        want = [0.0 if s[FIELD.get(name, name)] is None else s[FIELD.get(name, name)] for s in seed]
        mismatches = [s["id"] for s, g, w in zip(seed, got, want) if g[name] != pytest.approx(w, abs=1e-9)]
        assert mismatches == [], name
    assert all(g["total"] == pytest.approx(sum(g[n] for n in SEED_SIX.split(","))) for g in got)
    # the scores replaced four of the file's own fields, and the summary says so
    assert "replaced input fields: format, label, stepwise, hamming" in out
    lines = {ln.split("│")[1].strip(): [c.strip() for c in ln.split("│")[2:-1]] for ln in out.splitlines()
             if ln.count("│") == 5}
    assert lines["stepwise"][2] == "0"  # paid > 0 without the format: none
    assert "377 without the format" in out


def test_score_json_summary_and_weights(tmp_path, capsys, monkeypatch):
    src = tmp_path / "in.jsonl"
    comps = ["<think>a b</think><label>[1, 0, 1, 0, 0]</label>", "[1, 0, 1, 0, 0]",
             [{"role": "assistant", "content": "<think>x</think><label>[0, 0, 0, 0, 1]</label>"}]]
    src.write_text("".join(json.dumps({"n": i, "completion": c, "truth": [1, 0, 1, 0, 0], "total": "mine"}) + "\n"
                           for i, c in enumerate(comps)), encoding="utf-8")
    dest, summary = tmp_path / "o.jsonl", tmp_path / "summary.json"
    code, out, err = run(["grpo", "score", src, "--rewards", "format:2,hamming:0.5,cot_length", "--out", dest,
                          "--json", "--json-out", summary], capsys, monkeypatch)
    assert code == 0, err
    result = json.loads(out)  # stdout holds the JSON and nothing else
    assert json.loads(summary.read_text("utf-8")) == result
    assert result["rows"] == 3 and result["rows_without_format"] == 1
    assert result["mean"]["hamming"] == pytest.approx((1.0 + 0 + 0.4) / 3)
    assert result["paid_without_format"] == {"format": 0, "hamming": 0, "cot_length": 0, "total": 0}
    assert result["overwritten_fields"] == ["total"]
    got = rows_of(dest)
    assert [r["n"] for r in got] == [0, 1, 2]
    assert [r["total"] for r in got] == pytest.approx([2 + 0.5 + 2, 0, 2 + 0.5 * 0.4 + 1])


def test_score_counts_with_a_models_tokenizer(tmp_path, capsys, monkeypatch, tiny_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    think = "The code was available and easy to run."
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"completion": f"<think>{think}</think><label>[1, 0, 1, 0, 0]</label>",
                               "truth": [1, 0, 1, 0, 0]}) + "\n", encoding="utf-8")
    dest = tmp_path / "o.jsonl"
    code, out, err = run(["grpo", "score", src, "--rewards", "cot_length", "--tokenizer", str(tiny_model_dir),
                          "--out", dest, "--json"], capsys, monkeypatch)
    assert code == 0, err
    assert rows_of(dest)[0]["cot_length"] == len(tok(think)["input_ids"]) != len(think.split())
    assert json.loads(out)["tokens"] == f"tokenizer of {tiny_model_dir}"


@pytest.mark.parametrize("line,message", [
    ('{"truth": [1, 0]}', "row 2: missing field 'completion'"),
    ('{"completion": "x"}', "row 2: missing field 'truth'"),
    ('{"completion": "x", "truth": [1, 2]}', "row 2, column 'truth': 'truth' must be a non-empty list of 0/1"),
    ('{"completion": "x", "truth": "[1, 0]"}', "row 2, column 'truth'"),
    ('{"completion": "x", "truth": [true, false]}', "row 2, column 'truth'"),
    ('{"completion": 3, "truth": [1, 0]}', "row 2, column 'completion'"),
    ('{"completion": "x", "truth": [1, 0]', "row 2: not valid JSON"),
    ('[1, 0]', "row 2: expected a JSON object"),
])
def test_score_bad_input_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch, line, message):
    src = tmp_path / "in.jsonl"
    src.write_text('{"completion": "ok", "truth": [1, 0]}\n' + line + "\n", encoding="utf-8")
    dest = tmp_path / "o.jsonl"
    code, out, err = run(["grpo", "score", src, "--out", dest], capsys, monkeypatch)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert str(src) in err and message in err
    assert not dest.exists()  # nothing written


def test_score_refuses_to_overwrite_its_input_and_unknown_rewards(tmp_path, capsys, monkeypatch):
    src = tmp_path / "in.jsonl"
    src.write_text('{"completion": "ok", "truth": [1, 0]}\n', encoding="utf-8")
    before = src.read_bytes()
    code, _, err = run(["grpo", "score", src, "--out", src], capsys, monkeypatch)
    assert code == 2 and "is the input file" in err and src.read_bytes() == before
    code, _, err = run(["grpo", "score", src, "--rewards", "nope", "--out", tmp_path / "o.jsonl"], capsys, monkeypatch)
    assert code == 2 and "unknown reward 'nope'" in err
    code, _, err = run(["grpo", "score", tmp_path / "missing.jsonl", "--out", tmp_path / "o.jsonl"], capsys, monkeypatch)
    assert code == 2 and "no such file" in err


@pytest.fixture()
def own_reward(monkeypatch):
    """A reward defined outside the package, registered with the decorator (the registry restored after)."""
    from llmscisci.rewards import registry

    monkeypatch.setattr(registry, "REWARDS", dict(registry.REWARDS))

    @registry.reward("first_label", "1 if the reference's first label is predicted, else 0", needs_labels=True,
                     defaults={"pay": 1.0}, bounds=lambda p: (0.0, p["pay"]))
    def first_label(completion: str, row: registry.RewardRow) -> float:
        vec = registry.core.parse_onehot(registry.core.label_text(completion), row.n_labels)
        return row.params["pay"] if vec is not None and vec[0] == row.truth[0] == 1 else 0.0

    return first_label


def test_a_reward_registered_by_the_decorator_is_used_by_name(tmp_path, capsys, monkeypatch, own_reward):
    from llmscisci.rewards.registry import REWARDS, build_mix, reward_table

    assert own_reward.__name__ == "first_label"  # the decorator hands the function back
    assert REWARDS["first_label"].needs_labels and reward_table()[-1]["name"] == "first_label"
    mix = build_mix({"rewards": {"first_label": {"weight": 2.0, "pay": 0.5}}})
    assert mix.bounds() == (0.0, 1.0)
    assert mix.score(["<label>[1, 0]</label>", "<label>[0, 1]</label>", "x"],
                     labels=[[1, 0], [1, 0], None])["first_label"] == [0.5, 0.0, None]
    src, dest = tmp_path / "in.jsonl", tmp_path / "o.jsonl"
    src.write_text('{"completion": "<think>a</think><label>[1, 0]</label>", "truth": [1, 0]}\n'
                   '{"completion": "<think>a</think><label>[0, 1]</label>", "truth": [1, 0]}\n', encoding="utf-8")
    code, _, err = run(["grpo", "score", src, "--rewards", "format:1,first_label:3", "--out", dest], capsys,
                         monkeypatch)
    assert code == 0, err
    assert [(r["first_label"], r["total"]) for r in rows_of(dest)] == [(1.0, 4.0), (0.0, 1.0)]
