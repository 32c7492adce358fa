"""CallTotals: the one sum of a run's calls; RunFolder.records() typed by the run's kind; every reader of a run
folder reads its lines through one reader (runs.iter_jsonl)."""

import json

import pytest

from llmscisci.data.codebook import load_codebook
from llmscisci.records import CallTotals, ExtractUnit, JudgeCall, LabelPrediction, is_valid
from llmscisci.runs import BadLinesError, RunFolder


def test_totals_add_up_every_field():
    recs = [LabelPrediction(doi="a", tokens_in=3, tokens_out=2, cost_usd=0.25, seconds=1.5, model_version="v1"),
            LabelPrediction(doi="b", error="timeout", call_failed=True, tokens_in=1),
            LabelPrediction(doi="c", empty=True),
            LabelPrediction(doi="d", refusal=True, cost_usd=0.5, model_version="v2")]
    m = CallTotals.from_records(recs).as_metrics()
    assert m == {"failed": 1, "unanswered": 1, "last_error": "timeout", "refusals": 1, "empty": 1,
                 "tokens": {"in": 4, "out": 2}, "cost_usd": 0.75, "generation_seconds": 1.5,
                 "model_versions": ["v1", "v2"]}
    assert CallTotals.from_records([LabelPrediction(doi="x")]).as_metrics()["cost_usd"] is None
    odd = LabelPrediction.read({"doi": "y", "tokens_in": "many", "cost_usd": "free", "seconds": 2})  # kept unchecked
    assert CallTotals.from_records([odd]).as_metrics()["tokens"]["in"] == 0 and CallTotals.from_records([odd]).seconds == 2


def test_records_are_typed_by_the_runs_kind(tmp_path):
    for kind, cls in (("label", LabelPrediction), ("judge", JudgeCall), (None, LabelPrediction)):
        run = RunFolder(tmp_path / str(kind))
        run.path.mkdir()
        (run.path / "config.json").write_text(json.dumps({"kind": kind} if kind else {}))
        run.append([{"doi": "1", "task": "t", "call_failed": True, "error": "e"}, {"doi": "1", "task": "t", "raw": "ok"}])
        recs = run.records()
        assert [type(r) for r in recs] == [cls] and recs[0].raw == "ok"
        assert [r.raw for r in run.iter_records()] == ["ok"]


# --- typed records of every kind, one reader ------------------------------------------------------------
EASY = load_codebook("easy")
TORN = '{"doi": "d9", "task": "easy", "labels": [1, 0, 0, 0, 0], "raw": "caf\xc3'.encode("latin-1")  # cut mid-UTF-8


def _folder(path, kind, lines, tail: bytes = b""):
    path.mkdir()
    (path / "config.json").write_text(json.dumps({"kind": kind, "task": "easy", "codebook": EASY.model_dump()}))
    (path / "predictions.jsonl").write_bytes(b"".join(json.dumps(r).encode() + b"\n" for r in lines) + tail)
    return RunFolder(path)


def test_every_kind_reads_as_its_record_one_per_call(tmp_path):
    unit = {"doi": "block-0001", "task": "extract", "unit": "block-0001", "kind": "block", "blocks": [1],
            "truth_dois": ["10.1/x"], "input": "<p>x</p>", "raw": "[]", "valid": True, "repaired": False,
            "parse_error": None, "records": [], "baseline_records": [{"doi": "10.1/x"}], "truncated": True}
    extract = _folder(tmp_path / "extract", "extract", [unit])
    (rec,) = extract.records()
    assert type(rec) is ExtractUnit and rec.truncated and rec.truth_dois == ["10.1/x"] and rec.blocks == [1]
    assert rec.model_extra == {} and rec.to_json() == unit  # every field the extraction writer writes is declared
    # a judge run holds one call per item and candidate order: both orders are kept, the retry of one wins
    calls = [{"doi": "a", "task": "easy", "order": ["x", "y"], "call_failed": True, "error": "e"},
             {"doi": "a", "task": "easy", "order": ["y", "x"], "raw": "2"},
             {"doi": "a", "task": "easy", "order": ["x", "y"], "raw": "1"}]
    judge = _folder(tmp_path / "judge", "judge", calls)
    assert sorted((r.order[0], r.raw) for r in judge.records()) == [("x", "1"), ("y", "2")]
    assert sorted(r.raw for r in judge.iter_records()) == ["1", "2"]
    label = _folder(tmp_path / "label", "label", [{"doi": "a", "task": "easy", "labels": [1, 0, 0, 0, 0], "valid": True}])
    assert type(label.records()[0]) is LabelPrediction and label.records()[0].labels == [1, 0, 0, 0, 0]


def test_predictions_are_the_runs_records_and_rewrite_writes_them(tmp_path):
    """`RunFolder.predictions()` and `iter_predictions()` give the class of the run's kind (label, judge,
    extract), the latest attempt of each call; `rewrite_predictions` takes records and writes their lines."""
    unit = {"doi": "u1", "task": "extract", "unit": "u1", "raw": "[]", "valid": True, "records": []}
    call = {"doi": "a", "task": "easy", "order": ["x", "y"], "raw": "1", "judge_scores": {"x": 2}}
    pred = {"doi": "a", "task": "easy", "labels": [1, 0, 0, 0, 0], "valid": True, "meta": {"type": "article"}}
    for kind, line, cls in (("label", pred, LabelPrediction), ("judge", call, JudgeCall), ("extract", unit, ExtractUnit)):
        failed = {k: line[k] for k in ("doi", "task", "order") if k in line} | {"call_failed": True, "error": "e"}
        run = _folder(tmp_path / kind, kind, [failed, line])
        (rec,) = run.predictions()
        (again,) = run.iter_predictions()
        assert type(rec) is cls and type(again) is cls and rec == again and not rec.call_failed
        assert rec.to_json() == line and run.records() == [rec]  # `records()`: the same reader
        run.rewrite_predictions([rec.model_copy(update={"raw": "new"})])
        assert [json.loads(x) for x in run.predictions_path.read_text().splitlines()] == [line | {"raw": "new"}]
    assert RunFolder(tmp_path / "label").done_keys() == {("a", "easy")}


def test_the_reader_starts_at_a_checkpoint_offset(tmp_path):
    """`iter_jsonl(start=)` reads from a checkpoint's byte offset (the runner's tail after a kill)."""
    from llmscisci.runs import iter_jsonl

    run = _folder(tmp_path / "r", "label", [{"doi": "a"}, {"doi": "b"}, {"doi": "c"}], tail=TORN)
    offset = len(run.predictions_path.read_bytes().split(b"\n", 1)[0]) + 1
    assert [r["doi"] for r in iter_jsonl(run.predictions_path, start=offset)] == ["b", "c"]
    assert [(n, o) for n, o, _ in iter_jsonl(run.predictions_path, start=offset, positions=True)] == [(1, offset), (2, 2 * offset)]  # equal lines


def test_is_valid_reads_a_record_as_a_dict():
    """A line without `valid` is valid iff it has labels, read as a dict or as a record."""
    for line, valid in (({"labels": [1, 0]}, True), ({"labels": None}, False), ({"labels": [1, 0], "valid": False}, False),
                        ({"valid": True}, True), ({}, False)):
        assert is_valid(line) is valid and is_valid(LabelPrediction.read(line)) is valid, line


def test_a_line_that_is_no_object_is_a_bad_line(tmp_path):
    run = _folder(tmp_path / "r", "label", [{"doi": "a", "task": "easy"}])
    with run.predictions_path.open("a") as fh:
        fh.write("[1, 2]\n" + json.dumps({"doi": "b", "task": "easy"}) + "\n")
    with pytest.raises(BadLinesError, match="line 2: not a JSON object"):
        run.records()
    assert [r.doi for r in run.records(skip_bad=True)] == ["a", "b"] and run.bad_lines == 1


def test_every_run_folder_reader_skips_a_torn_last_line(tmp_path, data_dir):
    """A killed run's torn last line (cut inside a UTF-8 character) is skipped by every reader of a run
    folder alike: the three whole lines are read, nothing fails."""
    import llmscisci as ls
    from llmscisci.coding.gold import load_gold
    from llmscisci.data.labelfiles import load_labels
    from llmscisci.metrics.evaluate import evaluate
    from llmscisci.report.collect import _load_label_run
    from llmscisci.report.export import export_run
    from llmscisci.tasks.distill import read_teacher

    lines = [{"doi": f"d{i}", "task": "easy", "split": "test", "labels": [0, 1, 0, 0, 0], "valid": True,
              "reference": [0, 1, 0, 0, 0], "raw": "[2]", "meta": {"row": i}} for i in range(3)]
    run = _folder(tmp_path / "run", "label", lines, tail=TORN)
    with pytest.raises(ValueError):
        run.predictions_path.read_bytes().decode("utf-8")  # the tail is not even UTF-8
    assert [r.doi for r in run.records()] == [r.doi for r in run.iter_records()] == ["d0", "d1", "d2"]
    assert evaluate(run.records(), EASY)["n_items"] == 3
    assert export_run(run.path, "csv", tmp_path / "x.csv") == 3
    assert len(_load_label_run(run.path, run.config).records) == 3
    assert len(ls.open_run(run.path).records()) == len(ls.open_run(run.path).predictions) == 3
    assert len(load_labels(run.path).records) == 3  # `agree`, `judge --llm`, `code` read the folder too
    assert set(load_gold(run.path, EASY, ["d0", "d1", "d2"]).labels) == {"d0", "d1", "d2"}
    assert set(read_teacher(run.path).labels) == {"d0", "d1", "d2"}


def test_label_files_reader_names_a_damaged_run_line(tmp_path):
    from llmscisci.data.labelfiles import load_labels
    from llmscisci.errors import DataError

    run = _folder(tmp_path / "run", "label", [{"doi": "a", "task": "easy", "labels": [0, 1, 0, 0, 0]}])
    with run.predictions_path.open("a") as fh:
        fh.write("{oops\n")
    with pytest.raises(DataError, match="row 2: not a JSON object line"):
        load_labels(run.path)


def test_run_and_report_totals_are_metrics_json(tmp_path, data_dir, monkeypatch):
    """`Run.totals` and the report's per-run sums are CallTotals over the records: metrics.json's numbers."""
    from fakeservers import FakeOpenAI
    from typer.testing import CliRunner

    import llmscisci as ls
    from llmscisci.cli import app
    from llmscisci.report.collect import _load_label_run
    from llmscisci.report.runstats import run_stats

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0000")
    with FakeOpenAI() as srv:
        res = CliRunner().invoke(app, ["label", "--task", "easy", "--model", "openai:local", "--base-url", srv.base_url,
                                       "--limit", "3", "--out", str(tmp_path / "out"), "--no-cache",
                                       "--data-dir", str(data_dir)])
    assert res.exit_code == 0, (res.output, res.exception)
    (path,) = (tmp_path / "out").iterdir()
    run = ls.open_run(path)
    totals = run.totals.as_metrics()
    assert run.totals.n == 3 and totals["tokens"]["in"] > 0
    assert totals == {k: run.metrics.get(k) for k in totals}
    st = run_stats(_load_label_run(path, run.config), n_boot=50, seed=1, level=0.95)
    assert round(st.seconds, 3) == run.metrics["generation_seconds"] and st.cost == run.metrics["cost_usd"]


def test_iter_predictions_keeps_the_latest_attempt_with_and_without_failed_calls(tmp_path):
    """The latest attempt of each call, in file order, whether or not calls failed (the first pass reads
    only lines that mention `call_failed`: an answer that merely contains the words changes nothing)."""
    ok = {"task": "easy", "labels": [0, 1, 0, 0, 0], "valid": True, "raw": "[2]"}
    clean = _folder(tmp_path / "clean", "label", [{**ok, "doi": "a"}, {**ok, "doi": "b", "raw": 'say "call_failed"'}])
    assert [(r.doi, r.raw) for r in clean.iter_predictions()] == [("a", "[2]"), ("b", 'say "call_failed"')]
    assert clean.unanswered_keys() == set()
    failed = {"task": "easy", "labels": None, "valid": False, "raw": "", "call_failed": True, "error": "timeout"}
    lines = [{**failed, "doi": "a"}, {**ok, "doi": "b"}, {**failed, "doi": "c"}, {**ok, "doi": "a", "raw": "[3]"},
             {**failed, "doi": "c"}]
    run = _folder(tmp_path / "retried", "label", lines)
    got = [(r.doi, r.raw, bool(r.call_failed)) for r in run.iter_predictions()]
    assert got == [("b", "[2]", False), ("a", "[3]", False), ("c", "", True)]
    assert sorted(got) == sorted((r.doi, r.raw, bool(r.call_failed)) for r in run.predictions())
    assert run.unanswered_keys() == {("c", "easy")}  # a's retry got its answer
