"""Human coding round trip (`llmscisci code export|import`), the sampling designs, Label Studio files,
`llmscisci prevalence` end to end, and one-line errors for bad input."""

from __future__ import annotations

import csv
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from console import run_console as run
from llmscisci.data.codebook import load_codebook
from llmscisci.data.labelfiles import load_labels
from llmscisci.metrics.agreement import agreement_report
from llmscisci.coding import (
    disagreement,
    import_coded,
    load_run,
    pps_probabilities,
    stratified_probabilities,
    stratum_keys,
    systematic_sample,
)

EASY = load_codebook("easy")




def error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith("error: ")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def annotator(data_dir: Path, name: str, task: str = "easy") -> dict[str, list[int]]:
    out = {}
    for line in (data_dir / "labels" / f"annotator_{name}.jsonl").read_text("utf-8").splitlines():
        rec = json.loads(line)
        if rec["task"] == task:
            out[rec["doi"]] = rec["labels"]
    return out


def make_run(folder: Path, data_dir: Path, labels: dict[str, list[int] | None], model: str = "fake") -> Path:
    """A labelling run folder as `llmscisci label` writes it (config.json + predictions.jsonl)."""
    folder.mkdir(parents=True)
    cfg = {"kind": "label", "task": "easy", "variant": "structured", "model": model,
           "codebook": EASY.model_dump(), "hash": f"h-{model}", "data_source": str(data_dir)}
    (folder / "config.json").write_text(json.dumps(cfg), "utf-8")
    with (folder / "predictions.jsonl").open("w", encoding="utf-8") as fh:
        for doi, vec in labels.items():
            fh.write(json.dumps({"doi": doi, "task": "easy", "split": "train", "labels": vec,
                                 "valid": vec is not None, "repaired": False, "raw": "x"}) + "\n")
    return folder


@pytest.fixture
def run_a(tmp_path, data_dir) -> Path:
    return make_run(tmp_path / "run_a", data_dir, annotator(data_dir, "a"), "annotator_a")


def read_sheet(path: Path) -> list[dict]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def write_sheet(path: Path, rows: list[dict]) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def fill(rows: list[dict], codes: dict[str, list[int]], coder: str) -> list[dict]:
    out = []
    for r in rows:
        r = dict(r)
        for s, v in zip(EASY.shorts, codes[r["doi"]]):
            r[s] = str(v)
        r["coder"] = coder
        out.append(r)
    return out


def flip_setup(vectors: dict[str, list[int]], dois: list[str], k: int) -> tuple[dict[str, list[int]], list[str]]:
    """Copy of `vectors` with the `setup` code flipped on k of `dois` (items where the flip keeps a valid
    vector: `none` off and another category on)."""
    out = {d: list(v) for d, v in vectors.items()}
    s = EASY.index("setup")
    ok = [d for d in dois if not out[d][EASY.none_index] and sum(out[d]) - out[d][s] >= 1]
    for d in ok[:k]:
        out[d][s] = 1 - out[d][s]
    assert len(ok) >= k
    return out, ok[:k]


# --- export --------------------------------------------------------------------------------------
def test_export_writes_sheet_codebook_labelstudio_and_design(run_a, tmp_path, capsys, monkeypatch, data_dir):
    sheet = tmp_path / "sample.csv"
    code, _out, err = run(["code", "export", run_a, "--n", 40, "--out", sheet], capsys, monkeypatch)
    assert code == 0, err
    rows = read_sheet(sheet)
    assert len(rows) == 40 and len({r["doi"] for r in rows}) == 40
    assert list(rows[0]) == ["doi", "task", "mlrc_year", "text", *EASY.shorts, "coder", "notes", "sampling_prob"]
    assert all(r[s] == "" for r in rows for s in EASY.shorts)  # empty 0/1 columns, no model labels shown
    assert all(0 < float(r["sampling_prob"]) <= 1 for r in rows)
    texts = {it.doi: it.text for it in load_run(run_a).items.values()}
    assert all(r["text"] == texts[r["doi"]] for r in rows)
    book = read_sheet(tmp_path / "sample.codebook.csv")
    described = {b["column"]: b for b in book}
    assert set(rows[0]) <= set(described)
    assert described["code"]["meaning"] == "Availability of code"
    assert EASY.categories[0].description in described["code"]["description"]
    tasks = json.loads((tmp_path / "sample.labelstudio.json").read_text("utf-8"))
    assert [t["data"]["doi"] for t in tasks] == [r["doi"] for r in rows]
    assert all(t["data"]["text"] and t["data"]["task"] == "easy" for t in tasks)
    view = ET.fromstring((tmp_path / "sample.labelstudio.xml").read_text("utf-8"))
    choices = view.find("Choices")
    assert choices.get("choice") == "multiple" and choices.get("toName") == "text"
    assert [c.get("alias") for c in choices.findall("Choice")] == EASY.shorts
    assert [c.get("value") for c in choices.findall("Choice")] == EASY.names
    assert view.find("Text").get("value") == "$text"
    design = json.loads((tmp_path / "sample.design.json").read_text("utf-8"))
    assert design["strategy"] == "stratified" and design["n"] == 40 and design["N"] == 70
    for s, row in design["strata"].items():  # systematic draw: floor or ceiling of the allocation
        assert np.floor(row["expected"] + 1e-9) <= row["drawn"] <= np.ceil(row["expected"] - 1e-9), s
    assert sum(r["expected"] for r in design["strata"].values()) == pytest.approx(40)
    assert "stratum" not in rows[0]
    # the same seed draws the same sample; nothing is overwritten without --force
    code, _, err = run(["code", "export", run_a, "--n", 40, "--out", sheet], capsys, monkeypatch)
    assert code == 2 and "exists" in error_line(err)
    code, _, _ = run(["code", "export", run_a, "--n", 40, "--out", sheet, "--force"], capsys, monkeypatch)
    assert code == 0 and {r["doi"] for r in read_sheet(sheet)} == {r["doi"] for r in rows}


# --- round trip ----------------------------------------------------------------------------------
def test_round_trip_agreement_equals_the_known_value(run_a, tmp_path, capsys, monkeypatch, data_dir):
    """Export 40 items, code them as the model did except `setup` flipped on 8 items, import, and
    agreement with the model is exactly 32/40 exact matches, 1 - 8/200 Hamming agreement; a second
    coder differing from the first on 4 other items gives the human-human ceiling 36/40."""
    sheet = tmp_path / "sample.csv"
    assert run(["code", "export", run_a, "--n", 40, "--strategy", "random", "--out", sheet],
               capsys, monkeypatch)[0] == 0
    rows = read_sheet(sheet)
    dois = [r["doi"] for r in rows]
    model = annotator(data_dir, "a")
    anna, flipped = flip_setup(model, dois, 8)
    ben, _flipped_b = flip_setup(anna, [d for d in dois if d not in flipped], 4)
    write_sheet(sheet, fill(rows, anna, "anna") + fill(rows, ben, "ben"))
    code, out, err = run(["code", "import", sheet, "--data-dir", data_dir], capsys, monkeypatch)
    assert code == 0, err
    files = {c: tmp_path / f"sample.coded.{c}.jsonl" for c in ("anna", "ben")}
    for c, f in files.items():
        recs = [json.loads(x) for x in f.read_text("utf-8").splitlines()]
        assert len(recs) == 40 and {r["coder"] for r in recs} == {c}
        assert all(0 < r["sampling_prob"] <= 1 for r in recs)
        assert len(load_labels(f).labels("easy")) == 40  # a label file like any other
    coded = load_labels(files["anna"]).labels("easy")
    report = agreement_report({"model": {d: model[d] for d in coded}, "anna": coded}, EASY.shorts)
    pair = report.pairs[0]
    assert pair.n == 40
    assert pair.exact_match.value == pytest.approx(32 / 40)
    assert pair.hamming_agreement.value == pytest.approx(1 - 8 / 200)
    # `llmscisci agree` with two people: human-human agreement next to model-human
    js = tmp_path / "agree.json"
    code, out, err = run(["agree", run_a, files["anna"], files["ben"], "--human", files["anna"],
                          "--human", files["ben"], "--json-out", js], capsys, monkeypatch)
    assert code == 0, err
    rep = json.loads(js.read_text("utf-8"))["tasks"]["easy"]
    ceiling = next(g for g in rep["group_pairs"] if g["within"] and g["a"] == "human")
    assert ceiling["exact_match"]["value"] == pytest.approx(36 / 40)
    between = next(g for g in rep["group_pairs"] if not g["within"])
    assert between["exact_match"]["value"] == pytest.approx((32 / 40 + 28 / 40) / 2)
    assert "ceiling" in out


def test_labelstudio_export_imports(run_a, tmp_path, capsys, monkeypatch, data_dir):
    """Label Studio's JSON export (annotations by two users; choices stored by alias or by name; a
    cancelled annotation and an unannotated task) and its JSON-MIN export."""
    sheet = tmp_path / "s.csv"
    assert run(["code", "export", run_a, "--n", 6, "--out", sheet], capsys, monkeypatch)[0] == 0
    tasks = json.loads((tmp_path / "s.labelstudio.json").read_text("utf-8"))
    model = annotator(data_dir, "a")
    exported = []
    for i, t in enumerate(tasks):
        doi = t["data"]["doi"]
        names = [EASY.names[j] if j % 2 else EASY.shorts[j] for j, v in enumerate(model[doi]) if v]
        anns = [{"id": 1, "completed_by": {"id": 1, "email": "anna@example.org"}, "was_cancelled": False,
                 "result": [{"from_name": "labels", "to_name": "text", "type": "choices",
                             "value": {"choices": names}}]},
                {"id": 2, "completed_by": 7, "was_cancelled": True, "result": []}]
        if i < 3:
            anns.append({"id": 3, "completed_by": 2, "result": [{"from_name": "labels", "type": "choices",
                                                                  "value": {"choices": ["none"]}}]})
        exported.append({"id": i + 1, "data": t["data"], "annotations": anns if i < 5 else []})
    src = tmp_path / "ls_export.json"
    src.write_text(json.dumps(exported), "utf-8")
    imp = import_coded(src)
    assert imp.coders() == ["anna@example.org", "user2"]
    assert imp.skipped == 1
    anna = {r.doi: list(r.labels) for r in imp.records if r.coder == "anna@example.org"}
    assert anna == {t["data"]["doi"]: model[t["data"]["doi"]] for t in tasks[:5]}
    probs = {t["data"]["doi"]: t["data"]["sampling_prob"] for t in tasks}
    assert all(r.sampling_prob == probs[r.doi] for r in imp.records)
    code, _out, err = run(["code", "import", src], capsys, monkeypatch)
    assert code == 0, err
    assert (tmp_path / "ls_export.coded.anna-example.org.jsonl").is_file()
    assert len(load_labels(tmp_path / "ls_export.coded.user2.jsonl").labels("easy")) == 3
    # JSON-MIN: one flat record per annotation
    mini = [{"doi": t["data"]["doi"], "task": "easy", "text": t["data"]["text"], "annotator": "ben",
             "labels": {"choices": EASY.names_of(model[t["data"]["doi"]])}} for t in tasks]
    mini[0]["labels"] = "readability"  # a single choice comes as a bare string
    (tmp_path / "min.json").write_text(json.dumps(mini), "utf-8")
    imp = import_coded(tmp_path / "min.json")
    assert imp.coders() == ["ben"] and len(imp.records) == 6
    assert list(imp.records[0].labels) == [0, 0, 1, 0, 0]


# --- sampling designs ----------------------------------------------------------------------------
def test_pps_probabilities_cap_and_sum():
    pi = pps_probabilities([10, 1, 1, 1, 1], 3)
    assert pi[0] == 1.0 and pi[1:] == pytest.approx([0.5] * 4) and pi.sum() == pytest.approx(3)
    assert pps_probabilities([1, 1, 1], 3).tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError):
        pps_probabilities([1, 0], 1)


def test_systematic_sample_draws_each_item_with_its_probability():
    rng = np.random.default_rng(0)
    pi = pps_probabilities([5, 1, 1, 2, 3, 1, 1, 4], 4)
    counts = np.zeros(pi.size)
    reps = 4000
    for _ in range(reps):
        picked = systematic_sample(pi, rng.permutation(pi.size), rng)
        assert len(picked) == 4 and len(set(picked.tolist())) == 4
        counts[picked] += 1
    assert counts / reps == pytest.approx(pi, abs=0.03)


def test_strata_and_square_root_allocation():
    preds = [(1, 0, 1, 0, 0), (1, 0, 0, 0, 0), (1, 1, 0, 0, 0), None, (0, 0, 0, 0, 1)]
    keys = stratum_keys(preds, EASY, ["2020", "2020", "2021", "2021", "2021"])
    # rarest predicted category: code is predicted 3 times, artifacts and readability once
    assert keys == ["2020/readability", "2020/code", "2021/artifacts", "2021/invalid", "2021/none"]
    pi = stratified_probabilities(["a"] * 16 + ["b"] * 4, 6)
    assert pi[0] * 16 / (pi[-1] * 4) == pytest.approx(np.sqrt(16) / np.sqrt(4))  # sizes 4 : 2
    assert pi.sum() == pytest.approx(6)


def test_disagreement_strategy_favours_disputed_items(tmp_path, capsys, monkeypatch, data_dir):
    a = annotator(data_dir, "a")
    dois = list(a)
    b = {d: list(v) for d, v in a.items()}
    disputed = dois[:10]
    for d in disputed:
        b[d] = [1 - x for x in b[d]] if b[d][EASY.none_index] == 0 else [1, 0, 0, 0, 0]
    b[dois[10]] = None  # an invalid output: full disagreement
    assert disagreement([a[dois[0]], b[dois[0]]]) > 0.5
    assert disagreement([a[dois[20]], b[dois[20]]]) == 0.0
    assert disagreement([a[dois[10]], None]) == 0.5
    ra = make_run(tmp_path / "ra", data_dir, a, "a")
    rb = make_run(tmp_path / "rb", data_dir, b, "b")
    sheet = tmp_path / "d.csv"
    code, _out, err = run(["code", "export", ra, rb, "--n", 20, "--strategy", "disagreement", "--out", sheet],
                         capsys, monkeypatch)
    assert code == 0, err
    design = json.loads((tmp_path / "d.design.json").read_text("utf-8"))
    probs = {r["doi"]: r["sampling_prob"] for r in design["items"]}
    drawn = set(probs)
    assert set(disputed) <= drawn  # the most disputed items are certain
    assert all(probs[d] == 1.0 for d in disputed)
    agreed = [p for d, p in probs.items() if d not in disputed and d != dois[10]]
    assert agreed and max(agreed) < 1.0
    code, _, err = run(["code", "export", ra, "--strategy", "disagreement", "--out", tmp_path / "x.csv"],
                       capsys, monkeypatch)
    assert code == 2 and "two or more run folders" in error_line(err)


# --- prevalence end to end -----------------------------------------------------------------------
def test_prevalence_cli_writes_estimates(run_a, tmp_path, capsys, monkeypatch, data_dir):
    sheet = tmp_path / "sample.csv"
    assert run(["code", "export", run_a, "--n", 40, "--out", sheet], capsys, monkeypatch)[0] == 0
    ref = {}
    with (data_dir / "labels" / "reference.csv").open(encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            if r["task"] == "easy":
                ref[r["doi"]] = json.loads(r["labels"])
    write_sheet(sheet, fill(read_sheet(sheet), ref, "ref"))
    assert run(["code", "import", sheet], capsys, monkeypatch)[0] == 0
    gold = tmp_path / "sample.coded.jsonl"
    js = tmp_path / "prev.json"
    code, out, err = run(["prevalence", run_a, "--gold", gold, "--by", "mlrc_year", "--json-out", js],
                         capsys, monkeypatch)
    assert code == 0, err
    res = json.loads(js.read_text("utf-8"))
    assert res["n_items"] == 70 and res["n_coded"] == 40 and res["groups"] == ["2020", "2021"]
    assert "recorded in the gold file" in res["design"]
    rows = res["categories"]["code"]
    assert [r["group"] for r in rows] == ["all", "2020", "2021"]
    model = annotator(data_dir, "a")
    naive = np.mean([v[0] for v in model.values()])
    assert rows[0]["naive"]["estimate"] == pytest.approx(naive)
    # DSL by hand from the files: yhat + (y - yhat) / pi over the coded items
    coded = [json.loads(x) for x in gold.read_text("utf-8").splitlines()]
    yt = {d: v[0] for d, v in model.items()}
    for r in coded:
        yt[r["doi"]] += (r["labels"][0] - model[r["doi"]][0]) / r["sampling_prob"]
    assert rows[0]["dsl"]["estimate"] == pytest.approx(np.mean(list(yt.values())))
    for m in ("naive", "coded", "ppi", "dsl"):
        assert rows[0][m]["low"] <= rows[0][m]["estimate"] <= rows[0][m]["high"]
    assert "code: Availability of code" in out and "DSL" in out
    # reference.csv as gold: every item coded, no design recorded -> a census, pi = 1
    code, out, err = run(["prevalence", run_a, "--gold", data_dir / "labels" / "reference.csv", "--json-out", js],
                         capsys, monkeypatch)
    assert code == 0, err
    res = json.loads(js.read_text("utf-8"))
    assert "simple random sample (70/70)" in res["design"]
    share = np.mean([v[0] for v in ref.values()])
    assert res["categories"]["code"][0]["dsl"]["estimate"] == pytest.approx(share)


# --- one-line errors -----------------------------------------------------------------------------
def test_import_errors_name_file_row_and_column(run_a, tmp_path, capsys, monkeypatch, data_dir):
    sheet = tmp_path / "sample.csv"
    assert run(["code", "export", run_a, "--n", 5, "--out", sheet], capsys, monkeypatch)[0] == 0
    rows = fill(read_sheet(sheet), annotator(data_dir, "a"), "anna")

    def bad(mutate, *extra):
        rs = [dict(r) for r in rows]
        mutate(rs)
        path = tmp_path / "bad.csv"
        write_sheet(path, rs)
        code, _out, err = run(["code", "import", path, "--force", *extra], capsys, monkeypatch)
        assert code == 2
        return error_line(err)

    def set_cell(row, col, value):
        def f(rs):
            rs[row][col] = value
        return f

    line = bad(set_cell(2, "setup", "2"))
    assert "bad.csv, row 3, column 'setup'" in line and "bad code '2'" in line
    line = bad(set_cell(1, "doi", "10.5281/zenodo.0000000"), "--data-dir", data_dir)
    assert "row 2, column 'doi'" in line and "unknown DOI" in line
    line = bad(set_cell(0, "task", "hard"))
    assert "row 1, column 'task'" in line and "unknown task 'hard'" in line
    line = bad(set_cell(4, "sampling_prob", "1.5"))
    assert "row 5, column 'sampling_prob'" in line
    line = bad(lambda rs: rs.append(dict(rs[0])))
    assert "row 6" in line and "duplicate item" in line
    line = bad(lambda rs: [r.pop("artifacts") for r in rs])
    assert "column 'artifacts'" in line and "missing category column" in line
    line = bad(lambda rs: [r.update({s: "" for s in EASY.shorts}) for r in rs])
    assert "no coded item" in line
    # Label Studio: a choice the codebook does not know
    ls = tmp_path / "ls.json"
    ls.write_text(json.dumps([{"data": {"doi": rows[0]["doi"], "task": "easy"},
                               "annotations": [{"completed_by": 1, "result": [
                                   {"from_name": "labels", "value": {"choices": ["Great code"]}}]}]}]), "utf-8")
    code, _, err = run(["code", "import", ls], capsys, monkeypatch)
    assert code == 2 and "ls.json, row 1, column 'annotations[0]'" in error_line(err)
    ls.write_text("{not json", "utf-8")
    code, _, err = run(["code", "import", ls], capsys, monkeypatch)
    assert code == 2 and "not a JSON file" in error_line(err)
    code, _, err = run(["code", "import", tmp_path / "nope.csv"], capsys, monkeypatch)
    assert code == 2 and "file not found" in error_line(err)
    # nothing half-written: the failed imports left no label file behind
    assert not list(tmp_path.glob("bad.coded*.jsonl"))


def test_export_and_prevalence_errors(run_a, tmp_path, capsys, monkeypatch, data_dir):
    cases = [
        (["code", "export", run_a, "--n", 71, "--out", tmp_path / "a.csv"], "choose between 1 and the run's 70"),
        (["code", "export", run_a, "--strategy", "clever", "--out", tmp_path / "a.csv"], "--strategy 'clever'"),
        (["code", "export", run_a, "--out", tmp_path / "a.xlsx"], "give a .csv file name"),
        (["code", "export", run_a, "--out", tmp_path / "nodir" / "a.csv"], "does not exist"),
        (["code", "export", tmp_path, "--out", tmp_path / "a.csv"], "not a run folder"),
        (["prevalence", run_a, "--gold", tmp_path / "missing.jsonl"], "no such file"),
        (["prevalence", run_a, "--gold", data_dir / "labels" / "reference.csv", "--by", "colour"],
         "--by 'colour': not an item column"),
        (["prevalence", run_a, "--gold", data_dir / "labels" / "reference.csv", "--level", 95], "--level 95.0"),
    ]
    for args, message in cases:
        code, _out, err = run(args, capsys, monkeypatch)
        assert code == 2, args
        assert message in error_line(err), (args, err)
    other = tmp_path / "other.jsonl"
    other.write_text(json.dumps({"doi": "10.5281/zenodo.4833219", "task": "difficult",
                                 "labels": [1, 0, 0, 0, 0]}) + "\n", "utf-8")
    code, _, err = run(["prevalence", run_a, "--gold", other], capsys, monkeypatch)
    assert code == 2 and "no codes for task 'easy'" in error_line(err)
    assert not (run_a / "prevalence.json").exists()
    assert not (tmp_path / "a.csv").exists()
