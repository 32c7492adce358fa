"""Data layer: both file formats, every validation error, the canonical split, dataset export."""

from __future__ import annotations

from pathlib import Path

import json
import shutil

import pytest

from llmscisci.data import (Collector, LabelError, apply_none_rule, canonical_split, check_shape, grouped_folds,
                            load_codebook, load_items, load_labels, load_reports, to_dataset_dict, validate)
from llmscisci.errors import DataError, UserError

FIXTURE_DATA = Path(__file__).resolve().parent / "fixtures" / "data"  # sources and seed formats


@pytest.fixture
def copy_dir(tmp_path, data_dir):
    dest = tmp_path / "data"
    shutil.copytree(data_dir, dest, ignore=shutil.ignore_patterns("mlrc_sources", "rescience"))
    return dest


def test_shared_data_loads_with_warnings_only(data_dir):
    col = Collector(strict=False)
    df = load_reports(data_dir, col)
    assert len(df) == 70 and not col.errors
    assert len([w for w in col.warnings if w.column == "difficult"]) == 2
    assert set(df["mlrc_year"]) == {"2020", "2021"}


def test_items_split_grouped_by_doi(data_dir):
    easy = load_items(load_codebook("easy"), data_dir=data_dir)
    diff = load_items(load_codebook("difficult"), data_dir=data_dir)
    assert len(easy) == len(diff) == 70
    assert {it.doi: it.split for it in easy} == {it.doi: it.split for it in diff}
    assert sum(it.split == "test" for it in easy) == 14
    assert all(it.labels is not None for it in easy + diff)
    empty = [it for it in diff if not it.text]
    assert len(empty) == 2 and all(it.labels == (0, 0, 0, 0, 1) for it in empty)


def test_split_is_deterministic_and_seeded():
    dois = [f"10.1/{i}" for i in range(50)]
    a, b = canonical_split(dois), canonical_split(reversed(dois))
    assert a == b and sum(v == "test" for v in a.values()) == 10
    assert canonical_split(dois, seed=1) != a
    folds = grouped_folds(dois + dois, k=5)
    assert sorted(set(folds.values())) == [0, 1, 2, 3, 4]


def test_validator_policy():
    assert apply_none_rule([0, 0, 0, 0, 0], 4).labels == (0, 0, 0, 0, 1)
    assert apply_none_rule([0, 0, 0, 0, 0], 4).repaired
    assert apply_none_rule([1, 0, 0, 0, 1], 4).labels == (1, 0, 0, 0, 0)
    assert not apply_none_rule([0, 1, 0, 0, 0], 4).repaired
    assert validate([True, 0, 0, 0, 0], 5, 4).labels == (1, 0, 0, 0, 0)
    with pytest.raises(LabelError):
        check_shape([1, 0], 5)
    with pytest.raises(LabelError):
        check_shape([2, 0, 0, 0, 0], 5)
    with pytest.raises(LabelError):
        check_shape("10000", 5)


def test_study_formats_map_by_name(data_dir):
    seed = FIXTURE_DATA / "seed_formats"
    study = load_labels(seed / "ReScience_JCDL-23.sample.csv")
    gpt = load_labels(seed / "gpt4_effortly_labels_beta.sample.csv")
    # difficulty numbers "3, 4" in the study's own scheme are math + nuance
    assert study.labels("difficult")["10.5281/zenodo.9000001"] == (0, 1, 0, 1, 0)
    assert study.labels("difficult") == gpt.labels("difficult")
    assert study.labels("easy") == gpt.labels("easy")
    # the lecture numbering must give a different answer for the same numbers: explicit, never guessed
    lecture = load_labels(seed / "ReScience_JCDL-23.sample.csv", scheme="lecture")
    assert lecture.labels("difficult")["10.5281/zenodo.9000001"] == (0, 0, 1, 1, 0)
    reports = load_reports(seed / "ReScience_JCDL-23.sample.csv")
    assert len(reports) == 3 and reports.loc[0, "easy"].startswith("The authors published")
    with pytest.raises(UserError, match="no numbering scheme"):
        load_labels(seed / "ReScience_JCDL-23.sample.csv", scheme="nope")


def test_annotator_and_reference_files(data_dir):
    ref = load_labels(data_dir / "labels" / "reference.csv")
    ann = load_labels(data_dir / "labels" / "annotator_a.jsonl")
    assert len(ref) == len(ann) == 140
    assert all(r.response for r in ann.records.values())


def _rewrite(path, fn):
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(fn(lines)), encoding="utf-8")


def test_missing_file_and_column(copy_dir):
    with pytest.raises(DataError, match="file not found"):
        load_reports(copy_dir / "nope")
    import pandas as pd

    df = pd.read_csv(copy_dir / "mlrc_reports.csv", dtype=str, keep_default_na=False).drop(columns=["easy"])
    df.to_csv(copy_dir / "mlrc_reports.csv", index=False)
    with pytest.raises(DataError, match=r"mlrc_reports.csv.*column 'easy'.*missing column"):
        load_reports(copy_dir)


def test_duplicate_doi(copy_dir):
    import pandas as pd

    df = pd.read_csv(copy_dir / "mlrc_reports.csv", dtype=str, keep_default_na=False)
    df.loc[5, "doi"] = df.loc[2, "doi"]
    df.to_csv(copy_dir / "mlrc_reports.csv", index=False)
    with pytest.raises(DataError, match=r"row 6, column 'doi': duplicate DOI .* \(first at row 3\)"):
        load_reports(copy_dir)


def test_bad_label_vectors_and_unknown_doi(copy_dir):
    ref = copy_dir / "labels" / "reference.csv"
    _rewrite(ref, lambda ls: [ls[0], ls[1].replace("[1, 0, 1, 0, 0]", "[1, 0, 1, 0]")] + ls[2:])
    with pytest.raises(DataError, match=r"reference.csv, row 1, column 'labels': .*expected 5 entries"):
        load_labels(ref)
    _rewrite(ref, lambda ls: [ls[0], ls[1].replace("[1, 0, 1, 0]", "[1, 0, 2, 0, 0]")] + ls[2:])
    with pytest.raises(DataError, match=r"row 1, column 'labels'.*0 or 1"):
        load_labels(ref)
    ann = copy_dir / "labels" / "annotator_b.jsonl"
    _rewrite(ann, lambda ls: ls[:3] + [json.dumps({"doi": "10.9/unknown", "task": "easy", "labels": [1, 0, 0, 0, 0]}) + "\n"])
    with pytest.raises(DataError, match=r"annotator_b.jsonl, row 4, column 'doi': unknown DOI 10.9/unknown"):
        load_labels(ann, known_dois=load_reports(copy_dir)["doi"])


def test_gather_all_problems(copy_dir):
    import pandas as pd

    df = pd.read_csv(copy_dir / "mlrc_reports.csv", dtype=str, keep_default_na=False)
    df.loc[1, "doi"] = df.loc[0, "doi"]
    df.loc[3, "mlrc_year"] = "twenty"
    df.to_csv(copy_dir / "mlrc_reports.csv", index=False)
    col = Collector(strict=False)
    load_reports(copy_dir, col)
    assert len(col.errors) == 2 and {p.column for p in col.errors} == {"doi", "mlrc_year"}


def test_user_codebook_and_csv(tmp_path):
    book = tmp_path / "topics.toml"
    book.write_text(
        'task = "topic"\ntext_column = "abstract"\nnone = "other"\n'
        '[[categories]]\nshort = "bib"\nname = "Bibliometrics"\n'
        '[[categories]]\nshort = "alt"\nname = "Altmetrics"\n'
        '[[categories]]\nshort = "other"\nname = "Other"\n', encoding="utf-8")
    cb = load_codebook(book)
    assert cb.shorts == ["bib", "alt", "other"] and cb.none_index == 2
    csv = tmp_path / "corpus.csv"
    csv.write_text("id,abstract,bib,alt,other\na1,Citation counts,1,0,0\na2,Tweets about papers,0,1,0\n"
                   "a3,Something else,,,\n", encoding="utf-8")
    items = load_items(cb, input_csv=csv)
    assert [it.labels for it in items] == [(1, 0, 0), (0, 1, 0), None]
    dd = to_dataset_dict(items, cb)
    assert dd["train"].num_rows + dd["test"].num_rows == 3
    bad = tmp_path / "bad.toml"
    bad.write_text('task = "x"\ntext_column = "t"\nnone = "zzz"\n[[categories]]\nshort = "a"\nname = "A"\n')
    with pytest.raises(UserError, match="none category 'zzz'"):
        load_codebook(bad)
    with pytest.raises(UserError, match="file not found: .*missing.toml"):
        load_codebook(tmp_path / "missing.toml")
    with pytest.raises(UserError, match="unknown task 'nosuch'"):
        load_codebook("nosuch")


def test_default_data_dir_is_the_bundled_dataset(monkeypatch, tmp_path):
    """No --data-dir and no LLMSCISCI_DATA: the dataset inside the package (it used to be an error)."""
    from importlib import resources

    from llmscisci.paths import data_dir, data_label

    monkeypatch.delenv("LLMSCISCI_DATA", raising=False)
    default = data_dir(None)
    assert default == data_dir("bundled") and (default / "mlrc_reports.csv").is_file()
    assert default == Path(str(resources.files("llmscisci").joinpath("data", "bundled")))
    assert data_label(default) == "bundled" and data_label(tmp_path) == str(tmp_path)
    assert len(load_items(load_codebook("easy"), data_dir=default)) == 70
    monkeypatch.setenv("LLMSCISCI_DATA", str(tmp_path))
    assert data_dir(None) == tmp_path
    with pytest.raises(UserError, match="does not exist"):
        data_dir(tmp_path / "missing")


def test_dataset_dict_export(data_dir):
    cb = load_codebook("easy")
    dd = to_dataset_dict(load_items(cb, data_dir=data_dir), cb)
    assert dd["train"].num_rows == 56 and dd["test"].num_rows == 14
    assert set(dd["test"]["doi"]).isdisjoint(dd["train"]["doi"])


def test_codebook_columns_name_each_category():
    cb = load_codebook("easy")
    assert cb.columns("pred", [1, 0, 1, 0, 0]) == {"pred_code": 1, "pred_artifacts": 0, "pred_readability": 1,
                                                    "pred_setup": 0, "pred_none": 0}
    assert cb.columns("ref", None) == {f"ref_{s}": None for s in cb.shorts}
