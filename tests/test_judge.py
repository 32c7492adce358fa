"""LLM-as-a-judge: audit maths with constructed judges, prompts, answer parsing, runs and the CLI."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from scipy import stats
from typer.testing import CliRunner

from llmscisci.backends.base import Backend, Generation
from llmscisci.cli import app
from llmscisci.data.codebook import load_codebook
from llmscisci.data.items import load_items
from llmscisci.data.labelfiles import load_labels
from llmscisci.errors import UserError
from llmscisci.metrics.judge_audit import (
    JudgedOrder,
    audit,
    best_pick,
    correlation,
    exact_score,
    position_bias,
    score_agreement,
)
from llmscisci.prompts import judge as jp
from llmscisci.runs import read_jsonl
from llmscisci.tasks.judge import JudgeSpec, candidates_from_sets, make_orders, run_judge
from llmscisci.tasks.judge_parse import parse_judge

EASY = load_codebook("easy")
TRUTH = (1, 0, 1, 0, 0)
LABELS = {"a": (1, 0, 1, 0, 0), "b": (1, 1, 1, 0, 0), "c": (0, 0, 0, 0, 1)}  # exact scores 5, 4, 2


# --- audit maths with constructed judges -----------------------------------------------------------
def _cases(judge_fn, orders, items=("i1", "i2")) -> list[JudgedOrder]:
    """judge_fn(name, position, exact) -> score; exact scores from LABELS vs TRUTH (plus a per-item shift)."""
    out = []
    for it_i, item in enumerate(items):
        exact = {nm: exact_score(v, TRUTH) - (it_i if nm == "c" else 0) for nm, v in LABELS.items()}
        for order in orders:
            names = tuple(order)
            out.append(JudgedOrder(item, names, {nm: judge_fn(nm, p, exact[nm]) for p, nm in enumerate(names, 1)},
                                   exact))
    return out


ALL = list(itertools.permutations("abc"))
CYCLIC = [("a", "b", "c"), ("b", "c", "a"), ("c", "a", "b")]


def test_exact_score_is_n_minus_hamming():
    assert exact_score((1, 0, 1, 0, 0), TRUTH) == 5
    assert exact_score((0, 1, 1, 0, 0), TRUTH) == 3
    assert exact_score(None, TRUTH) == 0
    with pytest.raises(ValueError):
        exact_score((1, 0), TRUTH)


def test_perfect_judge():
    rep = audit(_cases(lambda nm, p, e: e, ALL))
    s = rep["scores"]
    assert s["mae"] == 0 and s["exact_agreement"] == 1 and s["mean_error"] == 0
    assert s["spearman"]["value"] == pytest.approx(1.0) and s["kendall"]["value"] == pytest.approx(1.0)
    assert rep["best_pick"]["rate"] == 1.0
    pos = rep["position"]
    assert pos["mean_abs_change"] == 0 and pos["changed_rate"] == 0
    assert all(r["effect"] == pytest.approx(0) and r["mean_error"] == 0 for r in pos["per_position"])


def test_position_one_bonus_judge_shows_the_bias():
    rep = audit(_cases(lambda nm, p, e: e + (1 if p == 1 else 0), ALL))
    pos = rep["position"]
    per = {r["position"]: r for r in pos["per_position"]}
    assert per[1]["mean_error"] == pytest.approx(1.0)
    assert per[2]["mean_error"] == pytest.approx(0.0) and per[3]["mean_error"] == pytest.approx(0.0)
    # each candidate sits first in 2 of the 6 orders: effect +1 - 1/3 first, -1/3 elsewhere
    assert per[1]["effect"] == pytest.approx(2 / 3)
    assert per[2]["effect"] == pytest.approx(-1 / 3) and per[3]["effect"] == pytest.approx(-1 / 3)
    # scores s+1, s+1, s, s, s, s: 8 of the 15 pairs of orders differ by 1
    assert pos["mean_abs_change"] == pytest.approx(8 / 15)
    assert pos["mean_range"] == pytest.approx(1.0) and pos["changed_rate"] == 1.0
    assert all(v["mean_abs_change"] == pytest.approx(8 / 15) for v in pos["per_llm"].values())
    assert pos["max_position_effect"] == pytest.approx(2 / 3)
    assert rep["scores"]["mean_error"] == pytest.approx(1 / 3)
    assert rep["scores"]["mae"] == pytest.approx(1 / 3)
    assert rep["scores"]["exact_agreement"] == pytest.approx(2 / 3)
    # b (4) placed first scores 5 and ties a: the judge's pick is not only truly best there
    assert rep["best_pick"]["rate"] < 1.0
    cyc = position_bias(_cases(lambda nm, p, e: e + (1 if p == 1 else 0), CYCLIC))
    assert cyc["mean_abs_change"] == pytest.approx(2 / 3)
    assert cyc["per_position"][0]["effect"] == pytest.approx(2 / 3)


def test_constant_judge_has_undefined_correlation_not_an_error():
    rep = audit(_cases(lambda nm, p, e: 3, ALL))
    sp, kt = rep["scores"]["spearman"], rep["scores"]["kendall"]
    assert sp["value"] is None and "constant" in sp["reason"]
    assert kt["value"] is None and "constant" in kt["reason"]
    assert rep["scores"]["mae"] > 0
    assert rep["best_pick"]["judge_ties"] == 1.0 and rep["best_pick"]["rate"] == 0.0
    # constant exact scores: undefined too
    c = correlation([1, 2, 3], [4, 4, 4])
    assert c.value is None and "exact" in c.reason
    assert correlation([1], [1]).value is None


def test_correlation_matches_scipy():
    x, y = [1, 3, 2, 5, 4, 4], [2, 3, 1, 5, 5, 3]
    assert correlation(x, y, "spearman").value == pytest.approx(stats.spearmanr(x, y).statistic)
    assert correlation(x, y, "kendall").value == pytest.approx(stats.kendalltau(x, y).statistic)


def test_reversed_judge_never_picks_the_best():
    bp = best_pick(_cases(lambda nm, p, e: 5 - e, ALL))
    assert bp["rate"] == 0.0 and bp["n"] == 12


def test_unparsed_scores_are_skipped():
    cases = _cases(lambda nm, p, e: None if nm == "c" else e, ALL)
    rep = audit(cases)
    assert rep["scores_parsed"] == 2 * 6 * 2 and rep["scores_expected"] == 2 * 6 * 3
    assert rep["best_pick"]["n"] == 0 and rep["best_pick"]["rate"] is None
    assert score_agreement([], [])["mae"] is None


# --- orders ----------------------------------------------------------------------------------------
def test_orders():
    assert len(set(make_orders(3, "all", 1))) == 6
    cyc = make_orders(3, "cyclic", 1)
    assert all(sorted(o[p] for o in cyc) == [0, 1, 2] for p in range(3))  # each candidate once per position
    a, b = make_orders(3, 4, 7), make_orders(3, "4", 7)
    assert a == b and len(set(a)) == 4
    assert len(make_orders(3, 10, 7)) == 6
    assert len(set(make_orders(7, 5, 3))) == 5
    for bad in ("x", 0, "-1"):
        with pytest.raises(UserError):
            make_orders(3, bad, 1)
    with pytest.raises(UserError):
        make_orders(7, "all", 1)


# --- prompts ---------------------------------------------------------------------------------------
def _shown():
    return [jp.Shown((1, 0, 1, 0, 0), "Availability of code and " + "very long answer " * 60),
            jp.Shown(None, "gibberish"), jp.Shown((0, 0, 0, 0, 1), None)]


@pytest.mark.parametrize("variant", jp.VARIANTS)
def test_judge_prompt_contents(variant):
    msgs = jp.build_messages("The code was on GitHub.", TRUTH, _shown(), EASY, variant)
    system, user = msgs[0]["content"], msgs[1]["content"]
    for c in EASY.categories:
        assert c.name in system and c.short in system
    assert "exclusive" in system and "'none'" in system  # the none rule
    assert "out of 5" in system or "0 to 5" in system
    assert "Correct classification: code, readability" in user
    assert user.index("LLM 1") < user.index("LLM 2") < user.index("LLM 3")
    assert "Classification: (none given)" in user and "no valid classification" in user
    assert "Classification: none" in user
    assert " ..." in user and len(user) < 2500  # long answers cut
    assert "The code was on GitHub." in user
    # the system prompt is shared by every call with the same K
    other = jp.build_messages("Other text", (0, 1, 0, 0, 0), _shown()[::-1], EASY, variant)
    assert other[0]["content"] == system
    if variant == "icl":
        assert "Output format" not in system
    elif variant == "guidelines":
        assert '"LLM <number>: <score>"' in system and '"Final: <categories>"' in system
    else:
        assert "(llm_1, llm_2, llm_3)" in system and '"final"' in system


def _shown_k(cb, k: int) -> list:
    """k candidates with distinct classifications (one of them invalid) and short answers."""
    vecs = [tuple(int(j == i % cb.n) for j in range(cb.n)) for i in range(k)]
    return [jp.Shown(None if i == 1 else v, "My answer: " + ", ".join(cb.names_of(v))) for i, v in enumerate(vecs)]


@pytest.mark.parametrize("task", ["easy", "difficult"])
@pytest.mark.parametrize("variant", jp.VARIANTS)
def test_no_judge_prompt_shows_a_complete_answer(task, variant):
    """The judge's own parser finds no score and no final classification in any system prompt, and no
    complete answer in a whole conversation: there is no example answer a small judge could copy."""
    cb = load_codebook(task)
    for k in (2, 3, 6):
        shown = _shown_k(cb, k)
        truth = shown[0].labels
        system, user = (m["content"] for m in jp.build_messages("The code was on GitHub.", truth, shown, cb, variant))
        alone = parse_judge(system, k, cb)
        assert alone.scores == [None] * k and alone.final is None, (variant, k, alone)
        whole = parse_judge(system + "\n\n" + user, k, cb, [c.labels for c in shown], truth)
        assert whole.scores == [None] * k and not whole.valid, (variant, k, whole)


def test_the_format_the_prompts_describe_is_what_the_parser_reads():
    """Filling in the placeholders of the guidelines' line formats, and the fields the structured prompt
    names, gives answers the parser reads in full."""
    system = jp.system_prompt(EASY, "guidelines", 3)
    line = re.search(r'"(LLM <number>: <score>)"', system).group(1)
    final = re.search(r'"(Final: <categories>)"', system).group(1)
    text = "\n".join(line.replace("<number>", str(i)).replace("<score>", str(s)) for i, s in ((1, 5), (2, 4), (3, 0)))
    p = parse_judge(text + "\n" + final.replace("<categories>", "code, readability"), 3, EASY)
    assert p.valid and p.scores == [5, 4, 0] and p.final == (1, 0, 1, 0, 0)

    system = jp.system_prompt(EASY, "structured", 3)
    score_fields = re.search(r"one score field per LLM \(([^)]*)\)", system).group(1).split(", ")
    categories = re.search(r"one field per category \(([^)]*)\)", system).group(1).split(", ")
    answer = {**dict(zip(score_fields, (5, 4, 0))), "final": {c: c in ("code", "readability") for c in categories}}
    assert jp.judge_schema(EASY, 3).model_validate(answer)  # the fields the prompt names are the schema's
    p = parse_judge(json.dumps(answer), 3, EASY)
    assert p.valid and p.scores == [5, 4, 0] and p.final == (1, 0, 1, 0, 0)


def test_structured_schema():
    schema = jp.judge_schema(EASY, 3)
    js = schema.model_json_schema()
    assert set(js["required"]) == {"llm_1", "llm_2", "llm_3", "final"}
    assert js["properties"]["llm_2"]["enum"] == [0, 1, 2, 3, 4, 5]
    with pytest.raises(ValidationError):
        schema.model_validate_json('{"llm_1": 6, "llm_2": 1, "llm_3": 1, "final": {}}')


def test_unknown_variant():
    with pytest.raises(UserError):
        jp.check_variant("zero-shot")


# --- parsing ---------------------------------------------------------------------------------------
CANDS = [(1, 0, 1, 0, 0), (1, 1, 1, 0, 0), None]


@pytest.mark.parametrize("text,scores,final,source", [
    ("LLM 1: 5\nLLM 2: 4\nLLM 3: 0\nFinal: code, readability", [5, 4, 0], (1, 0, 1, 0, 0), "names"),
    (('{"llm_1": 5, "llm_2": 4, "llm_3": 0, "final": {"code": true, "artifacts": false, "readability": true, '
      '"setup": false, "none": false}}'), [5, 4, 0], (1, 0, 1, 0, 0), "json"),
    ("Sure! Here it is:\n```json\n{\"scores\": [5, 4, 0], \"final\": [\"code\", \"readability\"]}\n```",
     [5, 4, 0], (1, 0, 1, 0, 0), "json"),
    (("LLM 1: code agrees, artifacts agrees ... score 5/5.\nModel 2 scores 4 out of 5\nLLM 3 gets 0\n"
      "**Final classification:** same as LLM 2"), [5, 4, 0], (1, 1, 1, 0, 0), "llm:2"),
    ("LLM 1 - 5\nLLM 2 - 3\nLLM 3 - 1\nSummary: LLM 1: 5, LLM 2: 4, LLM 3: 0\nFinal answer: the correct classification",
     [5, 4, 0], (1, 0, 1, 0, 0), "truth"),
    ("LLM 1: 5\nLLM 2: 4\nLLM 3: 0\nFinal classification:\n[1, 0, 1, 0, 0]", [5, 4, 0], (1, 0, 1, 0, 0), None),
    ("LLM 1: 9\nLLM 2: 4\nLLM 3: 2.5\nFinal: Availability of code", [None, 4, None], (1, 0, 0, 0, 0), "names"),
    ('{"LLM 1": "5/5", "LLM 2": {"score": 4}, "LLM 3": 0, "final": "LLM 1"}', [5, 4, 0], (1, 0, 1, 0, 0), "llm:1"),
])
def test_parse_judge_forms(text, scores, final, source):
    p = parse_judge(text, 3, EASY, CANDS, TRUTH)
    assert p.scores == scores
    assert p.final == final
    if source is not None:
        assert p.final_source == source
    assert p.valid == (None not in scores)


def test_parse_judge_invalid_and_repaired():
    for text in ("", "I cannot judge this.", "LLM 4: 5", "{\"llm_1\": true}", "Final: LLM 3"):
        p = parse_judge(text, 3, EASY, CANDS, TRUTH)
        assert not p.valid and p.problems
    p = parse_judge('{"llm_1": 5, "llm_2": 4, "llm_3": 0, "final": {"code": false, "artifacts": false, '
                    '"readability": false, "setup": false, "none": false}}', 3, EASY, CANDS, TRUTH)
    assert p.valid and p.final == (0, 0, 0, 0, 1) and p.final_repaired
    p = parse_judge("LLM 1: 5\nLLM 2: 4\nLLM 3: 0\nFinal: code, none", 3, EASY, CANDS, TRUTH)
    assert p.final == (1, 0, 0, 0, 0) and p.final_repaired


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_parse_judge_never_raises(text):
    p = parse_judge(text, 3, EASY, CANDS, TRUTH)
    assert len(p.scores) == 3
    assert all(s is None or 0 <= s <= 5 for s in p.scores)
    assert p.final is None or len(p.final) == 5


# --- runs with a fake backend ----------------------------------------------------------------------
class ScriptedJudge(Backend):
    """A judge that reads the prompt (truth and candidates' classifications) and answers in the
    variant's format; `bonus` is added to the score of the candidate in position 1 (capped at n)."""

    name = "scripted-judge"

    def __init__(self, codebook, bonus: int = 0, garbage: bool = False):
        self.codebook, self.bonus, self.garbage = codebook, bonus, garbage
        self.calls = 0
        self.schemas = []

    def _vec(self, text: str) -> tuple[int, ...]:
        chosen = {s.strip() for s in text.split(",")}
        return tuple(int(s in chosen) for s in self.codebook.shorts)

    def answer(self, conv, schema) -> str:
        if self.garbage:
            return "I am not sure."
        user = conv[-1]["content"]
        truth = self._vec(re.search(r"Correct classification: (.*)", user).group(1))
        cands = re.findall(r"LLM (\d+)\nClassification: (.*)", user)
        scores = {}
        for pos, cls in cands:
            s = 0 if cls.startswith("(") else exact_score(self._vec(cls), truth)
            if pos == "1":
                s = min(s + self.bonus, self.codebook.n)
            scores[int(pos)] = s
        if schema is not None:
            obj = {f"llm_{p}": s for p, s in scores.items()}
            obj["final"] = {sh: bool(v) for sh, v in zip(self.codebook.shorts, truth)}
            return json.dumps(obj)
        return "\n".join(f"LLM {p}: {s}" for p, s in scores.items()) + "\nFinal: " + ", ".join(
            self.codebook.names_of(truth))

    def generate(self, conversations, params=None, schema=None, on_result=None):
        out = []
        self.schemas.append(schema)
        for i, conv in enumerate(conversations):
            self.calls += 1
            gen = Generation(text=self.answer(conv, schema), tokens_in=100, tokens_out=20, seconds=0.01)
            out.append(gen)
            if on_result:
                on_result(i, gen)
        return out

    def count_tokens(self, messages):
        return sum(len(m["content"]) // 4 for m in messages)


def _label_run(path: Path, task: str, flip: int, every: int, invalid: set[str] = frozenset(),
               data_dir: Path | None = None) -> Path:
    """A label-run-like folder: the reference labels with category `flip` toggled on every `every`-th
    item (none rule applied), some outputs invalid."""
    from llmscisci.data.validate import apply_none_rule

    cb = load_codebook(task)
    ref = load_labels(data_dir / "labels" / "reference.csv").labels(task)
    path.mkdir(parents=True)
    with (path / "predictions.jsonl").open("w") as fh:
        for i, (doi, lab) in enumerate(sorted(ref.items())):
            vec = list(lab)
            if i % every == 0:
                vec[flip] = 1 - vec[flip]
            vec = list(apply_none_rule(vec, cb.none_index).labels)
            valid = doi not in invalid
            fh.write(json.dumps({"doi": doi, "task": task, "labels": vec if valid else None, "valid": valid,
                                 "raw": "[" + ", ".join(str(j + 1) for j, v in enumerate(vec) if v) + "]"}) + "\n")
    return path


@pytest.fixture
def inputs(data_dir, tmp_path):
    ref = sorted(load_labels(data_dir / "labels" / "reference.csv").labels("easy"))
    run1 = _label_run(tmp_path / "label_run_1", "easy", flip=0, every=1, data_dir=data_dir)
    run2 = _label_run(tmp_path / "label_run_2", "easy", flip=2, every=2, invalid={ref[1]}, data_dir=data_dir)
    return [data_dir / "labels" / "annotator_a.jsonl", run1, run2]


def _run(data_dir, tmp_path, inputs, backend, variant="guidelines", orders="all", limit=4):
    items = load_items(EASY, data_dir=data_dir)
    cands = candidates_from_sets([load_labels(p) for p in inputs], "easy")
    spec = JudgeSpec(codebook=EASY, variant=variant, model="scripted", orders=orders, limit=limit,
                     data_source=str(data_dir))
    return run_judge(spec, items, cands, backend, tmp_path / "runs", show_progress=False)


@pytest.mark.parametrize("variant", jp.VARIANTS)
def test_run_with_perfect_scripted_judge(data_dir, tmp_path, inputs, variant):
    backend = ScriptedJudge(EASY)
    run = _run(data_dir, tmp_path, inputs, backend, variant=variant)
    assert (backend.schemas[0] is not None) == (variant == "structured")
    cfg = json.loads((run.path / "config.json").read_text())
    assert cfg["kind"] == "judge" and cfg["variant"] == variant and len(cfg["orders"]) == 6
    assert [c["name"] for c in cfg["candidates"]] == ["annotator_a", "label_run_1", "label_run_2"]
    # what the prompt shows is recorded as a label run records it: no complete answer, and none in its text
    shows = parse_judge(cfg["system_prompt"], 3, EASY)
    assert cfg["prompt_examples"] == [] and shows.scores == [None] * 3 and shows.final is None
    preds = read_jsonl(run.path / "predictions.jsonl")
    assert len(preds) == 4 * 6 and backend.calls == 24
    p = preds[0]
    assert {"raw", "judge_scores", "exact_scores", "final_labels", "order", "truth", "valid"} <= set(p)
    assert all(q["valid"] for q in preds)
    assert any(q["llm_labels"]["label_run_2"] is None and q["exact_scores"]["label_run_2"] == 0 for q in preds)
    m = json.loads((run.path / "metrics.json").read_text())
    a = m["audit"]
    assert a["scores"]["mae"] == 0 and a["scores"]["exact_agreement"] == 1
    assert a["best_pick"]["rate"] == 1 and a["position"]["mean_abs_change"] == 0
    assert m["final"]["matches_truth"] == 1 and m["valid_rate"] == 1
    # one category flipped on every item (and the none rule applied): never a perfect score
    run1 = [q["exact_scores"]["label_run_1"] for q in preds]
    assert max(run1) < 5 and a["per_llm"]["label_run_1"]["mean_exact"] == pytest.approx(sum(run1) / len(run1))
    assert "truth" in m["inputs_agreement"]["coders"]
    assert (run.path / "predictions.csv").read_text().count("\n") == 25
    # resuming the same configuration makes no new calls
    again = _run(data_dir, tmp_path, inputs, backend, variant=variant)
    assert again.path == run.path and backend.calls == 24


def test_judge_run_reads_as_calls_whose_totals_are_metrics_json(data_dir, tmp_path, inputs):
    import llmscisci as ls
    from llmscisci.records import JudgeCall

    run = _run(data_dir, tmp_path, inputs, ScriptedJudge(EASY), orders="cyclic", limit=2)
    opened = ls.open_run(run.path)
    recs = opened.records()
    assert all(type(r) is JudgeCall for r in recs) and len(recs) == len({r.key for r in recs}) == 6
    totals = opened.totals.as_metrics()
    m = run.metrics()
    assert totals["tokens"] == {"in": 600, "out": 120} and m["calls"] == opened.totals.n == 6
    assert {k: totals[k] for k in totals if k in m} == {k: m[k] for k in totals if k in m}
    assert {"failed", "unanswered", "refusals", "tokens", "cost_usd", "generation_seconds"} <= m.keys()


def test_run_with_biased_judge_shows_position_bias(data_dir, tmp_path, inputs):
    run = _run(data_dir, tmp_path, inputs, ScriptedJudge(EASY, bonus=1), orders="cyclic", limit=6)
    pos = run.metrics()["audit"]["position"]
    per = {r["position"]: r for r in pos["per_position"]}
    assert per[1]["mean_error"] > 0.2 and per[2]["mean_error"] == 0 and per[3]["mean_error"] == 0
    assert per[1]["effect"] > 0 > per[2]["effect"]
    assert pos["mean_abs_change"] > 0


def test_run_records_unparseable_answers(data_dir, tmp_path, inputs):
    run = _run(data_dir, tmp_path, inputs, ScriptedJudge(EASY, garbage=True), orders="2", limit=2)
    preds = read_jsonl(run.path / "predictions.jsonl")
    assert len(preds) == 4 and not any(p["valid"] for p in preds)
    assert all(p["raw"] == "I am not sure." and p["problems"] for p in preds)
    m = run.metrics()
    assert m["valid_rate"] == 0 and m["audit"]["scores"]["n"] == 0 and m["audit"]["scores"]["mae"] is None


def test_run_needs_two_candidates_and_shared_items(data_dir, tmp_path, inputs):
    with pytest.raises(UserError, match="at least two"):
        _run(data_dir, tmp_path, inputs[:1], ScriptedJudge(EASY))
    other = tmp_path / "other.jsonl"
    other.write_text(json.dumps({"doi": "10.5281/zenodo.0000001", "task": "easy", "labels": [1, 0, 0, 0, 0]}) + "\n")
    with pytest.raises(UserError, match="no item"):
        _run(data_dir, tmp_path, [inputs[0], other], ScriptedJudge(EASY))
    assert not (tmp_path / "runs").exists()  # nothing written for bad input


# --- CLI -------------------------------------------------------------------------------------------
def test_judge_cli_with_scripted_backend(data_dir, tmp_path, inputs, monkeypatch):
    from llmscisci.backends import registry

    monkeypatch.setattr(registry, "load_backend", lambda name, opts=None: ScriptedJudge(EASY, bonus=1))
    runner = CliRunner()
    args = ["judge", "--task", "easy", "--variant", "guidelines", "--model", "scripted", "--llm", str(inputs[1]),
            "--llm", str(inputs[2]), "--orders", "cyclic", "--limit", "3", "--data-dir", str(data_dir),
            "--out", str(tmp_path / "runs")]
    res = runner.invoke(app, args, env={"COLUMNS": "160"})
    assert res.exit_code == 0, res.output
    assert "judge audit" in res.output and "by position" in res.output and "run folder:" in res.output
    (run_dir,) = (tmp_path / "runs").iterdir()
    cfg = json.loads((run_dir / "config.json").read_text())
    assert [c["name"] for c in cfg["candidates"]] == ["annotator_a", "label_run_1", "label_run_2"]  # default first
    assert len(read_jsonl(run_dir / "predictions.jsonl")) == 9
    res = runner.invoke(app, ["judge", "--resume", str(run_dir), "--data-dir", str(data_dir)])
    assert res.exit_code == 0, res.output
    assert len(read_jsonl(run_dir / "predictions.jsonl")) == 9


def test_judge_cli_bad_input_writes_nothing(data_dir, tmp_path, inputs):
    runner = CliRunner()
    base = ["judge", "--data-dir", str(data_dir), "--out", str(tmp_path / "runs")]
    res = runner.invoke(app, base + ["--variant", "nope", "--llm", str(inputs[1])])
    assert res.exit_code != 0 and "unknown judge variant" in str(res.exception)
    res = runner.invoke(app, base + ["--no-annotator", "--llm", str(inputs[1])])
    assert res.exit_code != 0 and "at least two" in str(res.exception)
    res = runner.invoke(app, base + ["--llm", str(tmp_path / "missing")])
    assert res.exit_code != 0 and "no such file" in str(res.exception)
    res = runner.invoke(app, base + ["--llm", str(inputs[1]), "--orders", "many"])
    assert res.exit_code != 0 and "--orders" in str(res.exception)
    assert not (tmp_path / "runs").exists()


# --- real model ------------------------------------------------------------------------------------
@pytest.mark.slow
def test_judge_smollm2_all_variants(embedded_model_dir, data_dir, tmp_path, inputs):
    """The embedded model judges 1 item (one sampled order) per variant; the structured variant always
    parses. (The orders and the audit maths are covered by the scripted-judge tests above.)"""
    model = "smollm2-135m"  # resolved to the converted folder of the session fixture
    runner = CliRunner()
    for variant in jp.VARIANTS:
        out = tmp_path / f"runs-{variant}"
        # free-text variants get a short budget (speed); structured keeps its default so the JSON closes
        budget = [] if variant == "structured" else ["--max-new-tokens", "48"]
        res = runner.invoke(app, [
            "judge", "--task", "easy", "--variant", variant, "--model", model, "--llm", str(inputs[1]),
            "--llm", str(inputs[2]), "--orders", "1", "--limit", "1", "--data-dir", str(data_dir),
            "--out", str(out), "--device", "cpu", *budget,
        ])
        assert res.exit_code == 0, res.output
        (run_dir,) = out.iterdir()
        assert {"config.json", "predictions.jsonl", "predictions.csv", "metrics.json"} <= {
            p.name for p in run_dir.iterdir()}
        preds = read_jsonl(run_dir / "predictions.jsonl")
        assert len(preds) == 1 and all(p["raw"] is not None and p["error"] is None for p in preds)
        m = json.loads((run_dir / "metrics.json").read_text())
        assert m["calls"] == 1 and "audit" in m and m["audit"]["scores_expected"] == 3
        if variant == "structured":
            assert all(p["valid"] for p in preds), [p["raw"] for p in preds]
            assert m["audit"]["scores"]["n"] == 3
