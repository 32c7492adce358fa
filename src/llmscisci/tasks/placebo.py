"""The placebo check, a quick test of "does the model read the text?".

`run_placebo(run, backend, n)` asks the run's model again about `n` of its items (a seeded choice among
the items with a valid answer), with the run's own prompt (variant, wording, k-shot examples, generation
settings) but the item's text replaced by one fixed neutral passage that names no category
(`NEUTRAL_PASSAGE`, kind `neutral`). A model that reads the text answers the neutral passage differently
from most items; a model that answers the same whatever the text keeps its answers. The answers go to
placebo.jsonl in the run folder, never into predictions.jsonl, and metrics.json gets a `placebo` object
(n, unchanged, unchanged_share, kind) and its warning.
"""

from __future__ import annotations

import json
import random

from llmscisci.backends.base import Backend, GenParams, Generation
from llmscisci.backends.registry import resolve_model
from llmscisci.data.codebook import Codebook
from llmscisci.errors import UserError
from llmscisci.prompts import label as prompts
from llmscisci.runs import RunFolder, atomic_write
from llmscisci.tasks.finish import PLACEBO_FILE
from llmscisci.tasks.parse import parse_answer

KIND = "neutral"
NEUTRAL_PASSAGE = ("The weather stayed mild for most of the week, with light rain on Tuesday and sunshine over "
                   "the weekend. The town library extended its opening hours, and the bakery on the main square "
                   "began selling a new rye bread.")


def check_placebo(n: int | None) -> None:
    if n is not None and n < 1:
        raise UserError(f"--placebo {n}: must be at least 1 (the number of items to ask again)")


def check_placebo_options(placebo, model: str, batch_opts) -> None:
    """--placebo asks a live LLM again: at least one item, not with --batch nor a saved classifier."""
    check_placebo(placebo)
    if placebo and batch_opts is not None:
        raise UserError("--placebo asks the model live: run the batch first, then `llmscisci eval RUN --placebo N`")
    if placebo and resolve_model(model).is_baseline:
        raise UserError("--placebo checks an LLM's answers, not a saved classifier's")


def choose_items(run: RunFolder, n: int, seed: int) -> list[dict]:
    """n items with a valid model answer (not the empty-text rule's), chosen with `seed` in item order."""
    pool = {}
    for rec in run.iter_predictions():
        key = (str(rec.task), str(rec.doi))
        if rec.valid and rec.labels is not None and not rec.empty and not rec.error:
            pool[key] = {"doi": rec.doi, "task": rec.task, "labels": list(rec.labels)}
        else:
            pool.pop(key, None)  # the last record of an item wins, as in the metrics
    items = [pool[k] for k in sorted(pool)]
    if not items:
        raise UserError(f"{run.path}: no item with a valid answer to ask again (--placebo)")
    return random.Random(seed).sample(items, min(n, len(items)))


def _ask_neutral(backend: Backend, codebook: Codebook, variant: str, shots, paraphrase: int, params: GenParams,
                 n: int) -> list[tuple[Generation, list[int] | None]]:
    """A generating variant's answers to the neutral passage, parsed as the run parses its answers."""
    msgs = prompts.build_messages(NEUTRAL_PASSAGE, codebook, variant, shots, paraphrase)
    schema = prompts.label_schema(codebook) if prompts.is_structured(variant) else None
    out = []
    for gen in backend.generate([msgs] * n, params, schema=schema):
        parsed = parse_answer(gen.text, codebook) if gen.error is None else None
        out.append((gen, list(parsed.labels) if parsed and parsed.valid and parsed.labels is not None else None))
    return out


def _score_neutral(run: RunFolder, backend: Backend, codebook: Codebook, variant: str, paraphrase: int,
                   n: int) -> list[tuple[Generation, list[int] | None]]:
    """The score variant: the neutral passage's log-odds under the run's own calibration (its
    content-free log-odds and thresholds, from config.json), the same answer for every chosen item."""
    from llmscisci.tasks.score import Calibration, labels_from_odds, log_odds, score_texts

    cal = run.config.get("calibration")
    if not cal:
        raise UserError(f"{run.path}: a score run without its calibration in config.json (--placebo)")
    gens = score_texts(backend, codebook, variant, [NEUTRAL_PASSAGE], paraphrase)[0]
    odds = log_odds(gens)
    err = next((g.error for g in gens if g.error), None) if odds is None else None
    gen = Generation(text=json.dumps({"log_odds": odds}) if odds is not None else "", error=err or None)
    labels = labels_from_odds(odds, Calibration(**cal), codebook)[0] if odds is not None else None
    return [(gen, labels)] * n


def run_placebo(run: RunFolder, backend: Backend, n: int, seed: int | None = None) -> dict:
    """Ask `n` items again with the neutral passage (seeded choice: `seed`, else the run's); write
    placebo.jsonl (replacing an earlier check's) and recompute metrics.json. Returns the metrics."""
    check_placebo(n)
    cfg = run.config
    from llmscisci.tasks import registry

    if not registry.holds_llm_labels(cfg):
        raise UserError(f"{run.path}: --placebo needs a labelling run (kind {cfg.get('kind')!r})")
    codebook = Codebook(**cfg["codebook"])
    variant = cfg.get("variant", "guidelines")
    params = GenParams(**cfg["params"])
    seed = params.seed if seed is None else seed
    shots = [tuple(s) for s in cfg.get("shot_examples") or []]
    chosen = choose_items(run, n, seed)
    paraphrase = int(cfg.get("paraphrase") or 0)
    with run.writing():
        answers = (_score_neutral(run, backend, codebook, variant, paraphrase, len(chosen))
                   if prompts.is_scoring(variant) else
                   _ask_neutral(backend, codebook, variant, shots, paraphrase, params, len(chosen)))
        rows = []
        for item, (gen, labels) in zip(chosen, answers):
            rows.append({"doi": item["doi"], "task": item["task"], "kind": KIND, "passage": NEUTRAL_PASSAGE,
                         "seed": seed, "raw": gen.text, "labels": labels, "valid": labels is not None,
                         "error": gen.error, "original": item["labels"], "unchanged": labels == item["labels"]})
        atomic_write(run.path / PLACEBO_FILE, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    from llmscisci.tasks.label import reevaluate

    return reevaluate(run.path)  # metrics.json again, now with the `placebo` object and its warning
