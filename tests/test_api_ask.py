"""`llmscisci ask`: three variants with tokenomics, against the fake OpenAI server (and a local model)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fakeservers import KEY_ENV, TEST_KEYS, TEST_MODELS, make_server

CLI = str(Path(sys.executable).parent / "llmscisci")


def run_cli(args, tmp_path, keys=True, timeout=300):
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg")
    if keys:
        env.update({KEY_ENV[p]: TEST_KEYS[p] for p in KEY_ENV})
    return subprocess.run([CLI, *args], capture_output=True, text=True, env=env, timeout=timeout)


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
def test_ask_three_variants_with_tokenomics(provider, tmp_path):
    with make_server(provider) as srv:
        args = ["ask", "List the facts in: the code was public.", "--model", f"{provider}:{TEST_MODELS[provider]}",
                "--base-url", srv.base_url, "--guidelines", "You extract facts.",
                "--schema", '[{"fact": str, "category": str}]', "--json"]
        res = run_cli(args, tmp_path)
        assert res.returncode == 0, res.stderr
        assert srv.calls == 3
        bodies = [r["body"] for r in srv.requests]
        again = run_cli(args, tmp_path)  # same question again: answered from the cache
        assert again.returncode == 0 and srv.calls == 3
    out = json.loads(res.stdout)
    assert [r["variant"] for r in out["results"]] == ["plain", "guidelines", "structured"]
    for r in out["results"]:
        assert r["error"] is None and r["tokens_in"] > 0 and r["tokens_out"] > 0 and r["seconds"] > 0
        assert r["tokens_per_second"] > 0 and r["cost_usd"] > 0 and not r["cached"]
        assert r["model_version"].startswith(TEST_MODELS[provider])
    facts = json.loads(out["results"][2]["text"])["items"]
    assert facts and set(facts[0]) == {"fact", "category"}
    if provider == "openai":
        assert [m["role"] for m in bodies[0]["messages"]] == ["user"]
        assert bodies[1]["messages"][0] == {"role": "system", "content": "You extract facts."}
        assert "response_format" not in bodies[1] and "response_format" in bodies[2]
    cached = json.loads(again.stdout)["results"]
    assert all(r["cached"] and r["cost_usd_now"] == 0.0 for r in cached)
    assert [r["text"] for r in cached] == [r["text"] for r in out["results"]]


def test_ask_report_output(tmp_path):
    with make_server("openai") as srv:
        res = run_cli(["ask", "Hello?", "--model", "openai:gpt-4o-mini", "--base-url", srv.base_url], tmp_path)
    assert res.returncode == 0, res.stderr
    assert "plain" in res.stdout and "tok/s" in res.stdout and "$" in res.stdout
    assert "guidelines" not in res.stdout  # no --guidelines: that variant is skipped


@pytest.mark.parametrize("args,needle", [
    (["--schema", '{"fact": str.upper}'], "bad --schema"),
    (["--schema", '__import__("os").system("echo PWNED")'], "bad --schema"),
    (["--schema", "[{'a': str}"], "bad --schema"),
])
def test_ask_bad_schema_is_one_line_error_without_calls(args, needle, tmp_path):
    with make_server("openai") as srv:
        res = run_cli(["ask", "x", "--model", "openai:gpt-4o-mini", "--base-url", srv.base_url, *args], tmp_path)
        assert srv.calls == 0
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0]
    assert "PWNED" not in res.stdout and "Traceback" not in res.stderr


def test_ask_missing_key_is_one_line_error(tmp_path):
    res = run_cli(["ask", "x", "--model", "anthropic:claude-3-5-sonnet-latest"], tmp_path, keys=False)
    assert res.returncode == 2
    assert res.stderr.strip() == ("error: ANTHROPIC_API_KEY is not set: export the API key to use "
                                  "anthropic:claude-3-5-sonnet-latest (keys are read from the environment only)")


class StubBackend:
    """Any Backend works with `ask` (it only uses generate): a stand-in for a local model."""

    name = "stub"
    context_length = None

    def __init__(self):
        self.seen = []

    def generate(self, conversations, params, schema=None, on_result=None):
        from llmscisci.backends.base import Generation

        self.seen.append((conversations[0], schema))
        text = '{"fruit": "apple"}' if schema is not None else "apple"
        return [Generation(text=text, tokens_in=7, tokens_out=2, seconds=0.5, model_version="stub-1")]


def test_ask_works_with_any_backend(monkeypatch):
    from typer.testing import CliRunner

    from llmscisci.backends import registry
    from llmscisci.cli import app

    stub = StubBackend()
    monkeypatch.setattr(registry, "load_backend", lambda name, opts=None: stub)
    res = CliRunner().invoke(app, ["ask", "Name a fruit.", "--model", "some-local-model", "--guidelines", "Be brief.",
                                   "--schema", '{"fruit": str}', "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert [r["tokens_per_second"] for r in out["results"]] == [4.0, 4.0, 4.0]
    assert [r["cost_usd"] for r in out["results"]] == [None, None, None]  # local: no price
    assert stub.seen[2][1].model_json_schema()["properties"]["fruit"]["type"] == "string"
    assert stub.seen[1][0][0] == {"role": "system", "content": "Be brief."}


@pytest.mark.slow
def test_ask_with_the_embedded_local_model(tmp_path):
    from llmscisci.backends.embedded import models_root

    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env["LLMSCISCI_MODEL_CACHE"] = str(models_root())  # share the converted model with the other tests
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg")
    res = subprocess.run([CLI, "ask", "Name one fruit.", "--model", "smollm2-135m", "--max-new-tokens", "4",
                          "--guidelines", "Answer in one word.", "--json", "--device", "cpu"],
                         capture_output=True, text=True, env=env, timeout=900)
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout)
    assert [r["variant"] for r in out["results"]] == ["plain", "guidelines"]
    for r in out["results"]:
        assert r["error"] is None and 0 < r["tokens_out"] <= 4 and r["tokens_in"] > 0 and r["cost_usd"] is None
