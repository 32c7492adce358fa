"""`ls.judge(...)` and `ls.agree(...)`: the Python faces of `llmscisci judge` (an LLM judges candidate
labels against the reference; the run audits the judge) and `llmscisci agree` (agreement between label
files or label runs: kappas, alpha, exact match)."""

from __future__ import annotations

from pathlib import Path

from llmscisci.api.inputs import codebook_of
from llmscisci.api.judge_runs import API_FLAGS, agreement, judge_run
from llmscisci.api.options import backend_settings, batch_options, split_options
from llmscisci.api.run import Run


def _paths(values) -> list[Path]:
    if values is None:
        return []
    if isinstance(values, (str, Path)) or hasattr(values, "path"):
        values = [values]
    return [Path(v.path) if isinstance(v, Run) else Path(v) for v in values]


def judge(llm=None, *, task="easy", model: str = "smollm2-135m", variant: str = "structured",
          annotator: bool = True, orders: str = "all", limit: int | None = None, split: str = "all",
          reference: str | Path | None = None, data_dir: str | Path | None = None, out: str | Path = "runs",
          max_new_tokens: int | None = None, temperature: float = 0.0, seed: int = 2025,
          resume: str | Path | Run | None = None, dry_run: bool = False, **options) -> Run:
    """An LLM judges K candidates' labels (label files or label `Run`s, `llm=`) in every candidate order;
    returns the judge run (its metrics audit the judge). Backend and batch options as in `ls.label`.
    `resume=RUN_DIR` continues that judge run (as `--resume`: its own task, model, candidates and options);
    `dry_run=True` returns the plan that `--dry-run` prints (`.text`) and writes nothing."""
    backend_opts, batch_kw, _ = split_options(options)
    settings = backend_settings(backend_opts)
    if isinstance(resume, Run):
        resume = resume.path
    done = judge_run(task=task, variant=variant, model=model, opts=settings.options(),
                     batch=lambda: batch_options(**batch_kw), llm_paths=_paths(llm), annotator=annotator,
                     orders=orders, limit=limit, split=split, reference=reference, data_dir=data_dir, out_dir=out,
                     resume=resume, max_new_tokens=max_new_tokens, temperature=temperature, seed=seed,
                     dry_run=dry_run, codebook_of=codebook_of, flags=API_FLAGS)
    if dry_run:
        return done.plan
    return Run(done.pending.run_dir if done.pending is not None else done.run.path)


def agree(files, *, task=None, human=None) -> dict:
    """Agreement between label files or label runs (`files`: paths or `Run`s, at least two): per task,
    Cohen's kappa per label and pair, Fleiss' kappa and Krippendorff's alpha per label, exact match and
    Hamming loss per pair. `human`: the files that are human coders (human-human agreement is then the
    ceiling beside model-human). Returns the same dictionary as `llmscisci agree --json` (with several
    tasks, the whole-vector pairs across them in `all_tasks_pairs`)."""
    tasks = None if task is None else list(task) if isinstance(task, (list, tuple)) else [task]
    return agreement(_paths(files), tasks=tasks, humans=_paths(human), codebook_of=codebook_of, flags=API_FLAGS)
