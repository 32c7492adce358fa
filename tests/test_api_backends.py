"""API backends: the real SDKs against local fake servers speaking each provider's wire format."""

from __future__ import annotations

import json

import pytest
from fakeservers import (
    FaultPlan,
    conversations,
    expected_text,
    make_backend,
    make_server,
    set_keys,
    TEST_KEYS,
    TEST_MODELS,
)
from pydantic import BaseModel

from llmscisci.backends.base import BackendOptions, GenParams
from llmscisci.backends.pricing import lookup
from llmscisci.backends.registry import load_backend
from llmscisci.errors import UserError

PROVIDERS = ("openai", "anthropic", "gemini")


class Author(BaseModel):
    name: str
    orcid: str


class Reference(BaseModel):
    title: str
    year: int
    authors: list[Author]
    peer_reviewed: bool


@pytest.fixture(autouse=True)
def _keys(monkeypatch, tmp_path):
    set_keys(monkeypatch)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))


@pytest.mark.parametrize("provider", PROVIDERS)
def test_plain_answers_usage_version_cost(provider):
    convs = conversations(5)
    with make_server(provider) as srv:
        backend = make_backend(provider, srv, concurrency=3)
        seen = []
        gens = backend.generate(convs, GenParams(max_new_tokens=32), on_result=lambda i, g: seen.append(i))
        assert srv.calls == 5
        # the key reached the server from the environment, in the provider's auth header
        h = srv.requests[0]["headers"]
        assert TEST_KEYS[provider] in (h.get("authorization", ""), h.get("x-api-key"), h.get("x-goog-api-key"),
                                       h.get("authorization", "")[7:])
    assert sorted(seen) == list(range(5))  # on_result once per item
    price = lookup(provider, TEST_MODELS[provider])
    for conv, g in zip(convs, gens):  # results in input order
        assert g.error is None and not g.refusal and not g.cached
        assert g.text == expected_text(conv)
        assert g.tokens_in == len(conv[-1]["content"]) // 4 and g.tokens_out >= 1
        assert g.model_version.startswith(TEST_MODELS[provider]) and g.model_version != TEST_MODELS[provider]
        assert g.cost_usd == pytest.approx(price.cost(g.tokens_in, g.tokens_out)) and g.cost_usd > 0
        assert g.seconds > 0
    assert backend.model_versions == {gens[0].model_version}
    assert backend.describe()["model_versions"] == [gens[0].model_version]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_structured_output_sends_schema_and_validates(provider):
    with make_server(provider) as srv:
        backend = make_backend(provider, srv)
        g = backend.generate(conversations(1), schema=Reference)[0]
        body = srv.requests[0]["body"]
    assert g.error is None, g.error
    ref = Reference.model_validate_json(g.text)  # the JSON answer is in .text
    assert ref.authors and isinstance(ref.year, int)
    if provider == "openai":
        rf = body["response_format"]
        assert rf["type"] == "json_schema" and rf["json_schema"]["strict"] is True
        assert rf["json_schema"]["schema"]["additionalProperties"] is False
    elif provider == "anthropic":
        assert body["tool_choice"] == {"type": "tool", "name": "Reference"}
        assert body["tools"][0]["input_schema"]["required"] == ["title", "year", "authors", "peer_reviewed"]
        assert body["system"] == "You label passages."
        assert all(m["role"] != "system" for m in body["messages"])
    else:
        cfg = body["generationConfig"]
        assert cfg["responseMimeType"] == "application/json"
        assert set(cfg["responseSchema"]["properties"]) == {"title", "year", "authors", "peer_reviewed"}
        assert body["systemInstruction"]["parts"][0]["text"] == "You label passages."


@pytest.mark.parametrize("provider", PROVIDERS)
def test_refusal_empty_and_invalid_json_are_recorded_per_item(provider):
    convs = conversations(5)
    convs[1][-1]["content"] += " [[refuse]]"
    convs[2][-1]["content"] += " [[empty]]"
    convs[3][-1]["content"] += " [[invalid_json]]"
    with make_server(provider) as srv:
        backend = make_backend(provider, srv, concurrency=2)
        gens = backend.generate(convs, schema=Reference)
        assert srv.calls == 5  # none of these is retried: they are answers
    assert gens[0].error is None and gens[4].error is None
    assert gens[1].refusal and gens[1].error is None
    assert gens[2].error.startswith("empty response")
    assert "JSON" in gens[3].error  # invalid / schema-invalid JSON, with the raw answer kept
    assert gens[3].text


def test_plain_text_is_not_schema_checked():
    with make_server("openai") as srv:
        backend = make_backend("openai", srv)
        convs = conversations(1)
        convs[0][-1]["content"] += " [[invalid_json]]"
        g = backend.generate(convs)[0]
    assert g.error is None and g.text == "not json at all {"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_sdk_retries_are_off(provider):
    """One attempt allowed: a 500 is the item's failure after exactly one request (no hidden SDK retry)."""
    with make_server(provider, faults=FaultPlan(script=["500"])) as srv:
        backend = make_backend(provider, srv, max_attempts=1)
        g = backend.generate(conversations(1))[0]
        assert srv.calls == 1
    assert g.error.startswith("HTTP 500")


def test_gemini_safety_settings_are_opt_in():
    with make_server("gemini") as srv:
        make_backend("gemini", srv).generate(conversations(1))
        make_backend("gemini", srv, gemini_safety_off=True).generate(conversations(1))
        off, on = srv.requests[0]["body"], srv.requests[1]["body"]
    assert "safetySettings" not in off
    cats = {s["category"]: s["threshold"] for s in on["safetySettings"]}
    assert cats == {c: "BLOCK_NONE" for c in (
        "HARM_CATEGORY_HARASSMENT", "HARM_CATEGORY_HATE_SPEECH", "HARM_CATEGORY_SEXUALLY_EXPLICIT",
        "HARM_CATEGORY_DANGEROUS_CONTENT", "HARM_CATEGORY_CIVIC_INTEGRITY")}


def test_openai_params_and_reasoning_models():
    with make_server("openai") as srv:
        opts = BackendOptions(base_url=srv.base_url, use_cache=False)
        load_backend("openai:gpt-4o-mini", opts).generate(conversations(1), GenParams(max_new_tokens=7,
                                                                                       temperature=0.5))
        load_backend("o3-mini", opts).generate(conversations(1), GenParams(max_new_tokens=7))
        plain, reasoning = srv.requests[0]["body"], srv.requests[1]["body"]
    assert plain["temperature"] == 0.5 and plain["max_tokens"] == 7 and plain["seed"] == 2025
    assert reasoning["model"] == "o3-mini" and reasoning["max_completion_tokens"] == 7
    assert "temperature" not in reasoning and "top_p" not in reasoning


def test_anthropic_sends_no_sampling_parameters():
    with make_server("anthropic") as srv:
        b = make_backend("anthropic", srv)
        b.generate(conversations(1), GenParams(max_new_tokens=9, temperature=0.7))
        body = srv.requests[0]["body"]
    assert body["max_tokens"] == 9 and "temperature" not in body and "top_p" not in body
    assert b.describe()["sampling_params_sent"] is False


@pytest.mark.parametrize("provider", PROVIDERS)
def test_missing_key_is_one_line_error_before_any_work(provider, monkeypatch, tmp_path):
    set_keys(monkeypatch, only="none")
    with make_server(provider) as srv:
        # (an OpenAI-compatible --base-url server may go without a key: see below; here the real endpoint)
        base = None if provider == "openai" else srv.base_url
        with pytest.raises(UserError) as err:
            make_backend(provider, srv, cache_path=tmp_path / "c.sqlite", base_url=base)
        assert srv.calls == 0
    msg = str(err.value)
    assert "\n" not in msg and "_API_KEY is not set" in msg
    assert not (tmp_path / "c.sqlite").exists()


def test_google_api_key_is_accepted_for_gemini(monkeypatch):
    set_keys(monkeypatch, only="none")
    monkeypatch.setenv("GOOGLE_API_KEY", TEST_KEYS["gemini"])
    with make_server("gemini") as srv:
        g = make_backend("gemini", srv).generate(conversations(1))[0]
    assert g.error is None


def test_openai_compatible_server_needs_no_key(monkeypatch):
    set_keys(monkeypatch, only="none")
    with make_server("openai", expect_key=None) as srv:
        g = make_backend("openai", srv).generate(conversations(1))[0]
    assert g.error is None
    with pytest.raises(UserError):
        load_backend("openai:gpt-4o-mini", BackendOptions())  # the real endpoint does need one


def test_aliases_and_snapshots():
    b = load_backend("gemini-2.0", BackendOptions(use_cache=False))
    assert (b.provider, b.model) == ("gemini", "gemini-2.0-flash")
    b = load_backend("claude-3-5-sonnet-latest", BackendOptions(use_cache=False))
    assert (b.provider, b.model, b.context_length) == ("anthropic", "claude-3-5-sonnet-latest", 200000)
    b = load_backend("openai:gpt-4o-mini-2024-07-18", BackendOptions(use_cache=False))
    assert b.model == "gpt-4o-mini-2024-07-18" and b.price.model == "gpt-4o-mini"
    desc = json.dumps(b.describe())
    assert TEST_KEYS["openai"] not in desc


def test_bad_options_are_user_errors():
    for bad in (dict(concurrency=0), dict(timeout=0), dict(max_attempts=0), dict(rpm=-1)):
        with pytest.raises(UserError):
            load_backend("openai:gpt-4o-mini", BackendOptions(use_cache=False, **bad))
