"""The content-addressed response cache: replays make no calls; the key covers what defines an answer."""

from __future__ import annotations

import time

import pytest
from fakeservers import FaultPlan, conversations, make_backend, make_server, set_keys
from pydantic import BaseModel

from llmscisci.backends.base import GenParams
from llmscisci.backends.cache import ResponseCache, cache_key

PROVIDERS = ("openai", "anthropic", "gemini")


class Labels(BaseModel):
    code: bool
    setup: bool


@pytest.fixture(autouse=True)
def _keys(monkeypatch, tmp_path):
    set_keys(monkeypatch)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))


@pytest.mark.parametrize("provider", PROVIDERS)
def test_cache_replay_makes_zero_calls(provider, tmp_path):
    cache = tmp_path / "responses.sqlite"
    convs = conversations(12)
    with make_server(provider) as srv:
        first = make_backend(provider, srv, cache_path=cache, concurrency=4).generate(convs, schema=Labels)
        assert srv.calls == 12
        srv.reset()
        # a new backend object (as a new process would build): everything comes from the cache
        replay = make_backend(provider, srv, cache_path=cache, concurrency=4).generate(convs, schema=Labels)
        assert srv.calls == 0
    for a, b in zip(first, replay):
        assert not a.cached and b.cached
        assert (b.text, b.tokens_in, b.tokens_out, b.model_version) == (a.text, a.tokens_in, a.tokens_out,
                                                                         a.model_version)
        assert b.cost_usd == 0.0 and b.extra["cached_cost_usd"] == a.cost_usd  # not paid twice
        assert b.error is None


def test_refresh_no_cache_and_what_is_cached(tmp_path):
    cache = tmp_path / "responses.sqlite"
    convs = conversations(3)
    convs[1][-1]["content"] += " [[refuse]]"
    with make_server("openai", faults=FaultPlan(script=["503", "503"])) as srv:
        # concurrency 1, two attempts: item 0 fails on two 503s (a failure: not cached)
        gens = make_backend("openai", srv, cache_path=cache, concurrency=1, max_attempts=2).generate(convs)
        assert gens[0].error and gens[1].refusal and gens[2].error is None
        assert len(ResponseCache(cache)) == 2  # the refusal is an answer and is cached; the failure is not
        srv.reset()
        again = make_backend("openai", srv, cache_path=cache).generate(convs)
        assert srv.calls == 1 and again[0].error is None and again[1].cached and again[1].refusal
        srv.reset()
        make_backend("openai", srv, cache_path=cache, refresh=True).generate(convs)
        assert srv.calls == 3  # --refresh: ask again (and store the fresh answers)
        srv.reset()
        make_backend("openai", srv, cache_path=tmp_path / "other.sqlite", use_cache=False).generate(convs)
        assert srv.calls == 3
    assert not (tmp_path / "other.sqlite").exists()  # --no-cache writes nothing


def test_entries_record_creation_time_and_usage(tmp_path):
    cache_path = tmp_path / "c.sqlite"
    before = time.time()
    with make_server("openai") as srv:
        b = make_backend("openai", srv, cache_path=cache_path)
        conv = conversations(1)
        g = b.generate(conv, GenParams(max_new_tokens=16))[0]
    key = cache_key(b.backend_id(), b.model, conv[0], GenParams(max_new_tokens=16), None)
    row = ResponseCache(cache_path).entry(key)
    assert row["tokens_in"] == g.tokens_in and row["tokens_out"] == g.tokens_out
    assert before - 1 <= row["created_unix"] <= time.time() + 1
    assert row["created_at"].endswith("Z") and row["model"] == "gpt-4o-mini"


def test_cache_key_covers_what_defines_an_answer():
    conv = conversations(1)[0]
    base = cache_key("openai", "gpt-4o-mini", conv, GenParams(), None)
    assert base == cache_key("openai", "gpt-4o-mini", [dict(m) for m in conv], GenParams(), None)
    variants = {
        cache_key("anthropic", "gpt-4o-mini", conv, GenParams(), None),
        cache_key("openai", "gpt-4o", conv, GenParams(), None),
        cache_key("openai", "gpt-4o-mini", conv[:1], GenParams(), None),
        cache_key("openai", "gpt-4o-mini", conv, GenParams(temperature=0.7), None),
        cache_key("openai", "gpt-4o-mini", conv, GenParams(max_new_tokens=12), None),
        cache_key("openai", "gpt-4o-mini", conv, GenParams(seed=1), None),
        cache_key("openai", "gpt-4o-mini", conv, GenParams(), Labels),
    }
    assert base not in variants and len(variants) == 7


def test_gemini_safety_option_is_part_of_the_key(tmp_path):
    cache = tmp_path / "c.sqlite"
    with make_server("gemini") as srv:
        make_backend("gemini", srv, cache_path=cache).generate(conversations(1))
        make_backend("gemini", srv, cache_path=cache, gemini_safety_off=True).generate(conversations(1))
        assert srv.calls == 2  # different request, different answer: not served from the other's entry
        make_backend("gemini", srv, cache_path=cache, gemini_safety_off=True).generate(conversations(1))
        assert srv.calls == 2
