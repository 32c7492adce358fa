"""The scoring loop of the `score` prompt variant (the counterpart of tasks/generate.py's generation loop).

Each item gets one yes/no question per category (all but the exclusive `none`, which follows from the
others); the backend scores the answers by log-probability (`Backend.score_yes_no`), so no answer is
ever invalid. Contextual calibration (Zhao et al. 2021, "Calibrate Before Use"): the log-odds the same
question gets on a content-free passage ("N/A") is subtracted per category. A category is labelled where
its calibrated log-odds exceed its threshold: 0 by default, or the cut fitted on a calibration source's
reference labels (`--calibrate SOURCE`: `bundled`, a data folder, or a coded label file), on that
source's items only (metrics/thresholds.py).

Each prediction keeps the raw and calibrated log-odds (`raw` as JSON, `scores`), so a run can be
re-thresholded later.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from llmscisci.backends.base import Backend, Generation
from llmscisci.data.codebook import Codebook
from llmscisci.data.items import Item
from llmscisci.data.validate import apply_none_rule
from llmscisci.errors import UserError
from llmscisci.metrics.distribution import GROUP_KEYS
from llmscisci.metrics.thresholds import fit_thresholds
from llmscisci.prompts import label as prompts
from llmscisci.records import LabelPrediction
from llmscisci.runs import RunFolder
from llmscisci.tasks.generate import progress_bar
from llmscisci.tasks.stoprule import StopRule

OnItem = Callable[[int, list[Generation]], None]


@dataclass
class Calibration:
    """How a score run turns log-odds into labels (recorded in config.json as `calibration`)."""

    categories: list[str]  # the scored categories (shorts), in order
    content_free: list[float]  # log-odds of each question on the content-free passage
    thresholds: list[float]  # on the calibrated log-odds; 0 unless fitted on a source
    source: str | None = None  # --calibrate SOURCE
    n_items: int = 0  # items of the source the thresholds were fitted on
    n_failed: int = 0  # items of the source that could not be scored (e.g. longer than the context)
    content_free_text: str = "N/A"

    def as_dict(self) -> dict:
        return asdict(self)


def check_score_options(variant: str, model: str, shots: int, calibrate: str | None) -> None:
    """The score variant's checks, before any data or model is loaded (one-line errors)."""
    if not prompts.is_scoring(variant):
        if calibrate is not None:
            raise UserError(f"--calibrate applies to --variant score, not {variant!r}")
        return
    from llmscisci.backends.registry import check_can_score

    check_can_score(model)
    if shots:
        raise UserError(f"--shots {shots}: the score variant asks without examples; use --shots 0")
    if calibrate is not None:
        from llmscisci.paths import BUNDLED

        if calibrate != BUNDLED and not Path(calibrate).exists():
            raise UserError(f"--calibrate {calibrate}: not found (use bundled, a data folder or a coded label file)")


def scored(codebook: Codebook) -> list[str]:
    return [codebook.shorts[k] for k in prompts.score_categories(codebook)]


def score_texts(backend: Backend, codebook: Codebook, variant: str, texts: Sequence[str], paraphrase: int = 0,
                on_item: OnItem | None = None) -> list[list[Generation]]:
    """Each text's answers to the category questions, in one batched backend call; `on_item(i, gens)` as
    soon as all of text i's questions are scored."""
    k = len(prompts.score_categories(codebook))
    convs = [c for t in texts for c in prompts.item_score_messages(t, codebook, variant, paraphrase)]
    got: list[list[Generation | None]] = [[None] * k for _ in texts]
    left = [k] * len(texts)

    def on_result(i: int, gen: Generation) -> None:
        item, q = divmod(i, k)
        got[item][q] = gen
        left[item] -= 1
        if left[item] == 0 and on_item is not None:
            on_item(item, got[item])  # type: ignore[arg-type]

    if convs:
        backend.score_yes_no(convs, on_result=on_result)
    return got  # type: ignore[return-value]


def log_odds(gens: list[Generation]) -> list[float] | None:
    if any(g.error is not None or "log_odds" not in g.extra for g in gens):
        return None
    return [float(g.extra["log_odds"]) for g in gens]


def content_free_odds(backend: Backend, codebook: Codebook, variant: str, paraphrase: int = 0) -> list[float]:
    text = prompts.content_free(variant)
    gens = score_texts(backend, codebook, variant, [text], paraphrase)[0]
    odds = log_odds(gens)
    if odds is None:
        err = next((g.error for g in gens if g.error), "no log-odds")
        raise UserError(f"scoring the content-free passage {text!r} failed: {err}")
    return odds


def calibration_items(codebook: Codebook, source: str) -> list[Item]:
    """The items with reference labels of a calibration source: `bundled`, a data folder, or a coded
    label file (a corpus file with one 0/1 column per category, as `code import` writes)."""
    from llmscisci.paths import BUNDLED, bundled_data_dir

    if source == BUNDLED or Path(source).is_dir():
        from llmscisci.data.items import load_items

        items = load_items(codebook, data_dir=bundled_data_dir() if source == BUNDLED else source)
    elif Path(source).is_file():
        from llmscisci.data.coded import load_coded

        items = load_coded(source, codebook)
    else:
        raise UserError(f"--calibrate {source}: not `bundled`, a data folder or a coded label file")
    items = [it for it in items if it.labels is not None and (it.text or "").strip()]
    if not items:
        raise UserError(f"--calibrate {source}: no items with reference labels for task {codebook.task!r}")
    return items


def fit_calibration(backend: Backend, codebook: Codebook, variant: str, cf: list[float], source: str | None,
                    paraphrase: int = 0, known: dict[str, list[float]] | None = None) -> Calibration:
    """The run's calibration: content-free offsets, and thresholds fitted on `source`'s items only (their
    raw log-odds are added to `known`, by text, so target items that are also source items are not scored
    twice)."""
    cats = scored(codebook)
    cal = Calibration(cats, [round(v, 6) for v in cf], [0.0] * len(cats),
                      content_free_text=prompts.content_free(variant))
    if not source:
        return cal
    items = calibration_items(codebook, source)
    known = known if known is not None else {}
    todo = [it for it in items if it.text not in known]
    errors = []
    for it, gens in zip(todo, score_texts(backend, codebook, variant, [it.text for it in todo], paraphrase)):
        odds = log_odds(gens)
        if odds is None:
            errors.append(f"{it.doi}: {next((g.error for g in gens if g.error), 'no log-odds')}")
        else:
            known[it.text] = odds
    failed = [it for it in items if it.text not in known]
    items = [it for it in items if it.text in known]
    if not items:
        first = errors[0] if errors else "no items"
        raise UserError(f"--calibrate {source}: no item could be scored ({first})")
    idx = prompts.score_categories(codebook)
    x = np.array([known[it.text] for it in items]) - np.array(cf)[None, :]
    y = np.array([[it.labels[k] for k in idx] for it in items])
    cal.thresholds = [round(t, 6) for t in fit_thresholds(x, y)]
    cal.n_failed = len(failed)
    cal.source, cal.n_items = source, len(items)
    return cal


def labels_from_odds(odds: Sequence[float], cal: Calibration,
                     codebook: Codebook) -> tuple[list[int], list[float]]:
    """(label vector under the none rule, calibrated log-odds) of one item."""
    calibrated = [o - c for o, c in zip(odds, cal.content_free)]
    vec = [0] * codebook.n
    for k, v, t in zip(prompts.score_categories(codebook), calibrated, cal.thresholds):
        vec[k] = int(v > t)
    return list(apply_none_rule(vec, codebook.none_index).labels), calibrated


def score_record(item: Item, gens: list[Generation], cal: Calibration, codebook: Codebook,
                 phash: str) -> dict:
    odds = log_odds(gens)
    error = None if odds is not None else next((g.error for g in gens if g.error), "no log-odds")
    labels, calibrated = labels_from_odds(odds, cal, codebook) if odds is not None else (None, None)
    rec = LabelPrediction(**{
        "doi": item.doi, "task": item.task, "split": item.split, "prompt_hash": phash,
        "raw": json.dumps({"log_odds": dict(zip(cal.categories, odds))}) if odds is not None else "",
        "labels": labels, "valid": labels is not None, "repaired": False, "exact_format": labels is not None,
        "reference": list(item.labels) if item.labels is not None else None,
        "tokens_in": sum(g.tokens_in for g in gens), "tokens_out": sum(g.tokens_out for g in gens),
        "seconds": round(sum(g.seconds for g in gens), 4), "error": error,
        "refusal": any(g.refusal for g in gens), "cached": all(g.cached for g in gens),
        "model_version": next((g.model_version for g in gens if g.model_version), None),
        "cost_usd": sum(g.cost_usd for g in gens) if all(g.cost_usd is not None for g in gens) else None,
        **({"scores": {c: round(v, 4) for c, v in zip(cal.categories, calibrated)}} if calibrated else {}),
        **({"meta": meta} if (meta := {k: item.meta[k] for k in GROUP_KEYS if item.meta.get(k)}) else {}),
    }).to_json()
    if any(g.extra.get("call_failed") for g in gens):
        rec["call_failed"] = True
    return rec


def score_into(run: RunFolder, backend: Backend, items: list[Item], cal: Calibration, codebook: Codebook,
               variant: str, phash: str, title: str, *, paraphrase: int = 0,
               known: dict[str, list[float]] | None = None, show_progress: bool = True,
               write: Callable[[Item, dict], None] | None = None, rule: StopRule | None = None) -> None:
    """Score every item and append one prediction each to the run folder, under a progress bar (or hand
    it to `write(item, record)`, the caller's writer and progress); items whose log-odds are `known` (by
    text) are not scored again. The stop rule ends a run that only collects failures."""
    known = known or {}
    rule = rule if rule is not None else StopRule()
    written = [0]

    def run_all(emit: Callable[[Item, dict], None]) -> None:
        def done(it: Item, gens: list[Generation]) -> None:
            emit(it, score_record(it, gens, cal, codebook, phash))
            written[0] += 1
            rule.check(next((g for g in gens if g.error), gens[-1]), backend, written[0], run.path)

        todo = []
        for it in items:
            if it.text in known:
                done(it, [Generation(text="scored for calibration", extra={"log_odds": v})
                          for v in known[it.text]])
            else:
                todo.append(it)
        score_texts(backend, codebook, variant, [it.text for it in todo], paraphrase,
                    on_item=lambda i, gens: done(todo[i], gens))

    if write is not None:
        run_all(write)
        return
    with progress_bar() as bar:
        task_id = bar.add_task(title, total=len(items), status="", visible=show_progress)

        def append(it: Item, rec: dict) -> None:
            run.append([rec])
            bar.update(task_id, advance=1)

        run_all(append)


def run_calibration(run: RunFolder, backend: Backend, codebook: Codebook, variant: str, source: str | None,
                    paraphrase: int = 0, previous: dict | None = None,
                    known: dict[str, list[float]] | None = None) -> Calibration:
    """A run's calibration: `previous` (a resumed run's, from config.json) when it used the same source,
    else fitted now; recorded in config.json as `calibration`."""
    if previous and previous.get("source") == source:
        cal = Calibration(**previous)
    else:
        cf = content_free_odds(backend, codebook, variant, paraphrase)
        cal = fit_calibration(backend, codebook, variant, cf, source, paraphrase, known)
    run.update_config({"calibration": cal.as_dict()})
    return cal


__all__ = ["Calibration", "calibration_items", "check_score_options", "content_free_odds", "fit_calibration", "labels_from_odds",
           "run_calibration", "score_into", "score_record", "score_texts"]
