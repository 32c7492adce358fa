"""Does a run say whether its labels depend on the text? Diagnostics, warnings and the placebo check with
fake backends (a constant one, one that copies the prompt's example, one whose answer follows the
text), for study runs and streamed `--input` runs; and prompts that show no answer to copy."""

from __future__ import annotations

import json
import re
import zlib

import pandas as pd
import pytest
from console import run_console

from llmscisci.backends import registry
from llmscisci.backends.base import Backend, Generation, GenParams
from llmscisci.data.codebook import Category, Codebook, load_codebook
from llmscisci.metrics.diagnostics import diagnostics, examples_in, normalize_answer, warnings
from llmscisci.prompts import cot
from llmscisci.prompts import label as prompts
from llmscisci.tasks.placebo import NEUTRAL_PASSAGE


class ScriptedBackend(Backend):
    """Answers each conversation with `answer(conversation)`."""

    context_length = None

    def __init__(self, answer):
        self.answer = answer
        self.calls = 0

    def generate(self, conversations, params: GenParams = GenParams(), schema=None, on_result=None):
        gens = []
        for i, conv in enumerate(conversations):
            self.calls += 1
            gen = Generation(text=self.answer(conv))
            if on_result:
                on_result(i, gen)
            gens.append(gen)
        return gens

    def count_tokens(self, messages) -> int:
        return 10


def constant(conv) -> str:
    return "[1]"


def copy_first_shot(conv) -> str:
    """The first example answer the prompt shows (an assistant turn of the k-shot examples)."""
    return next(m["content"] for m in conv if m["role"] == "assistant")


def reads_text(conv) -> str:
    """A category chosen by the passage's own words (a checksum of the text: spread over categories)."""
    return f"[{zlib.crc32(conv[-1]['content'].encode()) % 4 + 1}]"


def _use(monkeypatch, answer) -> ScriptedBackend:
    backend = ScriptedBackend(answer)
    monkeypatch.setattr(registry, "load_backend", lambda name, options=None: backend)
    return backend


def _label(args, capsys, monkeypatch) -> dict:
    code, out, err = run_console(["label", "--task", "easy", "--variant", "guidelines", "--json", *args],
                                 capsys, monkeypatch)
    assert code == 0, err
    return json.loads(out)


# ---- diagnostics and warnings of study runs ----------------------------------------------------------
def test_constant_answers_warn(data_dir, tmp_path, capsys, monkeypatch):
    _use(monkeypatch, constant)
    res = _label(["--data-dir", data_dir, "--limit", "12", "--out", tmp_path], capsys, monkeypatch)
    d = res["diagnostics"]
    assert d["distinct_answers"] == 1 and d["top_answer_share"] == 1.0 and d["top_answer_categories"] == ["code"]
    assert d["example_copy_rate"] == 0.0 and d["examples_shown"] == 0  # the prompt shows no answer
    assert len(res["warnings"]) == 1 and "do not depend on the text" in res["warnings"][0]
    saved = json.loads((tmp_path.glob("label_*").__next__() / "metrics.json").read_text())
    assert saved["diagnostics"] == d and saved["warnings"] == res["warnings"]
    # printed in the summary too
    code, out, err = run_console(["eval", next(tmp_path.glob("label_*"))], capsys, monkeypatch)
    assert code == 0 and "WARNING:" in out and "1 distinct label vector among 12 valid" in out


def test_too_few_items_do_not_warn_on_one_answer(data_dir, tmp_path, capsys, monkeypatch):
    _use(monkeypatch, constant)
    res = _label(["--data-dir", data_dir, "--limit", "9", "--out", tmp_path], capsys, monkeypatch)
    assert res["diagnostics"]["top_answer_share"] == 1.0 and res["warnings"] == []


def test_copying_the_prompts_example_warns(data_dir, tmp_path, capsys, monkeypatch):
    _use(monkeypatch, copy_first_shot)
    res = _label(["--data-dir", data_dir, "--limit", "6", "--shots", "2", "--out", tmp_path], capsys, monkeypatch)
    d = res["diagnostics"]
    assert d["examples_shown"] >= 1 and d["example_copy_rate"] == 1.0
    assert any("example shown in the prompt" in w for w in res["warnings"])


def test_text_dependent_answers_do_not_warn(data_dir, tmp_path, capsys, monkeypatch):
    _use(monkeypatch, reads_text)
    res = _label(["--data-dir", data_dir, "--limit", "40", "--out", tmp_path], capsys, monkeypatch)
    d = res["diagnostics"]
    assert d["distinct_answers"] == 4 and d["top_answer_share"] < 0.9 and d["example_copy_rate"] == 0.0
    assert res["warnings"] == []


def test_diagnostics_leave_out_empty_texts_and_failures():
    recs = [{"raw": "[1]", "labels": [1, 0], "valid": True},
            {"raw": "", "labels": [0, 1], "valid": True, "empty": True},
            {"raw": "", "labels": None, "valid": False, "error": "timeout"},
            {"raw": "nonsense", "labels": None, "valid": False}]
    d = diagnostics(recs, examples=["[1]"], shorts=["a", "none"])
    assert (d["n_answers"], d["n_valid"], d["distinct_answers"]) == (2, 1, 1)
    assert d["example_copy_rate"] == 0.5 and d["top_answer_categories"] == ["a"]
    assert warnings(d) == ["50% of the answers are, character for character, an example shown in the prompt: the "
                           "model copies the prompt instead of labelling the text."]


def test_an_older_runs_example_is_found_in_its_system_prompt():
    old = 'Output format: a JSON object, for example {"code": true, "none": false}. Use [1, 3].'
    assert examples_in(old) == ['{"code": true, "none": false}', "[1, 3]"]
    assert normalize_answer('{ "none": false,"code":true }') == normalize_answer('{"code": true, "none": false}')


def test_eval_finds_the_example_of_a_run_made_before_prompts_dropped_it(data_dir, tmp_path, capsys, monkeypatch):
    _use(monkeypatch, constant)
    _label(["--data-dir", data_dir, "--limit", "4", "--out", tmp_path], capsys, monkeypatch)
    run = next(tmp_path.glob("label_*"))
    cfg = json.loads((run / "config.json").read_text())
    del cfg["prompt_examples"]  # as an older run's config.json
    cfg["system_prompt"] += "\n- Output format: a JSON list of category numbers, for example [1]."
    (run / "config.json").write_text(json.dumps(cfg))
    code, out, err = run_console(["eval", run, "--json"], capsys, monkeypatch)
    res = json.loads(out)
    assert res["diagnostics"]["example_copy_rate"] == 1.0 and "copies the prompt" in res["warnings"][0]


# ---- streamed corpus runs -----------------------------------------------------------------------------
def _corpus(tmp_path, n=12):
    words = ["code", "data", "paper", "setup", "nothing", "weights", "docs", "github"]
    path = tmp_path / "corpus.csv"
    pd.DataFrame({"id": [f"w{i}" for i in range(n)],
                  "easy": [f"Report {i}: the {words[i % 8]} {words[(3 * i) % 8]} helped." for i in range(n)]}
                 ).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("answer,warned", [(constant, True), (reads_text, False)])
def test_streamed_runs_warn_too(answer, warned, tmp_path, capsys, monkeypatch):
    _use(monkeypatch, answer)
    res = _label(["--input", _corpus(tmp_path), "--model", "fake-model", "--out", tmp_path / "runs"], capsys,
                 monkeypatch)
    assert res["diagnostics"]["n_valid"] == 12
    assert bool(res["warnings"]) is warned
    assert res["metrics"]["diagnostics"] == res["diagnostics"]
    run = next((tmp_path / "runs").iterdir())
    code, out, err = run_console(["eval", run], capsys, monkeypatch)  # the corpus summary prints them
    assert code == 0 and ("WARNING:" in out) is warned and "distinct label vector" in out


def test_streamed_run_copying_the_cot_example_warns(tmp_path, capsys, monkeypatch):
    _use(monkeypatch, lambda conv: f"<label>{cot.fields(load_codebook('easy'))['example']}</label>")
    code, out, err = run_console(["label", "--task", "easy", "--variant", "cot", "--input", _corpus(tmp_path, 4),
                                  "--model", "fake-model", "--out", tmp_path / "runs", "--json"], capsys, monkeypatch)
    assert code == 0, err
    res = json.loads(out)
    assert res["diagnostics"]["examples_shown"] == 1 and res["diagnostics"]["example_copy_rate"] == 0.0
    _use(monkeypatch, lambda conv: cot.fields(load_codebook("easy"))["example"])  # the bare example
    code, out, err = run_console(["label", "--task", "easy", "--variant", "cot", "--input", _corpus(tmp_path, 4),
                                  "--model", "fake-model-2", "--out", tmp_path / "runs", "--json"], capsys,
                                 monkeypatch)
    res = json.loads(out)
    assert res["diagnostics"]["example_copy_rate"] == 1.0 and any("copies the prompt" in w for w in res["warnings"])


# ---- the placebo check -------------------------------------------------------------------------------
def test_placebo_with_a_constant_model_changes_nothing(data_dir, tmp_path, capsys, monkeypatch):
    backend = _use(monkeypatch, constant)
    res = _label(["--data-dir", data_dir, "--limit", "12", "--placebo", "6", "--out", tmp_path], capsys,
                 monkeypatch)
    assert backend.calls == 12 + 6
    pl = res["placebo"]
    assert (pl["n"], pl["unchanged_share"], pl["kind"]) == (6, 1.0, "neutral")
    assert any("placebo check" in w for w in res["warnings"])
    run = next(tmp_path.glob("label_*"))
    assert len((run / "predictions.jsonl").read_text().splitlines()) == 12  # not polluted
    rows = [json.loads(x) for x in (run / "placebo.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and all(r["unchanged"] for r in rows)
    assert json.loads((run / "metrics.json").read_text())["placebo"] == pl
    # a later `eval` keeps the check (read from placebo.jsonl)
    code, out, err = run_console(["eval", run, "--json"], capsys, monkeypatch)
    assert code == 0 and json.loads(out)["placebo"] == pl


def test_placebo_with_a_reading_model_changes_answers(data_dir, tmp_path, capsys, monkeypatch):
    backend = _use(monkeypatch, reads_text)
    seen = []
    backend.answer = lambda conv: (seen.append(conv[-1]["content"]), reads_text(conv))[1]
    _label(["--data-dir", data_dir, "--limit", "30", "--out", tmp_path], capsys, monkeypatch)
    run = next(tmp_path.glob("label_*"))
    seen.clear()
    code, out, err = run_console(["eval", run, "--placebo", "20", "--json"], capsys, monkeypatch)
    assert code == 0, err
    res = json.loads(out)
    assert res["placebo"]["n"] == 20 and res["placebo"]["unchanged_share"] < 1.0
    assert len(seen) == 20 and all(NEUTRAL_PASSAGE in s for s in seen)  # the text was replaced
    assert res["warnings"] == [] and len((run / "predictions.jsonl").read_text().splitlines()) == 30


def test_placebo_on_a_streamed_run(tmp_path, capsys, monkeypatch):
    _use(monkeypatch, constant)
    res = _label(["--input", _corpus(tmp_path), "--model", "fake-model", "--placebo", "5", "--out",
                  tmp_path / "runs"], capsys, monkeypatch)
    assert res["placebo"]["n"] == 5 and res["placebo"]["unchanged_share"] == 1.0
    run = next((tmp_path / "runs").iterdir())
    assert (run / "placebo.jsonl").is_file() and len((run / "predictions.jsonl").read_text().splitlines()) == 12


@pytest.mark.parametrize("args,needle", [
    (["--placebo", "0"], "--placebo 0: must be at least 1"),
    (["--placebo", "3", "--batch"], "--placebo asks the model live"),
])
def test_placebo_option_errors(args, needle, data_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(registry, "load_backend", lambda *a, **k: pytest.fail("model loaded"))
    code, out, err = run_console(["label", "--task", "easy", "--data-dir", data_dir, "--out", tmp_path,
                                  "--model", "openai:gpt-4o-mini", *args], capsys, monkeypatch)
    assert code == 2 and needle in err, err


# ---- prompts show no answer to copy ------------------------------------------------------------------
THREE = Codebook(task="mine", text_column="text", title="Mine", none="none", source="mine.toml",
                 categories=[Category(short="none", name="Nothing"), Category(short="funding", name="Funding"),
                             Category(short="data", name="Data")])


def _complete_answers(text: str, cb: Codebook) -> list[list[int]]:
    """Every complete answer written in a prompt: a JSON list of category numbers, an object with a boolean
    for every category, or a 0/1 vector of the codebook's length."""
    found = []
    for snippet in re.findall(r"\{[^{}]*\}|\[[^\[\]]*\]", text):
        try:
            value = json.loads(snippet)
        except ValueError:
            continue
        if isinstance(value, dict) and set(value) == set(cb.shorts):
            found.append([int(bool(value[s])) for s in cb.shorts])
        elif isinstance(value, list) and value and all(isinstance(v, int) for v in value):
            if len(value) == cb.n and set(value) <= {0, 1}:
                found.append(value)
            elif all(1 <= v <= cb.n for v in value):
                found.append([int(i + 1 in value) for i in range(cb.n)])
    return found


@pytest.mark.parametrize("cb", [load_codebook("easy"), load_codebook("difficult"), THREE], ids=lambda c: c.task)
def test_no_prompt_shows_an_answer_that_breaks_its_rules(cb):
    for variant in prompts.templates():  # every variant and paraphrase, the scoring one's questions too
        for k in range(len(prompts.paraphrases(variant)) + 1):
            if prompts.is_scoring(variant):
                msgs = [m for conv in prompts.item_score_messages("Some passage.", cb, variant, k) for m in conv]
            else:
                msgs = prompts.build_messages("Some passage.", cb, variant, paraphrase=k)
            text = "\n".join(m["content"] for m in msgs)
            answers = _complete_answers(text, cb)
            if variant != "cot":  # the format is stated in words, never shown as an answer
                assert answers == [], (variant, k, answers)
            # a run records what its prompt shows (`prompt_examples`): no more, no less
            recorded = [a for e in prompts.shown_examples(cb, variant) for a in _complete_answers(e, cb)]
            assert answers == recorded, (variant, k, answers, recorded)
            for vec in answers:  # the chain-of-thought format example keeps the exclusive `none` rule
                assert not (vec[cb.none_index] and sum(vec) > 1), (variant, k, vec)
    assert prompts.shown_examples(cb, "cot") == [cot.fields(cb)["example"]]
    assert prompts.shown_examples(cb, "structured") == []
    if cb.task == "mine":
        assert cot.fields(cb)["example"] == "[0, 1, 0]"  # not the `none` category, first here
