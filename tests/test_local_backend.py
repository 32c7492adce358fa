"""Local backend: registry resolution, chat templates, and the fast generation paths on a tiny random
Llama (batching, left padding, shared-prefix KV cache, seeded sampling, context check, constrained
decoding)."""

from __future__ import annotations

import json

import pytest
import torch
from pydantic import BaseModel, ConfigDict

from llmscisci.backends.base import BackendOptions, GenParams
from llmscisci.backends.chat_templates import GEMMA, LLAMA3, apply_override, get_template
from llmscisci.backends.local import LocalBackend
from llmscisci.backends.models import (
    CATALOGUE,
    load,
    resolve_device,
    resolve_dtype,
    resolve_local_model,
)
from llmscisci.backends.registry import load_backend
from llmscisci.errors import UserError

SYSTEM = (
    "You label passages from machine-learning reproducibility reports. Categories: 1. code 2. data "
    "3. none. Answer with JSON: {\"code\": true, \"artifacts\": false}. The code was available."
)
TEXTS = [
    "The code was available.",
    "Datasets and pretrained models were provided by the authors, and the paper was clearly written.",
    "Nothing.",
    "Hyperparameters were given in the paper; the method was easy to follow and to run.",
    "The code was available and easy to run. Datasets were provided.",
]


def convs(texts=TEXTS, system=SYSTEM):
    return [[{"role": "system", "content": system}, {"role": "user", "content": t}] for t in texts]


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny models: one intra-op thread (ops this small only pay for thread synchronisation)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def loaded(tiny_model_dir):
    return load(str(tiny_model_dir), BackendOptions(device="cpu"))


def backend(loaded, batch_size=2, **kw) -> LocalBackend:
    return LocalBackend("tiny", BackendOptions(device="cpu", batch_size=batch_size), loaded=loaded, **kw)


def reference_generate(loaded, conversation, max_new_tokens):
    """One conversation, no padding, no cache tricks: plain `model.generate`, greedy."""
    tok, model = loaded.tokenizer, loaded.model
    text = tok.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)
    ids = torch.tensor([tok(text, add_special_tokens=False)["input_ids"]])
    with torch.inference_mode():
        out = model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id,
        )
    new = out[0, ids.shape[1] :].tolist()
    if tok.eos_token_id in new:
        new = new[: new.index(tok.eos_token_id)]
    return tok.decode(new, skip_special_tokens=True)


# --------------------------------------------------------------------------- registry
def test_catalogue_names_map_to_hub_ids_and_templates():
    expect = {
        "llama-3.2-1b": ("meta-llama/Llama-3.2-1B-Instruct", "llama3"),
        "llama-3.2-3b": ("meta-llama/Llama-3.2-3B-Instruct", "llama3"),
        "llama-3.1-8b": ("meta-llama/Llama-3.1-8B-Instruct", "llama3"),
        "qwen-2.5-1.5b": ("Qwen/Qwen2.5-1.5B-Instruct", None),
        "gemma-3-1b": ("google/gemma-3-1b-it", "gemma"),
        "gemma-3-4b": ("google/gemma-3-4b-it", "gemma"),
        "r1-distill-qwen-1.5b": ("deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B", None),
        "r1-distill-llama-8b": ("deepseek-ai/DeepSeek-R1-Distill-Llama-8B", None),
    }
    for name, (hub_id, template) in expect.items():
        r = resolve_local_model(name)
        assert (r.path_or_id, r.kind, r.chat_template, r.adapter) == (hub_id, "catalogue", template, None)
    assert set(expect) | {"smollm2-135m"} == set(CATALOGUE)


def test_llama3_tokenizers_pad_with_their_reserved_pad_token(tiny_model_dir, tmp_path):
    from transformers import AutoTokenizer

    from llmscisci.backends.models import LLAMA3_PAD, ensure_pad_token
    from llmscisci.train.common import load_trainable

    plain = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert plain.pad_token is None
    ensure_pad_token(plain)
    assert plain.pad_token == plain.eos_token  # no Llama 3 pad token in the vocabulary: EOS
    # a tokenizer with Llama 3's reserved token pads with it, in inference and in training
    llama3 = AutoTokenizer.from_pretrained(tiny_model_dir)
    llama3.add_special_tokens({"additional_special_tokens": [LLAMA3_PAD]})
    folder = tmp_path / "llama3-like"
    import shutil

    shutil.copytree(tiny_model_dir, folder)
    llama3.save_pretrained(folder)
    assert load(str(folder), BackendOptions(device="cpu")).tokenizer.pad_token == LLAMA3_PAD
    _, tok = load_trainable(str(folder), "cpu")
    assert tok.pad_token == LLAMA3_PAD and tok.pad_token_id == tok.convert_tokens_to_ids(LLAMA3_PAD)
    already = AutoTokenizer.from_pretrained(folder)
    already.pad_token = "<|endoftext|>"
    ensure_pad_token(already)
    assert already.pad_token == "<|endoftext|>"  # a tokenizer's own pad token is kept


def test_embedded_default_resolves_to_cache_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMSCISCI_MODEL_CACHE", str(tmp_path))
    r = resolve_local_model("smollm2-135m")
    assert r.kind == "embedded" and r.path_or_id == str(tmp_path / "smollm2-135m")
    assert resolve_local_model("SmolLM2-135M").kind == "embedded"


def test_local_folder_hub_id_and_errors(tiny_model_dir, tmp_path):
    r = resolve_local_model(str(tiny_model_dir))
    assert r.kind == "local" and r.path_or_id == str(tiny_model_dir.resolve()) and r.adapter is None
    assert resolve_local_model("someorg/some-model").kind == "hub"
    with pytest.raises(UserError, match="unknown model"):
        resolve_local_model("no-such-model")
    with pytest.raises(UserError, match="does not exist"):
        resolve_local_model(str(tmp_path / "missing" / "folder"))
    with pytest.raises(UserError, match="not a model folder"):
        resolve_local_model(str(tmp_path))


def test_hub_model_offline_is_one_line_user_error(monkeypatch):
    monkeypatch.setattr("llmscisci.backends.models._hub_reachable", lambda timeout=3.0: False)
    with pytest.raises(UserError, match="not in the local Hugging Face cache") as exc:
        load("someorg/surely-not-cached-model", BackendOptions(device="cpu"))
    assert "\n" not in str(exc.value)


def _make_adapter(tiny_model_dir, folder, base_name=None):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    cfg = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    peft_model = get_peft_model(base, cfg)
    peft_model.save_pretrained(folder)
    if base_name is not None:
        path = folder / "adapter_config.json"
        data = json.loads(path.read_text())
        data["base_model_name_or_path"] = base_name
        path.write_text(json.dumps(data))
    return peft_model


def test_adapter_folder_loads_base_and_applies_adapter(tiny_model_dir, tmp_path):
    folder = tmp_path / "adapter"
    peft_model = _make_adapter(tiny_model_dir, folder, base_name=str(tiny_model_dir))
    r = resolve_local_model(str(folder))
    assert r.kind == "local" and r.path_or_id == str(tiny_model_dir.resolve())
    assert r.adapter == str(folder.resolve())

    lm = load(str(folder), BackendOptions(device="cpu"))
    base = load(str(tiny_model_dir), BackendOptions(device="cpu")).model
    x = torch.tensor([[5, 6, 7, 8, 9]])
    with torch.inference_mode():
        merged = lm.model(input_ids=x).logits
        expected = peft_model.eval()(input_ids=x).logits
        plain = base(input_ids=x).logits
    assert torch.allclose(merged, expected, atol=1e-4)
    assert not torch.allclose(merged, plain, atol=1e-4)  # the adapter changed the model
    assert lm.describe()["adapter"] == str(folder.resolve())

    trainable = load(str(folder), BackendOptions(device="cpu"), merge_adapter=False).model
    from peft import PeftModel

    assert isinstance(trainable, PeftModel)
    assert any(p.requires_grad for n, p in trainable.named_parameters() if "lora_" in n)


def test_adapter_with_short_name_base_resolves_through_registry(tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("LLMSCISCI_MODEL_CACHE", str(tmp_path / "models"))
    folder = tmp_path / "adapter"
    _make_adapter(tiny_model_dir, folder, base_name="smollm2-135m")
    r = resolve_local_model(str(folder))
    assert r.kind == "embedded" and r.adapter == str(folder.resolve())
    # a converted embedded folder from another machine's cache also maps to the embedded model
    _make_adapter(tiny_model_dir, folder, base_name="/elsewhere/.cache/llmscisci/models/smollm2-135m")
    assert resolve_local_model(str(folder)).kind == "embedded"


def test_device_and_dtype_resolution():
    assert resolve_dtype("auto", "cpu") == "float32"
    assert resolve_dtype("auto", "cuda") == "bfloat16"
    assert resolve_dtype("bf16", "cpu") == "bfloat16"
    assert resolve_device("cpu") == "cpu"
    with pytest.raises(UserError):
        resolve_dtype("int3", "cpu")
    with pytest.raises(UserError):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="cuda"):
            resolve_device("cuda")
        assert resolve_device("auto") in ("cpu", "mps")


# --------------------------------------------------------------------------- chat templates
def test_llama3_template_exact(loaded):
    msgs = [
        {"role": "system", "content": "  You label texts. \n"},
        {"role": "user", "content": "Text: the code was public."},
    ]
    out = loaded.tokenizer.apply_chat_template(
        msgs, chat_template=LLAMA3, tokenize=False, add_generation_prompt=True, bos_token="<|begin_of_text|>"
    )
    assert out == (
        "<|begin_of_text|>"
        "<|start_header_id|>system<|end_header_id|>\n\nYou label texts.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nText: the code was public.<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )


def test_gemma_template_exact(loaded):
    msgs = [
        {"role": "system", "content": "You label texts."},
        {"role": "user", "content": "First text."},
        {"role": "assistant", "content": "[1]"},
        {"role": "user", "content": "Second text."},
    ]
    out = loaded.tokenizer.apply_chat_template(
        msgs, chat_template=GEMMA, tokenize=False, add_generation_prompt=True, bos_token="<bos>"
    )
    assert out == (
        "<bos><start_of_turn>user\nYou label texts.\n\nFirst text.<end_of_turn>\n"
        "<start_of_turn>model\n[1]<end_of_turn>\n"
        "<start_of_turn>user\nSecond text.<end_of_turn>\n"
        "<start_of_turn>model\n"
    )
    no_system = loaded.tokenizer.apply_chat_template(
        msgs[1:2], chat_template=GEMMA, tokenize=False, add_generation_prompt=False, bos_token="<bos>"
    )
    assert no_system == "<bos><start_of_turn>user\nFirst text.<end_of_turn>\n"


def test_template_override_and_errors(tiny_model_dir):
    with pytest.raises(UserError, match="unknown chat template"):
        get_template("vicuna")
    lm = load(str(tiny_model_dir), BackendOptions(device="cpu", chat_template="gemma"))
    assert lm.chat_template == "gemma" and lm.tokenizer.chat_template == GEMMA

    class Bare:
        chat_template = None

    with pytest.raises(UserError, match="no chat template"):
        apply_override(Bare(), None)


# --------------------------------------------------------------------------- generation
def test_batched_left_padding_and_prefix_cache_match_plain_generate(loaded):
    params = GenParams(max_new_tokens=12)
    expected = [reference_generate(loaded, c, 12) for c in convs()]
    be = backend(loaded, batch_size=2)
    assert be.prefix_cache and be.shared_attention
    with_prefix = be.generate(convs(), params)
    copied_prefix = backend(loaded, batch_size=2, shared_attention=False).generate(convs(), params)
    without = backend(loaded, batch_size=3, prefix_cache=False).generate(convs(), params)
    unsorted = backend(loaded, batch_size=4, sort_by_length=False).generate(convs(), params)
    assert [g.text for g in with_prefix] == expected
    assert [g.text for g in copied_prefix] == expected
    assert [g.text for g in without] == expected
    assert [g.text for g in unsorted] == expected
    assert all(g.extra["prefix_tokens"] >= 16 for g in with_prefix + copied_prefix)
    assert all(g.extra["prefix_tokens"] == 0 for g in without)
    assert loaded.tokenizer.padding_side == "left" and loaded.tokenizer.pad_token is not None


def test_prefix_cache_is_reused_across_calls_and_single_items(loaded):
    be = backend(loaded, batch_size=2)
    params = GenParams(max_new_tokens=8)
    be.generate(convs(TEXTS[:3]), params)
    first = be._prefix
    assert first is not None
    single = be.generate(convs(TEXTS[3:4]), params)[0]
    assert be._prefix is first and single.extra["prefix_tokens"] == len(first[0])
    assert single.text == reference_generate(loaded, convs(TEXTS[3:4])[0], 8)
    other = be.generate(convs(TEXTS[:2], system="A different system prompt entirely."), params)
    other_convs = convs(TEXTS[:2], system="A different system prompt entirely.")
    assert [g.text for g in other] == [reference_generate(loaded, c, 8) for c in other_convs]


def test_tokenomics_and_on_result(loaded):
    be = backend(loaded, batch_size=2)
    seen = []
    gens = be.generate(convs(), GenParams(max_new_tokens=6), on_result=lambda i, g: seen.append((i, g)))
    assert sorted(i for i, _ in seen) == list(range(len(TEXTS)))
    assert all(gens[i] is g for i, g in seen)
    for c, g in zip(convs(), gens):
        assert g.error is None
        assert g.tokens_in == be.count_tokens(c)
        assert 1 <= g.tokens_out <= 6
        assert g.seconds > 0
        assert g.extra["batch_size"] in (1, 2)
        assert g.extra["batch_tokens_per_s"] > 0
        assert g.extra["finish_reason"] in ("stop", "length")
        assert abs(g.seconds * g.extra["batch_size"] - g.extra["batch_seconds"]) < 1e-3
    # seconds of one batch are shared by its items
    by_batch = {}
    for g in gens:
        by_batch.setdefault(g.extra["batch_seconds"], []).append(g)
    assert all(len(v) == v[0].extra["batch_size"] for v in by_batch.values())


def test_count_tokens_uses_chat_template(loaded):
    be = backend(loaded)
    c = convs()[0]
    text = loaded.tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True)
    assert text.endswith("<|im_start|>assistant\n")
    assert be.count_tokens(c) == len(loaded.tokenizer(text, add_special_tokens=False)["input_ids"])


def test_seeded_sampling_is_reproducible(loaded):
    be = backend(loaded, batch_size=2)
    p = GenParams(max_new_tokens=16, temperature=1.0, seed=7)
    a = [g.text for g in be.generate(convs(), p)]
    b = [g.text for g in be.generate(convs(), p)]
    c = [g.text for g in be.generate(convs(), GenParams(max_new_tokens=16, temperature=1.0, seed=8))]
    greedy = [g.text for g in be.generate(convs(), GenParams(max_new_tokens=16))]
    assert a == b
    assert a != c
    assert a != greedy


def test_context_check_records_error_without_generating(tiny_model_dir):
    from conftest import build_tiny_model, build_tiny_tokenizer

    tok = build_tiny_tokenizer()
    model = build_tiny_model(tok, max_positions=96)
    from llmscisci.backends.models import LoadedModel, resolve_local_model

    lm = LoadedModel(model, tok, resolve_local_model(str(tiny_model_dir)), "cpu", "float32", "tokenizer")
    be = LocalBackend("tiny", BackendOptions(device="cpu"), loaded=lm)
    assert be.context_length == 96
    long = [{"role": "user", "content": "The code was available. " * 40}]
    short = [{"role": "user", "content": "Nothing."}]
    fits, n = be.check_context(long, 8)
    assert not fits and n > 96
    assert be.check_context(short, 8)[0]
    seen = []
    gens = be.generate([long, short], GenParams(max_new_tokens=8), on_result=lambda i, g: seen.append(i))
    assert gens[0].error and "context length 96" in gens[0].error and gens[0].tokens_out == 0
    assert gens[1].error is None
    assert sorted(seen) == [0, 1]


class Labels(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: bool
    artifacts: bool
    none: bool


def test_structured_output_always_parses(loaded):
    be = backend(loaded, batch_size=3)
    gens = be.generate(convs(), GenParams(max_new_tokens=120), schema=Labels)
    for g in gens:
        assert g.extra["finish_reason"] == "stop", g.text
        parsed = Labels.model_validate_json(g.text)
        assert set(parsed.model_dump()) == {"code", "artifacts", "none"}
    # the compiled processor is cached per schema and works again (reset between batches)
    assert len(be._processors) == 1
    again = be.generate(convs(), GenParams(max_new_tokens=120), schema=Labels)
    assert [g.text for g in again] == [g.text for g in gens]
    plain_be = backend(loaded, batch_size=3, prefix_cache=False)
    plain = plain_be.generate(convs(), GenParams(max_new_tokens=120), schema=Labels)
    assert [g.text for g in plain] == [g.text for g in gens]


def test_describe_and_registry(tiny_model_dir):
    be = load_backend(str(tiny_model_dir), BackendOptions(device="cpu", batch_size=4))
    assert isinstance(be, LocalBackend)
    d = be.describe()
    for key in ("name", "path_or_id", "kind", "dtype", "device", "chat_template", "adapter", "batch_size"):
        assert key in d
    assert d["dtype"] == "float32" and d["device"] == "cpu" and d["batch_size"] == 4
    assert d["chat_template"] == "tokenizer" and d["kind"] == "local"
    json.dumps(d)  # config.json material


def test_ragged_prefill_matches_padded_and_plain(loaded):
    long = "Hyperparameters were given in the paper; the method was easy to follow, run and extend. " * 2
    texts = ["Nothing.", long]
    params = GenParams(max_new_tokens=10)
    expected = [reference_generate(loaded, c, 10) for c in convs(texts)]
    ragged = backend(loaded, batch_size=2).generate(convs(texts), params)
    padded = backend(loaded, batch_size=2, ragged_prefill=False).generate(convs(texts), params)
    assert [g.extra["prefill"] for g in ragged] == ["ragged", "ragged"]
    assert [g.extra["prefill"] for g in padded] == ["padded", "padded"]
    assert [g.text for g in ragged] == expected
    assert [g.text for g in padded] == expected


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU refusal")
def test_4bit_needs_cuda(tiny_model_dir):
    with pytest.raises(UserError, match="CUDA"):
        load(str(tiny_model_dir), BackendOptions(device="cpu", load_in_4bit=True))


def test_balanced_batches():
    from llmscisci.backends.local import balanced_batches

    assert [len(b) for b in balanced_batches(list(range(70)), 32)] == [24, 23, 23]
    assert [len(b) for b in balanced_batches(list(range(16)), 8)] == [8, 8]
    assert [len(b) for b in balanced_batches(list(range(5)), 8)] == [5]
    assert balanced_batches([], 8) == []
    assert sum(balanced_batches(list(range(17)), 4), []) == list(range(17))
