"""`llmscisci extract`: the task runner with a fake backend, the baseline on both snapshots, the CLI."""

from __future__ import annotations

import csv
import json

import pytest

from console import run_console as cli
from llmscisci.backends.base import Backend, Generation, GenParams
from llmscisci.errors import UserError
from llmscisci.runs import read_jsonl
from llmscisci.tasks.extract.baseline import baseline_extract
from llmscisci.tasks.extract.run import ExtractSpec, finish_run, reevaluate, run_extract
from llmscisci.tasks.extract.source import read_page
from llmscisci.tasks.extract.truth import load_truth

SNAP22 = "read_index_2022-07-11.html"
SNAP25 = "read_index_2025-03-04.html"
RUN_FILES = {"config.json", "predictions.jsonl", "predictions.csv", "metrics.json", "baseline.csv"}


class FakeBackend(Backend):
    """Answers each unit with `answer(html)`; records what it was asked."""

    name = "fake"

    def __init__(self, answer, context_length: int | None = 100_000, finish: str = "stop"):
        self.answer = answer
        self.finish = finish
        self.context_length = context_length
        self.calls: list[int] = []
        self.schemas: list = []

    def count_tokens(self, messages):
        return sum(len(m["content"]) for m in messages) // 4

    def generate(self, conversations, params=GenParams(), schema=None, on_result=None):
        self.calls.append(len(conversations))
        self.schemas.append(schema)
        out = []
        for i, conv in enumerate(conversations):
            html = conv[-1]["content"].split("HTML:\n", 1)[-1]
            gen = Generation(text=self.answer(html), tokens_in=self.count_tokens(conv), tokens_out=10, seconds=0.01,
                             extra={"finish_reason": self.finish})
            out.append(gen)
            if on_result:
                on_result(i, gen)
        return out


def oracle(html: str) -> str:
    """A chatty answer holding the baseline's records, with the page's 'Last, First' names."""
    recs = [r.model_dump() for r in baseline_extract(html)]
    return "Here is what I found:\n```json\n" + json.dumps({"publications": recs}) + "\n```"


def liar(html: str) -> str:
    recs = [r.model_dump() for r in baseline_extract(html)]
    for r in recs:
        r["doi"], r["url"], r["confidence_score"] = "10.5555/example.2041", "https://example.org/x.pdf", 0.99
    return json.dumps(recs)


@pytest.fixture(scope="module")
def truth(data_dir):
    return load_truth(data_dir / "rescience" / "published.bib")


@pytest.fixture(scope="module")
def page22(data_dir):
    return read_page(data_dir / "rescience" / SNAP22)


def test_oracle_model_equals_baseline(page22, truth, tmp_path):
    be = FakeBackend(oracle)
    spec = ExtractSpec(variant="guidelines", model="fake", unit="block", limit=6)
    run = run_extract(spec, page22, truth, be, tmp_path, show_progress=False)
    assert RUN_FILES <= {p.name for p in run.path.iterdir()}
    assert be.calls == [6] and be.schemas == [None]
    preds = read_jsonl(run.path / "predictions.jsonl")
    assert len(preds) == 6 and all(p["valid"] and len(p["records"]) == 1 for p in preds)
    assert all(len(p["truth_dois"]) == 1 and p["doi"] == p["unit"] for p in preds)
    m = json.loads((run.path / "metrics.json").read_text())
    assert m["model"]["record"]["recall"] == 1.0 and m["model"]["mean_field_accuracy"] == 1.0
    assert m["model"]["truth_records"] == 6 and m["baseline"]["exact_record_rate"] == 1.0
    assert all(v == 0 for v in m["gap"].values())
    cfg = json.loads((run.path / "config.json").read_text())
    assert cfg["kind"] == "extract" and cfg["variant"] == "guidelines" and cfg["units"][0] == "block-0000"
    rows = list(csv.DictReader((run.path / "predictions.csv").open()))
    assert len(rows) == 6 and {r["status"] for r in rows} == {"matched"}
    # resume: the same configuration into the same folder asks the model nothing new
    be2 = FakeBackend(oracle)
    again = run_extract(spec, page22, truth, be2, tmp_path, show_progress=False)
    assert again.path == run.path and be2.calls == []
    assert json.loads((run.path / "metrics.json").read_text())["timing"]["resumed_units"] == 6
    assert reevaluate(run.path)["model"]["record"]["recall"] == 1.0


def test_extraction_run_reads_as_units_whose_totals_are_metrics_json(page22, truth, tmp_path):
    """Typed records of an extraction run (every field its writer writes declared), CallTotals equal to
    metrics.json, and a torn last line (a killed run) left out of the rescoring."""
    import llmscisci as ls
    from llmscisci.records import ExtractUnit

    run = run_extract(ExtractSpec(variant="icl", model="fake", limit=3), page22, truth, FakeBackend(oracle),
                      tmp_path, show_progress=False)
    opened = ls.open_run(run.path)
    recs = opened.records()
    assert len(recs) == 3 and all(type(r) is ExtractUnit and not r.model_extra for r in recs)
    assert all(r.valid and len(r.records) == 1 for r in recs)
    totals, m = opened.totals.as_metrics(), run.metrics()
    assert totals["tokens"]["out"] == 30 and {k: m[k] for k in totals if k != "empty"} == \
        {k: v for k, v in totals.items() if k != "empty"}  # an extraction run has no empty texts
    with run.predictions_path.open("a", encoding="utf-8") as fh:
        fh.write('{"doi": "block-0099", "task": "extract", "unit": "blo')
    again = finish_run(run, truth)
    assert again["units_done"] == 3 and again["model"] == m["model"]


def test_invalid_and_hallucinating_answers(page22, truth, tmp_path):
    run = run_extract(ExtractSpec(variant="icl", model="fake", limit=3), page22, truth,
                      FakeBackend(lambda h: "Sorry, I can't parse HTML."), tmp_path / "a", show_progress=False)
    m = run.metrics()
    assert m["model"]["valid_rate"] == 0.0 and m["model"]["record"]["recall"] == 0.0
    assert m["model"]["record"]["precision"] is None and m["baseline"]["record"]["recall"] == 1.0
    assert m["gap"]["record.recall"] == -1.0
    preds = read_jsonl(run.path / "predictions.jsonl")
    assert all(p["records"] is None and p["parse_error"] for p in preds)

    run = run_extract(ExtractSpec(variant="icl", model="fake", limit=3), page22, truth, FakeBackend(liar),
                      tmp_path / "b", show_progress=False)
    h = run.metrics()["model"]["hallucination"]
    assert h["rate"] == 1.0 and h["doi_not_in_input"] == 3 and h["url_not_in_input"] == 3
    assert run.metrics()["model"]["matched_by"] == {"doi": 0, "title": 3}  # joined on title instead
    assert run.metrics()["model"]["calibration"]["ece"] == pytest.approx(0.99)


def test_cut_off_answers_are_closed_and_counted(page22, truth, tmp_path):
    """An answer stopped by the token limit is closed at its last complete value (repaired)."""
    be = FakeBackend(lambda h: oracle(h).split('"confidence_score"')[0], finish="length")
    run = run_extract(ExtractSpec(variant="structured", model="fake", limit=3), page22, truth, be, tmp_path,
                      show_progress=False)
    preds = read_jsonl(run.path / "predictions.jsonl")
    assert all(p["valid"] and p["repaired"] and p["truncated"] for p in preds)
    m = run.metrics()
    assert m["truncated"] == 3 and m["model"]["repaired_units"] == 3 and m["model"]["matched_records"] == 3
    assert m["model"]["mean_field_accuracy"] == 1.0 and m["model"]["calibration"]["missing_confidence"] == 3
    again = reevaluate(run.path, reparse=True)  # re-reading the raw answers gives the same scores
    assert again["model"] == m["model"] and len(read_jsonl(run.path / "predictions.jsonl")) == 3


def test_structured_schema_window_and_too_long(page22, truth, tmp_path):
    be = FakeBackend(oracle)
    run = run_extract(ExtractSpec(variant="structured", model="fake", unit="window", window=3, limit=2),
                      page22, truth, be, tmp_path / "w", show_progress=False)
    schema = be.schemas[0]
    assert schema is not None and schema.model_json_schema()["properties"]["publications"]["maxItems"] == 3
    assert run.metrics()["model"]["truth_records"] == 6 and run.metrics()["model"]["matched_records"] == 6

    tiny = FakeBackend(oracle, context_length=300)  # no block fits
    run = run_extract(ExtractSpec(variant="icl", model="fake", limit=2), page22, truth, tiny, tmp_path / "t",
                      show_progress=False)
    preds = read_jsonl(run.path / "predictions.jsonl")
    assert tiny.calls == [] and all("exceeds the context window" in p["error"] for p in preds)
    assert run.metrics()["failed"] == 2 and run.metrics()["model"]["record"]["recall"] == 0.0


def test_page_unit_is_cut_to_the_context(page22, truth, tmp_path):
    be = FakeBackend(oracle, context_length=6000)
    spec = ExtractSpec(variant="guidelines", model="fake", unit="page", limit=3,
                       params=GenParams(max_new_tokens=1000))
    run = run_extract(spec, page22, truth, be, tmp_path, show_progress=False)
    preds = read_jsonl(run.path / "predictions.jsonl")
    assert len(preds) == 3 and [p["unit"] for p in preds] == ["page-0000", "page-0001", "page-0002"]
    assert all(be.count_tokens([{"role": "user", "content": p["input"]}]) + 1000 <= 6000 for p in preds)
    m = run.metrics()
    # model and baseline read the same cut pieces: the oracle equals the baseline, records split by a
    # cut are lost to both
    assert m["model"]["record"] == m["baseline"]["record"] and m["model"]["truth_records"] >= 3


@pytest.mark.parametrize("snapshot, n", [(SNAP22, 162), (SNAP25, 214)])
def test_baseline_scores_on_snapshots(data_dir, truth, tmp_path, snapshot, n):
    page = read_page(data_dir / "rescience" / snapshot)
    run = run_extract(ExtractSpec(variant="structured", model="baseline"), page, truth, None, tmp_path,
                      show_progress=False)
    m = run.metrics()["model"]
    assert m["truth_records"] == n and m["predicted_records"] == n and m["matched_records"] == n
    assert m["record"]["recall"] == 1.0 and m["record"]["precision"] == 1.0
    assert m["mean_field_accuracy"] == 1.0 and m["exact_record_rate"] == 1.0
    assert m["authors"]["f1"] == 1.0 and m["hallucination"]["rate"] == 0.0
    assert run.metrics()["baseline"]["record"] == m["record"]


def test_finish_run_rescoring_with_another_bib(page22, truth, tmp_path):
    run = run_extract(ExtractSpec(variant="icl", model="baseline", limit=2), page22, truth, None, tmp_path,
                      show_progress=False)
    small = tmp_path / "small.bib"
    small.write_text("@article{x, doi={10.5555/none.1}, title={Nothing}}", "utf-8")
    m = finish_run(run, load_truth(small))
    assert m["model"]["truth_records"] == 0 and m["model"]["record"]["recall"] is None


# ---- CLI ------------------------------------------------------------------------------------------------


def test_cli_baseline(data_dir, tmp_path, capsys, monkeypatch):
    code, out, err = cli(["extract", data_dir / "rescience" / SNAP25, "--model", "baseline", "--limit", "5",
                          "--data-dir", data_dir, "--out", tmp_path, "--quiet"], capsys, monkeypatch)
    assert code == 0, err
    (run_dir,) = tmp_path.iterdir()
    assert run_dir.name.startswith("extract_read_index_2025-03-04_baseline_baseline_")
    assert "5 of 5 truth records found" in out.replace("\n", " ")
    # --json: the scores alone on stdout, the table on stderr
    code, out, err = cli(["extract", data_dir / "rescience" / SNAP25, "--model", "baseline", "--limit", "5",
                          "--data-dir", data_dir, "--out", tmp_path, "--quiet", "--json"], capsys, monkeypatch)
    assert code == 0, err
    result = json.loads(out)
    assert result["run_dir"] == str(run_dir) and result["metrics"]["model"]["matched_records"] == 5
    assert "5 of 5 truth records found" in err.replace("\n", " ")


@pytest.mark.parametrize("args, msg", [
    (["--model", "baseline", "--unit", "sentence"], "unknown unit"),
    (["--model", "smollm2-135m"], "--variant is required"),
    (["--model", "smollm2-135m", "--variant", "fancy"], "unknown variant"),
    (["--model", "baseline", "--limit", "0"], "--limit must be at least 1"),
    (["--model", "baseline", "--window", "0"], "--window must be at least 1"),
])
def test_cli_bad_options(data_dir, tmp_path, capsys, monkeypatch, args, msg):
    code, _, err = cli(["extract", data_dir / "rescience" / SNAP22, *args, "--data-dir", data_dir,
                        "--out", tmp_path / "runs"], capsys, monkeypatch)
    assert code == 2 and err.startswith("error:") and msg in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("content, msg", [
    ("", "is empty"),
    ("<html><body><p>Nothing to see</p></body></html>", "no publication records found"),
    ("\x00\x01binary\xff garbage", "no publication records found"),
])
def test_cli_bad_pages(data_dir, tmp_path, capsys, monkeypatch, content, msg):
    page = tmp_path / "page.html"
    page.write_bytes(content.encode("latin-1"))
    code, _, err = cli(["extract", page, "--model", "baseline", "--data-dir", data_dir, "--out", tmp_path / "runs"],
                       capsys, monkeypatch)
    assert code == 2 and msg in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


def test_cli_missing_inputs(data_dir, tmp_path, capsys, monkeypatch):
    code, _, err = cli(["extract", tmp_path / "nope.html", "--model", "baseline", "--data-dir", data_dir],
                       capsys, monkeypatch)
    assert code == 2 and "not found" in err
    code, _, err = cli(["extract", data_dir / "rescience" / SNAP22, "--model", "baseline", "--bib",
                        tmp_path / "x.bib"], capsys, monkeypatch)
    assert code == 2 and "bibliography" in err and "not found" in err
    code, _, err = cli(["extract", data_dir / "rescience" / SNAP22, "--model", "baseline", "--data-dir", tmp_path],
                       capsys, monkeypatch)  # a data folder without rescience/published.bib
    assert code == 2 and "--data-dir" in err and "bibliography" in err


def test_run_extract_needs_a_backend(page22, truth, tmp_path):
    with pytest.raises(UserError, match="needs a backend"):
        run_extract(ExtractSpec(variant="icl", model="fake"), page22, truth, None, tmp_path)


def test_structured_through_local_backend_always_parses(tiny_model_dir, page22, truth, tmp_path):
    """Constrained decoding end to end on a tiny random Llama: whatever the model picks, each answer
    parses against the schema (an answer cut by the token cap is closed, flagged repaired)."""
    from llmscisci.backends.base import BackendOptions
    from llmscisci.backends.local import LocalBackend
    from llmscisci.backends.models import load

    loaded = load(str(tiny_model_dir), BackendOptions(device="cpu"))
    loaded.model.config.max_position_embeddings = 1 << 15  # rotary positions: room for a block's prompt
    loaded.tokenizer.model_max_length = 1 << 15
    be = LocalBackend("tiny", BackendOptions(device="cpu", batch_size=2), loaded=loaded)
    spec = ExtractSpec(variant="structured", model="tiny", limit=2, params=GenParams(max_new_tokens=64))
    run = run_extract(spec, page22, truth, be, tmp_path, show_progress=False)
    preds = read_jsonl(run.path / "predictions.jsonl")
    assert len(preds) == 2 and all(p["error"] is None and p["tokens_out"] > 0 for p in preds)
    assert all(p["valid"] for p in preds), [p["raw"] for p in preds]
    assert all(p["raw"].lstrip().startswith("{") for p in preds)
    m = run.metrics()
    assert m["model"]["valid_rate"] == 1.0 and m["model"]["truth_records"] == 2
    assert m["truncated"] == sum(p["truncated"] for p in preds)
