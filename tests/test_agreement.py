"""Agreement statistics against reference values and implementations, and `llmscisci agree`."""

from __future__ import annotations

from pathlib import Path

import json

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score
from typer.testing import CliRunner

from llmscisci.cli import app
from llmscisci.metrics.agreement import (
    agreement_report,
    cohen_kappa,
    exact_match,
    fleiss_kappa,
    hamming_agreement,
    hamming_loss,
    krippendorff_alpha,
)

FIXTURE_DATA = Path(__file__).resolve().parent / "fixtures" / "data"  # sources and seed formats

# Fleiss (1971)-style textbook table (as on Wikipedia, "Fleiss' kappa", worked example):
# 10 subjects, 14 raters each, 5 categories; kappa = 0.210.
FLEISS_COUNTS = [
    [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
]


def _ratings_from_counts(counts):
    return [[cat for cat, c in enumerate(row) for _ in range(c)] for row in counts]


def test_fleiss_matches_textbook_example():
    s = fleiss_kappa(_ratings_from_counts(FLEISS_COUNTS))
    assert s.n == 10
    assert s.value == pytest.approx(0.2099, abs=5e-4)


def test_fleiss_hand_computed_binary():
    # 4 items x 3 raters, binary. P_i = [1, 1/3, 1, 1/3] -> P_bar = 2/3; p1 = 6/12 -> P_e = 0.5;
    # kappa = (2/3 - 1/2) / (1 - 1/2) = 1/3
    s = fleiss_kappa([[1, 1, 1], [1, 1, 0], [0, 0, 0], [0, 0, 1]])
    assert s.value == pytest.approx(1 / 3)


def test_fleiss_undefined_when_every_code_is_equal():
    s = fleiss_kappa([[1, 1], [1, 1], [1, 1]])
    assert s.value is None and "same value" in s.reason and s.n == 3


def test_cohen_matches_sklearn_and_textbook():
    # Wikipedia "Cohen's kappa" example: 50 proposals, yes/yes 20, yes/no 5, no/yes 10, no/no 15 -> 0.4
    a = [1] * 20 + [1] * 5 + [0] * 10 + [0] * 15
    b = [1] * 20 + [0] * 5 + [1] * 10 + [0] * 15
    assert cohen_kappa(a, b).value == pytest.approx(0.4)
    rng = np.random.default_rng(0)
    for _ in range(20):
        x = rng.integers(0, 2, 30).tolist()
        y = [v if rng.random() < 0.7 else 1 - v for v in x]
        assert cohen_kappa(x, y).value == pytest.approx(cohen_kappa_score(x, y))


def test_cohen_undefined_for_constant_codes_is_not_an_error():
    s = cohen_kappa([0, 0, 0], [0, 0, 0])
    assert s.value is None and s.reason and s.n == 3
    assert cohen_kappa([], []).value is None


def test_krippendorff_alpha_worked_examples():
    # Krippendorff (2011), "Computing Krippendorff's alpha-reliability": nominal data, 4 coders,
    # 12 units, missing values -> alpha = 0.743
    nan = None
    data = [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, nan, nan, nan],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, nan, 3],
        [nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, nan],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, nan],
    ]
    s = krippendorff_alpha(data)
    assert s.value == pytest.approx(0.743, abs=5e-4)
    assert s.n == 11  # unit 12 has a single code: not pairable
    # same paper, binary data, 2 coders, 10 units -> alpha = 0.095
    b = krippendorff_alpha([[0, 1, 0, 0, 0, 0, 0, 0, 1, 0], [1, 1, 1, 0, 0, 1, 0, 0, 0, 0]])
    assert b.value == pytest.approx(0.095, abs=5e-4)


def test_krippendorff_undefined_cases():
    assert krippendorff_alpha([[1, 1, 1], [1, 1, 1]]).value is None
    assert krippendorff_alpha([[1, 0, 1]]).reason == "fewer than two coders"
    assert krippendorff_alpha([[1, None], [None, 0]]).reason.startswith("no unit")


def test_vector_agreement():
    a = [(1, 0, 1), (0, 1, 0), (1, 1, 0), (0, 0, 1)]
    b = [(1, 0, 1), (0, 1, 1), (1, 1, 0), (1, 0, 0)]
    assert exact_match(a, b).value == pytest.approx(0.5)
    assert hamming_loss(a, b).value == pytest.approx(3 / 12)
    assert hamming_agreement(a, b).value == pytest.approx(9 / 12)
    assert exact_match([], []).value is None


def _coders():
    return {
        "ann": {"i1": (1, 0, 0), "i2": (0, 1, 0), "i3": (1, 1, 0), "i4": (0, 0, 1)},
        "bob": {"i1": (1, 0, 0), "i2": (0, 1, 0), "i3": (1, 0, 0), "i4": (0, 0, 1)},
        "llm": {"i1": (0, 1, 0), "i2": (0, 1, 0), "i3": (1, 1, 0)},  # i4: no valid answer
    }


def test_report_pairs_labels_and_missing_items():
    rep = agreement_report(_coders(), ["x", "y", "none"])
    assert rep.n_items == 4 and rep.n_complete == 3
    pairs = {(p.a, p.b): p for p in rep.pairs}
    ab = pairs[("ann", "bob")]
    assert ab.n == 4 and ab.exact_match.value == pytest.approx(0.75)
    assert ab.kappa["x"].value == pytest.approx(1.0)
    assert ab.kappa["y"].value == pytest.approx(cohen_kappa_score([0, 1, 1, 0], [0, 1, 0, 0]))
    assert pairs[("ann", "llm")].n == 3
    x = rep.per_label[0]
    # Fleiss on the 3 complete items, alpha on all 4 with the gap
    assert x.fleiss_kappa.n == 3
    ref = fleiss_kappa([[1, 1, 0], [0, 0, 0], [1, 1, 1]])
    assert x.fleiss_kappa.value == pytest.approx(ref.value)
    assert x.krippendorff_alpha.value == pytest.approx(
        krippendorff_alpha([[1, 0, 1, 0], [1, 0, 1, 0], [0, 0, 1, None]]).value)
    assert x.positives == {"ann": 2, "bob": 2, "llm": 1}
    d = json.loads(json.dumps(rep.to_dict()))
    assert d["pairs"][0]["kappa"]["x"]["value"] == pytest.approx(1.0)


def test_groups_give_human_ceiling_next_to_model_human():
    rep = agreement_report(_coders(), ["x", "y", "none"], groups={"ann": "human", "bob": "human", "llm": "model"})
    ceiling = rep.ceiling
    assert ceiling is not None and ceiling.pairs == 1
    assert ceiling.exact_match.value == pytest.approx(0.75)
    between = next(g for g in rep.group_pairs if {g.a, g.b} == {"human", "model"})
    assert between.pairs == 2
    pairs = {(p.a, p.b): p for p in rep.pairs}
    expect = np.mean([pairs[("ann", "llm")].exact_match.value, pairs[("bob", "llm")].exact_match.value])
    assert between.exact_match.value == pytest.approx(expect)
    assert "human" in rep.group_stats and "model" not in rep.group_stats  # one model: no within-group stats
    with pytest.raises(ValueError):
        agreement_report(_coders(), ["x", "y", "none"], groups={"zed": "human"})


def test_report_rejects_wrong_vector_length():
    with pytest.raises(ValueError):
        agreement_report({"a": {"i": (1, 0)}, "b": {"i": (1, 0, 0)}}, ["x", "y", "z"])


def test_annotator_agreement_matches_data_readme(data_dir, tmp_path):
    labels = data_dir / "labels"
    files = [str(labels / f"annotator_{x}.jsonl") for x in "abc"]
    out = tmp_path / "agree.json"
    res = CliRunner().invoke(app, ["agree", *files, "--json-out", str(out)], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "difficult: per label" in res.output
    d = json.loads(out.read_text())
    easy = d["tasks"]["easy"]
    assert all(p["exact_match"]["value"] == 1.0 for p in easy["pairs"])  # the 10 disagreements are all difficult
    both = {(p["a"], p["b"]): p for p in d["all_tasks_pairs"]}
    # the data README: exact match 0.936 to 0.971, Hamming 0.009 to 0.017 over the 140 items
    assert both[("annotator_b", "annotator_c")]["exact_match"]["value"] == pytest.approx(131 / 140)
    assert both[("annotator_a", "annotator_c")]["exact_match"]["value"] == pytest.approx(136 / 140)
    assert min(p["hamming_loss"]["value"] for p in both.values()) == pytest.approx(0.009, abs=5e-4)
    assert max(p["hamming_loss"]["value"] for p in both.values()) == pytest.approx(0.017, abs=5e-4)
    diff = {r["label"]: r for r in d["tasks"]["difficult"]["per_label"]}
    assert 0.8 < diff["algorithm"]["fleiss_kappa"]["value"] < 1.0


def test_agree_humans_and_errors(data_dir, tmp_path):
    labels = data_dir / "labels"
    a, b, c = (str(labels / f"annotator_{x}.jsonl") for x in "abc")
    runner = CliRunner()
    res = runner.invoke(app, ["agree", a, b, c, "--task", "difficult", "--human", a, "--human", b],
                        env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "human-human (ceiling)" in res.output and "human-model" in res.output
    res = runner.invoke(app, ["agree", a])
    assert res.exit_code != 0
    res = runner.invoke(app, ["agree", a, str(tmp_path / "missing.jsonl")])
    assert res.exit_code != 0 and "no such file" in str(res.exception)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"doi": "10.1/x", "task": "easy", "labels": [1, 0]}\n')
    res = runner.invoke(app, ["agree", a, str(bad)])
    assert res.exit_code != 0 and "bad.jsonl" in str(res.exception)


def test_agree_reads_study_formats(data_dir):
    seed = FIXTURE_DATA / "seed_formats"
    files = [str(seed / "gpt4_effortly_labels_beta.sample.csv"), str(seed / "gemini_effortly_labels_gamma.sample.csv"),
             str(seed / "ReScience_JCDL-23.sample.csv")]
    res = CliRunner().invoke(app, ["agree", *files], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "easy: pairwise" in res.output and "difficult: pairwise" in res.output
