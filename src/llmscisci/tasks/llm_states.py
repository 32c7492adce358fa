"""Features from a local causal language model: the mean of its last layer's hidden states over each
text's tokens (attention-masked, so padding never counts), for `baseline --method llm-states`.

Any model the local registry resolves works (the embedded `smollm2-135m` by default, a catalogue name,
a Hugging Face model folder, an adapter folder). Texts are cut at `MAX_TOKENS` tokens and padded on the
right, so a text's vector does not depend on the batch it was computed in.

Vectors are cached on disk as plain float32 `.npy` files (read with `allow_pickle=False`) under
$XDG_CACHE_HOME/llmscisci/llm-states/<model key>/<ab>/<sha256 of the text>.npy. The model key hashes
the model's fingerprint (SHA-256 over its files' names and contents) with the feature settings, so
other weights under the same name never read these vectors. A folder's fingerprint is remembered
per (name, size, mtime) of its files, so a large model is hashed once.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

DEFAULT_STATES_MODEL = "smollm2-135m"
MAX_TOKENS = 512
BATCH_SIZE = 8
SETTINGS = {"layer": "last", "pooling": "mean", "mask": "attention", "max_tokens": MAX_TOKENS,
            "padding": "right", "dtype": "float32"}
CACHE_NAME = "llm-states"


def model_name(name: str) -> str:
    """How a saved classifier names its states model: an existing folder as an absolute path (so the
    classifier finds it from any working directory), any other name as given."""
    from llmscisci.backends.models import resolve_local_model

    r = resolve_local_model(name)
    return str(Path(name).expanduser().resolve()) if r.kind == "local" or r.adapter else name


def _folders(name: str) -> list[Path] | None:
    """The folders whose files make up the model (base, then adapters), or None where there is no local
    copy to hash (a hub id that is not in the local Hugging Face cache)."""
    from llmscisci.backends import embedded
    from llmscisci.backends.models import resolve_local_model

    r = resolve_local_model(name)
    if r.kind == "embedded":
        base = embedded.ensure_embedded()
    elif r.kind == "local":
        base = Path(r.path_or_id)
    else:
        try:
            from huggingface_hub import snapshot_download

            base = Path(snapshot_download(r.path_or_id, local_files_only=True))
        except Exception:  # noqa: BLE001 - not cached (or no hub library): no local files to hash
            return None
    return [base, *map(Path, r.inner_adapters), *([Path(r.adapter)] if r.adapter else [])]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def folder_fingerprint(folder: Path, memo_file: Path | None = None) -> str:
    """SHA-256 over a folder's files (relative names and contents); remembered in `memo_file` per the
    files' names, sizes and mtimes."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    stat = [[str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns] for p in files]
    memo: dict = {}
    if memo_file is not None and memo_file.is_file():
        try:
            memo = json.loads(memo_file.read_text("utf-8"))
        except (OSError, ValueError):
            memo = {}
    key = str(folder.resolve())
    if isinstance(memo.get(key), dict) and memo[key].get("stat") == stat:
        return memo[key]["sha256"]
    h = hashlib.sha256()
    for p in files:
        h.update(str(p.relative_to(folder)).encode() + b"\0" + _sha256(p).encode() + b"\n")
    digest = h.hexdigest()
    if memo_file is not None:
        memo[key] = {"stat": stat, "sha256": digest}
        memo_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = memo_file.with_name(f".{memo_file.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(memo), encoding="utf-8")
        tmp.replace(memo_file)
    return digest


def model_fingerprint(name: str, memo_file: Path | None = None) -> str:
    """The SHA-256 of a model's files (all its folders together), or `hub:<id>` without a local copy."""
    folders = _folders(name)
    if folders is None:
        return f"hub:{name}"
    h = hashlib.sha256()
    for folder in folders:
        h.update(folder_fingerprint(folder, memo_file).encode())
    return h.hexdigest()


class StatesEmbedder:
    """Mean-pooled last-layer states of one model, with the on-disk cache; the model loads on the first
    text that is not cached (so a fully cached corpus never loads it)."""

    def __init__(self, model: str = DEFAULT_STATES_MODEL, cache_root: Path | None = None, device: str = "auto"):
        from llmscisci.backends.models import resolve_local_model

        resolve_local_model(model)  # an unknown name or missing folder fails here, before anything loads
        self.model = model_name(model)
        self.cache_root, self.device = cache_root, device
        self._fingerprint: str | None = None
        self._loaded = None
        self._memo: dict[str, np.ndarray] = {}

    @property
    def fingerprint(self) -> str:
        if self._fingerprint is None:
            memo = self.cache_root / "fingerprints.json" if self.cache_root else None
            self._fingerprint = model_fingerprint(self.model, memo)
        return self._fingerprint

    def features(self) -> dict:
        """What a saved classifier records about its features."""
        return {"states_model": self.model, "states_model_sha256": self.fingerprint, **SETTINGS}

    def _folder(self) -> Path | None:
        if self.cache_root is None:
            return None
        key = hashlib.sha256(json.dumps({"model": self.fingerprint, **SETTINGS}, sort_keys=True).encode())
        folder = self.cache_root / key.hexdigest()[:20]
        if not (folder / "about.json").is_file():
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "about.json").write_text(json.dumps({"model": self.model, "sha256": self.fingerprint,
                                                           **SETTINGS}, indent=2) + "\n", encoding="utf-8")
        return folder

    def embed(self, texts: list[str]) -> np.ndarray:
        """One float32 vector per text (cached ones read from disk, the rest computed and stored)."""
        keys = [hashlib.sha256(t.encode()).hexdigest() for t in texts]
        folder = self._folder()
        missing: dict[str, str] = {}
        for k, t in zip(keys, texts):
            if k in self._memo or k in missing:
                continue
            f = folder / k[:2] / f"{k}.npy" if folder else None
            if f is not None and f.is_file():
                try:
                    self._memo[k] = np.load(f, allow_pickle=False)
                    continue
                except (OSError, ValueError):  # a damaged cache file is computed again
                    pass
            missing[k] = t
        if missing:
            order = sorted(missing, key=lambda k: len(missing[k]))  # similar lengths batch with less padding
            for i in range(0, len(order), BATCH_SIZE):
                batch = order[i:i + BATCH_SIZE]
                for k, vec in zip(batch, self._forward([missing[k] for k in batch])):
                    self._memo[k] = vec
                    if folder is not None:
                        self._store(folder / k[:2] / f"{k}.npy", vec)
        if not keys:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([self._memo[k] for k in keys])

    @staticmethod
    def _store(path: Path, vec: np.ndarray) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npy")
        np.save(tmp, vec, allow_pickle=False)
        tmp.replace(path)

    def _forward(self, texts: list[str]) -> list[np.ndarray]:
        """The model's mean-pooled last-layer states for one batch of texts."""
        import torch

        lm = self._load()
        enc = lm.tokenizer(texts, return_tensors="pt", padding=True, truncation=True, max_length=MAX_TOKENS)
        enc = {k: v.to(lm.device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}
        body = getattr(lm.model, "base_model", lm.model)  # the transformer without its vocabulary head
        with torch.inference_mode():
            states = body(**enc).last_hidden_state.float()
        mask = enc["attention_mask"].unsqueeze(-1).to(states.dtype)
        pooled = (states * mask).sum(1) / mask.sum(1).clamp(min=1.0)  # an empty text: a zero vector
        return [row for row in pooled.cpu().numpy().astype(np.float32)]

    def _load(self):
        if self._loaded is None:
            from llmscisci.backends.base import BackendOptions
            from llmscisci.backends.models import load

            lm = load(self.model, BackendOptions(device=self.device, dtype="float32"))
            lm.tokenizer.padding_side = "right"  # positions 0..n-1 for every text, whatever the batch
            self._loaded = lm
        return self._loaded
