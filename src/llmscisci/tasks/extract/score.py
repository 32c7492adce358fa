"""Scoring extracted records against the answer key. Pure functions with typed inputs.

- Records are joined to the truth on normalised DOI, then (for those left) on normalised title; each
  truth record is matched at most once. The truth set of a run is the bib entries whose DOI occurs in
  the inputs the model saw.
- Per-field accuracy is over matched records, after normalisation (see normalize.py). A field is
  correct when both sides normalise to the same value (both empty counts as correct).
- Authors: a predicted name matches a truth name by full normalised name, else by surname + first
  initial (so "K. Sinha" matches "Koustuv Sinha"); one-to-one. The author field is correct when every
  name on both sides is matched. Precision/recall/F1 are micro-averaged over matched records.
- Record recall = truth records found / truth records; precision = predicted records that match a
  truth record / predicted records.
- Hallucination: a predicted record hallucinates when it gives a DOI or URL that appears nowhere in its
  input, or fills a field whose truth is empty. The rate is over predicted records.
- Calibration: a record is correct when it is matched and all its fields are correct; confidence_score
  is binned uniformly on [0, 1]; ECE (expected calibration error) and the Brier score summarise it.
"""

from __future__ import annotations

import html as htmllib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from llmscisci.tasks.extract.normalize import (
    name_key,
    normalize_authors,
    normalize_doi,
    normalize_field,
    normalize_title,
    normalize_url,
)
from llmscisci.tasks.extract.schema import FIELDS, Publication
from llmscisci.tasks.extract.truth import DOI_RE, TruthIndex, TruthRecord


@dataclass
class UnitResult:
    """One unit's input and what was extracted from it (`records` None: no usable answer)."""

    unit_id: str
    text: str
    records: list[Publication] | None
    repaired: bool = False
    error: str | None = None


@dataclass
class RecordMatch:
    unit_id: str
    index: int  # position of the record in its unit's answer
    record: Publication
    truth_doi: str | None = None
    by: str | None = None  # "doi" | "title" | None


# ---- fields -------------------------------------------------------------------------------------
def match_authors(pred: Sequence[str], truth: Sequence[str]) -> int:
    """Number of one-to-one matches between two normalised author lists: exact names first, then
    surname + first initial among those left."""
    p_left = list(pred)
    t_left = list(truth)
    n = 0
    for name in list(p_left):
        if name in t_left:
            t_left.remove(name)
            p_left.remove(name)
            n += 1
    for name in list(p_left):
        key = name_key(name)
        for t in t_left:
            tk = name_key(t)
            if key[0] == tk[0] and (not key[1] or not tk[1] or key[1] == tk[1]):
                t_left.remove(t)
                n += 1
                break
    return n


def field_correct(name: str, pred_value, truth_value) -> bool:
    """Whether one field agrees after normalisation (authors: every name matched both ways)."""
    p = normalize_field(name, pred_value)
    t = normalize_field(name, truth_value)
    if name == "authors":
        return len(p) == len(t) and match_authors(p, t) == len(t)
    return p == t


def field_accuracy(pairs: Sequence[tuple[Publication, TruthRecord]]) -> dict:
    """Per-field accuracy over matched (prediction, truth) pairs."""
    out = {}
    for name in FIELDS:
        correct = sum(field_correct(name, getattr(p, name), t.get(name)) for p, t in pairs)
        out[name] = {"accuracy": correct / len(pairs) if pairs else None, "correct": correct, "n": len(pairs)}
    return out


def author_prf(pairs: Sequence[tuple[Sequence[str], Sequence[str]]]) -> dict:
    """Micro precision/recall/F1 of author names over (predicted, truth) raw author lists."""
    n_pred = n_true = n_match = 0
    for pred, truth in pairs:
        p, t = normalize_authors(list(pred)), normalize_authors(list(truth))
        n_pred += len(p)
        n_true += len(t)
        n_match += match_authors(p, t)
    prec = n_match / n_pred if n_pred else None
    rec = n_match / n_true if n_true else None
    f1 = 2 * prec * rec / (prec + rec) if prec and rec else (0.0 if prec is not None and rec is not None else None)
    return {"precision": prec, "recall": rec, "f1": f1, "predicted": n_pred, "truth": n_true, "matched": n_match}


# ---- records ------------------------------------------------------------------------------------
def match_records(preds: Sequence[RecordMatch], truth: TruthIndex, allowed: set[str]) -> list[RecordMatch]:
    """Join predicted records to truth records in `allowed` (the run's truth set): by normalised DOI,
    then by normalised title; one-to-one, in answer order. Fills `truth_doi` and `by` in place."""
    taken: set[str] = set()
    for m in preds:
        d = normalize_doi(m.record.doi)
        if d and d in allowed and d not in taken:
            m.truth_doi, m.by = d, "doi"
            taken.add(d)
    titles = {t: d for t, d in truth.by_title().items() if d in allowed}
    for m in preds:
        if m.truth_doi is None:
            d = titles.get(normalize_title(m.record.pub_title) or "")
            if d and d not in taken:
                m.truth_doi, m.by = d, "title"
                taken.add(d)
    return list(preds)


def record_scores(n_truth: int, n_pred: int, n_matched: int) -> dict:
    rec = n_matched / n_truth if n_truth else None
    prec = n_matched / n_pred if n_pred else None
    f1 = 2 * prec * rec / (prec + rec) if prec and rec else (0.0 if prec is not None and rec is not None else None)
    return {"recall": rec, "precision": prec, "f1": f1}


# ---- hallucination --------------------------------------------------------------------------------
def _input_form(text: str) -> tuple[str, set[str]]:
    t = htmllib.unescape(text).casefold()
    return t, {normalize_doi(x) for x in DOI_RE.findall(t)}


def doi_in_input(doi: str | None, text: str) -> bool:
    """Whether a DOI (any spelling) occurs in the input text."""
    d = normalize_doi(doi)
    if not d:
        return True
    t, dois = _input_form(text)
    return d in dois or d in t


def url_in_input(url: str | None, text: str) -> bool:
    """Whether a URL (scheme, www. and trailing slash aside) occurs in the input text."""
    u = normalize_url(url)
    if not u:
        return True
    return u in htmllib.unescape(text).casefold()


def hallucinated_fields(record: Publication, text: str, truth: TruthRecord | None) -> list[str]:
    """Fields of one record that are hallucinated: DOI/URL absent from the input, or any field filled
    where the (matched) truth is empty."""
    out = []
    if record.doi and not doi_in_input(record.doi, text):
        out.append("doi")
    if record.url and not url_in_input(record.url, text):
        out.append("url")
    if truth is not None:
        for name in FIELDS:
            if name in out:
                continue
            p, t = normalize_field(name, getattr(record, name)), normalize_field(name, truth.get(name))
            if p and not t:
                out.append(name)
    return out


def hallucination_summary(flags: Sequence[list[str]], records: Sequence[Publication],
                          truths: Sequence[TruthRecord | None]) -> dict:
    n = len(flags)
    doi_filled = sum(1 for r in records if normalize_doi(r.doi))
    url_filled = sum(1 for r in records if normalize_url(r.url))
    empty_fields = sum(1 for t in truths if t is not None for f in FIELDS if not normalize_field(f, t.get(f)))
    filled_empty = sum(1 for fl, t in zip(flags, truths) if t is not None for f in fl
                       if not normalize_field(f, t.get(f)))
    return {
        "rate": sum(1 for fl in flags if fl) / n if n else None,
        "records_with_hallucination": sum(1 for fl in flags if fl),
        "records": n,
        "doi_not_in_input": sum("doi" in fl for fl in flags),
        "doi_filled": doi_filled,
        "url_not_in_input": sum("url" in fl for fl in flags),
        "url_filled": url_filled,
        "filled_where_truth_empty": filled_empty,
        "truth_empty_fields": empty_fields,
    }


# ---- calibration ------------------------------------------------------------------------------------
def calibration(confidence: Sequence[float | None], correct: Sequence[bool],
                field_acc: Sequence[float] | None = None, n_bins: int = 5) -> dict:
    """Correctness vs confidence in `n_bins` uniform bins on [0, 1] (the last bin includes 1.0).

    Records without a confidence are left out (counted). ECE = sum_b n_b/N * |accuracy_b - confidence_b|.
    """
    idx = [i for i, c in enumerate(confidence) if c is not None]
    conf = np.clip(np.array([confidence[i] for i in idx], dtype=float), 0.0, 1.0)
    y = np.array([bool(correct[i]) for i in idx], dtype=float)
    fa = np.array([field_acc[i] for i in idx], dtype=float) if field_acc is not None else None
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=False), 0, n_bins - 1) if len(conf) else np.array([], int)
    bins, ece = [], 0.0
    for b in range(n_bins):
        sel = which == b
        nb = int(sel.sum())
        row = {"lo": round(float(edges[b]), 6), "hi": round(float(edges[b + 1]), 6), "n": nb,
               "mean_confidence": float(conf[sel].mean()) if nb else None,
               "accuracy": float(y[sel].mean()) if nb else None}
        if fa is not None:
            row["mean_field_accuracy"] = float(fa[sel].mean()) if nb else None
        if nb:
            ece += nb / len(conf) * abs(row["accuracy"] - row["mean_confidence"])
        bins.append(row)
    n = len(conf)
    return {
        "n": n,
        "missing_confidence": len(confidence) - n,
        "bins": bins,
        "ece": float(ece) if n else None,
        "brier": float(np.mean((conf - y) ** 2)) if n else None,
        "mean_confidence": float(conf.mean()) if n else None,
        "accuracy": float(y.mean()) if n else None,
    }


# ---- a whole run ---------------------------------------------------------------------------------------
@dataclass
class Scored:
    metrics: dict
    rows: list[dict] = field(default_factory=list)  # one per predicted record, then one per missed truth


def truth_set(units: Sequence[UnitResult], truth: TruthIndex) -> dict[str, str]:
    """DOI -> id of the first unit whose input holds it."""
    out: dict[str, str] = {}
    for u in units:
        for d in truth.dois_in(u.text):
            out.setdefault(d, u.unit_id)
    return out


def score_run(units: Sequence[UnitResult], truth: TruthIndex, n_bins: int = 5) -> Scored:
    """Every score of one run (model or baseline) over its units."""
    tset = truth_set(units, truth)
    preds = [RecordMatch(u.unit_id, i, r) for u in units for i, r in enumerate(u.records or [])]
    texts = {u.unit_id: u.text for u in units}
    match_records(preds, truth, set(tset))
    matched = [m for m in preds if m.truth_doi]
    pairs = [(m.record, truth.records[m.truth_doi]) for m in matched]

    per_field = field_accuracy(pairs)
    accs = [v["accuracy"] for v in per_field.values() if v["accuracy"] is not None]
    flags, correct, facc, rows = [], [], [], []
    for m in preds:
        t = truth.records.get(m.truth_doi) if m.truth_doi else None
        fl = hallucinated_fields(m.record, texts[m.unit_id], t)
        flags.append(fl)
        ok = {f: field_correct(f, getattr(m.record, f), t.get(f)) for f in FIELDS} if t else {}
        fa = sum(ok.values()) / len(FIELDS) if t else 0.0
        correct.append(bool(t) and all(ok.values()))
        facc.append(fa)
        row = {"unit": m.unit_id, "record": m.index, "status": "matched" if t else "unmatched",
               "truth_doi": m.truth_doi, "matched_by": m.by,
               "confidence_score": m.record.confidence_score, "field_accuracy": round(fa, 4),
               "hallucinated": ";".join(fl)}
        for f in FIELDS:
            v = getattr(m.record, f)
            row[f] = "; ".join(v) if isinstance(v, list) else v
            row[f"{f}_correct"] = ok.get(f) if t else None
        row["extraction_warnings"] = "; ".join(m.record.extraction_warnings)
        rows.append(row)
    found = {m.truth_doi for m in matched}
    for d, uid in tset.items():
        if d not in found:
            rows.append({"unit": uid, "record": None, "status": "missed", "truth_doi": d})

    n_valid = sum(1 for u in units if u.records is not None)
    metrics = {
        "units": len(units),
        "valid_units": n_valid,
        "valid_rate": n_valid / len(units) if units else None,
        "repaired_units": sum(1 for u in units if u.repaired),
        "failed_units": sum(1 for u in units if u.error),
        "truth_records": len(tset),
        "predicted_records": len(preds),
        "matched_records": len(matched),
        "matched_by": {"doi": sum(m.by == "doi" for m in matched), "title": sum(m.by == "title" for m in matched)},
        "record": record_scores(len(tset), len(preds), len(matched)),
        "field_accuracy": per_field,
        "mean_field_accuracy": sum(accs) / len(accs) if accs else None,
        "exact_record_rate": sum(correct) / len(matched) if matched else None,
        "authors": author_prf([(p.authors, t.authors) for p, t in pairs]),
        "hallucination": hallucination_summary(flags, [m.record for m in preds],
                                               [truth.records.get(m.truth_doi) if m.truth_doi else None for m in preds]),
        "calibration": calibration([m.record.confidence_score for m in preds], correct, facc, n_bins=n_bins),
    }
    return Scored(metrics=metrics, rows=rows)


HEADLINE = ("record.recall", "record.precision", "record.f1", "mean_field_accuracy", "exact_record_rate",
            "authors.f1", "hallucination.rate", "calibration.ece", "valid_rate")


def headline(metrics: dict) -> dict:
    """The few numbers a table shows, flattened ("record.recall": 0.93, ...)."""
    out = {}
    for key in HEADLINE:
        v = metrics
        for part in key.split("."):
            v = v.get(part) if isinstance(v, dict) else None
        out[key] = v
    return out


def gap(model: dict, baseline: dict) -> dict:
    """model - baseline for each headline number (None where either is undefined)."""
    m, b = headline(model), headline(baseline)
    return {k: (m[k] - b[k] if isinstance(m[k], (int, float)) and isinstance(b[k], (int, float)) else None)
            for k in HEADLINE}
