"""No key, header or auth value ever reaches a run folder, the cache, a log or an error message."""

from __future__ import annotations

import json
import logging

import pytest
from fakeservers import FaultPlan, TEST_KEYS, conversations, make_backend, make_server, set_keys

from llmscisci.runs import RunFolder

PROVIDERS = ("openai", "anthropic", "gemini")


def fragments(key: str) -> list[str]:
    # whole key, its marker, a tail too long to occur by chance among the cache's hex digests, and the
    # masked form providers echo in a 401 ('sk-ab****wxyz')
    return [key, "S3CRET", key[-10:], "*" + key[-4:]]


def scan(folder, keys) -> list[str]:
    hits = []
    for path in folder.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for k in keys:
                for frag in fragments(k):
                    if frag.encode() in data:
                        hits.append(f"{path.name}: {frag}")
    return hits


@pytest.mark.parametrize("provider", PROVIDERS)
def test_no_key_in_run_folder_cache_logs_or_errors(provider, monkeypatch, tmp_path, caplog):
    set_keys(monkeypatch)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    caplog.set_level(logging.DEBUG)
    cache_dir = tmp_path / "cache"
    run = RunFolder.create(tmp_path / "run", {"hash": "h", "kind": "test"})
    convs = conversations(6)
    convs[2][-1]["content"] += " [[refuse]]"
    with make_server(provider, faults=FaultPlan(script=["429", "500", "truncated"])) as srv:
        backend = make_backend(provider, srv, cache_path=cache_dir / "responses.sqlite", concurrency=2,
                               max_attempts=2)
        gens = backend.generate(convs, schema=None,
                                on_result=lambda i, g: run.append([{"doi": str(i), "task": "t", **g.as_dict()}]))
        run.write_metrics({"backend": backend.describe()})
    # a server that rejects the key and echoes a masked version of it (as real providers do)
    with make_server(provider, expect_key="another-key-entirely-0000") as srv:
        backend = make_backend(provider, srv, cache_path=cache_dir / "responses.sqlite")
        bad = backend.generate(conversations(1, tag="x"))[0]
        run.append([{"doi": "401", "task": "t", **bad.as_dict()}])
    assert bad.error.startswith("HTTP 401")
    assert "[redacted]" in bad.error or "Incorrect API key" in bad.error
    assert sum(g.error is None for g in gens) >= 4
    keys = list(TEST_KEYS.values())
    assert scan(run.path, keys) == []
    assert scan(cache_dir, keys) == []
    assert "HTTP" in caplog.text  # the SDKs' debug logs were captured, and are scanned too
    logs = caplog.text + json.dumps([g.as_dict() for g in gens]) + bad.error
    for k in keys:
        for frag in fragments(k):
            assert frag not in logs, frag
