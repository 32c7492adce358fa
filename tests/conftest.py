"""Shared fixtures. Tests read the dataset bundled with the package (`data_dir`) and, for what the package
does not ship (real LaTeX sources, the seed study's file formats), tests/fixtures/data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURE_DATA = REPO / "tests" / "fixtures" / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The bundled dataset (reports, labels, extraction pages), as the package finds it."""
    from llmscisci.paths import bundled_data_dir

    return bundled_data_dir()


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """The test run's cache ($XDG_CACHE_HOME, so $XDG_CACHE_HOME/llmscisci) is a temporary folder: API
    answer caches and other state never reach the user's cache, nor leak between runs. The converted
    embedded model stays reusable: the temporary cache's `llmscisci/models` links to the user's
    models folder (unless $LLMSCISCI_MODEL_CACHE names one), so the suite converts it at most once,
    ever. Other libraries keep their own caches where they were (Hugging Face through HF_HOME)."""
    user_base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    temp_base = tmp_path_factory.mktemp("xdg-cache")
    (temp_base / "llmscisci").mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LLMSCISCI_TEST", "1")
        if not os.environ.get("HF_HOME"):
            mp.setenv("HF_HOME", str(user_base / "huggingface"))
        if not os.environ.get("LLMSCISCI_MODEL_CACHE"):
            models = user_base / "llmscisci" / "models"
            models.mkdir(parents=True, exist_ok=True)
            (temp_base / "llmscisci" / "models").symlink_to(models, target_is_directory=True)
        mp.setenv("XDG_CACHE_HOME", str(temp_base))
        yield temp_base


# --------------------------------------------------------------------------- local models
TINY_CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
TINY_CORPUS = [
    "The code was available and easy to run. Hyperparameters were given in the paper.",
    "Datasets, pretrained models and checkpoints were provided by the authors.",
    "The paper was clearly written; the method was easy to follow. Nothing else helped.",
    'Answer with JSON: {"code": true, "artifacts": false, "readability": true, "setup": false, "none": false}',
    "You label passages from machine-learning reproducibility reports. Categories: 1. code 2. data 3. none",
    "0123456789 [1, 3] [] {} true false null yes no, . : ; ! ? ( ) - _ \" '",
]


def build_tiny_tokenizer():
    """A byte-level BPE tokenizer trained offline on a few sentences, with ChatML special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(TINY_CORPUS * 20, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|im_start|>", eos_token="<|im_end|>", unk_token="<|endoftext|>"
    )
    fast.chat_template = TINY_CHATML
    return fast


def build_tiny_model(tokenizer, seed: int = 0, max_positions: int = 512):
    """A tiny random Llama (2 layers, width 64) sized to the tokenizer's vocabulary."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=max_positions,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=None,
    )
    return LlamaForCausalLM(config).eval()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny random Llama model + offline tokenizer saved as a Hugging Face folder (built once)."""
    folder = tmp_path_factory.mktemp("tiny-llama")
    tokenizer = build_tiny_tokenizer()
    model = build_tiny_model(tokenizer)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def embedded_model_dir() -> Path:
    """The converted embedded model (smollm2-135m), converted at most once per session into
    $LLMSCISCI_MODEL_CACHE or the user's cache; later tests resolve `smollm2-135m` to it."""
    from llmscisci.backends import embedded

    root = embedded.models_root()
    os.environ.setdefault(embedded.CACHE_ENV, str(root))  # share it with tests that move XDG_CACHE_HOME
    return embedded.ensure_embedded()


@pytest.fixture
def openai_server(monkeypatch, tmp_path):
    """A fake OpenAI-compatible server (tests/fakeservers.py) with a key set and a cache of the test's own."""
    from fakeservers import make_server, set_keys

    set_keys(monkeypatch, "openai")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    with make_server("openai") as srv:
        yield srv
