"""The one copy of `llmscisci baseline` and `ls.baseline(...)`: the option checks (before any data or
model loads), the items (the study's data, a coded sample, or the answers of a labelling run to learn:
distillation), one baseline run per task and method, and the saved model folder. Each face shows the
`Fitted` results its own way."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from llmscisci.errors import UserError


@dataclass
class Fitted:
    """One task x method: the baseline run folder (`run`), and the labelling run it learnt from
    (`teacher`, a distill.Teacher) if any."""

    task: str
    method: str
    run: Any
    teacher: Any = None

    def result(self) -> dict:
        """What `--json` prints for it."""
        return {"task": self.task, "method": self.method, "run_dir": str(self.run.path), "metrics": self.run.metrics()}

    def lines(self) -> list[str]:
        """The summary under its metrics table."""
        met = self.run.metrics()
        cv = met["cv"]
        lines = [(f"{self.task} {self.method}: CV macro-F1 {cv['macro_f1_mean']:.3f} ± {cv['macro_f1_std']:.3f} "
                  f"(k={cv['k']}); canonical test macro-F1 {met['test']['macro_f1']:.3f}; run folder {self.run.path}")]
        t = self.teacher
        if t is not None:  # the scores measure agreement with the teacher, not with references
            lines.append(f"labels learnt and scored against: the answers of {t.config.get('model')} in {t.path} "
                         f"({len(t.labels)} items; {t.n_left_out} left out: failed, unparseable or empty)")
        return lines


def check_methods(methods: list[str], states_model: str | None):
    """The methods known, `states_model` only with llm-states; the StatesEmbedder of llm-states (its model
    name checked here, loaded on the first text not cached), else None."""
    from llmscisci.paths import cache_dir
    from llmscisci.tasks.baseline import METHODS
    from llmscisci.tasks.llm_states import CACHE_NAME, DEFAULT_STATES_MODEL, StatesEmbedder

    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        raise UserError(f"unknown --method {(bad or [''])[0]!r}: use one of {', '.join(METHODS)}")
    if states_model is not None and "llm-states" not in methods:
        raise UserError("--states-model goes with --method llm-states")
    if "llm-states" not in methods:
        return None
    try:
        return StatesEmbedder(str(states_model or DEFAULT_STATES_MODEL), cache_dir() / CACHE_NAME)
    except UserError as exc:
        raise UserError(f"--states-model: {exc}") from None


def _teacher(labels, tasks: list, task_given: bool):
    """The labelling run `labels` names (a run folder), checked against the tasks given; None for a label
    file (or no labels)."""
    if labels is None or not Path(labels).is_dir():
        return None
    from llmscisci.api.inputs import codebook_of
    from llmscisci.tasks.distill import read_teacher

    teacher = read_teacher(Path(labels))
    if task_given and (len(tasks) != 1 or codebook_of(tasks[0]).shorts != teacher.codebook.shorts):
        named = ",".join(str(getattr(t, "task", t)) for t in tasks)
        raise UserError(f"--labels {labels}: the run labels task {teacher.codebook.task!r}, not {named!r}")
    return teacher


def _items(cb, teacher, input_path, labels, src: str, data_dir, id_column, text_column) -> list:
    from llmscisci.data.items import load_items

    if teacher is not None:
        from llmscisci.tasks.distill import corpus_items, taught_items

        if input_path is not None:
            return corpus_items(teacher, input_path, id_column, text_column)
        return taught_items(load_items(cb, data_dir=src), teacher, f"the data in {src}")
    if input_path is not None:
        from llmscisci.data.coded import load_coded

        return load_coded(input_path, cb, labels, id_column=id_column, text_column=text_column)
    return load_items(cb, data_dir=src)


def _save(save: Path, method: str, cb, items: list, run, seed: int, states, taught_by: dict | None) -> None:
    import numpy as np

    from llmscisci.tasks.baseline_model import save_model

    coded = [it for it in items if it.labels is not None]
    met = run.metrics()
    cv = {k: v for k, v in met["cv"].items() if k != "folds"}
    save_model(save, method, cb, [it.text for it in coded], np.array([it.labels for it in coded]), seed,
               cv={**cv, "test_macro_f1": met["test"]["macro_f1"]}, states=states, teacher=taught_by,
               train_ids=[it.doi for it in coded])


def baseline_runs(tasks: list, methods: list[str], *, states_model: str | None = None, folds: int = 5,
                  seed: int = 2025, data_dir=None, out_dir: str | Path = "runs", save: str | Path | None = None,
                  input_path: str | Path | None = None, labels: str | Path | None = None,
                  id_column: str | None = None, text_column: str | None = None, task_given: bool = True,
                  say: Callable[[str], None] | None = None) -> list[Fitted]:
    """Fit each of `methods` on each of `tasks` (names, codebook files or Codebooks); `labels` a label file
    of the coded sample `input_path`, or a labelling run folder whose answers are learnt (its task, unless
    `task_given`: then the tasks must be the run's). `say` hears where a model folder was saved."""
    from llmscisci.api.inputs import codebook_of
    from llmscisci.paths import cache_dir, check_output_path
    from llmscisci.paths import data_dir as resolve
    from llmscisci.tasks.baseline import run_baseline

    states = check_methods(methods, states_model)
    teacher = _teacher(labels, tasks, task_given)
    if teacher is not None:
        tasks = [teacher.codebook]
    if save is not None:
        from llmscisci.tasks.baseline_model import SAVABLE

        if len(tasks) != 1 or len(methods) != 1 or methods[0] not in SAVABLE:
            raise UserError(f"--save needs one --task and one --method ({' or '.join(SAVABLE)})")
    check_output_path(out_dir, "folder")
    if save is not None:
        check_output_path(save, "folder", "--save")
    if labels is not None and input_path is None and teacher is None:
        raise UserError(f"--labels {labels}: a label file goes with --input (a coded sample); to learn a labelling "
                        "run's answers, give its run folder")
    if teacher is not None and input_path is None and data_dir is None and teacher.input_spec().get("path"):
        input_path = Path(teacher.input_spec()["path"])  # a corpus run: its own input, where it still is
        if not input_path.exists():
            raise UserError(f"--labels {labels}: the corpus it labelled ({input_path}) is not there; give --input")
    if teacher is not None and input_path is None and data_dir is None:
        data_dir = teacher.config.get("data_source") or None
    src = str(input_path) if input_path is not None else str(resolve(data_dir))
    taught_by = teacher.record() if teacher is not None else None
    done = []
    for t in tasks:
        cb = teacher.codebook if teacher is not None else codebook_of(t)
        items = _items(cb, teacher, input_path, labels, src, data_dir, id_column, text_column)
        for m in methods:
            run = run_baseline(cb, items, m, out_dir, k=folds, seed=seed, data_source=src, cache_dir=cache_dir(),
                               states=states, teacher=taught_by)
            if save is not None:
                _save(Path(save), m, cb, items, run, seed, states, taught_by)
                if say is not None:
                    say(f"model folder: {save}")
            done.append(Fitted(str(t) if teacher is None and isinstance(t, str) else cb.task, m, run, teacher))
    return done
