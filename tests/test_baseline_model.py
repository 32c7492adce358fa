"""`baseline --save DIR` writes a model folder of plain arrays; `label --model baseline:DIR --input` labels a
new corpus with it, equal to the fitted model's own predictions; a tampered folder fails with one line
and executes nothing."""

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
    "Training took much longer than reported and we lacked the compute.",
    "",
]


@pytest.fixture(scope="module")
def saved(tmp_path_factory, data_dir):
    import _pytest.monkeypatch

    tmp = tmp_path_factory.mktemp("baseline_model")
    mp = _pytest.monkeypatch.MonkeyPatch()

    class Cap:  # run_console needs capsys; use a minimal stand-in for a module-scoped fixture
        def readouterr(self):
            return type("R", (), {"out": "", "err": ""})()

    code, _, err = run_console(["baseline", "--task", "easy", "--method", "tfidf-logreg", "--folds", "3",
                                "--data-dir", data_dir, "--out", tmp / "runs", "--save", tmp / "model"],
                               Cap(), mp)
    mp.undo()
    assert code == 0, err
    return tmp / "model"


def test_model_folder_is_plain_data(saved):
    names = {p.name for p in saved.iterdir()}
    assert names == {"model.json", "arrays.npz", "vocabulary.json"}
    m = json.loads((saved / "model.json").read_text())
    assert m["method"] == "tfidf-logreg" and m["categories"] == load_codebook("easy").shorts
    assert m["cv"]["k"] == 3 and "macro_f1_mean" in m["cv"] and m["versions"]["scikit-learn"]
    with np.load(saved / "arrays.npz", allow_pickle=False) as z:
        assert all(z[k].dtype != object for k in z.files)


def test_label_with_saved_model_equals_fitted_model(saved, data_dir, tmp_path, capsys, monkeypatch):
    from llmscisci.tasks.baseline import fit_predict

    csv = tmp_path / "new.csv"
    csv.write_text("id,easy\n" + "".join(f"n{i},\"{t}\"\n" for i, t in enumerate(NEW_TEXTS)), encoding="utf-8")
    code, stdout, err = run_console(["label", "--task", "easy", "--model", f"baseline:{saved}", "--input", csv,
                                     "--out", tmp_path / "runs"], capsys, monkeypatch)
    assert code == 0, err
    run = next((tmp_path / "runs").iterdir())
    preds = {p["doi"]: p for p in read_jsonl(run / "predictions.jsonl")}
    assert len(preds) == len(NEW_TEXTS) and preds["n4"]["empty"]
    cb = load_codebook("easy")
    items = [it for it in load_items(cb, data_dir=data_dir) if it.labels is not None]
    expect = fit_predict("tfidf-logreg", [it.text for it in items], np.array([it.labels for it in items]),
                         NEW_TEXTS[:4], cb, seed=2025)
    assert [preds[f"n{i}"]["labels"] for i in range(4)] == expect.tolist()
    assert json.loads((run / "config.json").read_text())["backend"]["method"] == "tfidf-logreg"
    # a codebook whose categories differ is refused
    code, _, err = run_console(["label", "--task", "difficult", "--model", f"baseline:{saved}", "--input", csv,
                                "--text-column", "easy", "--out", tmp_path / "runs2"], capsys, monkeypatch)
    assert code == 2 and "do not match the codebook" in err


def _tamper(saved, tmp_path, edit) -> str:
    bad = tmp_path / "bad"
    shutil.copytree(saved, bad)
    edit(bad)
    return str(bad)


def _label_with(folder, tmp_path, capsys, monkeypatch):
    csv = tmp_path / "new.csv"
    csv.write_text("id,easy\na,some text\n", encoding="utf-8")
    return run_console(["label", "--task", "easy", "--model", f"baseline:{folder}", "--input", csv,
                        "--out", tmp_path / "runs"], capsys, monkeypatch)


def _set(bad, key, value):
    m = json.loads((bad / "model.json").read_text())
    m[key] = value
    (bad / "model.json").write_text(json.dumps(m))


class Boom:
    """Unpickling this creates a file: proof that something was executed."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.mark.parametrize("case", ["builtins_type", "operator_type", "changed_array", "pickled_array", "extra_file_entry"])
def test_tampered_folder_fails_in_one_line_and_runs_nothing(case, saved, tmp_path, capsys, monkeypatch):
    sentinel = tmp_path / "EXECUTED"

    def edit(bad):
        m = json.loads((bad / "model.json").read_text())
        if case == "builtins_type":
            m["types"]["classifier"] = "builtins.eval"
        elif case == "operator_type":
            m["types"]["features"] = "operator.attrgetter"
        elif case == "changed_array":
            with np.load(bad / "arrays.npz") as z:
                arrays = {k: z[k] for k in z.files}
            arrays["coef"] = arrays["coef"] * -1
            np.savez(bad / "arrays.npz", **arrays)
        elif case == "pickled_array":  # even with a matching hash, an object array is never unpickled
            with np.load(bad / "arrays.npz") as z:
                arrays = {k: z[k] for k in z.files}
            obj = np.empty(1, dtype=object)
            obj[0] = Boom(str(sentinel))
            arrays["coef"] = obj
            np.savez(bad / "arrays.npz", **arrays)
            m["files"]["arrays.npz"] = hashlib.sha256((bad / "arrays.npz").read_bytes()).hexdigest()
        elif case == "extra_file_entry":
            m["files"]["model.pkl"] = "0" * 64
        (bad / "model.json").write_text(json.dumps(m))

    bad = _tamper(saved, tmp_path, edit)
    code, _, err = _label_with(bad, tmp_path, capsys, monkeypatch)
    assert code == 2, err
    assert err.strip().count("\n") == 0 and "not a usable model folder" in err
    assert not sentinel.exists()
    assert not (tmp_path / "runs").exists()


def test_coded_sample_with_label_file(data_dir, tmp_path, capsys, monkeypatch):
    code, stdout, err = run_console(["baseline", "--task", "easy", "--method", "tfidf-logreg", "--folds", "3",
                                     "--input", data_dir / "mlrc_reports.csv",
                                     "--labels", data_dir / "labels" / "reference.csv",
                                     "--out", tmp_path / "runs", "--save", tmp_path / "m"], capsys, monkeypatch)
    assert code == 0, err
    m = json.loads((tmp_path / "m" / "model.json").read_text())
    assert m["n_train"] == 70 and m["categories"] == load_codebook("easy").shorts
    code, _, err = run_console(["baseline", "--task", "easy,difficult", "--method", "tfidf-logreg",
                                "--data-dir", data_dir, "--save", tmp_path / "m2"], capsys, monkeypatch)
    assert code == 2 and "--save needs one --task and one --method" in err


@pytest.mark.slow
def test_embed_logreg_names_its_embedding_model(data_dir, tmp_path, capsys, monkeypatch):
    from llmscisci.tasks.baseline import fit_predict

    code, _, err = run_console(["baseline", "--task", "easy", "--method", "embed-logreg", "--folds", "2",
                                "--data-dir", data_dir, "--out", tmp_path / "runs", "--save", tmp_path / "m"],
                               capsys, monkeypatch)
    assert code == 0, err
    m = json.loads((tmp_path / "m" / "model.json").read_text())
    assert m["features"]["embedding_model"].endswith("all-MiniLM-L6-v2") and len(m["features"]["embedding_model_sha256"]) == 64
    assert {p.name for p in (tmp_path / "m").iterdir()} == {"model.json", "arrays.npz"}  # no weights
    csv = tmp_path / "new.csv"
    csv.write_text("id,easy\n" + "".join(f"n{i},\"{t}\"\n" for i, t in enumerate(NEW_TEXTS[:4])), encoding="utf-8")
    code, _, err = run_console(["label", "--task", "easy", "--model", f"baseline:{tmp_path / 'm'}", "--input", csv,
                                "--out", tmp_path / "out"], capsys, monkeypatch)
    assert code == 0, err
    preds = {p["doi"]: p["labels"] for p in read_jsonl(next((tmp_path / "out").iterdir()) / "predictions.jsonl")}
    cb = load_codebook("easy")
    items = [it for it in load_items(cb, data_dir=data_dir) if it.labels is not None]
    expect = fit_predict("embed-logreg", [it.text for it in items], np.array([it.labels for it in items]),
                         NEW_TEXTS[:4], cb, seed=2025)
    assert [preds[f"n{i}"] for i in range(4)] == expect.tolist()
    _set(tmp_path / "m", "features", {**m["features"], "embedding_model_sha256": "0" * 64})
    code, _, err = run_console(["label", "--task", "easy", "--model", f"baseline:{tmp_path / 'm'}", "--input", csv,
                                "--out", tmp_path / "out2"], capsys, monkeypatch)
    assert code == 2 and "is not the one it was fitted with" in err
