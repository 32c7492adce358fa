"""`baseline --method llm-states` (a local LM's mean-pooled hidden states + logistic regression): saved
as plain data, loaded by `label --model baseline:DIR` on a corpus and on the study data with the same
predictions as the fitted model; its embeddings cached on disk; distillation (`--labels RUN_DIR`)
learns a labelling run's answers and the saved model names that run. A tiny random local model keeps
this fast; one slow test uses the embedded model."""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest
from console import run_console

from llmscisci.data import load_codebook, load_items
from llmscisci.runs import read_jsonl

NEW_TEXTS = [
    "The authors released their code on GitHub and it ran out of the box.",
    "Hyperparameters were missing and the datasets could not be downloaded.",
    "Everything was clear; the paper was well written and easy to follow.",
]


class _Cap:  # run_console needs capsys; a stand-in for module-scoped fixtures
    def readouterr(self):
        return type("R", (), {"out": "", "err": ""})()


def _console(args):
    import _pytest.monkeypatch

    mp = _pytest.monkeypatch.MonkeyPatch()
    try:
        return run_console(args, _Cap(), mp)
    finally:
        mp.undo()


@pytest.fixture(scope="module")
def saved(tmp_path_factory, tiny_model_dir, data_dir):
    tmp = tmp_path_factory.mktemp("states_model")
    code, _, err = _console(["baseline", "--task", "easy", "--method", "llm-states", "--states-model", tiny_model_dir,
                             "--folds", "3", "--data-dir", data_dir, "--out", tmp / "runs", "--save", tmp / "model"])
    assert code == 0, err
    return tmp / "model"


def _study(data_dir, task="easy"):
    cb = load_codebook(task)
    return cb, [it for it in load_items(cb, data_dir=data_dir) if it.labels is not None]


def _expected(tiny_model_dir, data_dir, texts):
    """What the fitted classifier predicts for `texts` (fitted on all 70 reports, as --save does)."""
    from llmscisci.tasks.baseline import fit_predict
    from llmscisci.tasks.llm_states import StatesEmbedder

    cb, items = _study(data_dir)
    return fit_predict("llm-states", [it.text for it in items], np.array([it.labels for it in items]), texts, cb,
                       seed=2025, states=StatesEmbedder(str(tiny_model_dir))).tolist()


def test_saved_folder_names_its_states_model_and_holds_plain_arrays(saved, tiny_model_dir):
    from llmscisci.tasks.llm_states import model_fingerprint

    assert {p.name for p in saved.iterdir()} == {"model.json", "arrays.npz"}  # never the LM's weights
    m = json.loads((saved / "model.json").read_text())
    assert m["method"] == "llm-states" and m["types"]["features"] == "transformers.AutoModelForCausalLM"
    assert m["features"]["states_model"] == str(tiny_model_dir.resolve())
    assert m["features"]["states_model_sha256"] == model_fingerprint(str(tiny_model_dir))
    assert m["dim"] == 64 and "taught_by" not in m  # the tiny model's width; reference labels taught it
    with np.load(saved / "arrays.npz", allow_pickle=False) as z:
        assert z["coef"].shape == (5, 64) and all(z[k].dtype != object for k in z.files)


def test_label_with_saved_states_model_on_a_corpus_and_on_the_study_data(saved, tiny_model_dir, data_dir, tmp_path,
                                                                           capsys, monkeypatch):
    csv = tmp_path / "new.csv"
    csv.write_text("id,easy\n" + "".join(f"n{i},\"{t}\"\n" for i, t in enumerate(NEW_TEXTS)), encoding="utf-8")
    code, _, err = run_console(["label", "--task", "easy", "--model", f"baseline:{saved}", "--input", csv,
                                "--out", tmp_path / "corpus"], capsys, monkeypatch)
    assert code == 0, err
    run = next((tmp_path / "corpus").iterdir())
    preds = {p["doi"]: p["labels"] for p in read_jsonl(run / "predictions.jsonl")}
    assert [preds[f"n{i}"] for i in range(3)] == _expected(tiny_model_dir, data_dir, NEW_TEXTS)

    # the study data (no --input): an ordinary run folder, scored against the references
    code, out, err = run_console(["label", "--task", "easy", "--model", f"baseline:{saved}", "--split", "test",
                                  "--data-dir", data_dir, "--out", tmp_path / "study", "--json"], capsys, monkeypatch)
    assert code == 0, err
    res = json.loads(out)
    run = tmp_path / "study" / res["run_dir"].rsplit("/", 1)[-1]
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["model"] == f"baseline:{saved}" and cfg["backend"]["method"] == "llm-states"
    preds = read_jsonl(run / "predictions.jsonl")
    cb, items = _study(data_dir)
    test = {it.doi: it for it in items if it.split == "test"}
    assert len(preds) == len(test) == res["metrics"]["test"]["n"]
    assert all(p["reference"] == list(test[p["doi"]].labels) for p in preds)
    expect = _expected(tiny_model_dir, data_dir, [test[p["doi"]].text for p in preds])
    assert [p["labels"] for p in preds] == expect
    assert 0 <= res["metrics"]["test"]["macro_f1"] <= 1 and (run / "predictions.csv").is_file()
    # fitted on all 70 reports, so the 14 scored were training items: the run says so
    assert cfg["seen_in_training"] == len(test)
    assert any(f"{len(test)} of the {len(test)} items labelled were in the classifier's training data" in w
               for w in res["metrics"]["warnings"])


def test_study_data_refuses_what_a_classifier_cannot_do(saved, data_dir, tmp_path, capsys, monkeypatch):
    base = ["label", "--task", "easy", "--model", f"baseline:{saved}", "--data-dir", data_dir, "--out", tmp_path]
    code, _, err = run_console([*base, "--shots", "2"], capsys, monkeypatch)
    assert code == 2 and "--shots is for language models" in err
    code, _, err = run_console([*base, "--batch"], capsys, monkeypatch)
    assert code == 2 and "not a saved classifier" in err
    code, _, err = run_console(["label", "--task", "easy,difficult", "--model", f"baseline:{saved}", "--data-dir",
                                data_dir, "--out", tmp_path], capsys, monkeypatch)
    assert code == 2 and "do not match the codebook" in err
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("case", ["changed_array", "other_weights", "missing_model", "other_settings"])
def test_tampered_states_folder_fails_in_one_line(case, saved, tiny_model_dir, tmp_path, capsys, monkeypatch):
    bad = tmp_path / "bad"
    shutil.copytree(saved, bad)
    m = json.loads((bad / "model.json").read_text())
    if case == "changed_array":
        with np.load(bad / "arrays.npz") as z:
            arrays = {k: z[k] for k in z.files}
        np.savez(bad / "arrays.npz", **(arrays | {"intercept": arrays["intercept"] + 1}))
        want = "arrays.npz does not match its SHA-256"
    elif case == "other_weights":  # the same folder name, other files: noticed by the fingerprint
        other = tmp_path / "tiny"
        shutil.copytree(tiny_model_dir, other)
        (other / "generation_config.json").write_text("{}")
        m["features"]["states_model"] = str(other)
        want = "is not the one it was fitted with"
    elif case == "missing_model":
        m["features"]["states_model"] = str(tmp_path / "gone")
        want = "cannot be found here"
    else:
        m["features"]["max_tokens"] = 4096
        want = "unsupported llm-states features"
    (bad / "model.json").write_text(json.dumps(m))
    csv = tmp_path / "new.csv"
    csv.write_text("id,easy\na,some text\n", encoding="utf-8")
    code, _, err = run_console(["label", "--task", "easy", "--model", f"baseline:{bad}", "--input", csv,
                                "--out", tmp_path / "runs"], capsys, monkeypatch)
    assert code == 2 and err.strip().count("\n") == 0 and "not a usable model folder" in err and want in err, err
    assert not (tmp_path / "runs").exists()


def test_embeddings_are_cached_on_disk(tiny_model_dir, data_dir, tmp_path, capsys, monkeypatch):
    from llmscisci.tasks.llm_states import StatesEmbedder

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    calls = {"forward": 0, "texts": 0, "load": 0}
    forward, load = StatesEmbedder._forward, StatesEmbedder._load

    def counting_forward(self, texts):
        calls["forward"] += 1
        calls["texts"] += len(texts)
        return forward(self, texts)

    def counting_load(self):
        calls["load"] += self._loaded is None
        return load(self)

    monkeypatch.setattr(StatesEmbedder, "_forward", counting_forward)
    monkeypatch.setattr(StatesEmbedder, "_load", counting_load)
    args = ["baseline", "--task", "easy", "--method", "llm-states", "--states-model", tiny_model_dir, "--folds", "2",
            "--data-dir", data_dir]
    code, _, err = run_console([*args, "--out", tmp_path / "a"], capsys, monkeypatch)
    assert code == 0, err
    n_texts = len({it.text for it in _study(data_dir)[1]})
    assert calls["texts"] == n_texts and calls["load"] == 1  # each distinct text once, across all folds
    files = list((tmp_path / "cache" / "llmscisci" / "llm-states").rglob("*.npy"))
    assert len(files) == n_texts and np.load(files[0], allow_pickle=False).shape == (64,)
    calls.update(forward=0, texts=0, load=0)
    code, _, err = run_console([*args, "--out", tmp_path / "b"], capsys, monkeypatch)
    assert code == 0, err
    assert calls == {"forward": 0, "texts": 0, "load": 0}  # a second run never loads the model
    a, b = (json.loads(next((tmp_path / d).iterdir()).joinpath("metrics.json").read_text()) for d in "ab")
    assert a["all"]["macro_f1"] == b["all"]["macro_f1"]


def test_states_options_checked_before_anything_loads(data_dir, tmp_path, capsys, monkeypatch):
    code, _, err = run_console(["baseline", "--task", "easy", "--method", "tfidf-logreg", "--states-model",
                                "smollm2-135m", "--data-dir", data_dir, "--out", tmp_path], capsys, monkeypatch)
    assert code == 2 and "--states-model goes with --method llm-states" in err
    code, _, err = run_console(["baseline", "--task", "easy", "--method", "llm-states", "--states-model",
                                tmp_path / "nowhere", "--data-dir", data_dir, "--out", tmp_path], capsys, monkeypatch)
    assert code == 2 and "--states-model" in err and "does not exist" in err
    assert not any(tmp_path.iterdir())


# --------------------------------------------------------------------------- distillation
def _fake_run(folder, cb, labels: dict, *, invalid=(), streamed=None, model="openai:gpt-4o-mini"):
    """A labelling run folder as `label` writes it: config.json and predictions.jsonl."""
    folder.mkdir(parents=True)
    cfg = {"kind": "label", "task": cb.task, "variant": "structured", "model": model, "codebook": cb.model_dump(),
           "hash": hashlib.sha256(json.dumps(sorted(labels.items())).encode()).hexdigest(), "data_source": "bundled"}
    if streamed:
        cfg |= {"streamed": True, "data_source": str(streamed), "input": {"path": str(streamed), "id_column": "id"},
                "items": {"id_column": "id", "text": "abstract"}}
    (folder / "config.json").write_text(json.dumps(cfg))
    rows = [{"doi": k, "task": cb.task, "labels": list(v), "valid": True, "raw": json.dumps(v)} for k, v in labels.items()]
    rows += [{"doi": k, "task": cb.task, "labels": None, "valid": False, "raw": "?"} for k in invalid]
    (folder / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def _teacher_labels(items, flip: bool = False):
    """A teacher that marks `code` when the text says "code" (or, flipped, when it does not)."""
    out = {}
    for it in items:
        says = "code" in it.text.lower()
        row = [int(says != flip), 1, 0, 0, 0]
        out[it.doi] = row
    return out


def test_distil_from_a_run_on_the_study_data(data_dir, tmp_path, capsys, monkeypatch):
    cb, items = _study(data_dir)
    labels = _teacher_labels(items)
    invalid = [items[0].doi]
    labels.pop(items[0].doi)
    run = _fake_run(tmp_path / "teacher", cb, labels, invalid=invalid)
    code, _, err = run_console(["baseline", "--labels", run, "--method", "tfidf-logreg", "--folds", "3",
                                "--out", tmp_path / "runs", "--save", tmp_path / "m1"], capsys, monkeypatch)
    assert code == 0, err
    m1 = json.loads((tmp_path / "m1" / "model.json").read_text())
    taught = m1["taught_by"]
    assert taught["run"] == str(run.resolve()) and taught["run_hash"] == json.loads((run / "config.json").read_text())["hash"]
    assert taught["n_items"] == len(items) - 1 == m1["n_train"] and taught["n_left_out"] == 1
    assert taught["model"] == "openai:gpt-4o-mini"
    brun = next((tmp_path / "runs").iterdir())
    preds = read_jsonl(brun / "predictions.jsonl")
    assert {p["doi"]: p["reference"] for p in preds} == labels  # scored against the teacher's answers
    assert json.loads((brun / "config.json").read_text())["labels_from"] == taught

    # other answers from the teacher: another run folder, another fitted model
    flipped = {k: v for k, v in _teacher_labels(items, flip=True).items() if k in labels}
    run2 = _fake_run(tmp_path / "teacher2", cb, flipped)
    code, _, err = run_console(["baseline", "--labels", run2, "--method", "tfidf-logreg", "--folds", "3",
                                "--out", tmp_path / "runs", "--save", tmp_path / "m2"], capsys, monkeypatch)
    assert code == 0, err
    with np.load(tmp_path / "m1" / "arrays.npz") as a, np.load(tmp_path / "m2" / "arrays.npz") as b:
        assert not np.allclose(a["coef"][0], b["coef"][0])
        np.testing.assert_allclose(a["coef"][0], -b["coef"][0], atol=1e-6)  # the code column learnt backwards
    assert len({p.name for p in (tmp_path / "runs").iterdir()}) == 2  # its own run folder, not the first one's

    # a teacher run on the train split only: its student scored on the test split has seen none of it
    train_only = _fake_run(tmp_path / "teacher3", cb, {it.doi: labels[it.doi] for it in items
                                                     if it.split == "train" and it.doi in labels})
    code, _, err = run_console(["baseline", "--labels", train_only, "--method", "tfidf-logreg", "--folds", "3",
                                "--out", tmp_path / "runs", "--save", tmp_path / "m3"], capsys, monkeypatch)
    assert code == 0, err
    code, out, err = run_console(["label", "--task", "easy", "--model", f"baseline:{tmp_path / 'm3'}", "--split",
                                  "test", "--out", tmp_path / "scored", "--json"], capsys, monkeypatch)
    assert code == 0, err
    res = json.loads(out)
    assert res["metrics"]["test"]["n"] == 14 and not res["metrics"].get("warnings")
    assert json.loads((tmp_path / "scored" / res["run_dir"].rsplit("/", 1)[-1] / "config.json").read_text())[
        "seen_in_training"] == 0

    # a label file is still for --input; a run whose items are not in the data says which
    code, _, err = run_console(["baseline", "--labels", data_dir / "labels" / "reference.csv", "--out", tmp_path],
                               capsys, monkeypatch)
    assert code == 2 and "a label file goes with --input" in err
    stray = _fake_run(tmp_path / "stray", cb, {"10.9999/nowhere": [1, 0, 0, 0, 0], **labels})
    code, _, err = run_console(["baseline", "--labels", stray, "--out", tmp_path / "x"], capsys, monkeypatch)
    assert code == 2 and "'10.9999/nowhere'" in err and "not in" in err
    code, _, err = run_console(["baseline", "--labels", run, "--task", "difficult", "--out", tmp_path / "x"],
                               capsys, monkeypatch)
    assert code == 2 and "the run labels task 'easy'" in err


def test_distil_llm_states_from_a_corpus_run_and_label_the_rest(tiny_model_dir, tmp_path, capsys, monkeypatch):
    book = load_codebook("easy")
    words = ["code", "data", "paper", "GPU", "method", "tables"]
    rows = [(f"w{i}", f"Report {i}: the {words[i % 6]} was {'shared' if i % 3 else 'missing'} ({i}).") for i in range(30)]
    corpus = tmp_path / "corpus.csv"
    corpus.write_text("id,abstract\n" + "".join(f"{i},\"{t}\"\n" for i, t in rows), encoding="utf-8")
    from llmscisci.data.items import Item

    sample = [Item(i, "easy", t) for i, t in rows[:20]]  # the teacher labelled 20 of the 30
    labels = _teacher_labels(sample)
    run = _fake_run(tmp_path / "teacher", book, labels, streamed=corpus)
    code, _, err = run_console(["baseline", "--labels", run, "--input", corpus, "--method", "llm-states",
                                "--states-model", tiny_model_dir, "--folds", "2", "--out", tmp_path / "runs",
                                "--save", tmp_path / "student"], capsys, monkeypatch)
    assert code == 0, err
    m = json.loads((tmp_path / "student" / "model.json").read_text())
    assert m["taught_by"]["n_items"] == 20 and m["taught_by"]["run"] == str(run.resolve())
    # the saved student labels the corpus; its answers on the taught items equal the fitted model's
    code, _, err = run_console(["label", "--task", "easy", "--model", f"baseline:{tmp_path / 'student'}",
                                "--input", corpus, "--text-column", "abstract", "--out", tmp_path / "lab"],
                               capsys, monkeypatch)
    assert code == 0, err
    preds = {p["doi"]: p["labels"] for p in read_jsonl(next((tmp_path / "lab").iterdir()) / "predictions.jsonl")}
    assert len(preds) == 30
    from llmscisci.tasks.baseline import fit_predict
    from llmscisci.tasks.llm_states import StatesEmbedder

    texts = [t for _, t in rows]
    expect = fit_predict("llm-states", [it.text for it in sample], np.array(list(labels.values())), texts, book,
                         seed=2025, states=StatesEmbedder(str(tiny_model_dir)))
    assert [preds[i] for i, _ in rows] == expect.tolist()
    # without --input the run's own corpus is read again (the same taught items, the same hash)
    code, _, err = run_console(["baseline", "--labels", run, "--method", "llm-states", "--states-model",
                                tiny_model_dir, "--folds", "2", "--out", tmp_path / "runs"], capsys, monkeypatch)
    assert code == 0, err
    assert len(list((tmp_path / "runs").iterdir())) == 1


def _same_fit(cli_runs, api_run, cli_model, api_model):
    """The API's run folder is the command's (same name, config.json, predictions), its model.json the same."""
    [cli_run] = list(cli_runs.iterdir())
    assert api_run.path.name == cli_run.name
    for name in ("config.json", "predictions.jsonl"):
        assert (api_run.path / name).read_text() == (cli_run / name).read_text()
    assert json.loads((api_model / "model.json").read_text()) == json.loads((cli_model / "model.json").read_text())
    with np.load(cli_model / "arrays.npz") as a, np.load(api_model / "arrays.npz") as b:
        assert sorted(a.files) == sorted(b.files) and all(np.array_equal(a[k], b[k]) for k in a.files)


def test_api_llm_states_equals_the_command(tiny_model_dir, data_dir, tmp_path, capsys, monkeypatch):
    import llmscisci as ls

    code, _, err = run_console(["baseline", "--task", "easy", "--method", "llm-states", "--states-model",
                                tiny_model_dir, "--folds", "2", "--data-dir", data_dir, "--out", tmp_path / "cli",
                                "--save", tmp_path / "m_cli"], capsys, monkeypatch)
    assert code == 0, err
    run = ls.baseline(task="easy", method="llm-states", states_model=str(tiny_model_dir), folds=2, data_dir=data_dir,
                      out=tmp_path / "api", save=tmp_path / "m_api")
    _same_fit(tmp_path / "cli", run, tmp_path / "m_cli", tmp_path / "m_api")
    assert json.loads((tmp_path / "m_api" / "model.json").read_text())["method"] == "llm-states"
    from llmscisci.errors import UserError

    with pytest.raises(UserError, match="--states-model goes with --method llm-states"):
        ls.baseline(method="majority", states_model=str(tiny_model_dir), out=tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_api_distils_a_run_as_the_command_does(data_dir, tmp_path, capsys, monkeypatch):
    import llmscisci as ls
    from llmscisci.errors import UserError

    cb, items = _study(data_dir)
    run = _fake_run(tmp_path / "teacher", cb, _teacher_labels(items))
    code, _, err = run_console(["baseline", "--labels", run, "--method", "tfidf-logreg", "--folds", "3",
                                "--out", tmp_path / "cli", "--save", tmp_path / "m_cli"], capsys, monkeypatch)
    assert code == 0, err
    fit = ls.baseline(labels=run, method="tfidf-logreg", folds=3, out=tmp_path / "api", save=tmp_path / "m_api")
    _same_fit(tmp_path / "cli", fit, tmp_path / "m_cli", tmp_path / "m_api")
    assert fit.config["labels_from"]["run"] == str(run.resolve())  # learnt from the run, not the references
    with pytest.raises(UserError, match="the run labels task 'easy', not 'difficult'"):
        ls.baseline(labels=run, task="difficult", out=tmp_path / "x")


@pytest.mark.slow
def test_llm_states_with_the_embedded_model(embedded_model_dir, data_dir, tmp_path, capsys, monkeypatch):
    """The default states model end to end on a small coded sample: fit, save, label new texts."""
    import pandas as pd

    from llmscisci.tasks.baseline import fit_predict

    cb, items = _study(data_dir)
    sample = items[:12]
    coded = tmp_path / "coded.csv"
    pd.DataFrame([{"id": it.doi, "easy": it.text[:600], **dict(zip(cb.shorts, it.labels))} for it in sample]).to_csv(
        coded, index=False)
    code, _, err = run_console(["baseline", "--task", "easy", "--method", "llm-states", "--folds", "2", "--input",
                                coded, "--out", tmp_path / "runs", "--save", tmp_path / "m"], capsys, monkeypatch)
    assert code == 0, err
    m = json.loads((tmp_path / "m" / "model.json").read_text())
    assert m["features"]["states_model"] == "smollm2-135m" and m["dim"] == 576
    csv = tmp_path / "new.csv"
    csv.write_text("id,easy\n" + "".join(f"n{i},\"{t}\"\n" for i, t in enumerate(NEW_TEXTS)), encoding="utf-8")
    code, _, err = run_console(["label", "--task", "easy", "--model", f"baseline:{tmp_path / 'm'}", "--input", csv,
                                "--out", tmp_path / "out"], capsys, monkeypatch)
    assert code == 0, err
    preds = {p["doi"]: p["labels"] for p in read_jsonl(next((tmp_path / "out").iterdir()) / "predictions.jsonl")}
    expect = fit_predict("llm-states", [it.text[:600] for it in sample], np.array([it.labels for it in sample]),
                         NEW_TEXTS, cb, seed=2025)
    assert [preds[f"n{i}"] for i in range(3)] == expect.tolist()
