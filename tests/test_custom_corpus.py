"""A run on one's own corpus and codebook (no reference labels): `prevalence --data-dir` finds the CSV,
`agree` hints at --task, and the report shows the label distribution (per category and per group)
with Wilson intervals and the answers' validity."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from console import run_console
from rich.console import Console

from llmscisci.backends import registry
from llmscisci.backends.base import Generation

BOOK = ('task = "topic"\ntext_column = "abstract"\nnone = "other"\n'
        '[[categories]]\nshort = "bib"\nname = "Bibliometrics"\n'
        '[[categories]]\nshort = "alt"\nname = "Altmetrics"\n'
        '[[categories]]\nshort = "other"\nname = "Other"\n')


class TopicBackend:
    """`bib` for texts that mention citations, `alt` for the others; every fifth answer is not JSON."""

    context_length = None

    def __init__(self):
        self.n = 0

    def check_context(self, messages, max_new_tokens):
        return True, 10

    def describe(self):
        return {"name": "fake"}

    def generate(self, conversations, params=None, schema=None, on_result=None):
        gens = []
        for i, conv in enumerate(conversations):
            self.n += 1
            cit = "citation" in conv[-1]["content"].lower()
            text = "no idea" if self.n % 5 == 0 else json.dumps({"bib": cit, "alt": not cit, "other": False})
            gen = Generation(text=text, tokens_in=10, tokens_out=4)
            if on_result:
                on_result(i, gen)
            gens.append(gen)
        return gens


@pytest.fixture
def corpus_run(tmp_path, capsys, monkeypatch) -> tuple[Path, Path, Path]:
    """(run folder, codebook, corpus CSV): 20 abstracts in two groups, labelled by the fake model."""
    book = tmp_path / "topics.toml"
    book.write_text(BOOK, "utf-8")
    corpus = tmp_path / "corpus" / "abstracts.csv"
    corpus.parent.mkdir()
    rows = ["id,abstract,group"]
    for i in range(20):
        text = "We count citations of papers" if i % 4 == 0 else "We study tweets about papers"
        rows.append(f"a{i},{text} number {i},{'journals' if i < 10 else 'preprints'}")
    corpus.write_text("\n".join(rows) + "\n", "utf-8")
    monkeypatch.setattr(registry, "load_backend", lambda name, options=None: TopicBackend())
    code, out, err = run_console(["label", "--task", book, "--input", corpus, "--out", tmp_path / "runs"],
                                 capsys, monkeypatch)
    assert code == 0, err
    (run,) = (tmp_path / "runs").iterdir()
    return run, book, corpus


def test_prevalence_data_dir_of_a_custom_corpus(corpus_run, tmp_path, capsys, monkeypatch):
    run, book, corpus = corpus_run
    gold = tmp_path / "gold.jsonl"
    gold.write_text("".join(json.dumps({"doi": f"a{i}", "task": "topic", "labels": [int(i % 4 == 0), int(i % 4 != 0), 0]})
                            + "\n" for i in range(0, 20, 2)), "utf-8")
    code, out, err = run_console(["prevalence", run, "--gold", gold, "--by", "group", "--data-dir", corpus.parent,
                                  "--json"], capsys, monkeypatch)
    assert code == 0, err
    assert "mlrc_reports" not in err
    result = json.loads(out)  # only JSON on stdout
    assert result["groups"] == ["journals", "preprints"] and result["n_items"] == 20
    # the tables (on stderr with --json) fit 80 columns with every number whole
    buf = io.StringIO()
    from llmscisci.cli.code import prevalence_tables
    from llmscisci.cli.tables import print_table
    from llmscisci.data.codebook import load_codebook

    console = Console(file=buf, width=80, force_terminal=True, color_system=None)
    for t in prevalence_tables(result, load_codebook(book)):
        print_table(console, t)
    text = buf.getvalue()
    assert "…" not in text and max(len(x) for x in text.splitlines()) <= 80
    for rows in result["categories"].values():
        for r in rows:
            for m in ("naive", "coded", "ppi", "dsl"):
                if r[m]["estimate"] is not None:
                    assert f"{100 * r[m]['estimate']:.1f} [{100 * r[m]['low']:.1f}," in text
    code, out, err = run_console(["prevalence", run, "--gold", gold, "--data-dir", tmp_path / "runs"],
                                 capsys, monkeypatch)
    assert code == 2 and "abstracts.csv" in err and "mlrc_reports" not in err


def test_agree_on_custom_codebook_runs_hints_at_task(corpus_run, tmp_path, capsys, monkeypatch):
    run, book, corpus = corpus_run
    code, out, err = run_console(["agree", run, run], capsys, monkeypatch)
    assert code == 2 and f"--task {book}" in err
    code, out, err = run_console(["agree", run, run, "--task", book, "--json"], capsys, monkeypatch)
    assert code == 0, err
    assert json.loads(out)["tasks"]["topic"]["n_items"] == 16  # 20 answers, 4 not valid


def test_report_shows_the_label_distribution(corpus_run, tmp_path, capsys, monkeypatch):
    run, book, corpus = corpus_run
    code, out, err = run_console(["report", run, "--out", tmp_path / "rep", "--n-boot", "200"], capsys, monkeypatch)
    assert code == 0, err
    md = (tmp_path / "rep" / "report.md").read_text("utf-8")
    assert "## Label distribution" in md
    preds = [json.loads(x) for x in (run / "predictions.jsonl").read_text("utf-8").splitlines()]
    valid = [p for p in preds if p["valid"]]
    assert 0 < len(valid) < len(preds)  # some answers are invalid: the shares are over the valid ones
    from statsmodels.stats.proportion import proportion_confint

    k = sum(p["labels"][0] for p in valid)
    lo, hi = proportion_confint(k, len(valid), method="wilson")
    assert re.search(rf"\| bib \| {k} \| {100 * k / len(valid):.1f} \[{100 * lo:.1f}, {100 * hi:.1f}\] \|", md), md
    assert f"{len(valid)} valid of {len(preds)} answers" in md
    assert "group journals" in md and "group preprints" in md  # per group of items
    assert "Output validity" in md


def test_prevalence_by_group_of_a_jsonl_corpus(tmp_path, capsys, monkeypatch):
    book = tmp_path / "topics.toml"
    book.write_text(BOOK, "utf-8")
    corpus = tmp_path / "corpus" / "abstracts.jsonl"
    corpus.parent.mkdir()
    corpus.write_text("".join(json.dumps({"id": f"a{i}", "abstract": f"citation study {i}" if i % 3 == 0 else
                                          f"tweets {i}", "group": "A" if i < 6 else "B"}) + "\n"
                              for i in range(12)), "utf-8")
    monkeypatch.setattr(registry, "load_backend", lambda name, options=None: TopicBackend())
    code, out, err = run_console(["label", "--task", book, "--input", corpus, "--out", tmp_path / "runs"],
                                 capsys, monkeypatch)
    assert code == 0, err
    (run,) = (tmp_path / "runs").iterdir()
    gold = tmp_path / "gold.jsonl"
    gold.write_text("".join(json.dumps({"doi": f"a{i}", "task": "topic", "labels": [int(i % 3 == 0), int(i % 3 != 0), 0]})
                            + "\n" for i in range(0, 12, 2)), "utf-8")
    code, out, err = run_console(["prevalence", run, "--gold", gold, "--by", "group", "--data-dir", corpus.parent,
                                  "--json"], capsys, monkeypatch)
    assert code == 0, err
    assert "mlrc_reports" not in err and json.loads(out)["groups"] == ["A", "B"]
