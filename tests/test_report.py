"""Reports from fixture run folders (no model): collection, numbers, HTML and Markdown twins, CLI."""

from __future__ import annotations

import base64
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from llmscisci.metrics import stats as S
from llmscisci.report import write_report
from llmscisci.report.build import build_report, json_tables
from llmscisci.report.collect import collect

SHORTS = {"easy": ["code", "artifacts", "readability", "setup", "none"],
          "difficult": ["algorithm", "nuance", "documentation", "math", "none"]}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _reference(rng, n):
    out = []
    for _ in range(n):
        v = (rng.random(5) < 0.35).astype(int)
        v[4] = 0
        if not v.any():
            v[:] = 0
            v[4] = 1
        out.append(v.tolist())
    return out


def write_label_run(path: Path, *, task: str, model: str, variant: str, noise: float, invalid: float,
                    seed: int, n_dois: int = 30, paraphrase=None, cost: float | None = None,
                    metrics_override: dict | None = None) -> Path:
    """A labelling run folder as `llmscisci label` writes it."""
    rng = np.random.default_rng(seed)
    ref_rng = np.random.default_rng({"easy": 1, "difficult": 2}[task])
    refs = _reference(ref_rng, n_dois)
    path.mkdir(parents=True)
    config = {"kind": "label", "task": task, "variant": variant, "model": model, "hash": f"h{seed}",
              "split": {"seed": 2025, "test_fraction": 0.2}, "backend": {"name": "fixture"},
              "codebook": {"shorts": SHORTS[task], "none": "none"}}
    if paraphrase is not None:
        config["paraphrase"] = paraphrase
    (path / "config.json").write_text(json.dumps(config))
    recs = []
    for i, ref in enumerate(refs):
        bad = rng.random() < invalid
        pred = None if bad else [int(x) if rng.random() > noise else 1 - int(x) for x in ref]
        recs.append({"doi": f"10.5281/zenodo.{1000 + i}", "task": task,
                     "split": "test" if i % 5 == 0 else "train", "reference": ref, "labels": pred,
                     "valid": not bad, "repaired": bool(not bad and i % 7 == 0),
                     "raw": "garbled" if bad else json.dumps(pred), "tokens_in": 400 + i,
                     "tokens_out": 12 + i % 4, "seconds": 0.5 + 0.01 * i, "cost_usd": cost})
    with (path / "predictions.jsonl").open("w") as fh:
        for r in recs:
            fh.write(json.dumps(r) + "\n")
    metrics = {"n_items": len(recs)}
    for split in ("all", "test"):
        sel = [r for r in recs if split == "all" or r["split"] == split]
        y = S.as_prediction_matrix([r["reference"] for r in sel], 5)
        p = S.as_prediction_matrix([r["labels"] for r in sel], 5)
        metrics[split] = S.headline_metrics(y, p)
    metrics["baselines"] = {"majority": {"all": {"hamming_loss": 0.3, "subset_accuracy": 0.1, "micro_f1": 0.4,
                                                 "macro_f1": 0.2}}}
    for k, v in (metrics_override or {}).items():
        metrics["all"][k] = v
    (path / "metrics.json").write_text(json.dumps(metrics))
    return path


def _stat(v, n=30, reason=None):
    return {"value": v, "n": n, "reason": reason}


# the shape `llmscisci agree --json` writes
AGREE_OUTPUT = {
    "files": ["annotator_a.jsonl", "annotator_b.jsonl"],
    "tasks": {"easy": {
        "labels": SHORTS["easy"], "coders": ["annotator_a", "annotator_b"], "n_items": 30, "n_complete": 30,
        "pairs": [{"a": "annotator_a", "b": "annotator_b", "n": 30, "exact_match": _stat(0.9),
                   "hamming_agreement": _stat(0.98), "hamming_loss": _stat(0.02),
                   "kappa": {"code": _stat(0.91), "none": _stat(None, 30, "both coders gave every item 0")},
                   "mean_kappa": _stat(0.91)}],
        "per_label": [{"label": "code", "fleiss_kappa": _stat(0.9), "krippendorff_alpha": _stat(0.905),
                       "mean_pair_kappa": _stat(0.91), "positives": {"annotator_a": 11, "annotator_b": 12}}],
        "groups": {}, "group_pairs": [], "group_stats": {},
    }},
}


def make_tree(root: Path) -> Path:
    """A grid of label runs (2 tasks x 2 models x 2 variants, + paraphrases), a DPO and a GRPO training
    folder, an agreement table and an extraction run."""
    grid = root / "grid"
    cells = []
    seed = 0
    for task in ("easy", "difficult"):
        for model, noise in (("smollm2-135m", 0.3), ("openai:gpt-4o-mini", 0.08)):
            for variant, inv in (("icl", 0.2), ("structured", 0.0)):
                seed += 1
                d = f"{task}-{model.replace(':', '_')}-{variant}"
                cost = 0.0004 if model.startswith("openai") else None
                write_label_run(grid / d, task=task, model=model, variant=variant, noise=noise, invalid=inv,
                                seed=seed, cost=cost)
                cells.append({"dir": d, "task": task, "model": model, "variant": variant})
    for k in range(3):
        seed += 1
        d = f"easy-smollm2-guidelines-p{k}"
        write_label_run(grid / d, task="easy", model="smollm2-135m", variant="guidelines",
                        noise=0.2 + 0.05 * k, invalid=0.05, seed=seed, paraphrase=k)
        cells.append({"dir": d})
    (grid / "grid.json").write_text(json.dumps({"name": "fixture grid", "cells": cells}))

    dpo = grid / "train-dpo"
    dpo.mkdir()
    with (dpo / "train_log.jsonl").open("w") as fh:
        for step in range(1, 21):
            fh.write(json.dumps({"step": step, "epoch": step / 20, "loss": 0.69 * np.exp(-step / 10),
                                 "rewards/chosen": 0.05 * step, "rewards/rejected": -0.04 * step,
                                 "rewards/accuracies": min(1.0, 0.5 + 0.03 * step),
                                 "rewards/margins": 0.09 * step, "learning_rate": 5e-6}) + "\n")
    (dpo / "train_config.json").write_text(json.dumps({"method": "dpo", "beta": 0.1, "lora": {"r": 16}}))
    (dpo / "checkpoint-10").mkdir()
    (dpo / "checkpoint-10" / "config.json").write_text(json.dumps({"model_type": "llama"}))
    grpo = grid / "train-grpo"
    grpo.mkdir()
    with (grpo / "train_log.jsonl").open("w") as fh:
        for step in range(1, 31):
            fh.write(json.dumps({"step": step, "loss": 0.01 * np.sin(step), "reward": 0.2 + 0.02 * step,
                                 "rewards/format": 0.5 + 0.01 * step, "rewards/labels": 0.1 + 0.015 * step,
                                 "kl": 0.001 * step, "completion_length": 80 - step}) + "\n")
    (grpo / "train_config.json").write_text(json.dumps({"method": "grpo", "num_generations": 4}))

    agree = grid / "agreement"
    agree.mkdir()
    (agree / "annotators.json").write_text(json.dumps(AGREE_OUTPUT))  # found by its shape
    extra = {"krippendorff_alpha": {"code": 0.9, "none": 1.0}}
    (agree / "agreement_extra.json").write_text(json.dumps(extra))
    ext = grid / "extract-run"
    ext.mkdir()
    (ext / "config.json").write_text(json.dumps({"kind": "extract", "task": "extract", "model": "baseline",
                                                 "hash": "x1"}))
    (ext / "metrics.json").write_text(json.dumps({"n_items": 12, "fields": {"title": 0.9, "year": 1.0}}))
    return grid


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    return make_tree(tmp_path_factory.mktemp("report"))


@pytest.fixture(scope="module")
def written(tree, tmp_path_factory):
    """One report of the fixture tree, shared by the tests below (figures take most of the time)."""
    return write_report(tree, tmp_path_factory.mktemp("out") / "report", n_boot=400, seed=3)


def test_collect_finds_every_kind(tree):
    col = collect(tree)
    assert len(col.label_runs) == 11
    assert [r.task for r in col.label_runs[:7]] == ["easy"] * 7
    assert {t.method for t in col.train_runs} == {"DPO", "GRPO"}
    assert len(col.other_runs) == 1 and col.other_runs[0].kind == "extract"
    found = sorted(t.name for t in col.agreement)
    assert found == ["agreement/agreement_extra.json", "agreement/annotators.json"]
    # the checkpoint's (Hugging Face) config.json inside the training folder is not a run
    assert not any("checkpoint" in r.name for r in col.other_runs)
    names = [r.name for r in col.label_runs if r.task == "easy"]
    assert "smollm2-135m / icl" in names and "smollm2-135m / guidelines / p1" in names
    assert len(set(names)) == len(names)


class _Parsed(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: dict[str, int] = {}
        self.imgs: list[str] = []
        self.external: list[str] = []
        self.ids: list[str] = []
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags[tag] = self.tags.get(tag, 0) + 1
        a = dict(attrs)
        if tag == "img":
            self.imgs.append(a.get("src", ""))
        for k in ("src", "href"):
            v = a.get(k)
            if v and not v.startswith(("data:", "#")):
                self.external.append(v)
        if tag == "a":
            self.hrefs.append(a.get("href", ""))
        if "id" in a:
            self.ids.append(a["id"])


def test_report_html_is_self_contained_and_complete(written):
    w = written
    html = w.html.read_text("utf-8")
    p = _Parsed()
    p.feed(html)
    assert p.external == []  # no external resources at all
    assert "<script" not in html
    assert p.tags["img"] == len(w.figures) >= 6  # results x2, per-label x2, validity, 2 training
    for src in p.imgs:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == PNG_MAGIC
    assert p.tags["table"] == w.n_tables
    for sec in ("Results", "Paired comparisons", "Prompt sensitivity", "Per-label F1", "Confusion per label",
                "Output validity, tokens, cost and time", "Agreement", "Training curves", "Other runs"):
        assert f">{sec}<" in html, sec
    assert len(p.ids) == len(set(p.ids))
    assert all(h[1:] in p.ids for h in p.hrefs if h.startswith("#"))
    assert "krippendorff_alpha" in html and "rewards/margins" in html and "fields.title" in html


def test_agreement_tables(written):
    tables = {t.caption: t for t in written.report.tables()}
    pairs = tables["agreement/annotators.json: tasks: easy: pairs"]
    assert pairs.columns[:4] == ["a", "b", "n", "exact_match"]
    row = dict(zip(pairs.columns, pairs.rows[0]))
    assert row["exact_match"] == "0.900" and row["kappa.code"] == "0.910" and row["kappa.none"] == "undefined"
    per_label = tables["agreement/annotators.json: tasks: easy: per_label"]
    assert dict(zip(per_label.columns, per_label.rows[0]))["positives.annotator_b"] == "12"
    head = tables["agreement/annotators.json: tasks: easy"]
    assert ["coders", "annotator_a, annotator_b"] in head.rows


def test_markdown_twin_matches_html(written):
    w = written
    md = w.markdown.read_text("utf-8")
    html = w.html.read_text("utf-8")
    linked = re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", md)
    assert sorted(linked) == sorted(f.name for f in w.figures)
    for f in w.figures:
        assert f.read_bytes()[:8] == PNG_MAGIC
        # the same figure is embedded in the HTML
        assert base64.b64encode(f.read_bytes()).decode()[:200] in html
    md_tables = len(re.findall(r"^\|(?:---:?\|)+$", md, flags=re.MULTILINE))
    assert md_tables == w.n_tables


def test_results_numbers_match_the_statistics(tree, written):
    col = collect(tree)
    rep = written.report
    run = next(r for r in col.label_runs if (r.task, r.model, r.variant) == ("easy", "smollm2-135m", "icl"))
    dois = [r.doi for r in run.scored()]
    y = S.as_prediction_matrix([r.reference for r in run.scored()], 5)
    p = S.as_prediction_matrix([r.labels for r in run.scored()], 5)
    ci = S.label_bootstrap(y, p, dois, n_boot=400, seed=3)
    table = next(t for t in rep.tables() if t.caption == "easy: all evaluated items")
    row = next(r for r in table.rows if r[:2] == ["smollm2-135m", "icl"])
    assert ci["micro_f1"].fmt() in row and ci["subset_accuracy"].fmt() in row
    assert row[table.columns.index("DOIs")] == "30"
    invalid = np.mean([r.labels is None for r in run.records])
    assert row[-1] == f"{100 * invalid:.1f}%"
    test = next(t for t in rep.tables() if t.caption == "easy: canonical test split")
    assert all(r[table.columns.index("DOIs")] == "6" for r in test.rows)


def test_confusion_and_paired_comparisons(tree, written):
    col = collect(tree)
    rep = written.report
    conf = next(t for t in rep.tables() if t.caption == "easy" and t.columns[1].startswith("code"))
    run = col.label_runs[0]
    y = S.as_prediction_matrix([r.reference for r in run.scored()], 5)
    p = S.as_prediction_matrix([r.labels for r in run.scored()], 5)
    tp, fp, fn, tn = S.confusion_counts(y, p)[0]
    assert conf.rows[0][1] == f"{tp}/{fp}/{fn}/{tn}"
    comp = next(t for t in rep.tables() if "McNemar p" in t.columns)
    # per task: 2 models x 2 variants -> 4 one-factor pairs; easy's guidelines paraphrases are compared
    # with each other only when they share a paraphrase index (none do)
    assert len(comp.rows) == 8
    sec = next(s for s in rep.sections if s.title == "Paired comparisons")
    assert any("8 pairs compared" in getattr(b, "text", "") for b in sec.blocks)


def test_sensitivity_and_training_tables(written):
    rep = written.report
    sens = next(t for t in rep.tables() if t.columns[:4] == ["Task", "Model", "Variant", "K"])
    assert sens.rows[0][:4] == ["easy", "smollm2-135m", "guidelines", "3"]
    curves = [t for t in rep.tables() if t.columns[:2] == ["Logged", "Points"]]
    assert len(curves) == 2
    dpo = next(t for t in curves if any(r[0] == "rewards/chosen" for r in t.rows))
    assert dpo.rows[0][0] == "loss" and dpo.rows[0][1] == "20"  # loss first, every step
    assert not any(r[0] in ("step", "epoch") for r in dpo.rows)


def test_metrics_json_mismatch_is_reported(tmp_path):
    write_label_run(tmp_path / "run", task="easy", model="m", variant="icl", noise=0.2, invalid=0.1, seed=5,
                    metrics_override={"micro_f1": 0.999})
    rep = build_report(collect(tmp_path / "run"), n_boot=200)
    warns = [b.text for s in rep.sections for sub in s.blocks if hasattr(sub, "blocks")
             for b in sub.blocks if getattr(b, "kind", "") == "warn"]
    assert any("micro_f1 0.999" in w for w in warns)
    assert not any(s.title == "Paired comparisons" for s in rep.sections)  # one run: nothing to compare


def test_original_wording_gets_no_paraphrase_column(tmp_path):
    """Every labelling run records paraphrase 0 (the original wording); only a grid with paraphrases
    shows the column."""
    for v in ("icl", "guidelines"):
        write_label_run(tmp_path / v, task="easy", model="m", variant=v, noise=0.2, invalid=0.1, seed=5,
                        paraphrase=0)
    col = collect(tmp_path)
    assert [r.paraphrase for r in col.label_runs] == [None, None]
    assert sorted(r.name for r in col.label_runs) == ["m / guidelines", "m / icl"]
    write_label_run(tmp_path / "p1", task="easy", model="m", variant="icl", noise=0.2, invalid=0.1, seed=6,
                    paraphrase=1)
    assert sorted(r.paraphrase for r in collect(tmp_path).label_runs) == ["0", "0", "1"]


def test_json_tables_shapes():
    assert json_tables([{"a": 1, "b": 2}, {"a": 3, "c": 4}], "x")[0].columns == ["a", "b", "c"]
    t = json_tables({"r1": {"x": 0.5}, "r2": {"x": 0.25, "y": 1}})[0]
    assert t.columns == ["", "x", "y"] and t.rows[1] == ["r2", "0.250", "1"]
    nested = json_tables({"n": 3, "k": {"a": {"x": 1}}, "rows": [{"p": 1}]}, "agree")
    assert [t.caption for t in nested] == ["agree", "agree: k", "agree: rows"]


def test_cli_report_default_out_inside_run(tmp_path):
    from llmscisci.cli import app

    run = write_label_run(tmp_path / "run", task="difficult", model="m", variant="icl", noise=0.2,
                          invalid=0.0, seed=1)
    res = CliRunner().invoke(app, ["report", str(run), "--n-boot", "200"])
    assert res.exit_code == 0, res.output
    assert (run / "report" / "report.html").is_file() and (run / "report" / "report.md").is_file()
    assert str(run / "report" / "report.html") in res.stdout
    # a second report does not pick up the first one's folder; an explicit --out works too
    res = CliRunner().invoke(app, ["report", str(run), "--n-boot", "200", "--out", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "r" / "report.html").is_file()


@pytest.mark.parametrize("args, message", [
    (["{empty}"], "no run folders"),
    (["{missing}"], "no such folder"),
    (["{empty}", "--adjust", "magic"], "--adjust"),
])
def test_cli_bad_input_is_one_line(tmp_path, args, message, monkeypatch, capsys):
    from llmscisci.cli import main

    (tmp_path / "empty").mkdir()
    argv = [a.format(empty=tmp_path / "empty", missing=tmp_path / "nope") for a in args]
    monkeypatch.setattr("sys.argv", ["llmscisci", "report", *argv])
    with pytest.raises(SystemExit) as exc:
        main()
    err = capsys.readouterr().err
    assert exc.value.code == 2
    assert err.startswith("error: ") and message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "empty" / "report").exists()  # nothing written


def test_unlabelled_run_still_reports_validity_and_cost(tmp_path):
    run = write_label_run(tmp_path / "run", task="easy", model="m", variant="icl", noise=0.2, invalid=0.2,
                          seed=4)
    lines = [json.loads(x) for x in (run / "predictions.jsonl").read_text().splitlines()]
    with (run / "predictions.jsonl").open("w") as fh:
        for r in lines:
            fh.write(json.dumps({**r, "reference": None}) + "\n")
        fh.write('{"doi": "torn')  # a killed run's last line
    rep = build_report(collect(run), n_boot=200)
    titles = [s.title for s in rep.sections]
    assert "Output validity, tokens, cost and time" in titles
    assert "Results" not in titles and "Per-label F1" not in titles
    notes = [b.text for b in rep.sections[0].blocks if getattr(b, "kind", "") == "note"]
    assert any("1 of 1 labelling runs have no reference labels" in n for n in notes)
    validity = next(t for t in rep.tables() if "Invalid" in t.columns and "Cost (USD)" in t.columns)
    assert validity.rows[0][2] == "30"


def _blocks(rep, title):
    out = []

    def walk(blocks):
        for b in blocks:
            if hasattr(b, "blocks"):
                walk(b.blocks)
            else:
                out.append(b)

    walk(next(s for s in rep.sections if s.title == title).blocks)
    return out


def test_report_says_whether_labels_depend_on_the_text(tmp_path):
    reads = write_label_run(tmp_path / "reads", task="easy", model="m", variant="icl", noise=0.1, invalid=0.0,
                            seed=5)
    const = write_label_run(tmp_path / "const", task="easy", model="m", variant="guidelines", noise=0.0,
                            invalid=0.0, seed=5)
    lines = [json.loads(x) for x in (const / "predictions.jsonl").read_text().splitlines()]
    with (const / "predictions.jsonl").open("w") as fh:
        for r in lines:  # one answer whatever the text
            fh.write(json.dumps(r | {"labels": [1, 0, 0, 0, 0], "raw": "[1]"}) + "\n")
    m = json.loads((const / "metrics.json").read_text())
    m["placebo"] = {"n": 8, "unchanged": 8, "unchanged_share": 1.0, "kind": "neutral"}
    (const / "metrics.json").write_text(json.dumps(m))
    rep = build_report(collect(tmp_path), n_boot=200)
    blocks = _blocks(rep, "Does the model read the text?")
    (table,) = [b for b in blocks if hasattr(b, "rows")]
    rows = {r[1]: r for r in table.rows}
    assert rows["m / guidelines"][2:] == ["1", "30", "100% {code}", "none shown", "100% of 8"]
    assert rows["m / icl"][2] != "1" and rows["m / icl"][6] == "not run"
    warns = [b.text for b in blocks if getattr(b, "kind", "") == "warn"]
    assert len(warns) == 2 and all(w.startswith("easy, m / guidelines:") for w in warns)
    # what macro F1 averages over: the categories with reference positives, and the rare ones flagged
    per = _blocks(rep, "Per-label F1")
    macro = [b for b in per if hasattr(b, "rows") and "Macro F1 (with positives)" in b.columns]
    assert macro and "zero_division=0" in macro[0].caption
    support = dict(zip(SHORTS["easy"], [int(x) for x in next(b for b in per if hasattr(b, "rows") and
                                                               b.rows[-1][0].startswith("support")).rows[-1][1:]]))
    left = [c for c, s in support.items() if s == 0]
    assert all(r[3] == (", ".join(left) or "–") for r in macro[0].rows)
    few = [c for c, s in support.items() if s < 5]
    flagged = [b.text for b in per if getattr(b, "kind", "") == "warn" and "fewer than 5" in b.text]
    assert bool(flagged) == bool(few) and all(f"{c} ({support[c]})" in flagged[0] for c in few)


def test_the_results_say_what_each_run_kind_declares(tmp_path):
    """A sentence comes from the run kinds shown (TaskKind.report_note, through the task registry): the
    baseline kind's, once, only when a baseline run is in the report."""
    from llmscisci.tasks import registry

    registry.kinds()
    note = registry.get("baseline").report_note
    for name, kind in (("llm", "label"), ("clf", "baseline"), ("clf2", "baseline")):
        write_label_run(tmp_path / name, task="easy", model=name, variant="icl", noise=0.2, invalid=0.1, seed=5)
        cfg = json.loads((tmp_path / name / "config.json").read_text())
        (tmp_path / name / "config.json").write_text(json.dumps({**cfg, "kind": kind}))

    def results_text(root):
        rep = build_report(collect(root), n_boot=200)
        res = next(s for s in rep.sections if s.title == "Results")
        return [b.text for b in res.blocks if hasattr(b, "text")]

    assert results_text(tmp_path).count(note) == 1
    assert note not in results_text(tmp_path / "llm")
