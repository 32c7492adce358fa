"""Nothing silent: failed items exit non-zero, an unreachable server stops the run, an item is counted
once whatever its attempts, changed texts never come back with old labels, output paths are checked
before any work, and a record without `valid` counts the same everywhere."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fakeservers import FakeOpenAI
from typer.testing import CliRunner

from llmscisci.backends.base import Backend, Generation
from llmscisci.cli import app
from llmscisci.data.codebook import load_codebook
from llmscisci.errors import ItemsFailed, UserError
from llmscisci.runs import RunFolder, read_jsonl
from llmscisci.tasks.stoprule import RunStopped

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
EASY = load_codebook("easy")


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0000")


@pytest.fixture
def refused_url() -> str:
    """A base URL on a port nothing listens on: every request is refused."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}/v1"


def only_run(out: Path) -> Path:
    (run,) = [p for p in out.iterdir() if p.is_dir()]
    return run


def label_args(url, out, *extra, limit=3, data_dir=None):
    return ["label", "--task", "easy", "--model", "openai:local", "--base-url", url, "--limit", str(limit),
            "--out", str(out), "--no-cache", "--max-attempts", "2", "--timeout", "5", "--concurrency", "1",
            *(["--data-dir", str(data_dir)] if data_dir else []), *extra]


def write_csv(path: Path, texts: list[str], refs: bool = False) -> Path:
    head = "id,abstract" + (",code,artifacts,readability,setup,none" if refs else "")
    rows = [f"w{i},{t}" + (",1,0,0,0,0" if refs else "") for i, t in enumerate(texts)]
    path.write_text("\n".join([head, *rows]) + "\n", encoding="utf-8")
    return path


# --- an unreachable server, failed items ----------------------------------------------------------------
def test_wrong_base_url_stops_after_five_unreachable_items(refused_url, data_dir, tmp_path):
    """7 items, a port nothing listens on: the run stops after 5 items in a row, at once, not after 7."""
    t0 = time.perf_counter()
    res = CliRunner().invoke(app, label_args(refused_url, tmp_path / "out", limit=7, data_dir=data_dir))
    took = time.perf_counter() - t0
    assert isinstance(res.exception, RunStopped), res.output
    msg = str(res.exception)
    assert "5 items in a row could not connect to the server" in msg and "--base-url" in msg
    assert "\n" not in msg
    assert len(read_jsonl(only_run(tmp_path / "out") / "predictions.jsonl")) == 5
    assert took < 60


def test_every_item_failed_exits_3_with_one_line(refused_url, data_dir, tmp_path):
    """2 items, both unanswered (too few for the stop rule): the command still fails, exit code 3."""
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "xdg"), "OPENAI_API_KEY": "sk-test-0000"}
    res = subprocess.run([sys.executable, "-m", "llmscisci", *label_args(refused_url, tmp_path / "out", limit=2,
                                                                          data_dir=data_dir)],
                         capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 3, res.stderr
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in res.stderr
    assert errors[0].startswith("error: 2 items failed (last error: APIConnectionError")
    assert errors[0].endswith("re-run the same command to retry them")
    assert "Labelling metrics: task easy" in res.stdout  # the results are shown before the line


def test_retried_items_are_counted_once_by_every_reader(refused_url, data_dir, tmp_path):
    """A failed run then its re-run: predictions.jsonl holds a line per attempt, every reader one item."""
    out = tmp_path / "out"
    res = CliRunner().invoke(app, label_args(refused_url, out, data_dir=data_dir))
    assert isinstance(res.exception, ItemsFailed) and str(res.exception).startswith("3 items failed")
    run = only_run(out)
    with FakeOpenAI() as srv:
        res = CliRunner().invoke(app, ["label", "--resume", str(run), "--base-url", srv.base_url, "--no-cache"])
        assert res.exit_code == 0, (res.output, res.exception)
    assert len(read_jsonl(run / "predictions.jsonl")) == 6  # one line per item and attempt
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["n_items"] == 3 and metrics["unanswered"] == 0 and metrics["failed"] == 0
    assert len(list(RunFolder(run).iter_predictions())) == 3
    from llmscisci.data.labelfiles import load_labels
    from llmscisci.report.collect import _load_label_run
    from llmscisci.report.export import export_run
    from llmscisci.report.runstats import run_stats

    assert len(load_labels(run).records) == 3  # `agree` reads the run folder: no "duplicate item"
    lr = _load_label_run(run, json.loads((run / "config.json").read_text()))
    assert run_stats(lr, n_boot=100, seed=1, level=0.95).n_records == 3
    assert export_run(run, "jsonl", tmp_path / "x.jsonl") == 3


def test_streamed_run_retries_failed_items_of_finished_chunks(refused_url, tmp_path):
    """`label --input` with chunks of one item: the failed items sit in finished chunks; the same
    command against a working server asks them again, and the run is counted once per item."""
    corpus = write_csv(tmp_path / "c.csv", ["Code was shared.", "Data was missing.", "Easy to run."])
    args = ["label", "--task", "easy", "--input", str(corpus), "--text-column", "abstract", "--model",
            "openai:local", "--out", str(tmp_path / "out"), "--no-cache", "--max-attempts", "1",
            "--chunk-size", "1", "--concurrency", "1"]
    res = CliRunner().invoke(app, [*args, "--base-url", refused_url])
    assert isinstance(res.exception, ItemsFailed) and str(res.exception).startswith("3 items failed"), res.output
    run = only_run(tmp_path / "out")
    assert json.loads((run / "progress.json").read_text())["chunks"] == 3
    with FakeOpenAI() as srv:
        res = CliRunner().invoke(app, [*args, "--base-url", srv.base_url])
        assert res.exit_code == 0, (res.output, res.exception)
        assert srv.calls == 3
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["n"] == 3 and metrics["failed"] == 0 and metrics["unanswered"] == 0
    assert metrics["distribution"]["all"]["n"] == 3
    assert len((run / "predictions.csv").read_text().strip().splitlines()) == 1 + 3


class Echo(Backend):
    """Answers every item with category 1 (no server)."""

    name = "echo"

    def generate(self, conversations, params=None, schema=None, on_result=None):
        out = []
        for i, _ in enumerate(conversations):
            gen = Generation(text="[1]", tokens_in=10, tokens_out=2)
            out.append(gen)
            if on_result:
                on_result(i, gen)
        return out

    def count_tokens(self, messages):
        return 10


class Unreachable(Backend):
    """Every call gets no answer (as an API backend records a refused connection)."""

    name = "unreachable"

    def generate(self, conversations, params=None, schema=None, on_result=None):
        out = []
        for i, _ in enumerate(conversations):
            gen = Generation(error="APIConnectionError: Connection error. (after 2 attempts)",
                             extra={"call_failed": True, "connection_failed": True})
            out.append(gen)
            if on_result:
                on_result(i, gen)
        return out

    def count_tokens(self, messages):
        return 10


def test_judge_and_extract_with_failed_calls_exit_3(data_dir, tmp_path, monkeypatch):
    from llmscisci.backends import registry

    monkeypatch.setattr(registry, "load_backend", lambda name, opts=None: Unreachable())
    runner = CliRunner()
    llms = ["--llm", str(data_dir / "labels" / "annotator_a.jsonl"), "--llm",
            str(data_dir / "labels" / "annotator_b.jsonl")]
    res = runner.invoke(app, ["judge", "--task", "easy", "--model", "openai:x", *llms, "--orders", "cyclic",
                              "--limit", "1", "--data-dir", str(data_dir), "--out", str(tmp_path / "j")])
    assert isinstance(res.exception, ItemsFailed), res.output
    assert str(res.exception).startswith("2 calls failed (last error: APIConnectionError")
    page = data_dir / "rescience" / "read_index_2025-03-04.html"
    res = runner.invoke(app, ["extract", str(page), "--model", "openai:x", "--variant", "guidelines", "--limit", "2", "--data-dir",
                              str(data_dir), "--out", str(tmp_path / "e")])
    assert isinstance(res.exception, ItemsFailed), res.output
    assert str(res.exception).startswith("2 units failed (last error: APIConnectionError")


def test_stop_rule_counts_unreachable_items_in_a_row():
    from llmscisci.tasks.stoprule import StopRule

    down = Generation(error="APIConnectionError: Connection error.", extra={"call_failed": True,
                                                                             "connection_failed": True})
    slow = Generation(error="APITimeoutError: timed out", extra={"call_failed": True})
    rule = StopRule()
    assert [rule.observe(down) for _ in range(4)] == [None] * 4
    assert rule.observe(slow) is None  # a timeout is not a refused connection: the streak starts again
    assert [rule.observe(down) for _ in range(4)] == [None] * 4
    assert "5 items in a row could not connect" in rule.observe(down)


def test_connection_errors_are_classified_as_such():
    from llmscisci.backends.retry import classify

    class APIConnectionError(Exception):  # the SDKs' names: openai, anthropic
        pass

    class APITimeoutError(APIConnectionError):  # openai's timeout derives from its connection error
        pass

    assert classify(APIConnectionError("Connection error.")).connection
    assert classify(ConnectionRefusedError("refused")).connection
    assert not classify(APITimeoutError("Request timed out.")).connection
    assert not classify(TimeoutError("slow")).connection


# --- changed texts ---------------------------------------------------------------------------------------
def test_changed_texts_make_a_new_corpus_run_and_resume_refuses(tmp_path):
    texts = ["Code was shared.", "Data was missing.", "Easy to run."]
    corpus = write_csv(tmp_path / "c.csv", texts)
    out = tmp_path / "out"
    with FakeOpenAI() as srv:
        args = ["label", "--task", "easy", "--input", str(corpus), "--text-column", "abstract", "--model",
                "openai:local", "--base-url", srv.base_url, "--out", str(out), "--no-cache"]
        assert CliRunner().invoke(app, args).exit_code == 0
        old = only_run(out)
        assert all(len(p["text_sha"]) == 12 for p in read_jsonl(old / "predictions.jsonl"))
        write_csv(corpus, [texts[0], "Data was shared after all.", texts[2]])  # same ids, one text fixed
        res = CliRunner().invoke(app, args)
        assert res.exit_code == 0, (res.output, res.exception)
        assert len([p for p in out.iterdir() if p.is_dir()]) == 2  # a new run folder, not the old labels
        res = CliRunner().invoke(app, ["label", "--resume", str(old), "--base-url", srv.base_url, "--no-cache"])
    assert isinstance(res.exception, UserError), res.output
    msg = str(res.exception)
    assert "1 of the 3 texts it labelled changed" in msg and "without --resume" in msg and "\n" not in msg


def _items(texts):
    from llmscisci.data.items import Item

    return [Item(f"10.1/{i}", "easy", t, (1, 0, 0, 0, 0), "train") for i, t in enumerate(texts)]


def test_changed_texts_of_a_study_run_change_its_hash_and_resume_refuses(tmp_path):
    from llmscisci.backends.base import GenParams
    from llmscisci.tasks.label import LabelSpec, run_label

    spec = LabelSpec(codebook=EASY, variant="guidelines", model="echo", params=GenParams(max_new_tokens=8))
    items = _items(["one text", "two text", "three text"])
    fixed = _items(["one text", "two text, fixed", "three text"])
    assert spec.hash(items, []) != spec.hash(fixed, [])
    run = run_label(spec, items, Echo(), tmp_path / "runs", show_progress=False)
    with pytest.raises(UserError, match="1 of the 3 texts it labelled changed"):
        run_label(spec, fixed, Echo(), tmp_path / "runs", run_dir=run.path, show_progress=False)
    again = run_label(spec, fixed, Echo(), tmp_path / "runs", show_progress=False)
    assert again.path != run.path


def test_a_run_made_before_text_fingerprints_still_resumes(tmp_path, capsys):
    """An old folder (its hash from a core without the texts' fingerprint) resumes with a note."""
    from llmscisci.backends.base import GenParams
    from llmscisci.runs import stable_hash, write_json
    from llmscisci.tasks.label import LabelSpec, run_label
    from llmscisci.tasks.texts import without_texts

    spec = LabelSpec(codebook=EASY, variant="guidelines", model="echo", params=GenParams(max_new_tokens=8))
    items = _items(["one text", "two text", "three text"])
    run = run_label(spec, items, Echo(), tmp_path / "runs", show_progress=False)
    cfg = without_texts(json.loads((run.path / "config.json").read_text()))
    cfg["hash"] = stable_hash(without_texts(spec.core(items, [])))
    write_json(run.path / "config.json", cfg)
    preds = read_jsonl(run.predictions_path)
    run.rewrite_predictions([{k: v for k, v in p.items() if k != "text_sha"} for p in preds[:2]])
    again = run_label(spec, items, Echo(), tmp_path / "runs", run_dir=run.path, show_progress=False)
    assert json.loads((again.path / "config.json").read_text())["hash"] == cfg["hash"]
    assert len(read_jsonl(run.predictions_path)) == 3
    assert "made before runs fingerprinted their texts" in capsys.readouterr().err


# --- output paths ------------------------------------------------------------------------------------------
@pytest.fixture
def a_run(tmp_path):
    from llmscisci.backends.base import GenParams
    from llmscisci.tasks.label import LabelSpec, run_label

    spec = LabelSpec(codebook=EASY, variant="guidelines", model="echo", params=GenParams(max_new_tokens=8))
    return run_label(spec, _items(["one text", "two text", "three text"]), Echo(), tmp_path / "runs",
                     show_progress=False).path


def _unwritable() -> Path:
    """A folder no one can create files in, root included (sysfs), or skip."""
    root = Path("/sys")
    try:
        (root / ".llmscisci-probe").touch()
    except OSError:
        return root
    (root / ".llmscisci-probe").unlink()
    pytest.skip("no unwritable folder on this machine")


def test_export_into_an_existing_folder_is_one_line_and_leaves_nothing(a_run, tmp_path):
    target = tmp_path / "adir"
    target.mkdir()
    res = CliRunner().invoke(app, ["export", str(a_run), "--format", "parquet", "--out", str(target)])
    assert isinstance(res.exception, UserError) and "is a folder" in str(res.exception), res.output
    assert not list(tmp_path.glob(".*tmp*")) and list(target.iterdir()) == []


@pytest.mark.parametrize("where", ["file", "readonly"])
def test_output_paths_are_checked_before_any_work(where, a_run, data_dir, tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    bad = afile / "sub" if where == "file" else _unwritable() / "llmscisci-out"
    why = "is a file, not a folder" if where == "file" else "cannot write in"
    cases = [
        ["label", "--task", "easy", "--model", "openai:local", "--limit", "1", "--out", str(bad)],
        ["export", str(a_run), "--format", "csv", "--out", str(bad / "x.csv")],
        ["report", str(a_run), "--out", str(bad)],
        ["baseline", "--task", "easy", "--method", "tfidf-logreg", "--save", str(bad), "--out",
         str(tmp_path / "b")],
        ["label", "--task", "easy", "--model", "openai:local", "--limit", "1", "--out", str(tmp_path / "r"),
         "--json-out", str(bad / "r.json")],
    ]
    for args in cases:
        res = CliRunner().invoke(app, args)
        assert isinstance(res.exception, UserError), (args, res.output, res.exception)
        msg = str(res.exception)
        assert why in msg and str(bad) in msg and "\n" not in msg, msg
    assert not (tmp_path / "b").exists() and not (tmp_path / "r").exists()  # nothing started


# --- small things -------------------------------------------------------------------------------------------
def test_a_record_without_valid_counts_the_same_in_metrics_and_report():
    import numpy as np

    from llmscisci.metrics.evaluate import evaluate
    from llmscisci.records import LabelPrediction
    from llmscisci.report.runstats import _pred

    recs = [{"doi": "a", "task": "easy", "split": "test", "labels": [1, 0, 0, 0, 0], "reference": [1, 0, 0, 0, 0]},
            {"doi": "b", "task": "easy", "split": "test", "labels": None, "reference": [1, 0, 0, 0, 0]},
            {"doi": "c", "task": "easy", "split": "test", "labels": [1, 0, 0, 0, 0], "valid": False,
             "reference": [1, 0, 0, 0, 0]}]
    m = evaluate(recs, EASY)
    assert evaluate([LabelPrediction.read(r) for r in recs], EASY) == m  # dicts or records: the same
    report_invalid = float(np.mean([_pred(LabelPrediction.read(r)) is None for r in recs]))
    assert m["invalid_rate"] == pytest.approx(report_invalid) == pytest.approx(2 / 3)
    from llmscisci.metrics.diagnostics import diagnostics

    assert diagnostics(recs)["n_valid"] == 1  # the text-dependence diagnostics
    from llmscisci.metrics.distribution import label_distribution
    from llmscisci.tasks.stream_finish import Distribution

    assert label_distribution(recs, EASY.shorts)[1][0].n_valid == 1  # the report's label distribution
    stream = Distribution(EASY)
    for r in recs:
        stream.add(r)
    assert stream.n == 1  # a corpus run's distribution


def test_corpus_summary_with_references_names_its_items(tmp_path):
    corpus = write_csv(tmp_path / "c.csv", ["Code was shared.", "Data was missing."], refs=True)
    with FakeOpenAI() as srv:
        res = CliRunner().invoke(app, ["label", "--task", "easy", "--input", str(corpus), "--text-column", "abstract",
                                       "--model", "openai:local", "--base-url", srv.base_url, "--out",
                                       str(tmp_path / "out"), "--no-cache"])
    assert res.exit_code == 0, (res.output, res.exception)
    assert "items None" not in res.output and "items 2, invalid" in res.output
    assert "Labelling metrics: task easy" in res.output


def test_unknown_model_names_the_provider_prefixes(data_dir):
    res = CliRunner().invoke(app, ["label", "--model", "foo:bar", "--limit", "1", "--data-dir", str(data_dir)])
    msg = str(res.exception)
    assert isinstance(res.exception, UserError) and "'foo' is not a provider" in msg
    assert all(p in msg for p in ("openai:NAME", "anthropic:NAME", "gemini:NAME", "smollm2-135m"))
    res = CliRunner().invoke(app, ["label", "--help"], env={"COLUMNS": "200"})
    assert "Parquet (.gz" not in res.output and ".parquet.gz" not in res.output


def test_the_main_job_names_the_task_of_each_table(data_dir, tmp_path):
    with FakeOpenAI() as srv:
        res = CliRunner().invoke(app, ["label", "--model", "openai:local", "--base-url", srv.base_url, "--limit", "2",
                                       "--data-dir", str(data_dir), "--out", str(tmp_path / "out"), "--no-cache"])
    assert res.exit_code == 0, (res.output, res.exception)
    assert res.output.index("Labelling metrics: task easy") < res.output.index("Labelling metrics: task difficult")


def test_model_conversion_progress_bars_are_quiet(capfd):
    from tqdm.auto import tqdm
    from transformers.utils import logging as hf_logging

    from llmscisci.backends.embedded import quiet_progress

    with quiet_progress():
        for _ in tqdm(range(3), desc="Converting and de-quantizing GGUF tensors..."):
            pass
        for _ in hf_logging.tqdm(range(3), desc="Loading weights"):
            pass
    assert "Converting" not in capfd.readouterr().err
    assert hf_logging.is_progress_bar_enabled()  # restored afterwards


def test_a_grid_finds_its_runs_made_before_text_fingerprints(tmp_path, data_dir, monkeypatch):
    """A grid's finished cell whose folder predates text fingerprints is still recognised as done."""
    from llmscisci.backends import registry
    from llmscisci.runs import stable_hash, write_json
    from llmscisci.tasks import grid as G
    from llmscisci.tasks.texts import without_texts

    out = tmp_path / "grid"
    cfg = tmp_path / "g.toml"
    cfg.write_text(f'name = "t"\nout = "{out}"\ntasks = ["easy"]\nvariants = ["guidelines"]\n'
                   'models = ["openai:gpt-4o-mini"]\nlimit = 3\n', encoding="utf-8")
    monkeypatch.setattr(registry, "load_backend", lambda name, opts=None: Echo())
    assert CliRunner().invoke(app, ["grid", str(cfg), "--data-dir", str(data_dir)]).exit_code == 0
    (run,) = [p for p in out.iterdir() if (p / "config.json").is_file()]
    old = without_texts(json.loads((run / "config.json").read_text()))
    core = {k: old[k] for k in ("kind", "task", "variant", "model", "params", "shots", "limit", "split_filter",
                                "prompt_hash", "codebook", "items")}
    old["hash"] = stable_hash(core)
    write_json(run / "config.json", old)
    g, _ = G.prepare_grid(G.load_grid(cfg), data_dir=data_dir)
    (cell,) = g.cells
    assert cell.status == "done" and cell.calls == 0


def test_loading_a_model_from_disk_shows_no_weight_bars(tiny_model_dir, capfd):
    """A local model folder loads without transformers' "Loading weights" bar (noise in a log file)."""
    from transformers.utils import logging as hf_logging

    from llmscisci.backends.base import BackendOptions
    from llmscisci.backends.models import load

    capfd.readouterr()
    load(str(tiny_model_dir), BackendOptions(device="cpu"))
    assert "Loading weights" not in capfd.readouterr().err
    assert hf_logging.is_progress_bar_enabled()  # restored afterwards


# --- grid and eval: unanswered items exit 3 as well ---------------------------------------------------------
def _grid_with_an_unreachable_model(tmp_path, data_dir, monkeypatch) -> tuple[Path, Path]:
    """A grid of two label cells: openai:good answers every item, openai:down none (2 items each)."""
    from llmscisci.backends import registry

    out = tmp_path / "grid"
    cfg = tmp_path / "g.toml"
    cfg.write_text(f'name = "t"\nout = "{out}"\ntasks = ["easy"]\nvariants = ["guidelines"]\n'
                   'models = ["openai:good", "openai:down"]\nlimit = 2\n', encoding="utf-8")
    monkeypatch.setattr(registry, "load_backend",
                        lambda name, opts=None: Unreachable() if name == "openai:down" else Echo())
    return cfg, out


def _cell_dir(out: Path, model: str) -> Path:
    (cell,) = [c for c in json.loads((out / "grid.json").read_text())["cells"] if c["model"] == model]
    return out / cell["dir"]


def test_a_grid_with_unanswered_items_exits_3_after_its_tables(tmp_path, data_dir, monkeypatch):
    cfg, out = _grid_with_an_unreachable_model(tmp_path, data_dir, monkeypatch)
    res = CliRunner().invoke(app, ["grid", str(cfg), "--data-dir", str(data_dir), "--dry-run"])
    assert res.exit_code == 0, res.output  # a plan runs nothing: nothing unanswered
    res = CliRunner().invoke(app, ["grid", str(cfg), "--data-dir", str(data_dir)])
    assert isinstance(res.exception, ItemsFailed), (res.output, res.exception)
    msg = str(res.exception)
    assert msg.startswith("2 items in 1 of 2 cells failed (last error: APIConnectionError"), msg
    assert msg.endswith("re-run the same command to retry them") and "\n" not in msg
    assert "grid t: labelling" in res.output and "label/easy/openai:down/guidelines/p0/s2025: 2 unanswered" \
        in res.output  # the results and the cell are shown first
    cells = {c["model"]: c for c in json.loads((out / "grid.json").read_text())["cells"]}
    assert cells["openai:down"]["status"] == "done" and cells["openai:good"]["status"] == "done"
    assert json.loads((_cell_dir(out, "openai:down") / "metrics.json").read_text())["unanswered"] == 2

    import llmscisci as ls

    df = ls.grid(cfg, data_dir=data_dir, progress=False)  # Python: the results, no exit; a re-run asks again
    assert dict(zip(df["model"], df["unanswered"])) == {"openai:good": 0, "openai:down": 2}
    assert len(read_jsonl(_cell_dir(out, "openai:down") / "predictions.jsonl")) == 4  # asked again


def test_eval_of_a_run_with_unanswered_items_exits_3(tmp_path, data_dir, monkeypatch):
    cfg, out = _grid_with_an_unreachable_model(tmp_path, data_dir, monkeypatch)
    CliRunner().invoke(app, ["grid", str(cfg), "--data-dir", str(data_dir)])
    down, good = _cell_dir(out, "openai:down"), _cell_dir(out, "openai:good")
    (down / "metrics.json").unlink()
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    res = subprocess.run([sys.executable, "-m", "llmscisci", "eval", str(down)], capture_output=True, text=True,
                         env=env, timeout=300)
    assert res.returncode == 3, res.stderr
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in res.stderr
    assert errors[0].startswith("error: 2 items failed (last error: APIConnectionError")
    assert errors[0].endswith(f"resume the run (--resume {down}) to ask them again")
    assert "Labelling metrics" in res.stdout  # the metrics are shown before the line
    assert json.loads((down / "metrics.json").read_text())["unanswered"] == 2  # and written
    res = CliRunner().invoke(app, ["eval", str(good)])
    assert res.exit_code == 0, (res.output, res.exception)


def test_eval_of_judge_and_extract_runs_with_unanswered_calls_exits_3(data_dir, tmp_path, monkeypatch):
    from llmscisci.backends import registry

    monkeypatch.setattr(registry, "load_backend", lambda name, opts=None: Unreachable())
    runner = CliRunner()
    llms = ["--llm", str(data_dir / "labels" / "annotator_a.jsonl"), "--llm",
            str(data_dir / "labels" / "annotator_b.jsonl")]
    runner.invoke(app, ["judge", "--task", "easy", "--model", "openai:x", *llms, "--orders", "cyclic",
                        "--limit", "1", "--data-dir", str(data_dir), "--out", str(tmp_path / "j")])
    page = data_dir / "rescience" / "read_index_2025-03-04.html"
    runner.invoke(app, ["extract", str(page), "--model", "openai:x", "--variant", "guidelines", "--limit", "2",
                        "--data-dir", str(data_dir), "--out", str(tmp_path / "e")])
    for out, noun in (("j", "calls"), ("e", "items")):
        run = only_run(tmp_path / out)
        (run / "metrics.json").unlink()
        res = runner.invoke(app, ["eval", str(run), "--json"])
        assert isinstance(res.exception, ItemsFailed), (out, res.output, res.exception)
        assert str(res.exception).startswith(f"2 {noun} failed (last error: APIConnectionError")
        assert json.loads((run / "metrics.json").read_text())["unanswered"] == 2
        json.loads(res.stdout)  # --json: the result on stdout as ever
