"""Chain-of-thought data for GRPO: rows, traces (annotators offline, a teacher backend), split, lengths,
saving, and the `grpo build` command."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from llmscisci.backends.base import Backend, Generation
from llmscisci.cli import app
from llmscisci.data import load_codebook, load_items
from llmscisci.errors import UserError
from llmscisci.rewards import build_mix
from llmscisci.train import cot


class WordTokenizer:
    """A stand-in tokenizer with a chat template: one token per whitespace-separated word."""

    chat_template = "words"

    def apply_chat_template(self, msgs, tokenize=False, add_generation_prompt=False):
        text = " ".join(f"<{m['role']}> {m['content']}" for m in msgs)
        return text + (" <assistant>" if add_generation_prompt else "")

    def encode(self, text, add_special_tokens=False):
        return text.split()


class FakeTeacher(Backend):
    """Answers with a reasoning that names the given categories (wrapped in tags it should not use)."""

    name = "fake-teacher"

    def __init__(self):
        self.seen: list[list[dict]] = []

    def generate(self, conversations, params=None, schema=None, on_result=None):
        out = []
        for i, conv in enumerate(conversations):
            self.seen.append(conv)
            user = conv[-1]["content"]
            answer = user.rsplit("Correct answer:", 1)[1].strip()
            g = Generation(text=f"<think>The passage points to {answer}.</think> <label>[9]</label>")
            out.append(g)
            if on_result:
                on_result(i, g)
        return out

    def count_tokens(self, messages):
        return sum(len(m["content"].split()) for m in messages)


@pytest.fixture(scope="module")
def built(data_dir):
    return cot.build_cot(["easy", "difficult"], data_dir, progress=False)


def test_rows_prompt_completion_and_columns(built, data_dir):
    rows, card = built
    assert len(rows) == 140 and card["per_task"]["easy"]["rows"] == 70
    r = rows[0]
    assert set(r) == {"prompt", "completion", "doi", "task", "labels", "label_names", "trace_source", "split"}
    system, user = r["prompt"]
    assert system["role"] == "system" and "<think>" in system["content"] and "<label>" in system["content"]
    items = {(it.doi, it.task): it for t in ("easy", "difficult") for it in load_items(load_codebook(t), data_dir=data_dir)}
    it = items[(r["doi"], r["task"])]
    assert f"<text>\n{it.text.strip()}\n</text>" in user["content"]
    assert "[code, artifacts, readability, setup, none]" in user["content"]
    assert r["completion"][0]["role"] == "assistant"
    assert r["labels"] == list(it.labels) and r["trace_source"].startswith("annotator:annotator_")
    assert card["source"] == "annotators" and card["split"]["grouped_by"] == "doi"


def test_completions_earn_full_rewards_against_their_own_labels(built):
    rows, _ = built
    mix = build_mix("format,label,label_strict,stepwise,hamming,hamming_strict")
    s = mix.score([r["completion"] for r in rows], labels=[r["labels"] for r in rows])
    assert set(s["format"]) == {1.0} and set(s["label"]) == {0.5} and set(s["label_strict"]) == {0.5}
    assert set(s["stepwise"]) == {1.0} and set(s["hamming"]) == {1.0} and set(s["hamming_strict"]) == {1.0}


def test_split_is_the_canonical_doi_grouped_one(built, data_dir):
    rows, _ = built
    by_doi: dict[str, set] = {}
    for r in rows:
        by_doi.setdefault(r["doi"], set()).add(r["split"])
    assert all(len(s) == 1 for s in by_doi.values())  # a report's two items never straddle
    items = load_items(load_codebook("easy"), data_dir=data_dir)
    assert {it.doi: it.split for it in items} == {d: next(iter(s)) for d, s in by_doi.items()}
    n_test = sum(1 for s in by_doi.values() if "test" in s)
    assert n_test == 14  # 20% of 70 reports


def test_annotator_trace_is_the_agreeing_annotators_response(built, data_dir):
    rows, _ = built
    r = next(r for r in rows if r["doi"] == "10.5281/zenodo.4833219" and r["task"] == "easy")
    first = json.loads((data_dir / "labels" / "annotator_a.jsonl").read_text("utf-8").splitlines()[0])
    assert first["labels"] == r["labels"]
    assert r["completion"][0]["content"] == f"<think>\n{first['response']}\n</think>\n<label>\n[1, 0, 1, 0, 0]\n</label>"


def test_all_agreeing_annotators_give_one_row_each(data_dir):
    rows, card = cot.build_cot(["easy"], data_dir, per_item="all", progress=False)
    assert 70 < len(rows) <= 210
    per = {}
    for r in rows:
        per.setdefault(r["doi"], set()).add(r["trace_source"])
    assert all(len(v) >= 1 for v in per.values()) and max(len(v) for v in per.values()) == 3


def test_teacher_traces_with_fallback(data_dir):
    items = load_items(load_codebook("easy"), data_dir=data_dir)
    fail = items[3].doi
    teacher = FakeTeacher()
    cb = load_codebook("easy")
    # the teacher sees the text and the ground-truth category names
    msgs = cot.teacher_messages(items[0].text, items[0].labels, cb)
    assert "Availability of code; Readability of full text" in msgs[-1]["content"]
    assert items[0].text.strip()[:40] in msgs[-1]["content"]

    class Failing(FakeTeacher):
        def generate(self, conversations, params=None, schema=None, on_result=None):
            gens = super().generate(conversations, params, schema, on_result)
            return [Generation(error="boom") if items_by_idx[i] == fail else g for i, g in enumerate(gens)]

    items_by_idx = [it.doi for it in items if it.labels is not None]
    rows, card = cot.build_cot(["easy"], data_dir, teacher=Failing(), progress=False)
    assert len(rows) == 70
    info = card["per_task"]["easy"]
    assert info["teacher"] == 69 and info["teacher_fallback"] == 1
    assert card["source"] == "teacher:fake-teacher"
    r = next(r for r in rows if r["doi"] == items[0].doi)
    assert r["trace_source"] == "teacher:fake-teacher"
    text = r["completion"][0]["content"]
    # the teacher's own tags are stripped so the completion has exactly one think and one label block
    assert text.count("<think>") == 1 and text.count("<label>") == 1 and "[9]" in text
    assert text.endswith("<label>\n[1, 0, 1, 0, 0]\n</label>")
    assert next(r for r in rows if r["doi"] == fail)["trace_source"].startswith("annotator:")
    assert len(teacher.seen) == 0  # the unused instance was never called


def test_teacher_only_without_annotator_files(data_dir, tmp_path):
    # no annotator files: only the teacher
    rows, card = cot.build_cot(["easy"], data_dir, teacher=FakeTeacher(), annotator_files=[], progress=False)
    assert len(rows) == 70 and card["annotator_files"] == []
    assert {r["trace_source"] for r in rows} == {"teacher:fake-teacher"}
    with pytest.raises(UserError, match="no annotator files"):
        cot.build_cot(["easy"], data_dir, annotator_files=[], progress=False)
    with pytest.raises(UserError, match="not found"):
        cot.build_cot(["easy"], data_dir, annotator_files=[tmp_path / "nope.jsonl"], progress=False)


def test_standard_format_rows(data_dir):
    rows, _ = cot.build_cot(["difficult"], data_dir, fmt="standard", progress=False)
    r = rows[0]
    assert isinstance(r["prompt"], str) and r["prompt"].startswith("Respond in the following format:")
    assert isinstance(r["completion"], str) and r["completion"].startswith("<think>")
    with pytest.raises(UserError, match="unknown format"):
        cot.build_cot(["difficult"], data_dir, fmt="chat", progress=False)


def test_length_report_p95_and_drop(built):
    rows, card = built
    assert card["lengths"]["method"] == "whitespace" and "_lengths" not in card["lengths"]
    rep = cot.length_report(rows, WordTokenizer(), 0.95)
    assert rep["chat_template"] is True and rep["method"] == "WordTokenizer"
    # the chat template adds role markers: every prompt is longer than its words alone
    plain = cot.length_report(rows, None, 0.95)
    assert rep["prompt"]["p50"] > plain["prompt"]["p50"]
    assert rep["max_prompt_length"] >= rep["prompt"]["p50"]
    import math

    import numpy as np

    lens = rep["_lengths"]["prompt"]
    assert rep["max_prompt_length"] == math.ceil(np.quantile(lens, 0.95))
    kept = cot.drop_long(rows, rep)
    assert len(rows) * 0.85 <= len(kept) < len(rows)
    with pytest.raises(UserError):
        cot.length_report(rows, None, 1.5)


def test_save_and_load(built, tmp_path):
    rows, card = built
    out = tmp_path / "cot"
    saved = cot.save_cot(rows, out, card)
    assert saved["rows"] == {"train": 112, "test": 28}
    assert {p.name for p in out.iterdir()} == {"dataset", "train.parquet", "test.parquet", "card.json", "README.md"}
    dd = cot.load_cot(out)
    assert dd["train"].num_rows == 112 and "split" not in dd["train"].column_names
    assert all(isinstance(x, int) for x in dd["test"][0]["labels"]) and len(dd["test"][0]["labels"]) == 5
    assert "p95" in (out / "README.md").read_text("utf-8")
    import pandas as pd

    assert len(pd.read_parquet(out / "test.parquet")) == 28
    with pytest.raises(UserError, match="already holds files"):
        cot.save_cot(rows, out, card)
    cot.save_cot(rows[:10], out, card, force=True)
    assert sum(json.loads((out / "card.json").read_text("utf-8"))["rows"].values()) == 10
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left
    with pytest.raises(UserError, match="not a chain-of-thought"):
        cot.load_cot(tmp_path)


def test_trace_cleaning():
    assert cot.clean_trace(" <think>a</think> <LABEL>[1]</label> <text>b</ text> ") == "a [1] b"
    assert cot.completion_text("x", [0, 1]) == "<think>\nx\n</think>\n<label>\n[0, 1]\n</label>"


# --- the command -------------------------------------------------------------------------------------
def run(args):
    return CliRunner().invoke(app, args, env={"COLUMNS": "200"})


def test_build_command(tmp_path, data_dir):
    out = tmp_path / "cot"
    res = run(["grpo", "build", "--data-dir", str(data_dir), "--tokenizer", "whitespace", "--out", str(out),
               "--task", "easy"])
    assert res.exit_code == 0, res.output
    assert "70 rows (56 train, 14 test) from annotators" in res.output
    card = json.loads((out / "card.json").read_text("utf-8"))
    assert card["tokenizer"] == "whitespace" and card["columns"] == [
        "prompt", "completion", "doi", "task", "labels", "label_names", "trace_source"]


def test_build_command_with_a_teacher(tmp_path, data_dir, monkeypatch):
    import llmscisci.backends.registry as registry

    monkeypatch.setattr(registry, "load_backend", lambda name, opts=None: FakeTeacher())
    out = tmp_path / "cot"
    res = run(["grpo", "build", "--data-dir", str(data_dir), "--tokenizer", "whitespace", "--out", str(out),
               "--task", "difficult", "--source", "openai:gpt-4o-mini", "--format", "standard"])
    assert res.exit_code == 0, res.output
    card = json.loads((out / "card.json").read_text("utf-8"))
    assert card["source"] == "teacher:fake-teacher" and card["per_task"]["difficult"]["teacher"] == 70


@pytest.mark.parametrize("args,msg", [
    (["--format", "chat"], "unknown --format"),
    (["--per-item", "some"], "unknown --per-item"),
    (["--quantile", "0"], "--quantile"),
    (["--task", "nosuch"], "unknown task"),
    (["--task", ","], "names no task"),
])
def test_build_bad_input_writes_nothing(tmp_path, data_dir, args, msg):
    out = tmp_path / "cot"
    res = run(["grpo", "build", "--data-dir", str(data_dir), "--tokenizer", "whitespace", "--out", str(out), *args])
    assert isinstance(res.exception, UserError) and msg in str(res.exception)
    assert not out.exists()


def test_build_refuses_a_full_folder(tmp_path, data_dir):
    out = tmp_path / "cot"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    res = run(["grpo", "build", "--data-dir", str(data_dir), "--tokenizer", "whitespace", "--out", str(out)])
    assert isinstance(res.exception, UserError) and "--force" in str(res.exception)
    assert (out / "keep.txt").read_text() == "x"


@pytest.mark.slow
def test_lengths_under_the_embedded_policy_tokenizer(built):
    from llmscisci.rewards.tokens import load_tokenizer

    rows, _ = built
    tok = load_tokenizer("smollm2-135m")
    rep = cot.length_report(rows, tok, 0.95)
    assert rep["chat_template"] is True and rep["method"] == type(tok).__name__
    # subword tokens outnumber whitespace words
    assert rep["prompt"]["p95"] > cot.length_report(rows, None, 0.95)["prompt"]["p95"]
    assert 0 < rep["max_completion_length"] < 200
