"""The labelling task: items + codebook + prompt variant -> backend -> parsed labels -> a run folder.

Predictions are appended item by item as the backend returns them, so a killed run resumes where it
stopped (re-running the same configuration into the same --out folder, or --resume RUN_DIR).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from pathlib import Path

from llmscisci.backends.base import Backend, GenParams, Generation
from llmscisci.data.codebook import Codebook
from llmscisci.data.items import Item, text_sha, texts_fingerprint
from llmscisci.data.split import SPLIT_INFO
from llmscisci.data.validate import apply_none_rule
from llmscisci.errors import UserError
from llmscisci.metrics.distribution import GROUP_KEYS
from llmscisci.prompts import label as prompts
from llmscisci.records import LabelPrediction
from llmscisci.runs import Records, RunFolder, iter_jsonl, slug, stable_hash
from llmscisci.tasks.finish import completeness, finish_run, planned_items  # noqa: F401 - re-exported
from llmscisci.tasks.generate import generate_into
from llmscisci.tasks.parse import is_exact_format, parse_answer, render_answer
from llmscisci.tasks.texts import TEXTS_KEY, reconcile

DEFAULT_MAX_NEW_TOKENS = {"icl": 48, "guidelines": 32, "structured": 64, "cot": 192, "score": 1}


@dataclass
class LabelSpec:
    """Everything that defines a labelling run (and so its hash), except where its output goes."""

    codebook: Codebook
    variant: str
    model: str
    params: GenParams = field(default_factory=GenParams)
    shots: int = 0
    limit: int | None = None
    split: str = "all"  # all | train | test
    data_source: str = ""
    paraphrase: int = 0  # wording of the system prompt: 0 = label.toml's, k = label_paraphrases.toml's k-th
    calibrate: str | None = None  # `score` variant: the source its thresholds are fitted on

    @classmethod
    def from_config(cls, cfg: dict) -> LabelSpec:
        """The spec a run's config.json records (study or corpus run): its core, so its hash, is the stored
        one (`--resume`, `batch collect`, a grid's started cell continue the run through it)."""
        return cls(codebook=Codebook(**cfg["codebook"]), variant=cfg["variant"], model=cfg["model"],
                   params=GenParams(**cfg["params"]), shots=cfg.get("shots", 0), limit=cfg.get("limit"),
                   split=cfg.get("split_filter", "all"), data_source=cfg.get("data_source", ""),
                   paraphrase=int(cfg.get("paraphrase") or 0), calibrate=cfg.get("calibrate"))

    def core(self, items: list[Item], shots: list[tuple[str, str]]) -> dict:
        """What defines the experiment: its stable hash names the run (and finds it again to resume)."""
        core = {
            "kind": "label",
            "task": self.codebook.task,
            "variant": self.variant,
            "model": self.model,
            "params": self.params.as_dict(),
            "shots": self.shots,
            "limit": self.limit,
            "split_filter": self.split,
            "prompt_hash": prompts.prompt_hash(self.codebook, self.variant, shots, self.paraphrase),
            "codebook": self.codebook.model_dump(),
            "items": [it.doi for it in items],
            TEXTS_KEY: texts_fingerprint(it.text for it in items),  # changed texts, another run (tasks/texts.py)
        }
        if self.paraphrase:  # the original wording keeps the hashes of runs made before paraphrases existed
            core["paraphrase"] = self.paraphrase
        if self.calibrate:
            core["calibrate"] = self.calibrate
        return core

    def hash(self, items: list[Item], shots: list[tuple[str, str]]) -> str:
        return stable_hash(self.core(items, shots))

    def config(self, backend: Backend | None, items: list[Item], shots: list[tuple[str, str]],
               train_reference: list[list[int]] | None = None) -> dict:
        """The record written to config.json: the core, its hash, and what describes the run."""
        core = self.core(items, shots)
        return {
            **core,
            "hash": stable_hash(core),
            "split": SPLIT_INFO,
            "seed": self.params.seed,
            "data_source": self.data_source,
            "backend": backend.describe() if backend is not None else {},
            "structured": prompts.is_structured(self.variant),
            "system_prompt": prompts.system_prompt(self.codebook, self.variant, self.paraphrase),
            "paraphrase": self.paraphrase,
            "shot_examples": shots,
            # the complete answers the prompt shows (diagnostics: how many answers copy one)
            "prompt_examples": prompts.shown_examples(self.codebook, self.variant, shots),
            # the majority/prior baselines are fitted on the whole train split, whatever --limit selects
            "train_reference": train_reference or [],
        }


def select_items(items: list[Item], split: str, limit: int | None) -> list[Item]:
    if split not in ("all", "train", "test"):
        raise UserError(f"unknown split {split!r}: use all, train or test")
    sel = [it for it in items if split == "all" or it.split == split]
    if limit is not None:
        if limit < 1:
            raise UserError("--limit must be at least 1")
        sel = sel[:limit]
    if not sel:
        raise UserError("no items to label (check the data, --split and --limit)")
    return sel


def draw_shots(items: list[Item], codebook: Codebook, variant: str, k: int, seed: int) -> list[tuple[str, str]]:
    """k examples from the TRAIN split only (seeded), with answers rendered in the variant's format."""
    if k <= 0:
        return []
    pool = [it for it in items if it.split == "train" and it.labels is not None and it.text.strip()]
    if len(pool) < k:
        raise UserError(f"--shots {k}: only {len(pool)} labelled training items available")
    rng = random.Random(seed)
    return [(it.text, render_answer(it.labels, codebook, variant)) for it in rng.sample(pool, k)]


def prediction_record(item: Item, gen: Generation, codebook: Codebook, variant: str, phash: str) -> dict:
    parsed = parse_answer(gen.text, codebook) if gen.error is None else None
    return LabelPrediction(**{
        "doi": item.doi,
        "task": item.task,
        "split": item.split,
        "text_sha": text_sha(item.text),
        "prompt_hash": phash,
        "raw": gen.text,
        "labels": list(parsed.labels) if parsed and parsed.labels is not None else None,
        "valid": bool(parsed and parsed.valid),
        "repaired": bool(parsed and parsed.repaired),
        "exact_format": gen.error is None and is_exact_format(gen.text, codebook, variant),
        "reference": list(item.labels) if item.labels is not None else None,
        "tokens_in": gen.tokens_in,
        "tokens_out": gen.tokens_out,
        "seconds": round(gen.seconds, 4),
        "error": gen.error,
        "refusal": gen.refusal,
        "cached": gen.cached,
        "model_version": gen.model_version,
        "cost_usd": gen.cost_usd,
        # the item's grouping columns, for the label distribution per group of a run without references
        **({"meta": meta} if (meta := {k: item.meta[k] for k in GROUP_KEYS if item.meta.get(k)}) else {}),
    }).to_json()


def is_empty(item: Item) -> bool:
    """The empty-text rule: a text with nothing but white space is not sent to a model."""
    return not (item.text or "").strip()


def empty_record(item: Item, codebook: Codebook, phash: str) -> dict:
    """The prediction for an empty text under the label policy (all zeros -> `none`), made without a
    model call and marked `"empty": true`; it counts in the metrics like any other prediction."""
    labels = apply_none_rule((0,) * codebook.n, codebook.none_index).labels
    rec = prediction_record(item, Generation(text=""), codebook, "guidelines", phash)
    return rec | {"labels": list(labels), "valid": True, "repaired": False, "exact_format": False,
                  "seconds": 0.0, "empty": True}


def split_empty(items: list[Item]) -> tuple[list[Item], list[Item]]:
    """(items to send to the model, items with an empty text)."""
    return [it for it in items if not is_empty(it)], [it for it in items if is_empty(it)]


def check_scoring(spec: LabelSpec, backend: Backend | None = None) -> None:
    """What a scoring variant refuses, before anything runs: examples, a backend that cannot score,
    --calibrate with a generating variant."""
    if not prompts.is_scoring(spec.variant):
        if spec.calibrate:
            raise UserError(f"--calibrate applies to the score variant, not {spec.variant!r}")
        return
    if spec.shots:
        raise UserError(f"--shots {spec.shots}: the score variant asks without examples; use --shots 0")
    if backend is not None and not getattr(backend, "can_score", False):
        backend.score_yes_no([])  # the backend's own one-line error


def run_label(
    spec: LabelSpec,
    items: list[Item],
    backend: Backend,
    out: str | Path,
    run_dir: str | Path | None = None,
    show_progress: bool = True,
) -> RunFolder:
    """Label `items` (already loaded) with `backend`; write (or resume) the run folder; return it."""
    prompts.check_variant(spec.variant)
    prompts.check_paraphrase(spec.variant, spec.paraphrase)
    check_scoring(spec, backend)
    all_items = items
    items = select_items(items, spec.split, spec.limit)
    shots = draw_shots(all_items, spec.codebook, spec.variant, spec.shots, spec.params.seed)
    train_ref = [list(it.labels) for it in all_items if it.split == "train" and it.labels is not None]
    config = spec.config(backend, items, shots, train_ref)
    phash = config["prompt_hash"]
    para = f"_p{spec.paraphrase}" if spec.paraphrase else ""
    path = Path(run_dir) if run_dir else Path(out) / f"label_{spec.codebook.task}_{spec.variant}{para}_{slug(spec.model)}_{config['hash'][:8]}"
    config = reconcile(path, spec.core(items, shots), config, lambda: ((it.doi, text_sha(it.text)) for it in items))
    with RunFolder(path).writing():
        # a resumed score run keeps its calibration (create rewrites config.json)
        previous = RunFolder(path).config.get("calibration") if (path / "config.json").is_file() else None
        run = RunFolder.create(path, config, resume=True)
        run.repair_tail()
        done = run.done_keys()
        pending, empty = split_empty([it for it in items if it.key not in done])
        schema = prompts.label_schema(spec.codebook) if prompts.is_structured(spec.variant) else None
        if empty:
            run.append([empty_record(it, spec.codebook, phash) for it in empty])
        if prompts.is_scoring(spec.variant):
            t0 = time.perf_counter()
            _score_run(run, spec, backend, pending, phash, show_progress, previous)
            finish_run(run, spec.codebook, wall_seconds=time.perf_counter() - t0, n_resumed=len(done))
            return run
        entries = [(it, prompts.build_messages(it.text, spec.codebook, spec.variant, shots, spec.paraphrase))
                   for it in pending]
        t0 = time.perf_counter()
        generate_into(run, backend, entries, spec.params,
                      lambda it, gen: prediction_record(it, gen, spec.codebook, spec.variant, phash),
                      f"label {spec.codebook.task}/{spec.variant}", schema=schema, show_progress=show_progress)
        finish_run(run, spec.codebook, wall_seconds=time.perf_counter() - t0, n_resumed=len(done))
    return run


def _score_run(run: RunFolder, spec: LabelSpec, backend: Backend, pending: list[Item], phash: str,
               show_progress: bool, previous: dict | None = None) -> None:
    """The score variant: calibration (kept from config.json on a resumed run), then the scoring loop."""
    from llmscisci.tasks.score import run_calibration, score_into

    known: dict[str, list[float]] = {}
    cal = run_calibration(run, backend, spec.codebook, spec.variant, spec.calibrate, spec.paraphrase, previous, known)
    score_into(run, backend, pending, cal, spec.codebook, spec.variant, phash,
               f"label {spec.codebook.task}/{spec.variant}", paraphrase=spec.paraphrase, known=known,
               show_progress=show_progress)
    run.update_config({"backend": backend.describe()})


def reevaluate(run_dir: str | Path, reparse: bool = False, skip_bad: bool = False) -> dict:
    """Recompute a labelling run's metrics from its predictions (optionally re-parsing raw output).
    `llmscisci eval` reaches it through the task registry, which picks the runner by the run's kind.

    An unreadable predictions line other than a torn last one is an error unless `skip_bad`."""
    run = RunFolder(run_dir)
    cfg = run.config
    with run.writing():
        return _reevaluate(run, cfg, reparse, skip_bad)


def _reevaluate(run: RunFolder, cfg: dict, reparse: bool, skip_bad: bool) -> dict:
    run_dir = run.path
    checked = Records()  # refuse a damaged file before anything is rewritten (one pass, bounded memory)
    for _ in iter_jsonl(run.predictions_path, skip_bad=skip_bad, into=checked):
        pass
    if "codebook" not in cfg:
        raise UserError(f"{run_dir}: config.json has no codebook; not a labelling-style run")
    codebook = Codebook(**cfg["codebook"])
    if reparse and prompts.is_scoring(cfg.get("variant", "guidelines")):
        reparse = False  # labels come from log-odds, not from text: nothing to parse again
    if reparse:
        preds = run.predictions(skip_bad=skip_bad)
        variant = cfg.get("variant", "guidelines")
        for p in preds:
            if p.get("error") or p.get("empty"):
                continue
            parsed = parse_answer(p.get("raw") or "", codebook)
            p["labels"] = list(parsed.labels) if parsed.labels is not None else None
            p["valid"], p["repaired"] = parsed.valid, parsed.repaired
            p["exact_format"] = is_exact_format(p.get("raw") or "", codebook, variant)
        run.rewrite_predictions(preds)
    if cfg.get("streamed"):  # a corpus run (`label --input`): its own bounded-memory finish
        from llmscisci.tasks.stream_finish import finish_stream

        metrics = finish_stream(run, codebook)
        if checked.bad_lines:  # the streamed reader skips them too: say how many
            metrics["bad_lines_skipped"] = checked.bad_lines
            run.write_metrics(metrics)
        return metrics
    return finish_run(run, codebook, skip_bad=skip_bad)
