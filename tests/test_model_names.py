"""One reader of model names (`backends.registry.resolve_model`) and providers that register by name,
as task kinds do: an outside provider registered with the decorator is loaded, priced and batched by
name like the built-in ones; importing the registries loads no SDK."""

from __future__ import annotations

import subprocess
import sys

import pytest

from llmscisci.backends import registry
from llmscisci.backends.base import Backend, BackendOptions, Generation
from llmscisci.backends.batch import PROVIDERS as BATCH_PROVIDERS
from llmscisci.backends.batch import BatchOptions, make_batch_backend, register_batch_provider
from llmscisci.backends.registry import ModelName, register_provider, resolve_model
from llmscisci.errors import UserError


@pytest.mark.parametrize("name, expected", [
    ("openai:gpt-4o-mini", ModelName("openai:gpt-4o-mini", "api", "openai", "gpt-4o-mini")),
    ("anthropic:claude-x", ModelName("anthropic:claude-x", "api", "anthropic", "claude-x")),
    ("gemini-2.0", ModelName("gemini-2.0", "api", "gemini", "gemini-2.0-flash")),  # a catalogue alias
    ("gpt-4o-mini", ModelName("gpt-4o-mini", "api", "openai", "gpt-4o-mini")),
    ("baseline:tfidf", ModelName("baseline:tfidf", "baseline", None, "tfidf")),
    ("baseline:runs/clf", ModelName("baseline:runs/clf", "baseline", None, "runs/clf")),
    ("baseline", ModelName("baseline", "baseline", None, "")),
    ("smollm2-135m", ModelName("smollm2-135m", "local", None, "smollm2-135m")),
    ("org/model", ModelName("org/model", "local", None, "org/model")),
    ("nosuch:model", ModelName("nosuch:model", "local", None, "nosuch:model")),  # not a provider
    ("C:/models/x", ModelName("C:/models/x", "local", None, "C:/models/x")),
])
def test_resolve_model_reads_every_kind_of_name(name, expected):
    m = resolve_model(name)
    assert m == expected
    assert (m.is_api, m.is_local, m.is_baseline) == (m.kind == "api", m.kind == "local", m.kind == "baseline")


def test_which_models_the_score_variant_can_use():
    assert resolve_model("openai:x").can_score and resolve_model("smollm2-135m").can_score
    assert not resolve_model("anthropic:x").can_score and not resolve_model("baseline:tfidf").can_score
    with pytest.raises(UserError, match="no log-probabilities"):
        registry.check_can_score("gemini:x")
    with pytest.raises(UserError, match="classifier"):
        registry.check_can_score("baseline:tfidf")
    registry.check_can_score("gpt-4o-mini")  # an alias of an OpenAI model


def test_a_baseline_name_is_no_backend():
    with pytest.raises(UserError, match="not a language model"):
        registry.load_backend("baseline:tfidf")


class _Echo(Backend):
    def __init__(self, model: str, options: BackendOptions):
        self.model, self.options = model, options

    def describe(self) -> dict:
        return {"name": f"echo:{self.model}"}

    def generate(self, conversations, params, on_result=None, schema=None):
        return [Generation(text=self.model) for _ in conversations]

    def count_tokens(self, messages) -> int:
        return 1


@pytest.fixture()
def echo_provider(monkeypatch):
    monkeypatch.setattr(registry, "PROVIDERS", dict(registry.PROVIDERS))
    cls = register_provider("echo", scoring=True)(_Echo)
    yield cls


def test_an_outside_provider_registers_with_the_decorator(echo_provider):
    assert echo_provider is _Echo  # the decorator hands the class back
    assert registry.PROVIDERS["echo"].target == f"{__name__}:_Echo"
    m = resolve_model("echo:tiny")
    assert (m.kind, m.provider, m.model, m.can_score) == ("api", "echo", "tiny", True)
    backend = registry.load_backend("echo:tiny")
    assert isinstance(backend, _Echo) and backend.model == "tiny"
    with pytest.raises(UserError, match="no batch API"):
        make_batch_backend("echo:tiny", BackendOptions(), BatchOptions())


def test_the_builtin_classes_register_what_the_table_says():
    """The decorator on each built-in backend class gives back the table's entry (same target and flag)."""
    before = dict(registry.PROVIDERS)
    before_batch = dict(BATCH_PROVIDERS)
    for provider, entry in before.items():
        registry.load_class(entry.target, provider)
        registry.load_class(before_batch[provider], provider)
    assert registry.PROVIDERS == before and BATCH_PROVIDERS == before_batch
    assert set(BATCH_PROVIDERS) == set(registry.PROVIDERS)


def test_register_batch_provider_by_target(monkeypatch):
    from llmscisci.backends.batch import provider as batch_provider

    monkeypatch.setattr(batch_provider, "PROVIDERS", dict(batch_provider.PROVIDERS))
    register_batch_provider("echo", "somewhere.echo_batch:EchoBatch")
    assert batch_provider.PROVIDERS["echo"] == "somewhere.echo_batch:EchoBatch"


def test_importing_the_registries_loads_no_sdk():
    code = ("import sys; import llmscisci.backends.registry, llmscisci.backends.batch, llmscisci.tasks.registry, "
            "llmscisci.rewards.registry; "
            "print(sorted(m for m in ('openai', 'anthropic', 'google.genai', 'torch', 'llmscisci.backends.openai_backend', "
            "'llmscisci.backends.batch.openai_batch', 'llmscisci.backends.local') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
