"""The Python API (`import llmscisci as ls`): the same run as the command line on the same input (same
folder name, same labels), DataFrame and list-of-dicts input, `open_run` on folders the command line
wrote, one-line UserErrors raised (not exits), and an import that loads no torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from fakeservers import KEY_ENV, TEST_KEYS, make_server

import llmscisci as ls
from llmscisci.errors import UserError

CLI = str(Path(sys.executable).parent / "llmscisci")
SRC = Path(__file__).resolve().parents[1] / "src"
MODEL = "openai:gpt-4o-mini"


@pytest.fixture
def keys(monkeypatch):
    for p, env in KEY_ENV.items():
        monkeypatch.setenv(env, TEST_KEYS[p])


def cli(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update({KEY_ENV[p]: TEST_KEYS[p] for p in KEY_ENV})
    env["PYTHONPATH"] = str(SRC)
    res = subprocess.run([CLI, *args], capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    return res


def labels_of(run_dir: Path) -> dict:
    recs = [json.loads(x) for x in (run_dir / "predictions.jsonl").read_text().splitlines() if x.strip()]
    return {r["doi"]: (r["labels"], r["valid"], r["raw"]) for r in recs}


def only_run(out: Path) -> Path:
    runs = [p for p in out.iterdir() if p.is_dir() and (p / "config.json").is_file()]
    assert len(runs) == 1, runs
    return runs[0]


def test_api_label_is_the_cli_label_on_the_study_data(tmp_path, data_dir, keys):
    with make_server("openai") as srv:
        cli(["label", "--task", "easy", "--variant", "structured", "--model", MODEL, "--base-url", srv.base_url,
             "--data-dir", str(data_dir), "--limit", "6", "--out", str(tmp_path / "cli"), "--no-cache"], tmp_path)
        run = ls.label(task="easy", variant="structured", model=MODEL, base_url=srv.base_url, data_dir=data_dir,
                       limit=6, out=tmp_path / "api", no_cache=True, progress=False)
        assert srv.calls == 12  # both sent every item: the API used no cache either
    by_cli = only_run(tmp_path / "cli")
    assert isinstance(run, ls.Run) and run.path.name == by_cli.name
    assert labels_of(run.path) == labels_of(by_cli)
    cfg_cli = json.loads((by_cli / "config.json").read_text())
    assert run.config["hash"] == cfg_cli["hash"]
    m = run.metrics
    assert m["n_items"] == 6 and m["all"]["macro_f1"] == json.loads((by_cli / "metrics.json").read_text())["all"]["macro_f1"]
    df = run.predictions
    # input order, one 0/1 column per category, flags, tokens and cost
    assert list(df["id"]) == cfg_cli["items"]
    assert {"code", "none", "valid", "failed", "tokens_in", "tokens_out", "cost_usd", "ref_code"} <= set(df.columns)
    assert set(df["code"].dropna().unique()) <= {0, 1} and df["valid"].all() and (df["cost_usd"] > 0).all()
    ci = run.intervals(n_boot=200)
    assert set(ci["metric"]) == {"macro_f1", "micro_f1", "subset_accuracy", "hamming_loss"}
    assert ((ci["low"] <= ci["estimate"]) & (ci["estimate"] <= ci["high"])).all()
    html = run._repr_html_()
    assert "macro_f1" in html and run.path.name in html and "<table" in html
    assert "macro_f1" in repr(run)


def corpus_rows(data_dir: Path, n: int = 5) -> list[dict]:
    df = pd.read_csv(data_dir / "mlrc_reports.csv").head(n)
    return [{"id": f"r{i}", "text": str(t), "year": 2020 + i % 2} for i, t in enumerate(df["easy"])]


def test_dataframe_and_list_input_label_as_the_same_corpus_file(tmp_path, data_dir, keys):
    rows = corpus_rows(data_dir)
    path = tmp_path / "corpus.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    with make_server("openai") as srv:
        common = ["--task", "easy", "--model", MODEL, "--base-url", srv.base_url, "--no-cache"]
        cli(["label", "--input", str(path), "--text-column", "text", "--out", str(tmp_path / "cli"), *common], tmp_path)
        kw = dict(task="easy", model=MODEL, base_url=srv.base_url, no_cache=True, text_column="text", progress=False)
        by_frame = ls.label(pd.DataFrame(rows), out=tmp_path / "frame", **kw)
        by_list = ls.label(rows, out=tmp_path / "list", **kw)
    by_cli = only_run(tmp_path / "cli")
    for run in (by_frame, by_list):
        assert run.path.name == by_cli.name
        assert labels_of(run.path) == labels_of(by_cli)
        assert list(run.predictions["id"]) == [r["id"] for r in rows]  # input order
        assert run.config["streamed"] and run.metrics["distribution"]["all"]["n"] == 5
    # the tables were stored once under the output folder, named by their content
    assert [p.suffix for p in (tmp_path / "frame" / "inputs").iterdir()] == [".parquet"]
    assert [p.suffix for p in (tmp_path / "list" / "inputs").iterdir()] == [".jsonl"]
    assert "share" in by_frame.summary().columns


def test_api_judge_is_the_cli_judge(tmp_path, data_dir, keys):
    cand = data_dir / "labels" / "annotator_b.jsonl"
    with make_server("openai") as srv:
        cli(["judge", "--task", "easy", "--model", MODEL, "--base-url", srv.base_url, "--llm", str(cand), "--limit", "2",
             "--orders", "cyclic", "--data-dir", str(data_dir), "--no-cache", "--out", str(tmp_path / "cli")], tmp_path)
        run = ls.judge([cand], task="easy", model=MODEL, base_url=srv.base_url, limit=2, orders="cyclic",
                       data_dir=data_dir, no_cache=True, out=tmp_path / "api")
    by_cli = only_run(tmp_path / "cli")
    assert run.kind == "judge" and run.path.name == by_cli.name
    key = lambda p: [(r.doi, r.order, r.judge_scores, r.final_labels)  # noqa: E731
                     for r in sorted(ls.open_run(p).records(), key=lambda r: (r.doi, r.order))]
    assert key(run.path) == key(by_cli) and len(key(by_cli)) == 4
    assert run.metrics.keys() == json.loads((by_cli / "metrics.json").read_text()).keys()
    assert list(run.predictions.columns[:2]) == ["doi", "task"] and len(run.predictions) == 4


def test_api_agree_is_the_cli_agree_json(tmp_path, data_dir):
    """Across several tasks too: the whole-vector pairs across tasks are in both."""
    files = [data_dir / "labels" / f"annotator_{c}.jsonl" for c in "abc"]
    by_cli = json.loads(cli(["agree", *map(str, files), "--human", str(files[0]), "--json"], tmp_path).stdout)
    by_api = ls.agree(files, human=files[0])
    assert len(by_api["tasks"]) > 1 and len(by_api["all_tasks_pairs"]) == 3
    assert json.loads(json.dumps(by_api)) == by_cli


def test_api_judge_checks_the_out_folder_before_loading(tmp_path, data_dir):
    (tmp_path / "taken").write_text("a file")
    with pytest.raises(UserError, match="taken"):
        ls.judge([data_dir / "labels" / "annotator_b.jsonl"], task="easy", model="no-such-model-loads",
                 data_dir=data_dir, limit=1, out=tmp_path / "taken")


def test_open_run_on_folders_the_cli_wrote(tmp_path, data_dir):
    cli(["baseline", "--task", "easy", "--method", "majority", "--folds", "2", "--data-dir", str(data_dir),
         "--out", str(tmp_path / "b")], tmp_path)
    folder = only_run(tmp_path / "b")
    run = ls.open_run(folder)
    assert run.kind == "baseline" and run.config == json.loads((folder / "config.json").read_text())
    df = run.predictions
    assert len(df) == len(json.loads((folder / "config.json").read_text())["items"]) > 0
    assert "none" in df.columns and df["valid"].all()
    out = run.to_parquet(tmp_path / "preds.parquet")
    assert pd.read_parquet(out).shape == df.shape
    page = sorted((data_dir / "rescience").glob("*.htm*"))[0]
    cli(["extract", str(page), "--model", "baseline", "--out", str(tmp_path / "x")], tmp_path)
    ex = ls.open_run(only_run(tmp_path / "x"))
    assert ex.kind == "extract" and ex.metrics and ex.title().startswith("extract run")
    assert isinstance(ex.predictions, pd.DataFrame) and repr(ex).startswith("<Run extract run")
    by_api = ls.extract(page, model="baseline", out=tmp_path / "y", progress=False)  # the same run from Python
    assert by_api.path.name == ex.path.name and by_api.metrics["headline"] == ex.metrics["headline"]
    fit = ls.baseline(task="easy", method="majority", folds=2, out=tmp_path / "b")
    assert fit.path == folder  # the same configuration finds the command's folder


def test_bad_input_raises_a_one_line_user_error(tmp_path):
    cases = [
        lambda: ls.label(task="nope", out=tmp_path),
        lambda: ls.label(variant="poem", out=tmp_path),
        lambda: ls.label(limit=0, out=tmp_path),
        lambda: ls.label(concurency=4, out=tmp_path),  # a misspelt backend option
        lambda: ls.label(concurrency=0, out=tmp_path),
        lambda: ls.label(structured_mode="xml", out=tmp_path),
        lambda: ls.label(tmp_path / "missing.csv", out=tmp_path),
        lambda: ls.label([{"id": 1, "text": "a"}, "b"], out=tmp_path),
        lambda: ls.label(pd.DataFrame({"id": ["a"], "txt": ["x"]}), out=tmp_path / "o"),
        lambda: ls.label(42, out=tmp_path),
        lambda: ls.open_run(tmp_path / "nothing"),
        lambda: ls.agree([tmp_path / "a.csv"]),
        lambda: ls.label(calibrate="bundled", out=tmp_path),  # calibration is the score variant's
        lambda: ls.label(variant="score", model="anthropic:claude-3-5-sonnet-latest", out=tmp_path),
        lambda: ls.label(placebo=0, out=tmp_path),
        lambda: ls.label(engine="spark", out=tmp_path),
        lambda: ls.label(engine="ray", out=tmp_path),  # Ray labels a corpus, not the study data
    ]
    for case in cases:
        with pytest.raises(UserError) as exc:
            case()
        assert "\n" not in str(exc.value) and str(exc.value)
    with pytest.raises(UserError, match="did you mean 'concurrency'"):
        ls.label(concurency=4, out=tmp_path)
    assert not list(tmp_path.glob("label_*"))  # nothing written: checked before anything loads


def test_extract_checks_as_the_command(tmp_path, data_dir):
    """ls.extract runs the command's checks (api/extract_runs.py): an output path that is a file, and a
    batch file for several pages, are refused before anything is written."""
    page = sorted((data_dir / "rescience").glob("*.htm*"))[0]
    taken = tmp_path / "taken"
    taken.write_text("")
    with pytest.raises(UserError, match="taken"):
        ls.extract(page, model="baseline", out=taken, progress=False)
    with pytest.raises(UserError, match="--batch-file writes one run's requests"):
        ls.extract([page, page], model=MODEL, variant="structured", batch_file=tmp_path / "req.jsonl",
                   out=tmp_path / "o", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


def test_extract_dry_run_is_the_command_plan_and_resume_continues(tmp_path, data_dir):
    page = sorted((data_dir / "rescience").glob("*.htm*"))[0]
    args = ["extract", str(page), "--model", MODEL, "--variant", "structured", "--limit", "2"]
    res = cli([*args, "--dry-run", "--out", str(tmp_path / "o")], tmp_path)
    plan = ls.extract(page, model=MODEL, variant="structured", limit=2, out=tmp_path / "o", dry_run=True)
    assert plan.text.strip() == res.stdout.strip() and "units (1 page(s)): 2" in plan.text
    assert not (tmp_path / "o").exists()
    run = ls.extract(page, model="baseline", out=tmp_path / "b", progress=False)
    again = ls.extract(page, model="baseline", resume=run.path, progress=False)
    assert again.path == run.path and again.metrics["timing"]["resumed_units"] > 0


def test_a_codebook_built_in_python_is_a_task(tmp_path, keys):
    book = ls.Codebook(task="tools", text_column="text", none="none", categories=[
        ls.Category(short="code", name="Code"), ls.Category(short="none", name="None of these")])
    rows = [{"id": "a", "text": "The code was on GitHub."}, {"id": "b", "text": "Nothing helped."}]
    with make_server("openai") as srv:
        run = ls.label(rows, task=book, model=MODEL, base_url=srv.base_url, no_cache=True, out=tmp_path,
                       progress=False)
    assert run.config["codebook"]["source"] == "python" and run.config["task"] == "tools"
    assert list(run.predictions.columns[3:5]) == ["code", "none"]


def test_encoding_of_a_corpus_file(tmp_path, keys):
    path = tmp_path / "legacy.csv"
    path.write_bytes("id,text\na,Le code était sur GitHub.\n".encode("cp1252"))
    with pytest.raises(UserError, match="encoding"):
        ls.label(path, model=MODEL, out=tmp_path / "o")
    with pytest.raises(UserError):
        ls.label(path, model=MODEL, out=tmp_path / "o", encoding="no-such-codec")
    with make_server("openai") as srv:
        run = ls.label(path, model=MODEL, base_url=srv.base_url, no_cache=True, out=tmp_path / "o",
                       encoding="cp1252", text_column="text", progress=False)
    assert run.predictions["valid"].all() and len(run.predictions) == 1
    from llmscisci.data.textio import chosen_encoding

    assert chosen_encoding() is None  # the call's encoding does not outlive it


def test_rewards_from_python_match_the_command(tmp_path):
    truth = [1, 0, 1, 0, 0]
    rows = [{"completion": "<think>clear code</think> <label> [1, 0, 1, 0, 0] </label>", "truth": truth},
            {"completion": "code and readability", "truth": truth}]
    scores = ls.grpo_score(rows, "format:1,label:1")
    src = tmp_path / "rows.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cli(["grpo", "score", str(src), "--rewards", "format:1,label:1", "--out", str(tmp_path / "scored.jsonl")], tmp_path)
    by_cli = [json.loads(x) for x in (tmp_path / "scored.jsonl").read_text().splitlines()]
    assert list(scores["total"]) == [r["total"] for r in by_cli] and scores["total"][0] > scores["total"][1]
    probes = ls.grpo_probe("format:1,label:1", task="easy", truth=truth, huge_words=10)
    assert probes.set_index("probe").loc["perfect", "total"] == probes["total"].max()
    with pytest.raises(UserError, match="truth"):
        ls.grpo_score([{"completion": "x", "truth": [2]}])


def test_progress_bars_in_a_notebook_need_its_widgets(monkeypatch):
    import importlib.util

    from llmscisci.api.progress import show_progress
    from llmscisci.console import console

    real = importlib.util.find_spec
    widgets = {"ipywidgets": None}
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: widgets[name] if name in widgets else real(name, *a))
    monkeypatch.setattr(console, "is_jupyter", False)
    assert show_progress(None) is True and show_progress(False) is False
    monkeypatch.setattr(console, "is_jupyter", True)  # a kernel without ipywidgets: no raw terminal bars
    assert show_progress(None) is False and show_progress(True) is True
    widgets["ipywidgets"] = object()
    assert show_progress(None) is True


def test_import_loads_no_torch():
    code = ("import sys, llmscisci as ls\n"
            "assert callable(ls.label) and callable(ls.report) and ls.Run and ls.open_run\n"
            "import llmscisci.report\n"
            "assert callable(ls.report)\n"
            "print(','.join(m for m in ('torch', 'transformers', 'trl', 'peft') if m in sys.modules))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(SRC)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""


def test_api_score_placebo_and_saved_classifier_are_the_cli_runs(tmp_path, data_dir, tiny_model_dir):
    """The score variant with a placebo check, and a saved classifier on the study data: the API writes the
    command line's folders (names, labels, placebo answers)."""
    common = ["--task", "easy", "--data-dir", str(data_dir), "--limit", "3"]
    cli(["label", *common, "--variant", "score", "--model", str(tiny_model_dir), "--device", "cpu",
         "--placebo", "2", "--out", str(tmp_path / "cli")], tmp_path)
    run = ls.label(task="easy", variant="score", model=str(tiny_model_dir), device="cpu", data_dir=data_dir,
                   limit=3, placebo=2, out=tmp_path / "api", progress=False)
    by_cli = only_run(tmp_path / "cli")
    assert run.path.name == by_cli.name and labels_of(run.path) == labels_of(by_cli)
    assert (run.path / "placebo.jsonl").read_text() == (by_cli / "placebo.jsonl").read_text()
    assert run.metrics["placebo"]["n"] == 2 and run.config["calibration"]["thresholds"]

    ls.baseline(task="easy", method="tfidf-logreg", data_dir=data_dir, out=tmp_path / "b", save=tmp_path / "clf")
    cli(["label", *common, "--model", f"baseline:{tmp_path / 'clf'}", "--out", str(tmp_path / "cli2")], tmp_path)
    fitted = ls.label(task="easy", model=f"baseline:{tmp_path / 'clf'}", data_dir=data_dir, limit=3,
                      out=tmp_path / "api2", progress=False)
    by_cli = only_run(tmp_path / "cli2")
    assert fitted.path.name == by_cli.name and labels_of(fitted.path) == labels_of(by_cli)


def test_api_dry_run_is_the_command_plan_and_resume_keeps_the_run(tmp_path, data_dir, keys):
    plan = ls.label(task="easy", variant="guidelines", model=MODEL, data_dir=data_dir, limit=3, out=tmp_path,
                    dry_run=True)
    res = cli(["label", "--task", "easy", "--variant", "guidelines", "--model", MODEL, "--data-dir", str(data_dir),
               "--limit", "3", "--dry-run", "--json"], tmp_path)
    assert plan.as_dict() == json.loads(res.stdout)["dry_run"] and plan.as_dict()["n_items"] == 3
    assert plan.text.rstrip("\n") in res.stderr and not list(tmp_path.iterdir())  # a plan writes nothing
    with make_server("openai") as srv:
        run = ls.label(task="easy", variant="guidelines", model=MODEL, base_url=srv.base_url, data_dir=data_dir,
                       limit=3, out=tmp_path, no_cache=True, progress=False)
        sent = srv.calls
        again = ls.label(resume=run.path, base_url=srv.base_url, no_cache=True, progress=False)
        assert again.path == run.path and srv.calls == sent  # finished items are not asked again
    with pytest.raises(UserError, match="--resume keeps the run's configuration: --variant icl"):
        ls.label(resume=run.path, variant="icl")


def test_the_face_stays_the_functions_when_their_modules_are_imported():
    """`ls.judge` is the function even after `llmscisci.api.judge` (its module) was imported, as the docs'
    examples do; a fresh interpreter, so that no earlier test has bound the names already."""
    code = ("import llmscisci.api.judge, llmscisci.api.label, llmscisci.api.extract, llmscisci.api.baseline\n"
            "import llmscisci as ls\n"
            "assert all(callable(f) for f in (ls.judge, ls.label, ls.extract, ls.baseline, ls.agree, ls.report)), "
            "[type(f) for f in (ls.judge, ls.label, ls.extract, ls.baseline)]\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(SRC)})
    assert res.returncode == 0, res.stderr[-2000:]
