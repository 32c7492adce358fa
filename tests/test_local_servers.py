"""Local OpenAI-compatible servers: structured output in each server's dialect (--structured-mode), and
runs that stop on a permanent error instead of retrying every item (fake servers on 127.0.0.1)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fake_dialects import DIALECTS, EXPECTED_MODE, DialectServer
from typer.testing import CliRunner

from llmscisci.backends.base import BackendOptions, Generation, GenParams
from llmscisci.backends.registry import load_backend
from llmscisci.backends.retry import classify, permanent_kind
from llmscisci.backends.structured import extract_json, remembered
from llmscisci.cli import app
from llmscisci.runs import read_jsonl
from llmscisci.tasks.stoprule import RunStopped, StopRule

CLI = str(Path(sys.executable).parent / "llmscisci")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


def label_args(srv, data_dir, out, *extra, limit=6, model="smollm2-local"):
    return ["label", "--task", "easy", "--variant", "structured", "--model", f"openai:{model}",
            "--base-url", srv.base_url, "--data-dir", str(data_dir), "--limit", str(limit), "--out", str(out),
            "--no-cache", *extra]


def only_run(out: Path) -> Path:
    (run,) = [p for p in out.iterdir() if p.is_dir()]
    return run


@pytest.mark.parametrize("dialect", DIALECTS)
def test_label_structured_completes_in_each_dialect(dialect, data_dir, tmp_path, capsys):
    with DialectServer(dialect) as srv:
        res = CliRunner().invoke(app, label_args(srv, data_dir, tmp_path / "out"))
        assert res.exit_code == 0, (res.output, res.exception)
        run = only_run(tmp_path / "out")
        preds = read_jsonl(run / "predictions.jsonl")
        assert len(preds) == 6
        assert all(p["error"] is None and p["valid"] and p["labels"] is not None for p in preds), preds[0]
        mode = EXPECTED_MODE[dialect]
        cfg = json.loads((run / "config.json").read_text())
        assert cfg["backend"]["structured_mode"]["requested"] == "auto"
        assert cfg["backend"]["structured_mode"]["used"] == mode
        assert remembered(srv.base_url) == mode
        # the forms the server rejected were tried once each, on the first item only
        assert srv.rejected == ["json_schema", "json_object", "prompt"].index(mode)
        assert srv.calls == 6 + srv.rejected
        sent = [r["body"].get("response_format", {}).get("type") for r in srv.requests[srv.rejected:]]
        assert set(sent) == {None if mode == "prompt" else mode}
        # a second run starts from the remembered form: no request is rejected
        srv.reset()
        srv.rejected = 0
        res2 = CliRunner().invoke(app, label_args(srv, data_dir, tmp_path / "out2"))
        assert res2.exit_code == 0, (res2.output, res2.exception)
        assert srv.rejected == 0 and srv.calls == 6
        cfg2 = json.loads((only_run(tmp_path / "out2") / "config.json").read_text())
        assert cfg2["backend"]["structured_mode"] == {"requested": "auto", "used": mode, "how": "remembered"}


def test_prompt_mode_takes_the_json_out_of_the_prose(data_dir, tmp_path):
    with DialectServer("vllm") as srv:
        res = CliRunner().invoke(app, label_args(srv, data_dir, tmp_path / "out", "--structured-mode", "prompt"))
        assert res.exit_code == 0, (res.output, res.exception)
        assert all("response_format" not in r["body"] for r in srv.requests)
        assert all("JSON schema:" in r["body"]["messages"][0]["content"] for r in srv.requests)
    preds = read_jsonl(only_run(tmp_path / "out") / "predictions.jsonl")
    assert all(p["valid"] and p["raw"].startswith("{") for p in preds)


def test_extract_json():
    assert extract_json('Sure:\n```json\n{"a": [1, {"b": 2}]}\n```\nDone.') == '{"a": [1, {"b": 2}]}'
    assert extract_json("no json here") == "no json here"
    assert extract_json("{broken [1, 2] tail") == "[1, 2]"


def test_explicit_unsupported_mode_stops_with_the_server_message(data_dir, tmp_path):
    """llama-cpp-python answers json_schema with a 500 validation error: not retried, the run stops."""
    with DialectServer("llama-cpp-python") as srv:
        res = CliRunner().invoke(app, label_args(srv, data_dir, tmp_path / "out", "--structured-mode",
                                                 "json_schema", "--concurrency", "1", limit=30))
        assert isinstance(res.exception, RunStopped)
        msg = str(res.exception)
        assert "Input should be 'text' or 'json_object'" in msg and "--structured-mode prompt" in msg
        assert "\n" not in msg
        assert srv.calls == 5  # one request per item, no retries, five items
    assert len(read_jsonl(only_run(tmp_path / "out") / "predictions.jsonl")) == 5
    assert not (only_run(tmp_path / "out") / "metrics.json").exists()


def _run_cli(args, tmp_path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg")
    env["OPENAI_API_KEY"] = "sk-local-wrong-0000"
    return subprocess.run([CLI, *args], capture_output=True, text=True, env=env, timeout=300)


def test_server_rejecting_every_request_stops_the_run_then_resume_finishes(data_dir, tmp_path):
    """A llama-server started with --api-key, called with the wrong key: the run stops within the
    first few items with one line naming the server's message; --resume finishes after the fix."""
    out = tmp_path / "out"
    with DialectServer("llama-server", expect_key="sk-right-key-1234") as srv:
        res = _run_cli(label_args(srv, data_dir, out, "--concurrency", "4", limit=40), tmp_path)
        assert res.returncode != 0
        lines = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
        assert len(lines) == 1 and "Invalid API Key" in lines[0] and "API key" in lines[0]
        assert "Traceback" not in res.stderr
        # 5 items in a row + those already in flight; never 40 items x 6 attempts
        assert 5 <= srv.calls <= 5 + 4
        run = only_run(out)
        written = read_jsonl(run / "predictions.jsonl")
        assert 5 <= len(written) <= srv.calls and all(p["call_failed"] for p in written)
        srv.expect_key = None  # the fix: the server now takes the request
        srv.reset()
        res2 = CliRunner().invoke(app, ["label", "--resume", str(run), "--base-url", srv.base_url, "--no-cache"])
        assert res2.exit_code == 0, (res2.output, res2.exception)
        assert srv.calls == 40  # every item asked again (the failed ones too), none twice
    from llmscisci.runs import RunFolder

    preds = RunFolder(run).predictions()
    assert len(preds) == 40 and all(p.error is None and p.valid for p in preds)
    assert json.loads((run / "metrics.json").read_text())["failed"] == 0


@pytest.mark.parametrize("dialect,case,kind,words", [
    ("vllm", "model", "model", "does not exist"), ("ollama", "model", "model", "try pulling it first"),
    ("llama-cpp-python", "model", "model", "does not exist"),
    ("vllm", "context", "context", "maximum context length"),
    ("llama-server", "context", "context", "exceeds the available context size"),
    ("llama-cpp-python", "context", "context", "maximum context length"),
    ("vllm", "auth", "auth", "Unauthorized"), ("llama-cpp-python", "auth", "auth", "Invalid API key"),
    ("llama-server", "auth", "auth", "Invalid API Key"),
    ("lmstudio", "format", "request", "must be 'json_schema' or 'text'"),
    ("llama-server-b3", "format", "request", "must be one of"),
])
def test_each_dialects_permanent_errors_are_not_retried(dialect, case, kind, words):
    kw = {"model": {"models": ["served-model"]}, "context": {"n_ctx": 8},
          "auth": {"expect_key": "sk-right-key-1234"}, "format": {}}[case]
    opts = BackendOptions(base_url=None, timeout=5, backoff_base=0.001, backoff_max=0.01, max_attempts=6,
                          use_cache=False, structured_mode="auto")
    if case == "format":  # the form each server rejects
        opts.structured_mode = "json_object" if dialect == "lmstudio" else "json_schema"
    with DialectServer(dialect, **kw) as srv:
        opts.base_url = srv.base_url
        backend = load_backend("openai:other-model", opts)
        schema = None
        if case == "format":
            from pydantic import create_model
            schema = create_model("Labels", code=(bool, ...))
        conv = [{"role": "user", "content": "A passage that is long enough to overflow a tiny context."}]
        gen = backend.generate([conv], GenParams(max_new_tokens=16), schema=schema)[0]
        assert srv.calls == 1, gen.error  # not retried
    assert gen.extra["call_failed"] and gen.extra["failure_kind"] == kind, gen.error
    assert words in gen.error  # the server's own message reaches the user


def test_transient_errors_keep_their_retries():
    class Exc(Exception):
        def __init__(self, status, msg):
            super().__init__(msg)
            self.status_code = status

    for status in (429, 502, 503, 504, 500):
        f = classify(Exc(status, "The server had an error."))
        assert f.retryable and f.kind is None, status
    assert permanent_kind(500, "response_format type must be one of \"text\" or \"json_object\"") == "request"
    assert permanent_kind(503, "validation error in upstream") is None  # an overloaded proxy: retried
    assert permanent_kind(400, "This model's maximum context length is 2048 tokens.") == "context"
    assert permanent_kind(404, "The model `x` does not exist.") == "model"


def _gen(error=None, kind=None, failed=False) -> Generation:
    extra = {"call_failed": True} if failed else {}
    if kind:
        extra["failure_kind"] = kind
    return Generation(text="" if error else "{}", error=error, extra=extra)


def test_stop_rule_streak_and_window():
    rule = StopRule(first_n=3, window=10, max_rate=0.5)
    assert rule.observe(_gen("HTTP 400: bad 1", "request", True)) is None
    assert rule.observe(_gen()) is None  # a success breaks the streak
    for n in range(2):
        assert rule.observe(_gen(f"HTTP 400: bad {n + 7}", "request", True)) is None
    assert "3 items in a row" in rule.observe(_gen("HTTP 400: bad 99", "request", True))
    # transient failures (no kind) never make a streak, but a failure rate over the window stops
    rule = StopRule(first_n=3, window=10, max_rate=0.5)
    stops = [rule.observe(_gen("APITimeoutError", None, True) if i % 3 else _gen()) for i in range(10)]
    assert stops[:9] == [None] * 9 and "6 of the last 10" in stops[9]
    # answers that arrived but do not parse are not server failures
    rule = StopRule(first_n=2, window=4, max_rate=0.5)
    assert all(rule.observe(_gen("schema-invalid JSON: x")) is None for _ in range(10))


def test_streamed_corpus_run_stops_and_resumes_to_one_prediction_each(tmp_path):
    """`label --input` (a corpus read chunk by chunk) shares the stop rule; the resumed run asks the
    failed items again and the predictions file holds exactly one record per item."""
    fix = Path(__file__).parent / "fixtures" / "corpus"
    args = lambda srv: ["label", "--input", str(fix / "openalex_works.jsonl"), "--task", str(fix / "open_science.toml"),  # noqa: E731
                        "--variant", "structured", "--model", "openai:local", "--base-url", srv.base_url,
                        "--out", str(tmp_path / "out"), "--no-cache", "--limit", "60", "--chunk-size", "25",
                        "--concurrency", "2"]
    with DialectServer("vllm", models=["served-model"]) as srv:
        res = CliRunner().invoke(app, args(srv))
        assert isinstance(res.exception, RunStopped), res.output
        assert "does not exist" in str(res.exception) and "--model" in str(res.exception)
        assert srv.calls <= 5 + 2
        srv.models = None  # the fix: the server now serves the name asked for
        run = only_run(tmp_path / "out")
        res2 = CliRunner().invoke(app, ["label", "--resume", str(run), "--base-url", srv.base_url, "--no-cache",
                                        "--input", str(fix / "openalex_works.jsonl")])
        assert res2.exit_code == 0, (res2.output, res2.exception)
    recs = read_jsonl(run / "predictions.jsonl")
    assert len(recs) == len({r["doi"] for r in recs}) == 60
    assert not any(r.get("call_failed") for r in recs)


def test_ask_structured_adapts_to_the_server(tmp_path):
    """`ask --schema` against llama-cpp-python's dialect: the structured answer comes in json_object."""
    with DialectServer("llama-cpp-python") as srv:
        res = CliRunner().invoke(app, ["ask", "Name one fact.", "--model", "openai:local", "--base-url", srv.base_url,
                                       "--schema", '[{"fact": str}]', "--json", "--no-cache"])
        assert res.exit_code == 0, (res.output, res.exception)
        sent = [r["body"].get("response_format", {}).get("type") for r in srv.requests]
    out = json.loads(res.stdout[res.stdout.index("{"):])
    structured = next(r for r in out["results"] if r["variant"] == "structured")
    assert structured["error"] is None and isinstance(json.loads(structured["text"]), (list, dict))
    assert sent == [None, "json_schema", "json_object"]  # plain, then the structured probe
