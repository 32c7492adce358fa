"""Resume belongs to the task kind: each spec rebuilt from the config.json it wrote has the stored hash
(`Spec.from_config`), and `TaskKind.resume` continues a run folder from that alone (study and corpus
labelling runs, judge and extraction runs); `llmscisci batch collect/import` go through it rather than
re-entering the label command."""

from __future__ import annotations

import ast
import json
import shutil
from importlib import resources
from pathlib import Path

import pytest
from console import run_console

from llmscisci.backends import registry as backends
from llmscisci.backends.base import Backend, Generation, GenParams
from llmscisci.data.codebook import load_codebook
from llmscisci.data.items import load_items
from llmscisci.errors import UserError
from llmscisci.runs import read_jsonl
from llmscisci.tasks import registry

SRC = Path(__file__).resolve().parents[1] / "src" / "llmscisci"


def written(config: dict) -> dict:
    """A config as config.json holds it (JSON types)."""
    return json.loads(json.dumps(config))


class Counting(Backend):
    """Answers every conversation with the first category (or a fixed answer); counts the calls."""

    name = "counting"
    context_length = None

    def __init__(self, answer: str = "code", stop_after: int | None = None):
        self.answer, self.stop_after, self.calls = answer, stop_after, 0

    def generate(self, conversations, params=GenParams(), schema=None, on_result=None):
        gens = []
        for i, _ in enumerate(conversations):
            if self.stop_after is not None and self.calls >= self.stop_after:
                raise KeyboardInterrupt  # killed mid-run: what was answered is on disk
            self.calls += 1
            gen = Generation(text=self.answer, tokens_in=10, tokens_out=2)
            if on_result:
                on_result(i, gen)
            gens.append(gen)
        return gens

    def count_tokens(self, messages) -> int:
        return 10


# --- Spec.from_config: the stored hash, for each kind ------------------------------------------------
def _own_codebook(tmp_path) -> str:
    path = tmp_path / "mine.toml"
    path.write_text(resources.files("llmscisci.data").joinpath("codebooks", "easy.toml").read_text("utf-8"), "utf-8")
    return str(path)


@pytest.mark.parametrize("kw", [
    {},
    {"variant": "icl", "shots": 2, "split": "train", "limit": 5, "paraphrase": 2,
     "params": GenParams(max_new_tokens=9, temperature=0.7, top_p=0.9, seed=7)},
    {"variant": "score", "calibrate": "bundled", "split": "test"},
    {"variant": "guidelines", "own": True},
])
def test_label_spec_from_config_has_the_stored_hash(kw, data_dir, tmp_path):
    from llmscisci.tasks.label import LabelSpec, draw_shots, select_items

    kw = dict(kw)
    book = load_codebook(_own_codebook(tmp_path) if kw.pop("own", False) else "easy")
    items = load_items(book, data_dir=data_dir)
    spec = LabelSpec(codebook=book, model="openai:gpt-4o-mini", data_source=str(data_dir),
                     **{"variant": "structured", **kw})
    selected = select_items(items, spec.split, spec.limit)
    shots = draw_shots(items, book, spec.variant, spec.shots, spec.params.seed)
    cfg = written(spec.config(None, selected, shots))
    again = LabelSpec.from_config(cfg)
    assert again == spec and again.hash(selected, shots) == cfg["hash"]
    assert again.core(selected, shots) == {k: cfg[k] for k in again.core(selected, shots)}


def test_streamed_label_spec_from_config_has_the_stored_hash(tmp_path):
    from llmscisci.data.corpus import CorpusPlan
    from llmscisci.tasks.label import LabelSpec
    from llmscisci.tasks.label_source import CorpusItems

    csv = tmp_path / "c.csv"
    csv.write_text("key,title,abstract,grp\na,Code,was public,x\nb,Data,on request,y\n", "utf-8")
    book = load_codebook("easy")
    plan = CorpusPlan.open(csv, book, id_column="key", template="{title}. {abstract}")
    spec = LabelSpec(codebook=book, variant="guidelines", model="openai:gpt-4o-mini", limit=1, paraphrase=1,
                     params=GenParams(max_new_tokens=5, seed=3))
    source = CorpusItems(spec, plan, by="grp")
    cfg = written(spec.config_of(source.identity(), {}, [], source.extras()))
    again = LabelSpec.from_config(cfg)
    assert stable(again.core_of(CorpusItems(again, plan).identity(), [])) == cfg["hash"]
    from llmscisci.tasks.kinds.label import resumed_corpus

    assert resumed_corpus(cfg) == {"path": str(csv.resolve()), "id_column": "key", "text_column": None,
                                   "template": "{title}. {abstract}"}


def stable(core: dict) -> str:
    from llmscisci.runs import stable_hash

    return stable_hash(core)


def test_judge_spec_from_config_has_the_stored_hash_and_its_candidates(data_dir, tmp_path):
    from llmscisci.data.labelfiles import load_labels
    from llmscisci.tasks.judge import JudgeSpec, candidates_from_sets, prepare
    from llmscisci.tasks.kinds.judge import recorded_candidates

    book = load_codebook("easy")
    items = load_items(book, data_dir=data_dir)
    cands = candidates_from_sets([load_labels(data_dir / "labels" / f"annotator_{x}.jsonl") for x in "abb"], "easy")
    spec = JudgeSpec(codebook=book, variant="icl", model="openai:gpt-4o-mini", orders="cyclic", limit=4,
                     split="test", data_source=str(data_dir), params=GenParams(max_new_tokens=77, seed=5))
    selected, orders, skipped = prepare(spec, items, cands)
    cfg = written(spec.config(None, selected, cands, orders, skipped))
    again = JudgeSpec.from_config(cfg)
    assert again == spec and again.hash(selected, cands, orders) == cfg["hash"]
    found = recorded_candidates(cfg, book, tmp_path)  # the same names (a duplicate's suffix too), files, labels
    assert [(c.name, c.path, c.records) for c in found] == [(c.name, c.path, c.records) for c in cands]
    assert found[2].name.endswith("-2")


@pytest.mark.parametrize("model,kw", [
    ("openai:gpt-4o-mini", {"variant": "icl", "unit": "window", "window": 2, "limit": 3,
                            "params": GenParams(max_new_tokens=50, seed=9), "bins": 4}),
    ("openai:gpt-4o-mini", {"variant": "structured"}),
    ("baseline", {"variant": "structured", "limit": 2}),
])
def test_extract_spec_from_config_has_the_stored_hash(model, kw, data_dir):
    from llmscisci.tasks.extract.run import ExtractSpec, plan_units
    from llmscisci.tasks.extract.source import read_page
    from llmscisci.tasks.extract.truth import load_truth

    page = read_page(data_dir / "rescience" / "read_index_2022-07-11.html")
    truth = load_truth(data_dir / "rescience" / "published.bib")
    spec = ExtractSpec(model=model, **kw)
    units, n_blocks = plan_units(spec, page, None)
    cfg = written(spec.config(page, truth, units, n_blocks, None))
    again = ExtractSpec.from_config(cfg)
    assert again.hash(page, units) == cfg["hash"] and again.bins == spec.bins
    if model != "baseline":
        assert again == spec


# --- TaskKind.resume ---------------------------------------------------------------------------------
def test_label_kind_resumes_a_study_run_from_its_folder(data_dir, tmp_path):
    from llmscisci.tasks.label import LabelSpec, run_label

    book = load_codebook("easy")
    spec = LabelSpec(codebook=book, variant="guidelines", model="openai:gpt-4o-mini", limit=6, paraphrase=1,
                     data_source=str(data_dir), params=GenParams(max_new_tokens=8, seed=4))
    items = load_items(book, data_dir=data_dir)
    with pytest.raises(KeyboardInterrupt):
        run_label(spec, items, Counting(stop_after=2), tmp_path, show_progress=False)
    (run_dir,) = tmp_path.iterdir()
    before = json.loads((run_dir / "config.json").read_text())
    backend = Counting()
    run = registry.get("label").resume(run_dir, backend, show_progress=False)
    assert run.path == run_dir and backend.calls == 4  # only what was not answered
    preds = read_jsonl(run_dir / "predictions.jsonl")
    assert sorted(p["doi"] for p in preds) == sorted(it.doi for it in items[:6])
    after = json.loads((run_dir / "config.json").read_text())
    assert after == before and (run_dir / "metrics.json").is_file()


def test_label_kind_resumes_a_corpus_run_with_its_recorded_input(tmp_path, capsys, monkeypatch):
    csv = tmp_path / "c.csv"
    csv.write_text("key,title,abstract,grp\n" + "".join(f"k{i},Title {i},Code {i} was public,g{i % 2}\n"
                                                       for i in range(6)), "utf-8")
    first = Counting()
    monkeypatch.setattr(backends, "load_backend", lambda name, options=None: first)
    args = ["label", "--task", "easy", "--variant", "guidelines", "--model", "openai:gpt-4o-mini", "--input", csv,
            "--id-column", "key", "--text", "{title}. {abstract}", "--by", "grp", "--out", tmp_path / "runs"]
    code, out, err = run_console(args, capsys, monkeypatch)
    assert code == 0, err
    (run_dir,) = (tmp_path / "runs").iterdir()
    before = json.loads((run_dir / "config.json").read_text())
    answered = (run_dir / "predictions.jsonl").read_text().splitlines()
    # killed in its first chunk: two answers on disk, no checkpoint, no metrics
    (run_dir / "predictions.jsonl").write_text("\n".join(answered[:2]) + "\n")
    for name in ("progress.json", "metrics.json"):
        (run_dir / name).unlink()
    second = Counting()
    monkeypatch.setattr(backends, "load_backend", lambda name, options=None: second)
    code, out, err = run_console(["label", "--resume", run_dir], capsys, monkeypatch)
    assert code == 0, err
    after = json.loads((run_dir / "config.json").read_text())
    assert after == before and after["by"] == "grp"  # the corpus, its columns and --by from config.json
    assert second.calls == 4 and "grp=g1" in out
    preds = read_jsonl(run_dir / "predictions.jsonl")
    assert sorted(p["doi"] for p in preds) == [f"k{i}" for i in range(6)]
    moved = tmp_path / "moved.csv"
    shutil.move(csv, moved)
    code, out, err = run_console(["label", "--resume", run_dir], capsys, monkeypatch)
    assert code == 2 and "its corpus" in err and "is gone" in err


def test_resume_refuses_a_folder_of_another_kind_or_none(data_dir, tmp_path):
    with pytest.raises(UserError, match="not a run folder"):
        registry.get("label").resume(tmp_path, Counting())
    (tmp_path / "config.json").write_text(json.dumps({"kind": "extract", "model": "baseline"}))
    with pytest.raises(UserError, match="not a judge run"):
        registry.get("judge").resume(tmp_path, Counting())
    with pytest.raises(UserError, match="cannot be resumed"):
        registry.get("baseline").resume(tmp_path, None)
    assert [k.name for k in registry.kinds() if k.can_resume()] == ["label", "judge", "extract"]


# --- batch collect / import --------------------------------------------------------------------------
def test_batch_commands_do_not_reenter_the_label_command():
    tree = ast.parse((SRC / "cli" / "batch.py").read_text("utf-8"))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert "llmscisci.cli.label" not in imported and "contextvars" not in imported
    assert "ContextVar" not in (SRC / "cli" / "batch.py").read_text("utf-8")
    assert "llmscisci.api.batch" in imported  # which continues the run through api/resume.py
    api = ast.parse((SRC / "api" / "batch.py").read_text("utf-8"))
    assert "llmscisci.api.resume" in {n.module for n in ast.walk(api) if isinstance(n, ast.ImportFrom)}


def test_batch_import_finishes_an_extraction_run(data_dir, tmp_path, capsys, monkeypatch):
    """An extraction run written as a batch file is finished by `batch import` through the extract kind
    (the label command is not involved), with the answers a live run gets."""
    from fake_batch import BATCH_SERVERS, BatchPlan, synth
    from fakeservers import KEY_ENV, TEST_KEYS

    import llmscisci as ls

    monkeypatch.setenv(KEY_ENV["openai"], TEST_KEYS["openai"])
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    page = data_dir / "rescience" / "read_index_2022-07-11.html"
    common = dict(model="openai:gpt-4o-mini", variant="structured", limit=3, progress=False, no_cache=True)
    with BATCH_SERVERS["openai"](plan=BatchPlan(), expect_key=TEST_KEYS["openai"]) as srv:
        live = ls.extract(page, base_url=srv.base_url, out=tmp_path / "live", **common)
        req = tmp_path / "req.jsonl"
        filed = ls.extract(page, base_url=srv.base_url, out=tmp_path / "filed", batch_file=req, **common)
        rows = [json.loads(line) for line in req.read_text().splitlines()]
        results = tmp_path / "results.jsonl"
        results.write_text("".join(json.dumps({"id": f"r{i}", "custom_id": r["custom_id"], "error": None,
                                               "response": {"status_code": 200,
                                                            "body": synth(srv, r["body"], r["body"]["model"])[0]}})
                                   + "\n" for i, r in enumerate(rows)))
    code, out, err = run_console(["batch", "import", filed.path, results], capsys, monkeypatch)
    assert code == 0, err
    assert f"run folder: {filed.path}" in out.replace("\n", "")
    raw = {p["doi"]: p["raw"] for p in read_jsonl(filed.path / "predictions.jsonl")}
    assert raw == {p["doi"]: p["raw"] for p in read_jsonl(live.path / "predictions.jsonl")} and len(raw) == 3
    assert json.loads((filed.path / "config.json").read_text())["hash"] == live.config["hash"]


def test_api_batch_collect_equals_the_command(tmp_path, capsys, monkeypatch):
    """`ls.batch_collect(run)` and `llmscisci batch collect` finish two copies of a run stopped after
    submitting its batch into the same folder with the same predictions; `ls.batch_status` is what
    `batch status --json` prints, and `ls.batch_cancel` cancels the open batches as `batch cancel` does."""
    import threading

    from fake_batch import BATCH_SERVERS, BatchPlan
    from fakeservers import KEY_ENV, TEST_KEYS

    import llmscisci as ls
    from llmscisci.backends.batch import core

    monkeypatch.setenv(KEY_ENV["openai"], TEST_KEYS["openai"])
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    csv = tmp_path / "items.csv"
    csv.write_text("id,easy\n" + "".join(f"d{i},Report {i}: code {i % 3} was public.\n" for i in range(8)))
    hold = threading.Event()

    def killed(self, seconds):  # the process dies while its batch is in progress
        raise KeyboardInterrupt

    with BATCH_SERVERS["openai"](plan=BatchPlan(hold=hold), expect_key=TEST_KEYS["openai"]) as srv:
        common = dict(task="easy", model="openai:gpt-4o-mini", base_url=srv.base_url, batch=True,
                      poll_interval=0, no_cache=True, progress=False)
        monkeypatch.setattr(core.RealClock, "sleep", killed)
        folders = []
        for name in ("py", "cli"):
            with pytest.raises(KeyboardInterrupt):
                ls.label(csv, out=tmp_path / name, **common)
            (folder,) = (tmp_path / name).iterdir()
            folders.append(folder)
        monkeypatch.undo()
        monkeypatch.setenv(KEY_ENV["openai"], TEST_KEYS["openai"])
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
        status = ls.batch_status(folders[0])
        assert status["summary"]["by_state"] == {"submitted": 8} and [b["requests"] for b in status["batches"]] == [8]
        code, out, _ = run_console(["batch", "status", folders[0], "--json"], capsys, monkeypatch)
        assert code == 0 and json.loads(out) == status
        hold.set()
        run = ls.batch_collect(folders[0], poll_interval=0, no_cache=True, progress=False)
        code, out, err = run_console(["batch", "collect", folders[1], "--poll-interval", "0", "--no-cache"],
                                     capsys, monkeypatch)
        assert code == 0, err
        assert ls.batch_cancel(run) == [] and srv.batch_creates == 2 and srv.rows_submitted == 16
    assert isinstance(run, ls.Run) and run.path == folders[0] and folders[0].name == folders[1].name
    assert f"run folder: {folders[1]}" in out.replace("\n", "")
    cli_run = ls.open_run(folders[1])
    assert run.config["hash"] == cli_run.config["hash"]
    stable = ["id", "code", "artifacts", "readability", "setup", "none", "valid", "failed", "tokens_in", "tokens_out"]
    assert run.predictions[stable].equals(cli_run.predictions[stable]) and len(run.predictions) == 8
    volatile = ("timing", "generation_seconds")
    assert {k: v for k, v in run.metrics.items() if k not in volatile} == \
        {k: v for k, v in cli_run.metrics.items() if k not in volatile}
    assert run.metrics["failed"] == 0 and run.metrics["distribution"]["all"]["n"] == 8


def test_api_batch_cancel_and_import_errors(tmp_path):
    import llmscisci as ls

    for call in (ls.batch_status, ls.batch_collect, ls.batch_cancel):
        with pytest.raises(UserError, match="no batches.json"):
            call(tmp_path)
    with pytest.raises(UserError, match="no batches.json"):
        ls.batch_import(tmp_path, tmp_path / "results.jsonl")
    with pytest.raises(UserError, match="--batch-attempts"):
        ls.batch_collect(tmp_path, batch_attempts=0)  # options checked before the folder is read


def test_api_judge_resumes_and_plans_a_judge_run(data_dir, tmp_path, capsys, monkeypatch):
    """`ls.judge(resume=RUN_DIR)` continues a judge run from its folder (its candidates, task and options
    from config.json): the finished calls are not asked again; `dry_run=True` plans it and writes nothing."""
    from fakeservers import KEY_ENV, TEST_KEYS, make_server

    import llmscisci as ls

    monkeypatch.setenv(KEY_ENV["openai"], TEST_KEYS["openai"])
    cand = data_dir / "labels" / "annotator_b.jsonl"
    with make_server("openai") as srv:
        run = ls.judge([cand], task="easy", model="openai:gpt-4o-mini", base_url=srv.base_url, limit=2,
                       orders="cyclic", data_dir=data_dir, no_cache=True, out=tmp_path / "j")
        before = json.loads((run.path / "config.json").read_text())
        lines = (run.path / "predictions.jsonl").read_text().splitlines()
        (run.path / "predictions.jsonl").write_text("\n".join(lines[:3]) + "\n")  # killed after 3 of 4 calls
        plan = ls.judge(resume=run.path, dry_run=True)
        assert "calls (items x orders): 4" in plan.text and len(lines) == 4
        sent = srv.calls
        again = ls.judge(resume=run.path, base_url=srv.base_url, no_cache=True)
        assert again.path == run.path and srv.calls == sent + 1
        # the command (which describes what it judges first) reads the items and candidates once
        from llmscisci.data import items as items_mod

        reads, real = [], items_mod.load_items
        monkeypatch.setattr(items_mod, "load_items", lambda *a, **k: reads.append(1) or real(*a, **k))
        code, out, err = run_console(["judge", "--resume", run.path, "--base-url", srv.base_url, "--no-cache"],
                                     capsys, monkeypatch)
        assert code == 0 and "judging 2 items x 2 orders of 2 candidates" in out + err, err
        assert len(reads) == 1 and srv.calls == sent + 1
    after = json.loads((run.path / "config.json").read_text())
    described = ("backend", "versions")  # how the backend was reached (e.g. a remembered structured form)
    assert {k: v for k, v in after.items() if k not in described} == \
        {k: v for k, v in before.items() if k not in described}
    assert len(read_jsonl(run.path / "predictions.jsonl")) == 4
    assert sorted(p.name for p in (tmp_path / "j").iterdir()) == [run.path.name]


def test_resumed_extraction_keeps_its_answer_key(data_dir, tmp_path):
    """`extract --resume` without `--bib` scores against the answer key the run was started with (it used
    to fall back to the bundled one), and the page's answer key and blocks are read once, not twice."""
    import llmscisci as ls
    from llmscisci.tasks.extract import truth as truth_mod

    page = data_dir / "rescience" / "read_index_2022-07-11.html"
    entries = (data_dir / "rescience" / "published.bib").read_text("utf-8").split("\n@")
    own = tmp_path / "own.bib"
    own.write_text("\n@".join(entries[: len(entries) // 2]) + "\n", "utf-8")  # half the answer key
    run = ls.extract(page, model="baseline", bib=own, limit=4, out=tmp_path / "runs", progress=False)
    before = json.loads((run.path / "metrics.json").read_text())
    loads = []
    real = truth_mod.load_truth

    def counting(path):
        loads.append(str(path))
        return real(path)

    import llmscisci.api.extract_runs  # noqa: F401 - imports load_truth inside its functions
    truth_mod.load_truth = counting
    try:
        again = ls.extract(page, model="baseline", limit=4, out=tmp_path / "runs", resume=run.path, progress=False)
    finally:
        truth_mod.load_truth = real
    assert again.path == run.path and loads == [str(own)]
    assert json.loads((run.path / "config.json").read_text())["bib"] == str(own)
    after = json.loads((run.path / "metrics.json").read_text())
    assert after["headline"] == before["headline"]


def test_extract_resume_needs_no_page_nor_options(data_dir, tmp_path, capsys, monkeypatch):
    """`extract --resume RUN` alone continues the run on its own page with its own model, variant and
    answer key (`ls.extract(resume=RUN)` too); an option given with another value is refused in one line,
    and another page is refused before anything loads."""
    from fakeservers import KEY_ENV, TEST_KEYS, make_server

    import llmscisci as ls

    monkeypatch.setenv(KEY_ENV["openai"], TEST_KEYS["openai"])
    page = data_dir / "rescience" / "read_index_2022-07-11.html"
    with make_server("openai") as srv:
        run = ls.extract(page, model="openai:gpt-4o-mini", variant="structured", limit=3, base_url=srv.base_url,
                         no_cache=True, out=tmp_path / "runs", progress=False)
        lines = (run.path / "predictions.jsonl").read_text().splitlines()
        (run.path / "predictions.jsonl").write_text(lines[0] + "\n")  # killed after the first unit
        sent = srv.calls
        code, out, err = run_console(["extract", "--resume", run.path, "--base-url", srv.base_url, "--no-cache",
                                      "--quiet"], capsys, monkeypatch)
        assert code == 0, err
        assert srv.calls == sent + 2  # the two units left, with the run's model and variant
        assert len(read_jsonl(run.path / "predictions.jsonl")) == 3
        again = ls.extract(resume=run.path, base_url=srv.base_url, no_cache=True, progress=False)
        assert again.path == run.path and srv.calls == sent + 2
        code, _, err = run_console(["extract", "--resume", run.path, "--model", "openai:gpt-4o", "--base-url",
                                    srv.base_url], capsys, monkeypatch)
        assert code == 2 and err.strip().count("\n") == 0
        assert "--model openai:gpt-4o differs from the run's 'openai:gpt-4o-mini'" in err
        other = data_dir / "rescience" / "read_index_2025-03-04.html"
        code, _, err = run_console(["extract", str(other), "--resume", run.path], capsys, monkeypatch)
        assert code == 2 and "is not the one the run extracted from" in err and srv.calls == sent + 2
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == [run.path.name]
    code, _, err = run_console(["extract", "--model", "baseline"], capsys, monkeypatch)  # no page, no run
    assert code == 2
    assert err.strip() == "error: give a page: an HTML file, a folder of them or a URL (or --resume RUN_DIR)"
