"""Extraction scoring: every function on hand-made cases with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss

from llmscisci.tasks.extract.schema import FIELDS, Publication
from llmscisci.tasks.extract.score import (
    RecordMatch,
    UnitResult,
    author_prf,
    calibration,
    doi_in_input,
    field_accuracy,
    field_correct,
    gap,
    hallucinated_fields,
    headline,
    match_authors,
    match_records,
    record_scores,
    score_run,
    url_in_input,
)
from llmscisci.tasks.extract.truth import TruthIndex, TruthRecord


def truth_record(n: int, **kw) -> TruthRecord:
    base = dict(key=f"K{n}", doi=f"10.5555/t.{n}", pub_title=f"[Re] Paper number {n}", journal="ReScience C",
                year="2022", authors=("Koustuv Sinha", "Jesse Dodge"), volume="8", issue="2", pages=f"#{n}",
                url=f"https://zenodo.org/record/{n}/files/article.pdf")
    base.update(kw)
    return TruthRecord(**base)


def pub_from(t: TruthRecord, **kw) -> Publication:
    """A prediction equal to the truth record, written the way the page writes it."""
    base = dict(pub_title=t.pub_title, doi=t.doi, journal=t.journal, year=int(t.year) if t.year else None,
                authors=[f"{a.split()[-1]}, {' '.join(a.split()[:-1])}" for a in t.authors], volume=t.volume,
                issue=t.issue, pages=t.pages, url=t.url, confidence_score=0.9)
    base.update(kw)
    return Publication(**base)


TRUTH = TruthIndex([truth_record(1), truth_record(2), truth_record(3, journal=None), truth_record(4)])


def unit_text(*ns: int) -> str:
    return "\n".join(f'<li><a href="http://dx.doi.org/10.5555/t.{n}">10.5555/t.{n}</a> '
                     f'<a href="https://zenodo.org/record/{n}/files/article.pdf">PDF</a></li>' for n in ns)


# ---- authors ----------------------------------------------------------------------------------------
def test_match_authors_full_names_then_surname_initial():
    assert match_authors(["koustuv sinha", "jesse dodge"], ["jesse dodge", "koustuv sinha"]) == 2
    assert match_authors(["k sinha", "j dodge", "x other"], ["koustuv sinha", "jesse dodge", "sasha luccioni"]) == 2
    assert match_authors(["k sinha"], ["j sinha"]) == 0  # same surname, other initial
    assert match_authors(["koustuv sinha", "koustuv sinha"], ["koustuv sinha"]) == 1  # one-to-one
    assert match_authors([], ["a b"]) == 0


def test_author_prf_micro():
    m = author_prf([(["Sinha, K.", "Doe, J."], ["Koustuv Sinha", "Jesse Dodge"]),  # 1 of 2 / 1 of 2
                    (["Ada Lovelace"], ["Ada Lovelace", "Charles Babbage"])])  # 1 of 1 / 1 of 2
    assert (m["predicted"], m["truth"], m["matched"]) == (3, 4, 2)
    assert m["precision"] == pytest.approx(2 / 3) and m["recall"] == pytest.approx(0.5)
    assert m["f1"] == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    assert author_prf([])["precision"] is None
    assert author_prf([(["X Y"], ["A B"])])["f1"] == 0.0


# ---- fields -----------------------------------------------------------------------------------------------
def test_field_correct_after_normalisation():
    assert field_correct("pages", "48", "{#48}")
    assert field_correct("doi", "https://doi.org/10.5555/T.1", "10.5555/t.1")
    assert field_correct("year", 2022, "2022")
    assert field_correct("authors", ["K. Sinha", "Jesse Dodge"], ["Koustuv Sinha", "Jesse Dodge"])
    assert not field_correct("authors", ["Koustuv Sinha"], ["Koustuv Sinha", "Jesse Dodge"])
    assert not field_correct("authors", ["Koustuv Sinha", "Jesse Dodge", "Extra Person"], ["Koustuv Sinha", "Jesse Dodge"])
    assert field_correct("journal", None, None)  # both empty
    assert not field_correct("journal", "ReScience C", None)
    assert not field_correct("volume", None, "8")


def test_field_accuracy_known_counts():
    t1, t2 = TRUTH.records["10.5555/t.1"], TRUTH.records["10.5555/t.2"]
    pairs = [(pub_from(t1), t1), (pub_from(t2, pages="99", volume=None), t2)]
    acc = field_accuracy(pairs)
    assert acc["pages"] == {"accuracy": 0.5, "correct": 1, "n": 2}
    assert acc["volume"]["accuracy"] == 0.5
    assert all(acc[f]["accuracy"] == 1.0 for f in FIELDS if f not in ("pages", "volume"))
    assert field_accuracy([])["doi"]["accuracy"] is None


# ---- records ------------------------------------------------------------------------------------------------
def test_record_scores():
    s = record_scores(10, 8, 6)
    assert s["recall"] == 0.6 and s["precision"] == 0.75 and s["f1"] == pytest.approx(2 / 3)
    assert record_scores(0, 0, 0) == {"recall": None, "precision": None, "f1": None}
    assert record_scores(5, 2, 0)["f1"] == 0.0


def test_match_records_doi_then_title_one_to_one():
    t = TRUTH.records
    preds = [
        RecordMatch("u", 0, pub_from(t["10.5555/t.1"], doi="https://doi.org/10.5555/T.1")),  # by DOI
        RecordMatch("u", 1, pub_from(t["10.5555/t.1"])),  # duplicate: truth already taken
        RecordMatch("u", 2, pub_from(t["10.5555/t.2"], doi="10.5555/wrong")),  # by title
        RecordMatch("u", 3, Publication(pub_title="Something else", doi="10.5555/t.4")),  # not in allowed
    ]
    match_records(preds, TRUTH, allowed={"10.5555/t.1", "10.5555/t.2", "10.5555/t.3"})
    assert [(m.truth_doi, m.by) for m in preds] == [
        ("10.5555/t.1", "doi"), (None, None), ("10.5555/t.2", "title"), (None, None)]


# ---- hallucination -----------------------------------------------------------------------------------------
def test_doi_and_url_in_input():
    text = unit_text(1)
    assert doi_in_input("10.5555/T.1", text) and doi_in_input("https://doi.org/10.5555/t.1", text)
    assert not doi_in_input("10.5555/t.2", text)
    assert url_in_input("http://zenodo.org/record/1/files/article.pdf", text)
    assert not url_in_input("https://zenodo.org/record/2/files/article.pdf", text)
    assert doi_in_input(None, text) and url_in_input("", text)


def test_hallucinated_fields():
    t1, t3 = TRUTH.records["10.5555/t.1"], TRUTH.records["10.5555/t.3"]
    assert hallucinated_fields(pub_from(t1), unit_text(1), t1) == []
    assert hallucinated_fields(pub_from(t1, doi="10.5555/example.2041"), unit_text(1), t1) == ["doi"]
    assert hallucinated_fields(pub_from(t1, url="https://made.up/x.pdf"), unit_text(1), None) == ["url"]
    # truth t3 has no journal: filling one is a hallucination; leaving it empty is right
    assert hallucinated_fields(pub_from(t3, journal="ReScience C"), unit_text(3), t3) == ["journal"]
    assert hallucinated_fields(pub_from(t3), unit_text(3), t3) == []


# ---- calibration ----------------------------------------------------------------------------------------
def test_calibration_known_values_and_sklearn():
    conf = [0.1, 0.3, 0.9, 0.95]
    correct = [False, False, True, False]
    c = calibration(conf, correct, n_bins=5)
    assert c["n"] == 4 and c["missing_confidence"] == 0
    assert [b["n"] for b in c["bins"]] == [1, 1, 0, 0, 2]
    assert c["bins"][4]["accuracy"] == 0.5 and c["bins"][4]["mean_confidence"] == pytest.approx(0.925)
    assert c["ece"] == pytest.approx(0.25 * 0.1 + 0.25 * 0.3 + 0.5 * 0.425)
    assert c["brier"] == pytest.approx(brier_score_loss(correct, conf))
    prob_true, prob_pred = calibration_curve(correct, conf, n_bins=5, strategy="uniform")
    ours = [(b["accuracy"], b["mean_confidence"]) for b in c["bins"] if b["n"]]
    assert np.allclose([o[0] for o in ours], prob_true) and np.allclose([o[1] for o in ours], prob_pred)


def test_calibration_edges():
    c = calibration([1.0, 0.0, None], [True, False, True], n_bins=4)
    assert c["n"] == 2 and c["missing_confidence"] == 1
    assert c["bins"][3]["n"] == 1 and c["bins"][0]["n"] == 1  # 1.0 falls in the last bin
    assert c["ece"] == 0.0 and c["brier"] == 0.0
    empty = calibration([], [])
    assert empty["ece"] is None and empty["brier"] is None and all(b["n"] == 0 for b in empty["bins"])


# ---- a whole run --------------------------------------------------------------------------------------------
def test_score_run_known_answers():
    t = TRUTH.records
    units = [
        UnitResult("b0", unit_text(1), [pub_from(t["10.5555/t.1"], confidence_score=0.95)]),  # perfect
        UnitResult("b1", unit_text(2), [pub_from(t["10.5555/t.2"], pages="7", confidence_score=0.85),  # 1 wrong field
                                        Publication(pub_title="Navigation", doi="10.9999/fake", confidence_score=0.5)]),
        UnitResult("b2", unit_text(3), None, error=None),  # invalid answer: t.3 missed
        UnitResult("b3", "<li>no doi here</li>", []),
    ]
    s = score_run(units, TRUTH, n_bins=5)
    m = s.metrics
    assert (m["units"], m["valid_units"], m["truth_records"], m["predicted_records"], m["matched_records"]) == (4, 3, 3, 3, 2)
    assert m["record"]["recall"] == pytest.approx(2 / 3) and m["record"]["precision"] == pytest.approx(2 / 3)
    assert m["field_accuracy"]["pages"]["accuracy"] == 0.5 and m["field_accuracy"]["doi"]["accuracy"] == 1.0
    assert m["mean_field_accuracy"] == pytest.approx((8 * 1.0 + 0.5) / 9)
    assert m["exact_record_rate"] == 0.5
    assert m["authors"]["f1"] == 1.0
    h = m["hallucination"]
    assert h["records_with_hallucination"] == 1 and h["doi_not_in_input"] == 1 and h["rate"] == pytest.approx(1 / 3)
    assert m["calibration"]["n"] == 3 and m["calibration"]["accuracy"] == pytest.approx(1 / 3)
    status = [(r["unit"], r["status"]) for r in s.rows]
    assert status == [("b0", "matched"), ("b1", "matched"), ("b1", "unmatched"), ("b2", "missed")]
    g = gap(m, m)
    assert set(g) == set(headline(m)) and all(v in (0, 0.0, None) for v in g.values())
