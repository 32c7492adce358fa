"""A label run as the human-coding workflow reads it: its configuration, codebook, items and
predictions (the data folder is found from the run's config, --data-dir or $LLMSCISCI_DATA)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from llmscisci.data.codebook import BUILTIN, Codebook, load_codebook
from llmscisci.data.items import Item, load_items
from llmscisci.data.labelfiles import load_labels
from llmscisci.errors import UserError
from llmscisci.paths import BUNDLED, DATA_ENV, bundled_data_dir
from llmscisci.runs import RunFolder


# =================================================================================================
# label runs
# =================================================================================================
@dataclass
class LoadedRun:
    path: Path
    config: dict
    codebook: Codebook
    dois: list[str]  # items with a prediction, in the run's order
    predictions: dict[str, tuple[int, ...] | None]  # None: invalid output
    items: dict[str, Item] = field(default_factory=dict)  # texts and metadata, when the data are found

    @property
    def task(self) -> str:
        return self.codebook.task


def _data_source(cfg: dict, data_dir: str | Path | None) -> Path | None:
    """--data-dir, else the run's recorded data source, else $LLMSCISCI_DATA.

    A run on the user's own corpus (its data source a file: CSV, JSONL, Parquet...) looks for that file
    in a --data-dir folder, never for the study's reports table."""
    src = cfg.get("data_source")
    if data_dir is not None:
        given = Path(data_dir)
        if not given.exists():
            raise UserError(f"--data-dir {data_dir}: no such folder or file")
        own_file = cfg.get("streamed") or Path(src or "").suffix.lower() in (".csv", ".tsv")
        if given.is_dir() and src and src != BUNDLED and own_file:
            own = given / Path(src).name
            if not own.is_file():
                raise UserError(f"--data-dir {data_dir}: the run labelled the file {Path(src).name}, which is "
                                "not in this folder; give the file itself or its folder")
            return own
        return given
    if src == BUNDLED:
        return bundled_data_dir()
    if src and Path(src).exists():
        return Path(src)
    env = os.environ.get(DATA_ENV)
    return Path(env) if env and Path(env).is_dir() else None


def load_run(run_dir: str | Path, data_dir: str | Path | None = None, *, need_items: bool = True,
             items_if_found: bool = False) -> LoadedRun:
    """A labelling run folder: its codebook, its predictions and (from its data source, or `data_dir`)
    the items' texts and metadata (`need_items`: or an error; `items_if_found`: when the data source
    is found, as for the bundled data)."""
    path = Path(run_dir)
    if not path.is_dir():
        raise UserError(f"{path}: no such run folder")
    cfg = RunFolder(path).config
    if "codebook" not in cfg:
        raise UserError(f"{path}: config.json has no codebook; not a labelling run")
    try:
        codebook = Codebook(**cfg["codebook"])
    except (TypeError, ValueError) as exc:  # a hand-edited config (pydantic's errors are ValueErrors)
        raise UserError(f"{path}/config.json: bad codebook ({str(exc).splitlines()[0]})") from None
    if not (path / "predictions.jsonl").is_file():
        raise UserError(f"{path}: no predictions.jsonl (has the run started?)")
    books = {t: load_codebook(t) for t in BUILTIN} | {codebook.task: codebook}
    labels = load_labels(path, books)
    recs = labels.for_task(codebook.task)
    if not recs:
        raise UserError(f"{path}: no predictions for task {codebook.task!r}")
    run = LoadedRun(path, cfg, codebook, list(recs), {d: r.labels for d, r in recs.items()})
    if not need_items and not items_if_found and data_dir is None:
        return run  # the predictions are enough (prevalence without --by): no texts to load
    source = _data_source(cfg, data_dir)
    if source is None:
        if need_items:
            raise UserError(f"{path}: its data source {cfg.get('data_source')!r} is not found; pass --data-dir")
        return run
    if cfg.get("streamed"):  # a corpus run (`label --input`): read the corpus as that run did
        from llmscisci.data.corpus import load_corpus_items

        inp, text = cfg.get("input") or {}, (cfg.get("items") or {}).get("text") or None
        items = load_corpus_items(source, codebook, id_column=inp.get("id_column"),
                                  text_column=None if text and "{" in text else text,
                                  template=text if text and "{" in text else None)
    elif source.is_file():
        items = load_items(codebook, input_csv=source)
    else:
        items = load_items(codebook, data_dir=source)
    by_doi = {it.doi: it for it in items}
    missing = [d for d in run.dois if d not in by_doi]
    if missing and need_items:
        raise UserError(f"{path}: {len(missing)} predicted items (e.g. {missing[0]}) are not in the data source "
                        f"{source}; pass the right --data-dir")
    run.items = {d: by_doi[d] for d in run.dois if d in by_doi}
    return run
