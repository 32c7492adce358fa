"""Several OpenAI-compatible servers behind `--base-url URL1,URL2`: both get requests, the least busy one
first, and the labels equal a one-server run's; a bad list is a one-line error."""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path

import pytest
from console import run_console
from fakeservers import make_server, set_keys

from llmscisci.backends.server_pool import ServerPool, split_urls
from llmscisci.errors import UserError
from llmscisci.runs import read_jsonl

FIX = Path(__file__).parent / "fixtures" / "corpus"
WORKS = FIX / "openalex_works.jsonl"
BOOK = FIX / "open_science.toml"


def label(url, out, *extra):
    return ["label", "--input", WORKS, "--task", BOOK, "--model", "openai:gpt-4o-mini", "--base-url", url,
            "--out", out, "--no-cache", "--max-attempts", "2", "--limit", "60", *extra]


def only_run(out: Path) -> Path:
    runs = [p for p in out.iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


def test_two_servers_share_the_requests_and_label_as_one(tmp_path, capsys, monkeypatch):
    set_keys(monkeypatch, "openai")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    with make_server("openai", latency=0.02) as a, make_server("openai", latency=0.02) as b, \
            make_server("openai") as one:
        code, _, err = run_console(label(f"{a.base_url},{b.base_url}", tmp_path / "two", "--concurrency", "4"),
                                   capsys, monkeypatch)
        assert code == 0, err
        code, _, err = run_console(label(one.base_url, tmp_path / "one"), capsys, monkeypatch)
        assert code == 0, err
        sent = one.calls
    assert a.calls > 10 and b.calls > 10 and a.calls + b.calls == sent  # both served, no request twice
    two, single = only_run(tmp_path / "two"), only_run(tmp_path / "one")
    assert two.name == single.name  # the servers are not part of the run's identity
    labels = {p["doi"]: (p["raw"], p["labels"]) for p in read_jsonl(single / "predictions.jsonl")}
    assert {p["doi"]: (p["raw"], p["labels"]) for p in read_jsonl(two / "predictions.jsonl")} == labels
    backend = json.loads((two / "config.json").read_text())["backend"]
    assert backend["base_url"] == f"{a.base_url},{b.base_url}"
    assert backend["requests_per_server"] == {a.base_url: a.calls, b.base_url: b.calls}


class _Slow:
    """A stand-in SDK client whose calls take `delay` seconds."""

    def __init__(self, delay: float):
        self.delay, self.chat, self.completions = delay, self, self

    def create(self, **kw):
        time.sleep(self.delay)
        return kw


def test_least_in_flight_sends_more_to_the_faster_server():
    delays = {"http://fast/v1": 0.005, "http://slow/v1": 0.1}
    pool = ServerPool(list(delays), lambda url: _Slow(delays[url]))
    threads = [threading.Thread(target=lambda: [pool.chat.completions.create(model="m") for _ in range(10)])
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sent = pool.requests_sent()
    assert sum(sent.values()) == 40 and sent["http://fast/v1"] > 2 * sent["http://slow/v1"]
    assert pool.in_flight == [0, 0]


@pytest.mark.parametrize("value, message", [
    ("http://a/v1,,http://b/v1", "empty entry"),
    ("http://a/v1,ftp://b", "not an http(s) URL"),
    ("http://a/v1,http://a/v1", "listed twice"),
])
def test_bad_server_list_is_one_line_error(value, message, tmp_path, capsys, monkeypatch):
    with pytest.raises(UserError, match=re.escape(message)):
        split_urls(value)
    set_keys(monkeypatch, "openai")
    code, _, err = run_console(label(value, tmp_path / "out"), capsys, monkeypatch)
    assert code != 0 and message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_server_list_is_for_openai_compatible_servers(monkeypatch):
    from llmscisci.backends.base import BackendOptions
    from llmscisci.backends.registry import load_backend

    set_keys(monkeypatch)
    with pytest.raises(UserError, match="not anthropic"):
        load_backend("anthropic:claude-3-5-haiku-latest", BackendOptions(base_url="http://a/v1,http://b/v1"))
