"""Preference sets for DPO: the three pair strategies, ties, margins, length filtering, split grouping."""

from __future__ import annotations

import json

import pytest

from llmscisci.data import load_codebook, load_items, load_labels
from llmscisci.train import preferences as P


class WordTokenizer:
    """A stand-in tokenizer: one token per whitespace-separated word."""

    def apply_chat_template(self, msgs, tokenize=False, add_generation_prompt=False):
        text = " ".join(f"<{m['role']}> {m['content']}" for m in msgs)
        return text + (" <assistant>" if add_generation_prompt else "")

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": text.split()}


@pytest.fixture
def setup(tmp_path, data_dir):
    cb = load_codebook("easy")
    items = load_items(cb, data_dir=data_dir)[:6]
    ref = {it.doi: list(it.labels) for it in items}

    def write(name, vectors):
        p = tmp_path / f"{name}.jsonl"
        p.write_text("".join(json.dumps({"doi": d, "task": "easy", "labels": v, "response": f"{name} says {v}"}) + "\n"
                             for d, v in vectors.items()), encoding="utf-8")
        return load_labels(p, name=name)

    good = write("good", ref)  # always right
    flip = {d: [1 - v[0]] + v[1:] for d, v in ref.items()}  # one label wrong
    worse = write("worse", {d: [1 - x for x in v[:4]] + [0] for d, v in ref.items()})  # four wrong
    half = write("half", {d: (flip[d] if i % 2 else ref[d]) for i, d in enumerate(ref)})  # ties with good on even items
    return cb, items, good, worse, half


def test_by_source_drops_identical_answers(setup):
    cb, items, good, worse, half = setup
    rows = P.by_source(items, cb, "guidelines", good, half)
    assert len(rows) == 3  # half agrees with good on 3 of 6 items: those ties are dropped
    assert all(r["chosen_source"] == "good" and r["rejected_source"] == "half" for r in rows)
    assert len(P.by_source(items, cb, "guidelines", good, half, keep_ties=True)) == 6
    r = rows[0]
    assert r["prompt"][0]["role"] == "system" and r["prompt"][-1]["role"] == "user"
    assert {"doi", "task", "split"} <= set(r)
    # the seed's way: the two files' raw responses are the chosen and rejected texts
    assert r["chosen"][0]["role"] == "assistant" and r["chosen"][0]["content"].startswith("good says")
    assert r["rejected"][0]["content"].startswith("half says")
    rendered = P.by_source(items, cb, "guidelines", good, half, use_response=False)
    assert rendered[0]["chosen"][0]["content"].startswith("[")  # label vectors rendered anew


def test_dpo_build_by_source_cli(setup, tmp_path, data_dir, tiny_model_dir, capsys, monkeypatch):
    from console import run_console

    cb, items, good, worse, half = setup
    files = ["--labels", good.path, "--labels", half.path]
    common = ["dpo", "build", "--strategy", "by-source", "--task", "easy", "--model", tiny_model_dir,
              "--data-dir", data_dir, *files]
    code, out, err = run_console([*common, "--out", tmp_path / "raw"], capsys, monkeypatch)
    assert code == 0, err
    card = json.loads((tmp_path / "raw" / "card.json").read_text("utf-8"))
    assert card["use_response"] is True and card["keep_ties"] is False
    assert card["lengths"]["rows_before"] == 3  # ties dropped
    dd = P.load_preferences(tmp_path / "raw")
    texts = [r["chosen"][0]["content"] for split in dd for r in dd[split]]
    assert texts and all(t.startswith("good says") for t in texts)
    code, _, err = run_console([*common, "--keep-ties", "--render", "--out", tmp_path / "ties"], capsys, monkeypatch)
    assert code == 0, err
    card = json.loads((tmp_path / "ties" / "card.json").read_text("utf-8"))
    assert card["lengths"]["rows_before"] == 6 and card["keep_ties"] is True and card["use_response"] is False
    dd = P.load_preferences(tmp_path / "ties")
    rows = [r for split in dd for r in dd[split]]
    assert rows and all(r["chosen"][0]["content"].startswith("[") for r in rows)
    code, _, err = run_console(["dpo", "build", "--strategy", "self", "--keep-ties", "--out", tmp_path / "x"],
                               capsys, monkeypatch)
    assert code == 2 and "--keep-ties applies to --strategy by-source only" in err


def test_by_correctness_orders_and_keeps_margin(setup):
    cb, items, good, worse, half = setup
    rows = P.by_correctness(items, cb, "guidelines", [good, worse, half])
    # per item: good>worse, half>worse always; good vs half only where half is wrong (3 items)
    assert len(rows) == 6 + 6 + 3
    for r in rows:
        assert r["margin"] > 0
        assert P.hamming(r["chosen_labels"], r["reference"]) < P.hamming(r["rejected_labels"], r["reference"])
    assert max(r["margin"] for r in rows) == pytest.approx(0.8)
    with_text = P.by_correctness(items, cb, "guidelines", [good, worse], use_response=True)
    assert with_text[0]["chosen"][0]["content"].startswith("good says")


def test_self_pairs_reject_only_wrong_samples(setup):
    cb, items, *_ = setup
    it = items[0]
    right = json.dumps([i + 1 for i, v in enumerate(it.labels) if v])
    samples = {it.doi: [right, "[5]", "gibberish", "[5]"]}
    rows = P.self_pairs(items, cb, "guidelines", samples)
    assert [r["rejected"][0]["content"] for r in rows] == ["[5]", "gibberish"]
    assert all(r["chosen"][0]["content"] == right for r in rows)


def test_length_filter_records_limits(setup):
    cb, items, good, worse, _ = setup
    rows = P.by_correctness(items, cb, "guidelines", [good, worse])
    kept, info = P.length_filter(rows, WordTokenizer(), quantile=0.5)
    assert info["rows_before"] == len(rows) and info["rows_after"] == len(kept) < len(rows)
    assert info["max_length"] >= info["max_prompt_length"] > 0


def test_save_and_split_grouping(setup, tmp_path):
    cb, items, good, worse, _ = setup
    rows = P.by_correctness(items, cb, "guidelines", [good, worse])
    P.save_preferences(rows, tmp_path / "prefs", {"strategy": "by-correctness"})
    dd = P.load_preferences(tmp_path / "prefs")
    assert set(dd["train"]["doi"]).isdisjoint(set(dd["test"]["doi"]) if "test" in dd else set())
    assert dd["train"].num_rows + dd["test"].num_rows == len(rows)
    assert (tmp_path / "prefs" / "train.parquet").is_file()
    card = json.loads((tmp_path / "prefs" / "card.json").read_text())
    assert card["rows"]["train"] == dd["train"].num_rows


def test_command_and_python_face_refuse_a_scoring_variant_alike(tmp_path, capsys, monkeypatch):
    """`dpo build` and `ls.dpo_pairs` run the same checks: pairs need an answer the model writes."""
    import llmscisci as ls
    from console import run_console
    from llmscisci.errors import UserError

    one = ["--strategy", "by-correctness", "--labels", str(tmp_path / "a.jsonl")]  # checked after the variant
    code, _, err = run_console(["dpo", "build", *one, "--variant", "score", "--out", tmp_path / "cli"], capsys,
                               monkeypatch)
    assert code == 2 and "preference pairs needs a variant whose answer is written text" in err
    with pytest.raises(UserError) as exc:
        ls.dpo_pairs(strategy="by-correctness", labels=[tmp_path / "a.jsonl"], variant="score", out=tmp_path / "py")
    assert str(exc.value) == err.strip().splitlines()[-1].removeprefix("error: ")
    assert not (tmp_path / "cli").exists() and not (tmp_path / "py").exists()
