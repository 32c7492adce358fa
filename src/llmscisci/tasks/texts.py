"""The texts a run labels are part of its identity: changed texts under the same ids make a new run.

A labelling or judge run's core holds `texts_sha256`, the fingerprint of its texts in order (a
streamed corpus run: `items.texts_sha256`, computed in the corpus's counting pass), and each
prediction keeps its text's short fingerprint (`text_sha`). So a re-run over fixed texts gets a new
hash and a new run folder, and `--resume` of the old folder with changed texts is refused in one
line that says how many of the texts it labelled have changed.

A folder made before runs fingerprinted their texts (its hash is the same core without
`texts_sha256`) still resumes: its old hash is kept, and a note says that its texts cannot be
checked. The response cache is not concerned: it is keyed by the full request, text included.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path

from llmscisci.console import console
from llmscisci.errors import UserError
from llmscisci.runs import RunFolder, stable_hash

TEXTS_KEY = "texts_sha256"


def without_texts(core: dict) -> dict:
    """A core (or config) without the texts' fingerprint: the identity of runs made before it existed."""
    out = {k: v for k, v in core.items() if k != TEXTS_KEY}
    if isinstance(out.get("items"), dict):
        out["items"] = {k: v for k, v in out["items"].items() if k != TEXTS_KEY}
    return out


def find_run(index: dict[str, Path], core: dict) -> Path | None:
    """The run folder of `core` in a grid's index (hash -> folder), or one made before runs
    fingerprinted their texts (resumed under its old hash, see `reconcile`)."""
    return index.get(stable_hash(core)) or index.get(stable_hash(without_texts(core)))


def changed_texts(run: RunFolder, current: Iterable[tuple[str, str]]) -> tuple[int, int]:
    """(texts whose fingerprint differs from the one their prediction recorded, predictions with one)."""
    recorded = {r.doi: r.text_sha for r in run.iter_records() if getattr(r, "text_sha", None)}
    changed = sum(1 for doi, sha in current if doi in recorded and recorded[doi] != sha)
    return changed, len(recorded)


def reconcile(path: str | Path, core: dict, config: dict,
              current: Callable[[], Iterable[tuple[str, str]]]) -> dict:
    """The config to create or resume the run folder `path` with.

    `core` is the run's identity, `config` what config.json records (with `hash`), and `current()`
    yields (id, text_sha) of the texts now. A new folder or the same run: `config` itself. A folder
    made before texts were fingerprinted: `config` without them under the folder's old hash (with a
    note). The same run over other texts: a one-line error naming how many texts changed. Anything
    else is left to `RunFolder.create` (it refuses a folder that holds a different run)."""
    cfg_path = Path(path) / "config.json"
    if not cfg_path.is_file():
        return config
    old = json.loads(cfg_path.read_text("utf-8"))
    if old.get("hash") == config.get("hash"):
        return config
    bare = stable_hash(without_texts(core))
    if old.get("hash") == bare:
        console.print(f"note: {path} was made before runs fingerprinted their texts: resumed without checking "
                      "that its texts are unchanged", markup=False, highlight=False, soft_wrap=True)
        return {**without_texts(config), "hash": old["hash"]}
    old_core = {k: old.get(k) for k in core}
    if stable_hash(without_texts(old_core)) == bare:  # the same run in every respect but its texts
        n, m = changed_texts(RunFolder(path), current())
        what = (f"{n} of the {m} texts it labelled changed" if n else
                "the texts it has not labelled yet changed")
        raise UserError(f"{path}: {what} since the run started (same ids, same settings); resuming would "
                        "mix labels of old and new texts: run the same command without --resume to label "
                        "them into a new run folder")
    return config
