"""Multi-label metrics, baselines and the evaluation entry point."""

from __future__ import annotations

import json

import numpy as np
import pytest
from rich.console import Console
from rich.table import Table
from sklearn.metrics import f1_score, hamming_loss as sk_hamming, precision_recall_fscore_support

from llmscisci.data.codebook import load_codebook
from llmscisci.data.validate import is_valid
from llmscisci.metrics.evaluate import INVALID_POLICY, evaluate, format_table
from llmscisci.metrics.multilabel import (
    hamming_loss,
    macro_f1,
    macro_f1_present,
    majority_vector,
    micro_f1,
    per_label,
    prior_predictions,
    scores,
    subset_accuracy,
)

EASY = load_codebook("easy")
NAMES = EASY.shorts

Y_TRUE = np.array([[1, 0, 1, 0, 0], [0, 1, 0, 0, 0], [0, 0, 0, 0, 1], [1, 1, 0, 1, 0]])
Y_PRED = np.array([[1, 0, 0, 0, 0], [0, 1, 0, 0, 0], [1, 0, 0, 0, 0], [1, 1, 0, 1, 0]])


def test_hand_computed_scores():
    # wrong entries: item 1 misses readability, item 3 has code instead of none -> 3 of 20
    assert hamming_loss(Y_TRUE, Y_PRED) == pytest.approx(3 / 20)
    assert subset_accuracy(Y_TRUE, Y_PRED) == pytest.approx(2 / 4)
    # micro: tp = 1+1+0+3 = 5, fp = 1 (code on item 3), fn = 2 (readability, none)
    assert micro_f1(Y_TRUE, Y_PRED) == pytest.approx(2 * 5 / (2 * 5 + 1 + 2))
    pl = per_label(Y_TRUE, Y_PRED, NAMES)
    assert pl["code"] == {"precision": pytest.approx(2 / 3), "recall": 1.0, "f1": pytest.approx(0.8),
                          "support": 2}
    assert pl["artifacts"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 2}
    assert pl["readability"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}  # zero_division=0
    assert pl["none"]["support"] == 1 and pl["none"]["recall"] == 0.0
    # macro: mean of (0.8, 1, 0, 1, 0)
    assert macro_f1(Y_TRUE, Y_PRED) == pytest.approx(2.8 / 5)


def test_macro_f1_present_averages_over_labels_with_reference_positives():
    t = np.array([[1, 0, 0, 0, 0], [0, 1, 0, 0, 0]])
    assert macro_f1(t, t) == pytest.approx(2 / 5)  # three labels absent from the reference score 0
    assert macro_f1_present(t, t) == 1.0
    p = np.array([[1, 0, 1, 0, 0], [0, 0, 0, 0, 0]])  # a false positive on a label the reference lacks
    assert macro_f1_present(t, p) == pytest.approx((1 + 0) / 2)  # ... is not averaged in: code 1, artifacts 0
    assert macro_f1_present(np.zeros((2, 5), dtype=int), np.zeros((2, 5), dtype=int)) is None
    s = scores(t, p, NAMES)
    assert s["macro_f1_left_out"] == ["readability", "setup", "none"]
    assert [s["per_label"][k]["support"] for k in NAMES] == [1, 1, 0, 0, 0]
    assert s["macro_f1"] == pytest.approx(1 / 5) and s["macro_f1_present"] == pytest.approx(1 / 2)


def test_perfect_and_all_wrong():
    assert hamming_loss(Y_TRUE, Y_TRUE) == 0.0
    assert subset_accuracy(Y_TRUE, Y_TRUE) == 1.0
    assert micro_f1(Y_TRUE, Y_TRUE) == 1.0
    flipped = 1 - Y_TRUE
    assert hamming_loss(Y_TRUE, flipped) == 1.0
    assert subset_accuracy(Y_TRUE, flipped) == 0.0
    assert micro_f1(Y_TRUE, flipped) == 0.0


@pytest.mark.parametrize("seed", range(5))
def test_agrees_with_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    t = rng.integers(0, 2, size=(40, 5))
    p = rng.integers(0, 2, size=(40, 5))
    p[:, 2] = 0  # a label never predicted: exercises zero_division
    assert hamming_loss(t, p) == pytest.approx(sk_hamming(t, p))
    assert subset_accuracy(t, p) == pytest.approx(np.mean((t == p).all(axis=1)))
    assert micro_f1(t, p) == pytest.approx(f1_score(t, p, average="micro", zero_division=0))
    assert macro_f1(t, p) == pytest.approx(f1_score(t, p, average="macro", zero_division=0))
    prec, rec, f1, sup = precision_recall_fscore_support(t, p, average=None, zero_division=0)
    pl = per_label(t, p, NAMES)
    for i, name in enumerate(NAMES):
        assert pl[name] == {"precision": pytest.approx(prec[i]), "recall": pytest.approx(rec[i]),
                            "f1": pytest.approx(f1[i]), "support": int(sup[i])}


def test_scores_dict_and_bad_shapes():
    s = scores(Y_TRUE, Y_PRED, NAMES)
    assert set(s) == {"hamming_loss", "subset_accuracy", "micro_f1", "macro_f1", "macro_f1_present",
                      "macro_f1_left_out", "n", "per_label"}
    assert s["n"] == 4 and list(s["per_label"]) == NAMES
    json.dumps(s)  # plain Python numbers
    empty = scores(np.zeros((0, 5), dtype=int), np.zeros((0, 5), dtype=int), NAMES)
    assert empty["n"] == 0 and empty["micro_f1"] is None
    with pytest.raises(ValueError):
        hamming_loss(Y_TRUE, Y_PRED[:2])
    with pytest.raises(ValueError):
        hamming_loss(Y_TRUE, Y_PRED * 2)
    with pytest.raises(ValueError):
        per_label(Y_TRUE, Y_PRED, NAMES[:3])


# ------------------------------------------------------------------ baselines


def test_majority_vector():
    train = np.array([[1, 0, 1, 0, 0], [1, 1, 0, 0, 0], [1, 0, 1, 0, 0], [0, 0, 0, 0, 1]])
    # code 3/4 on; readability 2/4 is a tie: off
    assert majority_vector(train, none_index=4).tolist() == [1, 0, 0, 0, 0]
    assert majority_vector(np.vstack([train, [[0, 0, 1, 0, 0]]]), none_index=4).tolist() == [1, 0, 1, 0, 0]
    # no label above half -> all zero -> the none rule gives none
    sparse = np.array([[1, 0, 0, 0, 0], [0, 1, 0, 0, 0], [0, 0, 1, 0, 0]])
    assert majority_vector(sparse, none_index=4).tolist() == [0, 0, 0, 0, 1]
    assert majority_vector(sparse, none_index=-1).tolist() == [0, 0, 0, 0, 1]
    assert majority_vector(sparse).tolist() == [0, 0, 0, 0, 0]  # a codebook without none: no policy
    assert majority_vector(sparse, none_index=0).tolist() == [1, 0, 0, 0, 0]


def test_prior_predictions_seeded_rates_and_none_rule():
    rng = np.random.default_rng(0)
    train = (rng.random((200, 5)) < [0.7, 0.4, 0.6, 0.3, 0.0]).astype(int)
    a = prior_predictions(train, 4000, seed=7, none_index=4)
    b = prior_predictions(train, 4000, seed=7, none_index=4)
    c = prior_predictions(train, 4000, seed=8, none_index=4)
    assert a.shape == (4000, 5) and np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.abs(a[:, :4].mean(axis=0) - train[:, :4].mean(axis=0)).max() < 0.04
    assert all(is_valid(row, 4) for row in a)  # all-zero draws became none, none never with others
    assert a[:, 4].sum() > 0


def test_baselines_empty_train_is_an_error():
    with pytest.raises(ValueError):
        majority_vector(np.zeros((0, 5), dtype=int))
    with pytest.raises(ValueError):
        prior_predictions(np.zeros((0, 5), dtype=int), 3, seed=1)


# ------------------------------------------------------------------ evaluate


def _rec(doi, split, ref, labels, valid=True, repaired=False):
    return {"doi": doi, "task": "easy", "split": split, "reference": ref, "labels": labels, "valid": valid,
            "repaired": repaired}


def _records():
    return [
        _rec("d1", "train", [1, 0, 0, 0, 0], [1, 0, 0, 0, 0]),
        _rec("d2", "train", [1, 0, 1, 0, 0], [1, 0, 1, 0, 0], repaired=True),
        _rec("d3", "train", [1, 1, 0, 0, 0], None, valid=False),
        _rec("d4", "test", [0, 0, 1, 0, 0], [0, 0, 1, 0, 0]),
        _rec("d5", "test", [0, 0, 0, 1, 0], [1, 0, 0, 0, 0]),
        _rec("d6", "test", None, [0, 1, 0, 0, 0]),  # no reference: counted, not scored
    ]


def test_evaluate_rates_subsets_and_invalid_policy():
    m = evaluate(_records(), EASY)
    assert m["n_items"] == 6 and m["n_scored"] == 5
    assert m["invalid_rate"] == pytest.approx(1 / 6)
    assert m["repaired_rate"] == pytest.approx(1 / 6)
    assert m["invalid_policy"] == INVALID_POLICY
    assert m["all"]["n"] == 5 and m["test"]["n"] == 2 and m["valid_only"]["n"] == 4
    # all: d1, d2, d4 right; d3 invalid scored as all zeros (wrong); d5 wrong
    assert m["all"]["subset_accuracy"] == pytest.approx(3 / 5)
    assert m["all"]["hamming_loss"] == pytest.approx((2 + 2) / 25)
    assert m["test"]["subset_accuracy"] == pytest.approx(1 / 2)
    assert m["train"]["n"] == 3 and m["train"]["subset_accuracy"] == pytest.approx(2 / 3)  # d3 invalid
    assert m["valid_only"]["subset_accuracy"] == pytest.approx(3 / 4)
    assert set(m["all"]["per_label"]) == set(NAMES)
    json.dumps(m)


def test_evaluate_invalid_scores_as_all_zero():
    recs = [_rec("d1", "train", [1, 0, 0, 0, 0], [1, 0, 0, 0, 0], valid=False),  # labels ignored when invalid
            _rec("d2", "test", [0, 0, 0, 0, 1], None, valid=False)]
    m = evaluate(recs, EASY)
    assert m["invalid_rate"] == 1.0
    assert m["all"]["subset_accuracy"] == 0.0  # even a `none` reference: all zeros is never right
    assert m["all"]["hamming_loss"] == pytest.approx(2 / 10)
    assert m["valid_only"]["n"] == 0


def test_baselines_fit_on_train_only():
    """Changing the test references changes nothing the baselines predict: no test label leaks."""
    base = [_rec(f"t{i}", "train", [1, 0, 1, 0, 0] if i % 3 else [0, 1, 0, 0, 0], [1, 0, 0, 0, 0])
            for i in range(12)]
    test_a = [_rec(f"s{i}", "test", [0, 0, 0, 1, 0], [0, 0, 0, 1, 0]) for i in range(6)]
    test_b = [_rec(f"s{i}", "test", [0, 1, 0, 1, 0], [0, 0, 0, 1, 0]) for i in range(6)]
    ma, mb = evaluate(base + test_a, EASY), evaluate(base + test_b, EASY)
    assert ma["baselines"]["n_train"] == 12
    # the test items all say setup; the train majority ignores them
    assert ma["baselines"]["majority"]["vector"] == [1, 0, 1, 0, 0]
    assert mb["baselines"]["majority"]["vector"] == ma["baselines"]["majority"]["vector"]
    # the prior baseline's test predictions are identical too: its only input is the train prevalence
    prior = prior_predictions(np.array([r["reference"] for r in base]), 18, seed=2025, none_index=4)
    assert not prior[:, 3].any()  # setup never seen in train -> never predicted
    assert ma["baselines"]["prior"]["test"]["per_label"]["setup"]["recall"] == 0.0
    assert ma["baselines"]["majority"]["test"]["subset_accuracy"] == 0.0
    # train references supplied explicitly replace those of the records
    mc = evaluate(base + test_a, EASY, train_reference=[[0, 0, 0, 1, 0]] * 3)
    assert mc["baselines"]["majority"]["vector"] == [0, 0, 0, 1, 0] and mc["baselines"]["n_train"] == 3


def test_baselines_seeded():
    recs = [_rec(f"t{i}", "train" if i < 30 else "test", [1, i % 2, 0, 0, 0], [1, 0, 0, 0, 0])
            for i in range(40)]
    a, b = evaluate(recs, EASY, seed=1), evaluate(recs, EASY, seed=1)
    assert a["baselines"]["prior"] == b["baselines"]["prior"]


def test_evaluate_without_train_items_and_wrong_task():
    m = evaluate([_rec("d1", "test", [1, 0, 0, 0, 0], [1, 0, 0, 0, 0])], EASY)
    assert m["baselines"]["majority"] is None and m["baselines"]["n_train"] == 0
    assert evaluate([], EASY)["n_items"] == 0
    with pytest.raises(ValueError):
        evaluate([{**_rec("d1", "test", [1, 0, 0, 0, 0], [1, 0, 0, 0, 0]), "task": "difficult"}], EASY)


def test_format_table():
    m = evaluate(_records() + [_rec("d7", "train", [0, 0, 1, 0, 0], [0, 0, 1, 0, 0])], EASY)
    table = format_table(m)
    assert isinstance(table, Table)
    console = Console(record=True, width=100)
    console.print(table)
    out = console.export_text()
    for word in ("Hamming", "subset accuracy", "micro F1", "macro F1", "test", "maj.", "prior", "invalid"):
        assert word in out
    assert f"{m['all']['micro_f1']:.3f}" in out
    assert f"{m['baselines']['majority']['test']['micro_f1']:.3f}" in out
    # missing baselines render as dashes, not an error
    console.print(format_table(evaluate([_rec("d1", "test", [1, 0, 0, 0, 0], [1, 0, 0, 0, 0])], EASY)))


def test_table_and_json_say_what_macro_f1_averages_over():
    m = evaluate(_records(), EASY)
    assert m["zero_division"].startswith("F1, precision and recall are 0 where undefined")
    # all: references of d1..d5 -> code 3, artifacts 1, readability 2, setup 1, none 0
    assert [m["all"]["per_label"][k]["support"] for k in NAMES] == [3, 1, 2, 1, 0]
    assert m["all"]["macro_f1_left_out"] == ["none"]
    assert m["all"]["macro_f1_present"] > m["all"]["macro_f1"]
    console = Console(record=True, width=80)
    console.print(format_table(m))
    out = console.export_text()
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "macro F1 present*" in out and f"{m['all']['macro_f1_present']:.3f}" in out
    text = " ".join(out.split())  # the caption wraps
    assert "support on all (reference positives): code 3, artifacts 1, readability 2, setup 1, none 0" in text
    assert "fewer than 5 positives (unstable F1): code 3, artifacts 1, readability 2, setup 1" in text
    assert "macro F1 present* on all leaves out (0 positives): none" in text and "zero_division=0" in text
