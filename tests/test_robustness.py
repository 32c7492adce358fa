"""`llmscisci robustness` and `llmscisci code plan`: the statistics on constructed inputs, the command on
label files and run folders of the shared data, its JSON, its errors and its 80-column tables."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from console import run_console as run

from llmscisci.metrics.prevalence import Estimate
from llmscisci.metrics.robustness import Corpus, Point, difference, drivers, robustness, summarise

EASY_SHORTS = ["code", "artifacts", "readability", "setup", "none"]


# --- the statistics ---------------------------------------------------------------------------------
def _est(x, se):
    return Estimate("ppi", x, x - 1.96 * se, x + 1.96 * se, se, 10, 100)


def test_difference_sums_the_variances_of_independent_groups():
    d = difference(_est(0.5, 0.03), _est(0.3, 0.04))
    assert d.estimate == pytest.approx(0.2)
    assert d.se == pytest.approx(0.05)
    assert d.low == pytest.approx(0.2 - 1.959964 * 0.05, abs=1e-6)
    assert d.verdict == ">0"
    assert difference(_est(0.3, 0.04), _est(0.5, 0.03)).verdict == "<0"
    assert difference(_est(0.35, 0.05), _est(0.3, 0.05)).verdict == "n.d."
    undefined = difference(
        Estimate("ppi", None, None, None, None, 1, 10, reason="fewer than two coded items"), _est(0.3, 0.04)
    )
    assert undefined.estimate is None and undefined.verdict is None and "fewer" in undefined.reason


def _p(est, lo, hi):
    return Point(est, lo, hi, (hi - lo) / 3.92)


def test_summary_disagreement_and_sign_errors():
    naive = [_p(0.2, 0.1, 0.3), _p(0.15, 0.05, 0.25), _p(0.0, -0.1, 0.1), _p(-0.2, -0.3, -0.1)]
    corrected = [_p(0.05, -0.1, 0.2)] * 4
    points = [{"naive": n, "ppi": c, "dsl": c} for n, c in zip(naive, corrected)]
    s = summarise(points, _p(0.04, -0.2, 0.28))
    assert s["modal_corrected_verdict"] == "n.d."
    assert s["methods"]["naive"]["disagreement_rate"] == pytest.approx(0.75)
    assert s["methods"]["ppi"]["disagreement_rate"] == 0
    assert s["methods"]["naive"]["sign_error_rate"] == pytest.approx(0.25)  # the one "<0"
    assert s["methods"]["ppi"]["sign_error_rate"] == 0
    assert s["methods"]["naive"]["spread"]["range"] == pytest.approx(0.4)
    # a coded estimate of exactly 0 has no sign to contradict
    assert summarise(points, _p(0.0, -0.2, 0.2))["methods"]["naive"]["sign_error_rate"] is None


def test_modal_verdict_ties_go_to_not_distinguishable():
    a, b = _p(0.2, 0.1, 0.3), _p(0.0, -0.1, 0.1)
    s = summarise([{"naive": a, "ppi": a, "dsl": a}, {"naive": b, "ppi": b, "dsl": b}], None)
    assert s["modal_corrected_verdict"] == "n.d."


def test_drivers_find_the_factor_that_flips_verdicts():
    factors = [{"model": m, "variant": v, "paraphrase": "0"} for m in ("m1", "m2") for v in ("icl", "guide")]
    values = [[0.2, 0.0, 0.21, 0.01]]  # the variant moves the estimate, the model hardly
    verdicts = [[">0", "n.d.", ">0", "n.d."]]
    d = drivers(factors, values, verdicts)
    assert set(d) == {"model", "variant"}  # paraphrase has one level
    assert d["variant"]["flip_rate"] == 1.0 and d["variant"]["compared"] == 2
    assert d["model"]["flip_rate"] == 0.0
    assert d["variant"]["eta_squared"] > 0.99 > d["model"]["eta_squared"]


def test_robustness_end_to_end_on_arrays():
    rng = np.random.default_rng(0)
    n = 400
    truth = (rng.random((n, 1)) < 0.3).astype(float)
    groups = np.repeat(["2020", "2021"], n // 2)
    y = np.full((n, 1), np.nan)
    coded = rng.choice(n, 120, replace=False)
    y[coded] = truth[coded]
    good = truth.copy()
    biased = truth.copy()
    biased[n // 2 :] = 1.0 * ((truth[n // 2 :] == 1) | (rng.random((n // 2, 1)) < 0.4))  # 2021 inflated
    res = robustness(
        Corpus(y, ("cat",), groups),
        [{"name": "good", "factors": {"model": "a"}}, {"name": "biased", "factors": {"model": "b"}}],
        [(good, np.ones(n, bool)), (biased, np.ones(n, bool))],
    )
    d = res.to_dict()
    assert d["contrasts"] == ["2021 - 2020"]
    kinds = [(e["kind"], e["what"]) for e in d["estimands"]]
    assert kinds == [
        ("prevalence", "all"),
        ("prevalence", "2020"),
        ("prevalence", "2021"),
        ("contrast", "2021 - 2020"),
    ]
    c = d["estimands"][-1]
    assert c["per_configuration"][1]["naive"]["verdict"] == ">0"  # the biased labels see a difference
    assert c["per_configuration"][1]["ppi"]["verdict"] == "n.d."  # corrected, it is gone
    assert c["summary"]["methods"]["naive"]["disagreement_rate"] == 0.5
    assert c["summary"]["methods"]["ppi"]["disagreement_rate"] == 0.0
    with pytest.raises(ValueError, match="not a group"):
        robustness(
            Corpus(y, ("cat",), groups), [{"name": "good"}], [(good, np.ones(n, bool))], [("2022", "2020")]
        )


# --- the command ------------------------------------------------------------------------------------
def _annotators(data_dir: Path) -> list[str]:
    return [str(data_dir / "labels" / f"annotator_{k}.jsonl") for k in "abc"]


@pytest.fixture
def coded40(tmp_path, data_dir) -> Path:
    """40 reports' reference labels (both tasks), drawn with a fixed seed."""
    return draw_coded40(data_dir, tmp_path / "coded40.jsonl")


def _biased_grid(tmp_path: Path, data_dir: Path) -> Path:
    """A grid folder of two run folders: the annotator's labels, and a copy that calls `code` in every
    2021 report (two prompt variants of one model)."""
    import pandas as pd

    reports = pd.read_csv(data_dir / "mlrc_reports.csv", dtype=str)
    year = dict(zip(reports["doi"], reports["mlrc_year"]))
    base = [json.loads(x) for x in (data_dir / "labels" / "annotator_a.jsonl").read_text().splitlines()]
    grid = tmp_path / "grid"
    for variant, bias in (("plain", False), ("biased", True)):
        run_dir = grid / f"label_easy_{variant}"
        run_dir.mkdir(parents=True)
        (run_dir / "config.json").write_text(
            json.dumps(
                {
                    "kind": "label",
                    "task": "easy",
                    "variant": variant,
                    "model": "fake",
                    "params": {"temperature": 0.0},
                }
            )
        )
        with (run_dir / "predictions.jsonl").open("w") as fh:
            for r in base:
                if r["task"] != "easy":
                    continue
                labels = list(r["labels"])
                if bias and year[r["doi"]] == "2021":
                    labels = [1, *labels[1:4], 0]
                fh.write(
                    json.dumps({"doi": r["doi"], "task": "easy", "labels": labels, "valid": True}) + "\n"
                )
        (run_dir / "metrics.json").write_text("{}")
    partial = grid / "label_easy_killed"  # a killed run: no metrics.json, fewer items
    partial.mkdir()
    (partial / "config.json").write_text(
        json.dumps({"kind": "label", "task": "easy", "variant": "plain", "model": "killed"})
    )
    first = next(r for r in base if r["task"] == "easy")
    (partial / "predictions.jsonl").write_text(json.dumps({**first, "valid": True}) + "\n")
    (grid / "grid.json").write_text(json.dumps({"name": "fixture", "cells": []}))
    return grid


def test_cli_three_label_files_and_a_grid(tmp_path, data_dir, coded40, capsys, monkeypatch):
    grid = _biased_grid(tmp_path, data_dir)
    out_json = tmp_path / "robustness.json"
    code, out, err = run(
        [
            "robustness",
            *_annotators(data_dir),
            str(grid),
            "--gold",
            coded40,
            "--task",
            "easy",
            "--by",
            "mlrc_year",
            "--contrast",
            "2021,2020",
            "--data-dir",
            data_dir,
            "--json-out",
            out_json,
        ],
        capsys,
        monkeypatch,
    )
    assert code == 0, err
    for name in ("annotator_a", "annotator_c", "fake/plain", "fake/biased"):
        assert name in out
    assert "code 2021 - 2020" in out and "coded sample alone" in out
    assert "disagr. n/P/D" in out and "variant" in out  # summary and drivers tables
    res = json.loads(out_json.read_text())["tasks"]["easy"]
    assert res["n_items"] == 70 and res["n_coded"] == 40  # the killed run is left out, not intersected
    assert any("label_easy_killed: unfinished run" in n for n in res["notes"])
    assert [c["label"] for c in res["configurations"]] == [
        "annotator_a",
        "annotator_b",
        "annotator_c",
        "fake/biased",
        "fake/plain",
    ]
    code_c = next(e for e in res["estimands"] if e["kind"] == "contrast" and e["category"] == "code")
    biased = code_c["per_configuration"][3]
    assert biased["naive"]["verdict"] == ">0" and biased["ppi"]["verdict"] == "n.d."
    s = code_c["summary"]["methods"]
    assert s["naive"]["disagreement_rate"] == pytest.approx(1 / 5)
    assert s["ppi"]["disagreement_rate"] == 0
    # the printed summary row carries the same numbers as the JSON
    row = next(ln for ln in out.splitlines() if ln.strip().startswith("code 2021-2020"))
    assert "20/0/0" in row
    assert res["drivers"]["naive"]["variant"]["flips"] >= 1

    # --json: stdout is exactly one JSON object with the same numbers
    code, out2, err2 = run(
        [
            "robustness",
            *_annotators(data_dir),
            str(grid),
            "--gold",
            coded40,
            "--task",
            "easy",
            "--by",
            "mlrc_year",
            "--data-dir",
            data_dir,
            "--json",
        ],
        capsys,
        monkeypatch,
    )
    assert code == 0, err2
    again = json.loads(out2)["tasks"]["easy"]
    assert again["estimands"] == res["estimands"]
    assert "code 2021 - 2020" in err2  # the human tables went to stderr


def test_cli_tables_fit_80_columns(tmp_path, data_dir, coded40, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    import sys

    from llmscisci.cli import main

    monkeypatch.setattr(
        sys,
        "argv",
        [
            "llmscisci",
            "robustness",
            *_annotators(data_dir),
            "--gold",
            str(coded40),
            "--by",
            "mlrc_year",
            "--data-dir",
            str(data_dir),
        ],
    )
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code in (0, None)
    out = capsys.readouterr().out
    assert "easy:" in out and "difficult:" in out  # both coded tasks by default
    assert max(len(ln) for ln in out.splitlines()) <= 80


@pytest.mark.parametrize(
    "args, message",
    [
        (["--contrast", "2021,2019"], "not a group"),
        (["--contrast", "2021"], "two different groups"),
        (["--by", "nonesuch"], "not a column"),
    ],
)
def test_cli_errors_are_one_line(args, message, data_dir, coded40, capsys, monkeypatch):
    extra = ["--by", "mlrc_year"] if "--by" not in args else []
    code, _, err = run(
        [
            "robustness",
            *_annotators(data_dir),
            "--gold",
            coded40,
            "--task",
            "easy",
            "--data-dir",
            data_dir,
            *extra,
            *args,
        ],
        capsys,
        monkeypatch,
    )
    assert code == 2
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in err


def test_cli_contrast_needs_by_and_gold_must_exist(tmp_path, data_dir, capsys, monkeypatch):
    code, _, err = run(
        ["robustness", *_annotators(data_dir), "--gold", tmp_path / "none.jsonl"], capsys, monkeypatch
    )
    assert code == 2 and "no such file" in err
    code, _, err = run(
        ["robustness", *_annotators(data_dir), "--gold", _annotators(data_dir)[0], "--contrast", "2021,2020"],
        capsys,
        monkeypatch,
    )
    assert code == 2 and "needs --by" in err


# --- code plan --------------------------------------------------------------------------------------
def _noisy_run(tmp_path: Path, data_dir: Path) -> Path:
    rng = np.random.default_rng(7)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.json").write_text(
        json.dumps(
            {
                "kind": "label",
                "task": "easy",
                "variant": "icl",
                "model": "noisy",
                "data_source": str(data_dir),
                "codebook": {"task": "easy", **_codebook()},
            }
        )
    )
    with (run_dir / "predictions.jsonl").open("w") as fh:
        for line in (data_dir / "labels" / "annotator_a.jsonl").read_text().splitlines():
            r = json.loads(line)
            if r["task"] == "easy":
                v = [int(x) if rng.random() > 0.2 else 1 - int(x) for x in r["labels"][:4]]
                v.append(0 if any(v) else 1)
                fh.write(json.dumps({"doi": r["doi"], "task": "easy", "labels": v, "valid": True}) + "\n")
    return run_dir


def _codebook() -> dict:
    from llmscisci.data.codebook import load_codebook

    d = load_codebook("easy").model_dump()
    d.pop("task", None)
    return d


def test_code_plan_answers_per_category(tmp_path, data_dir, coded40, capsys, monkeypatch):
    run_dir = _noisy_run(tmp_path, data_dir)
    code, out, err = run(
        [
            "code",
            "plan",
            run_dir,
            "--pilot",
            coded40,
            "--halfwidth",
            "0.2",
            "--design",
            "random",
            "--data-dir",
            data_dir,
            "--json",
        ],
        capsys,
        monkeypatch,
    )
    assert code == 0, err
    plan = json.loads(out)
    assert plan["n_items"] == 70 and plan["pilot_n"] == 40
    assert "items to code for +-20 points" in err  # the table went to stderr
    cats = {c["category"]: c for c in plan["categories"]}
    assert list(cats) == EASY_SHORTS
    for c in cats.values():
        if c["reachable"]:
            assert 2 <= c["n_needed"] <= 70 and c["halfwidth_planned"] <= 0.2 + 1e-9
        else:
            assert c["n_needed"] is None and c["halfwidth_all_coded"] > 0.2
    assert plan["total"] == max(c["n_needed"] if c["reachable"] else 70 for c in cats.values())
    # a target too tight for 70 items: said so, with the reachable half-width
    code, out, err = run(
        ["code", "plan", run_dir, "--pilot", coded40, "--halfwidth", "0.02", "--data-dir", data_dir],
        capsys,
        monkeypatch,
    )
    assert code == 0, err
    assert "cannot be reached even by coding all 70 items" in out
    assert f"code export {run_dir} --n 70 --strategy stratified" in out.replace("\n", " ") or "--n 70" in out
    m = [ln for ln in out.splitlines() if "narrowest reachable" in ln]
    assert m and all(float(ln.rsplit("+-", 1)[1]) > 2 for ln in m)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--design", "cluster"], "--design"),
        (["--halfwidth", "5"], "--halfwidth"),
        (["--assurance", "1.5"], "--assurance"),
    ],
)
def test_code_plan_rejects_bad_options(args, message, tmp_path, data_dir, coded40, capsys, monkeypatch):
    run_dir = _noisy_run(tmp_path, data_dir)
    code, _, err = run(["code", "plan", run_dir, "--pilot", coded40, *args], capsys, monkeypatch)
    assert code == 2 and message in err and "Traceback" not in err


def test_plan_total_is_finite_number():
    from llmscisci.metrics.sample_size import plan_category, total_to_code

    yhat = np.r_[np.ones(300), np.zeros(700)]
    p = plan_category("x", yhat, np.r_[np.ones(10), np.zeros(30)], np.r_[np.ones(12), np.zeros(28)], 0.05)
    assert p.reachable and math.isfinite(p.halfwidth_planned)
    assert total_to_code([p], 1000) == p.n_needed


# --- the report section -----------------------------------------------------------------------------
def write_robustness_json(folder: Path, data_dir: Path, coded: Path) -> Path:
    """`llmscisci robustness --json-out` of the three annotator files into `folder` (for report tests)."""
    from typer.testing import CliRunner

    from llmscisci.cli import app

    target = folder / "robustness.json"
    res = CliRunner().invoke(
        app,
        [
            "robustness",
            *_annotators(data_dir),
            "--gold",
            str(coded),
            "--task",
            "difficult",
            "--by",
            "mlrc_year",
            "--data-dir",
            str(data_dir),
            "--json-out",
            str(target),
        ],
    )
    assert res.exit_code == 0, res.output
    return target


def draw_coded40(data_dir: Path, path: Path) -> Path:
    import pandas as pd

    ref = pd.read_csv(data_dir / "labels" / "reference.csv", dtype=str)
    pick = set(np.random.default_rng(2025).choice(sorted(ref["doi"].unique()), 40, replace=False))
    with path.open("w") as fh:
        for r in ref.itertuples():
            if r.doi in pick:
                fh.write(json.dumps({"doi": r.doi, "task": r.task, "labels": json.loads(r.labels)}) + "\n")
    return path


def test_report_has_a_robustness_section_with_a_forest_plot_per_category(tmp_path, data_dir, coded40):
    from llmscisci.report import write_report

    folder = tmp_path / "analysis"
    folder.mkdir()
    write_robustness_json(folder, data_dir, coded40)
    w = write_report(folder, tmp_path / "report", n_boot=100)
    md = w.markdown.read_text()
    assert "## Robustness of conclusions" in md
    assert "difficult (robustness.json)" in md
    assert "Disagreement naive / PPI / DSL" in md
    rob = [f for f in w.figures if "robustness-difficult" in f.name]
    assert len(rob) == 5  # one per category: algorithm, nuance, documentation, math, none
    assert all(f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f.stat().st_size > 10_000 for f in rob)
    assert all(f.name in md for f in rob)


def test_seed_is_a_factor_only_when_sampling():
    from llmscisci.tasks.robustness import _factors

    greedy = _factors({"model": "m", "variant": "icl", "params": {"temperature": 0.0, "seed": 1}})
    sampled = _factors({"model": "m", "variant": "icl", "paraphrase": 2, "params": {"temperature": 0.7, "seed": 1}})
    assert "seed" not in greedy and greedy["paraphrase"] == "0"
    assert sampled["seed"] == "1" and sampled["paraphrase"] == "2"


def test_recorded_sampling_probabilities_weight_each_group():
    from llmscisci.metrics.prevalence import PrevalenceData, dsl_share, ppi_share

    rng = np.random.default_rng(3)
    n = 300
    truth = (rng.random(n) < 0.4).astype(float)
    yhat = np.where(rng.random(n) < 0.8, truth, 1 - truth)
    groups = np.repeat(["a", "b"], n // 2)
    pi = np.where(yhat == 1, 0.5, 0.2)  # unequal: items the model calls 1 drawn more often
    coded = rng.random(n) < pi
    y = np.where(coded, truth, np.nan)
    pts = robustness(Corpus(y[:, None], ("cat",), groups, pi), [{"name": "m"}], [(yhat[:, None], np.ones(n, bool))])
    est = {(e["kind"], e["what"]): e["per_configuration"][0] for e in pts.to_dict()["estimands"]}
    for g in ("a", "b"):
        m = groups == g
        d = PrevalenceData(yhat[m], np.ones(m.sum(), bool), coded[m], y[m], pi[m])
        assert est[("prevalence", g)]["dsl"]["estimate"] == pytest.approx(dsl_share(d).estimate)
        assert est[("prevalence", g)]["ppi"]["estimate"] == pytest.approx(ppi_share(d).estimate)
    diff = est[("contrast", "b - a")]["dsl"]
    assert diff["estimate"] == pytest.approx(est[("prevalence", "b")]["dsl"]["estimate"]
                                             - est[("prevalence", "a")]["dsl"]["estimate"])


def test_study_runs_need_no_data_dir(tmp_path, data_dir, coded40, capsys, monkeypatch):
    """On a fresh clone the bundled data is the default: `robustness --by mlrc_year` and `code plan`
    give without --data-dir what they give with it (the editions from the bundled reports table)."""
    monkeypatch.delenv("LLMSCISCI_DATA", raising=False)
    run_dir = _noisy_run(tmp_path, data_dir)
    base = ["robustness", *_annotators(data_dir), "--gold", coded40, "--task", "easy", "--by", "mlrc_year", "--json"]
    code, out, err = run(base, capsys, monkeypatch)
    assert code == 0, err
    code, out2, err2 = run([*base, "--data-dir", data_dir], capsys, monkeypatch)
    assert code == 0, err2
    assert json.loads(out)["tasks"]["easy"]["estimands"] == json.loads(out2)["tasks"]["easy"]["estimands"]
    plan = ["code", "plan", run_dir, "--pilot", coded40, "--halfwidth", "0.2", "--json"]
    code, out, err = run(plan, capsys, monkeypatch)
    assert code == 0, err
    code, out2, err2 = run([*plan, "--data-dir", data_dir], capsys, monkeypatch)
    assert code == 0, err2
    assert json.loads(out)["categories"] == json.loads(out2)["categories"]
