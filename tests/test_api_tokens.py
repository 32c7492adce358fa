"""Pre-flight token counts work offline (tiktoken only from its local cache) and prompts over the
context window are reported before any call."""

from __future__ import annotations

import math
import socket

import pytest
from fakeservers import conversations, make_backend, make_server, set_keys

from llmscisci.backends import tokens


@pytest.fixture(autouse=True)
def _keys(monkeypatch, tmp_path):
    set_keys(monkeypatch)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))


def test_offline_fallback_never_touches_the_network(monkeypatch, tmp_path):
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "tiktoken"))
    tokens._encoder.cache_clear()

    def no_network(*a, **k):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    msgs = [{"role": "system", "content": "x" * 40}, {"role": "user", "content": "y" * 41}]
    n, method = tokens.count_messages(msgs, "gpt-4o-mini")
    assert method == "chars/4"
    assert n == tokens.REPLY_PRIMING + 10 + 11 + 2 * tokens.PER_MESSAGE
    # a corrupt file in tiktoken's cache is not handed to tiktoken (which would delete it and download)
    path = tokens._tiktoken_cache_file("o200k_base")
    (tmp_path / "tiktoken").mkdir()
    with open(path, "wb") as fh:
        fh.write(b"garbage")
    tokens._encoder.cache_clear()
    assert tokens.count_messages(msgs, "gpt-4o-mini")[1] == "chars/4"
    tokens._encoder.cache_clear()


def test_estimate_and_content_parts():
    assert tokens.estimate("") == 0 and tokens.estimate("abcde") == math.ceil(5 / 4)
    parts = [{"role": "user", "content": [{"type": "text", "text": "abcd" * 10}]}]
    assert tokens.count_messages(parts, use_tiktoken=False)[0] == tokens.REPLY_PRIMING + 10 + tokens.PER_MESSAGE


def test_prompt_over_the_context_window_is_reported_without_a_call():
    convs = conversations(3)
    convs[1] = [{"role": "user", "content": "word " * 120_000}]  # ~150k tokens > 128k of gpt-4o-mini
    with make_server("openai") as srv:
        backend = make_backend("openai", srv)
        fits, n = backend.check_context(convs[1], 256)
        gens = backend.generate(convs)
        assert srv.calls == 2
    assert not fits and n > 128_000
    assert "exceeds the context window" in gens[1].error
    assert gens[0].error is None and gens[2].error is None


def test_unknown_models_have_no_context_check():
    with make_server("openai", expect_key=None) as srv:
        backend = make_backend("openai", srv, base_url=srv.base_url)
        backend2 = type(backend)("my-local-llama", backend.options)
    assert backend2.context_length is None and backend2.price is None
    assert backend2.check_context([{"role": "user", "content": "x" * 10**6}], 10)[0] is True
