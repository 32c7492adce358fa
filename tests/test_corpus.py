"""Your own corpus: formats recognised by content, OpenAlex abstracts rebuilt, ids/texts chosen by options,
and one-line errors (file, row, column) for bad input."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest

from llmscisci.data.codebook import load_codebook
from llmscisci.data.corpus import CorpusPlan, load_corpus_items, parse_template
from llmscisci.data.corpus_read import open_corpus, read_records
from llmscisci.data.openalex import rebuild_abstract, work_record
from llmscisci.errors import DataError, UserError

FIX = Path(__file__).parent / "fixtures" / "corpus"
WORKS = FIX / "openalex_works.jsonl"
BOOK = FIX / "open_science.toml"


@pytest.fixture(scope="module")
def cb():
    return load_codebook(BOOK)


def test_abstract_rebuilt_from_inverted_index():
    assert rebuild_abstract({"open": [0, 3], "data": [1], "and": [2], "code.": [4]}) == "open data and open code."
    assert rebuild_abstract(None) == ""
    rec = work_record({"id": "https://openalex.org/W1", "doi": "https://doi.org/10.1/X", "title": "T",
                       "publication_year": 2020, "type": "article", "primary_topic": {"display_name": "Topic"},
                       "abstract_inverted_index": {"b": [1], "a": [0]}})
    assert rec == {"id": "W1", "doi": "10.1/X", "title": "T", "publication_year": 2020, "type": "article",
                   "primary_topic": "Topic", "abstract": "a b"}


def test_openalex_fixture_is_realistic(cb):
    raw = [json.loads(line) for line in WORKS.read_text("utf-8").splitlines()]
    assert len(raw) == 200
    assert sum(r["abstract_inverted_index"] is None for r in raw) >= 10
    assert sum(r["doi"] is None for r in raw) >= 5
    plan = CorpusPlan.open(WORKS, cb)
    assert (plan.source.format, plan.n_items, plan.id_column) == ("openalex", 200, "id")
    items = list(plan.items())
    first = json.loads(WORKS.read_text("utf-8").splitlines()[0])
    words = sorted(((p, w) for w, ps in first["abstract_inverted_index"].items() for p in ps))
    assert items[0].text == " ".join(w for _, w in words)
    assert items[0].doi == first["id"].rsplit("/", 1)[1]
    assert items[0].meta["doi"] == first["doi"].removeprefix("https://doi.org/")
    assert items[0].meta["publication_year"] == first["publication_year"]
    assert items[0].meta["primary_topic"] == first["primary_topic"]["display_name"]
    assert sum(1 for it in items if not it.text) == sum(r["abstract_inverted_index"] is None for r in raw)


def test_formats_recognised_by_content_whatever_the_name(tmp_path, cb):
    recs = read_records(WORKS)
    df = pd.DataFrame(recs)
    gz = tmp_path / "part_000"  # the snapshot's parts: gzipped JSON Lines, no extension
    gz.write_bytes(gzip.compress(WORKS.read_bytes()))
    page = tmp_path / "page.data"
    page.write_text(json.dumps({"meta": {"count": 3}, "results": [json.loads(x) for x in WORKS.read_text().splitlines()[:3]]},
                               indent=2), encoding="utf-8")
    df.to_parquet(tmp_path / "c.bin")
    df.to_csv(tmp_path / "c.txt", sep="\t", index=False)
    df.to_csv(tmp_path / "c.csv.gz", index=False, compression="gzip")
    df.to_json(tmp_path / "c.json", orient="records", lines=True)
    expect = {"part_000": ("openalex", True), "page.data": ("openalex-page", False), "c.bin": ("parquet", False),
              "c.txt": ("tsv", False), "c.csv.gz": ("csv", True), "c.json": ("jsonl", False)}
    for name, (fmt, gzipped) in expect.items():
        src = open_corpus(tmp_path / name)
        assert (src.format, src.gzipped) == (fmt, gzipped), name
        items = load_corpus_items(tmp_path / name, cb, id_column="id")
        n = 3 if name == "page.data" else 200
        assert [it.doi for it in items] == [r["id"] for r in recs[:n]], name
        assert [it.text for it in items] == [r["abstract"] for r in recs[:n]], name


def test_hf_folder(tmp_path, cb):
    from datasets import Dataset

    recs = read_records(WORKS)
    Dataset.from_list(recs).save_to_disk(str(tmp_path / "ds"))
    items = load_corpus_items(tmp_path / "ds", cb, id_column="id")
    assert [it.text for it in items] == [r["abstract"] for r in recs]


def test_id_and_text_options(tmp_path, cb):
    items = load_corpus_items(WORKS, cb, template="{title}. {abstract}")
    recs = read_records(WORKS)
    assert items[0].text == f"{recs[0]['title']}. {recs[0]['abstract']}"
    csv = tmp_path / "mine.csv"
    csv.write_text("key,body,group\nk1,first text,a\nk2,second text,b\n", encoding="utf-8")
    items = load_corpus_items(csv, cb, id_column="key", text_column="body")
    assert [(it.doi, it.text, it.meta["group"]) for it in items] == [("k1", "first text", "a"), ("k2", "second text", "b")]
    for bad in ("{title.__class__}", "{abstract!r}", "no fields", "{}"):
        with pytest.raises(UserError):
            parse_template(bad)


def one_line(exc) -> str:
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


def test_errors_name_file_row_column(tmp_path, cb):
    dup = tmp_path / "dup.csv"
    dup.write_text("id,abstract\na,x\nb,y\na,z\n", encoding="utf-8")
    with pytest.raises(DataError) as e:
        CorpusPlan.open(dup, cb)
    assert "dup.csv, row 3, column 'id': duplicate id a (first at row 1)" in one_line(e)
    with pytest.raises(DataError) as e:
        CorpusPlan.open(dup, cb, text_column="body")
    assert "column 'body'" in one_line(e) and "missing text column" in str(e.value)
    with pytest.raises(DataError) as e:
        CorpusPlan.open(dup, cb, id_column="key")
    assert "column 'key'" in one_line(e)
    bad = tmp_path / "latin1.csv"
    bad.write_bytes("id,abstract\na,fine\nb,caf\xe9 cr\xe8me\n".encode("latin-1"))
    with pytest.raises(DataError) as e:
        list(CorpusPlan.open(bad, cb).items())
    assert "latin1.csv, row 2" in one_line(e) and "not UTF-8" in str(e.value)
    jl = tmp_path / "x.jsonl"
    jl.write_text('{"id": "a", "abstract": "t"}\n{"id": "b", "abstract": \n', encoding="utf-8")
    with pytest.raises(DataError) as e:
        CorpusPlan.open(jl, cb)
    assert "x.jsonl, row 2" in one_line(e) and "not valid JSON" in str(e.value)
    empty_id = tmp_path / "e.tsv"
    empty_id.write_text("id\tabstract\na\tt\n\tu\n", encoding="utf-8")
    with pytest.raises(DataError) as e:
        CorpusPlan.open(empty_id, cb)
    assert "e.tsv, row 2, column 'id': empty id" in one_line(e)
    gzpq = tmp_path / "p.parquet.gz"
    pd.DataFrame({"id": ["a"], "abstract": ["t"]}).to_parquet(tmp_path / "p.parquet")
    gzpq.write_bytes(gzip.compress((tmp_path / "p.parquet").read_bytes()))
    with pytest.raises(DataError) as e:
        open_corpus(gzpq)
    assert "Parquet compresses itself" in one_line(e)


def test_reference_labels_in_the_corpus(tmp_path, cb):
    csv = tmp_path / "coded.csv"
    csv.write_text("id,abstract,code,data,funding,none\na,t1,1,0,0,0\nb,t2,0,0,0,1\nc,t3,,,,\n", encoding="utf-8")
    items = load_corpus_items(csv, cb)
    assert [it.labels for it in items] == [(1, 0, 0, 0), (0, 0, 0, 1), None]
    assert {it.split for it in items} <= {"train", "test"}
    csv.write_text("id,abstract,code,data,funding,none\na,t1,1,0,2,0\n", encoding="utf-8")
    with pytest.raises(DataError) as e:
        load_corpus_items(csv, cb)
    assert "coded.csv, row 1" in one_line(e) and "bad labels" in str(e.value)


def test_text_column_optional_and_picked_by_itself(tmp_path):
    """A codebook without text_column: --text-column/--text give the text, else a lone `text` or
    `abstract` column is picked; none or both is a one-line error listing the columns."""
    book = tmp_path / "b.toml"
    book.write_text('task = "t"\n[[categories]]\nshort = "a"\nname = "A"\n[[categories]]\nshort = "none"\n'
                    'name = "None"\n', "utf-8")
    cb = load_codebook(book)
    assert cb.text_column == ""
    csv = tmp_path / "c.csv"
    csv.write_text("id,title,abstract\nx1,Titre,Résumé ici\n", "utf-8")
    assert [it.text for it in load_corpus_items(csv, cb)] == ["Résumé ici"]
    assert [it.text for it in load_corpus_items(csv, cb, text_column="title")] == ["Titre"]
    assert [it.text for it in load_corpus_items(csv, cb, template="{title}: {abstract}")] == ["Titre: Résumé ici"]
    other = load_codebook(BOOK)  # names text_column "abstract"; a corpus with only `text` still works
    txt = tmp_path / "t.csv"
    txt.write_text("id,text\nx1,the body\n", "utf-8")
    assert [it.text for it in load_corpus_items(txt, other)] == ["the body"]
    both = tmp_path / "both.csv"
    both.write_text("id,text,abstract,year\nx1,a,b,2020\n", "utf-8")
    with pytest.raises(DataError) as e:
        CorpusPlan.open(both, cb)
    assert "both 'text' and 'abstract'" in one_line(e) and "found: id, text, abstract, year" in str(e.value)
    none = tmp_path / "none.csv"
    none.write_text("id,body\nx1,a\n", "utf-8")
    with pytest.raises(DataError) as e:
        CorpusPlan.open(none, cb)
    assert "no column 'text' or 'abstract'" in one_line(e) and "--text-column" in str(e.value)
