"""Distillation: a labelling run's predictions as the labels a classifier learns (`baseline --labels
RUN_DIR`), so that a cheap classifier can label the rest of a corpus like the model that taught it.

Only the run's valid answers teach: a prediction that failed, was unparseable or belongs to an empty
text is left out. The texts come from the study data or from the corpus the run read (`--input`),
matched by item id. `teacher_record` says which run taught a classifier: its path, its config hash,
the hash of the labels learnt and how many items; it becomes part of the baseline run's hash and of
a saved model's model.json.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from llmscisci.data.codebook import Codebook
from llmscisci.data.items import Item
from llmscisci.errors import UserError
from llmscisci.records import is_valid
from llmscisci.runs import RunFolder, stable_hash


@dataclass
class Teacher:
    """A labelling run read as a teacher: its codebook, config and the labels of its valid answers."""

    path: Path
    config: dict
    codebook: Codebook
    labels: dict[str, tuple[int, ...]]  # item id -> the run's label vector
    n_left_out: int = 0  # predictions that were not valid answers (failed, unparseable, empty text)

    def record(self) -> dict:
        """What a distilled classifier records about the run that taught it."""
        return {"run": str(self.path.resolve()), "run_hash": self.config.get("hash"),
                "model": self.config.get("model"), "variant": self.config.get("variant"),
                "n_items": len(self.labels), "n_left_out": self.n_left_out,
                "labels_hash": stable_hash(sorted((k, list(v)) for k, v in self.labels.items()))}

    def input_spec(self) -> dict:
        """For a run over a corpus (`label --input`): its path, id column and text column or template."""
        if not self.config.get("streamed"):
            return {}
        inp, items = self.config.get("input") or {}, self.config.get("items") or {}
        text = items.get("text") or ""
        return {"path": inp.get("path"), "id_column": items.get("id_column") or inp.get("id_column"),
                "text_column": None if "{" in text else (text or None),
                "template": text if "{" in text else None}


def read_teacher(run_dir: str | Path) -> Teacher:
    """The run folder's codebook and the labels of its valid predictions (one-line errors otherwise)."""
    path = Path(run_dir)
    if not (path / "config.json").is_file():
        raise UserError(f"--labels {path}: not a run folder (no config.json)")
    run = RunFolder(path)
    cfg = run.config
    from llmscisci.tasks import registry

    if not registry.holds_llm_labels(cfg):
        raise UserError(f"--labels {path}: not a labelling run (kind {cfg.get('kind')!r})")
    if not run.predictions_path.is_file():
        raise UserError(f"--labels {path}: no predictions.jsonl")
    codebook = Codebook(**cfg["codebook"])
    labels: dict[str, tuple[int, ...]] = {}
    left_out = 0
    for p in run.records():
        lab = p.labels
        if not is_valid(p) or p.error or p.empty or not isinstance(lab, list):
            left_out += 1
            continue
        if len(lab) != codebook.n or any(v not in (0, 1) for v in lab):
            raise UserError(f"--labels {path}: item {p.doi!r} has labels {lab} that do not fit the run's "
                            f"{codebook.n} categories")
        labels[str(p.doi)] = tuple(int(v) for v in lab)
    if not labels:
        raise UserError(f"--labels {path}: the run has no valid predictions to learn from")
    return Teacher(path, cfg, codebook, labels, left_out)


def taught_items(items: list[Item], teacher: Teacher, where: str) -> list[Item]:
    """The items the teacher labelled, carrying its labels, with the canonical DOI-grouped split drawn
    over them (a teacher that saw only the study's train split still gets a test split); every one must
    be among `items`."""
    from llmscisci.data.split import canonical_split

    have = {it.doi for it in items}
    missing = [k for k in teacher.labels if k not in have]
    if missing:
        raise UserError(f"--labels {teacher.path}: {len(missing)} of its items are not in {where} "
                        f"(first: {missing[0]!r}); give the data it labelled (--input or --data-dir)")
    split = canonical_split(teacher.labels)
    return [replace(it, labels=teacher.labels[it.doi], split=split[it.doi]) for it in items if it.doi in teacher.labels]


def corpus_items(teacher: Teacher, path: str | Path, id_column: str | None = None, text_column: str | None = None,
                 template: str | None = None) -> list[Item]:
    """The teacher's items read from a corpus file (streamed: only those items are kept); the id column
    and text default to those the run recorded."""
    from llmscisci.data.corpus import CorpusPlan

    spec = teacher.input_spec()
    if id_column is None:
        id_column = spec.get("id_column")
    if text_column is None and template is None:
        text_column, template = spec.get("text_column"), spec.get("template")
    plan = CorpusPlan.open(path, teacher.codebook, id_column=id_column, text_column=text_column, template=template)
    return taught_items([it for it in plan.items() if it.doi in teacher.labels], teacher, str(path))
